"""Shared test setup: quiet TensorFlow, deterministic seeds, each test's temporary files under pytest's own
directory, a tiny feature spec."""
from diit_tf.quiet import quiet_logging

quiet_logging()  # before TensorFlow loads

import tempfile  # noqa: E402

import keras  # noqa: E402
import pytest  # noqa: E402

from diit_tf.features import FeatureSpec  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


@pytest.fixture(autouse=True)
def _temporary_files_under_pytests_directory(tmp_path_factory, monkeypatch):
    """What a test's code leaves in the temporary directory (TFX's 49 MB package copies when a test runs a Beam
    executor itself, autograph's generated sources) goes under pytest's base directory, which pytest prunes, not
    the machine's /tmp: `tempfile.tempdir` for this process, `TMPDIR` for the processes a test starts."""
    directory = str(tmp_path_factory.mktemp("tempfile"))
    monkeypatch.setattr(tempfile, "tempdir", directory)
    monkeypatch.setenv("TMPDIR", directory)


@pytest.fixture
def tiny_spec():
    return FeatureSpec(categorical={"user_id": 97, "item_id": 53}, numeric=("price",),
                       domains=("target", "source_a", "source_b"), target="target")
