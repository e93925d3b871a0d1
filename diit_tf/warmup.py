"""TF Serving warmup records, written next to an exported SavedModel.

TF Serving replays `<version>/assets.extra/tf_serving_warmup_requests` (a TFRecord file of `PredictionLog` protos)
when it loads a version, so the first real request does not pay for graph tracing and kernel setup. The exporter
writes one `serving_default` request (serialized `tf.Example`s) and one `predict` request (raw feature tensors)
over the same rows. The local server (`serving/`) reads the file with TF Serving's protos alone. `serving/codec.py`
has the same row encoder for its client: serving imports nothing of `diit_tf` and the core nothing of serving, so
each side of that boundary keeps its own copy (keep them alike).

Example:
    write_warmup_requests(export_dir, [{"user_id": "7", "age": 31.0}], {"user_id": "string", "age": "float"})
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import tensorflow as tf

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_EXAMPLES = 100


def _is_float(dtype) -> bool:
    """True for the float dtypes of a raw feature ("float", "float32", `tf.float32`, ...), False for strings."""
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


def _as_serialized(examples, feature_dtypes: Mapping) -> list:
    out = []
    for item in examples:
        if isinstance(item, bytes):
            out.append(item)
        elif isinstance(item, tf.train.Example):
            out.append(item.SerializeToString())
        elif isinstance(item, Mapping):
            out.append(row_to_example(item, feature_dtypes).SerializeToString())
        else:
            raise ValueError(
                "warmup examples should be raw rows (dict), tf.train.Example or serialized bytes. "
                f"Received: {type(item).__name__}"
            )
    return out


def warmup_requests(examples: Sequence, feature_dtypes: Mapping, model_name: str = "diit") -> list:
    """`PredictionLog`s for both signatures: one `serving_default` request over the serialized examples and one
    `predict` request over the same rows as raw feature tensors."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    examples = list(examples)[:MAX_WARMUP_EXAMPLES]
    if not examples:
        return []
    serialized = _as_serialized(examples, feature_dtypes)
    logs = []
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name="serving_default")
    )
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto(serialized, dtype=tf.string))
    logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    parsed = [tf.train.Example.FromString(s) for s in serialized]
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name, signature_name="predict"))
    for name, dtype in feature_dtypes.items():
        if _is_float(dtype):
            values = [ex.features.feature[name].float_list.value[0] for ex in parsed]
            request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=tf.float32))
        else:
            values = [ex.features.feature[name].bytes_list.value[0] for ex in parsed]
            request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
    logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def write_warmup_requests(export_dir: str, examples: Sequence, feature_dtypes: Mapping, model_name: str = "diit") -> str:
    """Write `assets.extra/tf_serving_warmup_requests` under `export_dir`; return its path."""
    logs = warmup_requests(examples, feature_dtypes, model_name)
    path = os.path.join(export_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path
