"""`ValidationGate`: stop the run when ExampleValidator found anomalies, before anything trains.

ExampleValidator only *records* anomalies; the pipeline would go on and train on a broken span. This gate reads
them (every split) and raises `SpanValidationError` naming the span and each anomalous field, e.g.

    span 3 failed validation, nothing was trained or pushed (the served student is unchanged):
      [train] field 'freshness': Unexpected data type -- Expected data of type: FLOAT but got BYTES
      [train] field 'item_id': Column dropped -- The feature was present in fewer examples than expected

When the span is clean it re-emits the schema as its output, and Transform consumes *that* schema: training
depends on validation through data (lineage in ML Metadata), not only through task ordering.
"""

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts

ANOMALIES_FILE = "SchemaDiff.pb"
STATISTICS_FILE = "FeatureStats.pb"


class SpanValidationError(RuntimeError):
    """A span failed ExampleValidator's checks; the message names the span and the fields."""


def _read_split_protos(artifact, file_name: str, proto_cls, producer: str) -> dict:
    """Split name -> the `proto_cls` message a component wrote per split of `artifact` (`Split-<name>/<file_name>`)."""
    out = {}
    for split in artifact_utils.decode_split_names(artifact.split_names):
        path = os.path.join(artifact.uri, f"Split-{split}", file_name)
        if not fileio.exists(path):
            raise FileNotFoundError(f"{producer} for split {split!r} at {path!r}")
        with fileio.open(path, "rb") as f:
            out[split] = proto_cls.FromString(f.read())
    return out


def read_anomalies(anomalies_artifact) -> dict:
    """Split name -> `Anomalies` proto of an ExampleAnomalies artifact."""
    return _read_split_protos(anomalies_artifact, ANOMALIES_FILE, anomalies_pb2.Anomalies,
                              "ExampleValidator wrote no anomalies file")


def _reasons(info) -> str:
    return "; ".join(f"{r.short_description} -- {r.description}" for r in info.reason) or info.short_description


def describe_anomalies(by_split: dict) -> list:
    """One line per anomalous field (or dataset-level anomaly) per split."""
    lines = []
    for split, anomalies in sorted(by_split.items()):
        for field, info in sorted(anomalies.anomaly_info.items()):
            lines.append(f"[{split}] field {field!r}: {_reasons(info)}")
        if anomalies.HasField("dataset_anomaly_info"):
            lines.append(f"[{split}] dataset: {_reasons(anomalies.dataset_anomaly_info)} (every field is missing)")
    return lines


def example_counts(statistics_artifact) -> dict:
    """Split name -> number of examples, from an ExampleStatistics artifact."""
    stats = _read_split_protos(statistics_artifact, STATISTICS_FILE, statistics_pb2.DatasetFeatureStatisticsList,
                               "StatisticsGen wrote no statistics")
    return {split: sum(d.num_examples for d in s.datasets) for split, s in stats.items()}


def check_span(anomalies_artifact, span_label: str, statistics_artifact=None, fields=()) -> None:
    """Raise `SpanValidationError` if the span has anomalies, or (given its statistics) a split without rows.

    ExampleValidator does not report an empty span (no rows means no feature to find fault with), hence the
    example counts."""
    lines = describe_anomalies(read_anomalies(anomalies_artifact))
    if statistics_artifact is not None:
        for split, count in sorted(example_counts(statistics_artifact).items()):
            if count == 0:
                missing = f": every field is missing ({', '.join(fields)})" if fields else ""
                lines.append(f"[{split}] no examples (empty or header-only file){missing}")
    if lines:
        raise SpanValidationError(
            f"{span_label} failed validation, nothing was trained or pushed (the served student is unchanged):\n  "
            + "\n  ".join(lines))


def _schema_fields(schema_artifact) -> list:
    from tfx.utils import io_utils

    try:
        schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema_artifact.uri))
        return [f.name for f in schema.feature]
    except Exception:  # the field list only decorates the message
        return []


@component
def ValidationGate(
    examples: InputArtifact[standard_artifacts.Examples],
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    schema: InputArtifact[standard_artifacts.Schema],
    validated_schema: OutputArtifact[standard_artifacts.Schema],
    input_base: Parameter[str] = "",
):
    """Raise on any anomaly of the span of `examples`; else pass `schema` on as `validated_schema` (consumed by
    Transform)."""
    # ExampleGen's span (a custom property of the Examples artifact; the anomalies artifact's span stays 0).
    span = examples.get_int_custom_property("span") if examples.has_custom_property("span") else examples.span
    label = f"span {span}" + (f" ({os.path.join(input_base, f'span-{span}')})" if input_base else "")
    check_span(anomalies, label, statistics, fields=_schema_fields(schema))
    files = fileio.listdir(schema.uri)
    if len(files) != 1:
        raise ValueError(f"schema artifact {schema.uri!r} should hold exactly one file. Found: {files}")
    fileio.makedirs(validated_schema.uri)
    fileio.copy(os.path.join(schema.uri, files[0]), os.path.join(validated_schema.uri, files[0]), overwrite=True)
