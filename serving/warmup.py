"""TF Serving warmup records (read side) and raw rows as `tf.Example`s for the client and the load test.

TF Serving replays `<version>/assets.extra/tf_serving_warmup_requests` (a TFRecord file of `PredictionLog` protos)
when it loads a version, so the first real request does not pay for graph tracing and kernel setup; the exporter
(`diit_tf/warmup.py`) writes that file and the local server replays it. Nothing here imports `diit_tf`: serving needs
a SavedModel and TF Serving's protos only, so the row encoder below is serving's own (the exporter has the same
one on its side of that boundary).

Example:
    serialize_rows([{"user_id": "7", "age": 31.0}], feature_dtypes={"user_id": "string", "age": "float"})
"""
from __future__ import annotations

import os
from typing import Iterable, Mapping

import tensorflow as tf

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def _is_float(dtype) -> bool:
    if isinstance(dtype, str):
        return dtype.lower() in ("float", "float32", "float64", "dt_float", "double")
    return tf.as_dtype(dtype).is_floating


def row_to_example(row: Mapping, feature_dtypes: Mapping) -> tf.train.Example:
    """One raw row (feature name -> value) as a `tf.train.Example`.

    `feature_dtypes` maps every raw feature name to its dtype ("string" or "float", a `tf.DType` also works);
    string features accept any value (ids are written as their decimal/str form), float features need a number.
    Raises ValueError naming the feature if a value is missing or not a number.
    """
    feature = {}
    for name, dtype in feature_dtypes.items():
        if name not in row or row[name] is None:
            raise ValueError(f"row is missing feature {name!r}; expected {sorted(feature_dtypes)}")
        value = row[name]
        if _is_float(dtype):
            try:
                feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
            except (TypeError, ValueError):
                raise ValueError(f"feature {name!r} should be a number. Received: {value!r}") from None
        else:
            if isinstance(value, bytes):
                data = value
            elif isinstance(value, float) and value.is_integer():
                data = str(int(value)).encode()  # 12.0 read back from JSON/CSV is the id "12"
            else:
                data = str(value).encode()
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def serialize_rows(rows: Iterable[Mapping], feature_dtypes: Mapping) -> list:
    """Rows -> list of serialized `tf.Example` bytes (what the `serving_default` signature takes)."""
    return [row_to_example(row, feature_dtypes).SerializeToString() for row in rows]


def read_warmup_requests(export_dir: str) -> list:
    """The `PredictRequest`s stored under `export_dir` (empty list when there is no warmup file)."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(export_dir, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        return []
    requests = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(record)
        if log.HasField("predict_log"):
            requests.append(log.predict_log.request)
    return requests
