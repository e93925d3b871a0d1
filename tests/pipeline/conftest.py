"""Shared helpers of the pipeline tests: a tiny synthetic dataset in the span layout and a test config."""
import pytest

from pipeline import configs

TINY = dict(periods=3, rows_target=300, rows_source=(500, 500), users=200, items=150)
SMALL_MODEL = {"backbone": "dnn", "backbone_options": {"hidden_units": [16], "embedding_dim": 4}, "batch_size": 128}


def tiny_config(root, data_dir, **overrides) -> configs.PipelineConfig:
    values = {
        "pipeline_name": "diit-test",
        "data_dir": str(data_dir),
        "pipeline_root": str(root / "pipeline_root"),
        "metadata_path": str(root / "metadata.sqlite"),
        "serving_dir": str(root / "serving"),
        "source": dict(SMALL_MODEL),
        "student": dict(SMALL_MODEL),
        "evaluator": {"target_auc_floor": 0.0, "regression_tolerance": 1.0},
    }
    values.update(overrides)
    return configs.PipelineConfig(values, source="test")


@pytest.fixture(scope="session")
def make_config():
    """A factory: make_config(root_dir, data_dir, **overrides) -> PipelineConfig."""
    return tiny_config


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    from diit_tf.data.synthetic import SyntheticConfig, build_synthetic

    out = tmp_path_factory.mktemp("tiny") / "data"
    build_synthetic(out, SyntheticConfig(seed=1, **TINY), log=lambda line: None)
    return out
