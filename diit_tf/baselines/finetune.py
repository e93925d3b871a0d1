"""Fine-tuning from a model trained on all domains.

Every period `p` from the insertion period on: an all-domain ("pooled") model of the same backbone, itself trained
incrementally on all domains' period-`p` rows (no domain input), is copied into the target model, which is then
trained on the target's period-`p` rows only. So the target model restarts each period from the freshest
all-domain knowledge and specialises on the target (method.md: "fine-tuning from a model trained on all domains").
"""
from __future__ import annotations

import keras


def copy_weights(source: keras.Model, destination: keras.Model) -> None:
    """Copy all weights of `source` into `destination` (same architecture), raising a clear error otherwise."""
    src, dst = source.get_weights(), destination.get_weights()
    if len(src) != len(dst) or any(a.shape != b.shape for a, b in zip(src, dst)):
        raise ValueError(f"cannot copy weights from {source.name!r} into {destination.name!r}: different architectures")
    destination.set_weights(src)
