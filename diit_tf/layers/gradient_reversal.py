"""Gradient reversal layer (GRL): identity forward, `-lam` times the gradient backward."""
from __future__ import annotations

import keras
import tensorflow as tf

from diit_tf.counts import is_number


def _check_lam(lam) -> float:
    if not is_number(lam) or not lam >= 0:
        raise ValueError(f"`lam` should be a non-negative number. Received: lam={lam!r}")
    return float(lam)


@tf.custom_gradient
def _reverse_gradient(x, lam):
    def grad(upstream):
        return -tf.cast(lam, upstream.dtype) * upstream, tf.zeros_like(lam)

    return tf.identity(x), grad


@keras.saving.register_keras_serializable(package="diit_tf")
class GradientReversal(keras.layers.Layer):
    """Gradient reversal: passes `x` through unchanged and multiplies the gradient by `-lam` on the way back.

    Forward `GRL(x) = x`; backward `dL/dx = -lam * dL/dGRL(x)`. Placed between the mapper and the domain
    discriminator, minimising the discriminator's loss through it *maximises* that loss with respect to everything
    before the GRL, so the mapper learns representations the discriminator cannot tell apart from the target
    model's (Ganin & Lempitsky, ICML 2015; used by DIIT's representation-level extractor: Huang et al., "DIIT: A
    Domain-Invariant Information Transfer Method for Industrial Cross-Domain Recommendation", CIKM 2024,
    arXiv 2410.10835).

    `lam` lives in a non-trainable float32 weight, so it can be scheduled during training (e.g. the DANN ramp
    `2 / (1 + exp(-10 p)) - 1`) by setting `layer.lam = value`, even inside an already traced `train_step`;
    `get_config()` reports its current value. `lam = 0` blocks the gradient entirely.

    Example:
    ```python
    grl = GradientReversal(lam=0.5)
    x = tf.constant([[1.0, 2.0, 3.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(grl(x))
    tape.gradient(y, x)  # [[-0.5, -0.5, -0.5]]
    grl.lam = 1.0  # schedule
    ```

    Args:
        lam: non-negative number, the reversal strength λ. Defaults to 1.0.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Input shape: any tensor. Output shape: the same.
    """

    def __init__(self, lam: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self._initial_lam = _check_lam(lam)
        self._lam = None
        self.supports_masking = True

    def build(self, input_shape=None):
        self._lam = self.add_weight(
            name="lam",
            shape=(),
            dtype="float32",
            initializer=keras.initializers.Constant(self._initial_lam),
            trainable=False,
        )

    @property
    def lam(self) -> float:
        """The current reversal strength λ (a Python float)."""
        if self._lam is None:
            return self._initial_lam
        return float(keras.ops.convert_to_numpy(self._lam))

    @lam.setter
    def lam(self, value: float) -> None:
        value = _check_lam(value)
        if self._lam is None:
            self._initial_lam = value
        else:
            self._lam.assign(value)

    def call(self, inputs):
        return _reverse_gradient(inputs, tf.convert_to_tensor(self._lam))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"lam": self.lam})
        return config
