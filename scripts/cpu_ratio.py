"""Training CPU time of each method relative to the base, from a simulation's details.json.

`diit simulate` records, per seed, method and period, the CPU seconds of the method's own training
(`train_seconds[].cpu_seconds`). For each method this prints the mean over (seed, period) of its CPU seconds divided
by the base's in the same seed and period, leaving out each method's first period (it also traces the train step).

    python scripts/cpu_ratio.py docs/results/synthetic-regional-experts-test/details.json [more details.json ...]
"""
from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys


def cpu_ratios(details: dict) -> dict:
    """`{method: mean CPU-time ratio to the base}` over the (seed, period) pairs where both trained."""
    cpu = collections.defaultdict(dict)
    for row in details.get("train_seconds", []):
        if not row.get("first") and row.get("cpu_seconds") is not None:
            cpu[(row["seed"], row["period"])][row["method"]] = row["cpu_seconds"]
    methods = sorted({m for by_method in cpu.values() for m in by_method} - {"base"})
    out = {}
    for method in methods:
        ratios = [v[method] / v["base"] for v in cpu.values() if method in v and v.get("base")]
        if ratios:
            out[method] = statistics.mean(ratios)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("details", nargs="+", help="details.json of a `diit simulate` run")
    args = parser.parse_args(argv)
    for path in args.details:
        try:
            with open(path) as f:
                ratios = cpu_ratios(json.load(f))
        except (OSError, json.JSONDecodeError) as err:
            print(f"{path}: cannot read it ({err})", file=sys.stderr)
            return 1
        if not ratios:
            print(f"{path}: no CPU seconds recorded (a run older than the cpu_seconds field, or base only)")
            continue
        print(path)
        for method, ratio in ratios.items():
            print(f"  {method:60s} {ratio:.2f}x the base's CPU time per period")
    return 0


if __name__ == "__main__":
    sys.exit(main())
