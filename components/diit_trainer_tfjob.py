"""`TFJobDIITTrainer`: the DIIT trainer run as a Kubeflow Training Operator `TFJob` with N replicas (multi-worker
training on Kubeflow Pipelines without Vertex AI).

The component is `DIITTrainer` (same inputs, outputs and `custom_config`) with another executor: instead of
training in its own task container, that executor creates a `TFJob` (`kubeflow.org/v1`) whose every replica runs
the DIIT trainer's own executor (`components.diit_trainer.Executor`) on the same artifacts, and waits for it. The
training operator starts one pod per replica and sets `TF_CONFIG` in each (`Chief` the `chief`, `Worker` the
`worker`s), the trainer's `"multi_worker"` strategy reads it, and only the chief writes the artifacts
(`components/training.py: is_chief`).

Each replica's container command is the one TFX gives Vertex's replicas (`components/launchers.py:
replica_command`): `python -m tfx.scripts.run_executor --executor_class_path components.diit_trainer.Executor
--inputs <artifacts JSON> --outputs <artifacts JSON> --exec-properties <JSON>`, with `custom_config` without the
launcher's settings. The executor creates the job with the Kubernetes API (`CustomObjectsApi`, the in-cluster
config of the pipeline's pod, else the local kubeconfig) and polls it until a `Succeeded` condition (the component
succeeds) or a `Failed` one (it fails with the condition's message); past `timeout_seconds` it deletes the job and
fails. The pipeline's service account needs create, get and delete on `tfjobs.kubeflow.org` in the namespace.

Launcher settings, in `custom_config` next to the student's settings, under one key, `"tfjob"` (TFJOB_KEY):
  `namespace`         the namespace of the job (the pipeline's, usually)
  `image`             the replicas' image: one holding this repository (the Dockerfile's); the command runs in its
                      workdir, where `components` imports
  `workers`           optional, N-1 >= 0 (default 0): the replicas beside the chief
  `name`              optional prefix of the job's name (default "diit-trainer"; a random suffix is added): lowercase
                      letters, digits and '-', at most 40 characters
  `resources`         optional Kubernetes resources of each replica's container (`{"requests": {...}, "limits":
                      {...}}`, e.g. `{"limits": {"nvidia.com/gpu": 1}}`)
  `service_account`   optional service account of the replicas' pods (their access to the artifacts' storage)
  `clean_pod_policy`  optional, what the operator deletes when the job ends: "Running" (default: the pods still
                      running, the finished ones keep their logs), "All" or "None"
  `poll_seconds`      optional, between two reads of the job's status (default 30)
  `timeout_seconds`   optional, how long to wait for the job (default 86400, one day)
A missing or wrong setting fails at construction, and again in the executor, with the key in the message. More
than one replica needs `"strategy": {"name": "multi_worker"}` in `custom_config`, and one replica another strategy
(the operator sets no `TF_CONFIG` in a job of one replica); the artifacts' uris must be reachable from the
replicas' pods (`gs://` or `s3://` storage they may read and write, or a volume they all mount). The pods are
annotated `sidecar.istio.io/inject: "false"`: Kubeflow's user namespaces inject Istio sidecars, with which a TFJob
does not run (https://www.kubeflow.org/docs/components/training/tftraining/). A pipeline run cancelled while the job
runs leaves the job running to its end (nothing here deletes it then).

Example:
    diit_trainer = TFJobDIITTrainer(
        examples=..., transform_graph=..., source_models=..., base_model=...,
        custom_config={"feature_spec": spec_dict, **config["student"],
                       "strategy": {"name": "multi_worker", "shard": "data"},
                       TFJOB_KEY: {"namespace": "kubeflow-user", "image": "gcr.io/p/diit:1", "workers": 3,
                                   "resources": {"limits": {"cpu": "8", "memory": "32Gi"}}}}).with_id("diit_trainer")
"""
from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor, executor_spec

from components import launchers
from components.launchers import REPLICA_EXECUTOR

TFJOB_KEY = "tfjob"
LAUNCHER_KEYS = (TFJOB_KEY,)
GROUP, VERSION, PLURAL, KIND = "kubeflow.org", "v1", "tfjobs", "TFJob"
CONTAINER = "tensorflow"  # the operator finds the replica's container (and its port) by this name
CLEAN_POD_POLICIES = ("Running", "All", "None")
DEFAULTS = {"workers": 0, "name": "diit-trainer", "resources": None, "service_account": None,
            "clean_pod_policy": "Running", "poll_seconds": 30, "timeout_seconds": 86400}
REQUIRED = {"namespace": "Kubernetes namespace of the job",
            "image": "replicas' image, one holding this repository (the Dockerfile's)"}
SETTINGS = tuple(REQUIRED) + tuple(DEFAULTS)
NAME_PREFIX = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")
NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # a DNS label, as Kubernetes requires
POD_ANNOTATIONS = {"sidecar.istio.io/inject": "false"}
READ_RETRIES = 5  # answers in a row of a busy API server that reading the job's status tolerates
ROLE = "TFJobDIITTrainer"


class TFJobSettings(NamedTuple):
    """The checked launcher settings (see the module docstring)."""
    namespace: str
    image: str
    workers: int
    name: str
    resources: Optional[dict]
    service_account: Optional[str]
    clean_pod_policy: str
    poll_seconds: float
    timeout_seconds: float


def tfjob_settings(custom_config: Mapping) -> TFJobSettings:
    """Check the launcher settings of `custom_config` (see the module docstring); a `ValueError` names the key."""
    training, launcher = launchers.split_config(custom_config, LAUNCHER_KEYS)
    block = launcher.get(TFJOB_KEY)
    if not isinstance(block, Mapping):
        raise ValueError(f"{ROLE}: custom_config[{TFJOB_KEY!r}] is missing: the TFJob's settings, at least "
                         f"`namespace` and `image`. Received: {block!r}")
    unknown = sorted(set(block) - set(SETTINGS))
    if unknown:
        raise ValueError(f"{ROLE}: unknown {TFJOB_KEY} setting(s) {unknown}; known: {list(SETTINGS)}")
    for key, meaning in REQUIRED.items():
        if not block.get(key) or not isinstance(block[key], str):
            raise ValueError(f"{ROLE}: {TFJOB_KEY}.{key} is missing: the {meaning}. Received: {block.get(key)!r}")
    settings = TFJobSettings(**{**DEFAULTS, **block})
    for key, check in _CHECKS.items():
        check(getattr(settings, key), f"{TFJOB_KEY}.{key}")
    launchers.check_strategy(training, settings.workers + 1, ROLE)
    if (training.get("strategy") or {}).get("name") == "parameter_server":
        raise ValueError(f"{ROLE}: custom_config strategy.name 'parameter_server' needs parameter-server replicas, "
                         "which this launcher does not start (a chief and workers only): use 'multi_worker'")
    if settings.workers == 0 and (training.get("strategy") or {}).get("name") == "multi_worker":
        raise ValueError(f"{ROLE}: {TFJOB_KEY}.workers is 0, and the training operator sets no TF_CONFIG in a job of "
                         "one replica, which custom_config strategy.name 'multi_worker' needs: give workers >= 1, or "
                         "another strategy")
    return settings


def _check_namespace(value: Any, where: str) -> None:
    if not NAMESPACE.match(value):
        raise ValueError(f"{ROLE}: {where} should be a Kubernetes namespace: lowercase letters, digits and '-', at "
                         f"most 63 characters. Received: {value!r}")


def _check_workers(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{ROLE}: {where} should be a non-negative integer (the replicas beside the chief). "
                         f"Received: {value!r}")


def _check_name(value: Any, where: str) -> None:
    if not isinstance(value, str) or not NAME_PREFIX.match(value):
        raise ValueError(f"{ROLE}: {where} should be lowercase letters, digits and '-', starting with a letter, at "
                         f"most 40 characters (a random suffix is added). Received: {value!r}")


def _check_resources(value: Any, where: str) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping) or not set(value) <= {"requests", "limits"}:
        raise ValueError(f"{ROLE}: {where} should be Kubernetes container resources, a dict of `requests` and "
                         f"`limits`. Received: {value!r}")
    for key, amounts in value.items():
        if not isinstance(amounts, Mapping):
            raise ValueError(f"{ROLE}: {where}.{key} should be a dict (resource: amount). Received: {amounts!r}")


def _check_service_account(value: Any, where: str) -> None:
    if value is not None and (not value or not isinstance(value, str)):
        raise ValueError(f"{ROLE}: {where} should be the name of a service account. Received: {value!r}")


def _check_clean_pod_policy(value: Any, where: str) -> None:
    if value not in CLEAN_POD_POLICIES:
        raise ValueError(f"{ROLE}: {where} should be one of {list(CLEAN_POD_POLICIES)}. Received: {value!r}")


def _check_seconds(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{ROLE}: {where} should be a positive number of seconds. Received: {value!r}")


_CHECKS: Dict[str, Callable[[Any, str], None]] = {
    "namespace": _check_namespace, "workers": _check_workers, "name": _check_name, "resources": _check_resources,
    "service_account": _check_service_account, "clean_pod_policy": _check_clean_pod_policy,
    "poll_seconds": _check_seconds, "timeout_seconds": _check_seconds}


# ------------------------------------------------------------------------------------------------- the manifest
def job_name(prefix: str) -> str:
    """A fresh name for the job: `prefix` and 8 random hex digits (a rerun of the component creates a new job)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def tfjob_manifest(settings: TFJobSettings, name: str, command: List[str]) -> dict:
    """The `TFJob`: `Chief` one replica, `Worker` `settings.workers` (left out when 0), each running `command`."""
    replicas = {"Chief": _replica_spec(settings, 1, command)}
    if settings.workers:
        replicas["Worker"] = _replica_spec(settings, settings.workers, command)
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND,
            "metadata": {"name": name, "namespace": settings.namespace},
            "spec": {"runPolicy": {"cleanPodPolicy": settings.clean_pod_policy}, "tfReplicaSpecs": replicas}}


def _replica_spec(settings: TFJobSettings, count: int, command: List[str]) -> dict:
    container = {"name": CONTAINER, "image": settings.image, "command": list(command)}
    if settings.resources:
        container["resources"] = json.loads(json.dumps(settings.resources))
    pod = {"containers": [container]}
    if settings.service_account:
        pod["serviceAccountName"] = settings.service_account
    return {"replicas": count, "restartPolicy": "Never",  # a failed replica fails the job, hence the component
            "template": {"metadata": {"annotations": dict(POD_ANNOTATIONS)}, "spec": pod}}


# ---------------------------------------------------------------------------------------------- the Kubernetes API
def kubernetes_api():
    """`CustomObjectsApi` with the pod's in-cluster config (the pipeline's service account), or outside a cluster
    the local kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        logging.info("%s: not in a cluster; using the local kubeconfig", ROLE)
        config.load_kube_config()
    return client.CustomObjectsApi()


def finished(job: Mapping) -> Optional[dict]:
    """The job's `Succeeded` or `Failed` condition (status "True"), or None while it runs."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Succeeded", "Failed") and str(condition.get("status")) == "True":
            return dict(condition)
    return None


def _progress(job: Mapping) -> str:
    """What the log says of a running job: its latest condition and its replicas' states."""
    status = job.get("status") or {}
    latest = (status.get("conditions") or [{}])[-1]
    return f"{latest.get('type', 'no condition yet')} {json.dumps(status.get('replicaStatuses') or {}, sort_keys=True)}"


def wait_for(api, settings: TFJobSettings, name: str, clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> dict:
    """Poll the job until it ends. Returns its `Succeeded` condition; a `Failed` one is a `RuntimeError` naming
    the job and the condition's message; past `settings.timeout_seconds` the job is deleted and it is a
    `TimeoutError`."""
    where = f"TFJob {settings.namespace}/{name}"
    deadline, said = clock() + settings.timeout_seconds, None
    while True:
        job = _read_job(api, settings, name, sleep)
        condition = finished(job)
        if condition and condition["type"] == "Succeeded":
            logging.info("%s: %s succeeded", ROLE, where)
            return condition
        if condition:
            raise RuntimeError(f"{ROLE}: {where} failed ({condition.get('reason', 'no reason')}): "
                               f"{condition.get('message', 'no message')}")
        progress = _progress(job)
        if progress != said:
            logging.info("%s: %s %s", ROLE, where, progress)
            said = progress
        if clock() >= deadline:
            api.delete_namespaced_custom_object(group=GROUP, version=VERSION, namespace=settings.namespace,
                                                plural=PLURAL, name=name)
            raise TimeoutError(f"{ROLE}: {where} did not end within timeout_seconds={settings.timeout_seconds}; "
                               "it was deleted")
        sleep(settings.poll_seconds)


def _read_job(api, settings: TFJobSettings, name: str, sleep: Callable[[float], None]) -> dict:
    """The job as the API server has it now. An answer of a busy or restarting API server (5xx, no answer) is
    retried after `poll_seconds`, up to `READ_RETRIES` times in a row; any other error (403: the service account
    may not get tfjobs; 404: the job was deleted) fails at once."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    failures = 0
    while True:
        try:
            return api.get_namespaced_custom_object(group=GROUP, version=VERSION, namespace=settings.namespace,
                                                    plural=PLURAL, name=name)
        except (ApiException, HTTPError) as error:
            failures += 1
            transient = not isinstance(error, ApiException) or not error.status or error.status >= 500
            if not transient or failures > READ_RETRIES:
                raise
            logging.warning("%s: reading TFJob %s/%s failed (%s); retrying in %ss", ROLE, settings.namespace, name,
                            str(error).strip().splitlines()[0], settings.poll_seconds)
            sleep(settings.poll_seconds)


# ------------------------------------------------------------------------------------------------ the executor
class Executor(base_executor.BaseExecutor):
    """Creates the TFJob whose replicas run `components.diit_trainer.Executor`, and waits for it."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        # before the cluster's machines are taken
        settings, training = launchers.launcher_config(exec_properties, tfjob_settings, LAUNCHER_KEYS, ROLE)
        command = launchers.replica_command(input_dict, output_dict,
                                            launchers.replica_properties(exec_properties, training))
        name = job_name(settings.name)
        api = kubernetes_api()
        api.create_namespaced_custom_object(group=GROUP, version=VERSION, namespace=settings.namespace,
                                            plural=PLURAL, body=tfjob_manifest(settings, name, command))
        logging.info("%s: created TFJob %s/%s, %d replica(s) running %s", ROLE, settings.namespace, name,
                     settings.workers + 1, REPLICA_EXECUTOR)
        wait_for(api, settings, name)


class TFJobDIITTrainer(launchers.LaunchedDIITTrainer):
    """`DIITTrainer` whose training runs as a Kubeflow `TFJob` with N replicas (see the module docstring)."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
    EXTRA_CONFIG_KEYS = LAUNCHER_KEYS
    check_launcher = staticmethod(tfjob_settings)  # an incomplete launcher config fails when the pipeline is built
