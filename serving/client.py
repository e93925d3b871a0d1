"""Clients for the served student: gRPC (`tensorflow_serving.apis` PredictionService) and REST (`/v1/models/...`).

Both work against the real TF Serving and against `serving/server.py`. Requests are built from the model's metadata
alone: `GetModelMetadata` lists the `predict` signature's raw feature names and dtypes, so a client needs no copy of
the FeatureSpec.

Example:
    client = GrpcClient("127.0.0.1:8500")
    probs = client.predict_rows([{"user_id": "7", "age": 31.0}])             # signature "predict"
    probs = client.predict_rows(rows, signature="serving_default")           # as serialized tf.Examples
    RestClient("http://127.0.0.1:8501").predict_rows(rows)
"""
from __future__ import annotations

import base64
import csv
import json
import math
import os
import urllib.error
import urllib.request
from typing import Mapping, Optional, Sequence

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2, predict_pb2, prediction_service_pb2_grpc

from serving.codec import serialize_rows

MODEL_NAME = "diit"
OUTPUT_KEY = "probabilities"
_DTYPES = {"DT_STRING": "string", "DT_FLOAT": "float"}


class ServingClientError(RuntimeError):
    """A request the server refused; `code` is the gRPC status name or the HTTP status."""

    def __init__(self, code, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def signatures_from_map(signature_defs: Mapping) -> dict:
    """{signature: {"inputs": {name: "string"|"float"|dtype name}, "outputs": {...}}} from SignatureDef protos or
    their JSON form (REST metadata)."""
    out = {}
    for name, sig in signature_defs.items():
        if not isinstance(sig, dict):
            sig = json_format.MessageToDict(sig, preserving_proto_field_name=True)
        out[name] = {
            part: {k: _DTYPES.get(v.get("dtype"), v.get("dtype")) for k, v in sig.get(part, {}).items()}
            for part in ("inputs", "outputs")
        }
    return out


def raw_features(signatures: Mapping, signature: str = "predict") -> dict:
    """Raw feature name -> "string"|"float", read from the `predict` signature's inputs."""
    if signature not in signatures:
        raise ValueError(f"model has no {signature!r} signature; available: {sorted(signatures)}")
    return dict(signatures[signature]["inputs"])


def columns_from_rows(rows: Sequence[Mapping], features: Mapping) -> dict:
    """Rows -> {feature: list}, converting values to the feature's dtype; errors name the row and feature."""
    if not rows:
        raise ValueError("no rows to predict: the input is empty")
    columns = {name: [] for name in features}
    for i, row in enumerate(rows):
        for name, dtype in features.items():
            if name not in row or row[name] is None or row[name] == "":
                raise ValueError(f"row {i} is missing feature {name!r}; expected {sorted(features)}")
            value = row[name]
            if dtype == "float":
                try:
                    if isinstance(value, bool):  # JSON true/false is not a number here (float(True) is 1.0)
                        raise TypeError
                    number = float(value)
                except (TypeError, ValueError):
                    raise ValueError(f"row {i} feature {name!r} should be a number. Received: {value!r}") from None
                if not math.isfinite(number):  # NaN/inf would be scored silently (NaN came back as 0.5)
                    raise ValueError(f"row {i} feature {name!r} should be a finite number. Received: {value!r}")
                columns[name].append(number)
            else:
                if isinstance(value, (dict, list, bool)):
                    raise ValueError(f"row {i} feature {name!r} should be a string or a number. Received: {value!r}")
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                columns[name].append(value if isinstance(value, bytes) else str(value).encode())
    return columns


def read_rows(path: str) -> list:
    """Rows from a CSV file (header = raw feature names) or a JSON file (a list of objects, or
    `{"instances": [...]}`). Extra columns (label, domain) are ignored by the request builders."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"--input {path!r} does not exist")
    if path.endswith(".json"):
        with open(path) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as err:
                raise ValueError(f"--input {path!r} is not valid JSON: {err}") from None
        if isinstance(data, dict) and "instances" in data:
            data = data["instances"]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ValueError(f"--input {path!r} should hold a JSON list of objects (feature name -> value)")
        return data
    if path.endswith(".csv"):
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = []
            for row in reader:
                if None in row:  # more fields than the header names: a value with an unquoted comma, a lost column
                    width = len(reader.fieldnames)
                    raise ValueError(f"--input {path!r} line {reader.line_num} has {width + len(row[None])} fields; "
                                     f"its header has {width}")
                rows.append(row)
            return rows
    raise ValueError(f"--input {path!r} should be a .csv or .json file")


def build_predict_request(rows: Sequence[Mapping], features: Mapping, signature: str = "predict",
                          model_name: str = MODEL_NAME, version: Optional[int] = None) -> predict_pb2.PredictRequest:
    """A `PredictRequest` for `rows`: raw feature tensors (`predict`) or serialized tf.Examples (`serving_default`)."""
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
    if version is not None:
        request.model_spec.version.value = version
    columns = columns_from_rows(rows, features)
    if signature == "serving_default":
        rows_typed = [{k: columns[k][i] for k in features} for i in range(len(rows))]
        request.inputs["examples"].CopyFrom(tf.make_tensor_proto(serialize_rows(rows_typed, features), dtype=tf.string))
    else:
        for name, dtype in features.items():
            request.inputs[name].CopyFrom(
                tf.make_tensor_proto(columns[name], dtype=tf.float32 if dtype == "float" else tf.string))
    return request


class GrpcClient:
    """gRPC client of `tensorflow.serving.PredictionService` (TF Serving or `serving/server.py`)."""

    def __init__(self, target: str, model_name: str = MODEL_NAME, timeout: float = 10.0):
        self.target = target
        self.model_name = model_name
        self.timeout = timeout
        self.channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 256 << 20),
                                                              ("grpc.max_send_message_length", 256 << 20)])
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self._signatures = None

    def close(self) -> None:
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise ServingClientError(err.code().name, err.details()) from None

    def metadata(self, version: Optional[int] = None) -> get_model_metadata_pb2.GetModelMetadataResponse:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = self.model_name
        if version is not None:
            request.model_spec.version.value = version
        return self._call(self.stub.GetModelMetadata, request)

    def signatures(self) -> dict:
        if self._signatures is None:
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            self.metadata().metadata["signature_def"].Unpack(signature_map)
            self._signatures = signatures_from_map(dict(signature_map.signature_def))
        return self._signatures

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        return self._call(self.stub.Predict, request)

    def predict_rows(self, rows: Sequence[Mapping], signature: str = "predict",
                     version: Optional[int] = None) -> np.ndarray:
        """Probabilities, shape (len(rows), 1)."""
        request = build_predict_request(rows, raw_features(self.signatures()), signature, self.model_name, version)
        return tf.make_ndarray(self.predict(request).outputs[OUTPUT_KEY])


class RestClient:
    """REST client of `/v1/models/<name>:predict` and `/metadata` (TF Serving or `serving/server.py`)."""

    def __init__(self, base_url: str, model_name: str = MODEL_NAME, timeout: float = 10.0):
        if "://" not in base_url:
            base_url = "http://" + base_url
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self.timeout = timeout
        self._signatures = None

    def _url(self, version: Optional[int], suffix: str) -> str:
        url = f"{self.base_url}/v1/models/{self.model_name}"
        if version is not None:
            url += f"/versions/{version}"
        return url + suffix

    def request(self, url: str, body: Optional[bytes] = None) -> dict:
        req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            payload = err.read()
            try:
                message = json.loads(payload).get("error", payload.decode(errors="replace"))
            except (json.JSONDecodeError, AttributeError):
                message = payload.decode(errors="replace")
            raise ServingClientError(err.code, message) from None
        except urllib.error.URLError as err:  # no server there: name where we looked
            raise ConnectionError(f"cannot reach the REST server at {url}: {err.reason}") from None

    def metadata(self, version: Optional[int] = None) -> dict:
        return self.request(self._url(version, "/metadata"))

    def signatures(self) -> dict:
        if self._signatures is None:
            sig_map = self.metadata()["metadata"]["signature_def"]["signature_def"]
            self._signatures = signatures_from_map(sig_map)
        return self._signatures

    def predict_json(self, body: dict, version: Optional[int] = None) -> dict:
        return self.request(self._url(version, ":predict"), json.dumps(body).encode())

    def predict_rows(self, rows: Sequence[Mapping], signature: str = "predict",
                     version: Optional[int] = None) -> np.ndarray:
        """Probabilities, shape (len(rows), 1), via the row ("instances") format."""
        features = raw_features(self.signatures())
        columns = columns_from_rows(rows, features)
        if signature == "serving_default":
            typed = [{k: columns[k][i] for k in features} for i in range(len(rows))]
            instances = [{"b64": base64.b64encode(s).decode()} for s in serialize_rows(typed, features)]
        else:
            instances = [{k: (columns[k][i].decode() if isinstance(columns[k][i], bytes) else columns[k][i])
                          for k in features} for i in range(len(rows))]
        body = {"signature_name": signature, "instances": instances}
        return np.asarray(self.predict_json(body, version)["predictions"], dtype=np.float32)
