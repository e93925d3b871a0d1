"""What the source trainers and the DIIT trainer share: the model artifact (the Keras backbone kept next to each
exported SavedModel, or a placeholder for a source that has no model yet), warm start, the distribution strategy
(one device, mirrored, or multi-worker from `TF_CONFIG`) with the chief as the only writer, the NaN guard, the
streaming evaluation, and the run log. The input pipelines are in `diit_tf/data/streaming.py`; TensorBoard logs in
`components/tensorboard.py`.

Model artifact layout (every trainer of the pipeline writes it):

    <model_uri>/Format-Serving/        the SavedModel (diit_tf.export.export_student), what TFMA and the pusher use
    <model_uri>/keras/backbone.keras   the Keras 3 backbone: teachers are reloaded from it (a SavedModel signature
                                       gives no representation), and the next period warm-starts from it
    <model_uri>/keras/model_info.json  role, domain, backbone, warm start source, rows, metrics

A source domain without rows in a span keeps its previous model (its artifact is copied, `kept_previous_model`
in model_info.json); with no previous model either, the trainer writes a placeholder (`trained: false`, no backbone,
`Format-Serving/NO_MODEL`) that the DIIT trainer leaves out of the period's teachers and the next period does not
warm-start from.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from typing import Mapping, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from diit_tf.counts import positive_count

SERVING_DIR = "Format-Serving"
KERAS_DIR = "keras"
BACKBONE_FILE = "backbone.keras"
INFO_FILE = "model_info.json"
NO_MODEL_FILE = "NO_MODEL"
AUC_THRESHOLDS = 10_000  # streaming AUC buckets (TFMA's default)


# --------------------------------------------------------------------------------------------- model artifacts
def model_uri_of(serving_model_dir: str) -> str:
    """`<model_uri>/Format-Serving` -> `<model_uri>`."""
    path = os.fspath(serving_model_dir).rstrip("/")
    return os.path.dirname(path) if os.path.basename(path) == SERVING_DIR else path


def backbone_path(model_uri: str) -> str:
    return os.path.join(model_uri, KERAS_DIR, BACKBONE_FILE)


def read_model_info(model_uri: str) -> dict:
    path = os.path.join(model_uri, KERAS_DIR, INFO_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"model artifact {model_uri!r} has no {KERAS_DIR}/{INFO_FILE}: it was not written by "
                                "a DIIT pipeline trainer")
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def has_model(model_uri: str) -> bool:
    """Whether the artifact holds a trained backbone (False for a placeholder of a source with no rows yet)."""
    return tf.io.gfile.exists(backbone_path(model_uri))


def write_info(model_uri: str, info: Mapping) -> None:
    keras_dir = os.path.join(model_uri, KERAS_DIR)
    tf.io.gfile.makedirs(keras_dir)
    with tf.io.gfile.GFile(os.path.join(keras_dir, INFO_FILE), "w") as f:
        f.write(json.dumps(_jsonable(info), indent=2))


def save_backbone(model: keras.Model, model_uri: str, info: Mapping) -> None:
    """Write `<model_uri>/keras/backbone.keras` and `model_info.json` (through a temporary name, then renamed)."""
    keras_dir = os.path.join(model_uri, KERAS_DIR)
    tf.io.gfile.makedirs(keras_dir)
    tmp = os.path.join(keras_dir, f".tmp-{BACKBONE_FILE}")
    model.save(tmp)
    tf.io.gfile.rename(tmp, backbone_path(model_uri), overwrite=True)
    write_info(model_uri, info)


def keep_previous_model(previous_uri: str, model_uri: str, info: Mapping) -> None:
    """Copy the previous model artifact (SavedModel and Keras backbone) into `model_uri`, with a new model_info."""
    for part in (SERVING_DIR, KERAS_DIR):
        _copy_tree(os.path.join(previous_uri, part), os.path.join(model_uri, part))
    write_info(model_uri, info)


def write_placeholder(model_uri: str, info: Mapping) -> None:
    """An artifact without a model (`trained: false`): TFX needs `Format-Serving` to exist, so it holds a note."""
    serving = os.path.join(model_uri, SERVING_DIR)
    tf.io.gfile.makedirs(serving)
    with tf.io.gfile.GFile(os.path.join(serving, NO_MODEL_FILE), "w") as f:
        f.write(f"{info.get('reason', 'no model')}\n")
    write_info(model_uri, {**info, "trained": False})


def _copy_tree(source: str, target: str) -> None:
    for directory, _, files in tf.io.gfile.walk(source):
        relative = os.path.relpath(directory, source)
        out = os.path.normpath(os.path.join(target, relative))
        tf.io.gfile.makedirs(out)
        for name in files:
            tf.io.gfile.copy(os.path.join(directory, name), os.path.join(out, name), overwrite=True)


def load_backbone(model_uri: str) -> keras.Model:
    import diit_tf.layers  # noqa: F401  (registers the custom layers for deserialization)

    path = backbone_path(model_uri)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"model artifact {model_uri!r} has no Keras backbone at {path!r}")
    return keras.models.load_model(path, compile=False)


def previous_model(base_model_uri: Optional[str], role: str, log=None) -> Optional[str]:
    """`base_model_uri` when it holds a trained backbone; None (training from scratch) for no artifact or a
    placeholder."""
    if not base_model_uri:
        return None
    if not has_model(base_model_uri):
        if log:
            log(f"{role}: the previous model artifact {base_model_uri} holds no model (no rows yet); training "
                "from scratch")
        return None
    return base_model_uri


def warm_start(model: keras.Model, base_model_uri: Optional[str], role: str) -> Optional[str]:
    """Copy the weights of the backbone saved under `base_model_uri` into `model`; returns that uri (or None)."""
    if not base_model_uri:
        return None
    previous = load_backbone(base_model_uri)
    ours, theirs = model.get_weights(), previous.get_weights()
    shapes = [w.shape for w in ours], [w.shape for w in theirs]
    if shapes[0] != shapes[1]:
        raise ValueError(f"{role}: cannot warm-start from {base_model_uri!r}: its backbone has weight shapes "
                         f"{shapes[1]} but the configured one has {shapes[0]} (the architecture changed; start a new "
                         "pipeline root to train from scratch)")
    model.set_weights(theirs)
    return base_model_uri


def split_files(examples: Sequence, split: str) -> list:
    """The files of `split` of an `Examples` artifact list (Transform's `transformed_examples`)."""
    from tfx.types import artifact_utils

    from diit_tf.data.streaming import expand_files

    return expand_files([os.path.join(artifact_utils.get_split_uri(list(examples), split), "*")])


# --------------------------------------------------------------------------------------------------- strategy
STRATEGIES = ("default", "mirrored", "one_device", "multi_worker", "parameter_server")
SHARD_POLICIES = {"auto": "AUTO", "file": "FILE", "data": "DATA", "off": "OFF"}


def strategy_from_config(config: Optional[Mapping]) -> tuple:
    """`(strategy, shard)` from a trainer config's `strategy` block (`{"name", "devices", "shard"}`)."""
    block = dict(config or {"name": "default"})
    shard = block.pop("shard", "auto") or "auto"
    return make_strategy(**block), shard


def make_strategy(name: str = "default", devices: Optional[Sequence[str]] = None) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy chosen by config: "default" (one device), "mirrored" (local devices),
    "one_device", or "multi_worker" (`MultiWorkerMirroredStrategy`, cluster and task from `TF_CONFIG`, as set by
    Vertex AI / Kubeflow's TFJob). Create it before any other TensorFlow op of the process: a multi-worker strategy
    configures the runtime's collective ops, which must happen at startup."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=list(devices) if devices else None)
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(device=(devices or ["/cpu:0"])[0])
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("`strategy.name` 'multi_worker' needs TF_CONFIG (the cluster and this task), as set by "
                             "Vertex AI or Kubeflow's TFJob for each worker")
        return _multi_worker_strategy()
    if name == "parameter_server":
        from diit_tf import parameter_servers

        if not os.environ.get("TF_CONFIG"):
            raise ValueError("`strategy.name` 'parameter_server' needs TF_CONFIG (a cluster with \"worker\" and "
                             "\"ps\" tasks and this task, the chief), as set by Vertex AI or Kubeflow's TFJob")
        return parameter_servers.strategy()
    raise ValueError(f"`strategy.name` should be one of {list(STRATEGIES)}. Received: {name!r}")


def serves_parameter_server_task(block: Optional[Mapping], role: str) -> bool:
    """With `strategy.name` "parameter_server", a "worker" or "ps" task of the cluster (`TF_CONFIG`) does not run
    the trainer: it starts its server and blocks, while the chief runs the training loop (the platform ends the
    task when the chief's job ends). False for every other process, which then trains as usual."""
    if (block or {}).get("name") != "parameter_server":
        return False
    task = (json.loads(os.environ.get("TF_CONFIG") or "{}").get("task") or {})
    if task.get("type") not in ("worker", "ps"):
        return False
    from absl import logging

    from diit_tf import parameter_servers

    logging.info("%s: %s task %s of a parameter-server cluster: serving the chief's training loop", role,
                 task.get("type"), task.get("index", 0))
    parameter_servers.serve()
    return True


def _multi_worker_strategy() -> tf.distribute.Strategy:
    """`MultiWorkerMirroredStrategy` whose `reduce` accepts `axis=0` on a scalar.

    Under a multi-worker strategy Keras 3.12's `fit` reduces every number `train_step` returns with
    `strategy.reduce("MEAN", value, axis=0)` (tensorflow/tensorflow#72388), which fails on the scalars a train step
    returns ("Invalid reduction dimension 0 for input with 0 dimensions"). For a scalar the mean over the replicas
    is what is meant: reduce it without an axis."""

    class MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis=None):
            if axis is not None and self.experimental_local_results(value)[0].shape.rank == 0:
                axis = None
            return super().reduce(reduce_op, value, axis=axis)

    return MultiWorkerStrategy()


def with_shard_policy(dataset: tf.data.Dataset, shard: str = "auto") -> tf.data.Dataset:
    """How a multi-worker strategy splits `dataset` between workers: "auto" (TF's: by file when every worker gets
    files, else by batch), "file" (each worker reads its own files), "data" (each worker reads everything and keeps
    its share of every global batch: the same global batches as one worker), "off"."""
    if shard not in SHARD_POLICIES:
        raise ValueError(f"`strategy.shard` should be one of {list(SHARD_POLICIES)}. Received: {shard!r}")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = getattr(tf.data.experimental.AutoShardPolicy,
                                                                SHARD_POLICIES[shard])
    return dataset.with_options(options)


def fit_under(strategy: tf.distribute.Strategy, model, dataset: tf.data.Dataset, steps: Optional[int] = None,
              role: str = "trainer", **kwargs):
    """`model.fit(dataset, **kwargs)` under `strategy` (`model`: a Keras model or a `diit_tf.ctr.PeriodTrainer`,
    built in `strategy.scope()`).

    Under a `ParameterServerStrategy` (`strategy.name` "parameter_server") Keras' `fit` has no path: the model's
    own `train_step` runs `steps` times (TFX's `train_steps`, required: the workers read the dataset repeated, so
    there is no epoch end) through `diit_tf.parameter_servers.fit`, and the History holds each step's reported
    loss; `kwargs` (epochs, callbacks) do not apply there.

    Keras 3.12, for a model built under a strategy, first reduces one input batch with `strategy.reduce` to build
    the model symbolically; `MultiWorkerMirroredStrategy.reduce` rejects a nested batch (our dict of features).
    The models here are fully built before `fit`, so that step is not needed: the model forgets the strategy it was
    built under and `fit` runs inside `strategy.scope()`, where Keras takes the strategy in scope."""
    keras_model = getattr(model, "trainer", model)
    if is_parameter_server(strategy):
        from diit_tf import parameter_servers

        if not steps:
            raise ValueError(f"{role}: `strategy.name` 'parameter_server' needs a step count (`train_steps`, TFX's "
                             "TrainArgs(num_steps=...)): the workers read the data repeated, with no epoch end")
        result = parameter_servers.fit(keras_model, dataset.repeat(), int(steps), strategy)
        bad = next((i for i, loss in enumerate(result["losses"]) if not math.isfinite(loss)), None)
        if bad is not None:
            raise NaNLossError(f"{role}: training loss is {result['losses'][bad]} at step {bad + 1} (parameter "
                               "servers); the run fails and nothing is exported or pushed")
        history = keras.callbacks.History()
        history.history = {"loss": result["losses"]}
        return history
    keras_model._distribute_strategy = None
    with strategy.scope():
        return model.fit(dataset, **kwargs)


def is_chief() -> bool:
    """Whether this process writes the artifacts: always without `TF_CONFIG`; in a cluster the `chief` task, or
    worker 0 when the cluster has no chief."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task") or {}
    if not task:
        return True
    cluster = config.get("cluster") or {}
    kind, index = task.get("type"), int(task.get("index", 0))
    if kind == "chief":
        return True
    return kind == "worker" and index == 0 and "chief" not in cluster


class WriteTarget:
    """Where this process writes an output directory: the real one on the chief, a temporary one elsewhere
    (removed on `cleanup`), so a worker's copy never overwrites the chief's."""

    def __init__(self, path: Optional[str], chief: bool):
        self.chief = chief
        self._tmp = None if chief or path is None else tempfile.mkdtemp(prefix="diit-worker-")
        self.path = path if chief else self._tmp

    def cleanup(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------------- training
class NaNLossError(RuntimeError):
    """The training loss became NaN or infinite: the run fails and nothing is exported or pushed."""


class RaiseOnNaNLoss(keras.callbacks.Callback):
    """Unlike `keras.callbacks.TerminateOnNaN` (which stops quietly and lets the run export a broken model), raise."""

    def __init__(self, role: str):
        super().__init__()
        self.role = role
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NaNLossError(f"{self.role}: training loss is {float(loss)} at epoch {self._epoch + 1}, batch "
                               f"{batch + 1}; the run fails and nothing is exported or pushed")


class StopAfterSteps(keras.callbacks.Callback):
    """Stop training after `steps` steps in all (TFX `TrainArgs.num_steps`), whatever the epochs left."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps = int(steps)
        self.done = 0

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        if self.done >= self.steps:
            self.model.stop_training = True


def fit_callbacks(role: str, train_steps: Optional[int] = None, extra: Sequence = ()) -> list:
    callbacks = [RaiseOnNaNLoss(role)] + list(extra)
    if train_steps:
        callbacks.append(StopAfterSteps(train_steps))
    return callbacks


def fit_logged(strategy: tf.distribute.Strategy, shard: str, trainer, batches: tf.data.Dataset, epochs: int,
               role: str, train_steps: Optional[int], log_dir: Optional[str]) -> dict:
    """A domain model's `fit` under `strategy` (TensorBoard scalars under `log_dir`, the NaN guard, the step bound);
    returns the run log's `train_steps`, `train_seconds` and `history`."""
    from components.tensorboard import ScalarLog

    log = ScalarLog(log_dir)
    start = time.time()
    history = fit_under(strategy, trainer, with_shard_policy(batches, shard), steps=train_steps, role=role,
                        epochs=int(epochs), callbacks=fit_callbacks(role, train_steps, [log]))
    return {"train_steps": steps_run(strategy, history, log), "train_seconds": round(time.time() - start, 2),
            "history": {k: [float(x) for x in v] for k, v in history.history.items()}}


def is_parameter_server(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy)


def steps_run(strategy: tf.distribute.Strategy, history, log) -> int:
    """The steps `fit_under` ran: the count of the run's `ScalarLog` callback, or, under parameter servers (where no
    callback runs), the History's one loss per step."""
    return len(history.history["loss"]) if is_parameter_server(strategy) else log.step


def checked_counts(config: Mapping, block: str, where: str, optional: Sequence[str] = ()) -> dict:
    """`config` (a trainer's custom_config) with its `epochs` and `batch_size` (required) and its `optional` counts
    (when present) checked by `diit_tf.counts.positive_count`, named `<block>.<key>` after `where`, and replaced by the integers it
    returns: a count the trainers' `int()` used to take silently (True as 1) or fail on obscurely (0, -3, "abc")
    is an error naming it."""
    checked = dict(config)
    for key in ("epochs", "batch_size"):
        checked[key] = positive_count(config.get(key), f"{block}.{key}", where)
    for key in optional:
        if key in config:
            checked[key] = positive_count(config[key], f"{block}.{key}", where, null=True)
    return checked


def checked_config(custom_config: Optional[Mapping], known: frozenset, required: Sequence[str], where: str) -> dict:
    """A generic TFX Trainer's `custom_config` (the source and joint trainers), checked: an unknown key or a missing
    required one is named, and so is a count that is not a positive integer (`checked_counts`: `epochs`,
    `batch_size`, and `shuffle_buffer` / `steps_per_execution` when not null; returned as integers)."""
    config = dict(custom_config or {})
    unknown = sorted(set(config) - known)
    if unknown:  # a typo would otherwise be ignored
        raise ValueError(f"{where}: unknown custom_config key(s) {unknown}; known: {sorted(known)} "
                         "(train_steps / eval_steps go to the Trainer's train_args / eval_args)")
    for key in required:
        if key not in config:
            raise ValueError(f"{where}: custom_config is missing {key!r}; received keys {sorted(config)}")
    # both trainers take the pipeline's `source` settings
    return checked_counts(config, "source", where, ("shuffle_buffer", "steps_per_execution"))


def trainer_input(fn_args, known: frozenset, required: Sequence[str], where: str) -> tuple:
    """`(config, role, spec, data, previous model uri)` of a generic TFX Trainer's `run_fn` (the source and joint
    trainers; `where`: "source trainer", "joint trainer"; `role`: `where` and the config's domain, if any): the
    custom_config checked (`checked_config`), the transformed columns checked, the splits' files (the eval
    split on the chief only: the other workers' numbers would be the same), the previous model when it holds one."""
    import tensorflow_transform as tft
    from absl import logging

    from diit_tf.data import streaming
    from diit_tf.features import FeatureSpec

    config = checked_config(fn_args.custom_config, known, required, where)
    role = f"{where} {config['domain']!r}" if "domain" in config else where
    spec = FeatureSpec.from_dict(config["feature_spec"])
    columns = streaming.check_columns(tft.TFTransformOutput(fn_args.transform_output).transformed_feature_spec(),
                                      spec, role)
    data = streaming.TrainerInput(
        train_files=streaming.expand_files(fn_args.train_files),
        eval_files=streaming.expand_files(fn_args.eval_files) if fn_args.eval_files and is_chief() else [],
        columns=columns, train_steps=fn_args.train_steps, eval_steps=fn_args.eval_steps)
    previous = previous_model(model_uri_of(fn_args.base_model) if fn_args.base_model else None, role,
                              logging.warning)
    return config, role, spec, data, previous


# ------------------------------------------------------------------------------------------------- evaluation
def evaluate_domain(backbone: keras.Model, spec, data, domain: str, role: str, log_dir: Optional[str],
                    step: int) -> dict:
    """`evaluate` on the eval split's rows of `domain` (bounded by `data.eval_steps`), its AUC and log loss also
    written as TensorBoard scalars under `<log_dir>/eval`."""
    from components.tensorboard import EVAL_DIR, eval_scalars, write_scalars
    from diit_tf.data import streaming

    with streaming.naming_bad_files(data.eval_files, data.columns, role):
        metrics = evaluate(backbone, streaming.bounded(streaming.eval_batches(data.eval_files, data.columns, spec),
                                                       data.eval_steps), [domain])[domain]
    write_scalars(log_dir and f"{log_dir}/{EVAL_DIR}", eval_scalars({domain: metrics}), step=step)
    return metrics


def evaluate(backbone: keras.Model, batches: tf.data.Dataset, domains: Sequence[str]) -> dict:
    """Per domain of `domains`: rows, AUC (streaming, `AUC_THRESHOLDS` buckets; None when a class is missing) and
    log loss (the mean of `ctr_bce` over the rows) of `backbone`, over `(features, labels, domains)` batches
    (`diit_tf.data.streaming.eval_batches`). Memory does not grow with the split."""
    names = [str(d) for d in domains]
    aucs = [keras.metrics.AUC(num_thresholds=AUC_THRESHOLDS) for _ in names]
    sums = [tf.Variable(tf.zeros([3], tf.float64)) for _ in names]  # rows, positives, summed log loss
    keys = tf.constant(names)

    @tf.function
    def update(features, labels, row_domains):
        logits = tf.reshape(backbone(features, training=False)["logit"], [-1])
        labels = tf.cast(tf.reshape(labels, [-1]), tf.float32)
        losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
        for k, metric in enumerate(aucs):
            mask = tf.equal(row_domains, keys[k])
            y, z = tf.boolean_mask(labels, mask), tf.boolean_mask(logits, mask)
            metric.update_state(y, tf.sigmoid(z))
            sums[k].assign_add(tf.cast(tf.stack([tf.cast(tf.size(y), tf.float32), tf.reduce_sum(y),
                                                 tf.reduce_sum(tf.boolean_mask(losses, mask))]), tf.float64))

    for features, labels, row_domains in batches:
        update(features, labels, row_domains)
    out = {}
    for k, name in enumerate(names):
        rows, positives, loss = (float(x) for x in sums[k].numpy())
        if rows == 0:
            out[name] = {"rows": 0}
            continue
        both = 0 < positives < rows
        out[name] = {"rows": int(rows), "auc": float(aucs[k].result()) if both else None, "logloss": loss / rows}
    return out


def write_run_log(model_run_dir: Optional[str], name: str, payload: Mapping) -> None:
    if not model_run_dir:
        return
    tf.io.gfile.makedirs(model_run_dir)
    with tf.io.gfile.GFile(os.path.join(model_run_dir, name), "w") as f:
        f.write(json.dumps(_jsonable(payload), indent=2))


def _jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
