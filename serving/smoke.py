"""The smoke test a new version passes before it serves: its warmup records and a synthetic one-row request.

`check_version` runs every smoke request on the checked numpy path and raises when an output is not finite or a
probability lies outside [0, 1] (the version is then not served, and the one being served stays). For each
request it also runs the TensorProto fast path and reports which signatures' fast paths returned the same values.

Example:
    agree = check_version(version)   # raises ValueError on a bad version; the signatures whose fast path agrees
"""
from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2

from serving.codec import DEFAULT_SIGNATURE, SUPPORTED_DTYPES, tensor_proto_to_array
from serving.warmup import read_warmup_requests

log = logging.getLogger("diit.serving")


def smoke_requests(version) -> list:
    """(signature, inputs) pairs a new version must answer: its warmup records and a synthetic one-row request."""
    requests = []
    for request in read_warmup_requests(version.path):
        inputs = {k: tensor_proto_to_array(k, v) for k, v in request.inputs.items()}
        requests.append((request.model_spec.signature_name or DEFAULT_SIGNATURE, inputs))
    for name, sig in version.signature_defs.items():
        infos = dict(sig.inputs)
        if list(infos) == ["examples"]:
            continue  # serialized examples: covered by the warmup records
        if all(i.dtype in SUPPORTED_DTYPES for i in infos.values()):
            requests.append((name, {
                k: np.array([b"0"], dtype=object) if i.dtype == types_pb2.DT_STRING else np.zeros([1], np.float32)
                for k, i in infos.items()
            }))
    return requests


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal shapes and values (floats up to rounding: the fused graph may be optimized differently)."""
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f":
        return bool(np.allclose(a, b, rtol=1e-5, atol=1e-6))
    return bool(np.array_equal(a, b))


def check_outputs(signature: str, outputs: dict) -> None:
    for key, value in outputs.items():
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise ValueError(f"signature {signature!r} output {key!r} is not finite")
        if key == "probabilities" and not np.all((value >= 0) & (value <= 1)):
            raise ValueError(f"signature {signature!r} returned probabilities outside [0, 1]")


def check_version(version) -> frozenset:
    """Raise if `version` fails a smoke request; return the signatures whose TensorProto fast path agrees with the
    numpy path on every smoke request (a fast-path signature without smoke requests counts as agreeing)."""
    disagree = set()
    for signature, inputs in smoke_requests(version):
        outputs = version.run(signature, inputs, max_batch=0)
        check_outputs(signature, outputs)
        if signature not in version.fast_path_signatures or signature in disagree:
            continue
        request = predict_pb2.PredictRequest()
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        fast = version.run_protos(signature, request.inputs, max_batch=0)
        agrees = fast is not None and set(fast) == set(outputs) and all(
            same(tf.make_ndarray(tensor_pb2.TensorProto.FromString(fast[k])), outputs[k]) for k in outputs)
        if not agrees:
            log.warning("signature %r: the TensorProto fast path disagrees with the numpy path; not using it",
                        signature)
            disagree.add(signature)
    return frozenset(version.fast_path_signatures - disagree)
