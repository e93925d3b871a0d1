"""`diit loadtest`: a bounded loopback load test of the gRPC server, printing latency percentiles and QPS."""
from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "loadtest",
        help="load-test a running server over loopback gRPC: p50/p95/p99 latency, QPS, errors (JSON)",
        description="Closed-loop load test: --concurrency workers, each with one request of --batch rows in flight, "
        "until --requests requests are done or --max-seconds pass. Rows come from --input or are synthesized from "
        "the model's metadata. Prints JSON with p50_ms, p95_ms, p99_ms, qps, errors. Loopback targets only.",
        epilog="example: diit loadtest --target 127.0.0.1:8500 --concurrency 4 --batch 100 --requests 10000",
    )
    parser.add_argument("--target", default="127.0.0.1:8500", help="HOST:PORT of the gRPC server (loopback only)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    parser.add_argument("--batch", type=int, default=100, help="rows per request (default 100)")
    parser.add_argument("--requests", type=int, default=1000, help="number of requests (default 1000, max 1000000)")
    parser.add_argument("--input", default=None, help="optional .csv/.json rows to send (cycled to --batch rows)")
    parser.add_argument("--signature", default="predict", choices=["predict", "serving_default"],
                        help="signature to call (default predict)")
    parser.add_argument("--model-name", default="diit", help="served model name (default diit)")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="stop after this many seconds (default 120)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from serving.client import read_rows
    from serving.loadtest import run_loadtest

    rows = read_rows(args.input) if args.input else None
    result = run_loadtest(args.target, args.concurrency, args.batch, args.requests, rows=rows,
                          signature=args.signature, model_name=args.model_name, max_seconds=args.max_seconds)
    print(json.dumps(result, indent=2))
    return 0 if result["errors"] == 0 and not result["timed_out"] else 1
