"""The embedded synthetic cross-domain CTR dataset: deterministic by seed, sized for quick simulations.

Ground truth. Users and items live in global pools; each belongs to a random subset of domains (`overlap`), so
source domains see many of the target's users and items. In domain `d`, the click logit of user `u` on item `i` is

    logit = signal * ( sqrt(w) * [<U_u, V_i>/sqrt(k) + b_u + b_i + g_grp + c_cat]            # shared part
                     + sqrt(1-w) * [<U_u^d, V_i^d>/sqrt(k) + b_u^d + b_i^d + g_grp^d + c_cat^d]  # domain part
                     + numeric_effect * freshness ) + bias_d

with `w = shared_weight`. Every latent factor is standard normal (biases are scaled down) and drifts from period
to period as a stationary random walk, `x_p = sqrt(1 - drift^2) x_{p-1} + drift * noise`. `bias_d` is set so the
domain's CTR in period 1 is `ctr`. The label is Bernoulli(sigmoid(logit)).

Why transfer helps without being trivial: the target domain is small (with the defaults, ~1 row per item per
period), so a target-only model is data-starved; the shared part is learnable from the large sources, but the
domain part (weight `1 - w`) is only learnable from the target, and naive pooling mixes in the sources' own domain
parts as noise. Check with the defaults, seed 0 (DNN 64-32, embeddings 8, warm-started, 2 epochs per period,
target AUC on period p+1 averaged over p = 3..7): target-only 0.722, pooled all-domain 0.730, pooled with a domain
embedding 0.732; the true click probabilities reach ~0.88, so there is room left for better transfer.

Sources of unequal relevance. By default every domain uses the same `w`. `shared_weights` gives each source its
own weight `w_k` (the target keeps `shared_weight`), and `source_categories` restricts each source's sharing to a
set of item categories: on an item of category `c`, source `k` uses `w_k(c) = w_k` if `c` is in its set, else 0
(the source's click function is then its own part alone, unrelated to the target's). The correlation of source
`k`'s latent click function with the target's is `sqrt(w_k(c) * w_target)` (the common `freshness` term aside).
With either knob set, the ground truth also holds each source's true click function scored on the target's rows
(its AUC against the target's labels and its correlation with the target's true logit, per period and per region
of item categories); without them the output is exactly what it always was. `BENCHMARKS` names two frozen
settings (see docs/benchmarks.md): `unequal-sources` and `regional-experts`.

Example:
  >>> config = SyntheticConfig(seed=0, periods=4)
  >>> spec, spans, truth = generate(config)        # spans: list of DataFrames (raw columns), truth: dict
  >>> build_synthetic("data/synthetic", config)    # writes the span layout (see layout.py)
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np
import pandas as pd

from diit_tf.data.convert import buckets_for
from diit_tf.data.layout import DatasetWriter, progress

TARGET = "target"
# Raised whenever the generator writes different rows for the same `SyntheticConfig` (recorded in metadata.json, so
# a cached dataset built by an older generator is rebuilt; tests/diit_tf/data/test_synthetic.py pins the output).
GENERATOR_VERSION = 2


def source_names(count: int) -> list:
    """`source_a`, `source_b`, ... (then `source_aa` ... past 26)."""
    names = []
    for i in range(count):
        letters, j = "", i
        while True:
            letters = chr(ord("a") + j % 26) + letters
            j = j // 26 - 1
            if j < 0:
                break
        names.append(f"source_{letters}")
    return names


def category_ranges(sets) -> str:
    """`((0, 1, 2, 5), (7,))` -> `'0-2,5;7'`: sets of item categories as `--source-categories` writes them (runs of
    consecutive categories as ranges), so a long set reads in one short line."""
    parts = []
    for cats in sets:
        cats, runs = sorted(set(cats)), []
        for c in cats:
            if runs and c == runs[-1][1] + 1:
                runs[-1][1] = c
            else:
                runs.append([c, c])
        parts.append(",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs))
    return ";".join(parts)

@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the synthetic generator (the CLI flags of `diit data synthetic`).

    Args:
      seed: everything is a deterministic function of the seed and these knobs.
      periods: number of periods (spans).
      rows_target: target rows per period (the target is the smallest domain).
      rows_source: rows per period of each source domain; its length is the number of sources.
      users, items: sizes of the global user and item pools.
      user_groups, item_categories: cardinalities of the side features `user_group`, `item_category`.
      dim: latent dimension k.
      shared_weight: w in [0, 1], the share of logit variance common to all domains.
      drift: per-period random-walk step of every latent factor, in [0, 1).
      overlap: probability that a user/item belongs to a domain it is not home to.
      signal: scale of the logit (higher: more predictable labels).
      ctr: click rate of each domain in period 1.
      numeric_effect: coefficient of the numeric feature `freshness` (uniform in [0, 1]) on the logit.
      shared_weights: one shared weight per source (the target keeps `shared_weight`); empty: every source uses
        `shared_weight`.
      source_categories: one set of item categories per source, on which alone it shares the target's click
        function (shared weight 0 elsewhere); empty: every source shares on every category.
    """

    seed: int = 0
    periods: int = 8
    rows_target: int = 3000
    rows_source: tuple = (15000, 12000)
    users: int = 1000
    items: int = 3000
    user_groups: int = 16
    item_categories: int = 32
    dim: int = 4
    shared_weight: float = 0.85
    drift: float = 0.05
    overlap: float = 0.7
    signal: float = 1.6
    ctr: float = 0.3
    numeric_effect: float = -0.8
    shared_weights: tuple = ()
    source_categories: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "rows_source", tuple(int(r) for r in self.rows_source))
        object.__setattr__(self, "shared_weights", tuple(float(w) for w in self.shared_weights))
        object.__setattr__(self, "source_categories",
                           tuple(tuple(sorted({int(c) for c in cats})) for cats in self.source_categories))
        n = len(self.rows_source)
        checks = [
            ("periods", self.periods >= 1, "a positive integer"),
            ("rows_target", self.rows_target >= 1, "a positive integer"),
            ("rows_source", len(self.rows_source) >= 1 and min(self.rows_source) >= 1,
             "one or more positive integers"),
            ("users", self.users >= 2, "at least 2"),
            ("items", self.items >= 2, "at least 2"),
            ("user_groups", self.user_groups >= 1, "a positive integer"),
            ("item_categories", self.item_categories >= 1, "a positive integer"),
            ("dim", self.dim >= 1, "a positive integer"),
            ("shared_weight", 0.0 <= self.shared_weight <= 1.0, "in [0, 1]"),
            ("drift", 0.0 <= self.drift < 1.0, "in [0, 1)"),
            ("overlap", 0.0 <= self.overlap <= 1.0, "in [0, 1]"),
            ("signal", self.signal >= 0.0, "non-negative"),
            ("ctr", 0.0 < self.ctr < 1.0, "in (0, 1)"),
            ("shared_weights", not self.shared_weights or (len(self.shared_weights) == n and all(
                0.0 <= w <= 1.0 for w in self.shared_weights)), f"empty or {n} weight(s) in [0, 1], one per source"),
            ("source_categories", not self.source_categories or (len(self.source_categories) == n and all(
                cats and cats[0] >= 0 and cats[-1] < self.item_categories for cats in self.source_categories)),
             f"empty or {n} non-empty set(s) of item categories in [0, {self.item_categories}), one per source"),
        ]
        for name, ok, what in checks:
            if not ok:
                value = getattr(self, name)
                shown = repr(category_ranges(value)) if name == "source_categories" else repr(value)
                raise ValueError(f"`{name}` should be {what}. Received: {shown}")

    @property
    def domains(self) -> list:
        return [TARGET] + source_names(len(self.rows_source))

    @property
    def rows_per_domain(self) -> dict:
        return dict(zip(self.domains, (self.rows_target,) + self.rows_source))

    def spec(self):
        """The FeatureSpec of the generated data."""
        from diit_tf.features import FeatureSpec

        return FeatureSpec(
            categorical={
                "user_id": buckets_for(self.users),
                "item_id": buckets_for(self.items),
                "user_group": buckets_for(self.user_groups),
                "item_category": buckets_for(self.item_categories),
            },
            numeric=("freshness",),
            label="click",
            domain="domain",
            domains=tuple(self.domains),
            target=TARGET,
        )

    @property
    def uniform(self) -> bool:
        """True when every source shares with weight `shared_weight` on every item category."""
        return not self.shared_weights and not self.source_categories

    def source_weights(self) -> np.ndarray:
        """`(sources, item_categories)` array: the shared weight `w_k(c)` of source k on items of category c."""
        n = len(self.rows_source)
        weights = np.array(self.shared_weights or (self.shared_weight,) * n, dtype=np.float64)
        table = np.repeat(weights[:, None], self.item_categories, axis=1)
        for k, cats in enumerate(self.source_categories):
            outside = np.ones(self.item_categories, dtype=bool)
            outside[list(cats)] = False
            table[k, outside] = 0.0
        return table

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["rows_source"] = list(self.rows_source)
        # Recorded only when used, so a build without them records exactly what it always did.
        for name in ("shared_weights", "source_categories"):
            value = getattr(self, name)
            if value:
                d[name] = [list(v) if isinstance(v, tuple) else v for v in value]
            else:
                del d[name]
        return d


class _Factors:
    """Latent factors of one population (users or items): shared + one block per domain, drifting together."""

    def __init__(self, rng, size: int, n_domains: int, dim: int, bias_scale: float, side: np.ndarray, n_side: int):
        self.dim = dim
        self.bias_scale = bias_scale
        self.vec = rng.standard_normal((n_domains + 1, size, dim))  # index 0: shared; 1..D: domain-specific
        self.bias = rng.standard_normal((n_domains + 1, size)) * bias_scale
        self.side_effect = rng.standard_normal((n_domains + 1, n_side)) * 0.4
        self.side = side

    def step(self, rng, drift: float) -> None:
        keep = math.sqrt(1.0 - drift * drift)
        self.vec = keep * self.vec + drift * rng.standard_normal(self.vec.shape)
        self.bias = keep * self.bias + drift * rng.standard_normal(self.bias.shape) * self.bias_scale
        self.side_effect = keep * self.side_effect + drift * rng.standard_normal(self.side_effect.shape) * 0.4


def generate(config: SyntheticConfig, log=None):
    """Return `(spec, spans, truth)`: the FeatureSpec, one DataFrame of raw columns per period (all domains,
    rows shuffled) and ground-truth facts (true click probabilities' AUC on each domain per period)."""
    log = log or (lambda line: None)
    rng = np.random.default_rng(config.seed)
    domains = config.domains
    n_dom = len(domains)
    spec = config.spec()

    user_group = rng.integers(0, config.user_groups, config.users)
    item_category = rng.integers(0, config.item_categories, config.items)
    users = _Factors(rng, config.users, n_dom, config.dim, 0.5, user_group, config.user_groups)
    items = _Factors(rng, config.items, n_dom, config.dim, 0.7, item_category, config.item_categories)

    # Domain membership: a home domain plus each other domain with probability `overlap`.
    def membership(size):
        member = rng.random((n_dom, size)) < config.overlap
        member[rng.integers(0, n_dom, size), np.arange(size)] = True
        return member

    user_member, item_member = membership(config.users), membership(config.items)
    # Activity / popularity: heavy-tailed and shared across domains (a popular item is popular everywhere).
    user_activity = rng.lognormal(0.0, 1.0, config.users)
    item_popularity = 1.0 / np.arange(1, config.items + 1) ** 0.8
    item_popularity = item_popularity[rng.permutation(config.items)]

    source_weights = None if config.uniform else config.source_weights()
    biases = np.zeros(n_dom)
    spans, truth, on_target = [], {"auc_of_true_ctr": {}, "mean_true_ctr": {}}, {}
    for period in range(1, config.periods + 1):
        if period > 1:
            users.step(rng, config.drift)
            items.step(rng, config.drift)
        parts = []
        for d, name in enumerate(domains):
            n = config.rows_per_domain[name]
            u = _draw(rng, n, user_activity, user_member[d])
            i = _draw(rng, n, item_popularity, item_member[d])
            freshness = rng.random(n)
            weight = config.shared_weight if source_weights is None or d == 0 else source_weights[d - 1][
                item_category[i]]
            logit = _logit(config, users, items, d, weight, u, i, freshness)
            if period == 1:
                biases[d] = _calibrate(logit, config.ctr)
            prob = 1.0 / (1.0 + np.exp(-(logit + biases[d])))
            click = (rng.random(n) < prob).astype(np.int64)
            if source_weights is not None and d == 0:
                on_target[str(period)] = _score_sources_on_target(config, users, items, source_weights,
                                                                  item_category[i], u, i, freshness, logit, click)
            truth["auc_of_true_ctr"].setdefault(str(period), {})[name] = round(auc(click, prob), 4)
            truth["mean_true_ctr"].setdefault(str(period), {})[name] = round(float(prob.mean()), 4)
            parts.append(pd.DataFrame({
                "user_id": u, "item_id": i, "user_group": user_group[u], "item_category": item_category[i],
                "freshness": np.round(freshness, 4), "click": click, "domain": name,
            }))
        frame = pd.concat(parts, ignore_index=True)
        frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
        spans.append(frame)
        log(f"  generated period {period}/{config.periods}: {len(frame):,} rows")
    truth["domain_bias"] = {name: round(float(b), 4) for name, b in zip(domains, biases)}
    if source_weights is not None:
        truth["relevance"] = {**relevance_design(config), "on_target_rows": on_target}
    return spec, spans, truth


def _logit(config: SyntheticConfig, users, items, d: int, weight, u, i, freshness) -> np.ndarray:
    """Domain `d`'s logit (before its bias) on rows `(u, i, freshness)`, with shared weight `weight` per row."""
    return config.signal * (
        np.sqrt(weight) * _part(users, items, 0, u, i) + np.sqrt(1.0 - weight) * _part(users, items, d + 1, u, i)
        + config.numeric_effect * (freshness - 0.5)
    )


def regions(config: SyntheticConfig) -> dict:
    """Item categories grouped by which sources share on them: `{region name: [categories]}`, the name being the
    sharing sources joined by `+` (or `none`)."""
    table = config.source_weights()
    names = source_names(len(config.rows_source))
    out = {}
    for c in range(config.item_categories):
        sharing = [names[k] for k in range(len(names)) if table[k, c] > 0.0]
        out.setdefault("+".join(sharing) or "none", []).append(c)
    return out


def relevance_design(config: SyntheticConfig) -> dict:
    """The designed relevance of each source to the target (no data needed)."""
    table = config.source_weights()
    sources = {}
    for k, name in enumerate(source_names(len(config.rows_source))):
        cats = [int(c) for c in np.flatnonzero(table[k] > 0.0)]
        w = float(table[k].max())
        sources[name] = {"shared_weight": w, "shares_on_item_categories": cats,
                         "latent_correlation_with_target": round(math.sqrt(w * config.shared_weight), 4)}
    return {
        "definition": "source k's latent click function = sqrt(w_k(c)) * shared + sqrt(1 - w_k(c)) * own_k on items "
                      "of category c (w_k(c) = shared_weight on its categories, 0 elsewhere); the target's = "
                      "sqrt(w_target) * shared + sqrt(1 - w_target) * own_target; their correlation is "
                      "sqrt(w_k(c) * w_target). on_target_rows: source k's true click function scored on the "
                      "target's rows of each period (AUC against the target's labels, Pearson correlation with the "
                      "target's true logit), overall and per region of item categories.",
        "target_shared_weight": config.shared_weight,
        "sources": sources,
        "regions": regions(config),
    }


def _score_sources_on_target(config, users, items, source_weights, category, u, i, freshness, target_logit,
                             click) -> dict:
    """Each source's true click function scored on the target's rows `(u, i, freshness)`, overall and per region."""
    names = source_names(len(config.rows_source))
    region_of = {c: name for name, cats in regions(config).items() for c in cats}
    row_region = np.array([region_of[c] for c in category])
    record = {}
    for k, name in enumerate(names):
        z = _logit(config, users, items, k + 1, source_weights[k][category], u, i, freshness)
        entry = _agreement(z, target_logit, click)
        entry["by_region"] = {region: {"rows": int((row_region == region).sum()),
                                       **_agreement(z[row_region == region], target_logit[row_region == region],
                                                    click[row_region == region])}
                              for region in sorted(set(region_of.values()))}
        record[name] = entry
    return record


def _agreement(z, target_logit, click) -> dict:
    if len(z) < 2:
        return {"true_auc": None, "logit_correlation": None}
    return {"true_auc": round(auc(click, z), 4),
            "logit_correlation": round(float(np.corrcoef(z, target_logit)[0, 1]), 4)}


def _draw(rng, n: int, weights: np.ndarray, member: np.ndarray) -> np.ndarray:
    ids = np.flatnonzero(member)
    p = weights[ids] / weights[ids].sum()
    return ids[rng.choice(len(ids), size=n, p=p)]


def _part(users: _Factors, items: _Factors, block: int, u: np.ndarray, i: np.ndarray) -> np.ndarray:
    dot = np.einsum("nk,nk->n", users.vec[block][u], items.vec[block][i]) / math.sqrt(users.dim)
    return (dot + users.bias[block][u] + items.bias[block][i]
            + users.side_effect[block][users.side[u]] + items.side_effect[block][items.side[i]])


def _calibrate(logit: np.ndarray, ctr: float) -> float:
    """The bias b with mean(sigmoid(logit + b)) == ctr (bisection; monotone in b)."""
    lo, hi = -30.0, 30.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if np.mean(1.0 / (1.0 + np.exp(-(logit + mid)))) < ctr:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def auc(labels, scores) -> float:
    """ROC AUC by the rank-sum formula (ties get average ranks). NaN if one class is absent."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    pos, neg = labels.sum(), (~labels).sum()
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def build_synthetic(out_dir, config: Optional[SyntheticConfig] = None, overwrite: bool = False, log=None,
                    dataset: str = "synthetic") -> dict:
    """Generate the synthetic dataset and write it in the span layout at `out_dir`. Returns the metadata."""
    config = config or SyntheticConfig()
    log = log or progress
    spec = config.spec()
    with DatasetWriter(out_dir, spec, dataset=dataset, overwrite=overwrite, log=log) as writer:
        log(f"generating synthetic data: {config.periods} periods, rows/period {config.rows_per_domain}, "
            f"seed {config.seed}")
        _, spans, truth = generate(config)
        for n, frame in enumerate(spans, start=1):
            writer.write_span(n, frame)
        return writer.finish(built_with={"generator": "diit_tf.data.synthetic", "generator_version": GENERATOR_VERSION,
                                         **config.to_dict()},
                             bad_rows={}, extra={"ground_truth": truth})


# The two halves of the 32 item categories of the regional-experts benchmark. They are the first and second half
# with 13 and 14 swapped for 19 and 28, so that no hash bucket of the `item_category` feature (64 buckets) holds
# categories of both halves: the model's input then tells the regions apart (FarmHash puts 7, 15, 19 in one bucket
# and 10, 28 in another).
REGION_A = tuple(range(13)) + (15, 19, 28)
REGION_B = tuple(c for c in range(32) if c not in REGION_A)

# The frozen benchmarks of sources of unequal relevance (docs/benchmarks.md gives the reasoning and the checks).
BENCHMARKS = {
    "unequal-sources": SyntheticConfig(rows_source=(12000, 12000, 12000, 12000), shared_weights=(0.9, 0.6, 0.3, 0.0)),
    "regional-experts": SyntheticConfig(rows_source=(12000, 12000), shared_weights=(0.9, 0.9),
                                        source_categories=(REGION_A, REGION_B)),
    # Regional experts that beat the target's own model on their regions: a smaller target (1,000 rows per period)
    # sharing more of its click function (0.95), and sources twice as large that share all of it on their region.
    "strong-regional-experts": SyntheticConfig(rows_target=1000, rows_source=(24000, 24000), shared_weight=0.95,
                                               shared_weights=(1.0, 1.0), source_categories=(REGION_A, REGION_B)),
}
