"""`TFJobDIITTrainer` (components/diit_trainer_tfjob.py): the DIIT trainer as a Kubeflow Training Operator `TFJob`
with N replicas. The Kubernetes API and the operator are replaced by `local_tfjob.FakeTrainingOperator` (nothing
reaches a cluster): the TFJob created is checked field by field, its replica command against the one TFX builds for
Vertex's replicas, the job's end (Succeeded, Failed, too late, an API server that does not answer) against what
the component does; the slow tests run the job's replica command in two local processes with the `TF_CONFIG` the
operator sets (chief + worker on loopback)."""
import json
import os
import re

import pytest
from tfx import types
from tfx.types import standard_artifacts

from components import diit_trainer, training
from components.diit_trainer_tfjob import TFJOB_KEY, Executor, TFJobDIITTrainer
from components.launchers import REPLICA_EXECUTOR, replica_properties

from local_tfjob import CREATED, RUNNING, SUCCEEDED, FakeTrainingOperator, status
from local_vertex import FakeJobService
from launcher_checks import (artifacts, assert_is_the_diit_trainer_with_its_launcher,
                             assert_runs_the_student_on_the_pipeline_run, component, flags, pipeline_run_artifacts)
from multi_worker_setup import MODEL, SPEC

IMAGE = "registry.example.com/ranking/diit:1"
STRATEGY = {"name": "multi_worker", "shard": "data"}
RESOURCES = {"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"nvidia.com/gpu": 1}}


def _launcher(workers=3, **settings):
    return {TFJOB_KEY: {"namespace": "kubeflow-ranking", "image": IMAGE, "workers": workers, **settings}}


def _run(config, *given):
    Executor().Do(*(given or artifacts("/e", "/t", ["/s"], "/o")), {"custom_config": json.dumps(config)})


def test_the_job_created(monkeypatch):
    operator = FakeTrainingOperator(statuses=[CREATED, RUNNING, SUCCEEDED]).install(monkeypatch)
    training_config = {**MODEL, "feature_spec": SPEC, "strategy": STRATEGY}
    launcher = _launcher(workers=3, name="nightly-student", resources=RESOURCES, service_account="diit-trainer",
                         clean_pod_policy="All", poll_seconds=0.01)
    inputs, outputs = pipeline_run_artifacts()
    _run({**training_config, **launcher}, inputs, outputs)

    assert operator.configs == ["in-cluster"]
    [created] = operator.created
    assert {k: created[k] for k in ("group", "version", "plural", "namespace")} == {
        "group": "kubeflow.org", "version": "v1", "plural": "tfjobs", "namespace": "kubeflow-ranking"}
    job = created["body"]
    name = job["metadata"]["name"]
    assert re.fullmatch(r"nightly-student-[0-9a-f]{8}", name)
    assert job["apiVersion"] == "kubeflow.org/v1" and job["kind"] == "TFJob"
    assert job["metadata"] == {"name": name, "namespace": "kubeflow-ranking"}
    assert job["spec"]["runPolicy"] == {"cleanPodPolicy": "All"}
    replicas = job["spec"]["tfReplicaSpecs"]
    assert sorted(replicas) == ["Chief", "Worker"]
    assert (replicas["Chief"]["replicas"], replicas["Worker"]["replicas"]) == (1, 3)
    command = replicas["Chief"]["template"]["spec"]["containers"][0]["command"]
    for spec in replicas.values():
        assert spec["restartPolicy"] == "Never"
        assert spec["template"]["metadata"] == {"annotations": {"sidecar.istio.io/inject": "false"}}
        assert spec["template"]["spec"] == {
            "serviceAccountName": "diit-trainer",
            "containers": [{"name": "tensorflow", "image": IMAGE, "command": command, "resources": RESOURCES}]}
    # polled until it succeeded, and left in place (the operator cleans its pods)
    assert operator.reads == [("kubeflow.org", "v1", "kubeflow-ranking", "tfjobs", name)] * 3
    assert operator.deleted == []

    assert flags(command)["--executor_class_path"] == REPLICA_EXECUTOR
    assert_runs_the_student_on_the_pipeline_run(command, training_config)


def test_the_replicas_run_the_command_tfx_gives_vertex_replicas(monkeypatch):
    """The same artifacts and exec properties make the same command as TFX's Vertex job client builds."""
    from tfx.extensions.google_cloud_ai_platform import training_clients

    operator = FakeTrainingOperator().install(monkeypatch)
    FakeJobService().install(monkeypatch)
    inputs, outputs = artifacts("/e", "/t", ["/s_a", "/s_b"], "/o", base_model="/b")
    training_config = {**MODEL, "feature_spec": SPEC, "strategy": STRATEGY}
    _run({**training_config, **_launcher(workers=1)}, inputs, outputs)
    [created] = operator.created
    command = created["body"]["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["command"]
    expected = training_clients.VertexJobClient("us-central1").generate_container_command(
        inputs, outputs, replica_properties({}, training_config), REPLICA_EXECUTOR)
    assert command == expected


def test_no_worker_and_the_defaults_outside_a_cluster(monkeypatch):
    """`workers` 0 (the default): a chief alone, no Worker replicas; default name, pod clean-up, no resources or
    service account; outside a cluster the local kubeconfig is used."""
    operator = FakeTrainingOperator().install(monkeypatch, in_cluster=False)
    _run({"feature_spec": SPEC, TFJOB_KEY: {"namespace": "ns", "image": IMAGE}})
    assert operator.configs == ["kubeconfig"]
    [created] = operator.created
    job = created["body"]
    assert re.fullmatch(r"diit-trainer-[0-9a-f]{8}", job["metadata"]["name"])
    assert job["spec"]["runPolicy"] == {"cleanPodPolicy": "Running"}
    assert list(job["spec"]["tfReplicaSpecs"]) == ["Chief"]
    pod = job["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]
    assert list(pod) == ["containers"] and sorted(pod["containers"][0]) == ["command", "image", "name"]


def test_every_run_creates_a_job_of_its_own(monkeypatch):
    operator = FakeTrainingOperator().install(monkeypatch)
    for _ in range(2):
        _run({"feature_spec": SPEC, **_launcher(workers=0)})
    names = [c["body"]["metadata"]["name"] for c in operator.created]
    assert len(set(names)) == 2


def test_a_failed_job_fails_the_component_with_its_message(monkeypatch):
    message = "TFJob kubeflow-ranking/x has failed because 1 Worker replica(s) failed."
    operator = FakeTrainingOperator(
        statuses=[CREATED, RUNNING, status("Created", "Running", "Failed", message=message)]).install(monkeypatch)
    with pytest.raises(RuntimeError) as error:
        _run({"feature_spec": SPEC, "strategy": STRATEGY, **_launcher(workers=1, poll_seconds=0.01)})
    name = operator.created[0]["body"]["metadata"]["name"]
    assert str(error.value) == f"TFJobDIITTrainer: TFJob kubeflow-ranking/{name} failed (TFJobFailed): {message}"
    assert len(operator.reads) == 3 and operator.deleted == []


def test_a_job_that_does_not_end_in_time_is_deleted_and_fails_the_component(monkeypatch):
    operator = FakeTrainingOperator(statuses=[RUNNING]).install(monkeypatch)
    with pytest.raises(TimeoutError, match=r"did not end within timeout_seconds=0.05; it was deleted"):
        _run({"feature_spec": SPEC, **_launcher(workers=0, poll_seconds=0.01, timeout_seconds=0.05)})
    name = operator.created[0]["body"]["metadata"]["name"]
    assert operator.deleted == [("kubeflow.org", "v1", "kubeflow-ranking", "tfjobs", name)]
    assert len(operator.reads) >= 2


def test_a_busy_api_server_is_retried_and_a_refusal_is_not(monkeypatch):
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import ProtocolError

    config = {"feature_spec": SPEC, **_launcher(workers=0, poll_seconds=0.01)}
    busy = [ApiException(status=503, reason="Service Unavailable"), ProtocolError("Connection aborted.")]
    operator = FakeTrainingOperator(statuses=[SUCCEEDED], errors=busy).install(monkeypatch)
    _run(config)
    assert len(operator.reads) == 3  # two errors, then the answer

    refused = FakeTrainingOperator(errors=[ApiException(status=403, reason="Forbidden")]).install(monkeypatch)
    with pytest.raises(ApiException, match="Forbidden"):
        _run(config)
    assert len(refused.reads) == 1

    down = FakeTrainingOperator(errors=[ApiException(status=500, reason="Internal")] * 6).install(monkeypatch)
    with pytest.raises(ApiException, match="Internal"):
        _run(config)
    assert len(down.reads) == 6  # READ_RETRIES retries after the first


# ------------------------------------------------------------------------------------------ incomplete settings
def _with(mapping, value, *path):
    """A deep copy of `mapping` with `value` at `path` (`value` _DROP: without the key)."""
    out = json.loads(json.dumps(mapping))
    node = out
    for key in path[:-1]:
        node = node[key]
    if value is _DROP:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


_DROP = object()
COMPLETE = {"feature_spec": SPEC, "strategy": STRATEGY, **_launcher(workers=1)}
BAD = {
    "no settings": (_with(COMPLETE, _DROP, TFJOB_KEY), "custom_config['tfjob'] is missing"),
    "settings not a dict": (_with(COMPLETE, "ns/image", TFJOB_KEY), "custom_config['tfjob'] is missing"),
    "no namespace": (_with(COMPLETE, _DROP, TFJOB_KEY, "namespace"), "tfjob.namespace is missing"),
    "namespace not a label": (_with(COMPLETE, "Kubeflow_Ranking", TFJOB_KEY, "namespace"),
                              "tfjob.namespace should be a Kubernetes namespace"),
    "no image": (_with(COMPLETE, "", TFJOB_KEY, "image"), "tfjob.image is missing: the replicas' image"),
    "negative workers": (_with(COMPLETE, -1, TFJOB_KEY, "workers"),
                         "tfjob.workers should be a non-negative integer (the replicas beside the chief). "
                         "Received: -1"),
    "workers as text": (_with(COMPLETE, "3", TFJOB_KEY, "workers"), "tfjob.workers should be a non-negative integer"),
    "workers as bool": (_with(COMPLETE, True, TFJOB_KEY, "workers"), "tfjob.workers should be a non-negative integer"),
    "workers fractional": (_with(COMPLETE, 1.5, TFJOB_KEY, "workers"),
                           "tfjob.workers should be a non-negative integer"),
    "parameter servers": (_with(COMPLETE, {"name": "parameter_server"}, "strategy"),
                          "custom_config strategy.name 'parameter_server' needs parameter-server replicas, which this "
                          "launcher does not start (a chief and workers only): use 'multi_worker'"),
    "one worker strategy": (_with(COMPLETE, _DROP, "strategy"),
                            "2 replicas need custom_config strategy.name 'multi_worker' (each replica would otherwise "
                            "train alone). Received: 'default'"),
    "chief alone, multi-worker": (_with(COMPLETE, 0, TFJOB_KEY, "workers"),
                                  "tfjob.workers is 0, and the training operator sets no TF_CONFIG in a job of one "
                                  "replica, which custom_config strategy.name 'multi_worker' needs"),
    "mirrored strategy": (_with(COMPLETE, {"name": "mirrored"}, "strategy"),
                          "2 replicas need custom_config strategy.name 'multi_worker'"),
    "name with capitals": (_with(COMPLETE, "Nightly", TFJOB_KEY, "name"), "tfjob.name should be lowercase letters"),
    "name too long": (_with(COMPLETE, "d" * 41, TFJOB_KEY, "name"), "tfjob.name should be lowercase letters"),
    "name ending in a dash": (_with(COMPLETE, "diit-", TFJOB_KEY, "name"), "tfjob.name should be lowercase letters"),
    "resources not a dict": (_with(COMPLETE, "8 cpus", TFJOB_KEY, "resources"),
                             "tfjob.resources should be Kubernetes container resources"),
    "resources misspelt": (_with(COMPLETE, {"limit": {"cpu": "8"}}, TFJOB_KEY, "resources"),
                           "tfjob.resources should be Kubernetes container resources"),
    "resource amounts not a dict": (_with(COMPLETE, {"limits": "8"}, TFJOB_KEY, "resources"),
                                    "tfjob.resources.limits should be a dict"),
    "empty service account": (_with(COMPLETE, "", TFJOB_KEY, "service_account"),
                              "tfjob.service_account should be the name of a service account"),
    "clean pod policy": (_with(COMPLETE, "Succeeded", TFJOB_KEY, "clean_pod_policy"),
                         "tfjob.clean_pod_policy should be one of ['Running', 'All', 'None']. Received: 'Succeeded'"),
    "no poll interval": (_with(COMPLETE, 0, TFJOB_KEY, "poll_seconds"),
                         "tfjob.poll_seconds should be a positive number of seconds. Received: 0"),
    "timeout as text": (_with(COMPLETE, "1h", TFJOB_KEY, "timeout_seconds"),
                        "tfjob.timeout_seconds should be a positive number of seconds. Received: '1h'"),
    "unknown setting": (_with(COMPLETE, 4, TFJOB_KEY, "replicas"), "unknown tfjob setting(s) ['replicas']"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_an_incomplete_launcher_config_names_the_key(monkeypatch, case):
    config, message = BAD[case]
    operator = FakeTrainingOperator().install(monkeypatch)
    with pytest.raises(ValueError, match="^TFJobDIITTrainer: ") as error:
        _run(config)
    assert message in str(error.value)
    assert operator.configs == [] and operator.created == []  # nothing was sent
    with pytest.raises(ValueError, match="^TFJobDIITTrainer: ") as early:  # and the pipeline does not build
        _component(config)
    assert message in str(early.value)


def _component(config):
    return component(TFJobDIITTrainer, config)


def test_the_component_is_the_diit_trainer_with_the_launcher():
    assert_is_the_diit_trainer_with_its_launcher(TFJobDIITTrainer, Executor, COMPLETE)


def test_an_unknown_training_key_fails_before_anything_is_built_or_sent(monkeypatch):
    """A typo in the DIIT trainer's settings is an error naming it, when the pipeline is built and before a TFJob
    is created; the launcher's own key is accepted by the TFJob launcher only."""
    typo = {**COMPLETE, "learnig_rate": 0.01}
    operator = FakeTrainingOperator().install(monkeypatch)
    with pytest.raises(ValueError, match=r"^TFJobDIITTrainer: unknown custom_config key\(s\) \['learnig_rate'\]"):
        _run(typo)
    assert operator.created == []
    with pytest.raises(ValueError, match=r"unknown custom_config key\(s\) \['learnig_rate'\]"):
        _component(typo)
    local = dict(examples=types.Channel(type=standard_artifacts.Examples),
                 transform_graph=types.Channel(type=standard_artifacts.TransformGraph),
                 source_models={"src_a": types.Channel(type=standard_artifacts.Model)})
    with pytest.raises(ValueError, match=r"^DIITTrainer: unknown custom_config key\(s\) \['tfjob'\]"):
        diit_trainer.DIITTrainer(custom_config={**MODEL, "feature_spec": SPEC, **_launcher()}, **local)


# ----------------------------------------------------------------------------------------- the job, run locally
@pytest.mark.slow  # two TF replicas in subprocesses
def test_the_replicas_train_on_loopback(mw_student_job, tmp_path, monkeypatch):
    """The job's own replica command, in two processes with the operator's TF_CONFIG (a chief and a worker): both
    train, only the chief evaluates and writes the model artifact and the run log."""
    job = mw_student_job
    operator = FakeTrainingOperator(run=True, log_dir=str(tmp_path)).install(monkeypatch)
    out = str(tmp_path / "tfjob")
    _run({**job["config"], "strategy": STRATEGY, **_launcher(workers=1, poll_seconds=0.01)},
         *artifacts(job["examples"], job["transform"], job["teachers"], out))

    assert [r["task"] for r in operator.replicas] == [{"type": "chief", "index": 0}, {"type": "worker", "index": 0}]
    assert [r["proc"].returncode for r in operator.replicas] == [0, 0]
    logs = operator.logs()
    for name in ("chief-0", "worker-0"):  # both trained, distilling from both teachers
        assert "DIIT trainer: 2 teacher(s) ['src_a', 'src_b']" in logs[name], logs[name][-3000:]
    assert "DIIT trainer: student eval" in logs["chief-0"]
    assert "DIIT trainer: student eval" not in logs["worker-0"]
    model = os.path.join(out, "model")
    assert sorted(os.listdir(model)) == [training.SERVING_DIR, training.KERAS_DIR]
    assert os.path.isfile(os.path.join(model, training.SERVING_DIR, "saved_model.pb"))
    assert os.path.isfile(os.path.join(out, "run", "history.json"))
    events = [f for d, _, fs in os.walk(os.path.join(out, "run")) for f in fs if "tfevents" in f]
    assert len(events) == 2  # train/ and eval/ of the chief only
    info = training.read_model_info(model)
    assert info["train_steps"] > 0 and TFJOB_KEY not in json.dumps(info)


@pytest.mark.slow  # two replicas in subprocesses
def test_a_failed_replica_fails_the_component(mw_span, tmp_path, monkeypatch):
    operator = FakeTrainingOperator(run=True, log_dir=str(tmp_path)).install(monkeypatch)
    config = {"strategy": STRATEGY, **_launcher(workers=1, poll_seconds=0.01)}  # no feature_spec: every replica stops
    with pytest.raises(RuntimeError, match=r"failed \(TFJobFailed\): TFJob kubeflow-ranking/diit-trainer-\w+ has "
                                           r"failed because 1 Chief replica\(s\) failed"):
        _run(config, *artifacts(mw_span["examples"], mw_span["transform"], ["/nowhere"], str(tmp_path)))
    assert [r["proc"].returncode != 0 for r in operator.replicas] == [True, True]
    assert "DIIT trainer: custom_config is missing 'feature_spec'" in operator.logs()["chief-0"]
