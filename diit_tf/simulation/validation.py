"""Choosing hyperparameters on validation periods only (`diit simulate --tune budget|transfer`).

The validation protocol uses the periods up to the test insertion period `p0` and inserts two periods earlier, so
every score comes from periods `p0-1` and `p0`, which the test run only ever trains on (it evaluates `p0+1..N`).

- `budget`: the training budget every method shares (learning rate x epochs per period), chosen on the base's
  validation AUC (mean over the tuning seeds).
- `transfer`: coordinate search over each transfer method's own options (DIIT's named `DIITConfig` options, which
  its ablations inherit; KD's weight; DANN's weights), one option at a time in a fixed order, keeping the best
  value before moving on; each trial runs the base and that one method. A `training.<key>` step (e.g.
  `training.mix_batch_size`) changes the shared training section and is scored on DIIT.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

from diit_tf.keyvalue import parse_value, split_assignment
from diit_tf.simulation.hparams import Hparams
from diit_tf.simulation.protocol import run_simulation, summarize

BUDGET_GRID = {"learning_rate": [0.001, 0.003, 0.01], "epochs": [1, 2, 4]}
# DIIT's steps are the options that act on its default form (logit spot + supervised gate); `alpha` and `beta1`
# weigh the middle spot and the adversary, which it leaves out (tune them with --tune-grid for `diit_paper`).
TRANSFER_GRID = [
    ("diit", "beta2", [0.5, 1.0, 2.0, 4.0]),
    ("diit", "gate_supervision", [0.5, 1.0, 2.0]),
    ("kd_uniform", "beta", [0.5, 1.0, 2.0, 4.0]),
    ("dann", "domain_weight", [0.1, 0.3]),
    ("dann", "source_weight", [0.0, 0.5]),
]
DIIT_TRAINING_OPTIONS = ("learning_rate", "discriminator_learning_rate", "mix_ratio")


def parse_grid(text: str) -> list:
    """`"diit.beta2=0.5,1,2;kd_uniform.beta=0.5,1"` -> [("diit", "beta2", [0.5, 1, 2]), ...]."""
    steps = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, values = split_assignment(part, "--tune-grid", "method.option=v1,v2")
        method, dot, option = key.partition(".")
        if not (dot and method.strip() and option.strip()):
            raise ValueError(f"--tune-grid expects method.option=v1,v2. Received: {part!r}")
        choices = [parse_value(v) for v in values.split(",") if v.strip()]
        if not choices:
            raise ValueError(f"--tune-grid {part!r} has no values; expected method.option=v1,v2")
        steps.append((method.strip(), option.strip(), choices))
    return steps


def scored_method(method: str) -> str:
    """The method whose validation AUC scores a step of the transfer search on `method`'s options: a `training.`
    step changes what every transfer method shares and is scored on DIIT."""
    return "diit" if method == "training" else method


def with_option(hparams: Hparams, method: str, option: str, value, where: str = None) -> Hparams:
    """`hparams` with `method.option` set to `value`, validated (errors name `where`, by default `hparams`' file)."""
    where = where or hparams.where
    data = copy.deepcopy(hparams.to_dict())
    if method == "training":  # e.g. training.mix_batch_size: shared by every transfer method
        data["training"][option] = value
        return Hparams(data, where=where)
    entry = data["methods"].setdefault(method, {})
    if method == "diit" and option not in DIIT_TRAINING_OPTIONS:
        entry.setdefault("diit_config", {})[option] = value
    else:
        entry[option] = value
    return Hparams(data, where=where)


def check_grid(hparams: Hparams, steps) -> None:
    """Every value of every transfer step gives valid settings, checked before any trial runs (a typo in the last
    step would otherwise stop the search after every trial before it). The error names the step."""
    for method, option, values in steps:
        for value in values:
            label = f"--tune-grid {method}.{option}={value}"
            try:
                with_option(hparams, method, option, value, where=label).diit_config()
            except ValueError as err:
                message = str(err)
                raise ValueError(message if message.startswith(label) else f"{label}: {message}") from None


def validation_store(store, p0: int):
    """Restrict `store` to the validation periods; returns the validation insertion period."""
    periods = [p for p in store.periods if p <= p0]
    if len(periods) < 3:
        raise ValueError(f"validation needs at least 3 periods up to the insertion period {p0}; have {periods}")
    store.periods = periods
    return periods[-3]


def tune(store, stage: str, hparams: Hparams, backbone: str, seeds, p0: int, dataset_name: str, out_dir,
         grid=None, log=print, source_cache=None) -> Hparams:
    """Run one tuning stage on the validation periods; write OUT/best_hparams.json and OUT/tuning.md.

    The candidate simulations run silently; a warning of theirs (a period with fewer target rows than one batch,
    `protocol.few_target_rows`) is logged once, when a candidate first gives it, and kept in tuning.md and
    tuning.json (`warnings`)."""
    insertion = validation_store(store, p0)
    trials = []
    warnings = []  # each candidate runs silently: its warnings (`few_target_rows`') are said here, each once

    cache = {}

    def trial(hp, methods, label):
        normal = hp.to_dict()
        normal["methods"].setdefault("diit", {})["diit_config"] = hp.diit_config().to_dict()  # explicit == default
        key = json.dumps([normal, methods], sort_keys=True, default=str)
        if key in cache:  # the coordinate search revisits the current best value of each option: recorded, not rerun
            summary, first = cache[key]
            trials.append({**first, "trial": label, "same_as": first["trial"]})
            return summary
        result = run_simulation(store, backbone=backbone, methods=methods, seeds=seeds, hparams=hp,
                                insertion_period=insertion, dataset_name=f"{dataset_name} (validation)",
                                log=lambda line: None, source_cache=source_cache)
        summary = summarize(result)
        record = {"trial": label, "methods": {m: summary[m]["auc_mean"] for m in result.methods}}
        trials.append(record)
        warning = result.notes.get("few_target_rows", {}).get("warning")
        if warning and warning not in warnings:
            warnings.append(warning)
            log(f"warning: {warning}")
        log(f"  tune {stage}: {label}: " + ", ".join(f"{m} {summary[m]['auc_mean']:.4f}" for m in result.methods))
        cache[key] = (summary, record)
        return summary

    if stage == "budget":
        grid = grid or BUDGET_GRID
        best, best_score = None, -1.0
        for lr in grid["learning_rate"]:
            for epochs in grid["epochs"]:
                hp = hparams.replace(training={"learning_rate": lr, "epochs": epochs})
                score = trial(hp, ["base"], f"learning_rate={lr} epochs={epochs}")["base"]["auc_mean"]
                if score > best_score:
                    best, best_score = hp, score
        chosen = f"learning_rate={best.data['training']['learning_rate']}, epochs={best.epochs}"
    elif stage == "transfer":
        steps = grid or TRANSFER_GRID
        check_grid(hparams, steps)
        best = hparams
        chosen_parts = []
        for method, option, values in steps:
            scores = []
            scored = scored_method(method)
            for value in values:
                hp = with_option(best, method, option, value)
                scores.append((trial(hp, [scored], f"{method}.{option}={value}")[scored]["auc_mean"], value, hp))
            score, value, hp = max(scores, key=lambda s: s[0])
            best = hp
            chosen_parts.append(f"{method}.{option}={value}")
        chosen = ", ".join(chosen_parts)
    else:
        raise ValueError(f"--tune should be 'budget' or 'transfer'. Received: {stage!r}")

    periods = store.periods
    note = (f"{stage}: chosen on validation periods {periods[-2]}..{periods[-1]} (inserted at {insertion}, test "
            f"insertion {p0}), seeds {list(seeds)}, {backbone}: {chosen}")
    previous = hparams.data.get("selected_on", "")
    selected = note if previous.startswith("defaults") or not previous else f"{previous}; {note}"
    best = best.replace(selected_on=selected, insertion_period=p0)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    best.save(out / "best_hparams.json")
    tuning = {"stage": stage, "trials": trials, "chosen": chosen, **({"warnings": warnings} if warnings else {})}
    (out / "tuning.json").write_text(json.dumps(tuning, indent=2))
    lines = [f"# Tuning ({stage}) on {dataset_name} / {backbone}", "", note, "",
             *(f"Warning: {warning}.\n" for warning in warnings), "| trial | validation AUC |", "|---|---|"]
    for t in trials:
        lines.append(f"| {t['trial']} | " + ", ".join(f"{m} {v:.4f}" for m, v in t["methods"].items()) + " |")
    (out / "tuning.md").write_text("\n".join(lines) + "\n")
    log(f"tune {stage}: {chosen}; wrote {out / 'best_hparams.json'}")
    return best
