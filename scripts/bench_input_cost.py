#!/usr/bin/env python
"""What the streaming input costs each trainer: `fit` on the streaming batches vs on the same batches cached in
memory (the stream read once into a `Dataset.cache()` before the clock starts), alternating, each run in its own
process. The cached run is the train step alone, so it bounds what any input change can reach; the difference
is the input pipeline's share. Reports wall and CPU seconds of `fit` (on a shared machine the CPU seconds are the
steadier of the two).

Reads a span written by `scripts/bench_scale.py` (its `<out>/examples-<rows>` directory and `<out>/teacher`), with
the same model settings (`bench_scale.model_config`) and the same batches as the trainers (`streaming.domain_batches`
for the source trainer of `source_a`, `streaming.diit_batches` for DIIT with two copies of the teacher).

    nice -n 10 python scripts/bench_input_cost.py --span runs/bench_scale --rows 1000000 --repeats 2

`--paths` picks what runs (alternating, in this order, every repeat; the default is `stream,cached`):
- `stream`, `cached`: as above;
- `stream-xla`, `cached-xla`: the same with the train step compiled by XLA (`compile(jit_compile=True)`), for both
  trainers;
- `cached-teachers` (DIIT only): the cached batches with the teachers' outputs added to the mix and target rows
  before the clock starts (`DIITModel.teacher_outputs`, read by the step instead of calling the teachers): the step
  without the teachers' forward pass, i.e. the most that moving the teachers off the step (e.g. into a parallel
  `dataset.map`) could save;
- `stream-warm`: the stream with `tf.data.Options.experimental_warm_start` (its background threads start when
  `fit` creates the iterator, so the first shuffle fill overlaps the tracing of the train step).
Besides fit's wall and CPU seconds, each run reports the first step's wall seconds (tracing, the first shuffle
fill) and the final loss (the same with and without XLA, within float tolerance, is a sanity check).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "scripts"))

PATHS = ("stream", "cached", "stream-xla", "cached-xla", "cached-teachers", "stream-warm")


def child(job: dict) -> dict:
    import keras
    import tensorflow as tf

    import bench_scale
    from components import training
    from diit_tf.backbones import build_backbone
    from diit_tf.data import load_spec, streaming

    spec = load_spec(job["data_dir"])
    columns = bench_scale.columns_of(spec)
    files = sorted(glob.glob(os.path.join(job["examples"], "Split-train", "*")))
    config = bench_scale.model_config(job["kind"])
    keras.utils.set_random_seed(0)
    path = job["path"]
    xla = path.endswith("-xla")
    if job["kind"] == "source":
        from diit_tf.ctr import PeriodTrainer

        ds = streaming.domain_batches(files, columns, spec, bench_scale.SOURCE, config["batch_size"])
        model = PeriodTrainer(build_backbone(config["backbone"], spec, name="source", **config["backbone_options"]),
                              config["learning_rate"])
        if xla:
            model.trainer.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]), jit_compile=True)
            model.trainer.optimizer.build(model.model.trainable_variables)
    else:
        from diit_tf.config import DIITConfig
        from diit_tf.model import DIITModel

        ds = streaming.diit_batches(files, columns, spec, config["batch_size"], config["mix_batch_size"],
                                    streaming.mix_rates(spec, config["mix_ratio"]))
        model = DIITModel([training.load_backbone(job["teacher"]) for _ in spec.sources],
                          build_backbone(config["backbone"], spec, name="student", **config["backbone_options"]),
                          DIITConfig())
        model.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]),
                      discriminator_optimizer=keras.optimizers.Adam(config["discriminator_learning_rate"]),
                      jit_compile=xla)
    if path == "cached-teachers":
        ds = with_teacher_outputs(model, ds)
    if path == "stream-warm":
        options = tf.data.Options()
        options.experimental_warm_start = True
        ds = ds.with_options(options)
    if path.startswith("cached"):
        ds = ds.cache()
        for _ in ds:
            pass
    first = first_step_callback()
    wall, cpu = time.time(), time.process_time()
    with streaming.unknown_length():
        history = model.fit(ds, epochs=1, verbose=0, callbacks=[first])
    return {"kind": job["kind"], "path": path, "wall_seconds": round(time.time() - wall, 2),
            "cpu_seconds": round(time.process_time() - cpu, 2), "first_step_seconds": round(first.end - wall, 2),
            "loss": float(history.history["loss"][-1])}


def first_step_callback():
    """A callback noting when the first step ended (`fit` traces the step and fills the input's buffers first)."""
    import keras

    class FirstStep(keras.callbacks.Callback):
        end = None

        def on_train_batch_end(self, batch, logs=None):
            if self.end is None:
                self.end = time.time()

    return FirstStep()


def with_teacher_outputs(model, ds):
    """DIIT's `((x_t, y_t), x_m)` batches with the teachers' outputs on both parts (`TEACHER_KEYS`), as the step
    reads them instead of calling the teachers; computed here, before the clock starts (the caller caches them)."""
    import numpy as np
    import tensorflow as tf

    batches = []
    for (x_t, y_t), x_m in ds:
        parts = []
        for x in (x_t, x_m):
            features = {k: np.asarray(v) for k, v in x.items()}
            parts.append(dict(features, **model.teacher_outputs(features)))
        batches.append(((parts[0], np.asarray(y_t)), parts[1]))

    def gen():
        yield from batches

    first = batches[0]
    signature = tf.nest.map_structure(lambda a: tf.TensorSpec((None,) + a.shape[1:], tf.as_dtype(a.dtype)), first)
    return tf.data.Dataset.from_generator(gen, output_signature=signature)


def bench_scale_rows(job: dict):
    """The rows one epoch's `fit` consumes, by trainer, as `bench_scale` counted them for the span (its
    `results.json`): the source trainer's domain rows; DIIT's target rows plus one mix batch per step; None when it
    has no such runs."""
    try:
        with open(os.path.join(os.path.dirname(job["examples"]), "results.json")) as f:
            trainers = json.load(f)["trainers"]
        rows = int(os.path.basename(job["examples"]).split("-")[-1])
        return {kind: next(r["examples"] for r in trainers if r["kind"] == kind and r["rows"] == rows)
                for kind in ("source", "diit")}
    except (OSError, KeyError, ValueError, StopIteration):
        return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--span", default="runs/bench_scale", help="bench_scale's --out directory")
    parser.add_argument("--rows", type=int, default=1_000_000, help="the span size (its examples-<rows> directory)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--paths", default="stream,cached", help="comma-separated runs per trainer (see above)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(json.loads(args.child))), flush=True)
        return 0
    span = os.path.abspath(args.span)
    job = {"examples": os.path.join(span, f"examples-{args.rows}"), "data_dir": os.path.join(span, f"data-{args.rows}"),
           "teacher": os.path.join(span, "teacher")}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
    runs = []
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        parser.error(f"--paths: unknown {unknown}; choose from {list(PATHS)}")
    for _ in range(args.repeats):
        for kind in ("source", "diit"):
            for path in paths:
                if kind == "source" and path == "cached-teachers":
                    continue
                proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child",
                                       json.dumps({**job, "kind": kind, "path": path})],
                                      capture_output=True, text=True, env=env, cwd=REPO)
                lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
                if proc.returncode != 0 or not lines:
                    raise RuntimeError(f"{kind}/{path} failed:\n{proc.stderr[-3000:]}")
                result = json.loads(lines[-1][len("RESULT "):])
                runs.append(result)
                print(f"  {kind:<6} {path:<15} fit {result['wall_seconds']:6.2f}s wall, "
                      f"{result['cpu_seconds']:6.2f}s CPU, first step {result['first_step_seconds']:5.2f}s, "
                      f"loss {result['loss']:.7f}", flush=True)

    def of(kind, path):
        return [r for r in runs if (r["kind"], r["path"]) == (kind, path)]

    for kind in ("source", "diit"):
        for path in paths[1:]:
            for key in ("wall_seconds", "cpu_seconds"):
                pairs = [(a[key], b[key]) for a, b in zip(of(kind, paths[0]), of(kind, path))]
                if pairs:
                    print(f"{kind}: {path} / {paths[0]} {key}: median {statistics.median(b / a for a, b in pairs):.2f} "
                          f"(pairs {[round(b / a, 2) for a, b in pairs]})")
    # DIIT / source examples/s per path, per repeat (rows: source_a's, DIIT's target + mix rows of the steps run)
    rows = bench_scale_rows(job)
    for path in paths if rows else []:
        pairs = [(rows["source"] / s["wall_seconds"], rows["diit"] / d["wall_seconds"])
                 for s, d in zip(of("source", path), of("diit", path))]
        if pairs:
            print(f"DIIT / source examples/s, {path}: median {statistics.median(d / s for s, d in pairs):.2f} "
                  f"(pairs {[round(d / s, 2) for s, d in pairs]})")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
