"""DIIT's search space, its overrides, and the `best_hparams.json` a sweep writes.

One function, `search_space(hp, overrides)`, declares every tuned hyperparameter on a `keras_tuner.HyperParameters`.
Its defaults equal the library's defaults (`DIITConfig()`, the learning rate 1e-3 of `diit simulate` and the
pipeline, both networks at width 64, a mix dataset holding every source row), so an untouched trial *is* the
default DIIT:

| name                          | range                   | default | what it sets                                 |
|-------------------------------|-------------------------|---------|----------------------------------------------|
| `tau`                         | 0.5 .. 8, log           | 2.0     | `DIITConfig.tau` (logit-spot temperature)    |
| `alpha`                       | 0 .. 1                  | 0.5     | `DIITConfig.alpha` (MSE vs KL in L_KD)       |
| `beta1`                       | 0.001 .. 1, log         | 0.01    | `DIITConfig.beta1` (adversarial weight)      |
| `beta2`                       | 0.05 .. 5, log          | 0.5     | `DIITConfig.beta2` (distillation weight)     |
| `grl_lambda`                  | 0.01 .. 10, log         | 1.0     | `DIITConfig.grl_lambda` (GRL's λ)            |
| `gate_hidden`                 | 16, 32, 64, 128         | 64      | `DIITConfig.gate_hidden` (gate width)        |
| `mapper_hidden`               | 16, 32, 64, 128         | 64      | `DIITConfig.mapper_hidden = (w,)`            |
| `learning_rate`               | 1e-4 .. 1e-2, log       | 1e-3    | Adam of student, gate and mapper             |
| `discriminator_learning_rate` | 1e-4 .. 1e-2, log       | 1e-3    | Adam of the discriminator                    |
| `mix_ratio`                   | 0.1 .. 1                | 1.0     | share of source rows kept in the mix dataset |

Overrides (`diit tune --space`, or the `space` key of the TFX Tuner's `custom_config`), comma-separated:
`name=lo:hi[:log|:linear]` a range, `name=a|b|c` a choice, `name=v` a fixed value; or the same as JSON:
`{"tau": {"min": 0.5, "max": 8, "sampling": "log"}, "gate_hidden": {"values": [32, 64]}, "alpha": 0.3}`.
An override's default is the library default when it lies inside the new range, else the nearest end (range)
or the first value (choice).

`best_hparams.json`:
```json
{"diit_config": {...every DIITConfig field...},
 "training": {"learning_rate": 0.001, "discriminator_learning_rate": 0.001, "mix_ratio": 1.0},
 "objective": {"name": "val_auc", "direction": "max", "value": 0.74, "train_period": 4, "validation_period": 5},
 "dataset": "movielens-1m", "hyperparameters": {...the raw keras-tuner values...}, "search": {...}}
```
Read it with `load_best_hparams(path) -> (DIITConfig, training)`; it also reads the TFX Tuner's
`best_hyperparameters.txt` (a keras-tuner `HyperParameters` config) and a directory holding either.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Mapping, Optional, Union

from diit_tf.config import DIITConfig

BEST_HPARAMS_FILE = "best_hparams.json"
TFX_BEST_HPARAMS_FILE = "best_hyperparameters.txt"
OBJECTIVE = "val_auc"
DIRECTION = "max"

# The library's defaults outside DIITConfig (learning rates of `diit simulate` and the pipeline; a mix dataset
# holding every row of the period, as `make_diit_dataset` and the simulation build it).
DEFAULT_TRAINING = {"learning_rate": 1e-3, "discriminator_learning_rate": 1e-3, "mix_ratio": 1.0}
TRAINING_NAMES = tuple(DEFAULT_TRAINING)
WIDTHS = (16, 32, 64, 128)


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One hyperparameter: a float/int range (`min`, `max`, `sampling`) or a choice (`values`), or a fixed value."""

    name: str
    kind: str  # "float", "int", "choice", "fixed"
    default: object
    min: Optional[float] = None
    max: Optional[float] = None
    sampling: str = "linear"
    values: tuple = ()
    lower_bound: float = -math.inf   # what the option itself accepts (validation of overrides)
    upper_bound: float = math.inf
    integer: bool = False
    help: str = ""

    def declare(self, hp):
        """Register this dimension on `hp` (a keras_tuner.HyperParameters) and return its current value."""
        if self.kind == "fixed":
            return hp.Fixed(self.name, self.default)
        if self.kind == "choice":
            return hp.Choice(self.name, list(self.values), default=self.default)
        if self.kind == "int":
            return hp.Int(self.name, int(self.min), int(self.max), sampling=self.sampling, default=int(self.default))
        return hp.Float(self.name, float(self.min), float(self.max), sampling=self.sampling,
                        default=float(self.default))

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"{self.name}={self.default!r} (fixed)"
        if self.kind == "choice":
            return f"{self.name} in {list(self.values)} (default {self.default!r})"
        return f"{self.name} in [{self.min:g}, {self.max:g}] {self.sampling} (default {self.default:g})"


def _defaults() -> dict:
    cfg = DIITConfig()
    return {
        "tau": cfg.tau, "alpha": cfg.alpha, "beta1": cfg.beta1, "beta2": cfg.beta2, "grl_lambda": cfg.grl_lambda,
        "gate_hidden": cfg.gate_hidden, "mapper_hidden": cfg.mapper_hidden[0] if len(cfg.mapper_hidden) == 1 else 64,
        **DEFAULT_TRAINING,
    }


def default_dimensions() -> dict:
    """The search space before overrides, by name (defaults read from DIITConfig at call time)."""
    d = _defaults()
    positive = dict(lower_bound=0.0)
    dims = [
        Dimension("tau", "float", d["tau"], 0.5, 8.0, "log", lower_bound=1e-12,
                  help="temperature of the logit spot"),
        Dimension("alpha", "float", d["alpha"], 0.0, 1.0, "linear", lower_bound=0.0, upper_bound=1.0,
                  help="weight of the middle spot (MSE) against the logit spot (KL)"),
        Dimension("beta1", "float", d["beta1"], 1e-3, 1.0, "log", **positive, help="weight of the adversarial loss"),
        Dimension("beta2", "float", d["beta2"], 0.05, 5.0, "log", **positive, help="weight of the distillation loss"),
        Dimension("grl_lambda", "float", d["grl_lambda"], 0.01, 10.0, "log", **positive,
                  help="strength of the gradient reversal layer"),
        Dimension("gate_hidden", "choice", d["gate_hidden"], values=WIDTHS, lower_bound=1, integer=True,
                  help="width of the gate's hidden layer"),
        Dimension("mapper_hidden", "choice", d["mapper_hidden"], values=WIDTHS, lower_bound=1, integer=True,
                  help="width of the mapper's hidden layer"),
        Dimension("learning_rate", "float", d["learning_rate"], 1e-4, 1e-2, "log", lower_bound=1e-12,
                  help="Adam learning rate of student, gate and mapper"),
        Dimension("discriminator_learning_rate", "float", d["discriminator_learning_rate"], 1e-4, 1e-2, "log",
                  lower_bound=1e-12, help="Adam learning rate of the discriminator"),
        Dimension("mix_ratio", "float", d["mix_ratio"], 0.1, 1.0, "linear", lower_bound=1e-12, upper_bound=1.0,
                  help="share of the period's source rows kept in the mix dataset (target rows always kept)"),
    ]
    return {dim.name: dim for dim in dims}


HYPERPARAMETER_NAMES = tuple(default_dimensions())


# --------------------------------------------------------------------------------------------------- overrides
def parse_overrides(spec: Union[None, str, Mapping]) -> dict:
    """Turn `--space` text (or a JSON object / dict, or a path to a JSON file) into validated Dimensions.

    Raises ValueError naming the hyperparameter for an unknown name, an empty or inverted range, a bad sampling,
    a value outside what the option accepts, or an unparsable number.
    """
    if spec is None or spec == "" or spec == {}:
        return {}
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("{"):
            try:
                spec = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f"search-space override is not valid JSON: {err}") from None
        elif text.endswith(".json") and "=" not in text:
            path = Path(text)
            if not path.is_file():
                raise FileNotFoundError(f"search-space file {text} not found")
            try:
                spec = json.loads(path.read_text())
            except json.JSONDecodeError as err:
                raise ValueError(f"search-space file {text} is not valid JSON: {err}") from None
        else:
            spec = _parse_text(text)
    if not isinstance(spec, Mapping):
        raise ValueError(f"search-space override should be a JSON object or name=range text. Received: {spec!r}")
    base = default_dimensions()
    out = {}
    for name, value in spec.items():
        if name not in base:
            raise ValueError(f"unknown hyperparameter {name!r} in the search-space override; "
                             f"known: {', '.join(HYPERPARAMETER_NAMES)}")
        out[name] = _override(base[name], value)
    return out


def _parse_text(text: str) -> dict:
    out = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if "=" not in item:
            raise ValueError(f"search-space override {item!r} should read name=lo:hi[:log], name=a|b|c or name=v")
        name, _, value = (s.strip() for s in item.partition("="))
        if not name:
            raise ValueError(f"search-space override {item!r} has no hyperparameter name before '='")
        if name in out:
            raise ValueError(f"hyperparameter {name!r} is overridden twice in the search space")
        if value == "":
            raise ValueError(f"hyperparameter {name!r}: empty override (expected lo:hi, a|b|c or a value)")
        if "|" in value:
            out[name] = {"values": [_number(name, v) for v in value.split("|")]}
        elif ":" in value:
            parts = value.split(":")
            if len(parts) not in (2, 3):
                raise ValueError(f"hyperparameter {name!r}: range {value!r} should be lo:hi or lo:hi:log")
            entry = {"min": _number(name, parts[0]), "max": _number(name, parts[1])}
            if len(parts) == 3:
                entry["sampling"] = parts[2].strip()
            out[name] = entry
        else:
            out[name] = _number(name, value)
    return out


def _number(name: str, text):
    if isinstance(text, bool):
        raise ValueError(f"hyperparameter {name!r}: expected a number. Received: {text!r}")
    if isinstance(text, (int, float)):
        return text
    text = str(text).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"hyperparameter {name!r}: {text!r} is not a number") from None


def _check_value(dim: Dimension, value, what: str):
    value = _number(dim.name, value)
    if not math.isfinite(value):
        raise ValueError(f"hyperparameter {dim.name!r}: {what} should be finite. Received: {value!r}")
    if value < dim.lower_bound or value > dim.upper_bound:
        bounds = f">= {dim.lower_bound:g}" if dim.upper_bound == math.inf else f"in [{dim.lower_bound:g}, {dim.upper_bound:g}]"
        if dim.lower_bound == 1e-12:
            bounds = "> 0" if dim.upper_bound == math.inf else f"in (0, {dim.upper_bound:g}]"
        raise ValueError(f"hyperparameter {dim.name!r}: {what} should be {bounds}. Received: {value!r}")
    if dim.integer:
        if float(value) != int(value):
            raise ValueError(f"hyperparameter {dim.name!r}: {what} should be an integer width. Received: {value!r}")
        value = int(value)
    return value


def _override(dim: Dimension, value) -> Dimension:
    if isinstance(value, Mapping):
        keys = set(value)
        if "values" in keys:
            if keys - {"values", "default"}:
                raise ValueError(f"hyperparameter {dim.name!r}: a choice takes 'values' (and 'default'); "
                                 f"received keys {sorted(keys)}")
            values = value["values"]
            if not isinstance(values, (list, tuple)) or not values:
                raise ValueError(f"hyperparameter {dim.name!r}: empty choice (no values)")
            values = tuple(_check_value(dim, v, "every choice") for v in values)
            if len(set(values)) != len(values):
                raise ValueError(f"hyperparameter {dim.name!r}: repeated values in the choice {list(values)}")
            default = value.get("default", dim.default if dim.default in values else values[0])
            if default not in values:
                raise ValueError(f"hyperparameter {dim.name!r}: default {default!r} is not one of {list(values)}")
            return dataclasses.replace(dim, kind="choice", values=values, default=default, min=None, max=None)
        unknown = keys - {"min", "max", "sampling", "default"}
        if unknown or not {"min", "max"} <= keys:
            raise ValueError(f"hyperparameter {dim.name!r}: a range takes 'min', 'max' and optionally 'sampling' "
                             f"and 'default'; received keys {sorted(keys)}")
        lo = _check_value(dim, value["min"], "the range's min")
        hi = _check_value(dim, value["max"], "the range's max")
        if not lo < hi:
            raise ValueError(f"hyperparameter {dim.name!r}: empty range {lo!r}:{hi!r} (min should be < max; "
                             f"use name=value to fix a value)")
        sampling = str(value.get("sampling", dim.sampling if dim.kind in ("float", "int") else "linear")).lower()
        if sampling not in ("linear", "log"):
            raise ValueError(f"hyperparameter {dim.name!r}: sampling should be 'linear' or 'log'. "
                             f"Received: {sampling!r}")
        if sampling == "log" and lo <= 0:
            raise ValueError(f"hyperparameter {dim.name!r}: a log range needs min > 0. Received: min={lo!r}")
        default = value.get("default", min(max(dim.default, lo), hi))
        default = _check_value(dim, default, "the default")
        if not lo <= default <= hi:
            raise ValueError(f"hyperparameter {dim.name!r}: default {default!r} is outside [{lo!r}, {hi!r}]")
        kind = "int" if dim.integer else "float"
        if dim.integer:
            default = int(round(default))
        return dataclasses.replace(dim, kind=kind, min=lo, max=hi, sampling=sampling, default=default, values=())
    if isinstance(value, (list, tuple)):
        return _override(dim, {"values": list(value)})
    fixed = _check_value(dim, value, "the fixed value")
    return dataclasses.replace(dim, kind="fixed", default=fixed, min=None, max=None, values=())


def dimensions(overrides=None) -> dict:
    """The search space after overrides (a dict of Dimension by name, in declaration order)."""
    dims = default_dimensions()
    dims.update(parse_overrides(overrides) if not _is_parsed(overrides) else overrides)
    return dims


def _is_parsed(overrides) -> bool:
    return isinstance(overrides, Mapping) and overrides and all(isinstance(v, Dimension) for v in overrides.values())


# ------------------------------------------------------------------------------------------------ the search space
def search_space(hp, overrides=None) -> dict:
    """Declare DIIT's hyperparameters on `hp` (a `keras_tuner.HyperParameters`) and return their current values.

    Args:
      hp: the trial's HyperParameters (or a fresh one to get the defaults).
      overrides: `--space` text, a JSON object/dict of overrides, or already-parsed Dimensions.

    Returns:
      `{name: value}` for every name in `HYPERPARAMETER_NAMES`; turn it into a model with `split_values`.
    """
    return {name: dim.declare(hp) for name, dim in dimensions(overrides).items()}


def default_values() -> dict:
    """The values of an untouched trial: the library's defaults."""
    return {name: dim.default for name, dim in default_dimensions().items()}


def split_values(values: Mapping, base_config: Optional[DIITConfig] = None):
    """Hyperparameter values -> `(DIITConfig, training)`; names missing from `values` keep the defaults.

    `training` holds `learning_rate`, `discriminator_learning_rate` and `mix_ratio`. keras-tuner's bookkeeping
    entries (`tuner/epochs`, ...) are ignored; any other unknown name is an error.
    """
    values = {k: v for k, v in dict(values).items() if not str(k).startswith("tuner/")}
    unknown = sorted(set(values) - set(HYPERPARAMETER_NAMES))
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {unknown}; known: {', '.join(HYPERPARAMETER_NAMES)}")
    changes = {}
    for name in ("tau", "alpha", "beta1", "beta2", "grl_lambda"):
        if name in values:
            changes[name] = float(values[name])
    if "gate_hidden" in values:
        changes["gate_hidden"] = int(values["gate_hidden"])
    if "mapper_hidden" in values:
        changes["mapper_hidden"] = (int(values["mapper_hidden"]),)
    config = (base_config or DIITConfig()).replace(**changes)
    training = dict(DEFAULT_TRAINING)
    for name in TRAINING_NAMES:
        if name in values:
            training[name] = float(values[name])
    _check_training(training, "hyperparameters")
    return config, training


def _check_training(training: Mapping, where: str) -> None:
    unknown = sorted(set(training) - set(TRAINING_NAMES))
    if unknown:
        raise ValueError(f"{where}: unknown `training` key(s) {unknown}; known: {list(TRAINING_NAMES)}")
    for name in ("learning_rate", "discriminator_learning_rate"):
        value = training.get(name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            raise ValueError(f"{where}: `training.{name}` should be a number > 0. Received: {value!r}")
    ratio = training.get("mix_ratio")
    if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 0 < ratio <= 1:
        raise ValueError(f"{where}: `training.mix_ratio` should be in (0, 1]. Received: {ratio!r}")


# ------------------------------------------------------------------------------------------------ best_hparams.json
def best_hparams_record(values: Mapping, score: Optional[float], train_period: int, validation_period: int,
                        dataset: str, search: Optional[Mapping] = None) -> dict:
    """The `best_hparams.json` document for hyperparameter `values` scoring `score` (val AUC)."""
    config, training = split_values(values)
    return {
        "diit_config": config.to_dict(),
        "training": training,
        "objective": {"name": OBJECTIVE, "direction": DIRECTION,
                      "value": None if score is None else float(score),
                      "train_period": int(train_period), "validation_period": int(validation_period)},
        "dataset": dataset,
        "hyperparameters": {k: v for k, v in dict(values).items() if not str(k).startswith("tuner/")},
        "search": dict(search or {}),
    }


def write_best_hparams(path, record: Mapping) -> Path:
    """Write `record` as JSON atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)
    return path


def read_best_hparams(source) -> dict:
    """Read a tuning result into the `best_hparams.json` document (validated).

    `source`: a path to `best_hparams.json`, to the TFX Tuner's `best_hyperparameters.txt`, a directory holding
    either, or an already-loaded dict in either format (a keras-tuner `HyperParameters.get_config()` dict has
    `values`; a bare `{name: value}` dict of hyperparameters is accepted too).
    """
    where = "best hyperparameters"
    if not isinstance(source, Mapping):
        path = Path(source)
        if path.is_dir():
            for name in (BEST_HPARAMS_FILE, TFX_BEST_HPARAMS_FILE):
                if (path / name).is_file():
                    path = path / name
                    break
            else:
                raise FileNotFoundError(f"{path} holds neither {BEST_HPARAMS_FILE} nor {TFX_BEST_HPARAMS_FILE}")
        if not path.is_file():
            raise FileNotFoundError(f"hyperparameter file {path} not found")
        where = str(path)
        try:
            source = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from None
        if not isinstance(source, Mapping):
            raise ValueError(f"{path} should hold a JSON object. Received: {type(source).__name__}")
    source = dict(source)
    if "diit_config" in source:
        unknown = sorted(set(source) - {"diit_config", "training", "objective", "dataset", "hyperparameters",
                                        "search"})
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}")
        if not isinstance(source["diit_config"], Mapping):
            raise ValueError(f"{where}: `diit_config` should be an object. Received: {source['diit_config']!r}")
        try:
            config = DIITConfig.from_dict(source["diit_config"])
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: `diit_config`: {err}") from None
        training = dict(DEFAULT_TRAINING)
        given = source.get("training") or {}
        if not isinstance(given, Mapping):
            raise ValueError(f"{where}: `training` should be an object. Received: {given!r}")
        training.update(given)
        _check_training(training, where)
        out = dict(source)
        out["diit_config"] = config.to_dict()
        out["training"] = training
        return out
    values = source.get("values", source) if isinstance(source.get("values"), Mapping) else source
    if "space" in values and "values" in source:
        values = source["values"]
    try:
        config, training = split_values(values)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return {"diit_config": config.to_dict(), "training": training,
            "objective": {"name": OBJECTIVE, "direction": DIRECTION, "value": None},
            "dataset": None, "hyperparameters": {k: v for k, v in values.items() if not str(k).startswith("tuner/")},
            "search": {}}


def load_best_hparams(source):
    """`(DIITConfig, training)` from a tuning result (see `read_best_hparams` for accepted inputs).

    `training` = `{"learning_rate", "discriminator_learning_rate", "mix_ratio"}`.
    """
    record = read_best_hparams(source)
    return DIITConfig.from_dict(record["diit_config"]), dict(record["training"])


def simulation_hparams(record: Mapping, base: Optional[Mapping] = None) -> dict:
    """The `diit simulate --hparams` document (diit_tf/simulation/hparams.py's own format) carrying a tuning result.

    `diit simulate` also reads `best_hparams.json` directly; this form is for editing (adding other methods'
    options, a training budget). DIIT's options go to `methods.diit.diit_config`, its learning rates and mix ratio
    to `methods.diit` (the other methods keep the shared `training.learning_rate`).
    """
    record = read_best_hparams(record)
    out = json.loads(json.dumps(dict(base or {})))
    methods = out.setdefault("methods", {})
    diit = methods.setdefault("diit", {})
    diit["diit_config"] = record["diit_config"]
    diit.update(record["training"])
    objective = record.get("objective") or {}
    out["selected_on"] = (
        f"diit tune on {record.get('dataset')}: {objective.get('name', OBJECTIVE)} {objective.get('value')} "
        f"(trained on period {objective.get('train_period')}, validated on period "
        f"{objective.get('validation_period')})"
    )
    return out
