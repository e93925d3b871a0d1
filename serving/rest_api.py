"""The REST front end: TF Serving's `/v1/models/...` predict and metadata API over the gRPC service's manager.

- `POST /v1/models/<name>[/versions/<v>]:predict` with `{"instances": [...]}` (row format) or `{"inputs": ...}`
  (columnar format); strings may be `{"b64": ...}`.
- `GET /v1/models/<name>[/versions/<v>]/metadata` (the signature_def map) and `GET /v1/models/<name>` (status).
Errors answer `{"error": message}` with the HTTP status of the request error's gRPC code.
"""
from __future__ import annotations

import json
import logging
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

from google.protobuf import json_format

from serving.codec import DEFAULT_SIGNATURE, ServingError, invalid, json_to_array, jsonable, not_found
from serving.grpc_api import PredictionService

log = logging.getLogger("diit.serving")

_ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?"
                    r"(?:(?P<verb>:predict)|(?P<meta>/metadata))?/?$")


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
            raise not_found(f"unknown path {self.path!r}; use /v1/models/<name>[:predict|/metadata]")
        version = match["version"]
        if version is not None and not version.isdigit():
            raise invalid(f"version {version!r} in the path is not a number")
        return match["name"], (int(version) if version is not None else None), bool(match["verb"]), bool(match["meta"])

    def do_GET(self):
        try:
            name, version, is_predict, is_meta = self._route()
            if is_predict:
                raise invalid(":predict needs POST")
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
                raise not_found(f"POST {self.path!r}: only ':predict' accepts POST")
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
            raise invalid(f"request body is not valid JSON: {err}") from None
        if not isinstance(request, dict):
            raise invalid("request body should be a JSON object with 'instances' or 'inputs'")
        signature = request.get("signature_name") or DEFAULT_SIGNATURE
        sig = loaded.signature_defs.get(signature)
        if sig is None:
            raise invalid(f"Serving signature name: {signature!r} not found; available: {sorted(loaded.signature_defs)}")
        if ("instances" in request) == ("inputs" in request):
            raise invalid("request body should have exactly one of 'instances' (row format) or 'inputs' (columnar)")
        row_format = "instances" in request
        columns = _row_columns(request["instances"], sig) if row_format else _columnar(request["inputs"], sig)
        arrays = {}
        for key, values in columns.items():
            if key not in sig.inputs:
                raise invalid(f"request has unknown input {key!r} for signature {signature!r}; expected {sorted(sig.inputs)}")
            arrays[key] = json_to_array(key, values, sig.inputs[key].dtype)
        outputs = loaded.run(signature, arrays, self.service.max_batch, batcher=self.service.batcher)
        return _response(outputs, row_format)


def _row_columns(instances, sig) -> dict:
    """The row format (`"instances"`) as {input: list of values}."""
    if not isinstance(instances, list):
        raise invalid("'instances' should be a list")
    if not instances:
        raise invalid("empty batch: 'instances' is an empty list")
    if len(sig.inputs) == 1 and not all(isinstance(i, dict) and set(i) != {"b64"} for i in instances):
        return {next(iter(sig.inputs)): instances}
    columns = {}
    for row, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise invalid(f"instance {row} should be an object of input name to value")
        for key in instance:
            columns.setdefault(key, [])
        for key in columns:
            if key not in instance:
                raise invalid(f"instance {row} is missing input {key!r}")
            columns[key].append(instance[key])
        if len(instance) != len(columns):
            missing = sorted(set(columns) - set(instance))
            raise invalid(f"instance {row} is missing input(s) {missing}")
    return columns


def _columnar(inputs, sig) -> dict:
    """The columnar format (`"inputs"`) as {input: list of values}; a bare list feeds a one-input signature."""
    if isinstance(inputs, dict):
        return inputs
    if len(sig.inputs) != 1:
        raise invalid(f"'inputs' should be an object of input name to values; expected {sorted(sig.inputs)}")
    return {next(iter(sig.inputs)): inputs}


def _response(outputs: dict, row_format: bool) -> dict:
    """`{"predictions": ...}` (row format) or `{"outputs": ...}` (columnar), as TF Serving answers."""
    if row_format:
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values())).tolist()}
        keys = sorted(outputs)
        n = len(outputs[keys[0]])
        return {"predictions": [{k: jsonable(outputs[k][i]) for k in keys} for i in range(n)]}
    if len(outputs) == 1:
        return {"outputs": next(iter(outputs.values())).tolist()}
    return {"outputs": {k: jsonable(v) for k, v in outputs.items()}}


def make_rest_server(service: PredictionService, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("BoundRestHandler", (RestHandler,), {"service": service})
    httpd = ThreadingHTTPServer((host, port), handler)
    httpd.daemon_threads = True
    return httpd
