"""The hyperparameters of a simulation run: one JSON file (`--hparams best_hparams.json`).

```json
{
  "training": {"learning_rate": 0.001, "epochs": 1, "batch_size": 512, "mix_batch_size": 512},
  "backbone": {"hidden_units": [128, 64], "embedding_dim": 16},
  "insertion_period": 4,
  "methods": {
    "diit": {"diit_config": {"beta2": 1.0, "gate_supervision": 0.5}},
    "kd_uniform": {"beta": 0.5},
    "dann": {"grl_lambda": 0.1, "domain_weight": 0.1, "source_weight": 0.5, "learning_rate": 0.001}
  },
  "selected_on": "free text: how these values were chosen (which validation periods, which grid)"
}
```
`training` is the fair budget every method shares (epochs per period, batch size, and `student_init`: where every
transfer method's target model starts at the insertion period, "base", "best_source", "best_source_embeddings" or
"joint_embeddings"); a method may override only its
`learning_rate` and its own options. `methods.diit.diit_config` (fields of `DIITConfig`) is also the starting point
of every DIIT ablation, which then switches one part off; `methods.diit` may also set
`discriminator_learning_rate` and `mix_ratio` (share of source rows kept in the mix dataset). Missing keys take
the defaults below.

A `best_hparams.json` written by `diit tune` (keys `diit_config`, `training`, `objective`, ...) is accepted too:
its DIIT options, learning rates and mix ratio go to `methods.diit`, everything else keeps the defaults.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

from diit_tf.config import DIITConfig
from diit_tf.counts import is_number, positive_count
from diit_tf.jsonfile import read_json_object

PRESETS_DIR = Path(__file__).parent / "presets"


def presets() -> list:
    """Names of the bundled hyperparameter presets."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.json"))


DEFAULTS = {
    "training": {"learning_rate": 0.001, "epochs": 1, "batch_size": 512, "mix_batch_size": None,
                 "student_init": "base"},
    "backbone": {"hidden_units": [128, 64], "embedding_dim": 16},
    "insertion_period": None,
    "methods": {},
    "selected_on": "defaults (not tuned)",
}
TRAINING_KEYS = {"learning_rate", "epochs", "batch_size", "mix_batch_size", "student_init"}
# Where every transfer method's target model starts at the insertion period (`training.student_init`): "base",
# the base's weights of the period before (the protocol's default); "best_source", the weights of the latest
# source model that scores the best AUC on the target's labelled rows of the insertion period (every source
# backbone has the student's architecture); "best_source_embeddings", the base's weights with that source's embedding
# tables (`FeatureEmbedding`) in place of the base's; "joint_embeddings", the base's weights with the embedding
# tables of a multi-domain model (`joint`'s) trained on every domain's rows from the first period through the
# insertion period, for this start alone (the protocol trains it; nothing trains it after). Chosen on validation
# periods like any other option.
STUDENT_INITS = ("base", "best_source", "best_source_embeddings", "joint_embeddings")
# The starts copied from a source model (the others: "base", and "joint_embeddings" from the joint model).
SOURCE_INITS = ("best_source", "best_source_embeddings")
# What a start copies, as logs and reports name it.
COPIED_BY_INIT = {"best_source": "model", "best_source_embeddings": "embedding tables",
                  "joint_embeddings": "embedding tables"}
METHOD_OPTIONS = {
    "diit": {"diit_config", "discriminator_learning_rate", "mix_ratio"},
    "kd_uniform": {"beta", "temperature"},
    "kd_static": {"beta", "temperature", "quality", "weighting", "weight_temperature"},
    "kd_best_single": {"beta", "temperature", "quality"},
    "kd_self": {"beta", "temperature"},
    "kd_origin": {"beta", "temperature"},
    "kd_joint": {"beta", "temperature", "target_kd"},
    "hamur": {"adapter_units", "rank", "hyper_units"},
    "star": {"aux_units"},
    "dann": {"grl_lambda", "domain_weight", "source_weight"},
    "ctnet": {"adapter_units"},
}


class Hparams:
    """Validated hyperparameters. `where` names the file in error messages."""

    def __init__(self, data: dict = None, where: str = "hparams"):
        data = copy.deepcopy(data or {})
        unknown = set(data) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; known keys: {sorted(DEFAULTS)}")
        merged = copy.deepcopy(DEFAULTS)
        for key, value in data.items():
            if isinstance(merged[key], dict):
                if not isinstance(value, dict):
                    raise ValueError(f"{where}: `{key}` should be an object. Received: {value!r}")
                merged[key].update(value)
            else:
                merged[key] = value
        self.where = where
        self.data = merged
        self._validate()

    @classmethod
    def load(cls, path) -> "Hparams":
        """Read a hyperparameter file, or a bundled preset by name (`synthetic`, `movielens-1m`: the values
        chosen on validation periods and recorded in docs/results.md)."""
        path = Path(path)
        if not path.is_file() and str(path) in presets():
            path = PRESETS_DIR / f"{path}.json"
        data = read_json_object(path, f"hyperparameter file {path}",
                                missing=f"not found (bundled presets: {', '.join(presets())})")
        if "diit_config" in data and "objective" in data:
            data = from_tuning_record(data)
        return cls(data, where=str(path))

    def _validate(self):
        training = self.data["training"]
        unknown = set(training) - TRAINING_KEYS
        if unknown:
            raise ValueError(f"{self.where}: unknown `training` key(s) {sorted(unknown)}; known: {sorted(TRAINING_KEYS)}")
        # the counts (`positive_count`: a boolean is none, JSON true would pass as 1; 256.0 is taken as 256), kept as
        # ints
        for key in ("epochs", "batch_size"):
            training[key] = positive_count(training[key], f"training.{key}", self.where)
        training["mix_batch_size"] = positive_count(training["mix_batch_size"], "training.mix_batch_size", self.where,
                                                    null=True)
        self.data["insertion_period"] = positive_count(self.data["insertion_period"], "insertion_period", self.where,
                                                       null=True)
        if training["student_init"] not in STUDENT_INITS:
            raise ValueError(f"{self.where}: `training.student_init` should be one of {list(STUDENT_INITS)}. "
                             f"Received: {training['student_init']!r}")
        if not (is_number(training["learning_rate"]) and training["learning_rate"] > 0):
            raise ValueError(f"{self.where}: `training.learning_rate` should be > 0. "
                             f"Received: {training['learning_rate']!r}")
        for name, options in self.data["methods"].items():
            if not isinstance(options, dict):
                raise ValueError(f"{self.where}: `methods.{name}` should be an object. Received: {options!r}")
            allowed = METHOD_OPTIONS.get(name, set()) | {"learning_rate"}
            unknown = set(options) - allowed
            if unknown:
                raise ValueError(f"{self.where}: `methods.{name}` has unknown option(s) {sorted(unknown)}; "
                                 f"allowed: {sorted(allowed)}")
            lr = options.get("learning_rate")
            if lr is not None and not (is_number(lr) and lr > 0):
                raise ValueError(f"{self.where}: `methods.{name}.learning_rate` should be > 0. Received: {lr!r}")
        DIITConfig.from_dict(self.diit_config_dict())  # raises naming a bad option

    # ---------------------------------------------------------------------------------------------- accessors
    @property
    def epochs(self) -> int:
        return self.data["training"]["epochs"]

    @property
    def batch_size(self) -> int:
        return self.data["training"]["batch_size"]

    @property
    def mix_batch_size(self) -> int:
        return self.data["training"]["mix_batch_size"] or self.batch_size

    @property
    def student_init(self) -> str:
        return self.data["training"]["student_init"]

    @property
    def backbone_options(self) -> dict:
        options = dict(self.data["backbone"])
        if "hidden_units" in options:
            options["hidden_units"] = tuple(options["hidden_units"])
        return options

    @property
    def insertion_period(self):
        return self.data["insertion_period"]

    def learning_rate(self, method: str) -> float:
        """The method's learning rate; the DIIT ablations and single-source DIIT share DIIT's."""
        for key in (method, "diit" if method.startswith("diit") else None):
            if key and "learning_rate" in self.data["methods"].get(key, {}):
                return float(self.data["methods"][key]["learning_rate"])
        return float(self.data["training"]["learning_rate"])

    def method_options(self, method: str) -> dict:
        options = dict(self.data["methods"].get(method, {}))
        options.pop("learning_rate", None)
        return options

    def diit_option(self, name: str, default):
        return self.data["methods"].get("diit", {}).get(name, default)

    def diit_config_dict(self) -> dict:
        return dict(self.data["methods"].get("diit", {}).get("diit_config", {}))

    def diit_config(self, **changes) -> DIITConfig:
        return DIITConfig.from_dict(self.diit_config_dict()).replace(**changes)

    def replace(self, **changes) -> "Hparams":
        """A copy with top-level sections updated (dicts merged one level deep)."""
        data = copy.deepcopy(self.data)
        for key, value in changes.items():
            if isinstance(data.get(key), dict) and isinstance(value, dict):
                data[key].update(value)
            else:
                data[key] = value
        return Hparams(data, where=self.where)

    def to_dict(self) -> dict:
        return copy.deepcopy(self.data)

    def save(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.data, f, indent=2)
            f.write("\n")


def from_tuning_record(record: dict) -> dict:
    """This module's format from a `diit tune` best_hparams.json record."""
    training = dict(record.get("training") or {})
    diit = {"diit_config": dict(record["diit_config"])}
    for key in ("learning_rate", "discriminator_learning_rate", "mix_ratio"):
        if key in training:
            diit[key] = training[key]
    objective = record.get("objective") or {}
    return {"methods": {"diit": diit},
            "selected_on": f"diit tune on {record.get('dataset')}: {objective.get('name')} {objective.get('value')} "
                           f"(trained on period {objective.get('train_period')}, validated on period "
                           f"{objective.get('validation_period')})"}
