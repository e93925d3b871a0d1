"""Training plumbing shared by every method of the simulation: datasets, the plain CTR trainer, optimizer
resets (warm start = weights only), prediction and the two metrics.

Warm start. Period `p` starts from period `p-1`'s *weights*; every optimizer starts fresh each period (its slots
and step counter are zeroed, as when a production job reloads yesterday's model), for every method alike, so no
method carries extra optimizer state across periods. Zeroing the slots in place keeps the traced train function,
so nothing is re-traced from one period to the next.
"""
from __future__ import annotations

from typing import Mapping

from diit_tf import _quiet  # noqa: F401
import keras
import numpy as np
import tensorflow as tf

from diit_tf.losses import ctr_bce


# ------------------------------------------------------------------------------------------------------ datasets
def labelled_dataset(features: Mapping, labels, batch_size: int, seed: int, shuffle: bool = True) -> tf.data.Dataset:
    """`(features, labels)` batches; one pass is one epoch (reshuffled every epoch)."""
    n = len(labels)
    if n == 0:
        raise ValueError("cannot train on an empty set of rows")
    ds = tf.data.Dataset.from_tensor_slices((dict(features), np.asarray(labels, np.float32)))
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def transfer_dataset(target, mix, batch_size: int, seed: int, mix_batch_size: int = None,
                     mix_labels: bool = False) -> tf.data.Dataset:
    """Zip labelled target batches with cycling mix batches: elements `((x_t, y_t), x_m)`, or
    `((x_t, y_t), (x_m, y_m, d_m))` with `mix_labels=True` (labels and domain ids of the mix rows, for DANN).

    `target` and `mix` are `PeriodData`; one pass over the target rows is one epoch. The target part is built from
    `target` alone, so whatever consumes the labelled part sees only the rows it was given.
    """
    if len(target) == 0:
        raise ValueError(f"period {target.span}: no target-domain rows to train on")
    if len(mix) == 0:
        raise ValueError(f"period {mix.span}: the mix dataset is empty")
    mix_batch_size = mix_batch_size or batch_size
    labelled = tf.data.Dataset.from_tensor_slices((dict(target.features), target.labels.astype(np.float32)))
    labelled = labelled.shuffle(len(target), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    if mix_labels:
        parts = (dict(mix.features), mix.labels.astype(np.float32), mix.domain_ids.astype(np.int32))
    else:
        parts = dict(mix.features)
    mixed = tf.data.Dataset.from_tensor_slices(parts)
    mixed = mixed.shuffle(len(mix), seed=seed + 1, reshuffle_each_iteration=True).repeat()
    mixed = mixed.batch(mix_batch_size, drop_remainder=True)
    return tf.data.Dataset.zip((labelled, mixed)).prefetch(tf.data.AUTOTUNE)


# ------------------------------------------------------------------------------------------------ the CTR trainer
class CTRTrainer(keras.Model):
    """Plain CTR training of any model returning `{"logit": (B, 1), ...}`: `L = BCE(y, σ(logit))`.

    Trains exactly `model.trainable_variables` (frozen parts, e.g. CTNet's source towers, are left alone).

    Args:
      model: a backbone (or any Keras model with a `"logit"` output).
    """

    def __init__(self, model: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def call(self, inputs, training=False):
        return self.model(inputs, training=training)

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        x, y = data
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            loss = ctr_bce(y, self.model(x, training=True)["logit"])
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


# Steps run inside one traced call of `fit`: the models are small, so Python overhead per step would otherwise
# dominate (measured ~2x faster per epoch at 8); the updates are exactly the same.
STEPS_PER_EXECUTION = 8


def compile_fresh(trainer: keras.Model, learning_rate: float, **kwargs) -> None:
    """Compile `trainer` with Adam (and `STEPS_PER_EXECUTION`) and build its slots over what it trains."""
    kwargs.setdefault("steps_per_execution", STEPS_PER_EXECUTION)
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate), **kwargs)


def optimizers_of(model) -> list:
    """Every Keras optimizer held by `model` (e.g. DIIT's `optimizer` and `discriminator_optimizer`)."""
    found = []
    for value in vars(model).values():
        if isinstance(value, keras.optimizers.Optimizer) and all(value is not f for f in found):
            found.append(value)
    opt = getattr(model, "optimizer", None)
    if isinstance(opt, keras.optimizers.Optimizer) and all(opt is not f for f in found):
        found.append(opt)
    return found


def reset_optimizers(model) -> int:
    """Zero every optimizer slot and step counter of `model` (not the learning rate). Returns how many
    variables were reset."""
    count = 0
    for opt in optimizers_of(model):
        for variable in opt.variables:
            if variable.path.split("/")[-1] == "learning_rate":
                continue
            variable.assign(tf.zeros(variable.shape, variable.dtype))
            count += 1
    return count


# --------------------------------------------------------------------------------------------- predict / metrics
def predict_logits(model: keras.Model, features: Mapping, batch_size: int = 8192) -> np.ndarray:
    """The `"logit"` output of `model` on `features`, as a flat float64 array."""
    out = model.predict(dict(features), batch_size=batch_size, verbose=0)
    logit = out["logit"] if isinstance(out, Mapping) else out
    return np.asarray(logit, np.float64).reshape(-1)


def auc(labels, scores) -> float:
    """ROC AUC (NaN when a class is missing)."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels).reshape(-1)
    if labels.min() == labels.max():
        return float("nan")
    return float(roc_auc_score(labels, np.asarray(scores).reshape(-1)))


def logloss(labels, logits) -> float:
    """Mean binary cross-entropy of probabilities `σ(logits)` (computed stably from the logits)."""
    y = np.asarray(labels, np.float64).reshape(-1)
    z = np.asarray(logits, np.float64).reshape(-1)
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))
