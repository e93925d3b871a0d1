"""End to end with LocalDagRunner over tiny spans, as a daily job: span 1, span 2 (warm start), a bad span 3 and
an empty span 4 (both stop at validation), span 5 in a run killed during the DIIT trainer and started again, and
span 6 without any row of source_b (its source keeps its previous model).

One module-scoped fixture runs them all (a few minutes); the tests then assert on what they left behind.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from landing_fixtures import empty_landing
from pipeline import diit, results
from pipeline.scratch import temp_dir_at

pytestmark = pytest.mark.slow  # end-to-end LocalDagRunner runs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPONENTS = ("SpanCsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "validation_gate",
              "Transform", "source_trainer_source_a", "source_trainer_source_b", "diit_trainer", "evaluator",
              "pusher")


def _land(landing, frame_or_dir, span):
    target = landing / f"span-{span}"
    if isinstance(frame_or_dir, pd.DataFrame):
        target.mkdir()
        frame_or_dir.to_csv(target / "data.csv", index=False)
    else:
        shutil.copytree(frame_or_dir, target)


def _executions(metadata_path, since_ms=0, until_ms=None):
    """node id -> list of execution states (names) of executions created in [since_ms, until_ms)."""
    from ml_metadata.proto import metadata_store_pb2

    store = results._store(metadata_path)
    out = {}
    for context in store.get_contexts_by_type("node"):
        node = context.name.split(".")[-1]
        for execution in store.get_executions_by_context(context.id):
            created = execution.create_time_since_epoch
            if created >= since_ms and (until_ms is None or created < until_ms):
                state = metadata_store_pb2.Execution.State.Name(execution.last_known_state)
                out.setdefault(node, []).append(state)
    return out


def _wait_for_new_dir(parent, before, proc, timeout=900):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        if os.path.isdir(parent) and set(os.listdir(parent)) - before:
            return True
        time.sleep(0.5)
    return False


@pytest.fixture(scope="module")
def e2e(tiny_dataset, tmp_path_factory, make_config):
    root = tmp_path_factory.mktemp("e2e")
    # The runs' temporary files go to a directory of this fixture's own, checked empty at the end: every run
    # removes its scratch directory (pipeline/scratch.py), the killed run's is removed by the next run.
    temp_base = root / "tmp"
    temp_base.mkdir()
    with temp_dir_at(temp_base):
        out = _run_spans(root, tiny_dataset, make_config)
    out["temp_left"] = sorted(os.listdir(temp_base))
    return out


def _run_spans(root, tiny_dataset, make_config):
    landing = empty_landing(root, tiny_dataset)
    config = make_config(root, landing)
    metadata = config.path("metadata_path")
    serving = os.path.join(config.path("serving_dir"), "diit")
    out = {"config": config, "root": root, "landing": landing, "seconds": {}, "since": {}}

    for span in (1, 2):
        _land(landing, tiny_dataset / f"span-{span}", span)
        start = time.time()
        out["since"][span] = int(start * 1000)
        diit.run(config)
        out["seconds"][span] = time.time() - start
        out[f"summary_{span}"] = results.run_summary(metadata, since_ms=out["since"][span])
        out[f"versions_{span}"] = sorted(os.listdir(serving))

    # Span 3 is broken: a dropped column and text in a numeric column.
    bad = pd.read_csv(tiny_dataset / "span-3" / "data.csv", dtype=str).drop(columns=["item_id"])
    bad.loc[bad.index[:5], "freshness"] = "yesterday"
    _land(landing, bad, 3)
    start = time.time()
    out["since"][3] = int(start * 1000)
    with pytest.raises(Exception) as err:
        diit.run(config)
    out["seconds"][3] = time.time() - start
    out["bad_error"] = err.value
    out["versions_3"] = sorted(os.listdir(serving))

    # Span 4 is an empty file.
    (landing / "span-4").mkdir()
    (landing / "span-4" / "data.csv").write_text("")
    out["since"][4] = int(time.time() * 1000)
    with pytest.raises(Exception) as err:
        diit.run(config)
    out["empty_error"] = err.value
    out["versions_empty"] = sorted(os.listdir(serving))

    # Span 5 (good data) in a run killed while the DIIT trainer runs, then started again.
    _land(landing, tiny_dataset / "span-3", 5)
    config_file = root / "pipeline_config.json"
    config.save(config_file)
    runs_dir = os.path.join(config.path("pipeline_root"), "diit_trainer", "model_run")
    before = set(os.listdir(runs_dir))
    start = time.time()
    out["since"][5] = int(start * 1000)
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "pipeline", "diit.py")], cwd=REPO,
                            env={**os.environ, "DIIT_PIPELINE_CONFIG": str(config_file)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    out["killed_during_training"] = _wait_for_new_dir(runs_dir, before, proc)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    out["versions_killed"] = sorted(os.listdir(serving))
    diit.run(config)
    out["seconds"][5] = time.time() - start
    out["summary_5"] = results.run_summary(metadata, since_ms=out["since"][5])
    out["versions_5"] = sorted(os.listdir(serving))
    # Span 6 has no row of source_b: the run goes through, source_b keeps its previous model.
    frame = pd.read_csv(tiny_dataset / "span-2" / "data.csv", dtype=str)
    _land(landing, frame[frame["domain"] != "source_b"], 6)
    start = time.time()
    out["since"][6] = int(start * 1000)
    diit.run(config)
    out["seconds"][6] = time.time() - start
    out["summary_6"] = results.run_summary(metadata, since_ms=out["since"][6])
    print(f"\n[e2e] seconds per run: {json.dumps({k: round(v, 1) for k, v in out['seconds'].items()})}")
    return out


def test_runs_leave_nothing_in_the_temporary_directory(e2e):
    # Without pipeline/scratch.py each run leaves TFX's 49 MB package copies (<tmp>/tmpXXXX/build/tfx) behind.
    assert e2e["temp_left"] == []


def test_every_component_executed(e2e):
    metadata = e2e["config"].path("metadata_path")
    first = {node: states for node, states in _executions(metadata).items()
             if any(s in ("COMPLETE", "CACHED") for s in states)}
    for node in COMPONENTS:
        assert node in first, f"{node} never completed; executions: {sorted(first)}"
    run2 = _executions(metadata, since_ms=e2e["since"][2])
    run2 = {n: s for n, s in run2.items() if "COMPLETE" in s}
    # Span 2 is new data: every component ran again (nothing served from cache).
    assert set(COMPONENTS) - {"ImportSchemaGen"} <= set(run2)
    assert e2e["summary_1"]["pushed"] and e2e["summary_2"]["pushed"]


def test_span_2_trainers_warm_start_from_span_1(e2e):
    root = e2e["config"].path("pipeline_root")
    for node in ("source_trainer_source_a", "source_trainer_source_b", "diit_trainer"):
        (first_uri, first), (_, second) = _model_infos(root, node)[:2]
        assert first["warm_started_from"] is None
        assert second["warm_started_from"] == first_uri, node
    # ... and the sources warm-start from their own domain's model, not another's.
    assert e2e["summary_2"]["warm_started_from"] == e2e["summary_1"]["student_uri"]


def test_evaluation_is_overall_and_per_domain(e2e):
    evaluation = e2e["summary_2"]["evaluation"]
    assert set(evaluation) == {"candidate", "baseline"}  # span 2 is compared with the blessed span-1 student
    slices = evaluation["candidate"]
    assert set(slices) == {"overall", "domain=target", "domain=source_a", "domain=source_b"}
    for metrics in slices.values():
        assert {"auc", "logloss", "example_count"} <= set(metrics)
        assert 0.0 <= metrics["auc"] <= 1.0 and metrics["logloss"] > 0
    per_domain = sum(slices[f"domain={d}"]["example_count"] for d in ("target", "source_a", "source_b"))
    assert per_domain == slices["overall"]["example_count"]


def test_only_the_student_is_served(e2e):
    serving = os.path.join(e2e["config"].path("serving_dir"), "diit")
    versions = e2e["versions_5"]
    assert versions and all(v.isdigit() for v in versions), versions
    assert versions == sorted(versions, key=int)
    import tensorflow as tf

    from components.training import load_backbone

    student = load_backbone(e2e["summary_2"]["student_uri"])
    for v in versions:
        assert set(os.listdir(os.path.join(serving, v))) <= {"saved_model.pb", "variables", "assets",
                                                             "fingerprint.pb", "assets.extra"}
        # every pushed version carries TF Serving warmup requests
        assert os.path.isfile(os.path.join(serving, v, "assets.extra", "tf_serving_warmup_requests"))
    # The pushed variables are exactly the student's: no teacher, gate, mapper or discriminator weight.
    pushed = os.path.join(serving, e2e["summary_2"]["pushed_version"], "variables", "variables")
    sizes = [int(np.prod(shape)) for name, shape in tf.train.list_variables(pushed)
             if "OBJECT_GRAPH" not in name and "save_counter" not in name]
    assert sum(sizes) == student.count_params()


SCORE_WITHOUT_DIIT = textwrap.dedent("""
    import json, sys
    import pandas as pd
    import tensorflow as tf
    model_dir, csv, categorical, numeric = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
    frame = pd.read_csv(csv, dtype=str).head(50)
    examples = []
    for _, row in frame.iterrows():
        feature = {c: tf.train.Feature(bytes_list=tf.train.BytesList(value=[row[c].encode()])) for c in categorical}
        feature.update({c: tf.train.Feature(float_list=tf.train.FloatList(value=[float(row[c])])) for c in numeric})
        examples.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    model = tf.saved_model.load(model_dir)
    probs = model.signatures["serving_default"](examples=tf.constant(examples))["probabilities"].numpy()
    assert not any(m == "diit_tf" or m.startswith("diit_tf.") for m in sys.modules), "diit_tf was imported"
    print("RESULT " + json.dumps(probs.reshape(-1).tolist()))
""")


def test_pushed_student_runs_without_diit_tf_and_matches(e2e, tiny_dataset):
    from components.training import load_backbone
    from diit_tf.data import load_spec

    spec = load_spec(tiny_dataset)
    version = e2e["summary_2"]["pushed_version"]
    model_dir = os.path.join(e2e["config"].path("serving_dir"), "diit", version)
    csv = str(tiny_dataset / "span-2" / "data.csv")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", SCORE_WITHOUT_DIIT, model_dir, csv,
                           json.dumps(list(spec.categorical)), json.dumps(list(spec.numeric))],
                          capture_output=True, text=True, cwd="/", env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"},
                          timeout=300)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    served = np.array(json.loads(lines[-1][len("RESULT "):]))
    assert served.shape == (50,) and np.all((served >= 0) & (served <= 1))
    # The in-process student (its Keras backbone) gives the same probabilities.
    import tensorflow as tf

    frame = pd.read_csv(csv, dtype=str).head(50)
    raw = {c: tf.constant(frame[c].values) for c in spec.categorical}
    raw.update({c: tf.constant(frame[c].astype("float32").values) for c in spec.numeric})
    features = spec.transform(raw)
    student = load_backbone(e2e["summary_2"]["student_uri"])
    logits = student({n: features[n] for n in spec.feature_names}, training=False)["logit"].numpy().reshape(-1)
    np.testing.assert_allclose(served, 1 / (1 + np.exp(-logits)), rtol=1e-5, atol=1e-6)


def test_bad_span_stops_at_validation_and_serving_is_unchanged(e2e):
    message = str(e2e["bad_error"])
    assert type(e2e["bad_error"]).__name__ == "SpanValidationError"
    assert "span 3" in message and "span-3" in message
    assert "'item_id'" in message and "'freshness'" in message
    assert e2e["versions_3"] == e2e["versions_2"]
    ran = _executions(e2e["config"].path("metadata_path"), since_ms=e2e["since"][3], until_ms=e2e["since"][4])
    assert "validation_gate" in ran and "FAILED" in ran["validation_gate"]
    assert not {"Transform", "source_trainer_source_a", "source_trainer_source_b", "diit_trainer"} & set(ran), ran


def test_empty_span_stops_at_validation(e2e):
    message = str(e2e["empty_error"])
    assert type(e2e["empty_error"]).__name__ == "SpanValidationError"
    assert "span 4" in message and "no examples" in message
    assert e2e["versions_empty"] == e2e["versions_2"]


def test_killed_run_completes_on_restart_and_pushes_once(e2e):
    assert e2e["killed_during_training"], "the first span-5 run was not caught during DIIT training"
    assert e2e["versions_killed"] == e2e["versions_empty"]  # nothing pushed by the killed run
    assert len(e2e["versions_5"]) == len(e2e["versions_empty"]) + 1
    assert e2e["summary_5"]["pushed"]
    serving = os.path.join(e2e["config"].path("serving_dir"), "diit")
    assert not [n for n in os.listdir(serving) if not n.isdigit()]  # no temporary leftovers


def _model_infos(root, node):
    model_dir = os.path.join(root, node, "model")
    infos = {}
    for artifact_id in os.listdir(model_dir):
        info_path = os.path.join(model_dir, artifact_id, "keras", "model_info.json")
        if os.path.isfile(info_path):
            with open(info_path) as f:
                infos[int(artifact_id)] = (os.path.join(model_dir, artifact_id), json.load(f))
    return [infos[k] for k in sorted(infos)]


def test_a_source_without_rows_keeps_its_previous_model(e2e):
    root = e2e["config"].path("pipeline_root")
    assert e2e["summary_6"]["pushed"]
    (previous_uri, _), (latest_uri, latest) = _model_infos(root, "source_trainer_source_b")[-2:]
    assert latest["kept_previous_model"] == previous_uri and latest["train_rows"] == 0
    assert "no rows of domain 'source_b'" in latest["reason"]
    with open(os.path.join(previous_uri, "keras", "backbone.keras"), "rb") as a, \
            open(os.path.join(latest_uri, "keras", "backbone.keras"), "rb") as b:
        assert a.read() == b.read()
    # the run log of the source trainer says so, and the student's teacher of source_b is that kept model
    runs = os.path.join(root, "source_trainer_source_b", "model_run")
    with open(os.path.join(runs, max(os.listdir(runs), key=int), "history.json")) as f:
        assert json.load(f)["kept_previous_model"] == previous_uri
    _, student = _model_infos(root, "diit_trainer")[-1]
    assert student["teachers"]["source_b"] == latest_uri and student["left_out_sources"] == {}


def _scalars(directory) -> set:
    import tensorflow as tf

    tags = set()
    for d, _, files in os.walk(directory):
        for name in files:
            if "tfevents" in name:
                for event in tf.compat.v1.train.summary_iterator(os.path.join(d, name)):
                    tags.update(v.tag for v in event.summary.value)
    return tags


def test_trainers_write_tensorboard_logs_under_model_run(e2e):
    root = e2e["config"].path("pipeline_root")
    runs = os.path.join(root, "diit_trainer", "model_run")
    latest = os.path.join(runs, max(os.listdir(runs), key=int))
    # the default DIIT form: logit spot and the supervised gate (no adversary, no middle spot)
    assert {"loss", "ce", "kl", "kd", "gate_bce", "gate/source_a", "gate/source_b"} <= \
        _scalars(os.path.join(latest, "train"))
    assert {"target_auc", "auc/target", "auc/source_a", "logloss/target"} <= _scalars(os.path.join(latest, "eval"))
    runs = os.path.join(root, "source_trainer_source_a", "model_run")
    latest = os.path.join(runs, max(os.listdir(runs), key=int))
    assert "loss" in _scalars(os.path.join(latest, "train"))
    assert {"auc/source_a", "logloss/source_a"} <= _scalars(os.path.join(latest, "eval"))
