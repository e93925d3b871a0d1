"""Helpers of the serving tests: a tiny student with the backbone contract, its spec, rows, and a version exporter."""
import os

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
