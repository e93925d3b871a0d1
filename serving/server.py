"""A local stand-in for TF Serving: the gRPC `PredictionService` and the REST predict/metadata API over a SavedModel.

Production serves the exported student with the real `tensorflow/serving` image (see docs/serving.md and
`serving/configs/`). This server speaks the same protocol, so the same clients, warmup records and load tests run
where that binary is not available. It is laid out as TF Serving is:

| module                | concern                                                                        |
|-----------------------|--------------------------------------------------------------------------------|
| `serving/manager.py`  | which version is served; polling and hot reload (`latest` policy), rollback    |
| `serving/servable.py` | one loaded version: signatures, request checks, the numpy and TensorProto paths |
| `serving/smoke.py`    | the smoke test a new version passes before it serves                           |
| `serving/codec.py`    | request errors with their gRPC status; TensorProto / JSON values to numpy      |
| `serving/grpc_api.py` | `tensorflow.serving.PredictionService` (Predict, GetModelMetadata)             |
| `serving/rest_api.py` | `/v1/models/<name>[/versions/<v>][:predict | /metadata]`                      |
| `serving/batching.py` | server-side batching (TF Serving's BatchingParameters)                         |
| this module           | `ModelServer`: both front ends over one manager; `python -m serving.server`    |

Malformed requests (unknown model/version/signature, missing or unknown input, wrong dtype or shape, empty or
oversize batch, unparsable bytes) get INVALID_ARGUMENT / NOT_FOUND (REST 400 / 404 with `{"error": ...}`) naming
the problem; the server keeps serving. Only `tensorflow`, `grpcio` and `tensorflow_serving.apis` are imported:
never `diit_tf`.

Example:
    server = ModelServer("serving_dir/diit", grpc_port=8500, rest_port=8501)
    server.start(); ...; server.stop()
"""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
from concurrent import futures
from typing import Optional

if __name__ == "__main__":  # an entry point: quiet TensorFlow's C++ logs before it loads
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import grpc  # noqa: E402
import tensorflow as tf  # noqa: E402

from serving.batching import BatchingParameters  # noqa: E402
from serving.flags import MODEL_NAME, add_server_arguments, check_model_dir  # noqa: E402
from serving.grpc_api import PredictionService  # noqa: E402
from serving.manager import ModelManager  # noqa: E402
from serving.rest_api import make_rest_server  # noqa: E402

log = logging.getLogger("diit.serving")


class ModelServer:
    """gRPC + REST front ends over one `ModelManager`.

    Args:
      model_dir: the model base path (numeric version subdirectories, each a SavedModel).
      grpc_port, rest_port: 0 picks a free port; None disables that front end.
      host, model_name, poll_seconds, max_batch, grpc_threads: as the flags of `diit serve` (serving/flags.py).
      batching: merge concurrent requests (None: off, as in TF Serving).
      proto_path: serve well-formed gRPC requests through the fused TensorProto graph call (`--no-proto-path`
        turns it off; see serving/servable.py).
      flat_call: call concrete functions through the flat path (`--no-flat-call` turns it off; see
        `serving.servable.call_concrete`).
    """

    def __init__(self, model_dir: str, grpc_port: Optional[int] = 8500, rest_port: Optional[int] = 8501,
                 host: str = "127.0.0.1", model_name: str = MODEL_NAME, poll_seconds: float = 2.0,
                 max_batch: int = 0, grpc_threads: int = 4, batching: Optional[BatchingParameters] = None,
                 proto_path: bool = True, flat_call: bool = True):
        if max_batch < 0:
            raise ValueError(f"--max-batch should be >= 0 (0 = no limit). Received: {max_batch}")
        if poll_seconds < 0:
            raise ValueError(f"--poll-seconds should be >= 0. Received: {poll_seconds}")
        self.manager = ModelManager(model_dir, model_name, poll_seconds, proto_path=proto_path, flat_call=flat_call)
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
    check_model_dir(args.model_dir, args.poll_seconds)
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
                         batching=batching_from_args(args), proto_path=not getattr(args, "no_proto_path", False),
                         flat_call=not getattr(args, "no_flat_call", False)).start()
    current = server.manager.current
    print(json.dumps({"grpc": f"{args.host}:{server.grpc_port}",
                      "rest": f"http://{args.host}:{server.rest_port}" if server.rest_port else None,
                      "model": args.model_name, "version": current.version if current else None,
                      "model_dir": os.path.abspath(args.model_dir)}), flush=True)
    server.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
