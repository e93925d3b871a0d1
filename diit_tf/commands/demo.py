"""`diit demo`: the main job. Takes a named dataset (or a dataset directory), then runs the TFX pipeline once per
period as a daily job would (each period's span folder lands, one LocalDagRunner run processes it).

Beside the student it trains the target's single-domain base (the source trainer pointed at the target domain,
same spans, same settings), so it shows what DIIT buys: per period, student vs base on the period's eval split,
and out of time (the models trained through period p scored on every target row of period p+1, when it lands).
Every trainer takes its budget, towers and DIIT options from the hyperparameter preset validated on the dataset
(or `--hparams`), as `diit simulate` does.

Everything goes under `--out` (default `runs/demo/`): `landing/` (the spans that have "arrived", the pipeline's
input), `pipeline_root/`, `metadata.sqlite`, `serving/diit/<version>/`, `pipeline_config.json` (the resolved
settings: `diit pipeline run --config` replays them), `pipeline.log`, `summary.json` and `auc_per_period.png`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path

from diit_tf.commands._argtypes import add_dataset_arguments, hparams_flag

REPO_ROOT = Path(__file__).resolve().parents[2]
MARKER = ".diit-demo"
# Periods run by default: the first 4 of the synthetic data fit the 10-minute budget on 2 cores (a pipeline run
# costs about a minute of fixed overhead); other datasets run all their periods.
DEFAULT_PERIODS = {"synthetic": 4}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the DIIT TFX pipeline once per period on a dataset: student vs base, blessing, pushes",
        description="The main job: land the dataset's span-1..span-N one at a time and run the TFX pipeline "
        "(ExampleGen, validation, Transform, one trainer per source domain, the target's base, the DIIT trainer "
        "of the student, TFMA Evaluator, Pusher) once per period with LocalDagRunner. Prints per period the "
        "student's and the base's target AUC on the period's eval split and out of time (on the next period), "
        "whether the student was blessed and pushed, and the served version. Everything is written under --out "
        "(pipeline root, SQLite ML Metadata, serving/diit/<version>/, a PNG of student vs base per period).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_dataset_arguments(parser, default="synthetic")
    parser.add_argument("--out", default="runs/demo", help="output directory (relative paths: from the repo root); "
                        "a previous demo there is replaced")
    parser.add_argument("--periods", type=int, default=None,
                        help=f"number of periods to run, from the first (default: {DEFAULT_PERIODS} for those "
                        "datasets, else all)")
    parser.add_argument("--hparams", default=None, metavar="NAME|JSON",
                        help="hyperparameter preset or file (from the current directory) of every trainer (budget, towers, "
                        "DIIT options); "
                        "default: the preset validated on the dataset, else the built-in defaults")
    parser.add_argument("--epochs", type=int, default=None, help="override the epochs per period of every trainer")
    parser.add_argument("--mix-batch-size", type=int, default=None,
                        help="override the student's mix rows per step (default: the hyperparameters')")
    parser.add_argument("--joint-teacher", action="store_true",
                        help="one joint multi-domain model instead of the source trainers, distilled into the "
                        "student (`joint_teacher.enabled`; docs/pipeline.md, \"The joint teacher\")")
    parser.add_argument("--kd-origin", action="store_true",
                        help="the student distils each mix row from the source it came from, by logit KD with "
                        "kd_origin's beta from the hparams (`kd_origin.enabled`; docs/pipeline.md, \"Routing by "
                        "origin\")")
    parser.add_argument("--target-auc-floor", type=float, default=0.55,
                        help="the Evaluator blesses a student only if its target-domain AUC reaches this")
    parser.add_argument("--results", default=None, metavar="JSON",
                        help="also write the per-period results to this file (e.g. docs/results/demo.json)")
    parser.set_defaults(func=run)


@dataclasses.dataclass
class Demo:
    """One demo run: where things go, the data, the settings."""

    out: Path
    data_dir: Path
    spans: list
    spec: object
    config: object
    dataset: str

    @property
    def landing(self) -> Path:
        return self.out / "landing"


# -------------------------------------------------------------------------------------------------------- setup
def _out_dir(path: str) -> Path:
    p = Path(os.path.expanduser(path))
    return p if p.is_absolute() else REPO_ROOT / p


def _refuse_foreign(out: Path) -> None:
    if out.exists() and not (out / MARKER).exists() and any(out.iterdir()):
        raise ValueError(f"--out {str(out)!r} exists and is not a demo directory (no {MARKER}); refusing to "
                         "replace it")


def _prepare(out: Path) -> None:
    _refuse_foreign(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by `diit demo`; replaced by the next demo\n")


def _start(args) -> Demo:
    """Check the arguments, resolve the dataset, prepare --out, and write the resolved pipeline config."""
    from diit_tf.data import list_spans, load_spec
    from diit_tf.data.layout import progress
    from diit_tf.data.registry import dataset_name, resolve_dataset
    from pipeline import configs

    if args.periods is not None and args.periods < 1:
        raise ValueError(f"--periods should be >= 1. Received: {args.periods}")
    if args.epochs is not None and args.epochs < 1:
        raise ValueError(f"--epochs should be >= 1. Received: {args.epochs}")
    mix = args.mix_batch_size
    if mix is not None and mix < 1:
        raise ValueError(f"--mix-batch-size should be >= 1. Received: {mix}")
    hparams = None if args.hparams is None else hparams_flag(args.hparams)  # from the current directory
    out = _out_dir(args.out)
    _refuse_foreign(out)
    data_dir = resolve_dataset(args.dataset, args.data_root, log=progress).resolve()
    name = dataset_name(data_dir) or data_dir.name
    spans = list_spans(data_dir)[: args.periods or DEFAULT_PERIODS.get(name)]
    budget = {"epochs": args.epochs} if args.epochs else {}
    # the flag behind each setting a flag sets, so an error names it (as `diit pipeline` does) rather than the demo
    origins = {"evaluator.target_auc_floor": "--target-auc-floor",
               **({"hparams": "--hparams"} if hparams else {}),
               **({"source.epochs": "--epochs", "student.epochs": "--epochs"} if budget else {}),
               **({"student.mix_batch_size": "--mix-batch-size"} if mix else {}),
               **({"joint_teacher.enabled": "--joint-teacher"} if args.joint_teacher else {}),
               **({"kd_origin.enabled": "--kd-origin"} if args.kd_origin else {})}
    config = configs.PipelineConfig({
        "pipeline_name": "diit-demo",
        "data_dir": str(out / "landing"),
        "pipeline_root": str(out / "pipeline_root"),
        "metadata_path": str(out / "metadata.sqlite"),
        "serving_dir": str(out / "serving"),
        "hparams": hparams,
        "source": budget,
        "student": {**budget, **({"mix_batch_size": mix} if mix else {})},
        "joint_teacher": {"enabled": args.joint_teacher},
        "kd_origin": {"enabled": args.kd_origin},
        "base_trainer": {"enabled": True},
        "evaluator": {"target_auc_floor": args.target_auc_floor},
    }, source="the demo's settings", origins=origins).resolved(data_dir)
    # every setting is checked (above) before the previous demo at --out is replaced: a typo loses nothing
    _prepare(out)
    config.save(out / "pipeline_config.json")
    return Demo(out=out, data_dir=data_dir, spans=spans, spec=load_spec(data_dir), config=config, dataset=name)


def _describe(demo: Demo) -> str:
    source, student = demo.config["source"], demo.config["student"]
    towers = source["backbone_options"]
    return (f"hyperparameters: {demo.config.resolved_from}: {source['epochs']} epoch(s)/period, batch "
            f"{source['batch_size']}, learning rate {source['learning_rate']} (student {student['learning_rate']}), "
            f"{source['backbone']} {towers.get('hidden_units')} with {towers.get('embedding_dim')}-dim embeddings, "
            f"mix batch {student['mix_batch_size']}, DIIT {student['diit'] or 'defaults'}"
            + (f"; joint teacher (beta {demo.config['joint_teacher']['beta']}) instead of the source trainers"
               if demo.config["joint_teacher"]["enabled"] else "")
            + (f"; kd_origin (beta {demo.config['kd_origin']['beta']}): each mix row distilled from its own source"
               if demo.config["kd_origin"]["enabled"] else ""))


def _land(data_dir: Path, landing: Path, span: int) -> None:
    """A new period arrives: its span folder appears (atomically) in the pipeline's input directory."""
    landing.mkdir(exist_ok=True)
    if not (landing / "metadata.json").exists():
        shutil.copy2(data_dir / "metadata.json", landing / "metadata.json")
    tmp = landing / f".span-{span}.tmp"
    shutil.copytree(data_dir / f"span-{span}", tmp)
    os.replace(tmp, landing / f"span-{span}")


def _log_to_file(path: Path) -> Path:
    """Send TFX / Beam / absl logging to `path`, keeping the terminal for the demo's own lines."""
    import logging

    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in ("tensorflow", "absl", "apache_beam"):  # loggers with handlers of their own
        logger = logging.getLogger(name)
        for h in list(logger.handlers):
            logger.removeHandler(h)
        logger.propagate = True
    return path


# ------------------------------------------------------------------------------------------------- one period
def _run_period(demo: Demo, span: int) -> dict:
    """Run the pipeline on the span that just landed; return the period's row (student and base on the eval
    split, the Evaluator's verdict, the push)."""
    from pipeline import diit, results

    target = demo.spec.target
    print(f"[demo] period {span}: span-{span} landed; running the pipeline ...", flush=True)
    t0 = time.time()
    error = None
    try:
        diit.run(demo.config)
    except Exception as err:  # a failed run is reported, the next period still runs (as a daily job would)
        error = f"{type(err).__name__}: {err}"
    seconds = time.time() - t0
    summary = results.run_summary(str(demo.out / "metadata.sqlite"), since_ms=int(t0 * 1000))
    evaluation = summary["evaluation"] or {}
    candidate, baseline = evaluation.get("candidate", {}), evaluation.get("baseline", {})
    row = {
        "period": span,
        "student_eval": ((summary["student_eval"] or {}).get(target) or {}).get("auc"),
        "base_eval": (summary["base_eval"] or {}).get("auc"),
        "student_next": None,
        "base_next": None,
        "evaluator_auc": {d: candidate.get(f"{demo.spec.domain}={d}", {}).get("auc") for d in demo.spec.domains},
        "served_target_auc": baseline.get(f"{demo.spec.domain}={target}", {}).get("auc"),
        "blessed": summary["blessed"],
        "pushed": summary["pushed"],
        "version": summary["pushed_version"] if summary["pushed"] else None,
        "student_uri": summary["student_uri"],
        "base_uri": summary["base_uri"],
        "seconds": round(seconds, 1),
        "error": error,
    }
    if error:
        print(f"[demo] period {span}: the run FAILED after {seconds:.0f} s: {error}", flush=True)
    print(f"[demo] period {span}: eval split: student {_fmt(row['student_eval'])}, base {_fmt(row['base_eval'])}; "
          f"blessed {row['blessed']}, pushed {row['pushed']}, version {row['version'] or '-'} ({seconds:.0f} s)",
          flush=True)
    return row


def _score_out_of_time(demo: Demo, row: dict, span: int) -> None:
    """Score the student and the base trained through `row`'s period on every target row of `span`, the next
    period (never trained on)."""
    from pipeline.results import score_on_span

    for who in ("student", "base"):
        if row.get(f"{who}_uri"):
            row[f"{who}_next"] = score_on_span(row[f"{who}_uri"], str(demo.data_dir), span, demo.spec.target)["auc"]
    print(f"[demo] period {row['period']}'s models on period {span} (out of time): student "
          f"{_fmt(row['student_next'])}, base {_fmt(row['base_next'])}", flush=True)


# ----------------------------------------------------------------------------------------------------- report
def _fmt(value, digits=4):
    return "  -   " if value is None else f"{value:.{digits}f}"


def _diff(a, b):
    return "   -   " if a is None or b is None else f"{a - b:+.4f}"


def comparison(rows: list) -> dict:
    """Student vs base: in how many periods the student is ahead, and the mean AUC difference, per view."""
    out = {}
    for view in ("eval", "next"):
        pairs = [(r[f"student_{view}"], r[f"base_{view}"]) for r in rows
                 if r[f"student_{view}"] is not None and r[f"base_{view}"] is not None]
        out[view] = {"periods": len(pairs), "student_ahead": sum(s > b for s, b in pairs),
                     "mean_difference": (sum(s - b for s, b in pairs) / len(pairs)) if pairs else None}
    return out


def _print_table(demo: Demo, rows: list) -> None:
    print(f"\n{'':6} {'eval split of the period':^26} {'next period (out of time)':^26}")
    print(f"{'period':>6} {'student':>8} {'base':>8} {'diff':>8} {'student':>8} {'base':>8} {'diff':>8} "
          f"{'served*':>8} {'blessed':>7} {'pushed':>6} {'version':>11} {'seconds':>7}")
    for r in rows:
        print(f"{r['period']:>6} {_fmt(r['student_eval']):>8} {_fmt(r['base_eval']):>8} "
              f"{_diff(r['student_eval'], r['base_eval']):>8} {_fmt(r['student_next']):>8} {_fmt(r['base_next']):>8} "
              f"{_diff(r['student_next'], r['base_next']):>8} {_fmt(r['served_target_auc']):>8} "
              f"{str(r['blessed']):>7} {str(r['pushed']):>6} {str(r['version'] or '-'):>11} {r['seconds']:>7.0f}",
              flush=True)
    print(f"Target AUC ({demo.spec.target!r}) of the {student_label(demo.config)} and of the target's own base, "
          "trained through the period: on the period's eval split (rows no trainer fitted on), and on every target "
          "row of the next period (out of time). * served: the Evaluator's baseline, the last blessed student, on "
          "this period's eval split.")
    for view, words in (("eval", "on the eval split"), ("next", "out of time")):
        c = comparison(rows)[view]
        if c["periods"]:
            print(f"[demo] {words}: the student beats the base in {c['student_ahead']} of {c['periods']} period(s), "
                  f"mean difference {c['mean_difference']:+.4f} AUC")


def student_label(config) -> str:
    """What the student learns from, for the table and the plot: DIIT's sources, the joint teacher, or the sources
    routed by origin (`kd_origin`)."""
    if config["joint_teacher"]["enabled"]:
        return "student (joint teacher)"
    return "student (kd_origin)" if config["kd_origin"]["enabled"] else "student (DIIT)"


def _plot(rows: list, target: str, path: Path, student: str = "student (DIIT)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nan = float("nan")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    views = (("eval", "eval split of the period trained on", 0), ("next", "next period (out of time)", 1))
    for ax, (view, title, shift) in zip(axes, views):
        periods = [r["period"] + shift for r in rows]
        for who, color in (("student", "tab:red"), ("base", "black")):
            values = [r[f"{who}_{view}"] if r[f"{who}_{view}"] is not None else nan for r in rows]
            ax.plot(periods, values, marker="o", color=color, linewidth=2,
                    label=student if who == "student" else "base (target only)")
        ax.set_title(title)
        ax.set_xlabel("evaluated period" if shift else "period (span)")
        ax.set_xticks(periods)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"target AUC ({target})")
    axes[0].legend(fontsize=8)
    fig.suptitle("DIIT pipeline: student vs the target's base, per period")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _report(demo: Demo, rows: list, started: float, results_file=None) -> None:
    png = demo.out / "auc_per_period.png"
    _plot(rows, demo.spec.target, png, student_label(demo.config))
    serving = demo.out / "serving" / "diit"
    served = sorted(p.name for p in serving.iterdir()) if serving.exists() else []
    hparams = demo.config.resolved_from.replace(f"{REPO_ROOT}{os.sep}", "")  # no machine path in a results file
    summary = {"dataset": demo.dataset, "hparams": hparams,
               "settings": {"source": demo.config["source"], "student": demo.config["student"],
                            "joint_teacher": demo.config["joint_teacher"], "kd_origin": demo.config["kd_origin"]},
               "periods": [{k: v for k, v in r.items() if not k.endswith("_uri")} for r in rows],
               "comparison": comparison(rows), "served_versions": served,
               "wall_seconds": round(time.time() - started, 1),
               "load_average": [round(x, 2) for x in os.getloadavg()]}
    (demo.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if results_file:
        Path(results_file).parent.mkdir(parents=True, exist_ok=True)
        Path(results_file).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"[demo] served versions under {serving}: {served or 'none'}")
    print(f"[demo] TFX logs {demo.out / 'pipeline.log'}")
    print(f"[demo] plot {png}; summary {demo.out / 'summary.json'}; wall time {time.time() - started:.0f} s")


def run(args) -> int:
    if args.periods is not None and args.periods < 1:
        raise ValueError(f"--periods should be >= 1. Received: {args.periods}")
    started = time.time()
    demo = _start(args)
    print(f"[demo] {len(demo.spans)} period(s) of {demo.dataset} ({demo.data_dir}); domains "
          f"{list(demo.spec.domains)}, target {demo.spec.target!r}; config {demo.out / 'pipeline_config.json'}",
          flush=True)
    print(f"[demo] {_describe(demo)}", flush=True)
    _log_to_file(demo.out / "pipeline.log")
    rows = []
    for span in demo.spans:
        _land(demo.data_dir, demo.landing, span)
        if rows:
            _score_out_of_time(demo, rows[-1], span)
        rows.append(_run_period(demo, span))
    following = demo.spans[-1] + 1
    if (demo.data_dir / f"span-{following}").is_dir():  # the data has the period after the last one run
        _score_out_of_time(demo, rows[-1], following)
    _print_table(demo, rows)
    _report(demo, rows, started, args.results)
    failed = [r["period"] for r in rows if r["error"]]
    if failed:
        print(f"[demo] period(s) {failed} failed", file=sys.stderr)
        return 1
    return 0
