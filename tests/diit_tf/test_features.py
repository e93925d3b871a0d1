import json

import numpy as np
import pytest
import tensorflow as tf

from diit_tf.features import FeatureSpec, hash_ids


def test_hashing_is_stable_and_in_range(tiny_spec):
    ids = tf.constant(["u1", "u2", "u1"])
    a = hash_ids(ids, 97).numpy()
    b = hash_ids(tf.constant(["u1", "u2", "u1"]), 97).numpy()
    assert (a == b).all() and a[0] == a[2]
    assert ((0 <= a) & (a < 97)).all()
    # integers hash through their decimal string: 7 and "7" land in the same bucket
    assert hash_ids(tf.constant([7]), 97).numpy()[0] == hash_ids(tf.constant(["7"]), 97).numpy()[0]


def test_transform_outputs_model_inputs(tiny_spec):
    raw = {"user_id": tf.constant(["a", "b"]), "item_id": tf.constant([3, 4]), "price": tf.constant([1, 2]),
           "label": tf.constant([0, 1]), "domain": tf.constant(["target", "source_a"])}
    out = tiny_spec.transform(raw)
    assert out["user_id"].dtype == tf.int64 and out["price"].dtype == tf.float32
    assert out["label"].numpy().tolist() == [0.0, 1.0]
    assert out["domain"].numpy().tolist() == [b"target", b"source_a"]
    tiny_spec.check_features({k: out[k] for k in tiny_spec.feature_names})


def test_transform_missing_feature_names_it(tiny_spec):
    with pytest.raises(ValueError, match="item_id"):
        tiny_spec.transform({"user_id": tf.constant(["a"]), "price": tf.constant([1.0])})


@pytest.mark.parametrize("bad, message", [
    ({"user_id": np.array([1]), "price": np.array([1.0], "float32")}, "missing feature"),
    ({"user_id": np.array([1.5]), "item_id": np.array([1]), "price": np.array([1.0], "float32")}, "user_id.*int64"),
    ({"user_id": np.array([[1]]), "item_id": np.array([1]), "price": np.array([1.0], "float32")}, "shape"),
])
def test_check_features_errors(tiny_spec, bad, message):
    with pytest.raises(ValueError, match=message):
        tiny_spec.check_features(bad)


def test_json_round_trip(tiny_spec, tmp_path):
    tiny_spec.save(tmp_path / "spec.json")
    assert FeatureSpec.load(tmp_path / "spec.json") == tiny_spec
    assert json.loads((tmp_path / "spec.json").read_text())["target"] == "target"
    assert tiny_spec.sources == ["source_a", "source_b"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(categorical={"a": 0}), "positive number of hash buckets"),
    (dict(categorical={}, numeric=()), "at least one"),
    (dict(categorical={"a": 3}, numeric=("a",)), "both categorical and numeric"),
    (dict(categorical={"a": 3}, domains=("x",), target="y"), "target"),
])
def test_bad_spec(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeatureSpec(**kwargs)
