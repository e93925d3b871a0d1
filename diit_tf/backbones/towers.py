"""Pieces every backbone shares: argument checks, the deep tower, and the output head of the contract."""
from __future__ import annotations

import keras

from diit_tf.layers.feature_embedding import FeatureEmbedding


def check_tower_args(hidden_units, dropout):
    hidden_units = tuple(hidden_units)
    if not hidden_units or any(not isinstance(u, int) or u < 1 for u in hidden_units):
        raise ValueError(f"`hidden_units` should be a non-empty sequence of positive integers. Received: {hidden_units!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` should be in [0, 1). Received: {dropout!r}")
    return hidden_units


def embed(spec, embedding_dim):
    """Inputs for `spec` and their embedded, concatenated form."""
    inputs = spec.keras_inputs()
    x = FeatureEmbedding(spec.categorical, spec.numeric, embedding_dim=embedding_dim, name="features")(inputs)
    return inputs, x


def deep_tower(x, hidden_units, activation, dropout):
    """The MLP; its last hidden layer is the representation (the middle spot)."""
    for i, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation=activation, name=f"deep_{i}")(x)
        if dropout and i < len(hidden_units) - 1:
            x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    return x


def head(inputs, representation, logit, name):
    """The backbone contract: a functional model returning representation and logit."""
    outputs = {
        "representation": keras.layers.Identity(name="representation")(representation),
        "logit": keras.layers.Identity(name="logit")(logit),
    }
    return keras.Model(inputs=inputs, outputs=outputs, name=name)
