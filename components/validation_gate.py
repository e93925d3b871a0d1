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

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts

ANOMALIES_FILE = "SchemaDiff.pb"


class SpanValidationError(RuntimeError):
    """A span failed ExampleValidator's checks; the message names the span and the fields."""


def read_anomalies(anomalies_artifact) -> dict:
    """Split name -> `Anomalies` proto of an ExampleAnomalies artifact."""
    out = {}
    for split in artifact_utils.decode_split_names(anomalies_artifact.split_names):
        path = os.path.join(anomalies_artifact.uri, f"Split-{split}", ANOMALIES_FILE)
        if not fileio.exists(path):
            raise FileNotFoundError(f"ExampleValidator wrote no anomalies file for split {split!r} at {path!r}")
        with fileio.open(path, "rb") as f:
            out[split] = anomalies_pb2.Anomalies.FromString(f.read())
    return out


def describe_anomalies(by_split: dict) -> list:
    """One line per anomalous field (or dataset-level anomaly) per split."""
    lines = []
    for split, anomalies in sorted(by_split.items()):
        for field, info in sorted(anomalies.anomaly_info.items()):
            reasons = "; ".join(f"{r.short_description} -- {r.description}" for r in info.reason) \
                or info.short_description
            lines.append(f"[{split}] field {field!r}: {reasons}")
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            reasons = "; ".join(f"{r.short_description} -- {r.description}" for r in info.reason) \
                or info.short_description
            lines.append(f"[{split}] dataset: {reasons} (every field is missing)")
    return lines


def check_span(anomalies_artifact, span_label: str) -> None:
    """Raise `SpanValidationError` if the anomalies artifact holds any anomaly."""
    lines = describe_anomalies(read_anomalies(anomalies_artifact))
    if lines:
        raise SpanValidationError(
            f"{span_label} failed validation, nothing was trained or pushed (the served student is unchanged):\n  "
            + "\n  ".join(lines))


@component
def ValidationGate(
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    schema: InputArtifact[standard_artifacts.Schema],
    validated_schema: OutputArtifact[standard_artifacts.Schema],
    input_base: Parameter[str] = "",
):
    """Raise on any anomaly of the span; else pass `schema` on as `validated_schema` (consumed by Transform)."""
    span = anomalies.get_int_custom_property("span") if anomalies.has_custom_property("span") else None
    if span is None and "span" in anomalies.PROPERTIES:
        span = anomalies.span
    label = f"span {span}" + (f" ({os.path.join(input_base, f'span-{span}')})" if input_base else "")
    check_span(anomalies, label)
    files = fileio.listdir(schema.uri)
    if len(files) != 1:
        raise ValueError(f"schema artifact {schema.uri!r} should hold exactly one file. Found: {files}")
    fileio.makedirs(validated_schema.uri)
    fileio.copy(os.path.join(schema.uri, files[0]), os.path.join(validated_schema.uri, files[0]), overwrite=True)
