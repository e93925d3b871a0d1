"""The TFX Tuner component's executor runs `diit_tf.tuning.tfx.tuner_fn` (Keras 3 DIIT models) and writes best
hyperparameters that `load_best_hparams` turns into the DIIT trainer's config."""
import json
import os

import pytest

from diit_tf.tuning.best_hparams import load_best_hparams
from diit_tf.tuning.tfx import tuner_settings, train_period_for

from tuning_fixtures import TINY_OPTIONS, build_tiny

pytestmark = pytest.mark.slow  # runs the TFX Tuner executor


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return build_tiny(tmp_path_factory.mktemp("tfx-data") / "syn")


def test_tfx_tuner_executor_runs_the_sweep(data_dir, tmp_path):
    from tfx.components.tuner import executor
    from tfx.types import artifact_utils, standard_artifacts

    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    best = standard_artifacts.HyperParameters()
    best.uri = str(tmp_path / "best")
    results = standard_artifacts.TunerResults()
    results.uri = str(tmp_path / "results")
    for a in (best, results):
        os.makedirs(a.uri)
    custom = {"data_dir": str(data_dir), "span": 2, "max_trials": 2, "batch_size": 128,
              "backbone_options": TINY_OPTIONS, "space": "mapper_hidden=8|16"}
    exec_properties = {
        "tuner_fn": "diit_tf.tuning.tfx.tuner_fn",
        "train_args": json.dumps({"num_steps": 1}), "eval_args": json.dumps({"num_steps": 1}),
        "custom_config": json.dumps(custom),
    }
    ex = executor.Executor(executor.base_executor.BaseExecutor.Context(tmp_dir=str(tmp_path / "tmp"),
                                                                         unique_id="1"))
    ex.Do({"examples": [examples]}, {"best_hyperparameters": [best], "tuner_results": [results]}, exec_properties)

    rows = json.loads((tmp_path / "results" / "tuner_results.json").read_text())
    assert len(rows) == 2 and all(0 < r["score"] <= 1 for r in rows)
    config, training = load_best_hparams(tmp_path / "best")        # best_hyperparameters.txt
    best_row = max(rows, key=lambda r: r["score"])
    assert config.mapper_hidden == (best_row["mapper_hidden"],)
    assert training["mix_ratio"] == pytest.approx(best_row["mix_ratio"])


def test_custom_config_errors_name_the_key(data_dir):
    with pytest.raises(ValueError, match="data_dir"):
        tuner_settings({})
    with pytest.raises(ValueError, match="unknown key"):
        tuner_settings({"data_dir": str(data_dir), "trials": 3})
    with pytest.raises(ValueError, match="max_trials"):
        tuner_settings({"data_dir": str(data_dir), "max_trials": 0})
    with pytest.raises(ValueError, match="algorithm"):
        tuner_settings({"data_dir": str(data_dir), "algorithm": "grid"})
    # validation is the span being processed, training the one before; the first span cannot be tuned
    assert train_period_for(tuner_settings({"data_dir": str(data_dir)})) == 2
    assert train_period_for(tuner_settings({"data_dir": str(data_dir), "span": 2})) == 1
    with pytest.raises(ValueError, match="first span"):
        train_period_for(tuner_settings({"data_dir": str(data_dir), "span": 1}))
