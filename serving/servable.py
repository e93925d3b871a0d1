"""One loaded SavedModel version (TF Serving's *servable*): its signatures, request checks and three call paths.

A `LoadedVersion` is built and checked by one thread (the version manager's) and never changes afterwards, so
request threads share it without a lock. Its constructor loads the SavedModel, then answers the smoke requests of
`serving/smoke.py`: a version whose outputs are not finite probabilities raises, and a signature whose TensorProto
fast path disagrees with the checked numpy path is served without the fast path.

Call paths of a request:
- numpy path (`run` -> `execute`): every input is checked against the `SignatureDef` (names, dtypes, shapes, batch
  limits), converted to tensors and fed to the signature; errors name the problem. REST always takes it.
- TensorProto fast path (`run_protos`, gRPC only, `proto_path=True`): one graph call parses the request's
  TensorProtos, runs the signature and serializes its outputs, with no per-input numpy conversion. A request that
  is not plainly well-formed returns None here and takes the numpy path, which names the problem.
- how a concrete function is called, in both paths: `call_concrete` below.
"""
from __future__ import annotations

import os
import re
from types import MappingProxyType
from typing import Mapping, Optional

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

from serving import smoke
from serving.batching import QueueFullError
from serving.codec import DEFAULT_SIGNATURE, SUPPORTED_DTYPES, ServingError, dtype_name, invalid


def call_concrete(fn, flat_order: Optional[list], tensors: Mapping) -> dict:
    """Call concrete function `fn` on `tensors` ({input name: tensor}).

    With `flat_order` (the order of `fn`'s parameters) it calls `ConcreteFunction._call_flat`, which takes the
    inputs as a flat list and skips the binding of keyword arguments the public `fn(**tensors)` does on every
    call. That is private TF API; it is used here only, when `flat_order` was read from the function at load time,
    and every new version runs its smoke requests through it before it serves. Measured: 150-240 µs (about 30%)
    less per call of the `predict` signature at batch 1 and 100 (docs/serving_results.md, "the flat call");
    `--no-flat-call` (`flat_call=False`) uses the public call.
    """
    if flat_order is None:
        return fn(**tensors)
    return fn._call_flat([tensors[k] for k in flat_order], fn.captured_inputs)


def flat_order(fn, names) -> Optional[list]:
    """`fn`'s parameter names in call order when they are `names` and the private flat call exists, else None."""
    try:
        order = [p.name for p in fn.function_type.parameters.values()]
    except AttributeError:
        return None
    if sorted(order) != sorted(names) or not hasattr(fn, "_call_flat"):
        return None
    return order


def proto_function(fn, signature_def):
    """Concrete function: [n_inputs] serialized TensorProtos (in `signature_def.inputs` order) -> {output: serialized
    TensorProto}."""
    order = list(signature_def.inputs)
    dtypes = [SUPPORTED_DTYPES[signature_def.inputs[k].dtype] for k in order]

    @tf.function(input_signature=[tf.TensorSpec([len(order)], tf.string)])
    def call(protos):
        inputs = {k: tf.ensure_shape(tf.io.parse_tensor(protos[i], dtype), [None])
                  for i, (k, dtype) in enumerate(zip(order, dtypes))}
        return {k: tf.io.serialize_tensor(v) for k, v in fn(**inputs).items()}

    return call.get_concrete_function()


PROTOS_INPUT = "protos"  # the one parameter of a `proto_function`


class LoadedVersion:
    """One loaded, smoke-tested SavedModel version; read-only once constructed.

    Args:
      version: the version number (the directory's name).
      path: the SavedModel directory.
      proto_path: serve well-formed gRPC requests through the fused TensorProto graph call.
      flat_call: call concrete functions through `call_concrete`'s flat path.
    """

    def __init__(self, version: int, path: str, proto_path: bool = True, flat_call: bool = True):
        self.version = version
        self.path = path
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            saved = saved_model_pb2.SavedModel.FromString(f.read())
        if not saved.meta_graphs:
            raise ValueError(f"{path}: saved_model.pb has no meta graph")
        signature_defs = {k: v for k, v in saved.meta_graphs[0].signature_def.items() if not k.startswith("__")}
        for name, sig in signature_defs.items():
            for key, info in sig.inputs.items():
                if info.dtype not in SUPPORTED_DTYPES:
                    raise ValueError(f"signature {name!r} input {key!r} has unsupported dtype {dtype_name(info.dtype)}")
        self.signature_defs = MappingProxyType(signature_defs)
        self._loaded = tf.saved_model.load(path)
        functions = {name: self._loaded.signatures[name] for name in signature_defs}
        self._functions = MappingProxyType({
            name: (fn, flat_order(fn, signature_defs[name].inputs) if flat_call else None)
            for name, fn in functions.items()
        })
        fused = {}
        if proto_path:
            for name, sig in signature_defs.items():
                fn = proto_function(functions[name], sig)
                fused[name] = (list(sig.inputs), fn, flat_order(fn, [PROTOS_INPUT]) if flat_call else None)
        self._fused = MappingProxyType(fused)
        # The smoke requests raise on a bad version; fast paths that disagree with the numpy path are left out.
        # Until the constructor returns, the version is private to the loading thread.
        agree = smoke.check_version(self)
        self._fused = MappingProxyType({name: entry for name, entry in fused.items() if name in agree})

    @property
    def fast_path_signatures(self) -> frozenset:
        """Signatures that serve well-formed gRPC requests through the TensorProto fast path."""
        return frozenset(self._fused)

    @property
    def flat_call_signatures(self) -> frozenset:
        """Signatures whose concrete function is called through the flat path."""
        return frozenset(name for name, (_, order) in self._functions.items() if order is not None)

    def signature_def_map(self) -> get_model_metadata_pb2.SignatureDefMap:
        out = get_model_metadata_pb2.SignatureDefMap()
        for name, sig in self.signature_defs.items():
            out.signature_def[name].CopyFrom(sig)
        return out

    def run(self, signature_name: str, inputs: Mapping[str, np.ndarray], max_batch: int,
            output_filter=(), batcher=None) -> dict:
        """Check `inputs` against the signature and run it (merged with concurrent requests when a `batcher` is
        given); returns {output name: np.ndarray}."""
        signature_name = signature_name or DEFAULT_SIGNATURE
        sig = self.signature_defs.get(signature_name)
        if sig is None:
            raise invalid(f"Serving signature name: {signature_name!r} not found in signature def; "
                          f"available: {sorted(self.signature_defs)}")
        batch = _check_inputs(signature_name, sig, inputs)
        if max_batch and batch > max_batch:
            raise invalid(f"batch size {batch} is larger than the maximum batch size {max_batch} (--max-batch)")
        if batcher is not None and batch > batcher.params.max_batch_size:
            raise invalid(f"batch size {batch} is larger than the batching max_batch_size "
                          f"{batcher.params.max_batch_size} (--batching-parameters-file)")
        for key in output_filter:
            if key not in sig.outputs:
                raise invalid(f"output_filter names unknown output {key!r}; available: {sorted(sig.outputs)}")
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
        fused = self._fused.get(signature_name or DEFAULT_SIGNATURE)
        if fused is None:
            return None
        order, fn, fn_order = fused
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
        packed = tf.constant([protos[k].SerializeToString() for k in order])
        try:
            outputs = call_concrete(fn, fn_order, {PROTOS_INPUT: packed})
        except (tf.errors.OpError, UnicodeDecodeError):
            return None
        wanted = set(output_filter) or set(outputs)
        return {k: v.numpy() for k, v in outputs.items() if k in wanted}

    def execute(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict:
        """Run a checked request (or a merged batch of them): {input: np.ndarray} -> {output: np.ndarray}."""
        sig = self.signature_defs[signature_name]
        tensors = {key: tf.constant(inputs[key], dtype=SUPPORTED_DTYPES[info.dtype]) for key, info in sig.inputs.items()}
        fn, order = self._functions[signature_name]
        try:
            outputs = call_concrete(fn, order, tensors)
        except tf.errors.InvalidArgumentError as err:
            raise invalid(f"signature {signature_name!r} rejected the input: {_op_error(err)}") from None
        except UnicodeDecodeError:  # TF fails to format the error of some unparsable inputs (e.g. garbage bytes)
            raise invalid(f"signature {signature_name!r} rejected the input: it could not be parsed "
                          "(malformed serialized tf.Example?)") from None
        except tf.errors.OpError as err:
            raise ServingError(grpc.StatusCode.INTERNAL, _op_error(err)) from None
        return {k: v.numpy() for k, v in outputs.items()}


def _check_inputs(signature_name: str, sig, inputs: Mapping[str, np.ndarray]) -> int:
    """The batch size of a request whose inputs match the signature's names, each of shape [batch]."""
    missing = sorted(set(sig.inputs) - set(inputs))
    if missing:
        raise invalid(f"request is missing input(s) {missing} of signature {signature_name!r}; "
                      f"expected {sorted(sig.inputs)}")
    unknown = sorted(set(inputs) - set(sig.inputs))
    if unknown:
        raise invalid(f"request has unknown input(s) {unknown} for signature {signature_name!r}; "
                      f"expected {sorted(sig.inputs)}")
    batch = None
    for key in sig.inputs:
        value = inputs[key]
        if value.ndim != 1:
            raise invalid(f"input {key!r} should have shape [batch]. Received shape {list(value.shape)}")
        if batch is None:
            batch = len(value)
        elif len(value) != batch:
            raise invalid(f"input {key!r} has batch size {len(value)} but other inputs have {batch}")
    if not batch:
        raise invalid("empty batch: every input has 0 rows")
    return batch


def _op_error(err: tf.errors.OpError) -> str:
    """The useful line(s) of a TF op error, without "Graph execution error", node names and stack notes."""
    keep = []
    for line in err.message.splitlines():
        line = re.sub(r"\s*\[Op:[^\]]*\]$", "", line).strip()
        if not line or line.startswith(("Graph execution error", "Detected at node", "<stack traces", "[[", "File ")):
            continue
        keep.append(line)
    return " ".join(keep) or err.message
