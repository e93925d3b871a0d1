"""Serving before and after a change to serving/, side by side in one run: p50/p99 latency, QPS and errors.

The tree of `serving/` at `--baseline-rev` (default: the commit before "serving/ split by concern", 4f20921^) is
written to a temporary directory with `git archive`; one student SavedModel is exported once; then the baseline's
`python -m serving.server` and this tree's take turns (`--rounds` rounds, a fresh server per run, the same
closed-loop load: concurrency 4, 100-example `predict` requests), as section 6 of scripts/bench_serving.py does,
without that script's other sections. Prints a markdown table (median over rounds, p99 range in brackets).

Usage:
    python scripts/bench_serving_split.py                          # 4f20921^ against this tree, 2 rounds
    python scripts/bench_serving_split.py --rounds 3 --requests 10000
    python scripts/bench_serving_split.py --baseline-rev main      # any other revision's serving/
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPLIT_PARENT = "4f20921^"  # 4f20921: "serving/ split by concern"; its parent has the one-module serving/server.py


def _bench():
    """scripts/bench_serving.py as a module (it is a script, not a package member)."""
    spec = importlib.util.spec_from_file_location("bench_serving", os.path.join(ROOT, "scripts", "bench_serving.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--baseline-rev", default=SPLIT_PARENT, help=f"revision whose serving/ is the baseline "
                                                                 f"(default {SPLIT_PARENT})")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds, one run of each server per round")
    p.add_argument("--requests", type=int, default=5000, help="requests per run = max(50, this / 5) (default 5000)")
    p.add_argument("--concurrency", type=int, default=4, help="load-test concurrency (default 4)")
    p.add_argument("--batch", type=int, default=100, help="rows per request (default 100)")
    p.add_argument("--grpc-threads", type=int, default=4, help="server gRPC worker threads (default 4)")
    p.add_argument("--tf-threads", type=int, default=0, help="server TensorFlow threads (default 0 = TF default)")
    args = p.parse_args(argv)
    for name in ("rounds", "requests", "concurrency", "batch", "grpc_threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} should be >= 1")
    # the names bench_serving's helpers read
    args.ab_rounds, args.backbone, args.hidden_units = args.rounds, "dnn", "128,64"
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def git(*words) -> str:
    return subprocess.run(["git", *words], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def checkout_serving(rev: str, into: str) -> str:
    """`serving/` of `rev` written under `into` (git archive); returns the commit id."""
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    archive = subprocess.run(["git", "archive", commit, "serving"], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return commit


def main(argv=None) -> int:
    args = parse_args(argv)
    bench = _bench()
    work = tempfile.mkdtemp(prefix="diit-bench-split-")
    old_root = os.path.join(work, "baseline")
    os.makedirs(old_root)
    old_commit = checkout_serving(args.baseline_rev, old_root)
    this_commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--", "serving"))
    load_before = bench.uptime()
    print(f"machine: {os.cpu_count()} cores; {load_before}", flush=True)
    rows = bench.synthetic_rows(bench.raw_feature_dtypes(bench.SPEC), args.batch, seed=7)
    export_dir = bench.export_student(bench.backbone(args, "student", 1), bench.SPEC,
                                      os.path.join(work, "model", "1"), warmup_examples=rows[:8])
    names = (f"before the split ({old_commit[:7]})", f"this tree ({this_commit[:7]}{', serving/ modified' if dirty else ''})")
    print(f"{names[0]} against {names[1]}, {args.rounds} alternating rounds ...", flush=True)
    runs = bench.alternate(args, export_dir, [(names[0], [], old_root), (names[1], [], ROOT)])
    load_after = bench.uptime()
    per_run = max(50, args.requests // 5)
    cmd = " ".join(["python scripts/bench_serving_split.py"] + args.argv)
    L = [f"`{cmd}`: student `dnn` 128,64 (scripts/bench_serving.py's schema), concurrency {args.concurrency}, "
         f"{args.batch}-example `predict` requests, {per_run} requests per run, {args.rounds} alternating round(s), "
         f"a fresh server per run; median over rounds, p99 range in brackets. "
         f"{os.cpu_count()} cores; `uptime` before: `{load_before}`; after: `{load_after}`.", ""]
    L += bench.path_table("serving/", runs)
    print("\n".join(L))
    print(json.dumps({"baseline": old_commit, "this": this_commit, "runs": runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
