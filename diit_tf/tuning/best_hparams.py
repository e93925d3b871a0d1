"""A sweep's result: `best_hparams.json`, written by `diit tune` and read by the DIIT trainer and `diit simulate`.

```json
{"diit_config": {...every DIITConfig field...},
 "training": {"learning_rate": 0.001, "discriminator_learning_rate": 0.001, "mix_ratio": 1.0},
 "objective": {"name": "val_auc", "direction": "max", "value": 0.74, "train_period": 4, "validation_period": 5},
 "dataset": "movielens-1m", "hyperparameters": {...the raw keras-tuner values...}, "search": {...}}
```
Read it with `load_best_hparams(path) -> (DIITConfig, training)`; it also reads the TFX Tuner's
`best_hyperparameters.txt` (a keras-tuner `HyperParameters` config) and a directory holding either.
`simulation_hparams` turns it into `diit simulate --hparams`' own format (`diit_tf/simulation/hparams.py`).

Example:
    write_best_hparams("runs/tune/best_hparams.json", best_hparams_record(values, 0.74, 4, 5, "movielens-1m"))
    config, training = load_best_hparams("runs/tune")
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Optional

from diit_tf.config import DIITConfig
from diit_tf.jsonfile import read_json_object
from diit_tf.tuning.space import DEFAULT_TRAINING, DIRECTION, OBJECTIVE, check_training, split_values

BEST_HPARAMS_FILE = "best_hparams.json"
TFX_BEST_HPARAMS_FILE = "best_hyperparameters.txt"


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
        where, source = _read_file(source)
    source = dict(source)
    if "diit_config" in source:
        return _checked_record(source, where)
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


def _read_file(source) -> tuple:
    """(path as text, its JSON object) for a result file, or a directory holding one."""
    path = Path(source)
    if path.is_dir():
        for name in (BEST_HPARAMS_FILE, TFX_BEST_HPARAMS_FILE):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise FileNotFoundError(f"{path} holds neither {BEST_HPARAMS_FILE} nor {TFX_BEST_HPARAMS_FILE}")
    return str(path), read_json_object(path, f"hyperparameter file {path}")


def _checked_record(source: dict, where: str) -> dict:
    """A `best_hparams.json` document, its `diit_config` and `training` checked and completed with defaults."""
    unknown = sorted(set(source) - {"diit_config", "training", "objective", "dataset", "hyperparameters", "search"})
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
    check_training(training, where)
    out = dict(source)
    out["diit_config"] = config.to_dict()
    out["training"] = training
    return out


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


def write_simulation_hparams(path, record: dict, backbone_options: dict, batch_size: int, epochs: int,
                             mix_batch_size=None) -> Path:
    """`diit simulate --hparams` document of a sweep's result (training budget and backbone as tuned)."""
    base = {"training": {"learning_rate": 1e-3, "epochs": epochs, "batch_size": batch_size,
                         "mix_batch_size": mix_batch_size},
            "backbone": dict(backbone_options)}
    return write_best_hparams(path, simulation_hparams(record, base=base))
