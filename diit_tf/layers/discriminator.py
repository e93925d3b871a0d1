"""Domain discriminator: an MLP telling target-model representations from mapped source representations."""
from __future__ import annotations

import keras

from diit_tf.layers.mapper import Mapper


@keras.saving.register_keras_serializable(package="diit_tf")
class DomainDiscriminator(Mapper):
    """Scores a representation with one logit: high for "target model", low for "mapped source".

    `D(h) = w_L · a(... a(W_1 · h + b_1) ...) + b_L`: one Dense layer per entry of `hidden_units` with
    `activation`, then a linear Dense(1). The sigmoid is applied by the loss (`diit_tf.losses.adversarial_bce`),
    with label 1 for the target model's representation `e_T(x)` and 0 for the mapped source representation
    `h_S(x)`. Phase 1 of the DIIT step trains D on `BCE(D(sg(e_T)), 1) + BCE(D(sg(h_S)), 0)`; phase 2 freezes D and
    trains the mapper to fool it through a `GradientReversal` layer (Huang et al., "DIIT: A Domain-Invariant
    Information Transfer Method for Industrial Cross-Domain Recommendation", CIKM 2024, arXiv 2410.10835).

    Example:
    ```python
    discriminator = DomainDiscriminator(hidden_units=(64,))
    d_loss = adversarial_bce(discriminator(e_target), True) + adversarial_bce(discriminator(h_source), False)
    adv_loss = adversarial_bce(discriminator(GradientReversal(1.0)(h_source)), False)
    ```

    Args:
        hidden_units: positive int or non-empty sequence of positive ints, widths of the hidden layers.
        activation: activation of the hidden layers (name or callable). The output layer is linear.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Input shape: (B, d). Output shape: (B, 1) logits.
    """

    def __init__(self, hidden_units=(64,), activation="relu", **kwargs):
        kwargs.pop("output_dim", None)
        super().__init__(output_dim=1, hidden_units=hidden_units, activation=activation, **kwargs)

    @property
    def logit_layer(self):
        """The final linear Dense(1) (the mapper's output layer, width 1)."""
        return self.output_layer

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("output_dim")
        return config
