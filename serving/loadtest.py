"""A bounded closed-loop load test of a PredictionService over loopback: C threads, N requests of B rows each.

Each worker keeps one request in flight on its own channel, sending one pre-serialized `PredictRequest` (built once
from `--input` rows, or from synthetic rows made from the model's metadata) so the client spends little CPU per
call. Reports latency percentiles (ms), QPS (requests/s), examples/s and the error count. Bounded in count
(`requests`) and time (`max_seconds`); only loopback targets are accepted.

Example:
    result = run_loadtest("127.0.0.1:8500", concurrency=4, batch=100, requests=10_000)
    print(result["p99_ms"], result["qps"])
"""
from __future__ import annotations

import collections
import random
import threading
import time
from typing import Mapping, Optional, Sequence

import grpc
import numpy as np
from tensorflow_serving.apis import predict_pb2

from serving.client import MODEL_NAME, GrpcClient, build_predict_request, raw_features

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
MAX_REQUESTS = 1_000_000
PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"


def check_loopback(target: str) -> None:
    host = target.rsplit(":", 1)[0] if ":" in target else target
    if host not in LOOPBACK_HOSTS and not host.startswith("127."):
        raise ValueError(f"--target {target!r} is not a loopback address; the load test only runs against 127.0.0.1")


def synthetic_rows(features: Mapping, n: int, seed: int = 0) -> list:
    """n rows with random ids (strings) and random numbers, for every raw feature of the model."""
    rng = random.Random(seed)
    return [{name: (str(rng.randrange(100_000)) if dtype == "string" else round(rng.uniform(-1, 1), 4))
             for name, dtype in features.items()} for _ in range(n)]


def percentiles(latencies_s: Sequence[float]) -> dict:
    if not len(latencies_s):
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None, "max_ms": None}
    ms = np.asarray(latencies_s) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3), "mean_ms": round(float(ms.mean()), 3),
            "max_ms": round(float(ms.max()), 3)}


def run_loadtest(target: str, concurrency: int = 4, batch: int = 100, requests: int = 1000,
                 rows: Optional[Sequence[Mapping]] = None, signature: str = "predict",
                 model_name: str = MODEL_NAME, max_seconds: float = 120.0, timeout: float = 10.0,
                 warmup_requests: int = 20) -> dict:
    """Run the load test and return its measurements (see module docstring)."""
    check_loopback(target)
    for name, value, low in (("concurrency", concurrency, 1), ("batch", batch, 1), ("requests", requests, 1)):
        if value < low:
            raise ValueError(f"--{name} should be >= {low}. Received: {value}")
    if requests > MAX_REQUESTS:
        raise ValueError(f"--requests should be <= {MAX_REQUESTS}. Received: {requests}")
    if max_seconds <= 0:
        raise ValueError(f"--max-seconds should be > 0. Received: {max_seconds}")
    with GrpcClient(target, model_name, timeout) as client:
        features = raw_features(client.signatures())
    if rows:
        rows = [rows[i % len(rows)] for i in range(batch)]
    else:
        rows = synthetic_rows(features, batch)
    payload = build_predict_request(rows, features, signature, model_name).SerializeToString()

    channels = [grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(concurrency)]
    calls = [ch.unary_unary(PREDICT_METHOD, request_serializer=None,
                            response_deserializer=predict_pb2.PredictResponse.FromString) for ch in channels]
    for call in calls:  # connect and warm every channel before timing
        for _ in range(max(1, warmup_requests // concurrency)):
            try:
                call(payload, timeout=timeout)
            except grpc.RpcError:
                pass  # a refused request is counted as an error in the measured run

    lock = threading.Lock()
    issued = [0]
    latencies = [[] for _ in range(concurrency)]
    errors = collections.Counter()
    deadline = time.monotonic() + max_seconds

    def worker(i: int) -> None:
        call, mine = calls[i], latencies[i]
        while time.monotonic() < deadline:
            with lock:
                if issued[0] >= requests:
                    return
                issued[0] += 1
            start = time.perf_counter()
            try:
                response = call(payload, timeout=timeout)
                if len(response.outputs) == 0:
                    raise ValueError("empty response")
                mine.append(time.perf_counter() - start)
            except grpc.RpcError as err:
                with lock:
                    errors[err.code().name] += 1
            except Exception as err:  # noqa: BLE001
                with lock:
                    errors[type(err).__name__] += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for ch in channels:
        ch.close()
    all_latencies = [x for part in latencies for x in part]
    completed = len(all_latencies)
    result = {"target": target, "signature": signature, "concurrency": concurrency, "batch": batch,
              "requests": requests, "completed": completed, "errors": sum(errors.values()),
              "error_codes": dict(errors), "duration_s": round(elapsed, 3),
              "timed_out": issued[0] < requests}
    result.update(percentiles(all_latencies))
    result["qps"] = round(completed / elapsed, 1) if elapsed > 0 else None
    result["examples_per_s"] = round(completed * batch / elapsed, 1) if elapsed > 0 else None
    return result
