#!/usr/bin/env python
"""What DIIT's gate loss asks of the gate on a benchmark with regions: the loss at its optimum over fixed weights,
one set for every row against one per region (diit_tf/simulation/mixture.py), on the target's labelled rows of each
period from the insertion period on, with the frozen sources trained per period as the simulation trains them.

Prints, per seed and period, the loss with shared weights, with weights per region (and those weights), the
sources' AUC per region, and the drop in loss that routing by region is worth on the gate's own objective.

    python scripts/gate_optimum.py --dataset movielens-1m-genre-experts --seeds 0,1,2
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from diit_tf.quiet import quiet_logging

quiet_logging()  # before TensorFlow loads

import keras  # noqa: E402

from diit_tf.data.regions import regions_of  # noqa: E402
from diit_tf.simulation.context import SeedContext  # noqa: E402
from diit_tf.simulation.hparams import Hparams  # noqa: E402
from diit_tf.simulation.mixture import mixture_fit  # noqa: E402
from diit_tf.simulation.protocol import resolve_insertion_period  # noqa: E402

from check_benchmark import auc_by_region, open_benchmark, sources_on_target  # noqa: E402 (beside this script)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dataset", required=True, help="a named dataset whose metadata records regions")
    parser.add_argument("--hparams", default=None, help="preset or file (default: the dataset's preset)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--data-root", default="data", help="where named datasets are cached")
    args = parser.parse_args(argv)
    _, _, store, relevance = open_benchmark(args.dataset, args.data_root)
    region_of = regions_of(relevance, store.spec)
    if region_of is None:
        parser.error(f"{args.dataset}: metadata.json records no regions (ground_truth.relevance)")
    hparams = Hparams.load(args.hparams or args.dataset)
    p0 = resolve_insertion_period(store.periods, hparams.insertion_period)
    drops = []
    print("| seed | period | rows | loss, shared weights | loss, weights per region | drop | weights per region "
          "(on the sources in order) | sources' AUC per region |")
    print("|---" * 8 + "|")
    for seed in (int(s) for s in args.seeds.split(",")):
        keras.utils.set_random_seed(seed)
        ctx = SeedContext(store, "dnn", hparams, seed, p0, log=lambda line: None)
        for p in store.periods:
            ctx.sources.train(p)
            if p < p0:
                continue
            data, by_source = sources_on_target(store, ctx, p)  # the rows the gate trains on in period p
            logits = np.stack(list(by_source.values()), axis=1)
            region = region_of(data.features)
            shared, routed = mixture_fit(logits, data.labels), mixture_fit(logits, data.labels, region)
            drops.append(shared["loss"] - routed["loss"])
            per_source = [auc_by_region(data.labels, z, region, routed["weights"]) for z in by_source.values()]
            quality = "; ".join(f"{g}: " + ", ".join(f"{a[g]:.3f}" for a in per_source) for g in routed["weights"])
            print(f"| {seed} | {p} | {len(data.labels):,} | {shared['loss']:.4f} | {routed['loss']:.4f} | "
                  f"{drops[-1]:.4f} | {routed['weights']} | {quality} |", flush=True)
    print(f"\nsources: {list(ctx.sources.names)}; mean drop in the gate's loss from routing by region: "
          f"{np.mean(drops):.4f} (min {np.min(drops):.4f}, max {np.max(drops):.4f}) over {len(drops)} seed-periods")
    return 0


if __name__ == "__main__":
    sys.exit(main())
