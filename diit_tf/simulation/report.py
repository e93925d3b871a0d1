"""The report of a simulation: `results.json` (the summary figures), `details.json` (everything else: per period
and seed, spreads, timings, hyperparameters, the protocol, the dataset's recipe and fingerprint), `report.md` (the
tables) and `auc_per_period.png` (mean target AUC per evaluated period per method).

The tables are made from `details.json` alone (`section_markdown`), so a results table in docs/ is regenerated
from a committed report directory (scripts/reproduce.py) and never typed by hand.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path

import numpy as np

from diit_tf.simulation.catalog import describe
from diit_tf.simulation.hparams import COPIED_BY_INIT
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


# methods whose served model is a multi-domain model (kd_joint trains one but serves the target's student)
MULTI_DOMAIN_SERVING = ("joint", "hamur", "star")


def markdown_table(methods, summary: dict) -> str:
    base_secs = summary["base"]["train_seconds_per_period"]
    lines = [
        "| method | target AUC (mean ± std over seeds) | LogLoss (mean ± std) | rel. AUC lift vs base (± std) "
        "| train s/period (x base) | serving model |",
        "|---|---|---|---|---|---|",
    ]
    for name in methods:
        s = summary[name]
        ratio = s["train_seconds_per_period"] / base_secs if base_secs else float("nan")
        serving = "target + K sources" if name == "ctnet" else (
            "multi-domain" if name in MULTI_DOMAIN_SERVING else "target only")
        lines.append(
            f"| {name} | {s['auc_mean']:.4f} ± {s['auc_std']:.4f} | {s['logloss_mean']:.4f} ± {s['logloss_std']:.4f} "
            f"| {_pct(s['rel_auc_lift_vs_base'])} ± {100 * s['rel_auc_lift_std']:.2f}% "
            f"| {s['train_seconds_per_period']:.2f} ({ratio:.2f}x) | {serving} |")
    return "\n".join(lines)


def period_table(methods, table: dict) -> str:
    """`table`: `{method: {period: mean AUC}}` (periods as int or str)."""
    periods = sorted({int(p) for t in table.values() for p in t})
    lines = ["| method | " + " | ".join(f"p{p}" for p in periods) + " |", "|---" * (len(periods) + 1) + "|"]
    for name in methods:
        by = {int(p): v for p, v in table[name].items()}
        lines.append(f"| {name} | " + " | ".join(f"{by[p]:.4f}" for p in periods) + " |")
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
                   f"combined seed spread {noise:.4f}{paired(d, s)}).")
    return out


def paired(a: dict, b: dict) -> str:
    """Method `a` against `b` seed by seed (both trained on the same data and source models within a seed, so the
    seed's luck cancels): `"; per seed ahead in k of n, diff m ± sd"`, or "" without per-seed AUCs for both."""
    x, y = a.get("per_seed_auc"), b.get("per_seed_auc")
    if not x or not y or len(x) != len(y):
        return ""
    diffs = np.asarray(x) - np.asarray(y)
    sd = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else 0.0
    return f"; per seed ahead in {int((diffs > 0).sum())} of {len(diffs)}, diff {diffs.mean():+.4f} ± {sd:.4f}"


def gate_keys(history: dict) -> list:
    """The `gate_w<k>` entries of one period's training diagnostics, in source order (k = 0, 1, ..., 10, ...)."""
    return sorted((k for k in history if k.startswith("gate_w")), key=lambda k: int(k[6:]))


def gate_summary(notes: dict) -> dict:
    """`{method: [mean weight of source k]}` from the DIIT training diagnostics (`gate_w<k>` trackers) in a
    result's `notes`."""
    out = {}
    for name, by_seed in notes.get("training_diagnostics", {}).items():
        rows = [h for by_p in by_seed.values() for h in by_p.values()]
        keys = gate_keys(rows[0]) if rows else []
        if keys:
            out[name] = [float(np.mean([h[k] for h in rows])) for k in keys]
    return out


def source_lines(sources: dict) -> list:
    """The report's section on source domains without rows in some period (`notes["sources"]`, per seed); none
    when every source had rows in every period."""
    if not any(r["left_out"] or r["empty_periods"] for r in sources.values()):
        return []
    text = ["", "## Source domains without rows", "",
            "A source without rows in a period keeps its previous model; one without a model at the insertion period "
            "is left out of every method's teachers (gate weight k is the k-th teacher listed here).", ""]
    for seed, r in sources.items():
        empty = "; ".join(f"period {p}: {', '.join(names)}" for p, names in r["empty_periods"].items()) or "none"
        line = (f"- seed {seed}: teachers {', '.join(r['teachers']) or '-'}; left out {', '.join(r['left_out']) or '-'}"
                f"; empty: {empty}")
        late = r["first_model_after_teachers_chosen"]
        if late:
            line += "; first model after the teachers were chosen (not added): " + ", ".join(
                f"{name} (period {p})" for name, p in late.items())
        text.append(line)
    return text


def spearman(a, b) -> float:
    """Spearman rank correlation of two equal-length sequences (average ranks for ties); NaN if either is
    constant."""
    ra = _ranks(np.asarray(a, np.float64))
    rb = _ranks(np.asarray(b, np.float64))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(x):
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=np.float64)
    for value in np.unique(x):  # ties share their average rank
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def gate_vs_quality(result: SimulationResult) -> dict:
    """Per gated method and seed: the mean gate weight of each source (over periods) next to each source's mean
    AUC on the target's labelled rows (over the same periods), and their Spearman correlation.

    `{method: {"sources": [...], "per_seed": {seed: {"gate": [...], "quality": [...], "spearman": r}},
    "spearman_mean": r̄}}`; methods whose gate is fixed (uniform, one source) are left out."""
    quality = result.notes.get("source_quality", {})
    out = {}
    for name, by_seed in result.notes.get("training_diagnostics", {}).items():
        per_seed = {}
        for seed, by_period in by_seed.items():
            periods = [p for p in by_period if p in quality.get(seed, {})]
            if not periods:
                continue
            keys = gate_keys(by_period[periods[0]])
            gate = [float(np.mean([by_period[p][k] for p in periods])) for k in keys]
            if len(gate) < 2 or np.allclose(gate, gate[0]):
                continue
            sources = list(quality[seed][periods[0]])
            q = [float(np.mean([quality[seed][p][s] for p in periods])) for s in sources]
            if len(q) != len(gate):  # a method that chose a subset of the sources
                continue
            per_seed[seed] = {"gate": gate, "quality": q, "spearman": spearman(gate, q)}
        if per_seed:
            out[name] = {"sources": sources, "per_seed": per_seed,
                         "spearman_mean": float(np.nanmean([v["spearman"] for v in per_seed.values()]))}
    return out


def gate_quality_table(analysis: dict) -> str:
    """Markdown: per method, each source's mean gate weight and mean AUC on the target's rows (mean over seeds),
    and Spearman per seed."""
    lines = []
    for name, entry in analysis.items():
        seeds = sorted(entry["per_seed"], key=int)
        lines += [f"`{name}`: Spearman(gate weight, source AUC on target rows) per seed "
                  + ", ".join(f"{s}: {entry['per_seed'][s]['spearman']:+.2f}" for s in seeds)
                  + f"; mean {entry['spearman_mean']:+.2f}", "",
                  "| source | mean gate weight | source AUC on target rows |", "|---|---|---|"]
        for k, source in enumerate(entry["sources"]):
            g = np.mean([entry["per_seed"][s]["gate"][k] for s in seeds])
            q = np.mean([entry["per_seed"][s]["quality"][k] for s in seeds])
            lines.append(f"| {source} | {g:.3f} | {q:.4f} |")
        lines.append("")
    return "\n".join(lines)


def gate_by_group(result: SimulationResult) -> dict:
    """`{method: {group: [mean weight of source k over seeds and evaluated periods]}}` from the protocol's
    `gate_by_group` notes (row groups such as a benchmark's regions)."""
    out = {}
    for name, by_seed in result.notes.get("gate_by_group", {}).items():
        groups = {}
        for by_period in by_seed.values():
            for by_group in by_period.values():
                for group, weights in by_group.items():
                    groups.setdefault(group, []).append(weights)
        out[name] = {g: [float(v) for v in np.mean(w, axis=0)] for g, w in sorted(groups.items())}
    return out


def routing(result: SimulationResult) -> dict:
    """The protocol's `routing` notes (`protocol.routing_ceiling`) averaged over seeds and scored periods, with the
    base's AUC on the same rows: `{"by_group": {group: {source: AUC}}, "uniform": AUC, "oracle": AUC, "base": AUC}`
    ({} when the run had no row groups)."""
    notes = result.notes.get("routing", {})
    entries = [(seed, period, entry) for seed, by_period in notes.items() for period, entry in by_period.items()]
    if not entries:
        return {}
    base = {(str(r["seed"]), str(r["period"])): r["auc"] for r in result.records if r["method"] == "base"}
    groups = sorted({g for _, _, e in entries for g in e["by_group"]})
    by_group = {g: {s: float(np.nanmean([e["by_group"][g][s] for _, _, e in entries if g in e["by_group"]]))
                    for s in next(e["by_group"][g] for _, _, e in entries if g in e["by_group"])} for g in groups}
    out = {"by_group": by_group, "uniform": float(np.nanmean([e["uniform"] for _, _, e in entries])),
           "oracle": float(np.nanmean([e["oracle"] for _, _, e in entries]))}
    scored = [base[(seed, period)] for seed, period, _ in entries if (seed, period) in base]
    if scored:
        out["base"] = float(np.mean(scored))
    return out


def routing_lines(ceiling: dict) -> list:
    """Markdown: each source's AUC on the target rows of each group, and the uniform / oracle-routed teachers'."""
    if not ceiling:
        return []
    sources = list(next(iter(ceiling["by_group"].values())))
    lines = ["| rows of | " + " | ".join(f"AUC of {s}" for s in sources) + " |", "|---|" + "---|" * len(sources)]
    lines += [f"| {g} | " + " | ".join(f"{v:.4f}" for v in by_source.values()) + " |"
              for g, by_source in ceiling["by_group"].items()]
    base = f"; the base's, on the same rows: {ceiling['base']:.4f}" if "base" in ceiling else ""
    return lines + ["", f"Teachers' AUC on all scored target rows: the sources' mean logit {ceiling['uniform']:.4f}, "
                        f"the oracle routing (each row from the source of its group) {ceiling['oracle']:.4f}{base}."]


def gate_by_group_table(split: dict, sources: list) -> str:
    lines = ["| method | rows of | " + " | ".join(f"weight on {s}" for s in sources) + " |",
             "|---|---|" + "---|" * len(sources)]
    for name, groups in split.items():
        for group, weights in groups.items():
            lines.append(f"| {name} | {group} | " + " | ".join(f"{w:.3f}" for w in weights) + " |")
    return "\n".join(lines)


def plot(result: SimulationResult, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = per_period_auc(result)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    colors = plt.get_cmap("tab20").colors
    fixed = {"base": "black", "diit": "tab:red"}
    # skip reds and greys; past 16 methods the colours repeat (the line styles and the legend still tell them apart)
    others = itertools.cycle([c for i, c in enumerate(colors) if i not in (6, 7, 14, 15)])
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


def dataset_record(data_dir) -> dict:
    """What identifies the data a run used: its directory, registered name, recipe, how it was built, and a
    SHA-256 over its span files in order (equal fingerprints: byte-identical data)."""
    from diit_tf.data.layout import list_spans, read_metadata, span_path

    metadata = read_metadata(data_dir)
    digest = hashlib.sha256()
    for n in list_spans(data_dir):
        with open(span_path(data_dir, n), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                digest.update(chunk)
    recipe = metadata.get("recipe")
    return {"dir": str(data_dir), "name": recipe.get("name") if isinstance(recipe, dict) else None,
            "recipe": recipe, "built_with": metadata.get("built_with"), "sha256": digest.hexdigest()}


def run_record(started: float) -> dict:
    """How the run went: wall-clock seconds since `started`, the machine's load average at the end (timings are
    only comparable side by side within one run), and the code version (`git describe`, when in a checkout)."""
    import os
    import subprocess
    import time

    try:
        code = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=Path(__file__).resolve().parent,
                              capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        code = None
    return {"wall_seconds": round(time.time() - started, 1),
            "load_average": [round(x, 2) for x in os.getloadavg()], "code": code}


def write_report(result: SimulationResult, out_dir, command: str = "", dataset: dict = None,
                 run: dict = None) -> dict:
    """Write results.json, details.json, report.md and auc_per_period.png under `out_dir`. Returns results.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(result)
    results = results_json(result, summary)
    with open(out / "results.json", "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    details = {
        "dataset_name": result.dataset,
        "backbone": result.backbone,
        "target_domain": result.target_domain,
        "seeds": list(result.seeds),
        "methods": list(result.methods),
        "periods_evaluated": result.periods_evaluated,
        "summary": summary,
        "per_period_auc": {m: {str(p): v for p, v in t.items()} for m, t in per_period_auc(result).items()},
        "gate_weights": gate_summary(result.notes),
        "records": result.records,
        "train_seconds": result.train_seconds,
        "insertion_period": result.insertion_period,
        "periods": result.periods,
        "hparams": result.hparams,
        "notes": result.notes,
        "gate_vs_quality": gate_vs_quality(result),
        "gate_by_group": gate_by_group(result),
        "routing": routing(result),
        "command": command,
        "dataset": dataset,
        "run": run,
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
        "Target AUC / LogLoss: per seed the mean over evaluated periods, then mean ± std over seeds. Lift: mean over "
        "seeds and periods of `AUC / AUC_base - 1`. Train s/period: wall-clock seconds of the method's own training "
        "per period from insertion on (source models are trained once per period for everyone and not counted).",
        "",
        section_markdown(details),
        "",
        "![target AUC per period](auc_per_period.png)",
        "",
        "## Methods",
        "",
    ]
    text += [f"- `{name}`: {describe(name)}" for name in result.methods]
    text += source_lines(result.notes.get("sources", {}))  # the gate analysis is in section_markdown, above
    selections = {k: v for k, v in result.notes.items()
                  if k not in ("training_diagnostics", "sources", "source_quality", "gate_by_group", "routing",
                               "few_target_rows")}
    few = result.notes.get("few_target_rows")
    if selections or few:
        text += ["", "## Notes"]
    if few:  # protocol.few_rows_warning, as the run log said it
        text += ["", f"Warning: {few['warning']}."]
    if selections:
        text += ["", "```", json.dumps(selections, indent=1, default=float), "```"]
    (out / "report.md").write_text("\n".join(text) + "\n")
    return results


def gate_analysis_lines(details: dict) -> list:
    """The report's sections on how the gate ranks the sources against their quality on the target, and on its
    weights by group of rows, from `details.json` (none for a run without a learned gate)."""
    analysis, split = details.get("gate_vs_quality") or {}, details.get("gate_by_group") or {}
    text = []
    if analysis:
        text += ["", "Gate weight vs source quality:", "",
                 "Each source's quality is its frozen model's AUC on the target's labelled rows of the period it "
                 "teaches in (training rows); both are averaged over the periods from insertion on.", "",
                 gate_quality_table(analysis)]
    if any(len(groups) > 1 for groups in split.values()):  # one group of rows: nothing to compare
        sources = next(iter(analysis.values()))["sources"] if analysis else [f"source {k}" for k in range(len(
            next(iter(next(iter(split.values())).values()))))]
        text += ["", "Gate weights by group of rows:", "",
                 "Mean gate weight of each source on the evaluated target rows of each group (mean over seeds and "
                 "evaluated periods; a diagnostic: the gate is applied, nothing is trained).", "",
                 gate_by_group_table(split, sources), ""]
    if details.get("routing"):
        text += ["", "What routing could give:", "",
                 "Each frozen source's AUC on the scored target rows of each group, and two fixed teachers: the "
                 "sources' mean logit and the oracle that routes each row to the source of its group (the ground "
                 "truth; mean over seeds and evaluated periods; a diagnostic, nothing is trained).", "",
                 *routing_lines(details["routing"]), ""]
    return text


def section_markdown(details: dict) -> str:
    """The command, the summary table, the per-period table, the verdict and the gate weights of one run, from its
    `details.json` (what report.md shows and what docs/results.md embeds)."""
    methods, summary = details["methods"], details["summary"]
    text = []
    if details.get("command"):
        text += ["    " + details["command"], ""]
    text += [markdown_table(methods, summary), "", "Target AUC per evaluated period (mean over seeds):", "",
             period_table(methods, details["per_period_auc"]), ""]
    lines = verdict(summary)
    if lines:
        text += ["Verdict:", ""] + [f"- {line}" for line in lines]
    run = details.get("run") or {}
    if run.get("wall_seconds") is not None:
        load = run.get("load_average") or [float("nan")]
        text += ["", f"Wall time {run['wall_seconds'] / 60:.1f} min at load average {load[0]:.1f} (2 cores): train "
                     f"s/period is comparable only between methods of the same run."]
    starts = (details.get("notes") or {}).get("student_init") or {}
    init = next(iter(next(iter(starts.values())).values())).get("init", "best_source") if starts else None
    if init == "joint_embeddings":
        text += ["", "Every transfer method started at the insertion period from the base's weights with the "
                     "embedding tables of a joint model trained on every domain's rows through that period "
                     "(`training.student_init=joint_embeddings`; its training, not in any method's time: " + "; ".join(
                         f"seed {seed}: {note['seconds']:.1f}s" for seed, by_period in starts.items()
                         for note in by_period.values()) + ")."]
    elif starts:  # training.student_init = "best_source" or "best_source_embeddings"
        text += ["", f"Every transfer method started at the insertion period from the best source's "
                     f"{COPIED_BY_INIT[init]} "
                     f"(`training.student_init={init}`; AUC on the target's rows of that period): " + "; ".join(
                         f"seed {seed}: {note['from']} ({note['auc_on_target_rows'][note['from']]:.4f})"
                         for seed, by_period in starts.items() for note in by_period.values()) + "."]
    gates = details.get("gate_weights") or {}
    if gates:
        text += ["", "Gate weights (mean over seeds and periods, sources in the dataset's order): " + "; ".join(
            f"`{name}`: " + ", ".join(f"{w:.3f}" for w in weights) for name, weights in gates.items())]
    text += gate_analysis_lines(details)
    return "\n".join(text)
