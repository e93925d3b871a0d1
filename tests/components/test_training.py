"""Trainers of the pipeline outside TFX: source training with warm start, the DIIT student, the NaN guard, and
DIIT under MirroredStrategy over two logical CPU devices (in a subprocess: the device setup is process-wide)."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from components import training
from components.diit_trainer import merge_hyperparameters, train_student
from components.source_trainer import train_source
from diit_tf.features import FeatureSpec

SPEC = FeatureSpec(categorical={"user_id": 32, "item_id": 16}, numeric=("freshness",), label="click",
                   domain="domain", domains=("target", "src_a", "src_b"), target="target")
CONFIG = {"backbone": "dnn", "backbone_options": {"hidden_units": [8], "embedding_dim": 4}, "epochs": 1,
          "batch_size": 32, "learning_rate": 0.01}
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def transformed(n=240, seed=0, nan_labels=False):
    """Transformed columns as the pipeline's Transform writes them (ids hashed, domain as bytes)."""
    rng = np.random.default_rng(seed)
    domains = np.array([b"target", b"src_a", b"src_b"])[rng.integers(0, 3, n)]
    user = rng.integers(0, 32, n)
    labels = (rng.random(n) < 0.3 + 0.4 * (user % 2)).astype(np.float32)
    if nan_labels:
        labels[:] = np.nan
    return {"user_id": user.astype(np.int64), "item_id": rng.integers(0, 16, n).astype(np.int64),
            "freshness": rng.random(n).astype(np.float32), "click": labels, "domain": domains}


def _teachers(tmp_path):
    uris = {}
    data = transformed()
    for d in SPEC.sources:
        backbone, info = train_source(SPEC, d, data, data, CONFIG)
        uris[d] = str(tmp_path / d)
        training.save_backbone(backbone, uris[d], info)
    return uris


@pytest.mark.slow
def test_source_training_warm_start_and_info(tmp_path):
    data = transformed()
    first, info = train_source(SPEC, "src_a", data, data, CONFIG)
    assert info["warm_started_from"] is None
    assert info["train_rows"] == int((data["domain"] == b"src_a").sum())
    assert 0.0 <= info["eval"]["auc"] <= 1.0
    uri = str(tmp_path / "m1")
    training.save_backbone(first, uri, info)
    assert training.read_model_info(uri)["domain"] == "src_a"
    second, info2 = train_source(SPEC, "src_a", transformed(seed=1), None, {**CONFIG, "epochs": 1}, uri)
    assert info2["warm_started_from"] == uri
    # Warm start copies the weights before training: with a zero learning rate the model is the previous one.
    frozen, _ = train_source(SPEC, "src_a", transformed(seed=2), None, {**CONFIG, "learning_rate": 1e-30}, uri)
    for a, b in zip(frozen.get_weights(), first.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_warm_start_from_another_architecture_is_a_clear_error(tmp_path):
    backbone, info = train_source(SPEC, "src_a", transformed(), None, CONFIG)
    training.save_backbone(backbone, str(tmp_path / "m"), info)
    wider = {**CONFIG, "backbone_options": {"hidden_units": [12], "embedding_dim": 4}}
    with pytest.raises(ValueError, match="architecture changed"):
        train_source(SPEC, "src_a", transformed(), None, wider, str(tmp_path / "m"))


def test_domain_names_that_are_not_identifiers_train():
    spec = FeatureSpec(categorical={"user_id": 32, "item_id": 16}, numeric=("freshness",), label="click",
                       domain="domain", domains=(">=35", "<25"), target="<25")
    data = transformed()
    data["domain"] = np.where(data["domain"] == b"target", b"<25", b">=35")
    backbone, info = train_source(spec, ">=35", data, None, CONFIG)
    assert info["train_rows"] > 0 and backbone.name == "source___35"


def test_domain_without_rows_is_a_clear_error():
    data = transformed()
    data["domain"] = np.full(len(data["click"]), b"target")
    with pytest.raises(ValueError, match="no rows of domain 'src_a'"):
        train_source(SPEC, "src_a", data, None, CONFIG)


@pytest.mark.slow
def test_nan_loss_fails_loudly(tmp_path):
    with pytest.raises(training.NaNLossError, match="source trainer 'src_a': training loss is nan"):
        train_source(SPEC, "src_a", transformed(nan_labels=True), None, CONFIG)
    uris = _teachers(tmp_path)
    with pytest.raises(training.NaNLossError, match="DIIT trainer"):
        train_student(SPEC, uris, transformed(nan_labels=True), None, {**CONFIG, "diit": {}})


@pytest.mark.slow
def test_diit_student_trains_from_frozen_teachers_and_warm_starts(tmp_path):
    uris = _teachers(tmp_path)
    student, info = train_student(SPEC, uris, transformed(), transformed(seed=5), {**CONFIG, "diit": {"beta2": 1.0}})
    assert info["role"] == "student" and info["domain"] == "target"
    assert set(info["teachers"]) == {"src_a", "src_b"}
    assert set(info["eval"]) == {"target", "src_a", "src_b"}
    assert np.isfinite(info["history"]["loss"][-1])
    assert info["diit"]["beta2"] == 1.0
    training.save_backbone(student, str(tmp_path / "student"), info)
    _, info2 = train_student(SPEC, uris, transformed(seed=3), None, {**CONFIG, "diit": {}},
                             base_model_uri=str(tmp_path / "student"))
    assert info2["warm_started_from"] == str(tmp_path / "student")
    with pytest.raises(ValueError, match="no source model for source domain"):
        train_student(SPEC, {"src_a": uris["src_a"]}, transformed(), None, {**CONFIG, "diit": {}})


def test_tuner_values_reach_the_right_settings():
    config = merge_hyperparameters({"learning_rate": 0.1, "diit": {"tau": 1.0}}, {"learning_rate": 0.01,
                                                                                   "beta2": 2.0, "bogus": 1})
    assert config == {"learning_rate": 0.01, "diit": {"tau": 1.0, "beta2": 2.0}}


MIRRORED = textwrap.dedent("""
    import json, sys, tempfile
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path[:0] = [{here!r}, {repo!r}]
    from test_training import CONFIG, SPEC, _teachers, transformed
    from components import training
    from components.diit_trainer import train_student
    import pathlib
    tmp = pathlib.Path(tempfile.mkdtemp())
    uris = _teachers(tmp)
    strategy = {{"name": "mirrored", "devices": ["/cpu:0", "/cpu:1"]}}
    student, info = train_student(SPEC, uris, transformed(), transformed(seed=5),
                                  {{**CONFIG, "diit": {{}}, "strategy": strategy}})
    replicas = training.make_strategy(**strategy).num_replicas_in_sync
    print("RESULT " + json.dumps({{"replicas": replicas, "loss": info["history"]["loss"][-1],
                                   "auc": info["eval"]["target"]["auc"]}}))
""")


@pytest.mark.slow
def test_diit_under_mirrored_strategy_on_two_logical_cpus():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    script = MIRRORED.format(repo=REPO, here=os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=600)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["replicas"] == 2
    assert np.isfinite(result["loss"])
    assert 0.0 <= result["auc"] <= 1.0
