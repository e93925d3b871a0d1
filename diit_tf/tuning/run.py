"""`run_sweep`: what `diit tune` does, usable from Python.

1. Check `directory/tune_settings.json` (a rerun with other settings is refused: resume needs the same sweep).
2. Build a `DIITHyperModel` whose context (teachers, warm start, periods p and p+1) is prepared on first use
   and cached under `directory/cache`.
3. Search (keras-tuner resumes whatever `directory/diit_tune` holds), one progress line per trial.
4. Unless this process is a distributed worker: print the leaderboard, optionally retrain the default and the
   best configuration with a few seeds (`compare_seeds`), and write `directory/best_hparams.json` plus
   `directory/simulate_hparams.json` (the same result in the simulation's own hparams format, for editing).
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Callable, Optional

from diit_tf.tuning.space import BEST_HPARAMS_FILE, best_hparams_record, default_values, dimensions, write_best_hparams

SETTINGS_FILE = "tune_settings.json"
SIMULATE_HPARAMS_FILE = "simulate_hparams.json"
# Settings that define the sweep; changing any of them needs a new directory (or overwrite).
SWEEP_KEYS = ("data_dir", "algorithm", "train_period", "space", "backbone", "backbone_options", "epochs",
              "batch_size", "mix_batch_size", "seed", "source_epochs", "source_learning_rate")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


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
    path.write_text(json.dumps(current, indent=2) + "\n")
    return False


def run_sweep(data_dir, directory, algorithm: str = "random", max_trials: int = 10, train_period: Optional[int] = None,
              space=None, backbone: str = "dnn", backbone_options: Optional[dict] = None, epochs: int = 1,
              batch_size: int = 512, mix_batch_size: Optional[int] = None, seed: int = 0, source_epochs: int = 1,
              source_learning_rate: float = 1e-3, max_epochs: int = 3, compare_seeds: int = 0,
              overwrite: bool = False, top: int = 10, log: Callable[[str], None] = _stderr,
              out: Callable[[str], None] = print) -> Optional[dict]:
    """Run (or resume) a sweep and write `best_hparams.json`. Returns the best-hparams record (None on a worker).

    `compare_seeds > 0` retrains the default and the best configuration with that many seeds on the same periods
    and adds their mean val AUC (and spread) to the report and to `best_hparams.json["search"]["comparison"]`.
    """
    from diit_tf.data import list_spans, read_metadata
    from diit_tf.tuning.context import DEFAULT_BACKBONE_OPTIONS, default_train_period, prepare_context
    from diit_tf.tuning.hypermodel import DIITHyperModel
    from diit_tf.tuning.tuner import best_values, is_chief, is_worker, leaderboard, make_tuner

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing notes: every trial builds a new model on purpose
    directory = Path(directory)
    metadata = read_metadata(data_dir)  # fails early, naming the directory, when it is not a dataset
    spans = list_spans(data_dir)
    p = default_train_period(spans) if train_period is None else int(train_period)
    if p not in spans or p + 1 not in spans:
        raise ValueError(f"`train_period` {p} needs periods {p} and {p + 1} in {data_dir} (periods: {spans})")
    dims = dimensions(space)  # a bad override fails here, before anything is trained
    options = dict(DEFAULT_BACKBONE_OPTIONS if backbone_options is None else backbone_options)
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    settings = {
        "data_dir": str(data_dir), "algorithm": algorithm, "train_period": p,
        "space": {n: d.describe() for n, d in dims.items()}, "backbone": backbone, "backbone_options": options,
        "epochs": epochs, "batch_size": batch_size, "mix_batch_size": mix_batch_size, "seed": seed,
        "source_epochs": source_epochs, "source_learning_rate": source_learning_rate,
    }
    worker = is_worker()
    resuming = False if worker else check_settings(directory, settings, overwrite)
    role = "chief (serves the oracle, runs no trial)" if is_chief() else ("worker" if worker else "single process")
    log(f"diit tune: {algorithm} search of {metadata.get('dataset')} ({data_dir}), train on period {p}, "
        f"validate on the target's period {p + 1}; {max_trials} trial(s) in {directory} "
        f"[{'resuming' if resuming else 'new'}; {role}]")

    def context():
        return prepare_context(data_dir, train_period=p, backbone=backbone, backbone_options=options,
                               epochs=source_epochs, batch_size=batch_size, learning_rate=source_learning_rate,
                               seed=seed, cache_dir=directory / "cache", log=log)

    hypermodel = DIITHyperModel(context, space=dims, epochs=epochs, batch_size=batch_size,
                                mix_batch_size=mix_batch_size, seed=seed)
    tuner = make_tuner(algorithm, hypermodel, directory, max_trials=max_trials, seed=seed, max_epochs=max_epochs,
                       overwrite=overwrite and not worker, log=log)
    tuner.search(verbose=0)
    if worker:
        log(f"diit tune: worker {tuner.tuner_id} done (no more trials from the chief)")
        return None

    values, score = best_values(tuner)
    base_score = None
    comparison = {}
    if compare_seeds > 0:
        seeds = [seed + i for i in range(compare_seeds)]
        defaults = {n: d.default for n, d in dims.items()}
        log(f"comparing default and best DIIT over seeds {seeds} (train period {p}, validation period {p + 1})")
        lr = float(values.get("learning_rate", defaults["learning_rate"]))
        runs = _compare(hypermodel, defaults, values, seeds, lr, epochs, batch_size, log, "")
        comparison = dict(runs)
        comparison["periods"] = {"train": p, "validation": p + 1}
        if p + 2 in spans:
            # Held out: the sweep chose `best` on period p+1, so compare again one period later, where neither
            # configuration was selected: sources and base through p+1, DIIT trained on p+1, scored on p+2.
            log(f"held-out check: train on period {p + 1}, score on period {p + 2} (not used by the search)")
            held = DIITHyperModel(lambda: prepare_context(
                data_dir, train_period=p + 1, backbone=backbone, backbone_options=options, epochs=source_epochs,
                batch_size=batch_size, learning_rate=source_learning_rate, seed=seed, cache_dir=directory / "cache",
                log=log), space=dims, epochs=epochs, batch_size=batch_size, mix_batch_size=mix_batch_size, seed=seed)
            held_runs = _compare(held, defaults, values, seeds, lr, epochs, batch_size, log, "held-out ")
            comparison["held_out"] = dict(held_runs)
            comparison["held_out"]["periods"] = {"train": p + 1, "test": p + 2}

    base_score = hypermodel.context.base_val_auc if hypermodel._context is not None else _cached_base(directory)
    out(leaderboard(tuner, top=top, base_score=base_score,
                    default_score=comparison["default"]["mean"] if comparison else None, space=dims))
    if comparison:
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
    search = {"algorithm": algorithm, "trials_completed": len([t for t in tuner.oracle.trials.values()
                                                               if t.score is not None]),
              "max_trials": max_trials, "directory": str(directory), "seed": seed, "epochs": epochs,
              "batch_size": batch_size, "backbone": backbone, "backbone_options": options,
              "base_val_auc": base_score, "space": settings["space"]}
    if comparison:
        search["comparison"] = comparison
    record = best_hparams_record(values, score, p, p + 1, str(metadata.get("dataset")), search=search)
    path = write_best_hparams(directory / BEST_HPARAMS_FILE, record)
    sim = write_simulation_hparams(directory / SIMULATE_HPARAMS_FILE, record, backbone_options=options,
                                   batch_size=batch_size, epochs=epochs, mix_batch_size=mix_batch_size)
    out(f"best {record['objective']['name']} {score:.4f}: wrote {path} (and {sim} for `diit simulate --hparams`)")
    return record


def _compare(hypermodel, defaults, best, seeds, best_lr, epochs, batch_size, log, label) -> dict:
    """val AUC per seed of default DIIT, best DIIT, the base (lr 1e-3) and the base at the best trial's lr."""
    from diit_tf.tuning.hypermodel import score_values

    ctx = hypermodel.context
    runs = {"default": [], "best": [], "base": [], "base_best_lr": []}
    for s in seeds:
        runs["default"].append(score_values(hypermodel, defaults, seed=s))
        runs["best"].append(score_values(hypermodel, best, seed=s))
        runs["base"].append(ctx.base_auc(defaults["learning_rate"], epochs, batch_size, seed=s))
        runs["base_best_lr"].append(ctx.base_auc(best_lr, epochs, batch_size, seed=s))
        log(f"  {label}seed {s} (period {ctx.validation_period}): " +
            ", ".join(f"{k} {v[-1]:.4f}" for k, v in runs.items()))
    return {k: _stats(v, seeds) for k, v in runs.items()}


def _stats(values, seeds) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values), "runs": list(values),
            "seeds": list(seeds)}


def _cached_base(directory: Path):
    for info in sorted((directory / "cache").glob("context-*/context.json")):
        try:
            return json.loads(info.read_text()).get("base_val_auc")
        except (OSError, json.JSONDecodeError):
            continue
    return None


def write_simulation_hparams(path, record: dict, backbone_options: dict, batch_size: int, epochs: int,
                             mix_batch_size=None) -> Path:
    """`diit simulate --hparams` document of this sweep (training budget and backbone as tuned)."""
    from diit_tf.tuning.space import simulation_hparams

    base = {"training": {"learning_rate": 1e-3, "epochs": epochs, "batch_size": batch_size,
                         "mix_batch_size": mix_batch_size},
            "backbone": dict(backbone_options)}
    return write_best_hparams(path, simulation_hparams(record, base=base))


__all__ = ["run_sweep", "check_settings", "default_values", "write_simulation_hparams"]
