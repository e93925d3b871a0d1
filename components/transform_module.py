"""TFX Transform's `preprocessing_fn`: exactly `FeatureSpec.transform`, the stateless raw -> model-input function.

No analyzers: categorical ids are FarmHash-bucketed, so an id keeps its embedding row in every period and warm
start stays meaningful; the exported student runs the very same function in its signatures. The label (float) and
the domain (string, so trainers can filter rows and TFMA can slice by it) pass through.

`custom_config` (from the Transform component) carries `{"feature_spec": FeatureSpec.to_dict()}`.
"""
from __future__ import annotations

import tensorflow as tf

from diit_tf.features import FeatureSpec


def spec_from_config(custom_config) -> FeatureSpec:
    if not custom_config or "feature_spec" not in custom_config:
        raise ValueError("Transform's custom_config should hold `feature_spec` (FeatureSpec.to_dict()). "
                         f"Received keys: {sorted(custom_config or {})}")
    return FeatureSpec.from_dict(custom_config["feature_spec"])


def preprocessing_fn(inputs, custom_config):
    """Raw columns (dense, shape (B, 1) under the curated schema) -> transformed columns of shape (B,)."""
    spec = spec_from_config(custom_config)
    raw = {}
    for name, value in inputs.items():
        if isinstance(value, tf.SparseTensor):
            raise ValueError(f"Raw feature {name!r} arrived as a SparseTensor: the schema should give it shape [1]")
        raw[name] = tf.reshape(value, [-1])
    return spec.transform(raw)
