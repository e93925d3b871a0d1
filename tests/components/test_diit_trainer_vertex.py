"""`VertexDIITTrainer` (components/diit_trainer_vertex.py): the DIIT trainer as a Vertex AI custom job with N
replicas. Vertex is replaced by `local_vertex.FakeJobService` (nothing reaches Google Cloud): TFX builds and submits
the CustomJob as it would; the spec is checked field by field, and the slow test runs the job's replica command in
two local processes with the `TF_CONFIG` Vertex sets (chief + worker on loopback), against the student one worker
trains from the same inputs (conftest.py's `mw_student`)."""
import json
import os

import numpy as np
import pytest
from tfx import types
from tfx.types import standard_artifacts

from components import diit_trainer, training
from components.diit_trainer_vertex import (ENABLE_VERTEX_KEY, JOB_ID_KEY, TRAINING_ARGS_KEY, VERTEX_REGION_KEY,
                                            Executor, VertexDIITTrainer)

from local_vertex import FakeJobService
from launcher_checks import (artifacts, assert_is_the_diit_trainer_with_its_launcher,
                             assert_runs_the_student_on_the_pipeline_run, component, flags, pipeline_run_artifacts)
from multi_worker_setup import MODEL, SPEC

IMAGE = "gcr.io/my-project/diit:1"
STRATEGY = {"name": "multi_worker", "shard": "data"}


def _pool(replicas, image=IMAGE):
    return {"machine_spec": {"machine_type": "n1-highmem-16"}, "container_spec": {"image_uri": image},
            "replica_count": replicas}


def _launcher(workers=3, region="europe-west4"):
    return {VERTEX_REGION_KEY: region, JOB_ID_KEY: "diit-student-7",
            TRAINING_ARGS_KEY: {"project": "my-project", "worker_pool_specs": [_pool(1), _pool(workers)]}}


def test_the_job_submitted(monkeypatch):
    service = FakeJobService().install(monkeypatch)
    training_config = {**MODEL, "feature_spec": SPEC, "strategy": STRATEGY}
    inputs, outputs = pipeline_run_artifacts()
    Executor().Do(inputs, outputs,
                  {"custom_config": json.dumps({**training_config, **_launcher(workers=3)})})

    assert service.endpoints == ["europe-west4-aiplatform.googleapis.com"] * 2  # job built, then submitted
    [(parent, job)] = service.submitted
    assert parent == "projects/my-project/locations/europe-west4"
    assert job["display_name"] == "diit-student-7"
    pools = job["job_spec"]["worker_pool_specs"]
    assert [p["replica_count"] for p in pools] == [1, 3]
    assert [p["container_spec"]["image_uri"] for p in pools] == [IMAGE, IMAGE]
    assert [p["machine_spec"]["machine_type"] for p in pools] == ["n1-highmem-16"] * 2
    assert pools[0]["container_spec"]["command"] == pools[1]["container_spec"]["command"]
    assert "project" not in job["job_spec"]
    assert_runs_the_student_on_the_pipeline_run(pools[0]["container_spec"]["command"], training_config)


def test_the_job_spec_form(monkeypatch):
    """`ai_platform_training_args` as a CustomJob (`job_spec`, `display_name`, `labels`), the form TFX documents."""
    service = FakeJobService().install(monkeypatch)
    args = {"project": "p", "display_name": "nightly-student", "labels": {"team": "ranking"},
            "job_spec": {"worker_pool_specs": [_pool(1), _pool(1)], "service_account": "sa@p.iam"}}
    config = {"feature_spec": SPEC, "strategy": STRATEGY, VERTEX_REGION_KEY: "us-central1", ENABLE_VERTEX_KEY: True,
              TRAINING_ARGS_KEY: args}
    Executor().Do(*artifacts("/e", "/t", ["/s"], "/o"), {"custom_config": json.dumps(config)})
    [(parent, job)] = service.submitted
    assert parent == "projects/p/locations/us-central1"
    assert job["display_name"] == "nightly-student"
    assert job["labels"]["team"] == "ranking"
    assert job["job_spec"]["service_account"] == "sa@p.iam"
    assert [p["replica_count"] for p in job["job_spec"]["worker_pool_specs"]] == [1, 1]
    assert json.loads(flags(job["job_spec"]["worker_pool_specs"][1]["container_spec"]["command"])
                      ["--exec-properties"])["custom_config"] == json.dumps({"feature_spec": SPEC,
                                                                            "strategy": STRATEGY}, sort_keys=True)


def _without(mapping, *path):
    """A deep copy of `mapping` without the key at `path`."""
    out = json.loads(json.dumps(mapping))
    node = out
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return out


def _with(mapping, value, *path):
    out = json.loads(json.dumps(mapping))
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


COMPLETE = {"feature_spec": SPEC, "strategy": STRATEGY, **_launcher(workers=1)}
BAD = {
    "no training args": (_without(COMPLETE, TRAINING_ARGS_KEY),
                         "custom_config['ai_platform_training_args'] is missing"),
    "no project": (_without(COMPLETE, TRAINING_ARGS_KEY, "project"),
                   "ai_platform_training_args.project is missing"),
    "no pools": (_without(COMPLETE, TRAINING_ARGS_KEY, "worker_pool_specs"),
                 "ai_platform_training_args.worker_pool_specs is missing"),
    "no pools in job_spec": (_with(COMPLETE, {"project": "p", "job_spec": {}}, TRAINING_ARGS_KEY),
                             "ai_platform_training_args.job_spec.worker_pool_specs is missing"),
    "no image": (_without(COMPLETE, TRAINING_ARGS_KEY, "worker_pool_specs", 1, "container_spec", "image_uri"),
                 "ai_platform_training_args.worker_pool_specs[1].container_spec.image_uri is missing (the workers)"),
    "no machine": (_without(COMPLETE, TRAINING_ARGS_KEY, "worker_pool_specs", 0, "machine_spec"),
                   "ai_platform_training_args.worker_pool_specs[0].machine_spec.machine_type is missing (the chief)"),
    "no replica count": (_without(COMPLETE, TRAINING_ARGS_KEY, "worker_pool_specs", 1, "replica_count"),
                         "worker_pool_specs[1].replica_count should be a positive integer (the workers). "
                         "Received: None"),
    "two chiefs": (_with(COMPLETE, 2, TRAINING_ARGS_KEY, "worker_pool_specs", 0, "replica_count"),
                   "worker_pool_specs[0].replica_count should be 1 (pool 0 is the chief). Received: 2"),
    "parameter servers without their strategy": (
        _with(COMPLETE, [_pool(1), _pool(2), _pool(1)], TRAINING_ARGS_KEY, "worker_pool_specs"),
        "ai_platform_training_args.worker_pool_specs has 3 pools; pool 2 (parameter servers) needs strategy.name "
        "'parameter_server'"),
    "evaluators": (_with(_with(COMPLETE, [_pool(1), _pool(2), _pool(1), _pool(1)], TRAINING_ARGS_KEY,
                               "worker_pool_specs"), {"name": "parameter_server"}, "strategy"),
                   "worker_pool_specs has 4 pools"),
    "parameter-server strategy without servers": (
        _with(COMPLETE, {"name": "parameter_server"}, "strategy"),
        "strategy.name 'parameter_server' needs pool 1 (the workers) and pool 2 (the parameter servers) in "
        "ai_platform_training_args.worker_pool_specs. Received 2 pool(s)"),
    "own command": (_with(COMPLETE, ["python", "train.py"], TRAINING_ARGS_KEY, "worker_pool_specs", 0,
                          "container_spec", "command"),
                    "worker_pool_specs[0].container_spec.command is set"),
    "no region": (_without(COMPLETE, VERTEX_REGION_KEY), "custom_config['ai_platform_vertex_region'] is missing"),
    "not vertex": (_with(COMPLETE, False, ENABLE_VERTEX_KEY),
                   "custom_config['ai_platform_enable_vertex'] should be true"),
    "one worker strategy": (_without(COMPLETE, "strategy"),
                            "2 replicas need custom_config strategy.name 'multi_worker' (each replica would otherwise "
                            "train alone). Received: 'default'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_an_incomplete_launcher_config_names_the_key(monkeypatch, case):
    config, message = BAD[case]
    service = FakeJobService().install(monkeypatch)
    with pytest.raises(ValueError, match="^VertexDIITTrainer: ") as error:
        Executor().Do(*artifacts("/e", "/t", ["/s"], "/o"), {"custom_config": json.dumps(config)})
    assert message in str(error.value)
    assert service.endpoints == [] and service.submitted == []  # nothing was sent
    with pytest.raises(ValueError) as early:  # and the pipeline does not build
        _component(config)
    assert message in str(early.value)


def _component(config):
    return component(VertexDIITTrainer, config)


def test_the_component_is_the_diit_trainer_with_the_launcher():
    assert_is_the_diit_trainer_with_its_launcher(VertexDIITTrainer, Executor, COMPLETE)


# ----------------------------------------------------------------------------------------- the job, run locally
@pytest.mark.slow  # two TF replicas in subprocesses
def test_the_replicas_train_on_loopback_as_one_worker_would(mw_student, tmp_path, monkeypatch):
    """The job's own replica command, in two processes with Vertex's TF_CONFIG (a chief and a worker): both train,
    only the chief evaluates and writes, and the student is the one a single worker trains on the same inputs."""
    job = mw_student["job"]
    service = FakeJobService(run=True, log_dir=str(tmp_path)).install(monkeypatch)
    config = {**job["config"], "strategy": STRATEGY, **_launcher(workers=1)}
    out = str(tmp_path / "vertex")
    Executor().Do(*artifacts(job["examples"], job["transform"], job["teachers"], out),
                  {"custom_config": json.dumps(config)})

    assert [r["task"] for r in service.replicas] == [{"type": "chief", "index": 0}, {"type": "worker", "index": 0}]
    assert [r["proc"].returncode for r in service.replicas] == [0, 0]
    logs = service.logs()
    for name in ("chief-0", "worker-0"):  # both trained, distilling from both teachers
        assert "DIIT trainer: 2 teacher(s) ['src_a', 'src_b']" in logs[name], logs[name][-3000:]
    assert "DIIT trainer: student eval" in logs["chief-0"]
    assert "DIIT trainer: student eval" not in logs["worker-0"]

    model, single = os.path.join(out, "model"), os.path.join(mw_student["single"], "model")
    assert sorted(os.listdir(model)) == [training.SERVING_DIR, training.KERAS_DIR]
    assert os.path.isfile(os.path.join(model, training.SERVING_DIR, "saved_model.pb"))
    assert os.path.isfile(os.path.join(out, "run", "history.json"))
    events = [f for d, _, fs in os.walk(os.path.join(out, "run")) for f in fs if "tfevents" in f]
    assert len(events) == 2  # train/ and eval/ of the chief only
    expected, weights = training.load_backbone(single).get_weights(), training.load_backbone(model).get_weights()
    assert len(weights) == len(expected) > 0
    for a, b in zip(expected, weights):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    info, info_single = training.read_model_info(model), training.read_model_info(single)
    assert info["train_steps"] == info_single["train_steps"] > 0
    np.testing.assert_allclose(info["history"]["loss"], info_single["history"]["loss"], rtol=1e-4)
    assert TRAINING_ARGS_KEY not in json.dumps(info)


@pytest.mark.slow  # four TF replicas in subprocesses
def test_parameter_servers_on_loopback(mw_student_job, tmp_path, monkeypatch):
    """Pools 0-2 (a chief, two workers, a ps) with strategy 'parameter_server': the job's own replica command in
    four processes with Vertex's TF_CONFIG. The worker and ps replicas serve, the chief trains `train_steps` steps
    and alone evaluates and writes the student, and the job ends with the chief."""
    job = mw_student_job
    service = FakeJobService(run=True, log_dir=str(tmp_path)).install(monkeypatch)
    config = {**job["config"], "train_steps": 120, "strategy": {"name": "parameter_server"},
              **_launcher(), TRAINING_ARGS_KEY: {"project": "my-project",
                                                 "worker_pool_specs": [_pool(1), _pool(2), _pool(1)]}}
    out = str(tmp_path / "vertex")
    Executor().Do(*artifacts(job["examples"], job["transform"], job["teachers"], out),
                  {"custom_config": json.dumps(config)})

    assert [r["task"] for r in service.replicas] == [{"type": "chief", "index": 0}, {"type": "worker", "index": 0},
                                                     {"type": "worker", "index": 1}, {"type": "ps", "index": 0}]
    logs = service.logs()
    assert "DIIT trainer: student eval" in logs["chief-0"], logs["chief-0"][-3000:]
    for name in ("worker-0", "worker-1", "ps-0"):
        assert "of a parameter-server cluster: serving the chief's training loop" in logs[name], logs[name][-3000:]
        assert "DIIT trainer: student eval" not in logs[name]
    model = os.path.join(out, "model")
    assert os.path.isfile(os.path.join(model, training.SERVING_DIR, "saved_model.pb"))
    info = training.read_model_info(model)
    assert info["train_steps"] == 120 and len(info["history"]["loss"]) == 120


@pytest.mark.slow  # two TF replicas in subprocesses
def test_a_failed_replica_fails_the_component(mw_span, tmp_path, monkeypatch):
    service = FakeJobService(run=True, log_dir=str(tmp_path)).install(monkeypatch)
    config = {"strategy": STRATEGY, **_launcher(workers=1)}  # no feature_spec: every replica stops
    with pytest.raises(RuntimeError, match="did not succeed"):
        Executor().Do(*artifacts(mw_span["examples"], mw_span["transform"], ["/nowhere"], str(tmp_path)),
                      {"custom_config": json.dumps(config)})
    assert [r["proc"].returncode != 0 for r in service.replicas] == [True, True]
    assert "DIIT trainer: custom_config is missing 'feature_spec'" in service.logs()["chief-0"]


def test_an_unknown_training_key_fails_before_anything_is_built_or_sent(monkeypatch):
    """A typo in the DIIT trainer's settings (here `learnig_rate`) is an error naming it: when the pipeline is built
    (both components) and before a Vertex job is submitted; the launcher's own keys are accepted by the Vertex one
    only."""
    typo = {**COMPLETE, "learnig_rate": 0.01}
    service = FakeJobService().install(monkeypatch)
    with pytest.raises(ValueError, match=r"^VertexDIITTrainer: unknown custom_config key\(s\) \['learnig_rate'\]"):
        Executor().Do(*artifacts("/e", "/t", ["/s"], "/o"), {"custom_config": json.dumps(typo)})
    assert service.submitted == []
    with pytest.raises(ValueError, match=r"unknown custom_config key\(s\) \['learnig_rate'\]"):
        _component(typo)
    local = dict(
        examples=types.Channel(type=standard_artifacts.Examples),
        transform_graph=types.Channel(type=standard_artifacts.TransformGraph),
        source_models={"src_a": types.Channel(type=standard_artifacts.Model)})
    with pytest.raises(ValueError, match=r"^DIITTrainer: unknown custom_config key\(s\) \['learnig_rate'\]"):
        diit_trainer.DIITTrainer(custom_config={**MODEL, "feature_spec": SPEC, "learnig_rate": 0.01}, **local)
    with pytest.raises(ValueError, match=rf"^DIITTrainer: unknown custom_config key\(s\) \[{VERTEX_REGION_KEY!r}\]"):
        diit_trainer.DIITTrainer(custom_config={**MODEL, "feature_spec": SPEC, VERTEX_REGION_KEY: "x"}, **local)
    with pytest.raises(ValueError, match=r"^DIIT trainer: unknown custom_config key\(s\) \['learnig_rate'\]"):
        diit_trainer.Executor().Do({}, {}, {"custom_config": json.dumps({"learnig_rate": 0.01, "feature_spec": SPEC})})


def test_every_setting_of_the_pipelines_student_block_is_a_known_key():
    from pipeline import configs

    student = configs.PipelineConfig({}).resolved(None)["student"]
    assert set(student) | {"feature_spec", "strategy"} <= diit_trainer.CONFIG_KEYS
    assert set(configs.DEFAULTS["student"]) <= diit_trainer.CONFIG_KEYS
