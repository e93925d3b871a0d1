"""The curated schema of a span, derived from the FeatureSpec, imported by the pipeline (`ImportSchemaGen`).

Not re-inferred each run: a schema inferred from today's data follows today's mistakes (a dropped column would
simply vanish from it). This one is fixed by the FeatureSpec, so ExampleValidator reports, under the field's name:
- a missing column or empty cells (every feature is required in every row: presence min_fraction 1);
- a wrong type (categorical ids and the domain are BYTES, numerics and the label FLOAT; see
  components/example_gen.py, which writes a non-numeric numeric column as BYTES);
- an unknown domain name (the domain's string domain is `spec.domains`), a label outside [0, 1];
- an empty span (dataset constraint: at least one example).

Example:
    path = write_schema(spec, "runs/pipeline/root/schema/schema.pbtxt")
"""
from __future__ import annotations

import os

from tensorflow_metadata.proto.v0 import schema_pb2

from diit_tf.features import FeatureSpec


def build_schema(spec: FeatureSpec) -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    schema.dataset_constraints.min_examples_count = 1

    def add(name: str, kind) -> schema_pb2.Feature:
        feature = schema.feature.add(name=name, type=kind)
        feature.presence.min_fraction = 1.0
        feature.presence.min_count = 1
        feature.shape.dim.add(size=1)
        return feature

    for name in spec.categorical:
        add(name, schema_pb2.BYTES)
    for name in spec.numeric:
        add(name, schema_pb2.FLOAT)
    label = add(spec.label, schema_pb2.FLOAT)
    label.float_domain.min = 0.0
    label.float_domain.max = 1.0
    domain = add(spec.domain, schema_pb2.BYTES)
    if spec.domains:
        domain.string_domain.name = spec.domain
        domain.string_domain.value.extend(spec.domains)
    return schema


def write_schema(spec: FeatureSpec, path: str) -> str:
    """Write the schema of `spec` as text proto at `path` (only when its content changed); returns `path`."""
    from google.protobuf import text_format

    import tensorflow as tf

    text = text_format.MessageToString(build_schema(spec))
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            if f.read() == text:
                return path
    tf.io.gfile.makedirs(os.path.dirname(path) or ".")
    tmp = f"{path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)
    return path
