"""Client-server round trips (gRPC and REST) against the in-process SavedModel, and every malformed-request case."""
import base64
import json
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, get_model_metadata_pb2, prediction_service_pb2_grpc

from serving.client import GrpcClient, RestClient, ServingClientError, build_predict_request

from serving_fixtures import ROWS

FEATURES = {"user_id": "string", "item_id": "string", "age": "float"}


@pytest.fixture(scope="module")
def expected(model_dir):
    loaded = tf.saved_model.load(f"{model_dir}/1")
    raw = {"user_id": tf.constant([r["user_id"] for r in ROWS]), "item_id": tf.constant([r["item_id"] for r in ROWS]),
           "age": tf.constant([r["age"] for r in ROWS], tf.float32)}
    return loaded.signatures["predict"](**raw)["probabilities"].numpy()


@pytest.fixture(scope="module")
def grpc_client(server):
    with GrpcClient(f"127.0.0.1:{server.grpc_port}") as client:
        yield client


@pytest.fixture(scope="module")
def rest_client(server):
    return RestClient(f"127.0.0.1:{server.rest_port}")


@pytest.mark.parametrize("signature", ["predict", "serving_default"])
def test_grpc_and_rest_equal_in_process_savedmodel(grpc_client, rest_client, expected, signature):
    by_grpc = grpc_client.predict_rows(ROWS, signature)
    by_rest = rest_client.predict_rows(ROWS, signature)
    assert by_grpc.shape == by_rest.shape == (4, 1)
    np.testing.assert_allclose(by_grpc, expected, atol=1e-6)
    np.testing.assert_allclose(by_rest, by_grpc, atol=1e-6)


def test_response_names_model_version_and_signature(grpc_client):
    response = grpc_client.predict(build_predict_request(ROWS, FEATURES, "predict"))
    assert (response.model_spec.name, response.model_spec.version.value, response.model_spec.signature_name) == (
        "diit", 1, "predict")


def test_metadata_lists_raw_features_for_building_requests(grpc_client, rest_client):
    for client in (grpc_client, rest_client):
        signatures = client.signatures()
        assert set(signatures) == {"serving_default", "predict", "transform_features"}
        assert signatures["predict"]["inputs"] == FEATURES
        assert signatures["serving_default"]["inputs"] == {"examples": "string"}
        assert signatures["serving_default"]["outputs"] == {"probabilities": "float"}
    meta = rest_client.metadata()
    assert meta["model_spec"] == {"name": "diit", "signature_name": "", "version": "1"}


def test_rest_columnar_and_b64_formats(rest_client, expected):
    body = {"signature_name": "predict", "inputs": {k: [r[k] for r in ROWS] for k in FEATURES}}
    np.testing.assert_allclose(rest_client.predict_json(body)["outputs"], expected, atol=1e-6)
    from serving.codec import serialize_rows

    examples = [base64.b64encode(s).decode() for s in serialize_rows(ROWS, FEATURES)]
    out = rest_client.predict_json({"instances": [{"b64": e} for e in examples]})  # serving_default is the default
    np.testing.assert_allclose(out["predictions"], expected, atol=1e-6)
    status = rest_client.request(f"{rest_client.base_url}/v1/models/diit")
    assert status["model_version_status"][0]["state"] == "AVAILABLE"


def _request(signature="predict", rows=ROWS, **overrides):
    request = build_predict_request(rows, FEATURES, signature)
    for key, proto in overrides.items():
        if proto is None:
            del request.inputs[key]
        else:
            request.inputs[key].CopyFrom(proto)
    return request


def _grpc_error(client, request):
    with pytest.raises(ServingClientError) as info:
        client.predict(request)
    return info.value


GRPC_CASES = {
    "wrong dtype": (lambda: _request(age=tf.make_tensor_proto(["x"] * 4)), "INVALID_ARGUMENT", "age"),
    "int dtype": (lambda: _request(age=tf.make_tensor_proto([1, 2, 3, 4], tf.int64)), "INVALID_ARGUMENT", "age"),
    "missing feature": (lambda: _request(item_id=None), "INVALID_ARGUMENT", "item_id"),
    "unknown feature": (lambda: _request(shop=tf.make_tensor_proto(["a"] * 4)), "INVALID_ARGUMENT", "shop"),
    "empty batch": (lambda: _request(**{k: tf.make_tensor_proto(np.array([], np.float32 if t == "float" else object),
                                                                    tf.float32 if t == "float" else tf.string)
                                        for k, t in FEATURES.items()}), "INVALID_ARGUMENT", "empty batch"),
    "ragged batch": (lambda: _request(age=tf.make_tensor_proto([1.0, 2.0], tf.float32)), "INVALID_ARGUMENT", "batch size"),
    "2-d input": (lambda: _request(age=tf.make_tensor_proto([[1.0]] * 4, tf.float32)), "INVALID_ARGUMENT", "shape"),
    "oversize batch": (lambda: _request(rows=ROWS * 17), "INVALID_ARGUMENT", "maximum batch size 64"),
    "garbage examples": (lambda: _request("serving_default", examples=tf.make_tensor_proto([b"\xff\x00garbage"])),
                         "INVALID_ARGUMENT", "serving_default"),
    "example missing feature": (
        lambda: _request("serving_default", examples=tf.make_tensor_proto([tf.train.Example().SerializeToString()])),
        "INVALID_ARGUMENT", "is required but could not be found"),
    "unknown signature": (lambda: _request("nope"), "INVALID_ARGUMENT", "nope"),
}


@pytest.mark.parametrize("case", sorted(GRPC_CASES))
def test_grpc_malformed_requests_are_refused_and_server_keeps_serving(grpc_client, expected, case):
    make, code, needle = GRPC_CASES[case]
    err = _grpc_error(grpc_client, make())
    assert err.code == code
    assert needle in err.message
    np.testing.assert_allclose(grpc_client.predict_rows(ROWS), expected, atol=1e-6)


def test_grpc_unknown_model_and_version_are_not_found(grpc_client):
    request = _request()
    request.model_spec.name = "other"
    err = _grpc_error(grpc_client, request)
    assert (err.code, "'other'" in err.message) == ("NOT_FOUND", True)
    request = _request()
    request.model_spec.version.value = 7
    err = _grpc_error(grpc_client, request)
    assert err.code == "NOT_FOUND" and "version 7" in err.message
    with pytest.raises(ServingClientError) as info:
        GrpcClient(grpc_client.target, model_name="other").metadata()
    assert info.value.code == "NOT_FOUND"


def test_grpc_garbage_bytes_and_unimplemented_methods(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    raw_predict = channel.unary_unary("/tensorflow.serving.PredictionService/Predict",
                                      request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as info:
        raw_predict(b"\xff\xff\xff\xffnot a proto", timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "PredictRequest" in info.value.details()
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.Classify(classification_pb2.ClassificationRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.RpcError) as info:
        stub.GetModelMetadata(get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": "diit"}), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "metadata_field" in info.value.details()
    channel.close()


def _rest(server, path, body=None):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}{path}", data=data,
                                 method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


INSTANCES = [dict(r) for r in ROWS]
REST_CASES = {
    "garbage bytes": ("/v1/models/diit:predict", b"\x00\xffnot json", 400, "JSON"),
    "not an object": ("/v1/models/diit:predict", [1, 2], 400, "JSON object"),
    "wrong dtype": ("/v1/models/diit:predict",
                    {"signature_name": "predict", "instances": [{**INSTANCES[0], "age": "old"}]}, 400, "age"),
    "missing feature": ("/v1/models/diit:predict",
                        {"signature_name": "predict", "instances": [{"user_id": "u", "age": 1.0}]}, 400, "item_id"),
    "empty batch": ("/v1/models/diit:predict", {"signature_name": "predict", "instances": []}, 400, "empty batch"),
    "oversize batch": ("/v1/models/diit:predict", {"signature_name": "predict", "instances": INSTANCES * 17}, 400,
                       "maximum batch size"),
    "bad base64": ("/v1/models/diit:predict", {"instances": [{"b64": "%%%"}]}, 400, "base64"),
    "both formats": ("/v1/models/diit:predict", {"instances": [], "inputs": {}}, 400, "exactly one"),
    "unknown signature": ("/v1/models/diit:predict", {"signature_name": "zzz", "instances": INSTANCES}, 400, "zzz"),
    "unknown model": ("/v1/models/other:predict", {"instances": INSTANCES}, 404, "other"),
    "unknown version": ("/v1/models/diit/versions/9:predict", {"instances": INSTANCES}, 404, "version 9"),
    "unknown model metadata": ("/v1/models/other/metadata", None, 404, "other"),
    "unknown path": ("/v2/whatever", None, 404, "unknown path"),
}


@pytest.mark.parametrize("case", sorted(REST_CASES))
def test_rest_malformed_requests_are_refused_and_server_keeps_serving(server, rest_client, expected, case):
    path, body, status, needle = REST_CASES[case]
    got_status, payload = _rest(server, path, body)
    assert got_status == status
    assert needle in payload["error"]
    np.testing.assert_allclose(rest_client.predict_rows(ROWS), expected, atol=1e-6)


ALL_SIGNATURES = {"serving_default", "predict", "transform_features"}


def test_fast_flat_call_path_survives_malformed_requests(server, grpc_client, expected):
    """Runs after the malformed cases above: the version still uses the flat call and the fast path, and is exact."""
    version = server.manager.current
    assert version.flat_call_signatures == ALL_SIGNATURES and version.fast_path_signatures == ALL_SIGNATURES
    np.testing.assert_allclose(grpc_client.predict_rows(ROWS), expected, atol=1e-6)
    np.testing.assert_allclose(grpc_client.predict_rows(ROWS, "serving_default"), expected, atol=1e-6)


def test_well_formed_grpc_requests_take_the_tensorproto_fast_path(server, grpc_client, expected, monkeypatch):
    """With the numpy path disabled, gRPC still answers exactly (one graph call parses, runs and serializes)."""
    version = server.manager.current
    assert version.fast_path_signatures == ALL_SIGNATURES

    def no_numpy_path(*args, **kwargs):
        raise AssertionError("the numpy path was used")

    monkeypatch.setattr(version, "execute", no_numpy_path)
    np.testing.assert_allclose(grpc_client.predict_rows(ROWS), expected, atol=1e-6)
    np.testing.assert_allclose(grpc_client.predict_rows(ROWS, "serving_default"), expected, atol=1e-6)


@pytest.mark.parametrize("proto_path, flat_call", [(False, True), (True, False), (False, False)])
def test_every_call_path_answers_the_same(model_dir, expected, proto_path, flat_call):
    """The options of ModelServer (--no-proto-path, --no-flat-call) change the path, not the answer."""
    from serving.server import ModelServer

    srv = ModelServer(model_dir, grpc_port=0, rest_port=None, poll_seconds=0, proto_path=proto_path,
                      flat_call=flat_call).start()
    try:
        version = srv.manager.current
        assert version.fast_path_signatures == (ALL_SIGNATURES if proto_path else frozenset())
        assert version.flat_call_signatures == (ALL_SIGNATURES if flat_call else frozenset())
        with GrpcClient(f"127.0.0.1:{srv.grpc_port}") as client:
            np.testing.assert_allclose(client.predict_rows(ROWS), expected, atol=1e-6)
            np.testing.assert_allclose(client.predict_rows(ROWS, "serving_default"), expected, atol=1e-6)
    finally:
        srv.stop()


@pytest.mark.slow
def test_smoke_test_drops_a_fast_path_that_disagrees(model_dir, caplog, monkeypatch):
    from serving import servable

    real = servable.proto_function

    def wrong_for_predict(fn, signature_def):
        if "examples" in signature_def.inputs or "user_id" not in signature_def.inputs:
            return real(fn, signature_def)
        order = list(signature_def.inputs)

        @tf.function(input_signature=[tf.TensorSpec([len(order)], tf.string)])
        def call(protos):  # answers 0.123 whatever the request
            rows = tf.shape(tf.io.parse_tensor(protos[0], tf.string))[0]
            return {"probabilities": tf.io.serialize_tensor(tf.fill([rows, 1], 0.123))}

        return call.get_concrete_function()

    monkeypatch.setattr(servable, "proto_function", wrong_for_predict)
    version = servable.LoadedVersion(1, f"{model_dir}/1")
    assert "predict" not in version.fast_path_signatures and "serving_default" in version.fast_path_signatures
    assert "fast path disagrees" in caplog.text
