"""The validation gate names the span and every anomalous field, and lets a clean span through."""
import os

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils, standard_artifacts

from components.validation_gate import SpanValidationError, check_span, describe_anomalies


def _anomalies_artifact(tmp_path, per_split):
    os.makedirs(tmp_path, exist_ok=True)
    artifact = standard_artifacts.ExampleAnomalies()
    artifact.uri = str(tmp_path)
    artifact.split_names = artifact_utils.encode_split_names(list(per_split))
    for split, proto in per_split.items():
        os.makedirs(tmp_path / f"Split-{split}")
        (tmp_path / f"Split-{split}" / "SchemaDiff.pb").write_bytes(proto.SerializeToString())
    return artifact


def _anomaly(field, short, long):
    proto = anomalies_pb2.Anomalies()
    info = proto.anomaly_info[field]
    info.reason.add(short_description=short, description=long)
    return proto


def test_anomalies_name_span_split_and_field(tmp_path):
    artifact = _anomalies_artifact(tmp_path, {
        "train": _anomaly("freshness", "Unexpected data type", "Expected FLOAT but got BYTES"),
        "eval": anomalies_pb2.Anomalies(),
    })
    with pytest.raises(SpanValidationError) as err:
        check_span(artifact, "span 3 (data/span-3)")
    message = str(err.value)
    assert "span 3 (data/span-3)" in message
    assert "[train] field 'freshness': Unexpected data type" in message
    assert "nothing was trained or pushed" in message


def test_dataset_level_anomaly_is_reported():
    proto = anomalies_pb2.Anomalies()
    proto.dataset_anomaly_info.reason.add(short_description="Low num examples", description="0 < 1")
    lines = describe_anomalies({"train": proto})
    assert lines == ["[train] dataset: Low num examples -- 0 < 1 (every field is missing)"]


def test_clean_span_passes(tmp_path):
    artifact = _anomalies_artifact(tmp_path, {"train": anomalies_pb2.Anomalies(),
                                              "eval": anomalies_pb2.Anomalies()})
    check_span(artifact, "span 1")  # no exception
    assert describe_anomalies({"train": anomalies_pb2.Anomalies()}) == []


def test_empty_split_is_reported_with_every_field(tmp_path):
    from tensorflow_metadata.proto.v0 import statistics_pb2

    anomalies = _anomalies_artifact(tmp_path / "a", {"train": anomalies_pb2.Anomalies()})
    stats = standard_artifacts.ExampleStatistics()
    stats.uri = str(tmp_path / "s")
    stats.split_names = artifact_utils.encode_split_names(["train"])
    os.makedirs(tmp_path / "s" / "Split-train")
    (tmp_path / "s" / "Split-train" / "FeatureStats.pb").write_bytes(
        statistics_pb2.DatasetFeatureStatisticsList(datasets=[statistics_pb2.DatasetFeatureStatistics(
            num_examples=0)]).SerializeToString())
    with pytest.raises(SpanValidationError, match=r"span 4.*\n.*\[train\] no examples .*user_id, click"):
        check_span(anomalies, "span 4", stats, fields=["user_id", "click"])
