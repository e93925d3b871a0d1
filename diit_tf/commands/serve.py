"""`diit serve`: serve the exported student over gRPC (:8500) and REST (:8501) like TF Serving."""
from __future__ import annotations

import os
import shutil
import tempfile


def register(subparsers) -> None:
    from serving.flags import add_server_arguments

    parser = subparsers.add_parser(
        "serve",
        help="serve the exported student (TF Serving gRPC + REST API, hot reload of new versions)",
        description="Serve the highest numeric version under --model-dir as model 'diit' over TF Serving's gRPC "
        "PredictionService (Predict, GetModelMetadata) and REST API (/v1/models/diit:predict, /metadata). A newly "
        "pushed version is picked up without restart once it loads and answers a smoke request. If "
        "`tensorflow_model_server` is on PATH it is exec'd with equivalent flags; otherwise the built-in "
        "Python server (serving/server.py) runs. SIGTERM shuts down cleanly.",
        epilog="example: diit serve --model-dir runs/serving/diit --port 8500 --rest-port 8501 --max-batch 1024",
    )
    add_server_arguments(parser)
    parser.add_argument("--no-model-server", action="store_true",
                        help="always use the built-in server even if tensorflow_model_server is on PATH")
    parser.set_defaults(func=run)


def model_server_argv(binary: str, args) -> list:
    """The `tensorflow_model_server` command line equivalent to `args`."""
    argv = [binary, f"--port={args.port}", f"--model_name={args.model_name}",
            f"--model_base_path={os.path.abspath(args.model_dir)}",
            f"--file_system_poll_wait_seconds={max(1, int(round(args.poll_seconds))) if args.poll_seconds else 0}",
            "--enable_model_warmup=true"]
    if args.rest_port >= 0:
        argv.append(f"--rest_api_port={args.rest_port}")
    path = getattr(args, "batching_parameters_file", None)
    if path:
        argv += ["--enable_batching=true", f"--batching_parameters_file={os.path.abspath(path)}"]
    elif args.max_batch or getattr(args, "enable_batching", False):
        from serving.batching import BatchingParameters

        params = BatchingParameters(max_batch_size=args.max_batch) if args.max_batch else BatchingParameters()
        path = os.path.join(tempfile.mkdtemp(prefix="diit-batching-"), "batching_parameters.txt")
        with open(path, "w") as f:
            f.write(params.to_text())
        argv += ["--enable_batching=true", f"--batching_parameters_file={path}"]
    return argv


def run(args) -> int:
    from serving.flags import check_model_dir

    check_model_dir(args.model_dir, args.poll_seconds)  # for tensorflow_model_server too: it would wait as well
    binary = None if args.no_model_server else shutil.which("tensorflow_model_server")
    if binary:
        argv = model_server_argv(binary, args)
        print("exec " + " ".join(argv), flush=True)
        os.execv(binary, argv)
    from serving.server import run_local

    return run_local(args)
