"""DCN-v2 backbone (stacked): embeddings -> cross network -> deep tower -> logit.

Wang et al., "DCN V2: Improved Deep & Cross Network", WWW 2021. The stacked structure keeps the representation the
deep tower's last hidden layer, the same width as the DNN backbone's.
"""
from __future__ import annotations

import keras

from diit_tf.backbones.towers import check_tower_args, deep_tower, embed, head
from diit_tf.layers.cross import CrossLayer


def build_dcn(spec, hidden_units=(128, 64), embedding_dim=16, dropout=0.0, activation="relu", cross_layers=2,
              projection_dim=None, name="dcn"):
    """`x_{l+1} = x_0 ⊙ (W x_l + b) + x_l` for `cross_layers` layers, then the MLP and the logit."""
    hidden_units = check_tower_args(hidden_units, dropout)
    if not isinstance(cross_layers, int) or cross_layers < 1:
        raise ValueError(f"`cross_layers` should be a positive integer. Received: {cross_layers!r}")
    inputs, x0 = embed(spec, embedding_dim)
    x = x0
    for i in range(cross_layers):
        x = CrossLayer(projection_dim=projection_dim, name=f"cross_{i}")(x0, x)
    representation = deep_tower(x, hidden_units, activation, dropout)
    logit = keras.layers.Dense(1, name="logit_dense")(representation)
    return head(inputs, representation, logit, name)
