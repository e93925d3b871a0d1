"""Trainers of the pipeline outside TFX, on streamed transformed TFRecords: source training with warm start, a
source without rows (previous model kept, or a placeholder left out of the teachers), the DIIT student (also with
the gate's origin loss, and the gate's own fits on the target rows and on the mix rows' sources), the NaN guard,
TensorBoard logs, and DIIT under MirroredStrategy over two logical CPU devices (in a subprocess: the device setup is
process-wide)."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from components import training
from diit_tf.data import streaming
from components.diit_trainer import merge_hyperparameters, train_student
from components.source_trainer import train_source, write_source_model
from diit_tf.features import FeatureSpec

from transformed_fixtures import COLUMNS, SPEC, transformed, write_transformed
from diit_tf.config import PAPER_FORM, DIITConfig

pytestmark = pytest.mark.slow  # runs the TFX trainers

CONFIG = {"backbone": "dnn", "backbone_options": {"hidden_units": [8], "embedding_dim": 4}, "epochs": 1,
          "batch_size": 32, "learning_rate": 0.01}
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def split(tmp_path, name, data, eval_data=None, **kwargs) -> streaming.TrainerInput:
    train = write_transformed(str(tmp_path / name / "train"), data)
    evaluation = write_transformed(str(tmp_path / name / "eval"), eval_data) if eval_data is not None else []
    return streaming.TrainerInput(train, evaluation, dict(COLUMNS), **kwargs)


def _teachers(tmp_path):
    uris = {}
    data = split(tmp_path, "sources", transformed(), transformed())
    for d in SPEC.sources:
        backbone, info = train_source(SPEC, d, data, CONFIG)
        uris[d] = str(tmp_path / d)
        training.save_backbone(backbone, uris[d], info)
    return uris


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    """Source models of both sources, trained once for the module (the DIIT trainer only reads them)."""
    return _teachers(tmp_path_factory.mktemp("teachers"))


@pytest.mark.slow
def test_source_training_warm_start_and_info(tmp_path):
    data = transformed()
    first, info = train_source(SPEC, "src_a", split(tmp_path, "p1", data, data), CONFIG)
    assert info["warm_started_from"] is None
    rows = int((data["domain"] == b"src_a").sum())
    assert info["train_steps"] == -(-rows // CONFIG["batch_size"])  # one pass over the domain's rows
    assert info["eval"]["rows"] == rows and 0.0 <= info["eval"]["auc"] <= 1.0
    uri = str(tmp_path / "m1")
    training.save_backbone(first, uri, info)
    assert training.read_model_info(uri)["domain"] == "src_a"
    second, info2 = train_source(SPEC, "src_a", split(tmp_path, "p2", transformed(seed=1)), CONFIG, uri)
    assert info2["warm_started_from"] == uri
    # Warm start copies the weights before training: with a zero learning rate the model is the previous one.
    frozen, _ = train_source(SPEC, "src_a", split(tmp_path, "p3", transformed(seed=2)),
                             {**CONFIG, "learning_rate": 1e-30}, uri)
    for a, b in zip(frozen.get_weights(), first.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_train_steps_bound_the_work(tmp_path):
    _, info = train_source(SPEC, "src_a", split(tmp_path, "p", transformed(), train_steps=3),
                           {**CONFIG, "epochs": 5, "batch_size": 8})
    assert info["train_steps"] == 3


def test_warm_start_from_another_architecture_is_a_clear_error(tmp_path):
    data = split(tmp_path, "p", transformed())
    backbone, info = train_source(SPEC, "src_a", data, CONFIG)
    training.save_backbone(backbone, str(tmp_path / "m"), info)
    wider = {**CONFIG, "backbone_options": {"hidden_units": [12], "embedding_dim": 4}}
    with pytest.raises(ValueError, match="architecture changed"):
        train_source(SPEC, "src_a", data, wider, str(tmp_path / "m"))


def test_domain_names_that_are_not_identifiers_train(tmp_path):
    spec = FeatureSpec(categorical={"user_id": 32, "item_id": 16}, numeric=("freshness",), label="click",
                       domain="domain", domains=(">=35", "<25"), target="<25")
    data = transformed(domains=(b"<25", b">=35"))
    backbone, info = train_source(spec, ">=35", split(tmp_path, "p", data), CONFIG)
    assert info["train_steps"] > 0 and backbone.name == "source___35"


def test_source_without_rows_keeps_its_previous_model_or_writes_a_placeholder(tmp_path):
    empty = split(tmp_path, "empty", transformed(domains=(b"target", b"src_b")))
    backbone, info = train_source(SPEC, "src_a", empty, CONFIG)
    assert backbone is None and info["train_rows"] == 0
    # No previous model: a placeholder, which holds no model and is not warm-started from.
    first = str(tmp_path / "first")
    written = write_source_model(SPEC, None, info, first, None)
    assert not training.has_model(first) and training.read_model_info(first)["trained"] is False
    assert "no previous model" in written["reason"]
    assert os.path.isfile(os.path.join(first, training.SERVING_DIR, training.NO_MODEL_FILE))
    assert training.previous_model(first, "source trainer 'src_a'") is None
    # A trained model, then a span without rows: the same model is kept (copied), and it is what warm starts next.
    trained, info = train_source(SPEC, "src_a", split(tmp_path, "full", transformed()), CONFIG)
    second = str(tmp_path / "second")
    write_source_model(SPEC, trained, info, second, None)
    third = str(tmp_path / "third")
    _, info = train_source(SPEC, "src_a", empty, CONFIG, second)
    written = write_source_model(SPEC, None, info, third, second)
    assert written["kept_previous_model"] == second
    kept = training.load_backbone(third)
    for a, b in zip(kept.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert os.path.isfile(os.path.join(third, training.SERVING_DIR, "saved_model.pb"))


@pytest.mark.slow
def test_nan_loss_fails_loudly(tmp_path, teachers):
    bad = split(tmp_path, "nan", transformed(nan_labels=True))
    with pytest.raises(training.NaNLossError, match="source trainer 'src_a': training loss is nan"):
        train_source(SPEC, "src_a", bad, CONFIG)
    uris = teachers
    with pytest.raises(training.NaNLossError, match="DIIT trainer"):
        train_student(SPEC, uris, bad, {**CONFIG, "diit": {}})


@pytest.mark.slow
def test_diit_student_trains_from_frozen_teachers_and_warm_starts(tmp_path, teachers):
    uris = teachers
    data = split(tmp_path, "p", transformed(), transformed(seed=5))
    student, info = train_student(SPEC, uris, data, {**CONFIG, "diit": {"beta2": 1.0}})
    assert info["role"] == "student" and info["domain"] == "target"
    assert set(info["teachers"]) == {"src_a", "src_b"} and info["left_out_sources"] == {}
    assert set(info["eval"]) == {"target", "src_a", "src_b"}
    assert np.isfinite(info["history"]["loss"][-1])
    assert info["diit"]["beta2"] == 1.0
    training.save_backbone(student, str(tmp_path / "student"), info)
    _, info2 = train_student(SPEC, uris, split(tmp_path, "p2", transformed(seed=3)), {**CONFIG, "diit": {}},
                             base_model_uri=str(tmp_path / "student"))
    assert info2["warm_started_from"] == str(tmp_path / "student")
    with pytest.raises(ValueError, match="no source model for source domain"):
        train_student(SPEC, {"src_a": uris["src_a"]}, data, {**CONFIG, "diit": {}})


def test_the_quality_prior_is_each_teachers_auc_gain_on_the_target_rows(tmp_path, teachers):
    """gate_prior="quality": π = softmax_k((AUC_k - 0.5) / T) over the train split's target rows, set on the gate."""
    from diit_tf.ctr import auc

    rows = transformed()
    data = split(tmp_path, "p", rows, transformed(seed=5))
    _, info = train_student(SPEC, teachers, data,
                            {**CONFIG, "diit": {"gate_prior": "quality", "gate_prior_temperature": 0.05}})
    target = rows["domain"] == b"target"
    x = {n: rows[n][target] for n in SPEC.feature_names}
    gains = [auc(rows["click"][target], np.asarray(training.load_backbone(teachers[d])(x)["logit"]).reshape(-1))
             - 0.5 for d in info["gate_prior"]["sources"]]
    expected = np.exp(np.array(gains) / 0.05) / np.exp(np.array(gains) / 0.05).sum()
    assert info["gate_prior"]["sources"] == ["src_a", "src_b"]
    np.testing.assert_allclose(info["gate_prior"]["auc_gain"], gains, atol=1e-5)
    np.testing.assert_allclose(info["gate_prior"]["weights"], expected, atol=1e-4)
    _, plain = train_student(SPEC, teachers, data, {**CONFIG, "diit": {}})
    assert plain["gate_prior"] is None


def test_the_sources_are_scored_on_at_most_gate_fit_rows_target_rows(tmp_path, teachers):
    """The quality prior (and the best source's start) score the teachers on the first `gate_fit_rows` target rows
    in file order, not on all of them: memory stays flat whatever the target's traffic."""
    from components.diit_trainer import target_logits
    from diit_tf.ctr import auc

    data = split(tmp_path, "p", transformed(), transformed(seed=5))
    models = [training.load_backbone(teachers[d]) for d in ("src_a", "src_b")]
    every, labels = target_logits(SPEC, data, models)
    first, first_labels = target_logits(SPEC, data, models, max_rows=50)
    assert len(labels) > 50 and len(first_labels) == 50
    np.testing.assert_array_equal(first_labels, labels[:50])
    for k in range(2):
        np.testing.assert_allclose(first[k], every[k][:50], atol=1e-6)
    _, info = train_student(SPEC, teachers, data, {**CONFIG, "gate_fit_rows": 50,
                                                   "diit": {"gate_prior": "quality", "gate_prior_temperature": 0.05}})
    np.testing.assert_allclose(info["gate_prior"]["auc_gain"], [auc(labels[:50], z[:50]) - 0.5 for z in every],
                               atol=1e-5)


def test_the_gate_fit_runs_over_the_streamed_target_rows_before_training(tmp_path, teachers):
    """DIITConfig.gate_fit_epochs: that many passes of the gate alone over the train split's target rows."""
    rows = transformed()
    data = split(tmp_path, "p", rows, transformed(seed=5))
    _, info = train_student(SPEC, teachers, data, {**CONFIG, "diit": {"gate_fit_epochs": 3}})
    target_rows = int((rows["domain"] == b"target").sum())
    assert info["gate_fit"]["steps"] == 3 * -(-target_rows // CONFIG["batch_size"])
    assert 0.0 < info["gate_fit"]["gate_bce"] < 2.0
    assert info["gate_fit"]["max_rows"] == 262_144                           # the default bound, above the 240 rows
    _, plain = train_student(SPEC, teachers, data, {**CONFIG, "diit": {}})
    assert plain["gate_fit"] is None
    assert info["gate_fit_origin"] is None and plain["gate_fit_origin"] is None   # gate_origin 0: no origin fit


def test_gate_origin_reaches_the_diit_trainer(tmp_path, teachers, monkeypatch):
    """DIITConfig.gate_origin > 0: the mix stream carries each row's source, its position among the teachers'
    sources (a source left out of the teachers has none), and the gate's origin loss is in the history."""
    calls, real = [], streaming.diit_batches
    monkeypatch.setattr(streaming, "diit_batches", lambda *a, **k: calls.append(k) or real(*a, **k))
    data = split(tmp_path, "p", transformed(), transformed(seed=5))
    _, info = train_student(SPEC, teachers, data, {**CONFIG, "diit": {"gate_origin": 1.0}})
    assert (calls[-1]["origin_key"], calls[-1]["origin_sources"]) == ("mix_origin", ["src_a", "src_b"])
    assert info["diit"]["gate_origin"] == 1.0
    # The rows' domains are drawn apart from their features, so no gate tells src_a's rows from src_b's better
    # than their shares (about 1/2 each): the loss stays near -log(1/2) = 0.693 (the start's near-uniform gate).
    assert np.isfinite(info["history"]["origin"]).all()
    assert info["history"]["origin"][-1] == pytest.approx(np.log(2.0), abs=0.05)
    # src_a left out: src_b is teacher 0, every other row -1. One teacher's gate weight is 1: the loss is -log 1 = 0.
    _, info = train_student(SPEC, {"src_b": teachers["src_b"]}, data, {**CONFIG, "diit": {"gate_origin": 1.0}},
                            left_out={"src_a": "no rows yet"})
    assert calls[-1]["origin_sources"] == ["src_b"]
    assert info["history"]["origin"] == [0.0]


def test_route_by_origin_reaches_the_diit_trainer(tmp_path, teachers, monkeypatch):
    """DIITConfig.route_by_origin (no origin loss): the mix stream still carries each row's source, which routes
    the KD; with the routed logit KD alone (`DIITConfig.logit_kd`, no gate) the trainer trains as `kd_origin`. The
    config is the one the pipeline's switch (`kd_origin.enabled`) hands the DIIT trainer."""
    from pipeline import configs

    calls, real = [], streaming.diit_batches
    monkeypatch.setattr(streaming, "diit_batches", lambda *a, **k: calls.append(k) or real(*a, **k))
    data = split(tmp_path, "p", transformed(), transformed(seed=5))
    routed = configs.PipelineConfig({"kd_origin": {"enabled": True, "beta": 1.0}}).resolved(None)["student"]["diit"]
    assert routed == DIITConfig.logit_kd(1.0, route_by_origin=True).to_dict()
    _, info = train_student(SPEC, teachers, data, {**CONFIG, "diit": routed})
    assert (calls[-1]["origin_key"], calls[-1]["origin_sources"]) == ("mix_origin", ["src_a", "src_b"])
    assert info["diit"]["route_by_origin"] is True and "origin" not in info["history"]  # no origin loss
    assert (info["diit"]["use_gate"], info["diit"]["alpha"], info["diit"]["beta2"]) == (False, 0.0, 1.0)
    assert info["gate_fit"] is None and info["gate_fit_origin"] is None                 # no gate, no fit
    assert np.isfinite(info["history"]["kl"]).all()
    _, plain = train_student(SPEC, teachers, data, {**CONFIG, "diit": {}})
    assert calls[-1]["origin_key"] is None


def test_target_kd_reaches_the_diit_trainer(tmp_path, teachers):
    """DIITConfig.target_kd from the pipeline's `student.diit`: the trainer's history reports the target rows' logit
    spot (`kl_target`), which a run without it does not have; no origin is read for it."""
    data = split(tmp_path, "p", transformed(), transformed(seed=5))
    _, info = train_student(SPEC, teachers, data, {**CONFIG, "diit": {"target_kd": 1.0}})
    assert info["diit"]["target_kd"] == 1.0
    assert np.isfinite(info["history"]["kl_target"]).all() and info["history"]["kl_target"][-1] > 0
    _, plain = train_student(SPEC, teachers, data, {**CONFIG, "diit": {}})
    assert "kl_target" not in plain["history"] and plain["diit"]["target_kd"] == 0.0


def test_the_gate_origin_fit_runs_over_at_most_gate_fit_rows_mix_rows_before_training(tmp_path, teachers,
                                                                                     monkeypatch):
    """gate_fit_epochs with gate_origin > 0, as the simulation: the gate alone on the sources of one pass of the
    mix rows (at most `gate_fit_rows`), then on the target's labels unless gate_supervision is 0."""
    calls, real = [], streaming.mix_batches
    monkeypatch.setattr(streaming, "mix_batches", lambda *a, **k: calls.append((a, k)) or real(*a, **k))
    rows = transformed()
    data = split(tmp_path, "p", rows, transformed(seed=5))
    origin_only = {"gate_fit_epochs": 2, "gate_origin": 1.0, "gate_supervision": 0.0}
    # mix_ratio 1: every one of the 240 rows is a mix row; the bound admits 100 of them, in batches of 32:
    # ceil(100 / 32) = 4 steps a pass (32, 32, 32, 4 rows), 2 passes.
    _, info = train_student(SPEC, teachers, data, {**CONFIG, "diit": origin_only, "gate_fit_rows": 100})
    assert info["gate_fit_origin"]["steps"] == 2 * 4 and info["gate_fit_origin"]["max_rows"] == 100
    assert info["gate_fit"] is None                                      # gate_supervision 0: no supervised fit
    (args, kwargs), = [c for c in calls if c[1].get("repeat") is False]  # the one finite pass, the training's rates
    assert args[3] == info["mix_rates"] == {"target": 1.0, "src_a": 1.0, "src_b": 1.0}
    assert (kwargs["origin_key"], kwargs["origin_sources"]) == ("mix_origin", ["src_a", "src_b"])
    # The rows' domains are drawn apart from their features: the gate cannot tell src_a's rows from src_b's better
    # than their shares (about 1/2 each), so the fitted origin loss stays near -log(1/2) = 0.693.
    assert info["gate_fit_origin"]["origin"] == pytest.approx(np.log(2.0), abs=0.1)
    # gate_supervision > 0 (the default 1) and the default bound (262,144 > 240): both fits, the origin one over
    # all 240 mix rows, ceil(240 / 32) = 8 steps a pass; the supervised one over the target rows.
    _, both = train_student(SPEC, teachers, data, {**CONFIG, "diit": {"gate_fit_epochs": 2, "gate_origin": 1.0}})
    assert both["gate_fit_origin"]["steps"] == 2 * 8 and both["gate_fit_origin"]["max_rows"] == 262_144
    target_rows = int((rows["domain"] == b"target").sum())
    assert both["gate_fit"]["steps"] == 2 * -(-target_rows // CONFIG["batch_size"])
    with pytest.raises(ValueError, match=r"`student.gate_fit_rows` should be null or a positive integer \(the rows "
                                         r"each of the gate's own fits holds in memory\)\. Received: 0$"):
        train_student(SPEC, teachers, data, {**CONFIG, "diit": origin_only, "gate_fit_rows": 0})


def test_the_gate_supervised_fit_runs_over_at_most_gate_fit_rows_target_rows(tmp_path, teachers, monkeypatch):
    """The gate's supervised fit holds its rows in memory as the origin fit does, so it obeys the same bound: the
    first `gate_fit_rows` rows of one pass of the target rows, all of them when there are fewer."""
    from diit_tf.model import DIITModel

    given, real = [], DIITModel.fit_gate

    def spy(self, dataset, epochs, seed=0, loss="supervised"):  # the rows each fit is given, then the real fit
        given.append((loss, sum(int(y.shape[0]) for _, y in dataset)))
        return real(self, dataset, epochs, seed=seed, loss=loss)

    monkeypatch.setattr(DIITModel, "fit_gate", spy)
    rows = transformed()
    data = split(tmp_path, "p", rows, transformed(seed=5))
    assert int((rows["domain"] == b"target").sum()) == 71   # the fixture's 240 rows hold 71 target rows
    both = {"gate_fit_epochs": 2, "gate_origin": 1.0}
    # gate_fit_rows 50 < 71: each fit is given 50 rows (mix_ratio 1: 240 mix rows), in batches of 32:
    # ceil(50 / 32) = 2 steps a pass (32, 18 rows), 2 passes
    _, info = train_student(SPEC, teachers, data, {**CONFIG, "diit": both, "gate_fit_rows": 50})
    assert given == [("origin", 50), ("supervised", 50)]
    assert info["gate_fit"]["steps"] == 2 * 2 and info["gate_fit"]["max_rows"] == 50
    assert info["gate_fit_origin"]["steps"] == 2 * 2 and info["gate_fit_origin"]["max_rows"] == 50
    # gate_fit_rows 100 > 71: the supervised fit is given all 71 target rows, ceil(71 / 32) = 3 steps a pass; the
    # origin fit 100 of the 240 mix rows, ceil(100 / 32) = 4 steps a pass
    given.clear()
    _, info = train_student(SPEC, teachers, data, {**CONFIG, "diit": both, "gate_fit_rows": 100})
    assert given == [("origin", 100), ("supervised", 71)]
    assert info["gate_fit"]["steps"] == 2 * 3 and info["gate_fit"]["max_rows"] == 100
    assert info["gate_fit_origin"]["steps"] == 2 * 4


def test_a_source_without_a_model_is_left_out_of_the_teachers(tmp_path, teachers):
    uris = teachers
    data = split(tmp_path, "p", transformed(domains=(b"target", b"src_a")), transformed(seed=5))
    _, info = train_student(SPEC, {"src_a": uris["src_a"]}, data, {**CONFIG, "diit": {}},
                            left_out={"src_b": "no rows yet"})
    assert set(info["teachers"]) == {"src_a"} and info["left_out_sources"] == {"src_b": "no rows yet"}
    assert "gate_w0" in info["history"] and "gate_w1" not in info["history"]
    # With no teacher at all the student trains on the target rows alone (the base), and the run says so.
    _, info = train_student(SPEC, {}, data, {**CONFIG, "diit": {}}, left_out={"src_a": "-", "src_b": "-"})
    assert info["teachers"] == {} and "alone" in info["note"] and set(info["history"]) == {"loss"}


def test_a_span_without_target_rows_fails_clearly(tmp_path, teachers):
    uris = teachers
    data = split(tmp_path, "p", transformed(domains=(b"src_a", b"src_b")))
    with pytest.raises(streaming.StreamInputError, match="no rows of the target domain 'target'"):
        train_student(SPEC, uris, data, {**CONFIG, "diit": {}})


def _scalars(directory) -> dict:
    """tag -> list of (step, value) in the TensorBoard event files under `directory`."""
    import tensorflow as tf

    out = {}
    files = [os.path.join(d, f) for d, _, fs in os.walk(directory) for f in fs if "tfevents" in f]
    for path in files:
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    return out


def test_trainers_write_named_tensorboard_scalars(tmp_path, teachers):
    data = split(tmp_path, "p", transformed(n=600), transformed(seed=5))
    source_logs = str(tmp_path / "source_run")
    _, info = train_source(SPEC, "src_a", data, CONFIG, log_dir=source_logs)
    scalars = _scalars(os.path.join(source_logs, "train"))
    assert scalars["loss"][-1] == (info["train_steps"], pytest.approx(info["history"]["loss"][-1]))
    evaluation = _scalars(os.path.join(source_logs, "eval"))
    assert evaluation["auc/src_a"][0][1] == pytest.approx(info["eval"]["auc"])
    assert "logloss/src_a" in evaluation

    uris = teachers
    student_logs = str(tmp_path / "student_run")
    # the paper's form, so that every loss DIIT has is logged (the default form has no adv1, adv2, mse)
    _, info = train_student(SPEC, uris, data, {**CONFIG, "diit": dict(PAPER_FORM)}, log_dir=student_logs)
    scalars = _scalars(os.path.join(student_logs, "train"))
    for name in ("loss", "ce", "adv1", "adv2", "mse", "kl", "kd", "gate/src_a", "gate/src_b"):
        assert name in scalars, sorted(scalars)
    last = {name: values[-1][1] for name, values in scalars.items()}
    assert last["gate/src_a"] + last["gate/src_b"] == pytest.approx(1.0, abs=1e-5)
    assert last["ce"] == pytest.approx(info["history"]["ce"][-1])
    evaluation = _scalars(os.path.join(student_logs, "eval"))
    assert evaluation["target_auc"][0][1] == pytest.approx(info["eval"]["target"]["auc"])
    assert {f"auc/{d}" for d in SPEC.domains} <= set(evaluation)


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
    from test_training import CONFIG, SPEC, _teachers, split, transformed
    from components import training
    from components.diit_trainer import train_student
    import pathlib
    tmp = pathlib.Path(tempfile.mkdtemp())
    uris = _teachers(tmp)
    strategy = {{"name": "mirrored", "devices": ["/cpu:0", "/cpu:1"]}}
    student, info = train_student(SPEC, uris, split(tmp, "p", transformed(), transformed(seed=5)),
                                  {{**CONFIG, "diit": {{"gate_fit_epochs": 2, "gate_origin": 1.0}},
                                   "strategy": strategy}})
    replicas = training.make_strategy(**strategy).num_replicas_in_sync
    print("RESULT " + json.dumps({{"replicas": replicas, "loss": info["history"]["loss"][-1],
                                   "origin": info["history"]["origin"][-1],
                                   "auc": info["eval"]["target"]["auc"], "gate_fit": info["gate_fit"],
                                   "gate_fit_origin": info["gate_fit_origin"]}}))
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
    assert np.isfinite(result["origin"])  # each mix row's source, split between the replicas with its row
    assert 0.0 <= result["auc"] <= 1.0
    assert result["gate_fit"]["steps"] > 0 and np.isfinite(result["gate_fit"]["gate_bce"])  # the gate's own fit
    # its origin fit: batches of 32 (a multiple of 2), the partial one dropped: 7 of the 240 mix rows' 7.5, 2 passes
    assert result["gate_fit_origin"]["steps"] == 2 * 7 and np.isfinite(result["gate_fit_origin"]["origin"])


def test_the_executor_leaves_placeholder_sources_out_and_names_kept_ones(tmp_path, teachers, caplog):
    from tfx.types import standard_artifacts

    from components.diit_trainer import source_models

    def model(uri):
        artifact = standard_artifacts.Model()
        artifact.uri = uri
        return [artifact]

    placeholder = str(tmp_path / "placeholder")
    _, info = train_source(SPEC, "src_b", split(tmp_path, "p", transformed(domains=(b"target",))), CONFIG)
    write_source_model(SPEC, None, info, placeholder, None)
    kept = str(tmp_path / "kept")
    write_source_model(SPEC, None, {**info, "domain": "src_a"}, kept, teachers["src_a"])
    with caplog.at_level("WARNING"):
        uris, left_out = source_models({"source_model_0": model(kept), "source_model_1": model(placeholder)})
    assert uris == {"src_a": kept} and list(left_out) == ["src_b"]
    assert "no rows of domain 'src_b'" in left_out["src_b"]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "'src_b' has no model yet" in messages and "left out of this period's teachers" in messages
    assert "'src_a' had no rows in this span; its teacher is its previous model" in messages
    with pytest.raises(ValueError, match="two source models of domain 'src_a'"):
        source_models({"source_model_0": model(kept), "source_model_1": model(kept)})


def test_without_a_previous_student_best_source_starts_from_the_best_teacher(tmp_path, teachers, monkeypatch):
    """student_init="best_source": with no previous student, the student starts from the teacher with the best AUC
    on the train split's target rows (computed here by hand); with a previous student, from that student."""
    from diit_tf.baselines import finetune
    from diit_tf.ctr import auc

    copies = []
    original = finetune.copy_weights
    monkeypatch.setattr(finetune, "copy_weights",
                        lambda source, destination: (copies.append((source, destination.name)),
                                                     original(source, destination)))
    rows = transformed()
    data = split(tmp_path, "p", rows, transformed(seed=5))
    student, info = train_student(SPEC, teachers, data, {**CONFIG, "diit": {}, "student_init": "best_source"})
    target = rows["domain"] == b"target"
    x = {n: rows[n][target] for n in SPEC.feature_names}
    aucs = {d: auc(rows["click"][target], np.asarray(training.load_backbone(teachers[d])(x)["logit"]).reshape(-1))
            for d in SPEC.sources}
    best = max(aucs, key=aucs.get)
    assert info["started_from_source"]["from"] == best
    np.testing.assert_allclose([info["started_from_source"]["auc"][d] for d in SPEC.sources],
                               [aucs[d] for d in SPEC.sources], atol=1e-4)
    assert len(copies) == 1 and copies[0][1] == "student"
    # the copied teacher is the best one: its weights equal that source's saved model
    saved = training.load_backbone(teachers[best]).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(copies[0][0].get_weights(), saved))
    training.save_backbone(student, str(tmp_path / "student"), info)
    _, warm = train_student(SPEC, teachers, data, {**CONFIG, "diit": {}, "student_init": "best_source"},
                            base_model_uri=str(tmp_path / "student"))
    assert warm["started_from_source"] is None and warm["warm_started_from"] == str(tmp_path / "student")
    assert len(copies) == 1
    _, plain = train_student(SPEC, teachers, data, {**CONFIG, "diit": {}})
    assert plain["started_from_source"] is None


def test_best_source_embeddings_copies_the_best_teachers_tables_only(tmp_path, teachers, monkeypatch):
    """student_init="best_source_embeddings": the fresh student gets the best teacher's embedding tables (the same
    teacher as "best_source" picks) and keeps its own tower, which may differ from the teachers'."""
    from diit_tf.baselines import finetune
    from diit_tf.layers.feature_embedding import embedding_positions

    seen = []
    original = finetune.copy_embeddings

    def spy(source, destination):
        before = [w.copy() for w in destination.get_weights()]
        paths = original(source, destination)
        seen.append((source.get_weights(), before, [w.copy() for w in destination.get_weights()],
                     embedding_positions(source), embedding_positions(destination), paths))
        return paths

    monkeypatch.setattr(finetune, "copy_embeddings", spy)
    data = split(tmp_path, "p", transformed(), transformed(seed=5))
    other_tower = {**CONFIG, "backbone_options": {**CONFIG.get("backbone_options", {}), "hidden_units": [5]},
                   "diit": {}, "student_init": "best_source_embeddings"}
    _, info = train_student(SPEC, teachers, data, other_tower)
    _, whole = train_student(SPEC, teachers, data, {**CONFIG, "diit": {}, "student_init": "best_source"})
    assert info["started_from_source"]["from"] == whole["started_from_source"]["from"]
    assert info["started_from_source"]["init"] == "best_source_embeddings"
    assert len(seen) == 1
    source, before, after, theirs, ours, paths = seen[0]
    assert len(ours) == len(SPEC.categorical) == len(paths)
    for i, j in zip(theirs, ours):
        np.testing.assert_array_equal(after[j], source[i])
        assert not np.array_equal(before[j], source[i])
    for j in set(range(len(after))) - set(ours):  # the student's own tower is untouched
        np.testing.assert_array_equal(after[j], before[j])
    best = training.load_backbone(teachers[info["started_from_source"]["from"]]).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(source, best))
    narrow = {**CONFIG, "backbone_options": {"hidden_units": [16], "embedding_dim": 3}, "diit": {},
              "student_init": "best_source_embeddings"}
    with pytest.raises(ValueError, match=r"student_init.*best_source_embeddings.*table .*embedding_.* has shape"
                                         r".*give the student the sources' embedding_dim"):
        train_student(SPEC, teachers, data, narrow)


def test_best_source_with_another_architecture_is_a_clear_error(tmp_path, teachers):
    data = split(tmp_path, "p", transformed(), transformed(seed=5))
    other = {**CONFIG, "backbone_options": {"hidden_units": [16], "embedding_dim": 4}}
    with pytest.raises(ValueError, match=r"student.student_init.*best_source.*different architectures"):
        train_student(SPEC, teachers, data, {**other, "diit": {}, "student_init": "best_source"})


def test_the_source_trainer_refuses_an_unknown_setting_naming_it():
    """A typo in a source trainer's custom_config (`batchsize`) is an error naming it, before anything is read; the
    pipeline's own source settings are all known."""
    from tfx.components.trainer.fn_args_utils import FnArgs

    from components import source_trainer
    from pipeline import configs

    fn_args = FnArgs(custom_config={"feature_spec": {}, "domain": "src_a", "batchsize": 64})
    with pytest.raises(ValueError, match=r"^source trainer: unknown custom_config key\(s\) \['batchsize'\]"):
        source_trainer.run_fn(fn_args)
    for source in (configs.DEFAULTS["source"], configs.PipelineConfig({}).resolved("synthetic")["source"]):
        keys = set(source) - {"train_steps", "eval_steps"}  # pipeline/diit.py hands these to TrainArgs / EvalArgs
        assert keys | {"feature_spec", "domain", "strategy"} <= source_trainer.CONFIG_KEYS


def test_the_trainers_refuse_a_boolean_for_an_integer_setting_naming_it(tmp_path):
    """JSON `true` is Python's True, which `isinstance(True, int)` takes for 1: the DIIT trainer's integer settings
    are checked when it runs (a buffer of 1 row or a bound of 1 step would pass silently), naming the setting; positive
    integers pass and train. Every trainer's counts against every bad value: test_trainer_counts.py."""
    from components import diit_trainer

    data = split(tmp_path, "p", transformed())
    no_teacher = {"left_out": {"src_a": "-", "src_b": "-"}}  # the checks come before any model or row is read
    for key in ("shuffle_buffer", "steps_per_execution", "gate_fit_rows"):
        with pytest.raises(ValueError, match=rf"^DIIT trainer: `student\.{key}` should be null or a positive integer"
                                             r".*Received: True$"):
            train_student(SPEC, {}, data, {**CONFIG, "diit": {}, key: True}, **no_teacher)
    _, info = train_student(SPEC, {}, data, {**CONFIG, "diit": {}, "shuffle_buffer": 16, "steps_per_execution": 2,
                                             "gate_fit_rows": 8}, **no_teacher)
    assert np.isfinite(info["history"]["loss"]).all()
    for key in ("train_steps", "eval_steps"):  # the executor takes them out of the config for TrainerInput
        with pytest.raises(ValueError, match=rf"^DIIT trainer: `student\.{key}` should be null or a positive "
                                             r"integer\. Received: True$"):
            diit_trainer.Executor().Do({}, {}, {"custom_config": json.dumps({key: True})})
        with pytest.raises(ValueError, match="custom_config is missing 'feature_spec'"):  # 3 passes: the next check
            diit_trainer.Executor().Do({}, {}, {"custom_config": json.dumps({key: 3})})


def test_integral_float_counts_train_as_their_integers(tmp_path):
    """A count spelled as a float (epochs 2.0, batch_size 16.0: what `int()` took before the counts were checked)
    trains as the integer: 2 passes over the target's rows in batches of 16, ceil(rows / 16) steps a pass."""
    data = split(tmp_path, "p", transformed())
    rows = transformed()
    target_rows = int((rows["domain"] == b"target").sum())
    _, info = train_student(SPEC, {}, data, {**CONFIG, "diit": {}, "epochs": 2.0, "batch_size": 16.0},
                            left_out={"src_a": "-", "src_b": "-"})
    assert info["batch_size"] == 16 and type(info["batch_size"]) is int
    assert info["train_steps"] == 2 * -(-target_rows // 16)


def test_tuned_values_replace_only_what_the_tuner_searched(tmp_path):
    """The Tuner searched beta2 and learning_rate: those change; the student's gate_origin, gate_prior, tau and
    mix_ratio stay as configured (they used to be reset to the library's defaults)."""
    from components.diit_trainer import apply_tuned
    from diit_tf.tuning.best_hparams import best_hparams_record, write_best_hparams
    path = write_best_hparams(tmp_path / "best_hparams.json",
                              best_hparams_record({"beta2": 2.0, "learning_rate": 0.01}, 0.7, 1, 2, "tiny"))
    config = {"learning_rate": 0.1, "mix_ratio": 0.5,
              "diit": {"tau": 1.0, "gate_origin": 1.0, "gate_prior": "quality", "beta2": 0.5}}
    assert apply_tuned(config, str(path)) == {
        "learning_rate": 0.01, "mix_ratio": 0.5,
        "diit": {"tau": 1.0, "gate_origin": 1.0, "gate_prior": "quality", "beta2": 2.0}}
