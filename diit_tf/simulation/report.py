"""The report of a simulation: `results.json` (a fixed shape: dataset, backbone, target domain, seeds, periods
evaluated and per method the `RESULT_KEYS`), `details.json` (everything else: per
period and seed, spreads, timings, hyperparameters, the protocol), `report.md` (the table) and `auc_per_period.png`
(mean target AUC per evaluated period per method)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from diit_tf.simulation.catalog import DESCRIPTIONS, EXPERIMENTAL
from diit_tf.simulation.protocol import SimulationResult, summarize

RESULT_KEYS = ("auc_mean", "auc_std", "logloss_mean", "rel_auc_lift_vs_base", "per_seed_auc",
               "train_seconds_per_period")


def results_json(result: SimulationResult, summary: dict = None) -> dict:
    summary = summary or summarize(result)
    return {
        "dataset": result.dataset,
        "backbone": result.backbone,
        "target_domain": result.target_domain,
        "seeds": list(result.seeds),
        "periods_evaluated": result.periods_evaluated,
        "methods": {name: {key: summary[name][key] for key in RESULT_KEYS} for name in result.methods},
    }


def per_period_auc(result: SimulationResult) -> dict:
    """`{method: {period: mean AUC over seeds}}`."""
    table = {}
    for r in result.records:
        table.setdefault(r["method"], {}).setdefault(r["period"], []).append(r["auc"])
    return {m: {p: float(np.mean(v)) for p, v in sorted(ps.items())} for m, ps in table.items()}


def _pct(x):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:+.2f}%"


def markdown_table(result: SimulationResult, summary: dict) -> str:
    base_secs = summary["base"]["train_seconds_per_period"]
    lines = [
        "| method | target AUC (mean ± std over seeds) | LogLoss (mean ± std) | rel. AUC lift vs base (± std) "
        "| train s/period (x base) | serving model |",
        "|---|---|---|---|---|---|",
    ]
    for name in result.methods:
        s = summary[name]
        ratio = s["train_seconds_per_period"] / base_secs if base_secs else float("nan")
        serving = "target + K sources" if name == "ctnet" else ("multi-domain" if name == "joint" else "target only")
        lines.append(
            f"| {name} | {s['auc_mean']:.4f} ± {s['auc_std']:.4f} | {s['logloss_mean']:.4f} ± {s['logloss_std']:.4f} "
            f"| {_pct(s['rel_auc_lift_vs_base'])} ± {100 * s['rel_auc_lift_std']:.2f}% "
            f"| {s['train_seconds_per_period']:.2f} ({ratio:.2f}x) | {serving} |")
    return "\n".join(lines)


def period_table(result: SimulationResult) -> str:
    table = per_period_auc(result)
    periods = result.periods_evaluated
    lines = ["| method | " + " | ".join(f"p{p}" for p in periods) + " |", "|---" * (len(periods) + 1) + "|"]
    for name in result.methods:
        lines.append(f"| {name} | " + " | ".join(f"{table[name][p]:.4f}" for p in periods) + " |")
    return "\n".join(lines)


def verdict(summary: dict) -> list:
    """Plain statements: where DIIT does or does not beat each other method on mean target AUC."""
    if "diit" not in summary:
        return []
    d = summary["diit"]
    out = []
    lift, spread = d["rel_auc_lift_vs_base"], d["rel_auc_lift_std"]
    out.append(f"DIIT's lift over base is {_pct(lift)} (spread over seeds {100 * spread:.2f}%): "
               + ("larger than its spread." if lift > spread else "NOT larger than its spread over seeds."))
    for name, s in summary.items():
        if name in ("diit", "base"):
            continue
        gap = d["auc_mean"] - s["auc_mean"]
        noise = math.hypot(d["auc_std"], s["auc_std"])
        if gap > noise:
            word = "beats"
        elif gap > 0:
            word = "is ahead of, but within the seed spread of,"
        elif gap > -noise:
            word = "is behind, within the seed spread of,"
        else:
            word = "does NOT beat"
        out.append(f"DIIT {word} {name}: {d['auc_mean']:.4f} vs {s['auc_mean']:.4f} (diff {gap:+.4f}, "
                   f"combined seed spread {noise:.4f}).")
    return out


def gate_summary(result: SimulationResult) -> dict:
    """`{method: [mean weight of source k]}` from the DIIT training diagnostics (`gate_w<k>` trackers)."""
    out = {}
    for name, by_seed in result.notes.get("training_diagnostics", {}).items():
        rows = [h for by_p in by_seed.values() for h in by_p.values()]
        keys = sorted((k for k in rows[0] if k.startswith("gate_w")), key=lambda k: int(k[6:])) if rows else []
        if keys:
            out[name] = [float(np.mean([h[k] for h in rows])) for k in keys]
    return out


def plot(result: SimulationResult, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = per_period_auc(result)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    colors = plt.get_cmap("tab20").colors
    fixed = {"base": "black", "diit": "tab:red"}
    others = iter(c for i, c in enumerate(colors) if i not in (6, 7, 14, 15))  # skip reds and greys
    for name in result.methods:
        periods = sorted(table[name])
        style = "-" if not name.startswith("diit_") else "--"
        width = 2.6 if name in fixed else 1.3
        ax.plot(periods, [table[name][p] for p in periods], style, marker="o", lw=width, ms=3, label=name,
                color=fixed.get(name) or next(others), zorder=3 if name in fixed else 2)
    ax.set_xlabel("evaluated period (model trained through the previous period)")
    ax.set_ylabel(f"target AUC ({result.target_domain}), mean over {len(result.seeds)} seed(s)")
    ax.set_title(f"{result.dataset} / {result.backbone}: target AUC per period (insertion at {result.insertion_period})")
    ax.set_xticks(result.periods_evaluated)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(result: SimulationResult, out_dir, command: str = "") -> dict:
    """Write results.json, details.json, report.md and auc_per_period.png under `out_dir`. Returns results.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(result)
    results = results_json(result, summary)
    with open(out / "results.json", "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    details = {
        "summary": summary,
        "per_period_auc": {m: {str(p): v for p, v in t.items()} for m, t in per_period_auc(result).items()},
        "records": result.records,
        "train_seconds": result.train_seconds,
        "insertion_period": result.insertion_period,
        "periods": result.periods,
        "hparams": result.hparams,
        "notes": result.notes,
        "command": command,
    }
    with open(out / "details.json", "w") as f:
        json.dump(details, f, indent=2, default=float)
        f.write("\n")
    plot(result, out / "auc_per_period.png")
    text = [
        f"# Simulation report: {result.dataset} / {result.backbone}",
        "",
        f"Target domain `{result.target_domain}`; seeds {result.seeds}; periods {result.periods[0]}..{result.periods[-1]}; "
        f"DIIT (and every transfer method) inserted at period {result.insertion_period}; evaluated on periods "
        f"{result.periods_evaluated} (each model trained through the previous period, never on the one it is scored on). "
        f"Epochs per period: {result.hparams['training']['epochs']}, batch {result.hparams['training']['batch_size']}. "
        f"Hyperparameters: {result.hparams.get('selected_on', '')}",
        "",
    ]
    if command:
        text += ["Command:", "", f"    {command}", ""]
    text += [
        "Target AUC / LogLoss: per seed the mean over evaluated periods, then mean ± std over seeds. Lift: mean over "
        "seeds and periods of `AUC / AUC_base - 1`. Train s/period: wall-clock seconds of the method's own training "
        "per period from insertion on (source models are trained once per period for everyone and not counted).",
        "",
        markdown_table(result, summary),
        "",
        "## Target AUC per evaluated period (mean over seeds)",
        "",
        period_table(result),
        "",
        "![target AUC per period](auc_per_period.png)",
        "",
        "## Verdict",
        "",
    ]
    text += [f"- {line}" for line in verdict(summary)]
    text += ["", "## Methods", ""]
    text += [f"- `{name}`: {({**DESCRIPTIONS, **EXPERIMENTAL})[name]}" for name in result.methods]
    gates = gate_summary(result)
    if gates:
        text += ["", "## Gate weights (mean over seeds and periods of each period's mean gate weight)", ""]
        text += [f"- `{name}`: " + ", ".join(f"{w:.3f}" for w in weights) for name, weights in gates.items()]
    selections = {k: v for k, v in result.notes.items() if k != "training_diagnostics"}
    if selections:
        text += ["", "## Notes", "", "```", json.dumps(selections, indent=1, default=float), "```"]
    (out / "report.md").write_text("\n".join(text) + "\n")
    return results
