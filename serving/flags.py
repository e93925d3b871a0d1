"""Command-line flags of the local server, shared by `diit serve` and `python -m serving.server` (no heavy imports)."""

import argparse
import logging
import math
import os

MODEL_NAME = "diit"


def _integer(text: str, low: int, high: int, what: str) -> int:
    """An integer in [low, high], else an argparse error quoting the value (a port of -5 or 70000 was bound
    modulo 65536, to 65531 or 4464; 0 gRPC threads failed inside grpc naming no flag)."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def port(text: str) -> int:
    return _integer(text, 0, 65535, "a port in 0..65535 (0 picks a free one)")


def rest_port(text: str) -> int:
    return _integer(text, -1, 65535, "a port in 0..65535 (0 picks a free one) or -1 (no REST)")


def thread_count(text: str) -> int:
    return _integer(text, 1, 1 << 16, "a positive number of threads")


def poll_seconds(text: str) -> float:
    """Seconds between polls: a finite number >= 0, else an argparse error quoting the value (-1 was taken by
    tensorflow_model_server's command line as 1 s, refused by the built-in server only after the start's checks,
    with a traceback under `python -m serving.server`; nan never polled, inf failed building the command line)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0 (0: load once, never poll), got {text!r}")
    return value


def add_server_arguments(parser) -> None:
    parser.add_argument("--model-dir", required=True,
                        help="model base path: numeric version subdirectories, each a SavedModel (e.g. serving_dir/diit)")
    parser.add_argument("--port", type=port, default=8500, help="gRPC port (0 picks a free one; default 8500)")
    parser.add_argument("--rest-port", type=rest_port, default=8501, help="REST port (0 picks a free one, -1 disables; default 8501)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: loopback only)")
    parser.add_argument("--model-name", default=MODEL_NAME, help="model name clients address (default diit)")
    parser.add_argument("--poll-seconds", type=poll_seconds, default=2.0,
                        help="seconds between checks for a newly pushed version (0 disables; default 2)")
    parser.add_argument("--max-batch", type=int, default=0,
                        help="reject requests with more rows than this with INVALID_ARGUMENT (0 = no limit)")
    parser.add_argument("--grpc-threads", type=thread_count, default=4, help="gRPC worker threads (default 4)")
    parser.add_argument("--tf-threads", type=int, default=0,
                        help="TensorFlow intra-op and inter-op threads (0 = TensorFlow's default, one per core)")
    parser.add_argument("--enable-batching", action="store_true",
                        help="merge concurrent requests into one model call (TF Serving's --enable_batching); "
                        "parameters from --batching-parameters-file, else max_batch_size 1024, 1 ms timeout, "
                        "2 batch threads")
    parser.add_argument("--batching-parameters-file", default=None,
                        help="TF Serving BatchingParameters text proto (e.g. serving/configs/batching_parameters.txt); "
                        "implies --enable-batching")
    parser.add_argument("--no-proto-path", action="store_true",
                        help="built-in server: take every gRPC request through the checked numpy path instead of the "
                        "one graph call that parses TensorProtos, runs the signature and serializes the outputs")
    parser.add_argument("--no-flat-call", action="store_true",
                        help="built-in server: call signatures through TensorFlow's public call instead of the "
                        "private flat call (ConcreteFunction._call_flat; see serving/servable.py)")


def numbered_versions(model_dir: str) -> list:
    """The numeric version subdirectories under the model base path `model_dir` (TF Serving's), highest first."""
    return sorted((int(name) for name in os.listdir(model_dir)
                   if name.isdigit() and os.path.isdir(os.path.join(model_dir, name))), reverse=True)


def check_model_dir(model_dir: str, poll_seconds: float) -> None:
    """--model-dir as a server starts on it (`diit serve`, `python -m serving.server`): a directory; one holding no
    numbered version is refused when --poll-seconds does not poll (nothing would ever be served, the server answered
    "version null" forever), else logged: the server waits for a version to be pushed."""
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"--model-dir {model_dir!r} is not a directory (expected <dir>/<version>/saved_model.pb)")
    if numbered_versions(model_dir):
        return
    if not poll_seconds:  # 0: load once at start, never again (like model_server_argv; ModelServer refuses < 0)
        raise FileNotFoundError(f"--model-dir {model_dir!r} holds no numbered version (a subdirectory such as 1/ "
                                f"holding a SavedModel), and --poll-seconds 0 never looks again: "
                                f"push a version there first, or give --poll-seconds > 0 to wait for one")
    logging.getLogger("diit.serving").warning(
        "--model-dir %r holds no numbered version yet: waiting for one (looking every %g s); requests fail with "
        "UNAVAILABLE until then", model_dir, poll_seconds)
