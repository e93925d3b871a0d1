"""Wide & Deep backbone: a linear model over the raw ids (wide) plus an MLP over embeddings (deep).

Cheng et al., "Wide & Deep Learning for Recommender Systems", DLRS 2016. `logit = wide(x) + w·deep(x) + b`; the
representation is the deep tower's last hidden layer.
"""
from __future__ import annotations

import keras

from diit_tf.backbones.towers import check_tower_args, deep_tower, embed, head
from diit_tf.layers.feature_embedding import FeatureEmbedding


def build_wdl(spec, hidden_units=(128, 64), embedding_dim=16, dropout=0.0, activation="relu", name="wdl"):
    """Wide part: one weight per hashed id and per numeric (1-wide embeddings summed by a Dense)."""
    hidden_units = check_tower_args(hidden_units, dropout)
    inputs, x = embed(spec, embedding_dim)
    representation = deep_tower(x, hidden_units, activation, dropout)
    wide_x = FeatureEmbedding(spec.categorical, spec.numeric, embedding_dim=1, name="wide_features")(inputs)
    wide = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", trainable=False, name="wide_sum")(wide_x)
    deep = keras.layers.Dense(1, name="logit_dense")(representation)
    logit = keras.layers.Add(name="wide_plus_deep")([wide, deep])
    return head(inputs, representation, logit, name)
