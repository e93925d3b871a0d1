"""The input layer shared by every backbone: one embedding table per categorical feature, numerics appended.

Formula: `x = concat([E_f[id_f] for f in categorical] + [v_f for f in numeric])`, where `E_f` is a
`(buckets_f, embedding_dim)` table and `id_f` the hashed bucket id (`FeatureSpec.transform`). Because ids are
hashed into a fixed number of buckets, the same raw id reads the same row in every period (warm start).

Shapes: inputs a dict of `(B,)` tensors (int ids, float numerics); output `(B, n_categorical * embedding_dim +
n_numeric)`.

Example:
    spec = FeatureSpec({"user_id": 1000, "item_id": 500}, numeric=("price",))
    layer = FeatureEmbedding(spec.categorical, spec.numeric, embedding_dim=8)
    x = layer({"user_id": ids_u, "item_id": ids_i, "price": prices})   # (B, 17)
"""
from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="diit_tf")
class FeatureEmbedding(keras.layers.Layer):
    """Embeds hashed categorical ids and concatenates numeric features.

    Args:
      categorical: dict of feature name -> number of hash buckets.
      numeric: sequence of numeric feature names.
      embedding_dim: width of every embedding table.
      embeddings_regularizer: optional regularizer for the tables.
    """

    def __init__(self, categorical, numeric=(), embedding_dim=16, embeddings_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise ValueError(f"`embedding_dim` should be a positive integer. Received: {embedding_dim!r}")
        if not categorical and not numeric:
            raise ValueError("`categorical` and `numeric` cannot both be empty: the model would have no input.")
        self.categorical = {str(k): int(v) for k, v in dict(categorical).items()}
        self.numeric = [str(n) for n in numeric]
        self.embedding_dim = embedding_dim
        self.embeddings_regularizer = keras.regularizers.get(embeddings_regularizer)
        self.tables = {
            name: keras.layers.Embedding(
                buckets, embedding_dim, embeddings_regularizer=self.embeddings_regularizer, name=f"embedding_{name}"
            )
            for name, buckets in self.categorical.items()
        }

    @property
    def output_dim(self) -> int:
        return len(self.categorical) * self.embedding_dim + len(self.numeric)

    def build(self, input_shape=None):
        for table in self.tables.values():
            table.build((None,))
        self.built = True

    def call(self, inputs):
        missing = [n for n in list(self.categorical) + self.numeric if n not in inputs]
        if missing:
            raise ValueError(f"FeatureEmbedding is missing input feature(s) {missing}. Received: {sorted(inputs)}")
        parts = [self.tables[name](ops.cast(inputs[name], "int64")) for name in self.categorical]
        parts += [ops.expand_dims(ops.cast(inputs[name], self.compute_dtype), -1) for name in self.numeric]
        return ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shape):
        return (None, self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "categorical": dict(self.categorical),
                "numeric": list(self.numeric),
                "embedding_dim": self.embedding_dim,
                "embeddings_regularizer": keras.regularizers.serialize(self.embeddings_regularizer),
            }
        )
        return config


def embedding_positions(model: keras.Model) -> list:
    """Positions in `model.weights` of the weights of its `FeatureEmbedding` layers (nested models included): the
    embedding tables, e.g. what `training.student_init = "best_source_embeddings"` copies from a source model.
    Raises ValueError when the model has none."""
    own, stack = set(), [model]
    while stack:
        layer = stack.pop()
        if isinstance(layer, FeatureEmbedding):
            own.update(id(w) for w in layer.weights)
        elif isinstance(layer, keras.Model):
            stack.extend(layer.layers)
    positions = [i for i, w in enumerate(model.weights) if id(w) in own]
    if not positions:
        raise ValueError(f"model {model.name!r} has no FeatureEmbedding layer: it has no embedding tables to copy")
    return positions
