"""The project's first question at a glance: what does each transfer method gain over the target's own base, per
benchmark, on the test periods? One figure (`docs/results/answer.png`) and one table, both computed from the
committed report directories under `docs/results/` (each written by the command `scripts/reproduce.py --list`
shows), so they regenerate from a fresh clone.

A gain is paired within one run: per seed, the method's mean AUC over the evaluated periods minus the base's in the
same run and seed; then mean ± std over seeds. A method the benchmark's test run does not have (`joint` on age7,
`kd_joint`) comes from another run on the same seeds and periods, named in the table.

    python scripts/answer.py                    # writes docs/results/answer.png and prints the table
    python scripts/answer.py --out /tmp/a.png   # elsewhere
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"
FIGURE = RESULTS / "answer.png"
METHODS = ("kd_uniform", "kd_static", "diit", "diit_paper", "kd_origin", "diit+origin", "diit+target", "joint",
           "kd_joint")
# A column that stands for a family of method names in a run: `diit+origin` is DIIT whose gate learns the rows'
# origin (`diit:gate_origin=...`, the variant each benchmark's validation chose; not every run has one) without
# the target rows' logit spot; `diit+target` the DIIT row with that spot (`target_kd=...`) a validation chose.
FAMILIES = {"diit+origin": lambda m: m.startswith("diit:gate_origin=") and "target_kd=" not in m,
            "diit+target": lambda m: m.startswith("diit") and "target_kd=" in m}
# (label, runs): each method's gain comes from the first of the runs that has it (the benchmark's test run first)
BENCHMARKS = (
    ("synthetic, 2 sources (3 seeds)", ("synthetic-dnn",)),
    ("MovieLens-1M, 2 sources (3 seeds)", ("movielens-1m-dnn", "movielens-1m-origin-test",
                                           "movielens-1m-target-kd-test")),
    ("unequal sources", ("synthetic-unequal-sources-test", "synthetic-unequal-sources-kd-joint-test",
                         "synthetic-unequal-sources-origin-test")),
    ("regional experts", ("synthetic-regional-experts-test",)),
    ("strong regional experts, 4096-row mix", ("synthetic-strong-regional-experts-mix4096-test",
                                               "synthetic-strong-regional-experts-kd-joint-test",
                                               "synthetic-strong-regional-experts-mix4096-all",
                                               "synthetic-strong-regional-experts-origin-test")),
    ("MovieLens-1M age7 (kd_joint: 4096-row mix, β 8)", ("movielens-1m-age7-test", "movielens-1m-age7-joint-test",
                           "movielens-1m-age7-kd-joint-mix4096-rechosen-test", "movielens-1m-age7-origin-test",
                           "movielens-1m-age7-target-kd-test")),
    ("MovieLens-1M age7, best-source start", ("movielens-1m-age7-student-init-test", "movielens-1m-age7-joint-test")),
    ("unequal sources, joint's tables start", ("synthetic-unequal-sources-student-init-joint-embeddings-test",
                                               "synthetic-unequal-sources-kd-joint-joint-embeddings-diagnostic")),
    ("MovieLens-1M genre experts (catalogue split between the sources)", ("movielens-1m-genre-experts-test",
                                                                          "movielens-1m-genre-experts-kd-joint-test",
                                                                          "movielens-1m-genre-experts-origin-test")),
)


def method_in(result: dict, column: str):
    """The name, in one run's results.json, of the method a table column stands for (None if the run has none)."""
    if column in FAMILIES:
        return next((m for m in result["methods"] if FAMILIES[column](m)), None)
    return column if column in result["methods"] else None


def paired_gain(result: dict, method: str) -> tuple:
    """`(mean, std, n)` over seeds of the method's AUC minus the base's, seed by seed, in one run's results.json."""
    got, base = result["methods"][method]["per_seed_auc"], result["methods"]["base"]["per_seed_auc"]
    if len(got) != len(base):
        raise ValueError(f"{result.get('dataset')}: {method} and base have {len(got)} and {len(base)} seeds")
    gains = [a - b for a, b in zip(got, base)]
    return statistics.mean(gains), (statistics.stdev(gains) if len(gains) > 1 else 0.0), len(gains)


def gains(results_dir: Path = RESULTS, benchmarks=BENCHMARKS, methods=METHODS) -> list:
    """One row per benchmark: `{"label", "runs", "gains": {method: (mean, std, n, run)}}`, each method from the
    first of the benchmark's runs that has it; a method in none of them is left out."""
    rows = []
    for label, names in benchmarks:
        runs = {name: json.loads((Path(results_dir) / name / "results.json").read_text()) for name in names}
        row = {"label": label, "runs": list(names), "gains": {}}
        for method in methods:
            name = next((n for n in names if method_in(runs[n], method)), None)
            if name:
                row["gains"][method] = (*paired_gain(runs[name], method_in(runs[name], method)), name)
        rows.append(row)
    return rows


def markdown(rows: list, methods=METHODS) -> str:
    """The table of `gains`: AUC gain over the base, mean ± std over seeds; the best per benchmark in bold."""
    lines = ["| benchmark | " + " | ".join(f"`{m}`" for m in methods) + " |", "|---|" + "---|" * len(methods)]
    for row in rows:
        best = max(row["gains"], key=lambda m: row["gains"][m][0])
        cells = []
        for m in methods:
            if m not in row["gains"]:
                cells.append("")
                continue
            mean, std, n, run = row["gains"][m]
            text = f"{mean:+.4f} ± {std:.4f}"
            text = f"**{text}**" if m == best else text
            cells.append(text + (f" ({n} seeds, `{run}`)" if run != row["runs"][0] else ""))
        lines.append(f"| {row['label']} (`{row['runs'][0]}`) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list, out: Path, methods=METHODS) -> Path:
    """A grouped bar chart of `gains` (error bars: std over seeds) written to `out` as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"kd_uniform": "tab:blue", "kd_static": "tab:green", "diit": "tab:red", "diit_paper": "tab:orange",
              "kd_origin": "tab:cyan", "diit+origin": "tab:brown", "diit+target": "tab:pink", "joint": "tab:gray",
              "kd_joint": "tab:purple"}
    fig, ax = plt.subplots(figsize=(11, 0.9 * len(rows) + 1.6))
    height = 0.8 / len(methods)
    for k, method in enumerate(methods):
        ys = [i + (k - (len(methods) - 1) / 2) * height for i in range(len(rows))]
        means = [row["gains"].get(method, (float("nan"),))[0] for row in rows]
        stds = [row["gains"].get(method, (0.0, 0.0))[1] for row in rows]
        ax.barh(ys, means, height=height, xerr=stds, color=colors.get(method), label=method, capsize=2)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [row["label"] for row in rows])
    ax.invert_yaxis()
    ax.set_xlabel("target AUC minus the base's (test periods; mean ± std over seeds, paired by seed)")
    ax.set_title("What each transfer method gains over the target's own model")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS, help="the committed report directories")
    parser.add_argument("--out", type=Path, default=FIGURE, help="where the PNG goes")
    args = parser.parse_args(argv)
    try:
        rows = gains(args.results)
    except FileNotFoundError as err:
        parser.exit(2, f"answer: a report is missing: {err.filename}; run scripts/reproduce.py --update for it\n")
    print(markdown(rows))
    print(f"[answer] wrote {plot(rows, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
