"""`SpanCsvExampleGen`: the span folders' CSV files -> tf.Examples typed by the dataset's FeatureSpec.

Why not the stock `CsvExampleGen`: it infers each column's type from the values, so integer ids (`user_id` = 17)
become int64 features, while the exported student's `serving_default` (diit_tf/export.py) parses categorical ids as
strings, as does every TF Serving client. This ExampleGen reads `<input_base>/metadata.json` (the data layout's
FeatureSpec) and writes:

- categorical columns and the domain column as bytes (ids are names, whatever they look like);
- numeric columns and the label as floats **when every value of the column in the file parses as a number**;
  otherwise the column is written as bytes, so ExampleValidator reports the wrong type under that field's name
  (rather than this component failing with a conversion error that names a row);
- an empty cell as a missing feature (ExampleValidator reports it through the schema's presence constraint);
- an empty file as no examples (ExampleValidator reports the dataset's minimum example count).

So a bad span is caught where it should be, at validation, and the run stops there (see `validation_gate.py`).

Example:
    example_gen = SpanCsvExampleGen(input_base=data_dir, input_config=tfx.proto.Input(splits=[
        tfx.proto.Input.Split(name="single_split", pattern="span-{SPAN}/*")]))
"""
from __future__ import annotations

import os
from typing import Any, Dict, Iterable

import apache_beam as beam
import numpy as np
import pandas as pd
import tensorflow as tf
from absl import logging
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio

from diit_tf.features import FeatureSpec

METADATA_FILE = "metadata.json"
CHUNK_ROWS = 50_000


def load_input_spec(input_base: str) -> FeatureSpec:
    """The FeatureSpec of the dataset at `input_base` (its metadata.json), with a clear error when absent."""
    import json

    path = os.path.join(input_base, METADATA_FILE)
    if not fileio.exists(path):
        raise FileNotFoundError(f"{path!r} does not exist: SpanCsvExampleGen reads the FeatureSpec of the span "
                                "layout from it (write the data with `diit data ...`)")
    with fileio.open(path, "r") as f:
        meta = json.loads(f.read())
    if "feature_spec" not in meta:
        raise ValueError(f"{path!r} has no `feature_spec` entry")
    return FeatureSpec.from_dict(meta["feature_spec"])


def _bytes_feature(value) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(value).encode("utf-8")]))


def _float_feature(value) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))


def frame_to_examples(frame: pd.DataFrame, spec: FeatureSpec, where: str = "csv") -> Iterable[tf.train.Example]:
    """Rows of `frame` (every value a string or NaN) -> tf.Examples (see the module docstring for the typing)."""
    string_columns = set(spec.categorical) | {spec.domain}
    columns = {}
    for name in frame.columns:
        raw = frame[name]
        present = raw.notna().to_numpy()
        if name in string_columns:
            columns[name] = (raw.to_numpy(dtype=object), present, _bytes_feature)
            continue
        numbers = pd.to_numeric(raw, errors="coerce")
        unparsed = present & numbers.isna().to_numpy()
        if unparsed.any():
            logging.warning("%s: column %r has %d non-numeric value(s) (e.g. %r); writing it as strings so "
                            "validation reports it", where, name, int(unparsed.sum()), raw[unparsed].iloc[0])
            columns[name] = (raw.to_numpy(dtype=object), present, _bytes_feature)
        else:
            columns[name] = (numbers.to_numpy(dtype=np.float64), present, _float_feature)
    for i in range(len(frame)):
        feature = {name: make(values[i]) for name, (values, present, make) in columns.items() if present[i]}
        yield tf.train.Example(features=tf.train.Features(feature=feature))


def read_csv_examples(path: str, spec: FeatureSpec) -> Iterable[tf.train.Example]:
    """Stream one CSV file as tf.Examples, `CHUNK_ROWS` rows at a time."""
    with fileio.open(path, "r") as f:
        try:
            chunks = pd.read_csv(f, dtype=str, keep_default_na=False, na_values=[""], chunksize=CHUNK_ROWS)
            for chunk in chunks:
                yield from frame_to_examples(chunk, spec, where=path)
        except pd.errors.EmptyDataError:
            logging.warning("%s is empty: no examples (validation will stop the run)", path)
            return


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _SpanCsvToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any], split_pattern: str):
    input_base = exec_properties["input_base"]
    spec = load_input_spec(input_base)
    pattern = os.path.join(input_base, split_pattern)
    files = sorted(fileio.glob(pattern))
    if not files:
        raise RuntimeError(f"Split pattern {pattern!r} matches no files")
    logging.info("SpanCsvExampleGen: reading %s", files)
    return (pipeline
            | "Files" >> beam.Create(files)
            | "Reshuffle" >> beam.Reshuffle()
            | "CsvToExamples" >> beam.FlatMap(read_csv_examples, spec))


class Executor(BaseExampleGenExecutor):
    """ExampleGen executor reading the span layout's CSV files with FeatureSpec typing."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _SpanCsvToExample


class SpanCsvExampleGen(FileBasedExampleGen):
    """`FileBasedExampleGen` over the span layout (`input_base` holds metadata.json and span-N/ folders)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
