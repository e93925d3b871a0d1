"""Keras Tuner sweeps of DIIT: the tuner factory (random / bayesian / hyperband), a progress line per trial, the
leaderboard, and `best_hparams.json`.

Resumable: a tuner built with the same `directory` and `project_name` reloads the oracle's state (keras-tuner's
`overwrite=False`) and continues; an interrupted trial is run again. Distributed: with `KERASTUNER_TUNER_ID`,
`KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT` set, the process whose id contains `chief` serves the oracle
over gRPC and runs no trial, and every other process (`tuner0`, `tuner1`, ...) asks it for trials (keras-tuner's
own chief/worker mode; see docs/tuning.md).
"""
from __future__ import annotations

import os
import sys
import time
from typing import Callable, Optional

import keras_tuner

from diit_tf.tuning.space import DIRECTION, OBJECTIVE, dimensions, search_space

ALGORITHMS = ("random", "bayesian", "hyperband")
PROJECT_NAME = "diit_tune"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def objective() -> keras_tuner.Objective:
    """The target domain's AUC on the period after the training period (validation), to maximise."""
    return keras_tuner.Objective(OBJECTIVE, direction=DIRECTION)


def is_chief() -> bool:
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" in os.environ.get("KERASTUNER_TUNER_ID", "")


def is_worker() -> bool:
    return "KERASTUNER_ORACLE_IP" in os.environ and not is_chief()


class _DIITTunerMixin:
    """Declares the space without building a model (a chief never needs the data), and prints one line per trial."""

    log: Callable[[str], None] = staticmethod(_stderr)

    def _populate_initial_space(self):
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def on_trial_begin(self, trial):
        self._trial_started = time.perf_counter()
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        seconds = time.perf_counter() - getattr(self, "_trial_started", time.perf_counter())
        done = self.oracle.get_trial(trial.trial_id)
        score = done.score
        best = None
        try:
            top = self.oracle.get_best_trials(1)
            best = top[0].score if top else None
        except Exception:  # noqa: BLE001  (an oracle client whose chief is shutting down)
            pass
        total = getattr(self.oracle, "max_trials", None)
        status = str(getattr(done.status, "value", done.status)).lower()
        values = ", ".join(f"{k}={_short(v)}" for k, v in done.hyperparameters.values.items()
                           if not k.startswith("tuner/"))
        score_text = f"{OBJECTIVE} {score:.4f}" if isinstance(score, (int, float)) else f"{OBJECTIVE} -"
        best_text = f" (best {best:.4f})" if isinstance(best, (int, float)) else ""
        of = f"/{total}" if total else ""
        self.log(f"trial {done.trial_id}{of} [{self.tuner_id}] {status}: {score_text}{best_text} "
                 f"in {seconds:.1f}s | {values}")
        if status != "completed" and done.message:
            self.log("  " + done.message.strip().splitlines()[-1])


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


_CLASSES = {}


def tuner_class(algorithm: str):
    """The keras-tuner class for `algorithm`, with DIIT's progress line and lazy space declaration."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"`algorithm` should be one of {list(ALGORITHMS)}. Received: {algorithm!r}")
    if algorithm not in _CLASSES:
        base = {"random": keras_tuner.RandomSearch, "bayesian": keras_tuner.BayesianOptimization,
                "hyperband": keras_tuner.Hyperband}[algorithm]
        _CLASSES[algorithm] = type(f"DIIT{base.__name__}", (_DIITTunerMixin, base), {})
    return _CLASSES[algorithm]


def make_tuner(algorithm: str, hypermodel, directory, max_trials: int = 10, project_name: str = PROJECT_NAME,
               seed: int = 0, max_epochs: int = 3, overwrite: bool = False, log: Optional[Callable] = None):
    """A keras-tuner tuner of DIIT, resuming whatever `directory/project_name` already holds.

    Args:
      algorithm: "random", "bayesian" (Gaussian-process BayesianOptimization) or "hyperband".
      hypermodel: a `DIITHyperModel`.
      max_trials: trials in total (a resumed sweep runs only the missing ones); Hyperband stops after this many
        trials too, or earlier when its brackets for `max_epochs` are done.
      max_epochs: Hyperband's largest number of epochs per trial (ignored by the others).
      overwrite: start afresh, deleting the previous trials.
    """
    if not isinstance(max_trials, int) or max_trials < 1:
        raise ValueError(f"`max_trials` should be a positive integer. Received: {max_trials!r}")
    cls = tuner_class(algorithm)
    common = dict(hypermodel=hypermodel, objective=objective(), seed=seed, directory=str(directory),
                  project_name=project_name, overwrite=overwrite, max_consecutive_failed_trials=3)
    if algorithm == "hyperband":
        if not isinstance(max_epochs, int) or max_epochs < 1:
            raise ValueError(f"`max_epochs` should be a positive integer. Received: {max_epochs!r}")
        tuner = cls(max_epochs=max_epochs, factor=3, hyperband_iterations=1, **common)
        _local_oracle(tuner).max_trials = max_trials
    else:
        tuner = cls(max_trials=max_trials, **common)
        _local_oracle(tuner).max_trials = max_trials  # a resumed sweep may be asked for more (or fewer) trials
    if log is not None:
        tuner.log = log
    return tuner


def _local_oracle(tuner):
    """The oracle object of this process (behind a distributed worker's gRPC client)."""
    return getattr(tuner.oracle, "_oracle", tuner.oracle)


# --------------------------------------------------------------------------------------------------- results
def completed_trials(tuner) -> list:
    """Completed trials, best first."""
    trials = [t for t in tuner.oracle.trials.values()
              if str(getattr(t.status, "value", t.status)).upper() == "COMPLETED" and t.score is not None]
    return sorted(trials, key=lambda t: t.score, reverse=DIRECTION == "max")


def leaderboard(tuner, top: int = 10, default_score: Optional[float] = None, base_score: Optional[float] = None,
                space=None) -> str:
    """A text table of the best `top` completed trials (hyperparameters that vary in the space only)."""
    trials = completed_trials(tuner)
    dims = dimensions(space)
    names = [n for n, d in dims.items() if d.kind != "fixed"]
    header = ["rank", "trial", OBJECTIVE] + [_abbrev(n) for n in names]
    rows = []
    for rank, t in enumerate(trials[:top], 1):
        rows.append([str(rank), t.trial_id, f"{t.score:.4f}"] +
                    [_short(t.hyperparameters.values.get(n, "-")) for n in names])
    if default_score is not None:
        rows.append(["-", "default", f"{default_score:.4f}"] + [_short(dims[n].default) for n in names])
    if base_score is not None:
        rows.append(["-", "base", f"{base_score:.4f}"] + ["" for _ in names])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    total = len(tuner.oracle.trials)
    lines.append(f"{len(trials)} completed of {total} trial(s); objective {OBJECTIVE} ({DIRECTION})")
    return "\n".join(lines)


def _abbrev(name: str) -> str:
    return {"discriminator_learning_rate": "d_lr", "learning_rate": "lr", "gate_hidden": "gate",
            "mapper_hidden": "mapper", "grl_lambda": "lambda"}.get(name, name)


def best_values(tuner) -> tuple:
    """`(values, score)` of the best completed trial."""
    trials = completed_trials(tuner)
    if not trials:
        raise RuntimeError("no trial completed: there are no best hyperparameters to report")
    best = trials[0]
    return {k: v for k, v in best.hyperparameters.values.items() if not k.startswith("tuner/")}, best.score


__all__ = ["ALGORITHMS", "PROJECT_NAME", "best_values", "completed_trials", "is_chief", "is_worker", "leaderboard",
           "make_tuner", "objective", "search_space", "tuner_class"]
