"""Fine-tuning from a model trained on all domains.

Every period `p` from the insertion period on: an all-domain ("pooled") model of the same backbone, itself trained
incrementally on all domains' period-`p` rows (no domain input), is copied into the target model, which is then
trained on the target's period-`p` rows only. So the target model restarts each period from the freshest
all-domain knowledge and specialises on the target (docs/method.md, "Baselines and ablations").
"""
from __future__ import annotations

import weakref

import keras
import tensorflow as tf

# destination -> (weak ref to its source, traced copy): the few dozen assignments of a copy run as one graph call
# instead of a numpy round trip per variable (measured ~6 ms -> ~1 ms per DIIT period for two teachers).
_COPIERS = weakref.WeakKeyDictionary()


def copy_weights(source: keras.Model, destination: keras.Model) -> None:
    """Copy all weights of `source` into `destination` (same architecture), raising a clear error otherwise.
    Used every period (fine-tuning's restart, the frozen teacher copies of DIIT and KD), so the copy is traced once
    per (source, destination) pair."""
    cached = _COPIERS.get(destination)
    if cached is None or cached[0]() is not source:
        pairs = list(zip(source.weights, destination.weights))
        if len(source.weights) != len(destination.weights) or any(s.shape != d.shape for s, d in pairs):
            raise ValueError(f"cannot copy weights from {source.name!r} into {destination.name!r}: "
                             "different architectures")

        def assign_all():
            for s, d in pairs:
                d.assign(s)

        cached = (weakref.ref(source), tf.function(assign_all))
        _COPIERS[destination] = cached
    cached[1]()


def copy_embeddings(source: keras.Model, destination: keras.Model) -> list:
    """Copy the embedding tables of `source` (its `FeatureEmbedding` layers' weights) into `destination`'s, leaving
    every other weight as it is. The towers may differ; the tables must match one by one in shape (same features,
    buckets and embedding width), else a ValueError names the first table that does not. Returns the paths of the
    destination's weights that were overwritten."""
    from diit_tf.layers.feature_embedding import embedding_positions

    ours, theirs = embedding_positions(destination), embedding_positions(source)
    pairs = [(source.weights[i], destination.weights[j]) for i, j in zip(theirs, ours)]
    if len(ours) != len(theirs):
        raise ValueError(f"cannot copy embeddings from {source.name!r} into {destination.name!r}: "
                         f"{len(theirs)} tables against {len(ours)}")
    for s, d in pairs:
        if s.shape != d.shape:
            raise ValueError(f"cannot copy embeddings from {source.name!r} into {destination.name!r}: table "
                             f"{s.path} has shape {tuple(s.shape)}, {d.path} {tuple(d.shape)}")
    for s, d in pairs:
        d.assign(s)
    return [d.path for _, d in pairs]


def tables_by_path(source: keras.Model, destination: keras.Model, what: str = "the source model") -> dict:
    """`{position in destination.weights: table}`: for each embedding table of `destination` (its `FeatureEmbedding`
    layers' weights), the table of `source` at the same weight path (e.g. `features/embedding_user_id/embeddings`)
    and of the same shape, as a numpy array. `source` may hold more tables: a joint model's domain-id table has no
    counterpart in a single-domain model. Nothing is assigned: the caller puts the tables where it starts from
    (`training.student_init = "joint_embeddings"`: the simulation's `JointStart` into the base's weights, the
    pipeline's DIIT trainer into a fresh student). Raises a ValueError, `what` naming `source`, for the first table
    of `destination` that `source` lacks or holds in another shape, listing `source`'s tables."""
    from diit_tf.layers.feature_embedding import embedding_positions

    tables = {w.path: w for w in (source.weights[i] for i in embedding_positions(source))}
    found = {}
    for i in embedding_positions(destination):
        path, shape = destination.weights[i].path, tuple(destination.weights[i].shape)
        table = tables.get(path)
        if table is None or tuple(table.shape) != shape:
            raise ValueError(f"{what} has no table {path} of shape {shape} (its tables: "
                             f"{ {p: tuple(t.shape) for p, t in tables.items()} })")
        found[i] = table.numpy()
    return found
