"""`diit predict`: send rows to a served student (gRPC or REST) and print their click probabilities."""
from __future__ import annotations

import argparse
import json

from diit_tf.commands._argtypes import positive_float


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="score rows from a CSV/JSON file against a running server (gRPC or REST)",
        description="Read raw rows (CSV with a header of raw feature names, or a JSON list of objects), build the "
        "request from the model's metadata (GetModelMetadata / REST /metadata) and print one probability per row. "
        "Extra columns such as the label or domain are ignored.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: diit predict --target 127.0.0.1:8500 --input rows.csv\n"
        "         diit predict --target 127.0.0.1:8501 --rest --input rows.json --json",
    )
    parser.add_argument("--target", required=True, help="HOST:PORT of the gRPC server (or of the REST server with --rest)")
    parser.add_argument("--rest", action="store_true", help="use the REST API instead of gRPC")
    parser.add_argument("--input", required=True, help="rows to score: a .csv or .json file")
    parser.add_argument("--signature", default="predict", choices=["predict", "serving_default"],
                        help="'predict' sends raw feature tensors, 'serving_default' serialized tf.Examples")
    parser.add_argument("--model-name", default="diit", help="served model name (default diit)")
    parser.add_argument("--version", type=int, default=None, help="ask for this model version (default: the served one)")
    parser.add_argument("--timeout", type=positive_float, default=10.0,
                        help="request timeout in seconds (default 10)")
    parser.add_argument("--json", action="store_true", help='print {"probabilities": [...]} instead of one per line')
    parser.set_defaults(func=run)


def run(args) -> int:
    from serving.client import GrpcClient, RestClient, ServingClientError, read_rows

    rows = read_rows(args.input)
    if args.rest:
        client = RestClient(args.target, args.model_name, args.timeout)
    else:
        client = GrpcClient(args.target, args.model_name, args.timeout)
    try:
        probabilities = client.predict_rows(rows, args.signature, args.version).reshape(-1)
    except ServingClientError as err:
        raise ValueError(f"server refused the request: {err}") from None
    if args.json:
        print(json.dumps({"probabilities": [round(float(p), 6) for p in probabilities]}))
    else:
        for p in probabilities:
            print(f"{float(p):.6f}")
    return 0
