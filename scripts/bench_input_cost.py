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


def child(job: dict) -> dict:
    import keras

    import bench_scale
    from components import training
    from diit_tf.backbones import build_backbone
    from diit_tf.data import load_spec, streaming

    spec = load_spec(job["data_dir"])
    columns = bench_scale.columns_of(spec)
    files = sorted(glob.glob(os.path.join(job["examples"], "Split-train", "*")))
    config = bench_scale.model_config(job["kind"])
    keras.utils.set_random_seed(0)
    if job["kind"] == "source":
        from diit_tf.ctr import PeriodTrainer

        ds = streaming.domain_batches(files, columns, spec, bench_scale.SOURCE, config["batch_size"])
        model = PeriodTrainer(build_backbone(config["backbone"], spec, name="source", **config["backbone_options"]),
                              config["learning_rate"])
    else:
        from diit_tf.config import DIITConfig
        from diit_tf.model import DIITModel

        ds = streaming.diit_batches(files, columns, spec, config["batch_size"], config["mix_batch_size"],
                                    streaming.mix_rates(spec, config["mix_ratio"]))
        model = DIITModel([training.load_backbone(job["teacher"]) for _ in spec.sources],
                          build_backbone(config["backbone"], spec, name="student", **config["backbone_options"]),
                          DIITConfig())
        model.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]),
                      discriminator_optimizer=keras.optimizers.Adam(config["discriminator_learning_rate"]))
    if job["path"] == "cached":
        ds = ds.cache()
        for _ in ds:
            pass
    wall, cpu = time.time(), time.process_time()
    with streaming.unknown_length():
        model.fit(ds, epochs=1, verbose=0)
    return {"kind": job["kind"], "path": job["path"], "wall_seconds": round(time.time() - wall, 2),
            "cpu_seconds": round(time.process_time() - cpu, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--span", default="runs/bench_scale", help="bench_scale's --out directory")
    parser.add_argument("--rows", type=int, default=1_000_000, help="the span size (its examples-<rows> directory)")
    parser.add_argument("--repeats", type=int, default=2)
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
    for _ in range(args.repeats):
        for kind in ("source", "diit"):
            for path in ("stream", "cached"):
                proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child",
                                       json.dumps({**job, "kind": kind, "path": path})],
                                      capture_output=True, text=True, env=env, cwd=REPO)
                lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
                if proc.returncode != 0 or not lines:
                    raise RuntimeError(f"{kind}/{path} failed:\n{proc.stderr[-3000:]}")
                result = json.loads(lines[-1][len("RESULT "):])
                runs.append(result)
                print(f"  {kind:<6} {path:<6} fit {result['wall_seconds']:6.1f}s wall, "
                      f"{result['cpu_seconds']:6.1f}s CPU", flush=True)
    for kind in ("source", "diit"):
        for key in ("wall_seconds", "cpu_seconds"):
            pairs = [(a[key], b[key]) for a, b in zip([r for r in runs if (r["kind"], r["path"]) == (kind, "stream")],
                                                      [r for r in runs if (r["kind"], r["path"]) == (kind, "cached")])]
            print(f"{kind}: cached / stream {key}: median {statistics.median(b / a for a, b in pairs):.2f} "
                  f"(pairs {[round(b / a, 2) for a, b in pairs]})")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
