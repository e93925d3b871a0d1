"""A local stand-in for TF Serving: the gRPC `PredictionService` and the REST predict/metadata API over a SavedModel.

Production serves the exported student with the real `tensorflow/serving` image (see docs/serving.md and
`serving/configs/`). This server speaks the same protocol, so the same clients, warmup records and load tests run
where that binary is not available (it is not installable on this machine):

- gRPC `tensorflow.serving.PredictionService`: `Predict`, `GetModelMetadata` (signature_def); `Classify`, `Regress`
  and `MultiInference` answer UNIMPLEMENTED.
- REST: `POST /v1/models/<name>[/versions/<v>]:predict` with `{"instances": [...]}` (row format) or
  `{"inputs": ...}` (columnar), `GET /v1/models/<name>[/versions/<v>]/metadata`, `GET /v1/models/<name>`.
- Serves the highest numeric version under `model_dir` (TF Serving's "latest" policy), polls for newer versions
  and switches without a restart, but only once the new version has loaded and answered its smoke requests (its
  warmup records plus a synthetic one-row request): a corrupt or half-written version never replaces the one being
  served, and is retried only when its directory changes.
- Malformed requests (unknown model/version/signature, missing or unknown input, wrong dtype or shape, empty or
  oversize batch, unparsable bytes) get INVALID_ARGUMENT / NOT_FOUND (REST 400 / 404 with `{"error": ...}`) naming
  the problem; the server keeps serving.

Only `tensorflow`, `grpcio` and `tensorflow_serving.apis` are imported: never `diit_tf`.

Example:
    server = ModelServer("serving_dir/diit", grpc_port=8500, rest_port=8501)
    server.start(); ...; server.stop()
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import os
import re
import signal
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Mapping, Optional

if __name__ == "__main__":  # an entry point: quiet TensorFlow's C++ logs before it loads
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import grpc  # noqa: E402
import numpy as np
import tensorflow as tf
from google.protobuf import json_format, message as pb_message
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2, predict_pb2

from serving.batching import Batcher, BatchingParameters, QueueFullError
from serving.flags import MODEL_NAME, add_server_arguments  # noqa: F401
from serving.warmup import read_warmup_requests

log = logging.getLogger("diit.serving")

DEFAULT_SIGNATURE = "serving_default"
SERVICE = "tensorflow.serving.PredictionService"
_SUPPORTED_DTYPES = {types_pb2.DT_STRING: tf.string, types_pb2.DT_FLOAT: tf.float32}
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


def _invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _dtype_name(dtype: int) -> str:
    return _DTYPE_NAMES.get(dtype) or types_pb2.DataType.Name(dtype)


# ---------------------------------------------------------------------------------------------------------- versions
class LoadedVersion:
    """One loaded SavedModel version: its signatures (callables) and their `SignatureDef`s (for metadata/validation)."""

    def __init__(self, version: int, path: str):
        self.version = version
        self.path = path
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            saved = saved_model_pb2.SavedModel.FromString(f.read())
        if not saved.meta_graphs:
            raise ValueError(f"{path}: saved_model.pb has no meta graph")
        self.signature_defs = {
            k: v for k, v in saved.meta_graphs[0].signature_def.items() if not k.startswith("__")
        }
        self._loaded = tf.saved_model.load(path)
        self.functions = {name: self._loaded.signatures[name] for name in self.signature_defs}
        # Fast path: call the concrete function with its flat argument list, skipping the per-call binding of
        # keyword arguments (~0.2 ms of ~1 ms per call here). `_call_flat` is private TF API, so any surprise
        # falls back to the public keyword call (also forced with DIIT_SERVING_FLAT_CALL=0).
        self._flat = {}
        if os.environ.get("DIIT_SERVING_FLAT_CALL", "1") != "0":
            for name, fn in self.functions.items():
                try:
                    order = [p.name for p in fn.function_type.parameters.values()]
                except AttributeError:
                    continue
                if sorted(order) == sorted(self.signature_defs[name].inputs) and hasattr(fn, "_call_flat"):
                    self._flat[name] = order
        for name, sig in self.signature_defs.items():
            for key, info in sig.inputs.items():
                if info.dtype not in _SUPPORTED_DTYPES:
                    raise ValueError(f"signature {name!r} input {key!r} has unsupported dtype {_dtype_name(info.dtype)}")
        # Fastest path for gRPC: one graph call parses the request's TensorProtos, runs the signature and serializes
        # its outputs (no per-input numpy/eager conversion). Checked against the numpy path by the smoke test.
        self._protos = {}
        if os.environ.get("DIIT_SERVING_PROTO_PATH", "1") != "0":
            for name, sig in self.signature_defs.items():
                self._protos[name] = (list(sig.inputs), _proto_function(self.functions[name], sig))

    def signature_def_map(self) -> get_model_metadata_pb2.SignatureDefMap:
        out = get_model_metadata_pb2.SignatureDefMap()
        for name, sig in self.signature_defs.items():
            out.signature_def[name].CopyFrom(sig)
        return out

    def run(self, signature_name: str, inputs: Mapping[str, np.ndarray], max_batch: int,
            output_filter=(), batcher=None) -> dict:
        """Validate `inputs` against the signature and run it (merged with concurrent requests when a `batcher` is
        given); returns {output name: np.ndarray}."""
        signature_name = signature_name or DEFAULT_SIGNATURE
        sig = self.signature_defs.get(signature_name)
        if sig is None:
            raise _invalid(f"Serving signature name: {signature_name!r} not found in signature def; "
                           f"available: {sorted(self.signature_defs)}")
        missing = sorted(set(sig.inputs) - set(inputs))
        if missing:
            raise _invalid(f"request is missing input(s) {missing} of signature {signature_name!r}; "
                           f"expected {sorted(sig.inputs)}")
        unknown = sorted(set(inputs) - set(sig.inputs))
        if unknown:
            raise _invalid(f"request has unknown input(s) {unknown} for signature {signature_name!r}; "
                           f"expected {sorted(sig.inputs)}")
        batch = None
        for key in sig.inputs:
            value = inputs[key]
            if value.ndim != 1:
                raise _invalid(f"input {key!r} should have shape [batch]. Received shape {list(value.shape)}")
            if batch is None:
                batch = len(value)
            elif len(value) != batch:
                raise _invalid(f"input {key!r} has batch size {len(value)} but other inputs have {batch}")
        if not batch:
            raise _invalid("empty batch: every input has 0 rows")
        if max_batch and batch > max_batch:
            raise _invalid(f"batch size {batch} is larger than the maximum batch size {max_batch} (--max-batch)")
        if batcher is not None and batch > batcher.params.max_batch_size:
            raise _invalid(f"batch size {batch} is larger than the batching max_batch_size "
                           f"{batcher.params.max_batch_size} (--batching-parameters-file)")
        for key in output_filter:
            if key not in sig.outputs:
                raise _invalid(f"output_filter names unknown output {key!r}; available: {sorted(sig.outputs)}")
        if batcher is None:
            outputs = self.execute(signature_name, inputs)
        else:
            try:
                outputs = batcher.submit(self, signature_name, inputs, batch)
            except QueueFullError as err:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, str(err)) from None
        wanted = set(output_filter) or set(outputs)
        return {k: v for k, v in outputs.items() if k in wanted}

    def run_protos(self, signature_name: str, protos, max_batch: int, output_filter=()) -> Optional[dict]:
        """The fast path for a gRPC request's `inputs` map: {output name: serialized TensorProto}, or None when the
        request is not plainly well-formed (then `run` checks it and names the problem)."""
        fused = self._protos.get(signature_name or DEFAULT_SIGNATURE)
        if fused is None:
            return None
        order, fn = fused
        sig = self.signature_defs[signature_name or DEFAULT_SIGNATURE]
        if len(protos) != len(order) or any(k not in sig.outputs for k in output_filter):
            return None
        batch = None
        for key in order:
            proto = protos.get(key)
            if proto is None or proto.dtype != sig.inputs[key].dtype or len(proto.tensor_shape.dim) != 1:
                return None
            rows = proto.tensor_shape.dim[0].size
            if batch is not None and rows != batch:
                return None
            batch = rows
        if batch <= 0 or (max_batch and batch > max_batch):
            return None
        try:
            outputs = fn._call_flat([tf.constant([protos[k].SerializeToString() for k in order])], fn.captured_inputs)
        except (tf.errors.OpError, UnicodeDecodeError):
            return None
        wanted = set(output_filter) or set(outputs)
        return {k: v.numpy() for k, v in outputs.items() if k in wanted}

    def execute(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict:
        """Run a validated request (or a merged batch of them): {input: np.ndarray} -> {output: np.ndarray}."""
        sig = self.signature_defs[signature_name]
        tensors = {key: tf.constant(inputs[key], dtype=_SUPPORTED_DTYPES[info.dtype]) for key, info in sig.inputs.items()}
        try:
            outputs = self._call(signature_name, tensors)
        except tf.errors.InvalidArgumentError as err:
            raise _invalid(f"signature {signature_name!r} rejected the input: {_op_error(err)}") from None
        except UnicodeDecodeError:  # TF fails to format the error of some unparsable inputs (e.g. garbage bytes)
            raise _invalid(f"signature {signature_name!r} rejected the input: it could not be parsed "
                           "(malformed serialized tf.Example?)") from None
        except tf.errors.OpError as err:
            raise ServingError(grpc.StatusCode.INTERNAL, _op_error(err)) from None
        return {k: v.numpy() for k, v in outputs.items()}

    def _call(self, signature_name: str, tensors: dict) -> dict:
        fn = self.functions[signature_name]
        order = self._flat.get(signature_name)
        if order is not None:
            try:
                outputs = fn._call_flat([tensors[k] for k in order], fn.captured_inputs)
                if isinstance(outputs, dict):
                    return outputs
            except (TypeError, AttributeError):  # a calling-convention mismatch, not a bad input
                pass
            self._flat.pop(signature_name, None)  # unexpected: use the public call from now on
        return fn(**tensors)


def _proto_function(fn, sig):
    """Concrete function: [n_inputs] serialized TensorProtos (in `sig.inputs` order) -> {output: serialized proto}."""
    order = list(sig.inputs)
    dtypes = [_SUPPORTED_DTYPES[sig.inputs[k].dtype] for k in order]

    @tf.function(input_signature=[tf.TensorSpec([len(order)], tf.string)])
    def call(protos):
        inputs = {k: tf.ensure_shape(tf.io.parse_tensor(protos[i], dtype), [None])
                  for i, (k, dtype) in enumerate(zip(order, dtypes))}
        return {k: tf.io.serialize_tensor(v) for k, v in fn(**inputs).items()}

    return call.get_concrete_function()


def _op_error(err: tf.errors.OpError) -> str:
    """The useful line(s) of a TF op error, without "Graph execution error", node names and stack notes."""
    keep = []
    for line in err.message.splitlines():
        line = re.sub(r"\s*\[Op:[^\]]*\]$", "", line).strip()
        if not line or line.startswith(("Graph execution error", "Detected at node", "<stack traces", "[[", "File ")):
            continue
        keep.append(line)
    return " ".join(keep) or err.message


def _dir_fingerprint(path: str) -> tuple:
    """Changes whenever a file under `path` is added, removed, resized or touched (to retry a failed version)."""
    items = []
    for root, _, files in os.walk(path):
        for name in files:
            try:
                st = os.stat(os.path.join(root, name))
            except OSError:
                continue
            items.append((os.path.relpath(os.path.join(root, name), path), st.st_size, st.st_mtime_ns))
    return tuple(sorted(items))


def _smoke_requests(version: LoadedVersion) -> list:
    """(signature, inputs) pairs a new version must answer: its warmup records and a synthetic one-row request."""
    requests = []
    for request in read_warmup_requests(version.path):
        inputs = {k: tensor_proto_to_array(k, v) for k, v in request.inputs.items()}
        requests.append((request.model_spec.signature_name or DEFAULT_SIGNATURE, inputs))
    for name, sig in version.signature_defs.items():
        infos = dict(sig.inputs)
        if list(infos) == ["examples"]:
            continue  # serialized examples: covered by the warmup records
        if all(i.dtype in _SUPPORTED_DTYPES for i in infos.values()):
            requests.append((name, {
                k: np.array([b"0"], dtype=object) if i.dtype == types_pb2.DT_STRING else np.zeros([1], np.float32)
                for k, i in infos.items()
            }))
    return requests


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal shapes and values (floats up to rounding: the fused graph may be optimized differently)."""
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f":
        return bool(np.allclose(a, b, rtol=1e-5, atol=1e-6))
    return bool(np.array_equal(a, b))


def smoke_test(version: LoadedVersion, max_batch: int = 0) -> None:
    """Raise if `version` fails a smoke request or returns non-finite / out-of-range probabilities. A signature
    whose TensorProto fast path does not return exactly what the numpy path returns loses its fast path."""
    for signature, inputs in _smoke_requests(version):
        outputs = version.run(signature, inputs, max_batch=0)
        for key, value in outputs.items():
            if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                raise ValueError(f"signature {signature!r} output {key!r} is not finite")
            if key == "probabilities" and not np.all((value >= 0) & (value <= 1)):
                raise ValueError(f"signature {signature!r} returned probabilities outside [0, 1]")
        if signature in version._protos:
            protos = predict_pb2.PredictRequest()
            for key, value in inputs.items():
                protos.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            fast = version.run_protos(signature, protos.inputs, max_batch=0)
            same = fast is not None and set(fast) == set(outputs) and all(
                _same(tf.make_ndarray(tensor_pb2.TensorProto.FromString(fast[k])), outputs[k]) for k in outputs)
            if not same:
                log.warning("signature %r: the TensorProto fast path disagrees with the numpy path; not using it",
                            signature)
                version._protos.pop(signature)


class ModelManager:
    """Keeps the highest good numeric version under `model_dir` loaded; polls for newer ones."""

    def __init__(self, model_dir: str, model_name: str = MODEL_NAME, poll_seconds: float = 2.0):
        if not os.path.isdir(model_dir):
            raise FileNotFoundError(f"--model-dir {model_dir!r} is not a directory (expected <dir>/<version>/saved_model.pb)")
        self.model_dir = model_dir
        self.model_name = model_name
        self.poll_seconds = poll_seconds
        self.current: Optional[LoadedVersion] = None
        self.failed = {}  # version -> (fingerprint, error message)
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    def versions(self) -> list:
        found = []
        for name in os.listdir(self.model_dir):
            if name.isdigit() and os.path.isdir(os.path.join(self.model_dir, name)):
                found.append(int(name))
        return sorted(found, reverse=True)

    def poll_once(self) -> bool:
        """Load the newest version that is newer than the served one and passes the smoke test. True if switched."""
        with self._lock:
            served = self.current.version if self.current else -1
            # Rollback: when the served version's directory is removed, the highest remaining good version takes
            # over (as with TF Serving's `latest` policy); until one loads, the removed version keeps serving.
            floor = served if self.current is None or os.path.isdir(self.current.path) else -1
            for version in self.versions():
                if version <= floor or version == served:
                    break
                path = os.path.join(self.model_dir, str(version))
                fingerprint = _dir_fingerprint(path)
                if version in self.failed and self.failed[version][0] == fingerprint:
                    continue
                try:
                    candidate = LoadedVersion(version, path)
                    smoke_test(candidate)
                except Exception as err:  # noqa: BLE001 -- any failure keeps the served version
                    message = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                    self.failed[version] = (fingerprint, message)
                    log.warning("model %s version %d not loaded (keeping version %s): %s",
                                self.model_name, version, served if served >= 0 else "none", message)
                    continue
                self.current = candidate
                self.failed.pop(version, None)
                log.warning("serving model %s version %d from %s", self.model_name, version, path)
                return True
        return False

    def start(self) -> None:
        self.poll_once()
        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._loop, name="diit-version-poller", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 -- the poller must survive e.g. a vanished directory
                log.exception("version poll failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def resolve(self, name: str, version: Optional[int] = None, label: str = "") -> LoadedVersion:
        if name != self.model_name:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: unknown model {name!r}; "
                               f"this server serves {self.model_name!r}")
        current = self.current
        if current is None:
            raise ServingError(grpc.StatusCode.UNAVAILABLE,
                               f"model {name!r} has no servable version under {self.model_dir} yet")
        if label:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"version label {label!r} of model {name!r} is not defined")
        if version is not None and version != current.version:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"version {version} of model {name!r} is not available; "
                               f"serving version {current.version}")
        return current


# ------------------------------------------------------------------------------------------------ tensor conversion
def tensor_proto_to_array(name: str, proto) -> np.ndarray:
    """TensorProto -> numpy, checking the dtype is one a signature can take; errors name the input."""
    if proto.dtype not in _SUPPORTED_DTYPES:
        raise _invalid(f"input {name!r} has dtype {_dtype_name(proto.dtype)}; expected DT_STRING or DT_FLOAT")
    try:
        value = tf.make_ndarray(proto)
    except Exception as err:  # noqa: BLE001 -- malformed tensor content
        raise _invalid(f"input {name!r} is not a valid tensor: {err}") from None
    return value


def _check_dtype(version: LoadedVersion, signature: str, name: str, proto_dtype: int) -> None:
    sig = version.signature_defs.get(signature or DEFAULT_SIGNATURE)
    if sig is not None and name in sig.inputs and sig.inputs[name].dtype != proto_dtype:
        raise _invalid(f"input {name!r} should have dtype {_dtype_name(sig.inputs[name].dtype)}. "
                       f"Received: {_dtype_name(proto_dtype)}")


def json_to_array(name: str, values, dtype: int) -> np.ndarray:
    """JSON values of one input -> numpy of the signature's dtype; strings may be {"b64": ...}."""
    if not isinstance(values, list):
        raise _invalid(f"input {name!r} should be a list of values. Received: {type(values).__name__}")
    if dtype == types_pb2.DT_STRING:
        out = []
        for v in values:
            if isinstance(v, dict) and set(v) == {"b64"}:
                try:
                    out.append(base64.b64decode(v["b64"], validate=True))
                except (binascii.Error, TypeError, ValueError):
                    raise _invalid(f"input {name!r} has an invalid base64 value") from None
            elif isinstance(v, str):
                out.append(v.encode())
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append(str(int(v) if float(v).is_integer() else v).encode())
            else:
                raise _invalid(f"input {name!r} should hold strings (DT_STRING). Received: {json.dumps(v)[:60]}")
        return np.array(out, dtype=object)
    try:
        arr = np.array(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise _invalid(f"input {name!r} should hold numbers (DT_FLOAT). Received: {json.dumps(values)[:60]}") from None
    if any(isinstance(v, (str, bool)) for v in values):
        raise _invalid(f"input {name!r} should hold numbers (DT_FLOAT). Received a string or boolean")
    return arr


# ------------------------------------------------------------------------------------------------------------- gRPC
class PredictionService:
    """`tensorflow.serving.PredictionService` over a `ModelManager`. Requests are parsed here (not by gRPC) so
    unparsable bytes become INVALID_ARGUMENT instead of a generic INTERNAL error."""

    def __init__(self, manager: ModelManager, max_batch: int = 0, batching: Optional[BatchingParameters] = None):
        self.manager = manager
        self.max_batch = max_batch
        self.batcher = Batcher(batching, LoadedVersion.execute) if batching is not None else None

    def stop(self) -> None:
        if self.batcher is not None:
            self.batcher.stop()

    @staticmethod
    def _parse(cls, data: bytes, context):
        try:
            return cls.FromString(data)
        except (pb_message.DecodeError, RuntimeError, ValueError) as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request is not a valid {cls.__name__}: {err}")

    def Predict(self, data: bytes, context) -> bytes:
        request = self._parse(predict_pb2.PredictRequest, data, context)
        try:
            return self.predict(request).SerializeToString()
        except ServingError as err:
            context.abort(err.code, err.message)

    def predict(self, request) -> predict_pb2.PredictResponse:
        spec = request.model_spec
        version = self.manager.resolve(spec.name, spec.version.value if spec.HasField("version") else None,
                                       spec.version_label)
        signature = spec.signature_name or DEFAULT_SIGNATURE
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.manager.model_name
        response.model_spec.version.value = version.version
        response.model_spec.signature_name = signature
        fast = None if self.batcher else version.run_protos(signature, request.inputs, self.max_batch,
                                                              tuple(request.output_filter))
        if fast is not None:
            for key, blob in fast.items():
                response.outputs[key].ParseFromString(blob)
            return response
        inputs = {}
        for key, proto in request.inputs.items():
            _check_dtype(version, signature, key, proto.dtype)
            inputs[key] = tensor_proto_to_array(key, proto)
        outputs = version.run(signature, inputs, self.max_batch, tuple(request.output_filter), self.batcher)
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, data: bytes, context) -> bytes:
        request = self._parse(get_model_metadata_pb2.GetModelMetadataRequest, data, context)
        try:
            return self.metadata(request).SerializeToString()
        except ServingError as err:
            context.abort(err.code, err.message)

    def metadata(self, request) -> get_model_metadata_pb2.GetModelMetadataResponse:
        spec = request.model_spec
        version = self.manager.resolve(spec.name, spec.version.value if spec.HasField("version") else None,
                                       spec.version_label)
        fields = list(request.metadata_field)
        if not fields:
            raise _invalid("GetModelMetadataRequest must specify at least one metadata_field (e.g. 'signature_def')")
        unknown = [f for f in fields if f != "signature_def"]
        if unknown:
            raise _invalid(f"Metadata field(s) {unknown} not supported; supported: ['signature_def']")
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.manager.model_name
        response.model_spec.version.value = version.version
        response.metadata["signature_def"].Pack(version.signature_def_map())
        return response

    def unimplemented(self, data: bytes, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "only Predict and GetModelMetadata are implemented by this server")

    def handler(self) -> grpc.GenericRpcHandler:
        def unary(fn):
            return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=None, response_serializer=None)

        return grpc.method_handlers_generic_handler(SERVICE, {
            "Predict": unary(self.Predict),
            "GetModelMetadata": unary(self.GetModelMetadata),
            "Classify": unary(self.unimplemented),
            "Regress": unary(self.unimplemented),
            "MultiInference": unary(self.unimplemented),
        })


# ------------------------------------------------------------------------------------------------------------- REST
_ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?:(?P<verb>:predict)|(?P<meta>/metadata))?/?$")


class RestHandler(BaseHTTPRequestHandler):
    service: PredictionService = None  # set on a subclass by `make_rest_server`
    protocol_version = "HTTP/1.1"
    server_version = "diit-serving"

    def log_message(self, fmt, *args):  # quiet: requests are not logged one by one
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self):
        match = _ROUTE.match(self.path.split("?")[0])
        if not match:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"unknown path {self.path!r}; use /v1/models/<name>[:predict|/metadata]")
        version = match["version"]
        if version is not None and not version.isdigit():
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"version {version!r} in the path is not a number")
        return match["name"], (int(version) if version is not None else None), bool(match["verb"]), bool(match["meta"])

    def do_GET(self):
        try:
            name, version, is_predict, is_meta = self._route()
            if is_predict:
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, ":predict needs POST")
            loaded = self.service.manager.resolve(name, version)
            if is_meta:
                meta = json_format.MessageToDict(loaded.signature_def_map(), preserving_proto_field_name=True)
                self._send(200, {"model_spec": {"name": name, "signature_name": "", "version": str(loaded.version)},
                                 "metadata": {"signature_def": meta}})
            else:
                self._send(200, {"model_version_status": [{"version": str(loaded.version), "state": "AVAILABLE",
                                                           "status": {"error_code": "OK", "error_message": ""}}]})
        except ServingError as err:
            self._send(err.http_status, {"error": err.message})

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            name, version, is_predict, _ = self._route()
            if not is_predict:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"POST {self.path!r}: only ':predict' accepts POST")
            self._send(200, self.predict(name, version, body))
        except ServingError as err:
            self._send(err.http_status, {"error": err.message})
        except Exception as err:  # noqa: BLE001 -- never let one request kill the handler thread silently
            log.exception("REST request failed")
            self._send(500, {"error": f"internal error: {type(err).__name__}: {err}"})

    def predict(self, name: str, version: Optional[int], body: bytes) -> dict:
        loaded = self.service.manager.resolve(name, version)
        try:
            request = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise _invalid(f"request body is not valid JSON: {err}") from None
        if not isinstance(request, dict):
            raise _invalid("request body should be a JSON object with 'instances' or 'inputs'")
        signature = request.get("signature_name") or DEFAULT_SIGNATURE
        sig = loaded.signature_defs.get(signature)
        if sig is None:
            raise _invalid(f"Serving signature name: {signature!r} not found; available: {sorted(loaded.signature_defs)}")
        if ("instances" in request) == ("inputs" in request):
            raise _invalid("request body should have exactly one of 'instances' (row format) or 'inputs' (columnar)")
        row_format = "instances" in request
        if row_format:
            instances = request["instances"]
            if not isinstance(instances, list):
                raise _invalid("'instances' should be a list")
            if not instances:
                raise _invalid("empty batch: 'instances' is an empty list")
            if len(sig.inputs) == 1 and not all(isinstance(i, dict) and set(i) != {"b64"} for i in instances):
                columns = {next(iter(sig.inputs)): instances}
            else:
                columns = {}
                for row, instance in enumerate(instances):
                    if not isinstance(instance, dict):
                        raise _invalid(f"instance {row} should be an object of input name to value")
                    for key in instance:
                        columns.setdefault(key, [])
                    for key in columns:
                        if key not in instance:
                            raise _invalid(f"instance {row} is missing input {key!r}")
                        columns[key].append(instance[key])
                    if len(instance) != len(columns):
                        missing = sorted(set(columns) - set(instance))
                        raise _invalid(f"instance {row} is missing input(s) {missing}")
        else:
            columns = request["inputs"]
            if not isinstance(columns, dict):
                if len(sig.inputs) != 1:
                    raise _invalid(f"'inputs' should be an object of input name to values; expected {sorted(sig.inputs)}")
                columns = {next(iter(sig.inputs)): columns}
        arrays = {}
        for key, values in columns.items():
            if key not in sig.inputs:
                raise _invalid(f"request has unknown input {key!r} for signature {signature!r}; expected {sorted(sig.inputs)}")
            arrays[key] = json_to_array(key, values, sig.inputs[key].dtype)
        outputs = loaded.run(signature, arrays, self.service.max_batch, batcher=self.service.batcher)
        if row_format:
            if len(outputs) == 1:
                return {"predictions": next(iter(outputs.values())).tolist()}
            keys = sorted(outputs)
            n = len(outputs[keys[0]])
            return {"predictions": [{k: _jsonable(outputs[k][i]) for k in keys} for i in range(n)]}
        if len(outputs) == 1:
            return {"outputs": next(iter(outputs.values())).tolist()}
        return {"outputs": {k: _jsonable(v) for k, v in outputs.items()}}


def _jsonable(value):
    value = np.asarray(value)
    if value.dtype == object:
        return [v.decode(errors="replace") if isinstance(v, bytes) else v for v in value.ravel().tolist()]
    return value.tolist()


def make_rest_server(service: PredictionService, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("BoundRestHandler", (RestHandler,), {"service": service})
    httpd = ThreadingHTTPServer((host, port), handler)
    httpd.daemon_threads = True
    return httpd


# ----------------------------------------------------------------------------------------------------------- server
class ModelServer:
    """gRPC + REST front ends over one `ModelManager`. `grpc_port`/`rest_port` 0 picks a free port; None disables."""

    def __init__(self, model_dir: str, grpc_port: Optional[int] = 8500, rest_port: Optional[int] = 8501,
                 host: str = "127.0.0.1", model_name: str = MODEL_NAME, poll_seconds: float = 2.0,
                 max_batch: int = 0, grpc_threads: int = 4, batching: Optional[BatchingParameters] = None):
        if max_batch < 0:
            raise ValueError(f"--max-batch should be >= 0 (0 = no limit). Received: {max_batch}")
        if poll_seconds < 0:
            raise ValueError(f"--poll-seconds should be >= 0. Received: {poll_seconds}")
        self.manager = ModelManager(model_dir, model_name, poll_seconds)
        self.service = PredictionService(self.manager, max_batch, batching)
        self.host = host
        self._grpc_port, self._rest_port, self.grpc_threads = grpc_port, rest_port, grpc_threads
        self.grpc_server = None
        self.httpd = None
        self.grpc_port = None
        self.rest_port = None
        self._rest_thread = None
        self._stopped = threading.Event()

    def start(self) -> "ModelServer":
        self.manager.start()
        if self._grpc_port is not None:
            self.grpc_server = grpc.server(
                futures.ThreadPoolExecutor(max_workers=self.grpc_threads, thread_name_prefix="diit-grpc"),
                options=[("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 256 << 20),
                         ("grpc.so_reuseport", 0)],
            )
            self.grpc_server.add_generic_rpc_handlers((self.service.handler(),))
            self.grpc_port = self.grpc_server.add_insecure_port(f"{self.host}:{self._grpc_port}")
            if not self.grpc_port:
                raise OSError(f"cannot bind gRPC port {self.host}:{self._grpc_port}")
            self.grpc_server.start()
        if self._rest_port is not None:
            self.httpd = make_rest_server(self.service, self.host, self._rest_port)
            self.rest_port = self.httpd.server_address[1]
            self._rest_thread = threading.Thread(target=self.httpd.serve_forever, name="diit-rest", daemon=True)
            self._rest_thread.start()
        return self

    def stop(self, grace: float = 2.0) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
        if self.grpc_server:
            self.grpc_server.stop(grace).wait(grace + 1)
        self.service.stop()
        self.manager.stop()

    def wait(self) -> None:
        """Block until SIGTERM/SIGINT (main thread) or `stop()`."""
        def _on_signal(signum, frame):
            log.warning("received signal %d, shutting down", signum)
            threading.Thread(target=self.stop, daemon=True).start()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _on_signal)
            signal.signal(signal.SIGINT, _on_signal)
        while not self._stopped.wait(0.5):
            pass
        if self.grpc_server:
            self.grpc_server.wait_for_termination(timeout=5)


def main(argv=None) -> int:
    """`python -m serving.server --model-dir D`: the same as `diit serve` (without the TF Serving exec)."""
    import argparse

    parser = argparse.ArgumentParser(description="Local TF-Serving-compatible server for the exported DIIT student.")
    add_server_arguments(parser)
    args = parser.parse_args(argv)
    return run_local(args)


def batching_from_args(args) -> Optional[BatchingParameters]:
    """`--batching-parameters-file F` (implies batching) or `--enable-batching` (defaults); None when off."""
    path = getattr(args, "batching_parameters_file", None)
    if path:
        return BatchingParameters.from_file(path)
    return BatchingParameters() if getattr(args, "enable_batching", False) else None


def run_local(args) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    threads = getattr(args, "tf_threads", 0)
    if threads < 0:
        raise ValueError(f"--tf-threads should be >= 0. Received: {threads}")
    if threads:  # must happen before the first TF op (model loading)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    server = ModelServer(args.model_dir, grpc_port=args.port, rest_port=None if args.rest_port < 0 else args.rest_port,
                         host=args.host, model_name=args.model_name, poll_seconds=args.poll_seconds,
                         max_batch=args.max_batch, grpc_threads=args.grpc_threads,
                         batching=batching_from_args(args)).start()
    current = server.manager.current
    print(json.dumps({"grpc": f"{args.host}:{server.grpc_port}",
                      "rest": f"http://{args.host}:{server.rest_port}" if server.rest_port else None,
                      "model": args.model_name, "version": current.version if current else None,
                      "model_dir": os.path.abspath(args.model_dir)}), flush=True)
    server.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
