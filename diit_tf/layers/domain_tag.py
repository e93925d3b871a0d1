"""Domain tag: a constant domain index for every row of a batch, so a multi-domain model can be read as one domain's
single-domain model (`diit_tf.baselines.joint.as_domain_model`)."""
from __future__ import annotations

import numbers

import keras


@keras.saving.register_keras_serializable(package="diit_tf")
class DomainTag(keras.layers.Layer):
    """`DomainTag(index)(x)`: an int64 tensor shaped like `x` (any feature column of the batch) holding `index`.

    A named, serialisable layer (a `Lambda` would not load in Keras 3's safe mode), so a model that tags its rows
    can be saved and loaded as a `.keras` file, as the pipeline's joint trainer saves the joint model's view of the
    target (the DIIT trainer loads it as a teacher).

    Example:
    ```python
    tag = DomainTag(2)(inputs["user_id"])      # [[2], [2], ...] for a batch of user ids
    ```
    """

    def __init__(self, index: int, **kwargs):
        super().__init__(**kwargs)
        if isinstance(index, bool) or not isinstance(index, numbers.Integral) or index < 0:
            raise ValueError(f"`index` should be a domain index >= 0. Received: index={index!r}")
        self.index = int(index)

    def call(self, x):
        return keras.ops.full_like(x, self.index, dtype="int64")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "index": self.index}
