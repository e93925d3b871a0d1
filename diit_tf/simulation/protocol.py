"""The industrial period protocol (docs/method.md, "The industrial setting").

For each seed, for each period `p` but the last, in time order:
1. every source domain's model trains on its own period-`p` rows, warm-started from period `p-1` (once per seed
   and period; every method uses these same source models);
2. every method trains on period `p` (target-model methods only from the insertion period `p0` on, starting from
   the base's weights of period `p0-1`; methods with their own history, e.g. `joint`, from the first period);
3. from `p0` on, every method's target model, now trained through `p`, is scored on period `p+1` of the target
   domain (AUC, LogLoss) -- a period it has never trained on.

`run_simulation` returns a `SimulationResult` with one record per (seed, method, evaluated period), and an event log
(`(seed, kind, who, period)` for every training read and evaluation) that the protocol tests check.
"""
from __future__ import annotations

import contextlib
import dataclasses
import random
import sys
import time

import keras
import numpy as np

from diit_tf.baselines.finetune import tables_by_path
from diit_tf.baselines.kd import static_weights
from diit_tf.layers.feature_embedding import embedding_positions
from diit_tf.simulation.context import SeedContext
from diit_tf.simulation.hparams import COPIED_BY_INIT, SOURCE_INITS, Hparams
from diit_tf.simulation.methods import make_method, parse_methods
from diit_tf.simulation.training import auc, logloss, predict_logits


def default_log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclasses.dataclass
class SimulationResult:
    dataset: str
    backbone: str
    target_domain: str
    seeds: list
    methods: list
    periods: list
    insertion_period: int
    records: list        # {"seed", "method", "period" (evaluated), "auc", "logloss", "infer_seconds"}
    train_seconds: list  # {"seed", "method", "period" (trained), "seconds", "cpu_seconds", "first"}, periods >= p0
    events: list         # (seed, kind, who, period): kind "train" (a read of that period's rows) or "eval"
    hparams: dict
    notes: dict

    @property
    def periods_evaluated(self) -> list:
        return sorted({r["period"] for r in self.records})


def resolve_insertion_period(periods, insertion_period=None) -> int:
    """Default p0: the period after the first third of the periods (at least the 2nd when there are >= 3)."""
    periods = sorted(periods)
    if len(periods) < 2:
        raise ValueError(f"a simulation needs at least 2 periods (train on one, evaluate on the next). "
                         f"Received: {periods}")
    if insertion_period is None:
        insertion_period = periods[min(max(len(periods) // 3, 1 if len(periods) >= 3 else 0), len(periods) - 2)]
    if insertion_period not in periods[:-1]:
        raise ValueError(f"--insertion-period should be one of the periods {periods[:-1]} (a later period must "
                         f"remain to evaluate on). Received: {insertion_period}")
    return int(insertion_period)


def _check_rows(store, insertion_period: int, needs_sources: bool) -> None:
    """Stop before any training, naming the periods, rather than in the middle of a run: every period must hold
    target rows (each one trains and scores the target models), and a transfer method needs a source with rows
    in some period through the insertion period (a source without rows there is left out of the teachers)."""
    empty = [p for p in store.periods if len(store.get(p).domain(store.spec.target)) == 0]
    if empty:
        raise ValueError(f"the target domain {store.spec.target!r} has no rows in period(s) {empty}: every period "
                         f"trains and scores the target models. Merge periods when building the dataset (e.g. "
                         f"--days-per-period) or use a target with rows in every period")
    early = [p for p in store.periods if p <= insertion_period]
    if needs_sources and all((store.get(p).domains == store.spec.target).all() for p in early):
        raise ValueError(f"no source domain has rows in periods {early} (through the insertion period "
                         f"{insertion_period}): the transfer methods need at least one source model")


def few_target_rows(store, batch_size: int) -> dict:
    """The training periods (all but the last) where the target domain has fewer training rows
    (`store.train_rows`) than one batch: `{period: rows}`. There every method takes one optimizer step per epoch,
    so the methods can barely differ."""
    target = store.spec.target
    rows = {p: len(store.train_rows(p).domain(target)) for p in store.periods[:-1]}
    return {p: n for p, n in rows.items() if n < batch_size}


def few_rows_warning(target: str, rows: dict, batch_size: int) -> str:
    """What the run log and the report say about `few_target_rows`' periods (`rows`: `{period: rows}`)."""
    periods = ", ".join(f"{p} ({n} rows)" for p, n in sorted(rows.items()))
    return (f"the target domain {target!r} has fewer training rows than one batch (training.batch_size "
            f"{batch_size}) in period(s) {periods}: every method trains one optimizer step per epoch there, so "
            f"the methods' AUCs can agree to 4 decimals. For several steps per period pass a --batch-size below "
            f"{min(rows.values())} (or set training.batch_size in the --hparams file)")


def source_quality(ctx, target) -> dict:
    """Each source's frozen model of this period scored on the target's labelled rows of the same period (rows
    every method trains on): `{source: AUC}`. The ground truth a gate's ranking is compared with."""
    return {source: round(auc(target.labels, predict_logits(model, target.features)), 5)
            for source, model in zip(ctx.sources.names, ctx.sources.latest())}


def best_source_start(ctx, quality: dict) -> list:
    """`training.student_init = "best_source"`: the weights of the latest source model with the best AUC on the
    target's labelled rows of the insertion period (`quality`, from `source_quality`; the first on a tie), where
    every transfer method's target model then starts instead of the base's. `"best_source_embeddings"`: the base's
    weights of then (`ctx.base_snapshot`) with that source's embedding tables in place of the base's. Logged and kept
    in `ctx.student_start_note`."""
    names = list(ctx.sources.names)
    init = ctx.hparams.student_init
    # the first on a tie, an undefined AUC (one class only) as chance: kd_best_single's rule
    best = int(np.argmax(static_weights([quality[n] - 0.5 for n in names], "best")))
    source = ctx.sources.latest()[best]
    ctx.student_start_note = {"from": names[best], "auc_on_target_rows": quality, "init": init}
    ctx.log(f"[seed {ctx.seed}] transfer methods start from source {names[best]!r}'s {COPIED_BY_INIT[init]} (AUC on the target's "
            f"rows of period {ctx.insertion_period}: {quality[names[best]]:.4f}; training.student_init={init})")
    weights = source.get_weights()
    if init == "best_source":
        return weights
    start = list(ctx.base_snapshot)
    for i in embedding_positions(source):
        if start[i].shape != weights[i].shape:
            raise ValueError(f"training.student_init={init}: source {names[best]!r}'s embedding table "
                             f"{source.weights[i].path} has shape {weights[i].shape}, the target model's "
                             f"{start[i].shape}: the sources need the target's backbone options")
        start[i] = weights[i]
    return start


def routing_ceiling(ctx, data, groups) -> dict:
    """What routing the frozen sources row by row could give at best, on one period's scored target rows split into
    groups named after the source that is relevant there (a benchmark's ground truth, e.g. the regions of
    `synthetic-regional-experts`): each source's AUC in each group, and the AUC of two fixed teachers, the sources'
    mean logit (`uniform`) and the `oracle` that gives each row the logit of the source its group is named after
    (rows of other groups: the mean). An oracle teacher that predicts the target worse than the base leaves a gate
    little to gain by routing (a heuristic, not a bound: the student also learns from its own labels). A group with
    one class only has AUC NaN."""
    logits = np.stack([predict_logits(m, data.features) for m in ctx.sources.latest()], axis=1)  # (n, K)
    return routing_scores(ctx.sources.names, logits, data.labels, groups)


def routing_scores(names, logits, labels, groups) -> dict:
    """`routing_ceiling` from the sources' logits on the rows, `(n, K)` in the order of `names`."""
    groups = np.asarray(groups)
    labels = np.asarray(labels)
    mean = logits.mean(axis=1)
    oracle = mean.copy()
    for k, name in enumerate(names):
        oracle[groups == name] = logits[groups == name, k]

    def score(rows, z):
        return round(auc(labels[rows], z), 5) if len(np.unique(labels[rows])) == 2 else float("nan")

    every = np.ones(len(labels), bool)
    return {"by_group": {str(g): {s: score(groups == g, logits[groups == g, k])
                                  for k, s in enumerate(names)} for g in np.unique(groups)},
            "uniform": score(every, mean), "oracle": score(every, oracle)}


def _mean_by_group(weights, groups) -> dict:
    groups = np.asarray(groups)
    return {str(g): [round(float(w), 5) for w in weights[groups == g].mean(axis=0)] for g in np.unique(groups)}


def run_simulation(store, backbone="dnn", methods="all", seeds=(0,), hparams=None, insertion_period=None,
                   dataset_name="", log=default_log, source_cache=None, row_groups=None) -> SimulationResult:
    """Run the protocol on `store` (a `PeriodStore`) for every seed and method. See the module docstring.

    `row_groups(period_data) -> array of group names`, if given, splits each gated method's gate weights on the
    evaluated target rows by group (e.g. the regions of a benchmark whose ground truth says which source is
    relevant where): `notes["gate_by_group"][method][seed][period][group] = [mean weight of source k]`."""
    hparams = hparams if isinstance(hparams, Hparams) else Hparams(hparams or {})
    names = parse_methods(methods)
    periods = store.periods
    p0 = resolve_insertion_period(periods, insertion_period or hparams.insertion_period)
    spec = store.spec
    _check_rows(store, p0, any(make_method(name).needs_sources for name in names))
    log(f"simulation: dataset {dataset_name or '?'}, backbone {backbone}, target {spec.target!r}, sources "
        f"{spec.sources}, periods {periods[0]}..{periods[-1]}, insertion at {p0} (evaluated on "
        f"{[p + 1 for p in periods[:-1] if p >= p0]}), {len(seeds)} seed(s), methods {', '.join(names)}; "
        f"{hparams.epochs} epoch(s)/period, batch {hparams.batch_size}")
    run = _Collected()
    few = few_target_rows(store, hparams.batch_size)
    if few:  # a warning only: the results are what they are
        warning = few_rows_warning(spec.target, few, hparams.batch_size)
        log(f"warning: {warning}")
        run.note({"batch_size": hparams.batch_size, "rows": {str(p): n for p, n in few.items()},
                  "warning": warning}, "few_target_rows")
    run_start = time.perf_counter()
    for seed in seeds:
        keras.utils.set_random_seed(int(seed))
        ctx = SeedContext(store, backbone, hparams, seed, p0, log=log, source_cache=source_cache)
        _run_seed(run, ctx, [make_method(name) for name in names], row_groups, log)
        keras.backend.clear_session()
    log(f"simulation finished in {time.perf_counter() - run_start:.1f}s")
    return SimulationResult(
        dataset=dataset_name, backbone=backbone, target_domain=spec.target, seeds=[int(s) for s in seeds],
        methods=names, periods=list(periods), insertion_period=p0, records=run.records,
        train_seconds=run.train_seconds, events=run.events, hparams=hparams.to_dict(), notes=run.notes)


@dataclasses.dataclass
class _Collected:
    """What a run collects over seeds: evaluation records, training times, data-access events, notes."""

    records: list = dataclasses.field(default_factory=list)
    train_seconds: list = dataclasses.field(default_factory=list)
    events: list = dataclasses.field(default_factory=list)
    notes: dict = dataclasses.field(default_factory=dict)

    def note(self, value, *keys) -> None:
        """`notes[k1][k2]...[kn] = value`, creating the levels."""
        level = self.notes
        for key in keys[:-1]:
            level = level.setdefault(key, {})
        level[keys[-1]] = value


@contextlib.contextmanager
def isolated_draws():
    """Random draws inside leave every later draw as it would have been: Python's and NumPy's global generators and
    Keras' global seed generator are restored on exit (Keras initializers seed themselves from Python's `random`,
    unseeded random ops from the global seed generator). So a model built for one purpose does not change the
    initial weights of the methods set up after it."""
    from keras.src.random.seed_generator import global_seed_generator  # Keras 3's one global generator

    py, npy = random.getstate(), np.random.get_state()
    generator = global_seed_generator()
    state = generator.state.numpy()
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
        generator.state.assign(state)


class JointStart:
    """`training.student_init = "joint_embeddings"`: a multi-domain model (`joint`'s architecture and training),
    trained on every domain's rows from the first period through the insertion period for this start alone; at the
    insertion period every transfer method's target model takes the base's weights of then with this model's
    embedding tables (`FeatureEmbedding`, matched by weight path; the domain's own table has no counterpart). Its
    reads are logged as `student_init`'s; its training time is kept apart from every method's."""

    def __init__(self, ctx):
        self.joint = make_method("joint")
        self.joint.name = "student_init"
        with isolated_draws():  # every method's draws stay those of a run from the base's start
            self.joint.setup(ctx)
        self.seconds = 0.0

    def train(self, ctx, period: int) -> None:
        start = time.perf_counter()
        with isolated_draws():
            self.joint.train_period(ctx, period)
        self.seconds += time.perf_counter() - start

    def start(self, ctx, target_model) -> list:
        """The base's snapshot with the joint model's tables in place of `target_model`'s (same positions)."""
        try:
            tables = tables_by_path(self.joint.model.backbone, target_model, "the joint model")
        except ValueError as err:
            raise ValueError(f"training.student_init=joint_embeddings: {err}") from None
        start = list(ctx.base_snapshot)
        for i, table in tables.items():
            start[i] = table
        copied = [target_model.weights[i].path for i in tables]
        ctx.student_start_note = {"from": "joint", "init": "joint_embeddings", "tables": copied,
                                  "trained_through": int(ctx.insertion_period), "seconds": round(self.seconds, 2)}
        ctx.log(f"[seed {ctx.seed}] transfer methods start from the embedding tables of a joint model trained on "
                f"every domain's rows through period {ctx.insertion_period} ({self.seconds:.1f}s; "
                f"training.student_init=joint_embeddings)")
        return start


def _run_seed(run: _Collected, ctx: SeedContext, instances: list, row_groups, log) -> None:
    """One seed: every period trains the methods (the sources first), and from the insertion period on each
    trained method is scored on the next period's target rows."""
    p0, seed, store = ctx.insertion_period, str(ctx.seed), ctx.store
    base = next(m for m in instances if m.name == "base")
    starting = any(m.starts_at_insertion or m.student_at_insertion for m in instances)
    from_source = starting and ctx.hparams.student_init in SOURCE_INITS
    from_joint = JointStart(ctx) if starting and ctx.hparams.student_init == "joint_embeddings" else None
    needs_sources = from_source or any(m.needs_sources for m in instances)
    started = set()
    for method in instances:
        if not method.starts_at_insertion:
            method.setup(ctx)
            started.add(method.name)
    train_periods = store.periods[:-1]
    for step, p in enumerate(train_periods):
        period_start = time.perf_counter()
        if p == p0:
            ctx.base_snapshot = base.serving_model.get_weights()
        if from_joint is not None and p <= p0:
            from_joint.train(ctx, p)
            if p == p0:
                ctx.student_start = from_joint.start(ctx, base.serving_model)
                run.note(ctx.student_start_note, "student_init", seed, str(p))
        if needs_sources:
            ctx.sources.train(p)
            if p >= p0:
                quality = source_quality(ctx, store.get(p).domain(store.spec.target))
                run.note(quality, "source_quality", seed, str(p))
                if p == p0 and from_source:
                    ctx.student_start = best_source_start(ctx, quality)
                    run.note(ctx.student_start_note, "student_init", seed, str(p))
            if p >= p0 and row_groups is not None:
                scored = store.get(p + 1).domain(store.spec.target)
                run.note(routing_ceiling(ctx, scored, row_groups(scored)), "routing", seed, str(p + 1))
        _train_period(run, ctx, instances, p, started)
        line = f"[seed {seed}] period {p} ({step + 1}/{len(train_periods)}) trained in " \
               f"{time.perf_counter() - period_start:.1f}s"
        if p >= p0:
            line += "; target AUC on period " + _evaluate_period(run, ctx, instances, p + 1, row_groups)
        log(line)
    for method in instances:
        if hasattr(method, "selection"):
            run.note(method.selection, method.name, seed)
    if needs_sources:
        run.note(ctx.sources.record(), "sources", seed)


def _train_period(run: _Collected, ctx: SeedContext, instances: list, p: int, started: set) -> None:
    """Each method's training on period `p`, timed (wall and CPU seconds), with its last-step diagnostics."""
    for method in instances:
        if method.starts_at_insertion and p < ctx.insertion_period:
            continue
        if method.name not in started:
            method.setup(ctx)
            started.add(method.name)
        t0, c0 = time.perf_counter(), time.process_time()
        method.train_period(ctx, p)
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - c0  # CPU seconds of all threads: less sensitive to other processes
        history = getattr(method, "last_history", None)
        if history:  # the last step's losses (DIIT: and mean gate weights), per period
            run.note({k: round(v, 5) for k, v in history.items()}, "training_diagnostics", method.name,
                     str(ctx.seed), str(p))
        if p >= ctx.insertion_period:
            run.train_seconds.append({"seed": int(ctx.seed), "method": method.name, "period": int(p),
                                      "seconds": seconds, "cpu_seconds": cpu, "first": p == ctx.insertion_period})
    for who, period in ctx.access:
        run.events.append((int(ctx.seed), "train", who, int(period)))
    ctx.access.clear()


def _evaluate_period(run: _Collected, ctx: SeedContext, instances: list, q: int, row_groups) -> str:
    """Score every method on period `q`'s target rows (records AUC, LogLoss, inference time); returns the log text."""
    data = ctx.store.get(q).domain(ctx.store.spec.target)
    scores = []
    for method in instances:
        t0 = time.perf_counter()
        z = method.logits(data)
        infer = time.perf_counter() - t0
        run.events.append((int(ctx.seed), "eval", method.name, int(q)))
        record = {"seed": int(ctx.seed), "method": method.name, "period": int(q), "auc": auc(data.labels, z),
                  "logloss": logloss(data.labels, z), "infer_seconds": infer}
        run.records.append(record)
        scores.append(f"{method.name} {record['auc']:.4f}")
        if row_groups is not None and hasattr(method, "gate_weights"):
            run.note(_mean_by_group(method.gate_weights(data), row_groups(data)), "gate_by_group", method.name,
                     str(ctx.seed), str(q))
    return f"{q}: " + ", ".join(scores)


def summarize(result: SimulationResult) -> dict:
    """Per method: mean/spread over seeds of the mean (over evaluated periods) target AUC and LogLoss, relative
    AUC lift over base (mean over seeds and periods of `auc/auc_base - 1`), training seconds per period."""
    out = {}
    by = {}
    for r in result.records:
        by.setdefault(r["method"], {}).setdefault(r["seed"], {})[r["period"]] = r
    base = by.get("base", {})
    seeds = result.seeds
    for name in result.methods:
        per_seed_auc, per_seed_ll, per_seed_lift, per_seed_infer = [], [], [], []
        for s in seeds:
            rows = by.get(name, {}).get(s, {})
            periods = sorted(rows)
            per_seed_auc.append(float(np.mean([rows[p]["auc"] for p in periods])))
            per_seed_ll.append(float(np.mean([rows[p]["logloss"] for p in periods])))
            per_seed_lift.append(float(np.mean([rows[p]["auc"] / base[s][p]["auc"] - 1.0 for p in periods])))
            per_seed_infer.append(float(np.mean([rows[p]["infer_seconds"] for p in periods])))
        # Steady-state cost: the insertion period also pays for tracing the train step (once per process), so
        # it is left out whenever later periods exist.
        timed = [t for t in result.train_seconds if t["method"] == name]
        secs = [t["seconds"] for t in timed if not t.get("first")] or [t["seconds"] for t in timed]
        ddof = 1 if len(seeds) > 1 else 0
        out[name] = {
            "auc_mean": float(np.mean(per_seed_auc)),
            "auc_std": float(np.std(per_seed_auc, ddof=ddof)),
            "logloss_mean": float(np.mean(per_seed_ll)),
            "logloss_std": float(np.std(per_seed_ll, ddof=ddof)),
            "rel_auc_lift_vs_base": float(np.mean(per_seed_lift)),
            "rel_auc_lift_std": float(np.std(per_seed_lift, ddof=ddof)),
            "per_seed_auc": per_seed_auc,
            "train_seconds_per_period": float(np.mean(secs)) if secs else float("nan"),
            "infer_seconds_per_period": float(np.mean(per_seed_infer)),
        }
    return out
