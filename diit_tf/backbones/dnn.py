"""DNN backbone: embeddings -> MLP -> logit (the paper's base model)."""
from __future__ import annotations

import keras

from diit_tf.backbones.towers import check_tower_args, deep_tower, embed, head


def build_dnn(spec, hidden_units=(128, 64), embedding_dim=16, dropout=0.0, activation="relu", name="dnn"):
    """`representation = MLP(embed(x))`, `logit = w·representation + b`."""
    hidden_units = check_tower_args(hidden_units, dropout)
    inputs, x = embed(spec, embedding_dim)
    representation = deep_tower(x, hidden_units, activation, dropout)
    logit = keras.layers.Dense(1, name="logit_dense")(representation)
    return head(inputs, representation, logit, name)
