"""Transformed examples as the pipeline's Transform writes them (gzipped TFRecords of tf.train.Example; ids hashed,
domain as bytes), written from numpy columns for the trainer tests."""
import numpy as np
import tensorflow as tf

from diit_tf.data.streaming import write_examples
from diit_tf.features import FeatureSpec

SPEC = FeatureSpec(categorical={"user_id": 32, "item_id": 16}, numeric=("freshness",), label="click",
                   domain="domain", domains=("target", "src_a", "src_b"), target="target")
COLUMNS = {"user_id": tf.io.FixedLenFeature([], tf.int64), "item_id": tf.io.FixedLenFeature([], tf.int64),
           "freshness": tf.io.FixedLenFeature([], tf.float32), "click": tf.io.FixedLenFeature([], tf.float32),
           "domain": tf.io.FixedLenFeature([], tf.string)}


def transformed(n=240, seed=0, nan_labels=False, domains=(b"target", b"src_a", b"src_b")):
    """Transformed columns (numpy): ids hashed, domain as bytes, labels depending on the user."""
    rng = np.random.default_rng(seed)
    domain = np.array(domains)[rng.integers(0, len(domains), n)]
    user = rng.integers(0, 32, n)
    labels = (rng.random(n) < 0.3 + 0.4 * (user % 2)).astype(np.float32)
    if nan_labels:
        labels[:] = np.nan
    return {"user_id": user.astype(np.int64), "item_id": rng.integers(0, 16, n).astype(np.int64),
            "freshness": rng.random(n).astype(np.float32), "click": labels, "domain": domain}


def write_transformed(directory, data, shards=2, drop=()) -> list:
    """`data` (columns) as `shards` gzipped TFRecord files; `drop`: columns left out of every record."""
    return write_examples(str(directory), {k: v for k, v in data.items() if k not in drop}, shards,
                          prefix="transformed_examples")


def write_transform_output(directory) -> str:
    """What TFTransformOutput reads for the transformed feature spec (transformed_metadata/schema.pbtxt)."""
    import os

    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(COLUMNS))
    metadata_io.write_metadata(metadata, os.path.join(str(directory), "transformed_metadata"))
    return str(directory)
