"""Shared test setup: quiet TensorFlow, deterministic seeds, a tiny feature spec."""
from diit_tf.quiet import quiet_logging

quiet_logging()  # before TensorFlow loads

import keras  # noqa: E402
import pytest  # noqa: E402

from diit_tf.features import FeatureSpec  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


@pytest.fixture
def tiny_spec():
    return FeatureSpec(categorical={"user_id": 97, "item_id": 53}, numeric=("price",),
                       domains=("target", "source_a", "source_b"), target="target")
