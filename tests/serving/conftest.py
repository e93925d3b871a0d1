"""Fixtures: a tiny exported student under `<tmp>/diit/1` and a local server on free loopback ports."""
import os

import pytest

from diit_tf import _quiet  # noqa: F401
import keras

from diit_tf.export import export_student
from diit_tf.features import FeatureSpec

SPEC = FeatureSpec(categorical={"user_id": 97, "item_id": 53}, numeric=("age",), label="clicked", domain="tab")
ROWS = [
    {"user_id": "u1", "item_id": "7", "age": 23.0},
    {"user_id": "u2", "item_id": "8", "age": 41.0},
    {"user_id": "zz", "item_id": "7", "age": -3.0},
    {"user_id": "u9", "item_id": "1", "age": 0.5},
]


def tiny_student(spec=SPEC, seed=0, bias=0.0):
    keras.utils.set_random_seed(seed)
    inputs = spec.keras_inputs()
    parts = [keras.layers.Flatten()(keras.layers.Embedding(b, 4)(inputs[n])) for n, b in spec.categorical.items()]
    parts += [keras.layers.Reshape((1,))(inputs[n]) for n in spec.numeric]
    rep = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()(parts))
    logit = keras.layers.Dense(1, bias_initializer=keras.initializers.Constant(bias))(rep)
    return keras.Model(inputs, {"logit": logit, "representation": rep})


def export_version(model_dir, version, seed=0, bias=0.0):
    return export_student(tiny_student(seed=seed, bias=bias), SPEC, os.path.join(model_dir, str(version)),
                          warmup_examples=ROWS)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("serving") / "diit")
    export_version(d, 1)
    return d


@pytest.fixture(scope="module")
def server(model_dir):
    from serving.server import ModelServer

    srv = ModelServer(model_dir, grpc_port=0, rest_port=0, poll_seconds=0, max_batch=64).start()
    yield srv
    srv.stop()
