"""The gRPC front end: `tensorflow.serving.PredictionService` over a `ModelManager`.

`Predict` and `GetModelMetadata` (signature_def) are served; `Classify`, `Regress` and `MultiInference` answer
UNIMPLEMENTED. Requests are parsed here (not by gRPC) so unparsable bytes become INVALID_ARGUMENT instead of a
generic INTERNAL error. The REST front end (`serving/rest_api.py`) shares this service's manager and batcher.
"""
from __future__ import annotations

from typing import Optional

import grpc
import tensorflow as tf
from google.protobuf import message as pb_message
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

from serving.batching import Batcher, BatchingParameters
from serving.codec import DEFAULT_SIGNATURE, ServingError, check_dtype, invalid, tensor_proto_to_array
from serving.manager import ModelManager
from serving.servable import LoadedVersion

SERVICE = "tensorflow.serving.PredictionService"


class PredictionService:
    """Predict / GetModelMetadata over `manager`; `max_batch` > 0 refuses larger requests; `batching` merges
    concurrent requests (then gRPC requests take the numpy path, which the batcher merges)."""

    def __init__(self, manager: ModelManager, max_batch: int = 0, batching: Optional[BatchingParameters] = None):
        self.manager = manager
        self.max_batch = max_batch
        self.batcher = Batcher(batching, LoadedVersion.execute) if batching is not None else None

    def stop(self) -> None:
        if self.batcher is not None:
            self.batcher.stop()

    @staticmethod
    def _rpc(request_class, answer):
        """A unary gRPC method over raw bytes: parse the request (unparsable bytes: INVALID_ARGUMENT), answer it,
        serialize the response; a `ServingError` aborts with its status code."""
        def method(data: bytes, context) -> bytes:
            try:
                request = request_class.FromString(data)
            except (pb_message.DecodeError, RuntimeError, ValueError) as err:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request is not a valid {request_class.__name__}: {err}")
            try:
                return answer(request).SerializeToString()
            except ServingError as err:
                context.abort(err.code, err.message)

        return method

    def predict(self, request) -> predict_pb2.PredictResponse:
        spec = request.model_spec
        version = self.manager.resolve(spec.name, spec.version.value if spec.HasField("version") else None,
                                       spec.version_label)
        signature = spec.signature_name or DEFAULT_SIGNATURE
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.manager.model_name
        response.model_spec.version.value = version.version
        response.model_spec.signature_name = signature
        fast = None if self.batcher else version.run_protos(signature, request.inputs, self.max_batch,
                                                              tuple(request.output_filter))
        if fast is not None:
            for key, blob in fast.items():
                response.outputs[key].ParseFromString(blob)
            return response
        inputs = {}
        for key, proto in request.inputs.items():
            check_dtype(version.signature_defs.get(signature), key, proto.dtype)
            inputs[key] = tensor_proto_to_array(key, proto)
        outputs = version.run(signature, inputs, self.max_batch, tuple(request.output_filter), self.batcher)
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def metadata(self, request) -> get_model_metadata_pb2.GetModelMetadataResponse:
        spec = request.model_spec
        version = self.manager.resolve(spec.name, spec.version.value if spec.HasField("version") else None,
                                       spec.version_label)
        fields = list(request.metadata_field)
        if not fields:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field (e.g. 'signature_def')")
        unknown = [f for f in fields if f != "signature_def"]
        if unknown:
            raise invalid(f"Metadata field(s) {unknown} not supported; supported: ['signature_def']")
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.manager.model_name
        response.model_spec.version.value = version.version
        response.metadata["signature_def"].Pack(version.signature_def_map())
        return response

    def unimplemented(self, data: bytes, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "only Predict and GetModelMetadata are implemented by this server")

    def handler(self) -> grpc.GenericRpcHandler:
        def unary(fn):
            return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=None, response_serializer=None)

        return grpc.method_handlers_generic_handler(SERVICE, {
            "Predict": unary(self._rpc(predict_pb2.PredictRequest, self.predict)),
            "GetModelMetadata": unary(self._rpc(get_model_metadata_pb2.GetModelMetadataRequest, self.metadata)),
            "Classify": unary(self.unimplemented),
            "Regress": unary(self.unimplemented),
            "MultiInference": unary(self.unimplemented),
        })
