"""TF Serving warmup records, read side: the requests the local server replays as a new version's smoke test.

TF Serving replays `<version>/assets.extra/tf_serving_warmup_requests` (a TFRecord file of `PredictionLog` protos)
when it loads a version, so the first real request does not pay for graph tracing and kernel setup. The exporter
(`diit_tf/warmup.py`) writes that file.

Example:
    requests = read_warmup_requests("serving_dir/diit/3")   # [PredictRequest, ...]
"""
from __future__ import annotations

import os

import tensorflow as tf

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def read_warmup_requests(export_dir: str) -> list:
    """The `PredictRequest`s stored under `export_dir` (empty list when there is no warmup file)."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(export_dir, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        return []
    requests = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(record)
        if log.HasField("predict_log"):
            requests.append(log.predict_log.request)
    return requests
