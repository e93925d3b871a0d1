"""Settings of the DIIT pipeline: one JSON file, so they survive `tfx run create` re-running the DSL file.

`tfx pipeline create` and `tfx run create` each execute `pipeline/diit.py` in a fresh process and keep neither the
environment of the first call nor runtime parameters (docs/toolchain.md). So every setting lives in a config file:
`$DIIT_PIPELINE_CONFIG` when set, else `pipeline/config.json` next to this module. Relative paths in the file are
resolved against the repository root (the parent of `pipeline/`), never the current directory.

Entry points of the components are dotted strings here (imported by the TFX executors), as in the TFX templates.

Data. `data_dir` is a named dataset (`synthetic`, `movielens-1m`, ...: built once under `data_root` and cached,
the same names and cache as `diit simulate`, see diit_tf/data/registry.py) or a directory in the span layout.

Training settings come from one place: `hparams`, the simulation's hyperparameter presets
(diit_tf/simulation/presets/, chosen on validation periods) or a best-hparams file (`diit simulate --tune ...`,
`diit tune`). Unset (`null`), it is the preset validated on the dataset at hand, or the built-in defaults when
there is none. Any trainer setting given explicitly in `source` / `student` overrides it; `student.diit` entries
override single DIIT options.

Example:
    config = load_config()                              # $DIIT_PIPELINE_CONFIG or pipeline/config.json
    config = load_config("my.json", overrides={"data_dir": "runs/demo/data", "student": {"epochs": 2}})
    config.path("pipeline_root")                        # absolute path
    config.resolved(config.data_dir())                  # every trainer setting filled in from `hparams`
"""
from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping, Optional

from diit_tf.counts import as_count, is_count, is_number
from diit_tf.jsonfile import read_json_object

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = Path(__file__).resolve().parent / "config.json"
CONFIG_ENV = "DIIT_PIPELINE_CONFIG"

# Entry points (dotted paths the TFX executors import).
PREPROCESSING_FN = "components.transform_module.preprocessing_fn"
SOURCE_RUN_FN = "components.source_trainer.run_fn"
JOINT_RUN_FN = "components.joint_trainer.run_fn"

# Every key, with its default. Nested dicts are merged key by key; unknown keys are an error.
DEFAULTS: dict = {
    "pipeline_name": "diit",
    # A named dataset (built once under data_root) or a directory in the span layout (`diit data ...`).
    "data_dir": "synthetic",
    "data_root": "data",
    # A hyperparameter preset name or file; null: the preset validated on the dataset, else the built-in defaults.
    "hparams": None,
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
    # null: from `hparams` (backbone_options = its `backbone`, the rest its `training`, learning rate the base's).
    "source": {
        "backbone": "dnn",
        "backbone_options": None,
        "epochs": None,
        "batch_size": None,
        "learning_rate": None,
        **{key: None for key in ("train_steps", "eval_steps", "shuffle_buffer", "steps_per_execution")},
    },
    # The student (target-domain model) trained by the DIIT trainer component; null: from `hparams` (DIIT's).
    "student": {
        "backbone": "dnn",
        "backbone_options": None,
        "epochs": None,
        "batch_size": None,
        "mix_batch_size": None,
        # Share of each source domain's rows kept in the mix dataset (every target row is kept), in (0, 1].
        "mix_ratio": None,
        "learning_rate": None,
        "discriminator_learning_rate": None,
        # DIITConfig fields (diit_tf/config.py) over the hparams' `methods.diit.diit_config`.
        "diit": {},
        # Where the student starts when it has no previous model (the first span): "base" (a fresh model),
        # "best_source" (the source model with the best AUC on the span's target rows), "best_source_embeddings"
        # (that model's embedding tables), or "joint_embeddings" (the embedding tables of a joint model trained on
        # every row of the span by the init joint trainer, INIT_JOINT_ID in pipeline/diit.py; not with
        # `joint_teacher`); null: the hparams' `training.student_init`.
        "student_init": None,
        # Streaming input (diit_tf/data/streaming.py): steps in all (TFX TrainArgs.num_steps) and eval batches
        # (EvalArgs.num_steps), null: every row; the shuffle buffer in records (null: 100,000); steps per traced call.
        **{key: None for key in ("train_steps", "eval_steps", "shuffle_buffer", "steps_per_execution")},
        # At most this many rows in each of the gate's own fits (`diit.gate_fit_epochs` > 0), which hold them in
        # memory: the mix rows of the origin fit (`diit.gate_origin` > 0), the target rows of the supervised fit;
        # null: 262,144 (components/diit_trainer.py, GATE_FIT_ROWS).
        "gate_fit_rows": None,
    },
    # The joint teacher (the simulation's `kd_joint`): instead of the K source trainers, one joint trainer
    # (JOINT_RUN_FN: a multi-domain model on every row, with the `source` settings) is the student's one teacher, and
    # the student distils it by logit KD (`DIITConfig.logit_kd(beta, temperature)`, under explicit `student.diit`
    # entries). null: the hparams' `kd_joint` options (beta, temperature) and `joint` learning rate; the student's
    # learning rate is then the hparams' `kd_joint` one, and `student.student_init` must be "base".
    "joint_teacher": {"enabled": False, "beta": None, "temperature": None, "learning_rate": None},
    # Routing by origin (the simulation's `kd_origin`): the source trainers stay, and the student distils each mix
    # row from the source it came from, the target's rows of the mix from the sources' uniform average, by logit KD
    # (`DIITConfig.logit_kd(beta, temperature, route_by_origin=True)`, under explicit `student.diit` entries). null:
    # the hparams' `kd_origin` options (beta, temperature), else DIIT's beta2 and tau; the student's learning rate is
    # then the hparams' `kd_origin` one. Not with the joint teacher (no row has an origin among its teachers).
    "kd_origin": {"enabled": False, "beta": None, "temperature": None},
    # The target's single-domain base: the source trainer pointed at the target domain, with the source settings,
    # warm-started from its own previous model. What the student is compared with; never pushed.
    "base_trainer": {"enabled": False},
    # tf.distribute strategy of every trainer: "default" (one device), "mirrored" (all local devices, or
    # `devices`), "one_device" (`devices[0]`), "multi_worker" (MultiWorkerMirroredStrategy from TF_CONFIG; `shard`:
    # how workers split the input, "auto" | "file" | "data" | "off", see components/training.py), "parameter_server"
    # (variables on "ps" tasks, the chief's loop; needs `source.train_steps` and `student.train_steps`).
    "strategy": {"name": "default", "devices": None, "shard": "auto"},
    "evaluator": {
        # The student is blessed only if its AUC on the target slice is at least this ...
        "target_auc_floor": 0.55,
        # ... and at most this much below the last blessed student's (0: no regression at all).
        "regression_tolerance": 0.0,
    },
    # The TFX Tuner component (Keras Tuner); when enabled its best hyperparameters reach the DIIT trainer.
    "tuner": {"enabled": False, "tuner_fn": None, "train_steps": 50, "eval_steps": 20, "custom_config": {}},
}

_PATH_KEYS = ("data_dir", "data_root", "pipeline_root", "metadata_path", "serving_dir", "schema_path")
_STRATEGIES = ("default", "mirrored", "one_device", "multi_worker", "parameter_server")
_SHARDS = ("auto", "file", "data", "off")
_FREE_FORM = ("backbone_options", "diit", "custom_config", "split_buckets")
# The KD switches (each replaces DIIT by logit KD in the student) and the hparams method each takes its settings from.
_KD_SWITCHES = {"joint_teacher": "kd_joint", "kd_origin": "kd_origin"}
# The integer settings of both trainer blocks (`source`, `student`), each null or a positive integer; the student
# also has `mix_batch_size` and `gate_fit_rows`.
_COUNT_KEYS = ("epochs", "batch_size", "train_steps", "eval_steps", "shuffle_buffer", "steps_per_execution")


class PipelineConfig:
    """A validated pipeline configuration (a nested dict with defaults) plus path resolution.

    Args:
      values: the (partial) configuration; missing keys take `DEFAULTS`.
      source: where it came from, for error messages.
      base_dir: relative paths are resolved against this directory (default: the repository root).
      origins: where single settings came from when not from `source`, e.g. {"data_dir": "--dataset",
        "kd_origin.enabled": "--kd-origin"} (see `origin`); an error naming such a setting says so.
    """

    def __init__(self, values: Optional[Mapping] = None, source: str = "<dict>", base_dir=None,
                 origins: Optional[Mapping] = None):
        self.source = source
        self.origins = dict(origins or {})
        self.resolved_from = None
        self.base_dir = Path(base_dir) if base_dir else REPO_ROOT
        self.values = _merge(DEFAULTS, values or {}, source, "")
        try:
            self._validate()
        except ValueError as err:
            raise ValueError(self._with_origins(str(err))) from None

    def _with_origins(self, message: str) -> str:
        """A validation error (`"<source>: ..."`) with each setting it names that came from elsewhere (`origins`,
        e.g. a command-line flag) followed by where from; when every setting it names did, without the source."""
        named = re.findall(r"`([\w.]+)`", message)
        moved = [key for key in dict.fromkeys(named) if key in self.origins]
        for key in moved:
            message = message.replace(f"`{key}`", f"`{key}` (from {self.origins[key]})")
        prefix = f"{self.source}: "
        if moved and len(moved) == len(set(named)) and message.startswith(prefix):
            message = message[len(prefix):]
        return message

    def origin(self, key: str) -> str:
        """Where the top-level setting `key` came from, for error messages: its entry in `origins` (e.g. the
        command-line flag that set it), else `source`."""
        return self.origins.get(key, self.source)

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

    def data_dir(self, log=None) -> str:
        """The dataset directory: `data_dir` itself, or the named dataset it names, built under `data_root` when
        its cache is missing or stale (diit_tf/data/registry.py)."""
        from diit_tf.data import registry

        value, path = self.values["data_dir"], self.path("data_dir")
        if value in registry.DATASETS and not os.path.isfile(os.path.join(path, "metadata.json")):
            return str(registry.resolve_dataset(value, self.path("data_root"), log=log).resolve())
        return path

    def hparams_for(self, data_dir):
        """`(Hparams, where from)`: `hparams` when set (a preset name or a file, relative to the repository root),
        else the preset validated on the dataset at `data_dir`, else the built-in defaults."""
        from diit_tf.data.registry import preset_of
        from diit_tf.simulation.hparams import Hparams, presets

        choice = self.values["hparams"]
        if choice is None:
            preset = preset_of(data_dir) if data_dir and "://" not in str(data_dir) else None
            if preset is None:
                return Hparams(), "the built-in defaults (no preset was validated on this dataset)"
            return Hparams.load(preset), f"preset {preset!r} (validated on this dataset)"
        if choice in presets():
            return Hparams.load(choice), f"preset {choice!r}"
        path = self.path("hparams")
        return Hparams.load(path), f"file {path}"

    def resolved(self, data_dir) -> "PipelineConfig":
        """A copy whose `source` and `student` settings are all set: explicit values, else `hparams_for`'s.
        `resolved_from` says where the hyperparameters came from."""
        hp, origin = self.hparams_for(data_dir)
        backbone = {k: list(v) if isinstance(v, tuple) else v for k, v in hp.backbone_options.items()}
        lr = hp.learning_rate("diit")
        # The student's method: DIIT, or the KD switch that is on (at most one, checked), whose hparams method gives
        # its learning rate, beta and temperature. The KD students distil over every row of the span, as the
        # simulation's KD methods do: DIIT's own mix ratio is not theirs.
        switch = next((name for name in _KD_SWITCHES if self.values[name]["enabled"]), None)
        method = _KD_SWITCHES.get(switch, "diit")
        chosen = {
            "source": {"backbone_options": backbone, "epochs": hp.epochs, "batch_size": hp.batch_size,
                       "learning_rate": hp.learning_rate("base")},
            "student": {"backbone_options": backbone, "epochs": hp.epochs, "batch_size": hp.batch_size,
                        "mix_batch_size": hp.mix_batch_size,
                        "mix_ratio": float(hp.diit_option("mix_ratio", 1.0)) if switch is None else 1.0,
                        # the joint teacher leaves no source model to start from, and is the joint model itself
                        "student_init": "base" if switch == "joint_teacher" else hp.student_init,
                        "learning_rate": hp.learning_rate(method),
                        "discriminator_learning_rate": float(hp.diit_option("discriminator_learning_rate", lr))},
        }
        values = self.to_dict()
        for role, settings in chosen.items():
            for key, value in settings.items():
                if values[role][key] is None:
                    values[role][key] = value
        from diit_tf.config import DIITConfig

        if switch is None:
            base = hp.diit_config_dict()
        else:
            kd = values[switch]
            options, cfg = hp.method_options(method), hp.diit_config()
            fill = {"beta": options.get("beta", cfg.beta2), "temperature": options.get("temperature", cfg.tau)}
            if switch == "joint_teacher":
                fill["learning_rate"] = hp.learning_rate("joint")  # the joint model's own
            kd.update({key: float(value) for key, value in fill.items() if kd[key] is None})
            base = DIITConfig.logit_kd(kd["beta"], kd["temperature"],
                                       route_by_origin=switch == "kd_origin").to_dict()
        values["student"]["diit"] = {**base, **values["student"]["diit"]}
        config = PipelineConfig(values, self.source, self.base_dir, self.origins)
        config.resolved_from = origin
        return config

    def with_overrides(self, overrides: Mapping, origins: Optional[Mapping] = None) -> "PipelineConfig":
        """A copy with `overrides` merged in; `origins` names where overridden top-level settings came from."""
        return PipelineConfig(_merge(self.values, overrides, "overrides", ""), self.source, self.base_dir,
                              {**self.origins, **(origins or {})})

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
        v["span"] = _check_count(where, "span", v["span"], minimum=0, what="a span number >= 0")
        buckets = v["split_buckets"]
        if set(buckets) != {"train", "eval"} or not all(is_count(b) for b in buckets.values()):
            raise ValueError(f"{where}: `split_buckets` should be {{'train': int > 0, 'eval': int > 0}}. "
                             f"Received: {buckets!r}")
        if not isinstance(v["beam_pipeline_args"], list):
            raise ValueError(f"{where}: `beam_pipeline_args` should be a list of strings. "
                             f"Received: {v['beam_pipeline_args']!r}")
        if v["hparams"] is not None and (not isinstance(v["hparams"], str) or not v["hparams"]):
            raise ValueError(f"{where}: `hparams` should be null, a preset name or a file path. "
                             f"Received: {v['hparams']!r}")
        for role in ("source", "student"):
            block = v[role]
            for key in _COUNT_KEYS + (("mix_batch_size",) if role == "student" else ()):
                block[key] = _check_count(where, f"{role}.{key}", block[key])
            for key in ("learning_rate",) + (("discriminator_learning_rate",) if role == "student" else ()):
                if block[key] is not None and not (is_number(block[key]) and block[key] > 0):
                    raise ValueError(f"{where}: `{role}.{key}` should be null or > 0. Received: {block[key]!r}")
            options = block["backbone_options"]
            if options is not None and not isinstance(options, Mapping):
                raise ValueError(f"{where}: `{role}.backbone_options` should be null or an object. "
                                 f"Received: {options!r}")
        v["student"]["gate_fit_rows"] = _check_count(
            where, "student.gate_fit_rows", v["student"]["gate_fit_rows"],
            what="a positive integer (the rows each of the gate's own fits holds in memory)")
        ratio = v["student"]["mix_ratio"]
        if ratio is not None:
            rates = ratio.values() if isinstance(ratio, dict) else [ratio]
            if not all(is_number(r) for r in rates) or not (
                    all(0 <= r <= 1 for r in rates) if isinstance(ratio, dict) else 0 < ratio <= 1):
                raise ValueError(f"{where}: `student.mix_ratio` should be null, in (0, 1], or a "
                                 f"{{source: rate in [0, 1]}} object. Received: {ratio!r}")
        from diit_tf.simulation.hparams import STUDENT_INITS

        init = v["student"]["student_init"]
        if init not in (None, *STUDENT_INITS):
            raise ValueError(f"{where}: `student.student_init` should be null or one of {list(STUDENT_INITS)}. "
                             f"Received: {init!r}")
        joint = v["joint_teacher"]
        if not isinstance(joint["enabled"], bool):
            raise ValueError(f"{where}: `joint_teacher.enabled` should be true or false. "
                             f"Received: {joint['enabled']!r}")
        _check_kd_numbers(where, "joint_teacher", joint)
        if joint["enabled"] and v["tuner"]["enabled"]:
            raise ValueError(f"{where}: `tuner.enabled` and `joint_teacher.enabled`: the Tuner sweeps DIIT from the "
                             "source models, which the joint teacher replaces; turn one of them off")
        if joint["enabled"] and init == "joint_embeddings":
            raise ValueError(f"{where}: `student.student_init` is 'joint_embeddings', a start from a joint model's "
                             "embedding tables; with `joint_teacher.enabled` the student already distils from the "
                             "joint model: set student_init to null or \"base\", or turn the joint teacher off to "
                             "start from the joint model's tables and learn from the source models")
        if joint["enabled"] and init not in (None, "base"):
            raise ValueError(f"{where}: `student.student_init` is {init!r}, which starts from "
                             "a source model; with `joint_teacher.enabled` there is none: set it to null or \"base\"")
        routed = v["kd_origin"]
        if not isinstance(routed["enabled"], bool):
            raise ValueError(f"{where}: `kd_origin.enabled` should be true or false. Received: {routed['enabled']!r}")
        _check_kd_numbers(where, "kd_origin", routed)
        if routed["enabled"] and joint["enabled"]:
            raise ValueError(f"{where}: `kd_origin.enabled` and `joint_teacher.enabled`: routing by origin distils "
                             "each mix row from its source, and the joint model is no source (no row has an origin "
                             "among its teachers); turn one of them off")
        if routed["enabled"] and v["tuner"]["enabled"]:
            raise ValueError(f"{where}: `tuner.enabled` and `kd_origin.enabled`: the Tuner sweeps DIIT's options, "
                             "which routing by origin fixes (logit KD, no gate); turn one of them off")
        if not isinstance(v["base_trainer"]["enabled"], bool):
            raise ValueError(f"{where}: `base_trainer.enabled` should be true or false. "
                             f"Received: {v['base_trainer']['enabled']!r}")
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
        if v["strategy"]["name"] == "parameter_server":
            unbounded = [f"{block}.train_steps" for block in ("source", "student") if not v[block]["train_steps"]]
            if unbounded:
                raise ValueError(f"{where}: `strategy.name` 'parameter_server' needs a step count for every trainer "
                                 f"(its workers read the data repeated, with no epoch end): set {unbounded}")
        floor = v["evaluator"]["target_auc_floor"]
        if not is_number(floor) or not 0.0 <= floor <= 1.0:
            raise ValueError(f"{where}: `evaluator.target_auc_floor` should be in [0, 1]. Received: {floor!r}")
        tol = v["evaluator"]["regression_tolerance"]
        if not is_number(tol) or tol < 0:
            raise ValueError(f"{where}: `evaluator.regression_tolerance` should be >= 0. Received: {tol!r}")
        if v["tuner"]["enabled"] and not v["tuner"]["tuner_fn"]:
            raise ValueError(f"{where}: `tuner.enabled` needs `tuner.tuner_fn` (a dotted path to a tuner_fn).")
        for key in ("train_steps", "eval_steps"):
            v["tuner"][key] = _check_count(where, f"tuner.{key}", v["tuner"][key])


def _check_kd_numbers(where: str, section: str, block: Mapping) -> None:
    """A KD teacher section's numbers (`joint_teacher`, `kd_origin`): `beta` null or >= 0, `temperature` and
    `learning_rate` (where the section has them) null or > 0; else a ValueError naming the setting."""
    for key in ("beta", "temperature", "learning_rate"):
        value = block.get(key)
        zero_ok = key == "beta"
        if value is not None and not (is_number(value) and (value >= 0 if zero_ok else value > 0)):
            raise ValueError(f"{where}: `{section}.{key}` should be null or {'>= 0' if zero_ok else '> 0'}. "
                             f"Received: {value!r}")


def _check_count(where: str, name: str, value, minimum: int = 1, what: str = "a positive integer") -> Optional[int]:
    """`value`, the setting `name`, as an integer >= `minimum`, or None when null: the values
    `diit_tf.counts.positive_count` takes, through the same `as_count` (256.0, as a JSON writer may spell a count, is
    256: the trainers take it so, and TFX's protos need the int); else a ValueError naming the setting, `what` saying
    what it should be."""
    number = None if value is None else as_count(value, minimum)
    if value is not None and number is None:
        raise ValueError(f"{where}: `{name}` should be null or {what}. Received: {value!r}")
    return number


def load_config(path=None, overrides: Optional[Mapping] = None, origins: Optional[Mapping] = None) -> PipelineConfig:
    """Read the pipeline config: `path`, else `$DIIT_PIPELINE_CONFIG`, else `pipeline/config.json`; `overrides`
    (with their `origins`, see `PipelineConfig`) are merged in."""
    path = path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    path = Path(path)
    values = read_json_object(path, f"pipeline config {str(path)!r}",
                              missing=f"does not exist (set ${CONFIG_ENV} or pass --config)")
    config = PipelineConfig(values, source=str(path))
    return config.with_overrides(overrides, origins) if overrides else config


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
