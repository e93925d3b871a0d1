"""Parameter-server training: the model's variables live on "ps" tasks, "worker" tasks run the train steps, and
the coordinator (the process that calls `fit`) schedules them (`tf.distribute.experimental.ParameterServerStrategy`
with a `tf.distribute.coordinator.ClusterCoordinator`). For embedding tables that outgrow one worker's memory:
unlike `MultiWorkerMirroredStrategy`, no worker holds a copy of the variables.

Keras 3's `fit` has no parameter-server path, so `fit` here is the custom loop around the model's own
`train_step` (DIIT's two-phase step or the plain CTR step, unchanged): each scheduled function runs one step on
one worker, on that worker's copy of the input (`dataset_fn`), and the workers update the variables on the
parameter servers asynchronously (each step reads the variables as they are when it starts; `num_replicas_in_sync`
is 1, so a step's loss is its own batch's mean).

Limits, measured with TensorFlow 2.16 / Keras 3 (tests/diit_tf/test_parameter_servers.py):
- **One table per parameter server.** Variables are placed whole, round-robin over the "ps" tasks. A
  `variable_partitioner` (one table sharded over several tasks) fails in Keras 3's variables ("'ShardedVariable'
  object has no attribute 'handle'"), so `strategy` refuses one; each table must fit in one task's memory.
- **The optimizer's step counter undercounts.** With two workers its `iterations` ends below the number of steps
  run (149-153 of 200 in a measurement), as concurrent increments overwrite each other; Adam's bias correction
  reads it. The steps themselves all run (`fit` returns what each one reported).

Example (the coordinator; every "worker" and "ps" task runs `python -m diit_tf.parameter_servers` with its own
`TF_CONFIG`):
    strategy = parameter_servers.strategy()                 # the cluster from TF_CONFIG
    with strategy.scope():
        model = DIITModel(teachers, student, DIITConfig())
        model.compile(optimizer="adam")
    history = parameter_servers.fit(model, dataset_fn, steps=1000, strategy=strategy)
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Callable, Optional

import tensorflow as tf

TASKS = ("worker", "ps")


def _tf_config(tf_config: Optional[dict]) -> dict:
    if tf_config is not None:
        return tf_config
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ValueError("TF_CONFIG is not set: parameter-server training needs the cluster "
                         '({"cluster": {"worker": [...], "ps": [...]}, "task": {"type": ..., "index": ...}})')
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON ({err}). Received: {text[:200]!r}") from None


def _cluster(config: dict) -> dict:
    cluster = config.get("cluster") or {}
    missing = [job for job in TASKS if not cluster.get(job)]
    if missing:
        raise ValueError(f"TF_CONFIG's cluster has no {' and no '.join(repr(j) for j in missing)} task: "
                         f"parameter-server training needs both. Received jobs: {sorted(cluster)}")
    return cluster


def serve(tf_config: Optional[dict] = None, start_only: bool = False):
    """Run this process's "worker" or "ps" task of the cluster in `tf_config` (default: `$TF_CONFIG`): start its
    gRPC server and block (`start_only`: return the started `tf.distribute.Server`). The coordinator's task
    ("chief") does not serve: it calls `fit`."""
    config = _tf_config(tf_config)
    cluster = _cluster(config)
    task = config.get("task") or {}
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in TASKS:
        raise ValueError(f"TF_CONFIG's task type should be one of {list(TASKS)} to serve (the chief runs the "
                         f"training loop instead). Received: {kind!r}")
    if not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise ValueError(f"TF_CONFIG's task index should be in [0, {len(cluster[kind])}) for the "
                         f"{len(cluster[kind])} {kind!r} task(s). Received: {index!r}")
    server = tf.distribute.Server(tf.train.ClusterSpec(cluster), job_name=kind, task_index=index, protocol="grpc",
                                  start=True)
    if start_only:
        return server
    server.join()


def strategy(tf_config: Optional[dict] = None, **kwargs) -> tf.distribute.experimental.ParameterServerStrategy:
    """The coordinator's `ParameterServerStrategy` over the cluster in `tf_config` (default: `$TF_CONFIG`).
    `variable_partitioner` is refused (see the module docstring: Keras 3 variables cannot be sharded)."""
    if kwargs.get("variable_partitioner") is not None:
        raise ValueError("variable_partitioner is not supported: Keras 3 variables cannot be sharded over parameter "
                         "servers (each table is placed whole on one \"ps\" task)")
    kwargs.pop("variable_partitioner", None)
    cluster = _cluster(_tf_config(tf_config))
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(tf.train.ClusterSpec(cluster), rpc_layer="grpc")
    return tf.distribute.experimental.ParameterServerStrategy(resolver, **kwargs)


def _build_optimizers(model) -> None:
    """Create every optimizer's slots before the first step (a scheduled step cannot create variables): DIIT's
    student and discriminator optimizers over the variables each phase owns, else the model's one optimizer."""
    if hasattr(model, "phase2_variables"):
        model.optimizer.build(model.phase2_variables)
        if getattr(model, "discriminator_optimizer", None) is not None and model.diit_config.use_adversarial:
            model.discriminator_optimizer.build(model.phase1_variables)
    else:
        model.optimizer.build(model.trainable_variables)


def fit(model, dataset_fn: Callable[[], tf.data.Dataset], steps: int, strategy, log=None,
        log_every: int = 0) -> dict:
    """Run `steps` of `model.train_step` on the workers of `strategy` (the model and its optimizers created
    under `strategy.scope()`; `compile` called). `dataset_fn()` builds one worker's input (called on each worker;
    it must repeat for as many steps as that worker may run). Returns `{"steps", "losses"}`: the `"loss"` each
    step reported (Keras' running mean of the train loss, whose tracker lives on the parameter servers too), in the
    order the steps were scheduled. `log(text)` every `log_every` steps, when given."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"`steps` should be a positive integer. Received: {steps!r}")
    if not isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy):
        raise ValueError("parameter_servers.fit needs a ParameterServerStrategy (parameter_servers.strategy()). "
                         f"Received: {type(strategy).__name__}")
    with strategy.scope():
        _build_optimizers(model)
    coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
    iterator = iter(coordinator.create_per_worker_dataset(dataset_fn))

    @tf.function
    def step(per_worker):
        return strategy.run(lambda batch: model.train_step(batch)["loss"], args=(next(per_worker),))

    results = []
    for i in range(steps):
        results.append(coordinator.schedule(step, args=(iterator,)))
        if log is not None and log_every and (i + 1) % log_every == 0:
            log(f"parameter servers: {i + 1}/{steps} steps scheduled")
    coordinator.join()
    return {"steps": steps, "losses": [float(r.fetch()) for r in results]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m diit_tf.parameter_servers",
        description="Run this machine's \"worker\" or \"ps\" task of a parameter-server cluster: start its gRPC "
                    "server from TF_CONFIG and block. The chief runs the training loop (diit_tf.parameter_servers.fit).")
    parser.parse_args(argv)
    try:
        serve()
    except ValueError as err:
        parser.error(str(err))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
