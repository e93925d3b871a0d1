"""The exported student loads in a process that imports only TensorFlow and scores like the in-process model."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import keras
import tensorflow as tf

from diit_tf.backbones import build_backbone
from diit_tf.export import export_student, raw_feature_dtypes
from diit_tf.features import FeatureSpec

SPEC = FeatureSpec(categorical={"user_id": 97, "item_id": 53}, numeric=("age", "price"),
                   label="clicked", domain="tab", domains=("a", "b"), target="a")
ROWS = [
    {"user_id": "u1", "item_id": "7", "age": 23.0, "price": 1.5},
    {"user_id": "u2", "item_id": "8", "age": 41.0, "price": 0.0},
    {"user_id": "zz", "item_id": "7", "age": -3.0, "price": 9.25},
]

LOADER = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
export_dir, rows_json, dtypes_json = sys.argv[1:4]
rows, dtypes = json.loads(rows_json), json.loads(dtypes_json)
loaded = tf.saved_model.load(export_dir)
def example(row):
    f = {}
    for name, dt in dtypes.items():
        if dt == "float":
            f[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[row[name]]))
        else:
            f[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(row[name]).encode()]))
    return tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString()
examples = tf.constant([example(r) for r in rows])
by_examples = loaded.signatures["serving_default"](examples=examples)["probabilities"].numpy()
raw = {n: tf.constant([r[n] for r in rows], tf.float32 if dt == "float" else tf.string) for n, dt in dtypes.items()}
by_raw = loaded.signatures["predict"](**raw)["probabilities"].numpy()
transformed = loaded.signatures["transform_features"](examples=examples)
print(json.dumps({
    "serving_default": by_examples.tolist(), "predict": by_raw.tolist(),
    "transform_keys": sorted(transformed), "user_id": transformed["user_id"].numpy().tolist(),
    "leaked": sorted(m for m in sys.modules if m.split(".")[0] in ("diit_tf", "serving", "pipeline", "components")),
}))
"""


def small_student(spec):
    """A tiny functional model with the backbone contract (dict in, {"logit", "representation"} out)."""
    inputs = spec.keras_inputs()
    parts = [keras.layers.Flatten()(keras.layers.Embedding(b, 4, name=f"emb_{n}")(inputs[n]))
             for n, b in spec.categorical.items()]
    parts += [keras.layers.Reshape((1,))(inputs[n]) for n in spec.numeric]
    rep = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()(parts))
    logit = keras.layers.Dense(1, bias_initializer=keras.initializers.Constant(0.3))(rep)
    return keras.Model(inputs, {"logit": logit, "representation": rep})


STUDENTS = {"functional": small_student, "dnn": lambda spec: build_backbone("dnn", spec)}


def in_process_probabilities(student, spec, rows):
    raw = {n: tf.constant([r[n] for r in rows], tf.string if n in spec.categorical else tf.float32)
           for n in spec.feature_names}
    feats = spec.transform(raw)
    return tf.sigmoid(student({n: feats[n] for n in spec.feature_names})["logit"]).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(STUDENTS))
def test_export_loads_without_diit_tf_and_matches(tmp_path, name):
    keras.utils.set_random_seed(1)
    student = STUDENTS[name](SPEC)
    export_dir = tmp_path / "diit" / "1"
    assert export_student(student, SPEC, str(export_dir), warmup_examples=ROWS) == str(export_dir)
    assert sorted(os.listdir(tmp_path / "diit")) == ["1"], "temporary export directory left behind"
    out = subprocess.run([sys.executable, "-c", LOADER, str(export_dir), json.dumps(ROWS),
                          json.dumps(raw_feature_dtypes(SPEC))], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["leaked"] == []
    expected = in_process_probabilities(student, SPEC, ROWS)
    for signature in ("serving_default", "predict"):
        probs = np.array(got[signature])
        assert probs.shape == (3, 1)
        assert np.all((probs >= 0) & (probs <= 1))
        np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert got["transform_keys"] == sorted(SPEC.feature_names + [SPEC.label, SPEC.domain])
    assert got["user_id"] == tf.strings.to_hash_bucket_fast(["u1", "u2", "zz"], 97).numpy().tolist()


@pytest.mark.slow
def test_export_writes_warmup_for_both_signatures(tmp_path):
    from serving.warmup import read_warmup_requests

    export_dir = str(tmp_path / "1")
    export_student(small_student(SPEC), SPEC, export_dir, warmup_examples=ROWS)
    requests = read_warmup_requests(export_dir)
    assert [r.model_spec.signature_name for r in requests] == ["serving_default", "predict"]
    assert all(r.model_spec.name == "diit" for r in requests)
    assert len(tf.make_ndarray(requests[0].inputs["examples"])) == 3
    assert sorted(requests[1].inputs) == sorted(SPEC.feature_names)
    np.testing.assert_allclose(tf.make_ndarray(requests[1].inputs["price"]), [1.5, 0.0, 9.25])


@pytest.mark.slow
def test_export_without_warmup_and_refuses_to_clobber(tmp_path):
    export_dir = str(tmp_path / "1")
    student = small_student(SPEC)
    export_student(student, SPEC, export_dir)
    assert not os.path.exists(os.path.join(export_dir, "assets.extra"))
    with pytest.raises(FileExistsError, match="not empty"):
        export_student(student, SPEC, export_dir)
    export_student(student, SPEC, export_dir, overwrite=True)
    assert os.path.exists(os.path.join(export_dir, "saved_model.pb"))
    assert sorted(os.listdir(tmp_path)) == ["1"]


@pytest.mark.slow
def test_export_rejects_bad_arguments(tmp_path):
    student = small_student(SPEC)
    with pytest.raises(ValueError, match="spec"):
        export_student(student, {"user_id": 3}, str(tmp_path / "x"))
    other = FeatureSpec(categorical={"user_id": 97, "shop": 5}, numeric=("age", "price"))
    with pytest.raises(ValueError, match="shop"):
        export_student(student, other, str(tmp_path / "y"))
    with pytest.raises(ValueError, match="warmup examples"):
        export_student(student, SPEC, str(tmp_path / "z"), warmup_examples=[3])
    assert not os.path.exists(tmp_path / "z"), "a failed export must leave nothing behind"
    with pytest.raises(ValueError, match="item_id"):
        export_student(student, SPEC, str(tmp_path / "w"), warmup_examples=[{"user_id": "u", "age": 1, "price": 2}])


@pytest.mark.slow
def test_placeholder_rows_make_valid_warmup_requests(tmp_path):
    from diit_tf.export import placeholder_rows
    from serving.warmup import read_warmup_requests

    rows = placeholder_rows(SPEC, n=4)
    assert len(rows) == 4 and set(rows[0]) == set(SPEC.feature_names)
    assert all(rows[i][name] == str(i) for i in range(4) for name in SPEC.categorical)
    export_dir = str(tmp_path / "2")
    export_student(small_student(SPEC), SPEC, export_dir, warmup_examples=rows)
    requests = read_warmup_requests(export_dir)
    assert len(tf.make_ndarray(requests[0].inputs["examples"])) == 4
    # the warmup request runs through the exported signature
    loaded = tf.saved_model.load(export_dir)
    out = loaded.signatures["serving_default"](examples=tf.constant(tf.make_ndarray(requests[0].inputs["examples"])))
    assert out["probabilities"].shape == (4, 1)
