"""Export the student (the target-domain backbone) as a SavedModel that TF Serving and TFMA load without `diit_tf`.

At inference DIIT needs the student alone: teachers, gate, mapper and discriminator stay out of the export, so the
serving cost is that of a plain single-domain model of the same backbone. The export goes through a `tf.Module`
holding the Keras 3 model (works whatever Keras the process has; see docs/toolchain.md) with three signatures:

- `serving_default(examples: tf.string[None]) -> {"probabilities": float32[None, 1]}`: serialized `tf.Example`s
  with the raw feature columns (no label, no domain), parsed, transformed by `FeatureSpec.transform`, scored.
- `predict(<one [None] tensor per raw feature>) -> {"probabilities"}`: categorical columns as `tf.string`,
  numeric columns as `tf.float32`, named after the column. A client can build requests from the signature alone.
- `transform_features(examples) -> {feature: transformed tensor}` for the TFMA Evaluator; when the examples carry
  the label / domain columns they pass through (label -1.0 and domain "" where absent).

The directory appears atomically: the SavedModel is written to a hidden temporary sibling and renamed into place,
so a server polling the parent never sees a half-written version.

Example:
    spec = FeatureSpec(categorical={"user_id": 1000}, numeric=("age",))
    student = build_backbone("dnn", spec)
    export_student(student, spec, "serving/diit/1", warmup_examples=[{"user_id": "7", "age": 31.0}])
    # tensorflow only: tf.saved_model.load("serving/diit/1").signatures["predict"](user_id=..., age=...)
"""
from __future__ import annotations

import os
import uuid
from typing import Optional, Sequence

import tensorflow as tf

from diit_tf.features import FeatureSpec
from diit_tf.warmup import write_warmup_requests

SIGNATURES = ("serving_default", "predict", "transform_features")
OUTPUT_KEY = "probabilities"
MISSING_LABEL = -1.0


class StudentServingModule(tf.Module):
    """The student plus the stateless raw->model-input transform, as tf.functions with fixed signatures."""

    def __init__(self, student, spec: FeatureSpec, name: str = "diit_student"):
        super().__init__(name=name)
        self.student = student  # tracked attribute: its variables are saved with the module
        self._spec = spec

    # ------------------------------------------------------------------ helpers (traced inside the signatures)
    def _score(self, raw: dict) -> dict:
        features = self._spec.transform(raw)
        outputs = self.student({name: features[name] for name in self._spec.feature_names}, training=False)
        if not isinstance(outputs, dict) or "logit" not in outputs:
            raise ValueError(
                "`student` should return a dict with key 'logit' of shape (batch, 1). "
                f"Received: {type(outputs).__name__} {sorted(outputs) if isinstance(outputs, dict) else ''}"
            )
        logit = tf.reshape(tf.cast(outputs["logit"], tf.float32), [-1, 1])
        return {OUTPUT_KEY: tf.sigmoid(logit)}

    def serving_default(self, examples):
        raw = tf.io.parse_example(examples, self._spec.raw_feature_spec(with_label=False, with_domain=False))
        return self._score(raw)

    def predict(self, **raw):
        return self._score(raw)

    def transform_features(self, examples):
        parse_spec = self._spec.raw_feature_spec(with_label=False, with_domain=False)
        parse_spec[self._spec.label] = tf.io.FixedLenFeature([], tf.float32, default_value=MISSING_LABEL)
        parse_spec[self._spec.domain] = tf.io.FixedLenFeature([], tf.string, default_value="")
        return self._spec.transform(tf.io.parse_example(examples, parse_spec))

    # ------------------------------------------------------------------ signatures
    def raw_input_specs(self) -> dict:
        specs = {n: tf.TensorSpec([None], tf.string, name=n) for n in self._spec.categorical}
        specs.update({n: tf.TensorSpec([None], tf.float32, name=n) for n in self._spec.numeric})
        return specs

    def signatures(self) -> dict:
        examples = tf.TensorSpec([None], tf.string, name="examples")
        return {
            "serving_default": tf.function(self.serving_default).get_concrete_function(examples),
            "predict": tf.function(self.predict).get_concrete_function(**self.raw_input_specs()),
            "transform_features": tf.function(self.transform_features).get_concrete_function(examples),
        }


def raw_feature_dtypes(spec: FeatureSpec) -> dict:
    """Raw feature name -> "string" | "float", in the order of `spec.feature_names` (the `predict` inputs)."""
    return {name: ("string" if name in spec.categorical else "float") for name in spec.feature_names}


def _check_student(student, spec: FeatureSpec) -> None:
    inputs = getattr(student, "inputs", None)
    if isinstance(inputs, dict):
        missing = [n for n in spec.feature_names if n not in inputs]
        if missing:
            raise ValueError(f"`student` inputs are missing feature(s) {missing}; expected {spec.feature_names}")


def placeholder_rows(spec: FeatureSpec, n: int = 8) -> list:
    """`n` raw rows of the right types (ids "0".."n-1", numerics 0.0) for TF Serving warmup requests, where no
    real rows are at hand: warmup only has to make the server load and run each signature once before traffic."""
    rows = []
    for i in range(n):
        row = {name: str(i) for name in spec.categorical}
        row.update({name: 0.0 for name in spec.numeric})
        rows.append(row)
    return rows


def export_student(
    student,
    spec: FeatureSpec,
    export_dir: str,
    warmup_examples: Optional[Sequence] = None,
    overwrite: bool = False,
    model_name: str = "diit",
) -> str:
    """Write `student` as a SavedModel at `export_dir` (atomically) and return `export_dir`.

    Args:
      student: Keras 3 model taking `spec.keras_inputs()`-shaped dict inputs, returning a dict with "logit" (B, 1).
      spec: the `FeatureSpec` whose `transform` turns raw columns into the student's inputs.
      export_dir: destination (e.g. `<serving_dir>/diit/<version>`); must not exist, or be empty, unless `overwrite`.
      warmup_examples: optional raw rows (dict of raw feature -> value), `tf.train.Example`s or serialized bytes;
        when given, TF Serving warmup requests for both signatures are written under `assets.extra/`.
      overwrite: replace an existing non-empty `export_dir` (the old one is moved away before the new one moves in).
      model_name: model name written into the warmup requests (the name the server serves under).
    """
    if not isinstance(spec, FeatureSpec):
        raise ValueError(f"`spec` should be a diit_tf.features.FeatureSpec. Received: {type(spec).__name__}")
    if not export_dir:
        raise ValueError("`export_dir` should be a directory path. Received: empty")
    _check_student(student, spec)
    export_dir = os.fspath(export_dir).rstrip("/")
    if tf.io.gfile.exists(export_dir) and tf.io.gfile.listdir(export_dir) and not overwrite:
        raise FileExistsError(f"`export_dir` {export_dir!r} exists and is not empty; pass overwrite=True to replace it")

    parent, base = os.path.split(export_dir)
    parent = parent or "."
    tf.io.gfile.makedirs(parent)
    tmp_dir = os.path.join(parent, f".{base}.tmp-{uuid.uuid4().hex[:8]}")
    module = StudentServingModule(student, spec)
    try:
        tf.saved_model.save(module, tmp_dir, signatures=module.signatures())
        if warmup_examples is not None:
            write_warmup_requests(tmp_dir, list(warmup_examples), raw_feature_dtypes(spec), model_name)
        old_dir = None
        if tf.io.gfile.exists(export_dir):
            if tf.io.gfile.listdir(export_dir):
                old_dir = os.path.join(parent, f".{base}.old-{uuid.uuid4().hex[:8]}")
                tf.io.gfile.rename(export_dir, old_dir)
            else:
                tf.io.gfile.rmtree(export_dir)
        tf.io.gfile.rename(tmp_dir, export_dir)
        if old_dir:
            tf.io.gfile.rmtree(old_dir)
    finally:
        if tf.io.gfile.exists(tmp_dir):
            tf.io.gfile.rmtree(tmp_dir)
    return export_dir
