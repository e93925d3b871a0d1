#!/usr/bin/env python
"""Benchmark: DIIT's training seconds per period against the base's, measured side by side in one run.

Both models train on the same periods in the same process, alternating within each period (base, then DIIT), from
the insertion period on; DIIT uses every source (two on the default synthetic data). The first DIIT period also
traces its train step, so it is reported but left out of the steady-state ratio. Prints one line per period and a
summary; the target is DIIT <= 2x base.

    python scripts/bench_simulation.py                                  # synthetic, dnn
    python scripts/bench_simulation.py --hparams synthetic --seeds 3    # the tuned preset, 3 seeds pooled
    python scripts/bench_simulation.py --dataset movielens-1m --backbone dcn --mix-batch-size 128
"""
from __future__ import annotations

import argparse
import statistics
import sys

from diit_tf.quiet import quiet_logging

quiet_logging()  # before TensorFlow loads

from diit_tf.simulation.context import PeriodStore  # noqa: E402
from diit_tf.data.registry import resolve_dataset  # noqa: E402
from diit_tf.simulation.hparams import Hparams  # noqa: E402
from diit_tf.simulation.protocol import run_simulation  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="synthetic", help="synthetic, movielens-1m or a dataset directory")
    parser.add_argument("--data-root", default="data", help="where named datasets are built (default: data)")
    parser.add_argument("--backbone", default="dnn", choices=["dnn", "dcn", "wdl"])
    parser.add_argument("--hparams", default=None, help="hyperparameter file of `diit simulate`")
    parser.add_argument("--epochs", type=int, default=None, help="override training.epochs")
    parser.add_argument("--batch-size", type=int, default=None, help="override training.batch_size")
    parser.add_argument("--mix-batch-size", type=int, default=None, help="override training.mix_batch_size")
    parser.add_argument("--periods", type=int, default=None, help="use only the first N periods")
    parser.add_argument("--insertion-period", type=int, default=2, help="first DIIT period (default: 2)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="number of seeds (seed, seed+1, ...); the ratios of every seed's periods are pooled")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds should be >= 1")

    hparams = Hparams.load(args.hparams) if args.hparams else Hparams()
    training = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size),
                                  ("mix_batch_size", args.mix_batch_size)) if v is not None}
    if training:
        hparams = hparams.replace(training=training)
    store = PeriodStore(resolve_dataset(args.dataset, args.data_root, log=print))
    if args.periods:
        store.periods = store.periods[: args.periods]
    seeds = list(range(args.seed, args.seed + args.seeds))
    result = run_simulation(store, backbone=args.backbone, methods="base,diit", seeds=seeds, hparams=hparams,
                            insertion_period=args.insertion_period, dataset_name=args.dataset,
                            log=lambda line: print(line, file=sys.stderr, flush=True))
    secs = {(t["seed"], t["method"], t["period"]): t for t in result.train_seconds}
    periods = sorted({p for _, _, p in secs})
    target_rows = {p: int((store.get(p).domains == store.spec.target).sum()) for p in periods}
    print(f"\nDIIT vs base training seconds per period ({args.dataset}, {args.backbone}, {len(store.spec.sources)} "
          f"sources, {hparams.epochs} epoch(s), batch {hparams.batch_size}, mix batch {hparams.mix_batch_size})")
    print("wall = wall-clock seconds; cpu = CPU seconds of all threads of this process (less sensitive to other "
          "processes sharing the machine)")
    print(f"{'seed':>4} {'period':>6} {'target rows':>11} {'base wall':>9} {'diit wall':>9} {'ratio':>6} "
          f"{'base cpu':>9} {'diit cpu':>9} {'ratio':>6}")
    wall, cpu = [], []
    for seed, p in ((s, p) for s in seeds for p in periods):
        b, d = secs[(seed, "base", p)], secs[(seed, "diit", p)]
        first = d.get("first")
        if not first:
            wall.append(d["seconds"] / b["seconds"])
            cpu.append(d["cpu_seconds"] / b["cpu_seconds"])
        print(f"{seed:>4} {p:>6} {target_rows[p]:>11,} {b['seconds']:>9.2f} {d['seconds']:>9.2f} "
              f"{d['seconds'] / b['seconds']:>6.2f} {b['cpu_seconds']:>9.2f} {d['cpu_seconds']:>9.2f} "
              f"{d['cpu_seconds'] / b['cpu_seconds']:>6.2f}" + ("  (traces the step)" if first else ""))
    if wall:
        print(f"steady-state DIIT/base over {len(wall)} period(s) of {len(seeds)} seed(s): wall median {statistics.median(wall):.2f}x "
              f"(mean {statistics.mean(wall):.2f}x), CPU median {statistics.median(cpu):.2f}x "
              f"(mean {statistics.mean(cpu):.2f}x); target <= 2x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
