#!/usr/bin/env python
"""Properties of a benchmark dataset that every method is handed, measured without running any transfer method.

Prints the rows and CTR per domain and period, the AUC of the true click probabilities and the designed relevance
of each source (when the dataset records a ground truth), then trains, per seed and period exactly as the
simulation does, every source's own incremental model and the target's base model, and scores them on the
target's rows of the next period: each source's quality on the target (overall and, for regional experts, per
region of item categories), next to the base. Also the training seconds per period of the sources and of the
base (`uptime` load printed next to them).

    python scripts/check_benchmark.py --dataset synthetic-unequal-sources --hparams synthetic --seeds 3
    python scripts/check_benchmark.py --dataset movielens-1m-age7 --hparams movielens-1m --seeds 3 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from diit_tf.quiet import quiet_logging

quiet_logging()  # before TensorFlow loads

import keras  # noqa: E402

from diit_tf.data import read_metadata  # noqa: E402
from diit_tf.data.registry import resolve_dataset  # noqa: E402
from diit_tf.data.regions import regions_of  # noqa: E402
from diit_tf.simulation.context import PeriodStore, SeedContext  # noqa: E402
from diit_tf.simulation.hparams import Hparams  # noqa: E402
from diit_tf.simulation.methods import Base  # noqa: E402
from diit_tf.simulation.protocol import resolve_insertion_period, routing_scores  # noqa: E402
from diit_tf.simulation.training import auc, predict_logits  # noqa: E402


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def open_benchmark(dataset, data_root, log=None) -> tuple:
    """`(data_dir, metadata, store, relevance)` of a named dataset (built under `data_root` when missing or stale) or
    a dataset directory: its metadata.json, its periods (`PeriodStore`) and the relevance its design records
    (`ground_truth.relevance`, None without). Also what scripts/gate_optimum.py reads."""
    data_dir = resolve_dataset(dataset, data_root, log=log)
    metadata = read_metadata(data_dir)
    store = PeriodStore(data_dir)
    return data_dir, metadata, store, (metadata.get("ground_truth") or {}).get("relevance")


def sources_on_target(store, ctx, period: int) -> tuple:
    """`(rows, {source: logits})`: the target's rows of `period` and the latest frozen source models' logits on
    them, in the sources' order."""
    data = store.get(period).domain(store.spec.target)
    return data, {n: predict_logits(m, data.features) for n, m in zip(ctx.sources.names, ctx.sources.latest())}


def auc_by_region(labels, logits, region, regions) -> dict:
    """`{region: AUC of logits on its rows}` for each of `regions`; `region` holds each row's."""
    return {r: auc(labels[region == r], logits[region == r]) for r in regions}


def describe(metadata: dict, spec) -> None:
    """Rows and CTR per domain and period, and the recorded ground truth."""
    rows, clicks = metadata["rows_per_period_per_domain"], metadata["clicks_per_period_per_domain"]
    print(f"dataset {metadata['dataset']}: target {spec.target!r}, sources {list(spec.sources)}")
    print("| period | " + " | ".join(spec.domains) + " |")
    print("|---" * (len(spec.domains) + 1) + "|")
    for p in sorted(rows, key=int):
        print(f"| {p} | " + " | ".join(f"{rows[p][d]:,} ({clicks[p][d] / rows[p][d]:.3f})" if rows[p][d] else "0"
                                       for d in spec.domains) + " |")
    truth = metadata.get("ground_truth", {})
    if "auc_of_true_ctr" in truth:
        mean = {d: np.mean([v[d] for v in truth["auc_of_true_ctr"].values()]) for d in spec.domains}
        print("AUC of the true click probabilities (mean over periods): "
              + ", ".join(f"{d} {v:.4f}" for d, v in mean.items()))
    relevance = truth.get("relevance")
    if relevance and "sources" in relevance:  # a synthetic design (real data records its regions only)
        print("designed relevance (latent correlation with the target's click function, item categories shared on):")
        for name, s in relevance["sources"].items():
            cats = s["shares_on_item_categories"]
            print(f"  {name}: shared weight {s['shared_weight']}, correlation {s['latent_correlation_with_target']}, "
                  f"categories {cats[0]}..{cats[-1]} ({len(cats)})" if cats else f"  {name}: shares on none")
        on_target = relevance["on_target_rows"]
        print("true click function of each source on the target's rows (mean over periods): "
              + ", ".join(f"{n} AUC {np.mean([on_target[p][n]['true_auc'] for p in on_target]):.4f} / corr "
                          f"{np.mean([on_target[p][n]['logit_correlation'] for p in on_target]):.3f}"
                          for n in relevance["sources"]))


def check(store, hparams, seeds, insertion_period, relevance=None) -> dict:
    """Train the sources and the base period by period; score them on the target's rows of the next period."""
    spec = store.spec
    p0 = resolve_insertion_period(store.periods, insertion_period or hparams.insertion_period)
    region_of = regions_of(relevance, spec)
    regional = region_of is not None
    out = {"insertion_period": p0, "seeds": {}}
    for seed in seeds:
        keras.utils.set_random_seed(int(seed))
        ctx = SeedContext(store, "dnn", hparams, seed, p0, log=log)
        base = Base()
        base.setup(ctx)
        per_seed = out["seeds"][str(seed)] = {"periods": {}}
        for p in store.periods[:-1]:
            t0, c0 = time.perf_counter(), time.process_time()
            ctx.sources.train(p)
            t1, c1 = time.perf_counter(), time.process_time()
            base.train_period(ctx, p)
            t2, c2 = time.perf_counter(), time.process_time()
            record = {"sources_seconds": t1 - t0, "sources_cpu": c1 - c0, "base_seconds": t2 - t1,
                      "base_cpu": c2 - c1}
            line = f"[seed {seed}] period {p}: sources {t1 - t0:.1f}s, base {t2 - t1:.2f}s"
            if p >= p0:
                data, logits = sources_on_target(store, ctx, p + 1)
                base_logits = base.logits(data)
                record["base_auc"] = auc(data.labels, base_logits)
                record["source_auc"] = {n: auc(data.labels, z) for n, z in logits.items()}
                if regional:
                    region = region_of(data.features)
                    record["source_auc_by_region"] = {n: auc_by_region(data.labels, z, region, relevance["regions"])
                                                      for n, z in logits.items()}
                    record["ambiguous_rows"] = int((region == "ambiguous").sum())
                    record["base_auc_by_region"] = auc_by_region(data.labels, base_logits, region,
                                                                 relevance["regions"])
                    record["routing"] = routing_scores(list(logits), np.stack(list(logits.values()), axis=1),
                                                       data.labels, region)
                line += f"; on target rows of period {p + 1}: base {record['base_auc']:.4f}, " + ", ".join(
                    f"{n} {v:.4f}" for n, v in record["source_auc"].items())
            per_seed["periods"][str(p)] = record
            log(line)
        keras.backend.clear_session()
    return out


def spearman(x, y) -> float:
    """Spearman rank correlation (no ties expected among a handful of AUCs)."""
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def summarize(result: dict, sources: list, relevance=None) -> None:
    p0 = result["insertion_period"]
    seeds = list(result["seeds"].values())
    scored = [r for s in seeds for p, r in s["periods"].items() if int(p) >= p0]

    def spread(values):
        per_seed = [np.mean(v) for v in values]
        return f"{np.mean(per_seed):.4f} ± {np.std(per_seed, ddof=1 if len(per_seed) > 1 else 0):.4f}"

    def per_seed(key):
        return [[r[key] for p, r in s["periods"].items() if int(p) >= p0] for s in seeds]

    print(f"\nquality on the target's rows of the next period (AUC; per seed the mean over periods {p0 + 1}.., then "
          f"mean ± std over {len(seeds)} seed(s))")
    line = f"- base (the target's own model): {spread(per_seed('base_auc'))}"
    if scored and "base_auc_by_region" in scored[0]:
        line += "; by region: " + ", ".join(
            f"{region} {np.nanmean([r['base_auc_by_region'][region] for r in scored]):.4f}"
            for region in relevance["regions"])
    print(line)
    names = list(scored[0]["source_auc"]) if scored else []
    for n in names:
        values = [[r["source_auc"][n] for p, r in s["periods"].items() if int(p) >= p0] for s in seeds]
        line = f"- {n}: {spread(values)}"
        if "source_auc_by_region" in scored[0]:
            line += "; by region: " + ", ".join(
                f"{region} {np.nanmean([r['source_auc_by_region'][n][region] for r in scored]):.4f}"
                for region in relevance["regions"])
        print(line)
    if names:
        mean_auc = {n: np.mean([r["source_auc"][n] for r in scored]) for n in names}
        print("- sources ranked by AUC on the target: " + " > ".join(sorted(names, key=lambda n: -mean_auc[n])))
        if relevance and "on_target_rows" in relevance and len(names) >= 3:
            on_target = relevance["on_target_rows"]
            truth = {n: np.mean([on_target[p][n]["true_auc"] for p in on_target]) for n in names}
            print(f"  Spearman with the ground truth (each source's true click function on the target's rows): "
                  f"{spearman([mean_auc[n] for n in names], [truth[n] for n in names]):.2f}")
    if scored and "routing" in scored[0]:
        print("- fixed teachers from the frozen sources (what routing could give): the sources' mean logit "
              f"{spread([[r['routing']['uniform'] for p, r in s['periods'].items() if int(p) >= p0] for s in seeds])}"
              ", each row given the logit of the source relevant in its region (oracle) "
              f"{spread([[r['routing']['oracle'] for p, r in s['periods'].items() if int(p) >= p0] for s in seeds])}")
    if scored and "ambiguous_rows" in scored[0]:
        print(f"  (rows whose hashed region feature holds values of two regions, left out of the split: "
              f"{sum(r['ambiguous_rows'] for r in scored)})")
    later = [r for s in seeds for p, r in s["periods"].items() if int(p) > p0]
    timed = later or scored
    load = os.getloadavg()
    print(f"\ntraining seconds per period (mean over periods > {p0} of every seed; wall / CPU): sources "
          f"{np.mean([r['sources_seconds'] for r in timed]):.2f} / {np.mean([r['sources_cpu'] for r in timed]):.2f}, "
          f"base {np.mean([r['base_seconds'] for r in timed]):.2f} / {np.mean([r['base_cpu'] for r in timed]):.2f}; "
          f"total over every period and seed: sources "
          f"{sum(r['sources_seconds'] for s in seeds for r in s['periods'].values()):.0f}s, base "
          f"{sum(r['base_seconds'] for s in seeds for r in s['periods'].values()):.0f}s; load average "
          f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}")


def main(argv=None) -> int:
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # per-model predict retracing notices are expected here
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="a named dataset of `diit simulate` or a dataset directory")
    parser.add_argument("--data-root", default="data", help="where named datasets are built (default: data)")
    parser.add_argument("--hparams", default=None, help="hyperparameter file or preset of `diit simulate`")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds 0..N-1 (default: 3)")
    parser.add_argument("--insertion-period", type=int, default=None, help="default: from --hparams")
    parser.add_argument("--json", default=None, help="also write every measured number to this file")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds should be >= 1")
    hparams = Hparams.load(args.hparams) if args.hparams else Hparams()
    _, metadata, store, relevance = open_benchmark(args.dataset, args.data_root, log)
    describe(metadata, store.spec)
    start = time.perf_counter()
    result = check(store, hparams, list(range(args.seeds)), args.insertion_period, relevance)
    summarize(result, list(store.spec.sources), relevance)
    print(f"checked in {time.perf_counter() - start:.0f}s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"dataset": args.dataset, "hparams": hparams.to_dict(), **result}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
