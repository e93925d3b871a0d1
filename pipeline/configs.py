"""Settings of the DIIT pipeline: one JSON file, so they survive `tfx run create` re-running the DSL file.

`tfx pipeline create` and `tfx run create` each execute `pipeline/diit.py` in a fresh process and keep neither the
environment of the first call nor runtime parameters (docs/toolchain.md). So every setting lives in a config file:
`$DIIT_PIPELINE_CONFIG` when set, else `pipeline/config.json` next to this module. Relative paths in the file are
resolved against the repository root (the parent of `pipeline/`), never the current directory.

Entry points of the components are dotted strings here (imported by the TFX executors), as in the TFX templates.

Example:
    config = load_config()                              # $DIIT_PIPELINE_CONFIG or pipeline/config.json
    config = load_config("my.json", overrides={"data_dir": "runs/demo/data", "trainer": {"epochs": 2}})
    config.path("pipeline_root")                        # absolute path
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = Path(__file__).resolve().parent / "config.json"
CONFIG_ENV = "DIIT_PIPELINE_CONFIG"

# Entry points (dotted paths the TFX executors import).
PREPROCESSING_FN = "components.transform_module.preprocessing_fn"
SOURCE_RUN_FN = "components.source_trainer.run_fn"

# Every key, with its default. Nested dicts are merged key by key; unknown keys are an error.
DEFAULTS: dict = {
    "pipeline_name": "diit",
    # Span layout written by `diit data ...` (metadata.json + span-N/data.csv).
    "data_dir": "runs/data/synthetic",
    "pipeline_root": "runs/pipeline/root",
    "metadata_path": "runs/pipeline/metadata.sqlite",
    # The pusher writes <serving_dir>/diit/<version>/ (TF Serving's model base path is <serving_dir>/diit).
    "serving_dir": "runs/pipeline/serving",
    # A curated schema (schema.pbtxt) to import; null: derived from the FeatureSpec into <pipeline_root>/schema/.
    "schema_path": None,
    # null: the latest span (a daily run); an integer: that span only.
    "span": None,
    # Train/eval hash split of each span (the Evaluator scores the eval split).
    "split_buckets": {"train": 3, "eval": 1},
    "enable_cache": True,
    "beam_pipeline_args": ["--runner=FnApiRunner", "--direct_num_workers=1"],
    # One source trainer per source domain (a Trainer with SOURCE_RUN_FN), warm-started from its previous model.
    "source": {
        "backbone": "dnn",
        "backbone_options": {"hidden_units": [64, 32], "embedding_dim": 8},
        "epochs": 1,
        "batch_size": 256,
        "learning_rate": 0.001,
        **{key: None for key in ("train_steps", "eval_steps", "shuffle_buffer", "steps_per_execution")},
    },
    # The student (target-domain model) trained by the DIIT trainer component.
    "student": {
        "backbone": "dnn",
        "backbone_options": {"hidden_units": [64, 32], "embedding_dim": 8},
        "epochs": 1,
        "batch_size": 256,
        "mix_batch_size": None,
        # Share of each source domain's rows kept in the mix dataset (every target row is kept), in (0, 1].
        "mix_ratio": 1.0,
        "learning_rate": 0.001,
        "discriminator_learning_rate": 0.001,
        # DIITConfig fields (diit_tf/config.py); unset ones keep DIITConfig's defaults.
        "diit": {},
        # Streaming input (diit_tf/data/streaming.py): steps in all (TFX TrainArgs.num_steps) and eval batches
        # (EvalArgs.num_steps), null: every row; the shuffle buffer in records (null: 100,000); steps per traced call.
        **{key: None for key in ("train_steps", "eval_steps", "shuffle_buffer", "steps_per_execution")},
    },
    # tf.distribute strategy of every trainer: "default" (one device), "mirrored" (all local devices, or
    # `devices`), "one_device" (`devices[0]`), "multi_worker" (MultiWorkerMirroredStrategy from TF_CONFIG; `shard`:
    # how workers split the input, "auto" | "file" | "data" | "off", see components/training.py).
    "strategy": {"name": "default", "devices": None, "shard": "auto"},
    "evaluator": {
        # The student is blessed only if its AUC on the target slice is at least this ...
        "target_auc_floor": 0.55,
        # ... and at most this much below the last blessed student's (0: no regression at all).
        "regression_tolerance": 0.0,
    },
    # The Keras Tuner issue's Tuner component; when enabled its best hyperparameters reach the DIIT trainer.
    "tuner": {"enabled": False, "tuner_fn": None, "train_steps": 50, "eval_steps": 20, "custom_config": {}},
}

_PATH_KEYS = ("data_dir", "pipeline_root", "metadata_path", "serving_dir", "schema_path")
_STRATEGIES = ("default", "mirrored", "one_device", "multi_worker")
_SHARDS = ("auto", "file", "data", "off")
_FREE_FORM = ("backbone_options", "diit", "custom_config", "split_buckets")


class PipelineConfig:
    """A validated pipeline configuration (a nested dict with defaults) plus path resolution.

    Args:
      values: the (partial) configuration; missing keys take `DEFAULTS`.
      source: where it came from, for error messages.
      base_dir: relative paths are resolved against this directory (default: the repository root).
    """

    def __init__(self, values: Optional[Mapping] = None, source: str = "<dict>", base_dir=None):
        self.source = source
        self.base_dir = Path(base_dir) if base_dir else REPO_ROOT
        self.values = _merge(DEFAULTS, values or {}, source, "")
        self._validate()

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default=None):
        return self.values.get(key, default)

    def path(self, key: str) -> Optional[str]:
        """The absolute path held by `key` (relative values are taken from the repository root; URIs with a scheme
        such as gs:// are returned unchanged)."""
        value = self.values[key]
        if value is None:
            return None
        if "://" in str(value):  # gs://, s3://, hdfs:// ... are taken as they are
            return str(value)
        p = Path(os.path.expanduser(str(value)))
        return str(p if p.is_absolute() else (self.base_dir / p))

    def to_dict(self) -> dict:
        return copy.deepcopy(self.values)

    def with_overrides(self, overrides: Mapping) -> "PipelineConfig":
        return PipelineConfig(_merge(self.values, overrides, "overrides", ""), self.source, self.base_dir)

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.values, indent=2) + "\n")

    def _validate(self) -> None:
        v = self.values
        where = self.source
        if not isinstance(v["pipeline_name"], str) or not v["pipeline_name"]:
            raise ValueError(f"{where}: `pipeline_name` should be a non-empty string. Received: {v['pipeline_name']!r}")
        for key in _PATH_KEYS:
            if v[key] is not None and not isinstance(v[key], str):
                raise ValueError(f"{where}: `{key}` should be a path string. Received: {v[key]!r}")
        if v["span"] is not None and (not isinstance(v["span"], int) or v["span"] < 0):
            raise ValueError(f"{where}: `span` should be null or a span number >= 0. Received: {v['span']!r}")
        buckets = v["split_buckets"]
        if set(buckets) != {"train", "eval"} or not all(isinstance(b, int) and b > 0 for b in buckets.values()):
            raise ValueError(f"{where}: `split_buckets` should be {{'train': int > 0, 'eval': int > 0}}. "
                             f"Received: {buckets!r}")
        if not isinstance(v["beam_pipeline_args"], list):
            raise ValueError(f"{where}: `beam_pipeline_args` should be a list of strings. "
                             f"Received: {v['beam_pipeline_args']!r}")
        for role in ("source", "student"):
            block = v[role]
            for key in ("epochs", "batch_size"):
                if not isinstance(block[key], int) or block[key] < 1:
                    raise ValueError(f"{where}: `{role}.{key}` should be a positive integer. Received: {block[key]!r}")
            if not block["learning_rate"] > 0:
                raise ValueError(f"{where}: `{role}.learning_rate` should be > 0. Received: {block['learning_rate']!r}")
            for key in ("train_steps", "eval_steps", "shuffle_buffer", "steps_per_execution"):
                if block[key] is not None and (not isinstance(block[key], int) or block[key] < 1):
                    raise ValueError(f"{where}: `{role}.{key}` should be null or a positive integer. "
                                     f"Received: {block[key]!r}")
        ratio = v["student"]["mix_ratio"]
        rates = ratio.values() if isinstance(ratio, dict) else [ratio]
        if not all(isinstance(r, (int, float)) for r in rates) or not (
                all(0 <= r <= 1 for r in rates) if isinstance(ratio, dict) else 0 < ratio <= 1):
            raise ValueError(f"{where}: `student.mix_ratio` should be in (0, 1], or a {{source: rate in [0, 1]}} "
                             f"object. Received: {ratio!r}")
        from diit_tf.config import DIITConfig

        try:
            DIITConfig.from_dict(v["student"]["diit"])
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: `student.diit`: {err}") from None
        if v["strategy"]["name"] not in _STRATEGIES:
            raise ValueError(f"{where}: `strategy.name` should be one of {list(_STRATEGIES)}. "
                             f"Received: {v['strategy']['name']!r}")
        if v["strategy"]["shard"] not in _SHARDS:
            raise ValueError(f"{where}: `strategy.shard` should be one of {list(_SHARDS)}. "
                             f"Received: {v['strategy']['shard']!r}")
        floor = v["evaluator"]["target_auc_floor"]
        if not isinstance(floor, (int, float)) or not 0.0 <= floor <= 1.0:
            raise ValueError(f"{where}: `evaluator.target_auc_floor` should be in [0, 1]. Received: {floor!r}")
        tol = v["evaluator"]["regression_tolerance"]
        if not isinstance(tol, (int, float)) or tol < 0:
            raise ValueError(f"{where}: `evaluator.regression_tolerance` should be >= 0. Received: {tol!r}")
        if v["tuner"]["enabled"] and not v["tuner"]["tuner_fn"]:
            raise ValueError(f"{where}: `tuner.enabled` needs `tuner.tuner_fn` (a dotted path to a tuner_fn).")


def load_config(path=None, overrides: Optional[Mapping] = None) -> PipelineConfig:
    """Read the pipeline config: `path`, else `$DIIT_PIPELINE_CONFIG`, else `pipeline/config.json`."""
    path = path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pipeline config {str(path)!r} does not exist (set ${CONFIG_ENV} or pass --config)")
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"pipeline config {str(path)!r} is not valid JSON: {err}") from None
    config = PipelineConfig(values, source=str(path))
    return config.with_overrides(overrides) if overrides else config


def _merge(base: Mapping, update: Mapping, source: str, prefix: str) -> dict:
    if not isinstance(update, Mapping):
        raise ValueError(f"{source}: `{prefix.rstrip('.') or 'config'}` should be a JSON object. Received: {update!r}")
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if key not in base:
            raise ValueError(f"{source}: unknown setting `{prefix}{key}`; known: {sorted(base)}")
        # Free-form dicts (DIIT options, backbone options, tuner custom_config) are replaced, not merged.
        if isinstance(base[key], Mapping) and key not in _FREE_FORM and isinstance(value, Mapping):
            out[key] = _merge(base[key], value, source, f"{prefix}{key}.")
        else:
            out[key] = copy.deepcopy(value)
    return out
