"""What a pipeline run produced, read back from ML Metadata and the artifacts: TFMA metrics per slice (candidate
and baseline), the blessing, the push (version), the trainers' warm-start sources, the student's and the target
base's metrics on the eval split; and `score_on_span`, a trained model scored on a later span (out of time).

Artifacts are attributed to components by the TFX uri convention `<pipeline_root>/<node_id>/<output_key>/<id>`,
and to a run by creation time (`since_ms`: the wall-clock time the run started), since runs are sequential.

Example:
    summary = run_summary("runs/demo/metadata.sqlite", since_ms=start_ms)
    summary["evaluation"]["candidate"]["domain=target"]["auc"], summary["pushed_version"]
"""
from __future__ import annotations

import os

from typing import Optional


def _store(metadata_path: str):
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    if not os.path.isfile(metadata_path):
        raise FileNotFoundError(f"ML Metadata database {metadata_path!r} does not exist")
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def _node_of(uri: str) -> str:
    parts = os.path.normpath(uri).split(os.sep)
    return parts[-3] if len(parts) >= 3 else ""


def artifacts(metadata_path: str, type_name: str, node_id: Optional[str] = None, since_ms: int = 0) -> list:
    """LIVE artifacts of `type_name` (optionally produced by `node_id`) created at or after `since_ms`, oldest
    first."""
    from ml_metadata.proto import metadata_store_pb2

    store = _store(metadata_path)
    out = [a for a in store.get_artifacts_by_type(type_name)
           if a.state == metadata_store_pb2.Artifact.LIVE and a.create_time_since_epoch >= since_ms
           and (node_id is None or _node_of(a.uri) == node_id)]
    return sorted(out, key=lambda a: a.id)


def slice_name(slice_key) -> str:
    """TFMA slice key proto -> "overall" or "domain=target"."""
    parts = []
    for single in slice_key.single_slice_keys:
        value = single.bytes_value.decode() if single.HasField("bytes_value") else (
            single.int64_value if single.HasField("int64_value") else single.float_value)
        parts.append(f"{single.column}={value}")
    return ",".join(parts) or "overall"


def read_evaluation(evaluation_uri: str) -> dict:
    """{"candidate"|"baseline": {slice: {metric: value}}} from an Evaluator's `evaluation` artifact."""
    import tensorflow_model_analysis as tfma

    out: dict = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        name = slice_name(metrics.slice_key)
        for kv in metrics.metric_keys_and_values:
            if kv.key.is_diff:
                continue
            model = kv.key.model_name or "candidate"
            if kv.value.HasField("double_value"):
                out.setdefault(model, {}).setdefault(name, {})[kv.key.name] = kv.value.double_value.value
    return out


def _custom(artifact, key, default=None):
    if key not in artifact.custom_properties:
        return default
    value = artifact.custom_properties[key]
    which = value.WhichOneof("value")
    return getattr(value, which) if which else default


def model_info(model_uri: str) -> dict:
    """`<model_uri>/keras/model_info.json` of a pipeline trainer's model ({} when absent)."""
    import json

    path = os.path.join(model_uri, "keras", "model_info.json")
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def run_summary(metadata_path: str, since_ms: int = 0, student_node: str = "diit_trainer",
                evaluator_node: str = "evaluator", pusher_node: str = "pusher", base_node: str = "base_trainer") -> dict:
    """The student, evaluation, blessing and push of the run that started at `since_ms` (None where absent), and
    the target base's model when the run trained one. `student_eval` / `base_eval`: the trainers' own metrics on
    the eval split (student: per domain; base: its domain's rows)."""
    summary = {"student_uri": None, "warm_started_from": None, "student_eval": None, "base_uri": None,
               "base_eval": None, "evaluation": None, "blessed": None, "pushed": None, "pushed_version": None,
               "pushed_destination": None}
    students = artifacts(metadata_path, "Model", student_node, since_ms)
    if students:
        summary["student_uri"] = students[-1].uri
        info = model_info(students[-1].uri)
        summary["warm_started_from"] = info.get("warm_started_from")
        summary["student_eval"] = info.get("eval")
    bases = artifacts(metadata_path, "Model", base_node, since_ms)
    if bases:
        summary["base_uri"] = bases[-1].uri
        summary["base_eval"] = model_info(bases[-1].uri).get("eval")
    evaluations = artifacts(metadata_path, "ModelEvaluation", evaluator_node, since_ms)
    if evaluations:
        summary["evaluation"] = read_evaluation(evaluations[-1].uri)
    blessings = artifacts(metadata_path, "ModelBlessing", evaluator_node, since_ms)
    if blessings:
        summary["blessed"] = bool(_custom(blessings[-1], "blessed", 0))
    pushes = artifacts(metadata_path, "PushedModel", pusher_node, since_ms)
    if pushes:
        summary["pushed"] = bool(_custom(pushes[-1], "pushed", 0))
        summary["pushed_version"] = _custom(pushes[-1], "pushed_version")
        summary["pushed_destination"] = _custom(pushes[-1], "pushed_destination")
    return summary


def score_on_span(model_uri: str, data_dir: str, span: int, domain: str) -> dict:
    """`{"rows", "auc", "logloss"}` of the Keras backbone saved under `model_uri` on every row of `domain` in span
    `span` of `data_dir` (through the same `FeatureSpec.transform` as the pipeline's Transform)."""
    import numpy as np

    from components.training import load_backbone
    from diit_tf.ctr import auc, logloss
    from diit_tf.data import load_period

    rows = load_period(data_dir, span).domain(domain)
    logits = np.asarray(load_backbone(model_uri).predict(rows.features, batch_size=8192, verbose=0)["logit"],
                        np.float64).reshape(-1)
    return {"rows": len(rows), "auc": float(auc(rows.labels, logits)), "logloss": float(logloss(rows.labels, logits))}
