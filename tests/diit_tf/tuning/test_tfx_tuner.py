"""The TFX Tuner component's executor runs `diit_tf.tuning.tfx.tuner_fn` (Keras 3 DIIT models) on the transformed
examples it is given (no other data is read), and writes best hyperparameters that `load_best_hparams` turns into
the DIIT trainer's config."""
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from diit_tf.data.streaming import write_examples
from diit_tf.features import FeatureSpec
from diit_tf.tuning.best_hparams import load_best_hparams
from diit_tf.tuning.tfx import tuner_settings

from tuning_fixtures import TINY_OPTIONS

SPEC = FeatureSpec(categorical={"user_id": 32, "item_id": 16}, numeric=("freshness",), label="click",
                   domain="domain", domains=("target", "src_a", "src_b"), target="target")
COLUMNS = {"user_id": tf.io.FixedLenFeature([], tf.int64), "item_id": tf.io.FixedLenFeature([], tf.int64),
           "freshness": tf.io.FixedLenFeature([], tf.float32), "click": tf.io.FixedLenFeature([], tf.float32),
           "domain": tf.io.FixedLenFeature([], tf.string)}

pytestmark = pytest.mark.slow  # runs the TFX Tuner executor


def _columns(n, seed):
    rng = np.random.default_rng(seed)
    user = rng.integers(0, 32, n)
    return {"user_id": user, "item_id": rng.integers(0, 16, n), "freshness": rng.random(n).astype("float32"),
            "click": (rng.random(n) < 0.3 + 0.4 * (user % 2)).astype("float32"),
            "domain": np.array([b"target", b"src_a", b"src_b"])[rng.integers(0, 3, n)]}


def _transform_output(directory):
    """What TFTransformOutput reads for the transformed feature spec: transformed_metadata/schema.pbtxt."""
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(COLUMNS))
    metadata_io.write_metadata(metadata, os.path.join(directory, "transformed_metadata"))
    return directory


def test_tfx_tuner_executor_runs_the_sweep_on_its_examples(tmp_path):
    from tfx.components.tuner import executor
    from tfx.types import artifact_utils, standard_artifacts

    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    write_examples(str(tmp_path / "examples" / "Split-train"), _columns(900, 0), shards=2)
    write_examples(str(tmp_path / "examples" / "Split-eval"), _columns(300, 1))
    graph = standard_artifacts.TransformGraph()
    graph.uri = _transform_output(str(tmp_path / "transform"))
    best = standard_artifacts.HyperParameters()
    best.uri = str(tmp_path / "best")
    results = standard_artifacts.TunerResults()
    results.uri = str(tmp_path / "results")
    for a in (best, results):
        os.makedirs(a.uri)
    custom = {"feature_spec": SPEC.to_dict(), "max_trials": 2, "batch_size": 64, "backbone_options": TINY_OPTIONS,
              "space": "mapper_hidden=8|16"}
    exec_properties = {
        "tuner_fn": "diit_tf.tuning.tfx.tuner_fn",
        "train_args": json.dumps({"splits": ["train"], "num_steps": 4}),
        "eval_args": json.dumps({"splits": ["eval"], "num_steps": 1}),
        "custom_config": json.dumps(custom),
    }
    ex = executor.Executor(executor.base_executor.BaseExecutor.Context(tmp_dir=str(tmp_path / "tmp"),
                                                                         unique_id="1"))
    ex.Do({"examples": [examples], "transform_graph": [graph]},
          {"best_hyperparameters": [best], "tuner_results": [results]}, exec_properties)

    rows = json.loads((tmp_path / "results" / "tuner_results.json").read_text())
    assert len(rows) == 2 and all(0 < r["score"] <= 1 for r in rows)
    config, training = load_best_hparams(tmp_path / "best")        # best_hyperparameters.txt
    best_row = max(rows, key=lambda r: r["score"])
    assert config.mapper_hidden == (best_row["mapper_hidden"],)
    assert training["mix_ratio"] == pytest.approx(best_row["mix_ratio"])


def test_custom_config_errors_name_the_key():
    spec = SPEC.to_dict()
    with pytest.raises(ValueError, match="feature_spec"):
        tuner_settings({})
    with pytest.raises(ValueError, match="unknown key"):
        tuner_settings({"feature_spec": spec, "data_dir": "runs/data"})
    with pytest.raises(ValueError, match="max_trials"):
        tuner_settings({"feature_spec": spec, "max_trials": 0})
    with pytest.raises(ValueError, match="algorithm"):
        tuner_settings({"feature_spec": spec, "algorithm": "grid"})

    def message(**given):
        with pytest.raises(ValueError) as info:
            tuner_settings({"feature_spec": spec, **given})
        return str(info.value)

    # mix_batch_size was passed on unchecked (True as 1, 0 as "as batch_size", "abc" into the trials)
    for value in (True, 0, -64, 64.5, "abc"):
        assert message(mix_batch_size=value) == ("Tuner custom_config: `mix_batch_size` should be null or a positive "
                                                 f"integer. Received: {value!r}")
    assert message(batch_size=True) == "Tuner custom_config: `batch_size` should be a positive integer. Received: True"
    settings = tuner_settings({"feature_spec": spec, "mix_batch_size": 128.0, "epochs": 2.0})
    assert (settings["mix_batch_size"], settings["epochs"]) == (128, 2) and type(settings["mix_batch_size"]) is int
    assert tuner_settings({"feature_spec": spec})["mix_batch_size"] is None  # the default: as batch_size


def test_examples_context_leaves_out_a_source_without_rows(tmp_path):
    from diit_tf.data.streaming import TrainerInput
    from diit_tf.tuning.tfx import examples_context

    columns = _columns(300, 2)
    columns["domain"] = np.where(columns["domain"] == b"src_b", b"src_a", columns["domain"])  # no src_b rows
    eval_files = write_examples(str(tmp_path / "eval"), _columns(100, 5))
    data = TrainerInput(write_examples(str(tmp_path / "train"), columns, shards=2), eval_files, dict(COLUMNS))
    settings = tuner_settings({"feature_spec": SPEC.to_dict(), "batch_size": 64, "backbone_options": TINY_OPTIONS})
    lines = []
    context = examples_context(SPEC, data, settings, log=lines.append)
    assert len(context.teachers) == 1
    assert "Tuner: source 'src_b' has no rows in this span; left out of the teachers" in lines
    assert "Tuner: teacher of source 'src_a' trained on the train split" in lines

    columns["domain"] = np.full(300, b"target")
    data = TrainerInput(write_examples(str(tmp_path / "only_target"), columns), eval_files, dict(COLUMNS))
    with pytest.raises(ValueError, match=r"no source domain of \['src_a', 'src_b'\] has rows in the train split"):
        examples_context(SPEC, data, settings)


def test_a_span_without_target_rows_stops_the_tuner_naming_the_split(tmp_path):
    from diit_tf.data.streaming import StreamInputError, TrainerInput
    from diit_tf.tuning.tfx import examples_context

    settings = tuner_settings({"feature_spec": SPEC.to_dict(), "batch_size": 64, "backbone_options": TINY_OPTIONS})
    with_target = write_examples(str(tmp_path / "with_target"), _columns(200, 3))
    columns = _columns(200, 4)
    columns["domain"] = np.where(columns["domain"] == b"target", b"src_a", columns["domain"])
    no_target = write_examples(str(tmp_path / "no_target"), columns)
    for train, evaluation, split in ((no_target, with_target, "train"), (with_target, no_target, "eval")):
        with pytest.raises(StreamInputError, match=rf"Tuner: the span's {split} split has no rows of the target "
                                                   rf"domain 'target' \(files \[.*no_target"):
            examples_context(SPEC, TrainerInput(train, evaluation, dict(COLUMNS)), settings)


def test_a_truncated_examples_file_stops_the_tuner_before_any_trial(tmp_path):
    import types

    from diit_tf.data.streaming import StreamInputError
    from diit_tf.tuning.tfx import tuner_fn

    train = write_examples(str(tmp_path / "Split-train"), _columns(300, 0), shards=2)
    (cut,) = write_examples(str(tmp_path / "Split-eval"), _columns(100, 1))
    with open(cut, "rb") as f:
        blob = f.read()
    with open(cut, "wb") as f:
        f.write(blob[: len(blob) // 2])
    fn_args = types.SimpleNamespace(
        custom_config={"feature_spec": SPEC.to_dict(), "backbone_options": TINY_OPTIONS},
        transform_graph_path=_transform_output(str(tmp_path / "transform")),
        train_files=[str(tmp_path / "Split-train" / "*")], eval_files=[str(tmp_path / "Split-eval" / "*")],
        train_steps=None, eval_steps=None, working_dir=str(tmp_path / "work"))
    with pytest.raises(StreamInputError, match=re.escape(f"Tuner: cannot read transformed examples file {cut}: "
                                                         "the gzip stream ends early")):
        tuner_fn(fn_args)
    assert not os.path.exists(tmp_path / "work") and len(train) == 2
