"""Request errors and value conversion: TensorProto / JSON values -> numpy (server), raw rows -> `tf.Example`s
(client, load test).

Every conversion error of the server is a `ServingError` carrying the gRPC status TF Serving would answer with (REST
maps it to an HTTP status) and a message naming the input. Nothing here imports `diit_tf`: serving needs a
SavedModel and TF Serving's protos only, so the row encoder is serving's own (the exporter has the same one,
`diit_tf/warmup.py`, on its side of that boundary).

Example:
    array = json_to_array("user_id", ["7", {"b64": "OA=="}], types_pb2.DT_STRING)   # -> array([b"7", b"8"])
"""
from __future__ import annotations

import base64
import binascii
import json
from typing import Iterable, Mapping

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

DEFAULT_SIGNATURE = "serving_default"
SUPPORTED_DTYPES = {types_pb2.DT_STRING: tf.string, types_pb2.DT_FLOAT: tf.float32}
_DTYPE_NAMES = {types_pb2.DT_STRING: "DT_STRING", types_pb2.DT_FLOAT: "DT_FLOAT"}


class ServingError(Exception):
    """A request error with its gRPC status code; REST maps it to an HTTP status."""

    HTTP = {
        grpc.StatusCode.INVALID_ARGUMENT: 400,
        grpc.StatusCode.NOT_FOUND: 404,
        grpc.StatusCode.UNIMPLEMENTED: 501,
        grpc.StatusCode.UNAVAILABLE: 503,
        grpc.StatusCode.INTERNAL: 500,
    }

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return self.HTTP.get(self.code, 500)


def invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def dtype_name(dtype: int) -> str:
    return _DTYPE_NAMES.get(dtype) or types_pb2.DataType.Name(dtype)


def tensor_proto_to_array(name: str, proto) -> np.ndarray:
    """TensorProto -> numpy, checking the dtype is one a signature can take; errors name the input."""
    if proto.dtype not in SUPPORTED_DTYPES:
        raise invalid(f"input {name!r} has dtype {dtype_name(proto.dtype)}; expected DT_STRING or DT_FLOAT")
    try:
        value = tf.make_ndarray(proto)
    except Exception as err:  # noqa: BLE001 -- malformed tensor content
        raise invalid(f"input {name!r} is not a valid tensor: {err}") from None
    return value


def check_dtype(signature_def, name: str, proto_dtype: int) -> None:
    """Refuse a request tensor whose dtype differs from the signature's input `name` (unknown names pass here)."""
    if signature_def is not None and name in signature_def.inputs and signature_def.inputs[name].dtype != proto_dtype:
        raise invalid(f"input {name!r} should have dtype {dtype_name(signature_def.inputs[name].dtype)}. "
                      f"Received: {dtype_name(proto_dtype)}")


def json_to_array(name: str, values, dtype: int) -> np.ndarray:
    """JSON values of one input -> numpy of the signature's dtype; strings may be {"b64": ...}."""
    if not isinstance(values, list):
        raise invalid(f"input {name!r} should be a list of values. Received: {type(values).__name__}")
    if dtype == types_pb2.DT_STRING:
        out = []
        for v in values:
            if isinstance(v, dict) and set(v) == {"b64"}:
                try:
                    out.append(base64.b64decode(v["b64"], validate=True))
                except (binascii.Error, TypeError, ValueError):
                    raise invalid(f"input {name!r} has an invalid base64 value") from None
            elif isinstance(v, str):
                out.append(v.encode())
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append(str(int(v) if float(v).is_integer() else v).encode())
            else:
                raise invalid(f"input {name!r} should hold strings (DT_STRING). Received: {json.dumps(v)[:60]}")
        return np.array(out, dtype=object)
    try:
        arr = np.array(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise invalid(f"input {name!r} should hold numbers (DT_FLOAT). Received: {json.dumps(values)[:60]}") from None
    if any(isinstance(v, (str, bool)) for v in values):
        raise invalid(f"input {name!r} should hold numbers (DT_FLOAT). Received a string or boolean")
    return arr


def jsonable(value):
    """A numpy output as JSON values (bytes decoded as UTF-8)."""
    value = np.asarray(value)
    if value.dtype == object:
        return [v.decode(errors="replace") if isinstance(v, bytes) else v for v in value.ravel().tolist()]
    return value.tolist()


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
