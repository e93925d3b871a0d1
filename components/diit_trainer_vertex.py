"""`VertexDIITTrainer`: the DIIT trainer run as a Vertex AI custom job with N replicas (multi-worker training).

The component is `DIITTrainer` (same inputs, outputs and `custom_config`) with another executor: instead of
training in its own task container, that executor submits a Vertex AI `CustomJob` whose every replica runs the DIIT
trainer's own executor (`components.diit_trainer.Executor`) on the same artifacts, and waits for it. Vertex sets
`TF_CONFIG` in each replica (pool 0 the `chief`, pool 1 the `worker`s, pool 2 the `ps` tasks), the trainer's
`"multi_worker"` or `"parameter_server"` strategy reads it, and only the chief writes the artifacts
(`components/training.py: is_chief`). With parameter servers the worker and ps replicas serve the chief's training
loop until the job ends, which Vertex ends with its primary replica, the chief.

TFX's machinery does the work, as it does for `tfx.extensions.google_cloud_ai_platform.Trainer`:
`runner.start_cloud_training` builds the job (`training_clients.VertexJobClient`: every pool's container command is
`python -m tfx.scripts.run_executor --executor_class_path components.diit_trainer.Executor --inputs <artifacts JSON>
--outputs <artifacts JSON> --exec-properties <JSON>`), submits it and polls it until it ends; a failed or cancelled
job fails the component. This module only checks the launcher settings and takes them out of the training config
(what it shares with the TFJob launcher is in components/launchers.py).

Launcher settings, in `custom_config` next to the student's settings, under TFX's own keys:
  `ai_platform_training_args` (TRAINING_ARGS_KEY)  the CustomJob: `project`, and `worker_pool_specs` (at the top or
                                                   under `job_spec`): pool 0 with `replica_count` 1 (the chief),
                                                   optional pool 1 with N-1 (the workers), pool 2 (the
                                                   parameter servers, with strategy 'parameter_server'); every pool a
                                                   `machine_spec.machine_type` and a `container_spec.image_uri`
                                                   (an image holding this repository: the Dockerfile's)
  `ai_platform_vertex_region` (VERTEX_REGION_KEY) the region, e.g. "us-central1"
  `ai_platform_enable_vertex` (ENABLE_VERTEX_KEY) optional, true (AI Platform Training, TFX's other target, is not
                                                   offered)
  `ai_platform_training_job_id` (JOB_ID_KEY)      optional display name of the job
A missing or wrong setting fails at construction, and again in the executor, with the key in the message. The
replicas get `custom_config` without these keys. More than one replica needs `"strategy": {"name":
"multi_worker"}` (or `"parameter_server"`, with pool 2) in `custom_config`; the artifacts' uris must be reachable from the replicas (`gs://` on Vertex).

Example:
    pool = {"machine_spec": {"machine_type": "n1-highmem-16"}, "container_spec": {"image_uri": "gcr.io/p/diit:1"}}
    diit_trainer = VertexDIITTrainer(
        examples=..., transform_graph=..., source_models=..., base_model=...,
        custom_config={"feature_spec": spec_dict, **config["student"],
                       "strategy": {"name": "multi_worker", "shard": "data"},
                       VERTEX_REGION_KEY: "us-central1",
                       TRAINING_ARGS_KEY: {"project": "p", "worker_pool_specs": [
                           {**pool, "replica_count": 1}, {**pool, "replica_count": 3}]}}).with_id("diit_trainer")
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Mapping, NamedTuple, Optional

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor, executor_spec
from tfx.extensions.google_cloud_ai_platform import constants, runner
from tfx.extensions.google_cloud_ai_platform.trainer import executor as tfx_vertex_trainer

from components import launchers
from components.launchers import REPLICA_EXECUTOR

TRAINING_ARGS_KEY = tfx_vertex_trainer.TRAINING_ARGS_KEY
JOB_ID_KEY = tfx_vertex_trainer.JOB_ID_KEY
ENABLE_VERTEX_KEY = constants.ENABLE_VERTEX_KEY
VERTEX_REGION_KEY = constants.VERTEX_REGION_KEY
LAUNCHER_KEYS = (TRAINING_ARGS_KEY, JOB_ID_KEY, ENABLE_VERTEX_KEY, VERTEX_REGION_KEY)
# CustomJob fields; every other key of a flat `ai_platform_training_args` belongs to its `job_spec`.
_JOB_FIELDS = ("display_name", "labels", "encryption_spec")
_POOLS = ("the chief", "the workers", "the parameter servers")
ROLE = "VertexDIITTrainer"


class VertexJob(NamedTuple):
    """A checked launcher config: what `runner.start_cloud_training` takes, and the replica count."""
    job_args: dict  # `project` and the CustomJob (`job_spec` with `worker_pool_specs`, ...)
    job_id: Optional[str]
    region: str
    replicas: int


def vertex_job(custom_config: Mapping) -> VertexJob:
    """Check the launcher settings of `custom_config` (see the module docstring); a `ValueError` names the key."""
    training, launcher = launchers.split_config(custom_config, LAUNCHER_KEYS)
    if launcher.get(ENABLE_VERTEX_KEY, True) is not True:
        raise ValueError(f"{ROLE}: custom_config[{ENABLE_VERTEX_KEY!r}] should be true (only Vertex AI is offered). "
                         f"Received: {launcher[ENABLE_VERTEX_KEY]!r}")
    region = launcher.get(VERTEX_REGION_KEY)
    if not region or not isinstance(region, str):
        raise ValueError(f"{ROLE}: custom_config[{VERTEX_REGION_KEY!r}] is missing: the Vertex AI region of the job, "
                         "e.g. 'us-central1'")
    args = launcher.get(TRAINING_ARGS_KEY)
    if not isinstance(args, Mapping):
        raise ValueError(f"{ROLE}: custom_config[{TRAINING_ARGS_KEY!r}] is missing: the Vertex AI CustomJob, with "
                         "`project` and `worker_pool_specs`")
    if not args.get("project"):
        raise ValueError(f"{ROLE}: {TRAINING_ARGS_KEY}.project is missing: the Google Cloud project of the job")
    args = copy.deepcopy(dict(args))
    if "job_spec" in args:
        where = f"{TRAINING_ARGS_KEY}.job_spec.worker_pool_specs"
        spec = args["job_spec"] = dict(args["job_spec"] or {})
    else:  # the flat form (a CustomJobSpec): TFX's older form, the one of its Trainer's examples
        where = f"{TRAINING_ARGS_KEY}.worker_pool_specs"
        spec = {k: args.pop(k) for k in list(args) if k not in ("project",) + _JOB_FIELDS}
        args["job_spec"] = spec
    pools = spec.get("worker_pool_specs")
    if not pools or not isinstance(pools, list):
        raise ValueError(f"{ROLE}: {where} is missing: pool 0 the chief (replica_count 1), optional pool 1 the "
                         "workers")
    parameter_servers = (training.get("strategy") or {}).get("name") == "parameter_server"
    if len(pools) > len(_POOLS) or (len(pools) == 3 and not parameter_servers):
        raise ValueError(f"{ROLE}: {where} has {len(pools)} pools; pool 2 (parameter servers) needs strategy.name "
                         "'parameter_server', and evaluators (pool 3) are not offered: give pool 0 (the chief), "
                         "optionally pool 1 (the workers), and pool 2 with the 'parameter_server' strategy")
    if parameter_servers and len(pools) != 3:
        raise ValueError(f"{ROLE}: strategy.name 'parameter_server' needs pool 1 (the workers) and pool 2 (the "
                         f"parameter servers) in {where}. Received {len(pools)} pool(s)")
    counts = [_check_pool(pool, f"{where}[{k}]", _POOLS[k]) for k, pool in enumerate(pools)]
    if counts[0] != 1:
        raise ValueError(f"{ROLE}: {where}[0].replica_count should be 1 (pool 0 is the chief). Received: {counts[0]}")
    replicas = sum(counts)
    launchers.check_strategy(training, replicas, ROLE)
    return VertexJob(job_args=args, job_id=launcher.get(JOB_ID_KEY), region=region, replicas=replicas)


def _check_pool(pool: Any, where: str, role: str) -> int:
    """The replica count of one worker pool, after checking the settings a replica of this trainer needs."""
    if not isinstance(pool, Mapping):
        raise ValueError(f"{ROLE}: {where} should be a WorkerPoolSpec dict ({role}). Received: {pool!r}")
    if not (pool.get("machine_spec") or {}).get("machine_type"):
        raise ValueError(f"{ROLE}: {where}.machine_spec.machine_type is missing ({role}), e.g. 'n1-highmem-16'")
    container = pool.get("container_spec") or {}
    if not container.get("image_uri"):
        raise ValueError(f"{ROLE}: {where}.container_spec.image_uri is missing ({role}): an image holding this "
                         "repository (the Dockerfile's)")
    for key in ("command", "args"):
        if key in container:
            raise ValueError(f"{ROLE}: {where}.container_spec.{key} is set; the launcher sets the replicas' command "
                             f"(TFX's run_executor with {REPLICA_EXECUTOR})")
    count = pool.get("replica_count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"{ROLE}: {where}.replica_count should be a positive integer ({role}). Received: {count!r}")
    return count


class Executor(base_executor.BaseExecutor):
    """Submits the Vertex AI custom job whose replicas run `components.diit_trainer.Executor`, and waits for it."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        job, training = launchers.launcher_config(exec_properties, vertex_job, LAUNCHER_KEYS, ROLE)  # before paying
        replica_properties = launchers.replica_properties(exec_properties, training)
        logging.info("%s: a Vertex AI custom job in %s, %d replica(s) running %s", ROLE, job.region, job.replicas,
                     REPLICA_EXECUTOR)
        runner.start_cloud_training(input_dict, output_dict, replica_properties, REPLICA_EXECUTOR,
                                    copy.deepcopy(job.job_args), job.job_id, None, enable_vertex=True,
                                    vertex_region=job.region)


class VertexDIITTrainer(launchers.LaunchedDIITTrainer):
    """`DIITTrainer` whose training runs as a Vertex AI custom job with N replicas (see the module docstring)."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
    EXTRA_CONFIG_KEYS = LAUNCHER_KEYS
    check_launcher = staticmethod(vertex_job)  # an incomplete launcher config fails when the pipeline is built
