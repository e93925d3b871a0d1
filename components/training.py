"""What the source trainers and the DIIT trainer share: reading transformed spans, the distribution strategy, the
NaN guard, and the Keras backbone kept next to each exported SavedModel.

Model artifact layout (every trainer of the pipeline writes it):

    <model_uri>/Format-Serving/        the SavedModel (diit_tf.export.export_student), what TFMA and the pusher use
    <model_uri>/keras/backbone.keras   the Keras 3 backbone: teachers are reloaded from it (a SavedModel signature
                                       gives no representation), and the next period warm-starts from it
    <model_uri>/keras/model_info.json  role, domain, backbone, warm start source, rows, metrics
"""
from __future__ import annotations

import json
import math
import os
from typing import Mapping, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from diit_tf.ctr import auc
from diit_tf.features import FeatureSpec

SERVING_DIR = "Format-Serving"
KERAS_DIR = "keras"
BACKBONE_FILE = "backbone.keras"
INFO_FILE = "model_info.json"


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


def save_backbone(model: keras.Model, model_uri: str, info: Mapping) -> None:
    """Write `<model_uri>/keras/backbone.keras` and `model_info.json` (through a temporary name, then renamed)."""
    keras_dir = os.path.join(model_uri, KERAS_DIR)
    tf.io.gfile.makedirs(keras_dir)
    tmp = os.path.join(keras_dir, f".tmp-{BACKBONE_FILE}")
    model.save(tmp)
    tf.io.gfile.rename(tmp, backbone_path(model_uri), overwrite=True)
    with tf.io.gfile.GFile(os.path.join(keras_dir, INFO_FILE), "w") as f:
        f.write(json.dumps(_jsonable(info), indent=2))


def load_backbone(model_uri: str) -> keras.Model:
    import diit_tf.layers  # noqa: F401  (registers the custom layers for deserialization)

    path = backbone_path(model_uri)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"model artifact {model_uri!r} has no Keras backbone at {path!r}")
    return keras.models.load_model(path, compile=False)


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


# ------------------------------------------------------------------------------------------------------- data
def expand_files(patterns: Sequence[str]) -> list:
    files = sorted({f for p in patterns for f in tf.io.gfile.glob(p)})
    if not files:
        raise FileNotFoundError(f"no transformed example files match {list(patterns)}")
    return files


def load_transformed(patterns: Sequence[str], feature_spec: Mapping, batch_size: int = 8192) -> dict:
    """Every row of the (gzipped TFRecord) transformed examples matching `patterns`, as numpy arrays by column."""
    files = expand_files(patterns)
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size)
    ds = ds.map(lambda x: tf.io.parse_example(x, dict(feature_spec)), num_parallel_calls=tf.data.AUTOTUNE)
    columns = {name: [] for name in feature_spec}
    for batch in ds:
        for name, value in batch.items():
            columns[name].append(value.numpy())
    return {name: (np.concatenate(parts) if parts else np.zeros((0,))) for name, parts in columns.items()}


def rows_of_domain(data: Mapping, spec: FeatureSpec, domain: str) -> dict:
    domains = np.asarray(data[spec.domain]).astype(str)
    mask = domains == domain
    return {name: np.asarray(values)[mask] for name, values in data.items()}


def features_of(data: Mapping, spec: FeatureSpec) -> dict:
    return {name: data[name] for name in spec.feature_names}


# --------------------------------------------------------------------------------------------------- strategy
def make_strategy(name: str = "default", devices: Optional[Sequence[str]] = None) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy chosen by config: "default" (one device), "mirrored", "one_device"."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=list(devices) if devices else None)
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(device=(devices or ["/cpu:0"])[0])
    raise ValueError(f"`strategy.name` should be one of ['default', 'mirrored', 'one_device']. Received: {name!r}")


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


def logit_model(backbone: keras.Model, spec: FeatureSpec) -> keras.Model:
    """A functional view of `backbone` returning its logit only (shares its weights), for plain CTR training."""
    inputs = spec.keras_inputs()
    return keras.Model(inputs, backbone(inputs)["logit"], name=f"{backbone.name}_ctr")


def evaluate_backbone(backbone: keras.Model, spec: FeatureSpec, data: Mapping, batch_size: int = 4096) -> dict:
    """AUC and log loss of `backbone` on `data` (transformed columns with labels)."""
    labels = np.asarray(data[spec.label], np.float32)
    if len(labels) == 0:
        return {"rows": 0}
    logits = backbone.predict(features_of(data, spec), batch_size=batch_size, verbose=0)["logit"].reshape(-1)
    probs = 1.0 / (1.0 + np.exp(-logits))
    eps = 1e-7
    logloss = float(-np.mean(labels * np.log(probs + eps) + (1 - labels) * np.log(1 - probs + eps)))
    return {"rows": int(len(labels)), "auc": binary_auc(labels, probs), "logloss": logloss}


def binary_auc(labels, scores) -> Optional[float]:
    """ROC AUC, or None (JSON null) when only one class is present."""
    value = auc(labels, scores)
    return None if np.isnan(value) else value


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
