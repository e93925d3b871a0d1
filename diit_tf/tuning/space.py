"""DIIT's search space: every tuned hyperparameter with its range and default, and overrides applied to it.

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

Overrides (`diit tune --space`, or the `space` key of the TFX Tuner's `custom_config`) are written in the
mini-language of `diit_tf/tuning/overrides.py` (`name=lo:hi[:log]`, `name=a|b|c`, `name=v`, or JSON); here they
are checked against the option each name sets. An override's default is the library default when it lies inside
the new range, else the nearest end (range) or the first value (choice). A sweep's result, `best_hparams.json`,
is written and read by `diit_tf/tuning/best_hparams.py`.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Optional, Union

from diit_tf.config import DIITConfig
from diit_tf.counts import is_number
from diit_tf.tuning.overrides import number, read_overrides

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
    base = default_dimensions()
    out = {}
    for name, value in read_overrides(spec).items():
        if name not in base:
            raise ValueError(f"unknown hyperparameter {name!r} in the search-space override; "
                             f"known: {', '.join(HYPERPARAMETER_NAMES)}")
        out[name] = _override(base[name], value)
    return out


def _check_value(dim: Dimension, value, what: str):
    value = number(dim.name, value)
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
    check_training(training, "hyperparameters")
    return config, training


def check_training(training: Mapping, where: str) -> None:
    """Raise ValueError (prefixed with `where`) unless `training` holds valid learning rates and mix ratio."""
    unknown = sorted(set(training) - set(TRAINING_NAMES))
    if unknown:
        raise ValueError(f"{where}: unknown `training` key(s) {unknown}; known: {list(TRAINING_NAMES)}")
    for name in ("learning_rate", "discriminator_learning_rate"):
        value = training.get(name)
        if not is_number(value) or not value > 0:
            raise ValueError(f"{where}: `training.{name}` should be a number > 0. Received: {value!r}")
    ratio = training.get("mix_ratio")
    if not is_number(ratio) or not 0 < ratio <= 1:
        raise ValueError(f"{where}: `training.mix_ratio` should be in (0, 1]. Received: {ratio!r}")
