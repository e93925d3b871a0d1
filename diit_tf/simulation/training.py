"""Training plumbing shared by every method of the simulation: the in-memory datasets, compile settings, prediction,
and (from `diit_tf.ctr`) the plain CTR trainer, optimizer resets and the two metrics.

Warm start. Period `p` starts from period `p-1`'s *weights*; every optimizer starts fresh each period
(`diit_tf.ctr.reset_optimizers`), for every method alike, so no method carries extra optimizer state across
periods.
"""
from __future__ import annotations

from typing import Mapping

import keras
import numpy as np
import tensorflow as tf

from diit_tf.ctr import CTRTrainer, auc, logloss, optimizers_of, reset_optimizers  # noqa: F401  (re-exported)


# ------------------------------------------------------------------------------------------------------ datasets
def _take(features: Mapping, index) -> dict:
    return {name: np.asarray(values)[index] for name, values in features.items()}


def _sliced(parts, batch_size: int, drop_remainder: bool = False) -> tf.data.Dataset:
    """Consecutive batches of `batch_size` rows of `parts` (a structure of numpy arrays, rows first); the last,
    shorter batch is kept unless `drop_remainder`. The same batches as `from_tensor_slices(parts).batch(...)`, but
    sliced a batch at a time: slicing row by row cost as much CPU as training the small models."""
    parts = tf.nest.map_structure(np.asarray, parts)
    rows = len(tf.nest.flatten(parts)[0])
    full = rows // batch_size
    ds = tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(
        lambda a: a[: full * batch_size].reshape((full, batch_size) + a.shape[1:]), parts))
    if not drop_remainder:  # the last batch (none when the rows divide evenly; then only the shapes relax to [None])
        tail = tf.data.Dataset.from_tensors(tf.nest.map_structure(lambda a: a[full * batch_size:], parts))
        ds = ds.concatenate(tail if rows % batch_size else tail.take(0))
    return ds


def _epochs_of(features: Mapping, labels, batch_size: int, epochs: int, rng) -> tf.data.Dataset:
    """`epochs` passes over the rows, each in a fresh random order, batched within the pass."""
    labels = np.asarray(labels, np.float32)
    ds = None
    for _ in range(epochs):
        order = rng.permutation(len(labels))
        part = _sliced((_take(features, order), labels[order]), batch_size)
        ds = part if ds is None else ds.concatenate(part)
    return ds


def steps_per_pass(rows: int, batch_size: int) -> int:
    return -(-rows // batch_size)


def labelled_dataset(features: Mapping, labels, batch_size: int, seed: int, epochs: int = 1) -> tf.data.Dataset:
    """`(features, labels)` batches covering `epochs` passes over the rows (each pass in a new random order):
    train on it with `fit(..., epochs=1)`.

    Shuffling is done here with numpy index permutations rather than a `tf.data` shuffle buffer, which would copy
    every row through the buffer each pass (measured to dominate the cost of small models)."""
    if len(labels) == 0:
        raise ValueError("cannot train on an empty set of rows")
    return _epochs_of(features, labels, batch_size, epochs, np.random.default_rng(seed)).prefetch(tf.data.AUTOTUNE)


def transfer_dataset(target, mix, batch_size: int, seed: int, mix_batch_size: int = None,
                     mix_labels: bool = False, epochs: int = 1, annotate=None) -> tf.data.Dataset:
    """Labelled target batches zipped with mix batches: elements `((x_t, y_t), x_m)`, or
    `((x_t, y_t), (x_m, y_m, d_m))` with `mix_labels=True` (labels and domain ids of the mix rows, for DANN).

    `target` and `mix` are `PeriodData`. The labelled part makes `epochs` passes over the target rows; the mix part
    draws as many rows as the steps need, cycling through the mix rows in fresh random orders. The labelled part is
    built from `target` alone, so whatever consumes it sees only the rows it was given. Train with `epochs=1`.
    `annotate(features) -> dict of arrays`, if given, adds per-row arrays to the features of exactly the rows the
    batches hold (each target row once, the drawn mix rows once), e.g. DIIT's precomputed teacher outputs.
    """
    if len(target) == 0:
        raise ValueError(f"period {target.span}: no target-domain rows to train on")
    if len(mix) == 0:
        raise ValueError(f"period {mix.span}: the mix dataset is empty")
    mix_batch_size = mix_batch_size or batch_size
    rng = np.random.default_rng(seed)
    target_features = dict(target.features, **annotate(target.features)) if annotate else target.features
    labelled = _epochs_of(target_features, target.labels, batch_size, epochs, rng)
    needed = epochs * steps_per_pass(len(target), batch_size) * mix_batch_size
    cycles = -(-needed // len(mix))
    order = np.concatenate([rng.permutation(len(mix)) for _ in range(cycles)])[:needed]
    if annotate:  # each distinct drawn row once, then spread over the draws
        distinct, where = np.unique(order, return_inverse=True)
        extra = annotate(_take(mix.features, distinct))
        features = dict(_take(mix.features, order), **{k: v[where] for k, v in extra.items()})
    else:
        features = _take(mix.features, order)
    if mix_labels:
        parts = (features, mix.labels[order].astype(np.float32), mix.domain_ids[order].astype(np.int32))
    else:
        parts = features
    mixed = _sliced(parts, mix_batch_size, drop_remainder=True)
    return tf.data.Dataset.zip((labelled, mixed)).prefetch(tf.data.AUTOTUNE)


# ------------------------------------------------------------------------------------------------ the CTR trainer
# Steps run inside one traced call of `fit`: the models are small, so Python overhead per step would otherwise
# dominate (measured ~2x faster per epoch at 8); the updates are exactly the same.
STEPS_PER_EXECUTION = 8


def compile_fresh(trainer: keras.Model, learning_rate: float, **kwargs) -> None:
    """Compile `trainer` with Adam (and `STEPS_PER_EXECUTION`) and build its slots over what it trains."""
    kwargs.setdefault("steps_per_execution", STEPS_PER_EXECUTION)
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate), **kwargs)


# --------------------------------------------------------------------------------------------- predict / metrics
def predict_logits(model: keras.Model, features: Mapping, batch_size: int = 8192) -> np.ndarray:
    """The `"logit"` output of `model` on `features`, as a flat float64 array."""
    out = model.predict(dict(features), batch_size=batch_size, verbose=0)
    logit = out["logit"] if isinstance(out, Mapping) else out
    return np.asarray(logit, np.float64).reshape(-1)
