#!/usr/bin/env python
"""Scale benchmark of the pipeline's trainers and of the whole pipeline, on synthetic spans of growing size.

For each span size (rows of all domains; the default generator proportions: target 10%, sources 50% / 40%):
1. `diit data synthetic` builds one span (`--periods 1`), and its rows go through `FeatureSpec.transform` (the
   function the pipeline's Transform runs) into gzipped TFRecords: a train split (3 of 4 rows, by row index) and an
   eval split, 8 + 2 files, as Transform's `transformed_examples` would hold them.
2. Each trainer runs in its own process (so its peak RSS, `VmHWM`, is its own), with the pipeline's default
   model settings (pipeline/configs.py): the source trainer of `source_a` and the DIIT trainer (two frozen
   teachers), each on the streaming path (`diit_tf/data/streaming.py`, what the pipeline runs) and, at the
   `--compare-rows` size, on the former in-memory path (the whole split read into numpy arrays, then
   `from_tensor_slices`), alternating stream / memory `--repeats` times. Examples/s counts the rows the trainer's
   `fit` consumed (a source trainer: its domain's rows; DIIT: target plus mix rows) over the seconds of `fit`.
3. `--pipeline-rows`: one full pipeline run (`python pipeline/diit.py`, every component in one process, Beam on
   one local worker) on that span, with the wall time of each component from ML Metadata and the peak RSS.

    nice -n 10 python scripts/bench_scale.py --nice 0                         # 0.25M, 1M, 4M rows + pipeline at 1M
    python scripts/bench_scale.py --rows 250000 --pipeline-rows 0 --repeats 1 # quick
Prints `uptime` before and after (the machine is shared; only ratios measured side by side mean much) and writes
every number to `<out>/results.json`.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

SOURCE = "source_a"


# ------------------------------------------------------------------------------------------------------- data
BUFFER_PATH = "stream-sb"  # a trainer's path streamed with another shuffle_buffer: "stream-sb10000"


def build_span(out_dir: str, rows: int) -> dict:
    """One synthetic span of about `rows` rows, as transformed TFRecords. Returns what the trainers need."""
    import numpy as np

    from diit_tf.data import load_period, load_spec
    from diit_tf.data.streaming import write_examples
    from diit_tf.data.synthetic import SyntheticConfig, build_synthetic

    data_dir = os.path.join(out_dir, f"data-{rows}")
    config = SyntheticConfig(periods=1, rows_target=rows // 10, rows_source=(rows // 2, rows * 2 // 5))
    build_synthetic(data_dir, config, overwrite=True, log=lambda line: None)
    spec = load_spec(data_dir)
    period = load_period(data_dir, 1, spec)
    columns = {**period.features, spec.label: period.labels, spec.domain: period.domains.astype(bytes)}
    evaluation = np.arange(len(period)) % 4 == 3
    examples = os.path.join(out_dir, f"examples-{rows}")
    splits = {}
    for name, mask, shards in (("train", ~evaluation, 8), ("eval", evaluation, 2)):
        write_examples(os.path.join(examples, f"Split-{name}"), {k: v[mask] for k, v in columns.items()}, shards,
                       prefix="transformed_examples")
        splits[name] = {d: int(((period.domains == d) & mask).sum()) for d in spec.domains}
    return {"rows": int(len(period)), "data_dir": data_dir, "examples": examples, "spec": spec.to_dict(),
            "split_rows": splits}


def columns_of(spec) -> dict:
    """The transformed feature spec Transform's output has for `spec` (what the trainers parse)."""
    import tensorflow as tf

    out = {n: tf.io.FixedLenFeature([], tf.int64) for n in spec.categorical}
    out.update({n: tf.io.FixedLenFeature([], tf.float32) for n in spec.numeric})
    out[spec.label] = tf.io.FixedLenFeature([], tf.float32)
    out[spec.domain] = tf.io.FixedLenFeature([], tf.string)
    return out


def model_config(kind: str) -> dict:
    """The settings the pipeline's trainers get on a dataset without a validated preset (the bench's spans): the
    config defaults resolved with the built-in hyperparameters (`PipelineConfig.resolved`)."""
    from pipeline.configs import PipelineConfig

    block = dict(PipelineConfig({}).resolved(None).values["source" if kind == "source" else "student"])
    return {k: v for k, v in block.items() if v is not None}


# ------------------------------------------------------------------------------------------- one measurement
def load_in_memory(files, columns) -> dict:
    """The former in-memory path: every row of the split as numpy arrays by column."""
    import numpy as np
    import tensorflow as tf

    ds = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(8192)
    ds = ds.map(lambda x: tf.io.parse_example(x, columns), num_parallel_calls=tf.data.AUTOTUNE)
    parts = {name: [] for name in columns}
    for batch in ds:
        for name, value in batch.items():
            parts[name].append(value.numpy())
    return {name: np.concatenate(p) for name, p in parts.items()}


def child(job: dict) -> dict:
    """Run one trainer as the pipeline would and report its throughput and peak RSS."""
    import glob

    from components import training
    from diit_tf.data import streaming
    from diit_tf.features import FeatureSpec

    spec = FeatureSpec.from_dict(job["spec"])
    columns = columns_of(spec)
    train_files = sorted(glob.glob(os.path.join(job["examples"], "Split-train", "*")))
    data = streaming.TrainerInput(train_files, [], columns)
    rows = job["split_rows"]["train"]
    out = {"kind": job["kind"], "path": job["path"], "rows": job["rows"]}
    streamed = job["path"] == "stream" or job["path"].startswith(BUFFER_PATH)
    buffer = {"shuffle_buffer": int(job["path"][len(BUFFER_PATH):])} if job["path"].startswith(BUFFER_PATH) else {}
    if job["kind"] == "source":
        config = {**model_config("source"), **buffer}
        if streamed:
            from components.source_trainer import train_source

            backbone, info = train_source(spec, SOURCE, data, config)
            seconds = info["train_seconds"]
            if job.get("save"):
                training.save_backbone(backbone, job["save"], info)
        else:
            import keras
            import tensorflow as tf

            from diit_tf.backbones import build_backbone
            from diit_tf.ctr import PeriodTrainer

            start = time.time()
            table = load_in_memory(train_files, columns)
            out["load_seconds"] = round(time.time() - start, 2)
            mask = table[spec.domain].astype(str) == SOURCE
            n = int(mask.sum())
            ds = tf.data.Dataset.from_tensor_slices(({k: table[k][mask] for k in spec.feature_names},
                                                     table[spec.label][mask].reshape(-1, 1)))
            ds = ds.shuffle(min(n, 100_000), seed=0).batch(config["batch_size"])
            keras.utils.set_random_seed(0)
            trainer = PeriodTrainer(build_backbone(config["backbone"], spec, name="source",
                                                   **config["backbone_options"]), config["learning_rate"])
            start = time.time()
            trainer.fit(ds, epochs=config["epochs"])
            seconds = time.time() - start
        examples = rows[SOURCE] * model_config("source")["epochs"]
    else:
        config = {**model_config("student"), **buffer}
        config["diit"] = {}
        teachers = {d: job["teacher"] for d in spec.sources}
        batch = config["batch_size"]
        mix_batch = config.get("mix_batch_size") or batch
        if streamed:
            from components.diit_trainer import train_student

            _, info = train_student(spec, teachers, data, config)
            seconds, steps = info["train_seconds"], info["train_steps"]
        else:
            import keras

            from diit_tf.backbones import build_backbone
            from diit_tf.config import DIITConfig
            from diit_tf.model import DIITModel, make_diit_dataset

            start = time.time()
            table = load_in_memory(train_files, columns)
            out["load_seconds"] = round(time.time() - start, 2)
            target = table[spec.domain].astype(str) == spec.target
            ds = make_diit_dataset({k: table[k][target] for k in spec.feature_names}, table[spec.label][target],
                                   {k: table[k] for k in spec.feature_names}, batch_size=batch,
                                   mix_batch_size=mix_batch, seed=0)
            keras.utils.set_random_seed(0)
            model = DIITModel([training.load_backbone(job["teacher"]) for _ in spec.sources],
                              build_backbone(config["backbone"], spec, name="student", **config["backbone_options"]),
                              DIITConfig())
            model.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]),
                          discriminator_optimizer=keras.optimizers.Adam(config["discriminator_learning_rate"]))
            start = time.time()
            model.fit(ds, epochs=config["epochs"], verbose=0)
            seconds = time.time() - start
            steps = -(-rows[spec.target] // batch) * config["epochs"]
        examples = rows[spec.target] * config["epochs"] + steps * mix_batch
        out["steps"] = steps
    out.update({"examples": int(examples), "train_seconds": round(seconds, 2),
                "examples_per_second": round(examples / seconds, 1),
                "peak_rss_mb": peak_rss_mb()})
    return out


def peak_rss_mb() -> float:
    """This process's peak resident set size (`VmHWM`). Not `ru_maxrss`: Linux carries the high-water mark of the
    forked copy of the parent over `exec`, so a child of this (large) parent would report the parent's size."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_child(job: dict, nice: int) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(job)]
    if nice:
        command = ["nice", "-n", str(nice)] + command
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{job['kind']}/{job['path']} at {job['rows']:,} rows failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


# ----------------------------------------------------------------------------------------------- the pipeline
def run_pipeline(span: dict, out_dir: str, nice: int) -> dict:
    """One run of `pipeline/diit.py` on the span; wall time per component (ML Metadata) and peak RSS."""
    from pipeline import configs

    root = os.path.join(out_dir, f"pipeline-{span['rows']}")
    config = configs.PipelineConfig({
        "data_dir": span["data_dir"], "pipeline_root": os.path.join(root, "root"),
        "metadata_path": os.path.join(root, "metadata.sqlite"), "serving_dir": os.path.join(root, "serving"),
        "enable_cache": False, "evaluator": {"target_auc_floor": 0.0, "regression_tolerance": 1.0}})
    shutil.rmtree(root, ignore_errors=True)  # a fresh root: ML Metadata must hold this run's executions only
    os.makedirs(root)
    config_file = os.path.join(root, "config.json")
    config.save(config_file)
    env = {**os.environ, "DIIT_PIPELINE_CONFIG": config_file, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONWARNINGS": "ignore"}
    command = ["/usr/bin/time", "-v", sys.executable, os.path.join(REPO, "pipeline", "diit.py")]
    if nice:
        command = ["nice", "-n", str(nice)] + command
    start = time.time()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.time() - start
    if proc.returncode != 0:
        raise RuntimeError(f"pipeline run failed:\n{proc.stderr[-3000:]}")
    peak = [line for line in proc.stderr.splitlines() if "Maximum resident set size" in line]
    return {"rows": span["rows"], "wall_seconds": round(wall, 1),
            "peak_rss_mb": round(int(peak[-1].split()[-1]) / 1024, 1) if peak else None,
            "components": component_seconds(config.path("metadata_path"))}


def component_seconds(metadata_path: str) -> dict:
    """node id -> seconds between its execution's creation and last update (ML Metadata), for the executions of the
    latest pipeline run in the store."""
    from pipeline import results

    store = results._store(metadata_path)
    runs = store.get_contexts_by_type("pipeline_run")
    latest = max(runs, key=lambda c: c.create_time_since_epoch) if runs else None
    ids = {e.id for e in store.get_executions_by_context(latest.id)} if latest else None
    out = {}
    for context in store.get_contexts_by_type("node"):
        node = context.name.split(".")[-1]
        for execution in store.get_executions_by_context(context.id):
            if ids is not None and execution.id not in ids:
                continue
            seconds = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000
            out[node] = round(out.get(node, 0.0) + seconds, 1)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


# ------------------------------------------------------------------------------------------------------ report
def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="250000,1000000,4000000", help="span sizes (rows of all domains)")
    parser.add_argument("--compare-rows", type=int, default=1_000_000,
                        help="size at which streaming and in-memory paths run side by side (0: none)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating stream/memory runs at --compare-rows")
    parser.add_argument("--pipeline-rows", type=int, default=1_000_000, help="full pipeline run at this size (0: none)")
    parser.add_argument("--out", default="runs/bench_scale", help="work directory (data, models, results.json)")
    parser.add_argument("--nice", type=int, default=10, help="niceness added to the measured processes (on top of this process's own; 0: none)")
    parser.add_argument("--shuffle-buffers", default="", metavar="N1,N2",
                        help="also stream with each of these `shuffle_buffer` values (rows per shuffle window; the "
                             "trainers' default is 100,000), alternating with the default in every repeat")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(json.loads(args.child))), flush=True)
        return 0

    sizes = [int(x) for x in args.rows.split(",") if x.strip()]
    buffers = [int(x) for x in args.shuffle_buffers.split(",") if x.strip()]
    if not all(n >= 1 for n in buffers):
        parser.error(f"--shuffle-buffers should be positive integers. Received: {args.shuffle_buffers!r}")
    extra = [s for s in (args.compare_rows, args.pipeline_rows) if s and s not in sizes]
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    report = {"command": " ".join(["python", "scripts/bench_scale.py"] + (argv or sys.argv[1:])),
              "uptime_before": uptime(), "trainers": [], "pipeline": None}
    print(report["uptime_before"], flush=True)
    print(f"settings: source {model_config('source')}, student {model_config('student')}", flush=True)
    teacher = os.path.join(out_dir, "teacher")
    for rows in sorted(set(sizes + extra)):
        start = time.time()
        span = build_span(out_dir, rows)
        print(f"\n{span['rows']:,} rows (train split {sum(span['split_rows']['train'].values()):,}: "
              f"{span['split_rows']['train']}), built in {time.time() - start:.0f}s", flush=True)
        job = {"rows": span["rows"], "examples": span["examples"], "spec": span["spec"],
               "split_rows": span["split_rows"], "teacher": teacher}
        if not os.path.isdir(teacher):  # the DIIT trainer's two teachers (their weights do not change its cost)
            run_child({**job, "kind": "source", "path": "stream", "save": teacher}, args.nice)
        paths = ["stream"] + [f"{BUFFER_PATH}{n}" for n in buffers]
        repeats = 1
        if rows == args.compare_rows:
            paths, repeats = paths + ["memory"], max(1, args.repeats)
        if rows in sizes or rows == args.compare_rows:
            for _ in range(repeats):
                for kind in ("source", "diit"):
                    for path in paths:
                        result = run_child({**job, "kind": kind, "path": path}, args.nice)
                        report["trainers"].append(result)
                        print(f"  {kind:<6} {path:<6} {result['examples']:>11,} examples in "
                              f"{result['train_seconds']:>7.1f}s = {result['examples_per_second']:>9,.0f}/s, "
                              f"peak RSS {result['peak_rss_mb']:>7,.0f} MB"
                              + (f" (+{result['load_seconds']}s reading the split)" if "load_seconds" in result
                                 else ""), flush=True)
        if rows == args.pipeline_rows:
            report["pipeline"] = run_pipeline(span, out_dir, args.nice)
            p = report["pipeline"]
            print(f"  full pipeline: {p['wall_seconds']:.0f}s wall, peak RSS {p['peak_rss_mb']:,.0f} MB", flush=True)
            for node, seconds in p["components"].items():
                print(f"    {node:<32} {seconds:>7.1f}s", flush=True)
    report["uptime_after"] = uptime()
    summarize(report)
    print(report["uptime_after"], flush=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {os.path.join(out_dir, 'results.json')}")
    return 0


def summarize(report: dict) -> None:
    """The ratios the targets are about, printed and stored in `report["summary"]`."""
    runs = report["trainers"]

    def median(kind, path, rows, key):
        values = [r[key] for r in runs if (r["kind"], r["path"], r["rows"]) == (kind, path, rows)]
        return statistics.median(values) if values else None

    sizes = sorted({r["rows"] for r in runs if r["path"] == "stream"})
    summary = {"peak_rss_mb": {}, "examples_per_second": {}, "diit_vs_source": {}, "stream_vs_memory": {}}
    print("\nsummary (medians)")
    for kind in ("source", "diit"):
        rss = {rows: median(kind, "stream", rows, "peak_rss_mb") for rows in sizes}
        summary["peak_rss_mb"][kind] = rss
        summary["examples_per_second"][kind] = {rows: median(kind, "stream", rows, "examples_per_second")
                                                for rows in sizes}
        print(f"  {kind} trainer peak RSS (MB): " + ", ".join(f"{r:,} rows {v:,.0f}" for r, v in rss.items()))
        if len(sizes) >= 2:
            growth = rss[sizes[-1]] / rss[sizes[-2]] - 1
            summary["peak_rss_mb"][f"{kind}_growth_{sizes[-2]}_to_{sizes[-1]}"] = round(growth, 3)
            print(f"    growth {sizes[-2]:,} -> {sizes[-1]:,} rows: {growth:+.1%} (target <= +15%)")
    for rows in sizes:
        d, s = median("diit", "stream", rows, "examples_per_second"), median("source", "stream", rows,
                                                                             "examples_per_second")
        summary["diit_vs_source"][rows] = round(d / s, 3)
        print(f"  DIIT / source trainer examples/s at {rows:,} rows: {d / s:.2f} (target >= 0.5)")
        for path in sorted({r["path"] for r in runs if r["path"].startswith(BUFFER_PATH)}):
            d, s = median("diit", path, rows, "examples_per_second"), median("source", path, rows,
                                                                             "examples_per_second")
            if d and s:
                summary["diit_vs_source"][f"{rows}_{path}"] = round(d / s, 3)
                print(f"    with shuffle_buffer {path[len(BUFFER_PATH):]}: {d / s:.2f} (DIIT {d:,.0f}/s, "
                      f"source {s:,.0f}/s)")
    for kind in ("source", "diit"):
        for rows in sorted({r["rows"] for r in runs if r["path"] == "memory"}):
            pairs = [(a["examples_per_second"], b["examples_per_second"])
                     for a, b in zip([r for r in runs if (r["kind"], r["path"], r["rows"]) == (kind, "stream", rows)],
                                     [r for r in runs if (r["kind"], r["path"], r["rows"]) == (kind, "memory", rows)])]
            ratio = statistics.median(a / b for a, b in pairs)
            summary["stream_vs_memory"][f"{kind}_{rows}"] = round(ratio, 3)
            print(f"  {kind} streaming / in-memory examples/s at {rows:,} rows: {ratio:.2f} "
                  f"(pairs {[round(a / b, 2) for a, b in pairs]}; target >= 0.8)")
    report["summary"] = summary


if __name__ == "__main__":
    sys.exit(main())
