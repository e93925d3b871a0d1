"""Tiny data and settings shared by the tuning tests (not a conftest: plain helpers)."""
from diit_tf.data.synthetic import SyntheticConfig, build_synthetic

TINY_BACKBONE = ["--hidden-units", "8,4", "--embedding-dim", "4", "--batch-size", "128"]
TINY_OPTIONS = {"hidden_units": [8, 4], "embedding_dim": 4}


def build_tiny(path, periods=3):
    config = SyntheticConfig(periods=periods, rows_target=400, rows_source=(600, 500), users=200, items=150)
    build_synthetic(path, config, log=lambda line: None)
    return path
