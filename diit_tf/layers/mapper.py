"""Mapper: an MLP carrying the aggregated source representation into the student's representation space."""
from __future__ import annotations

import keras

from diit_tf.layers.arguments import (  # noqa: F401  (check_* re-exported)
    check_activation, check_hidden_units, check_positive_int, config_with_activation, serialize_activation)


@keras.saving.register_keras_serializable(package="diit_tf")
class Mapper(keras.layers.Layer):
    """Maps the aggregated source representation `ē_S` into the student's representation space.

    `h_S = W_L · a(... a(W_1 · ē_S + b_1) ...) + b_L`: one Dense layer per entry of `hidden_units` with
    `activation`, then a linear Dense layer of width `output_dim` (the student's representation width, so
    `h_S` can be compared with `e_T` by the middle-spot MSE and by the domain discriminator). This is the
    representation-level extractor's generator (Huang et al., "DIIT: A Domain-Invariant Information Transfer
    Method for Industrial Cross-Domain Recommendation", CIKM 2024, arXiv 2410.10835).

    Example:
    ```python
    mapper = Mapper(output_dim=64, hidden_units=(64,))
    aggregated, _, _ = gating_aggregator(e_target, [e_s1, e_s2], [z_s1, z_s2])
    h_source = mapper(aggregated)  # (B, 64)
    loss = middle_spot_mse(e_target, h_source)
    ```

    Args:
        output_dim: positive int, width of the output (the student's representation width).
        hidden_units: positive int or non-empty sequence of positive ints, widths of the hidden layers.
        activation: activation of the hidden layers (name or callable). The last layer is linear.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Input shape: (B, d_in). Output shape: (B, output_dim).
    """

    def __init__(self, output_dim: int, hidden_units=(64,), activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.output_dim = check_positive_int(output_dim, "output_dim")
        self.hidden_units = check_hidden_units(hidden_units)
        self.activation = check_activation(activation)

    def build(self, input_shape):
        self.hidden_layers = []
        shape = tuple(input_shape)
        for i, units in enumerate(self.hidden_units):
            layer = keras.layers.Dense(units, activation=self.activation, name=f"hidden_{i}", dtype=self.dtype_policy)
            layer.build(shape)
            shape = shape[:-1] + (units,)
            self.hidden_layers.append(layer)
        self.output_layer = keras.layers.Dense(self.output_dim, name="output", dtype=self.dtype_policy)
        self.output_layer.build(shape)

    def call(self, inputs):
        x = inputs
        for layer in self.hidden_layers:
            x = layer(x)
        return self.output_layer(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.output_dim,)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "output_dim": self.output_dim,
                "hidden_units": list(self.hidden_units),
                "activation": serialize_activation(self.activation),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config_with_activation(config))
