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

Output order. Stock ExampleGen writes each split through `write_split.WriteSplit`, whose `beam.Reshuffle()` keys
every record with `random.randrange(2**32)` from Python's process-global `random`. On the local runner (FnApiRunner)
a group-by-key emits its keys in first-seen order, so the input order survives unless two records draw the same key:
then the later one moves next to the earlier one and every record in between shifts by one place (a 22,584-row
split has such a collision in about 6% of writes). Whether and where that happens depends on the global random
state of the process at the time (the demo runs every span in one process; the trainers reseed that state with
`keras.utils.set_random_seed`), so two runs of the same demo could write the same rows in another order, and the
trainers' seeded shuffle then made other batches. This executor writes its splits through `_WriteSplit`: the same
write, with each record serialized deterministically (feature map in key order) and keyed by a fingerprint of
those bytes instead of a random number (`_DeterministicReshuffle`). That keeps the Reshuffle's fusion break and
redistribution on a distributed runner (Dataflow, Flink, Spark; rows repeated byte for byte share a key, so they
land on one worker), uses no global state, and on the local runner writes the rows in an order that is a function
of the input alone: the span's CSV files in sorted order, each in row order (a repeated row is written next to its
first occurrence). The CSV files are spread over workers the same way.

Example:
    example_gen = SpanCsvExampleGen(input_base=data_dir, input_config=tfx.proto.Input(splits=[
        tfx.proto.Input.Split(name="single_split", pattern="span-{SPAN}/*")]))
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Dict, Iterable, List

import apache_beam as beam
import numpy as np
import pandas as pd
import tensorflow as tf
from absl import logging
from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen import write_split
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.util import examples_utils
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

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
            | "Files" >> beam.Create([f.encode("utf-8") for f in files])
            | "Reshuffle" >> _DeterministicReshuffle()  # spreads the files over workers
            | "CsvToExamples" >> beam.FlatMap(lambda f: read_csv_examples(f.decode("utf-8"), spec)))


def fingerprint(record: bytes) -> int:
    """A 64-bit key of `record`'s bytes, the same in every process and on every machine (unlike `hash`)."""
    return int.from_bytes(hashlib.blake2b(record, digest_size=8).digest(), "big")


@beam.ptransform_fn
@beam.typehints.with_input_types(bytes)
@beam.typehints.with_output_types(bytes)
def _DeterministicReshuffle(records: beam.pvalue.PCollection) -> beam.pvalue.PCollection:
    """`beam.Reshuffle()` with each record keyed by its fingerprint instead of a random number: the same fusion
    break and redistribution, without Python's global `random` (see the module docstring)."""
    return (records
            | "KeyByFingerprint" >> beam.Map(lambda record: (fingerprint(record), record))
            | "ReshufflePerKey" >> beam.transforms.util.ReshufflePerKey()
            | "DropKeys" >> beam.Values())


class _Serialize(beam.DoFn):
    """`write_split.MaybeSerialize` (same counter) with deterministic serialization: a tf.Example's feature map
    is written in key order. (Plain `SerializeToString()` may write the map's entries in another order, even twice
    in one process, which would change the records' bytes and so their fingerprints.)"""

    def __init__(self):
        self._num_instances = beam.metrics.Metrics.counter(write_split.METRICS_NAMESPACE, "num_instances")

    def process(self, example):
        self._num_instances.inc(1)
        yield example if isinstance(example, bytes) else example.SerializeToString(deterministic=True)


@beam.ptransform_fn
def _WriteSplit(example_split: beam.pvalue.PCollection, output_split_path: str) -> beam.pvalue.PDone:
    """TFX's `write_split.WriteSplit` for gzipped TFRecords (same files, same names), serializing
    deterministically and through `_DeterministicReshuffle` instead of `beam.Reshuffle()`."""
    return (example_split
            | "MaybeSerialize" >> beam.ParDo(_Serialize())
            | "Shuffle" >> _DeterministicReshuffle()
            | "Write" >> beam.io.WriteToTFRecord(os.path.join(output_split_path, write_split.DEFAULT_FILE_NAME),
                                                 file_name_suffix=".gz"))


class Executor(BaseExampleGenExecutor):
    """ExampleGen executor reading the span layout's CSV files with FeatureSpec typing, writing each split in an
    order that depends on the input alone."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _SpanCsvToExample

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        """`BaseExampleGenExecutor.Do` (TFX 1.16) with `_WriteSplit` as the write step. Only its output formats:
        tf.Example payloads in gzipped TFRecords."""
        self._log_startup(input_dict, output_dict, exec_properties)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        payload_format = exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
        if payload_format not in (None, example_gen_pb2.FORMAT_TF_EXAMPLE):
            raise ValueError(f"SpanCsvExampleGen writes tf.Examples; output_data_format {payload_format} is not "
                             "supported")
        file_format = exec_properties.get(standard_component_specs.OUTPUT_FILE_FORMAT_KEY,
                                          example_gen_pb2.FILE_FORMAT_UNSPECIFIED)
        write_split.to_file_format_str(file_format)  # raises on anything but gzipped TFRecords

        examples = output_dict[standard_component_specs.EXAMPLES_KEY]
        artifact_utils.get_single_instance(examples).split_names = artifact_utils.encode_split_names(
            example_gen_utils.generate_output_split_names(input_config, output_config))
        logging.info("Generating examples.")
        with self._make_beam_pipeline() as pipeline:
            for split_name, example_split in self.GenerateExamplesByBeam(pipeline, exec_properties).items():
                # pylint: disable-next=no-value-for-parameter
                _ = example_split | f"WriteSplit[{split_name}]" >> _WriteSplit(
                    artifact_utils.get_split_uri(examples, split_name))
        for artifact in examples:
            if payload_format:
                examples_utils.set_payload_format(artifact, payload_format)
            if file_format:
                examples_utils.set_file_format(artifact, write_split.to_file_format_str(file_format))
        logging.info("Examples generated.")


class SpanCsvExampleGen(FileBasedExampleGen):
    """`FileBasedExampleGen` over the span layout (`input_base` holds metadata.json and span-N/ folders)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
