"""`run_sweep(Sweep(...))`: what `diit tune` does, usable from Python.

1. Check `directory/tune_settings.json` (a rerun with other settings is refused: resume needs the same sweep).
2. Build a `DIITHyperModel` whose context (teachers, warm start, periods p and p+1) is prepared on first use
   and cached under `directory/cache`.
3. Search (keras-tuner resumes whatever `directory/diit_tune` holds), one progress line per trial.
4. Unless this process is a distributed worker: optionally retrain the default and the best configuration with a
   few seeds (`compare_seeds`), print the leaderboard, and write `directory/best_hparams.json` plus
   `directory/simulate_hparams.json` (the same result in the simulation's own hparams format, for editing).

Example:
    record = run_sweep(Sweep("runs/data/synthetic", "runs/tune", max_trials=4, space="beta2=0.1:5"))
"""
from __future__ import annotations

import dataclasses
import json
import statistics
import sys
from pathlib import Path
from typing import Callable, Optional

from diit_tf.tuning.best_hparams import (BEST_HPARAMS_FILE, best_hparams_record, write_best_hparams,
                                         write_simulation_hparams)
from diit_tf.tuning.space import dimensions

SETTINGS_FILE = "tune_settings.json"
SIMULATE_HPARAMS_FILE = "simulate_hparams.json"
# Settings that define the sweep; changing any of them needs a new directory (or overwrite).
SWEEP_KEYS = ("data_dir", "algorithm", "train_period", "space", "backbone", "backbone_options", "epochs",
              "batch_size", "mix_batch_size", "seed", "source_epochs", "source_learning_rate")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True)
class Sweep:
    """One sweep's settings (the flags of `diit tune`).

    Args:
      data_dir: a dataset in the span layout; directory: where the sweep lives (resumable).
      algorithm: "random" | "bayesian" | "hyperband"; max_trials; max_epochs (hyperband's budget).
      train_period: `p` (trials train on it, validate on `p+1`); None picks `default_train_period`.
      space: search-space overrides (`diit_tf/tuning/overrides.py`) or parsed Dimensions.
      backbone / backbone_options: the architecture of sources, base and student.
      epochs / batch_size / mix_batch_size: each trial's DIIT training; seed: weights and shuffles.
      source_epochs / source_learning_rate: the teachers' and the base's per-period training.
      compare_seeds: retrain the default and the best configuration with that many seeds (0: no comparison).
      overwrite: discard what `directory` holds; top: rows of the leaderboard.
    """

    data_dir: str
    directory: str
    algorithm: str = "random"
    max_trials: int = 10
    train_period: Optional[int] = None
    space: object = None
    backbone: str = "dnn"
    backbone_options: Optional[dict] = None
    epochs: int = 1
    batch_size: int = 512
    mix_batch_size: Optional[int] = None
    seed: int = 0
    source_epochs: int = 1
    source_learning_rate: float = 1e-3
    max_epochs: int = 3
    compare_seeds: int = 0
    overwrite: bool = False
    top: int = 10


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What a `Sweep` resolves to on its dataset: the periods, the space after overrides, the backbone options."""

    dataset: str
    spans: list
    train_period: int
    dims: dict
    backbone_options: dict
    settings: dict  # the values of SWEEP_KEYS, as recorded in tune_settings.json


def plan_sweep(sweep: Sweep) -> _Plan:
    """Check the dataset, the training period and the overrides before anything is trained."""
    from diit_tf.data import list_spans, read_metadata
    from diit_tf.tuning.context import DEFAULT_BACKBONE_OPTIONS, default_train_period

    metadata = read_metadata(sweep.data_dir)  # fails early, naming the directory, when it is not a dataset
    spans = list_spans(sweep.data_dir)
    p = default_train_period(spans) if sweep.train_period is None else int(sweep.train_period)
    if p not in spans or p + 1 not in spans:
        raise ValueError(f"`train_period` {p} needs periods {p} and {p + 1} in {sweep.data_dir} (periods: {spans})")
    dims = dimensions(sweep.space)  # a bad override fails here
    options = dict(DEFAULT_BACKBONE_OPTIONS if sweep.backbone_options is None else sweep.backbone_options)
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    settings = {key: getattr(sweep, key) for key in SWEEP_KEYS}
    settings.update(data_dir=str(sweep.data_dir), train_period=p, backbone_options=options,
                    space={n: d.describe() for n, d in dims.items()})
    return _Plan(str(metadata.get("dataset")), spans, p, dims, options, settings)


def check_settings(directory: Path, settings: dict, overwrite: bool) -> bool:
    """Record the sweep's settings, or check a resumed sweep has the same. Returns True when resuming."""
    path = directory / SETTINGS_FILE
    current = {k: settings[k] for k in SWEEP_KEYS}
    if path.is_file() and not overwrite:
        try:
            previous = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err}); remove it or pass --overwrite") from None
        differ = sorted(k for k in SWEEP_KEYS if previous.get(k) != current[k])
        if differ:
            detail = "; ".join(f"{k}: {previous.get(k)!r} -> {current[k]!r}" for k in differ)
            raise ValueError(f"--directory {directory} holds a sweep with other settings ({detail}); use another "
                             f"--directory, or --overwrite to discard it")
        return True
    directory.mkdir(parents=True, exist_ok=True)
    if overwrite:  # the discarded sweep's results are not this sweep's: none may stay beside its settings
        for name in (BEST_HPARAMS_FILE, SIMULATE_HPARAMS_FILE):
            (directory / name).unlink(missing_ok=True)
    path.write_text(json.dumps(current, indent=2) + "\n")
    return False


def run_sweep(sweep: Sweep, log: Callable[[str], None] = _stderr, out: Callable[[str], None] = print) -> Optional[dict]:
    """Run (or resume) a sweep and write `best_hparams.json`. Returns the best-hparams record (None on a worker).

    `compare_seeds > 0` retrains the default and the best configuration with that many seeds on the same periods
    and adds their mean val AUC (and spread) to the report and to `best_hparams.json["search"]["comparison"]`.
    """
    from diit_tf.tuning.tuner import best_values, is_chief, is_worker, make_tuner

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing notes: every trial builds a new model on purpose
    plan = plan_sweep(sweep)
    directory = Path(sweep.directory)
    worker = is_worker()
    resuming = False if worker else check_settings(directory, plan.settings, sweep.overwrite)
    role = "chief (serves the oracle, runs no trial)" if is_chief() else ("worker" if worker else "single process")
    p = plan.train_period
    log(f"diit tune: {sweep.algorithm} search of {plan.dataset} ({sweep.data_dir}), train on period {p}, "
        f"validate on the target's period {p + 1}; {sweep.max_trials} trial(s) in {directory} "
        f"[{'resuming' if resuming else 'new'}; {role}]")
    hypermodel = _hypermodel(sweep, plan, p, log)
    tuner = make_tuner(sweep.algorithm, hypermodel, directory, max_trials=sweep.max_trials, seed=sweep.seed,
                       max_epochs=sweep.max_epochs, overwrite=sweep.overwrite and not worker, log=log)
    tuner.search(verbose=0)
    if worker:
        log(f"diit tune: worker {tuner.tuner_id} done (no more trials from the chief)")
        return None
    values, score = best_values(tuner)
    comparison = _comparison(sweep, plan, hypermodel, values, log) if sweep.compare_seeds > 0 else {}
    base_score = hypermodel.context.base_val_auc if hypermodel._context is not None else _cached_base(directory)
    _report(out, tuner, sweep, plan, base_score, comparison)
    return _write_results(out, tuner, sweep, plan, values, score, base_score, comparison)


def _hypermodel(sweep: Sweep, plan: _Plan, train_period: int, log):
    """A `DIITHyperModel` whose context (teachers and warm start through `train_period`) is prepared on first use,
    cached under the sweep's directory."""
    from diit_tf.tuning.context import prepare_context
    from diit_tf.tuning.hypermodel import DIITHyperModel

    def context():
        return prepare_context(sweep.data_dir, train_period=train_period, backbone=sweep.backbone,
                               backbone_options=plan.backbone_options, epochs=sweep.source_epochs,
                               batch_size=sweep.batch_size, learning_rate=sweep.source_learning_rate,
                               seed=sweep.seed, cache_dir=Path(sweep.directory) / "cache", log=log)

    return DIITHyperModel(context, space=plan.dims, epochs=sweep.epochs, batch_size=sweep.batch_size,
                          mix_batch_size=sweep.mix_batch_size, seed=sweep.seed)


def _comparison(sweep: Sweep, plan: _Plan, hypermodel, values: dict, log) -> dict:
    """Default against best DIIT (and the base at both learning rates) over `compare_seeds` seeds, on the
    validation period and, when the data has one more period, held out one period later."""
    p = plan.train_period
    seeds = [sweep.seed + i for i in range(sweep.compare_seeds)]
    defaults = {n: d.default for n, d in plan.dims.items()}
    log(f"comparing default and best DIIT over seeds {seeds} (train period {p}, validation period {p + 1})")
    lr = float(values.get("learning_rate", defaults["learning_rate"]))
    comparison = _compare(hypermodel, defaults, values, seeds, lr, sweep, log, "")
    comparison["periods"] = {"train": p, "validation": p + 1}
    if p + 2 in plan.spans:
        # Held out: the sweep chose `best` on period p+1, so compare again one period later, where neither
        # configuration was selected: sources and base through p+1, DIIT trained on p+1, scored on p+2.
        log(f"held-out check: train on period {p + 1}, score on period {p + 2} (not used by the search)")
        held = _hypermodel(sweep, plan, p + 1, log)
        comparison["held_out"] = _compare(held, defaults, values, seeds, lr, sweep, log, "held-out ")
        comparison["held_out"]["periods"] = {"train": p + 1, "test": p + 2}
    return comparison


def _compare(hypermodel, defaults, best, seeds, best_lr, sweep: Sweep, log, label) -> dict:
    """val AUC per seed of default DIIT, best DIIT, the base (lr 1e-3) and the base at the best trial's lr."""
    from diit_tf.tuning.hypermodel import score_values

    ctx = hypermodel.context
    runs = {"default": [], "best": [], "base": [], "base_best_lr": []}
    for s in seeds:
        runs["default"].append(score_values(hypermodel, defaults, seed=s))
        runs["best"].append(score_values(hypermodel, best, seed=s))
        runs["base"].append(ctx.base_auc(defaults["learning_rate"], sweep.epochs, sweep.batch_size, seed=s))
        runs["base_best_lr"].append(ctx.base_auc(best_lr, sweep.epochs, sweep.batch_size, seed=s))
        log(f"  {label}seed {s} (period {ctx.validation_period}): " +
            ", ".join(f"{k} {v[-1]:.4f}" for k, v in runs.items()))
    return {k: _stats(v, seeds) for k, v in runs.items()}


def _stats(values, seeds) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values), "runs": list(values),
            "seeds": list(seeds)}


def _report(out, tuner, sweep: Sweep, plan: _Plan, base_score, comparison: dict) -> None:
    """The leaderboard, then the comparison's lines."""
    from diit_tf.tuning.tuner import leaderboard

    p = plan.train_period
    out(leaderboard(tuner, top=sweep.top, base_score=base_score,
                    default_score=comparison["default"]["mean"] if comparison else None, space=plan.dims))
    if not comparison:
        return
    d, b = comparison["default"], comparison["best"]
    out(f"validation (train period {p}, period {p + 1}): default DIIT {d['mean']:.4f} ± {d['std']:.4f}, "
        f"best {b['mean']:.4f} ± {b['std']:.4f} over {len(d['runs'])} seed(s): {b['mean'] - d['mean']:+.4f}; "
        f"base {comparison['base']['mean']:.4f}, base at the best lr {comparison['base_best_lr']['mean']:.4f}")
    if "held_out" in comparison:
        h = comparison["held_out"]
        out(f"held out (train period {p + 1}, test period {p + 2}): default {h['default']['mean']:.4f} ± "
            f"{h['default']['std']:.4f}, best {h['best']['mean']:.4f} ± {h['best']['std']:.4f}: "
            f"{h['best']['mean'] - h['default']['mean']:+.4f}; base {h['base']['mean']:.4f}, base at the best "
            f"lr {h['base_best_lr']['mean']:.4f}")


def _write_results(out, tuner, sweep: Sweep, plan: _Plan, values, score, base_score, comparison: dict) -> dict:
    """`best_hparams.json` and `simulate_hparams.json` under the sweep's directory; returns the record."""
    directory = Path(sweep.directory)
    search = {"algorithm": sweep.algorithm,
              "trials_completed": len([t for t in tuner.oracle.trials.values() if t.score is not None]),
              "max_trials": sweep.max_trials, "directory": str(directory), "seed": sweep.seed, "epochs": sweep.epochs,
              "batch_size": sweep.batch_size, "backbone": sweep.backbone, "backbone_options": plan.backbone_options,
              "base_val_auc": base_score, "space": plan.settings["space"]}
    if comparison:
        search["comparison"] = comparison
    record = best_hparams_record(values, score, plan.train_period, plan.train_period + 1, plan.dataset,
                                 search=search)
    path = write_best_hparams(directory / BEST_HPARAMS_FILE, record)
    sim = write_simulation_hparams(directory / SIMULATE_HPARAMS_FILE, record, backbone_options=plan.backbone_options,
                                   batch_size=sweep.batch_size, epochs=sweep.epochs,
                                   mix_batch_size=sweep.mix_batch_size)
    out(f"best {record['objective']['name']} {score:.4f}: wrote {path} (and {sim} for `diit simulate --hparams`)")
    return record


def _cached_base(directory: Path):
    for info in sorted((directory / "cache").glob("context-*/context.json")):
        try:
            return json.loads(info.read_text()).get("base_val_auc")
        except (OSError, json.JSONDecodeError):
            continue
    return None


__all__ = ["Sweep", "run_sweep", "plan_sweep", "check_settings"]
