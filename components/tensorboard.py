"""TensorBoard logs of the pipeline's trainers, written under the TFX `model_run` artifact.

    <model_run>/train/   every number the trainer's `fit` logs, by name, every `every_n_steps` steps and at the
                         end of each epoch (Keras' running mean since the epoch began): `loss`, and for DIIT `ce`,
                         `adv1`, `adv2`, `mse`, `kl`, `kd` (`gate_bce` when the gate is supervised) and the mean gate
                         weight per source as `gate/<source domain>`
    <model_run>/eval/    after training, on the eval split: `auc/<domain>`, `logloss/<domain>` (a source trainer:
                         its own domain), and for the DIIT trainer `target_auc` (the student on the target's rows)

Open them with `tensorboard --logdir <pipeline_root>/<trainer id>/model_run` (one run per execution).

Example:
    log = ScalarLog(model_run_dir, names={"gate_w0": "gate/source_a"})
    model.fit(dataset, callbacks=[log])
    write_scalars(os.path.join(model_run_dir, "eval"), {"target_auc": 0.71}, step=log.step)
"""
from __future__ import annotations

import os
from typing import Mapping, Optional

import keras
import tensorflow as tf

TRAIN_DIR = "train"
EVAL_DIR = "eval"


class ScalarLog(keras.callbacks.Callback):
    """Write the `fit` logs to `<log_dir>/train` as TensorBoard scalars.

    Args:
      log_dir: the `model_run` directory (None: write nothing, e.g. on a non-chief worker).
      names: renames of log keys (e.g. `gate_w0` -> `gate/source_a`); other keys keep their names.
      every_n_steps: write the running values every this many steps (and always at the end of an epoch).
    """

    def __init__(self, log_dir: Optional[str], names: Optional[Mapping[str, str]] = None, every_n_steps: int = 50):
        super().__init__()
        self.log_dir = log_dir
        self.names = dict(names or {})
        self.every_n_steps = max(1, int(every_n_steps))
        self.step = 0
        self._writer = None
        self._last = None

    def _write(self, logs) -> None:
        if not self.log_dir or not logs or self._last == self.step:
            return
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, TRAIN_DIR))
        with self._writer.as_default(step=self.step):
            for key, value in logs.items():
                tf.summary.scalar(self.names.get(key, key), float(value))
        self._last = self.step

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every_n_steps == 0:
            self._write(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._write({k: v for k, v in (logs or {}).items() if not k.startswith("val_")})

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()


def write_scalars(log_dir: Optional[str], values: Mapping[str, Optional[float]], step: int = 0) -> None:
    """Write `values` (name -> number; None is skipped) as scalars at `step` into `log_dir`."""
    if not log_dir:
        return
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default(step=int(step)):
        for name, value in values.items():
            if value is not None:
                tf.summary.scalar(name, float(value))
    writer.flush()


def eval_scalars(evaluation: Mapping[str, Mapping], target: Optional[str] = None) -> dict:
    """`auc/<domain>` and `logloss/<domain>` of a `training.evaluate` result, and `target_auc` (the AUC of the
    domain `target`) when given."""
    values = {}
    for domain, metrics in evaluation.items():
        values[f"auc/{domain}"] = metrics.get("auc")
        values[f"logloss/{domain}"] = metrics.get("logloss")
    if target is not None:
        values["target_auc"] = (evaluation.get(target) or {}).get("auc")
    return values
