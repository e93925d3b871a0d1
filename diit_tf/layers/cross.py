"""DCN-v2 cross layer: explicit feature crosses of bounded degree.

Formula (Wang et al., "DCN V2", WWW 2021, eq. 1): `x_{l+1} = x_0 ⊙ (W x_l + b) + x_l`, with `W` a full-rank
`(d, d)` matrix (or the low-rank `U V^T` when `projection_dim` is set), `⊙` the element-wise product. Stacking L
layers gives polynomial crosses up to degree L+1. Used by the DCN backbone.

Shapes: `x0`, `x` `(B, d)` -> `(B, d)`.

Example:
    cross = CrossLayer()
    x1 = cross(x0, x0)
    x2 = cross(x0, x1)
"""
from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="diit_tf")
class CrossLayer(keras.layers.Layer):
    """One DCN-v2 cross layer.

    Args:
      projection_dim: rank of the low-rank factorisation of W; None for full rank.
      use_bias: whether to add the bias `b`.
      kernel_initializer, bias_initializer: initializers of W (or U, V) and b.
    """

    def __init__(self, projection_dim=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if projection_dim is not None and (not isinstance(projection_dim, int) or projection_dim < 1):
            raise ValueError(f"`projection_dim` should be a positive integer or None. Received: {projection_dim!r}")
        self.projection_dim = projection_dim
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, x0_shape, x_shape=None):
        dim = x0_shape[-1]
        if self.projection_dim is None:
            self.dense_u = None
            self.dense_v = keras.layers.Dense(dim, use_bias=self.use_bias, kernel_initializer=self.kernel_initializer,
                                              bias_initializer=self.bias_initializer, name="w")
            self.dense_v.build((None, dim))
        else:
            self.dense_u = keras.layers.Dense(self.projection_dim, use_bias=False,
                                              kernel_initializer=self.kernel_initializer, name="u")
            self.dense_u.build((None, dim))
            self.dense_v = keras.layers.Dense(dim, use_bias=self.use_bias, kernel_initializer=self.kernel_initializer,
                                              bias_initializer=self.bias_initializer, name="v")
            self.dense_v.build((None, self.projection_dim))
        self.built = True

    def call(self, x0, x=None):
        if x is None:
            x = x0
        if x0.shape[-1] is not None and x.shape[-1] is not None and x0.shape[-1] != x.shape[-1]:
            raise ValueError(f"`x0` and `x` should have the same last dimension. Received: {x0.shape} and {x.shape}")
        projected = self.dense_v(self.dense_u(x) if self.dense_u is not None else x)
        return x0 * projected + x

    def compute_output_shape(self, x0_shape, x_shape=None):
        return x0_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "projection_dim": self.projection_dim,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
