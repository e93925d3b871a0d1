"""What one seed of a simulation shares between methods: the data (with an access log), the source models
(trained once per seed and period), the base's weights at insertion, and the hyperparameters.

Every read of a period's rows for training goes through `SeedContext.rows(period, who)`, which records
`(who, period)`; evaluation reads are recorded separately by the protocol. The protocol tests check this log.
"""
from __future__ import annotations

import time

import keras
import numpy as np

from diit_tf.backbones import build_backbone
from diit_tf.ctr import PeriodTrainer
from diit_tf.simulation.training import STEPS_PER_EXECUTION, labelled_dataset


class PeriodStore:
    """Periods of one dataset, loaded once (through `diit_tf.data.load_period`) and cached.

    Args:
      data_dir: a dataset in the span layout, or None when `loader` is given.
      spec: the FeatureSpec (default: the dataset's).
      loader: optional `loader(period) -> PeriodData` (tests).
      periods: the period numbers to use (default: all spans of the dataset).
      train_share: the share of each period's rows the models train on (`train_rows`), as a pipeline trains on the
        train split of each span; evaluation always reads every row (`get`).
    """

    def __init__(self, data_dir=None, spec=None, loader=None, periods=None, train_share: float = 1.0):
        from diit_tf.data import list_spans, load_period, load_spec

        if loader is None:
            if data_dir is None:
                raise ValueError("PeriodStore needs a `data_dir` or a `loader`")
            spec = spec or load_spec(data_dir)
            loader = lambda p: load_period(data_dir, p, spec)  # noqa: E731
            periods = periods or list_spans(data_dir)
        if spec is None or not periods:
            raise ValueError("PeriodStore needs a spec and a non-empty list of periods")
        if not spec.target or spec.target not in spec.domains:
            raise ValueError(f"the dataset's FeatureSpec has no valid target domain: target={spec.target!r}, "
                             f"domains={list(spec.domains)}")
        if len(spec.sources) < 1:
            raise ValueError(f"the dataset needs at least one source domain besides the target {spec.target!r}")
        if not 0.0 < train_share <= 1.0:
            raise ValueError(f"`train_share` should be in (0, 1]. Received: {train_share!r}")
        self.spec = spec
        self.periods = sorted(int(p) for p in periods)
        self.train_share = float(train_share)
        self._loader = loader
        self._cache = {}
        self._train_cache = {}

    def get(self, period: int):
        if period not in self.periods:
            raise ValueError(f"period {period} is not in this dataset (periods: {self.periods})")
        if period not in self._cache:
            self._cache[period] = self._loader(period)
        return self._cache[period]

    def train_rows(self, period: int):
        """The rows models train on in `period`: all of them, or a fixed random `train_share` of them, the same for
        every seed and method (like a pipeline's hash split of the span)."""
        rows = self.get(period)
        if self.train_share >= 1.0:
            return rows
        if period not in self._train_cache:
            keep = np.random.default_rng(period).random(len(rows)) < self.train_share
            self._train_cache[period] = rows.subset(keep)
        return self._train_cache[period]


class DomainModel:
    """One domain's own CTR model, trained incrementally (`diit_tf.ctr.PeriodTrainer`: each period starts from the
    previous weights with a fresh optimizer) on `epochs` passes over the given in-memory rows."""

    def __init__(self, backbone: keras.Model, learning_rate: float):
        self.backbone = backbone
        self.period_trainer = PeriodTrainer(backbone, learning_rate, steps_per_execution=STEPS_PER_EXECUTION)

    def fit(self, features, labels, epochs: int, batch_size: int, seed: int) -> dict:
        """Returns the period's training losses (`{"loss": mean over the period}`)."""
        history = self.period_trainer.fit(labelled_dataset(features, labels, batch_size, seed, epochs=epochs),
                                          epochs=1)
        return {k: float(v[-1]) for k, v in history.history.items()}


class SourceZoo:
    """The source domains' models of one seed: trained once per period and shared by every method (frozen copies
    are what methods use).

    A source with no rows in a period keeps its previous model. The teachers are the sources that have a model the
    first time they are asked for (`latest()` / `names`, at the insertion period); a source without a model then is
    left out, and one whose first model comes later is logged and not added, so every method keeps the same
    teachers in every period. `record()` says which sources were empty, left out or late.
    """

    def __init__(self, ctx: "SeedContext"):
        self.ctx = ctx
        self.models = {d: DomainModel(ctx.new_backbone(f"source_{i}"), ctx.hparams.learning_rate("base"))
                       for i, d in enumerate(ctx.spec.sources)}
        self.trained_through = None
        self.seconds = {}
        self.last_trained = {}  # source -> last period it trained on
        self.empty = {}         # period -> sources without rows
        self.teachers = None    # the teacher sources, fixed when first asked for
        self.late = {}          # source -> period of its first model, for sources left out of the teachers

    def train(self, period: int) -> None:
        start = time.perf_counter()
        rows = self.ctx.rows(period, "sources")
        for i, (domain, model) in enumerate(self.models.items()):
            part = rows.domain(domain)
            if len(part) == 0:
                self.empty.setdefault(period, []).append(domain)
                kept = self.last_trained.get(domain)
                self.ctx.log(f"[seed {self.ctx.seed}] period {period}: source {domain!r} has no rows: "
                             + (f"keeps its model of period {kept}" if kept is not None else "no model yet"))
                continue
            cache = self.ctx.source_cache
            if cache is None or not cache.load(model.backbone, self.ctx.seed, period, domain):
                model.fit(part.features, part.labels, self.ctx.hparams.epochs, self.ctx.hparams.batch_size,
                          self.ctx.seed * 1000 + period * 10 + i)
                if cache is not None:
                    cache.save(model.backbone, self.ctx.seed, period, domain)
            if domain not in self.last_trained and self.teachers is not None:
                self.late[domain] = period
                self.ctx.log(f"[seed {self.ctx.seed}] period {period}: source {domain!r} has its first model; it "
                             f"is not added to the teachers chosen before ({', '.join(self.teachers)})")
            self.last_trained[domain] = period
        self.trained_through = period
        self.seconds[period] = time.perf_counter() - start

    @property
    def names(self) -> list:
        """The teacher sources, in `spec.sources` order (fixed the first time they are asked for)."""
        if self.teachers is None:
            self.teachers = [d for d in self.models if d in self.last_trained]
            left_out = [d for d in self.models if d not in self.last_trained]
            if not self.teachers:
                raise ValueError(f"no source domain has rows in any period through {self.trained_through}: the "
                                 f"transfer methods need at least one source model (sources: {list(self.models)})")
            if left_out:
                self.ctx.log(f"[seed {self.ctx.seed}] teachers from period {self.trained_through} on: "
                             f"{', '.join(self.teachers)}; left out (no rows yet): {', '.join(left_out)}")
        return self.teachers

    def latest(self) -> list:
        """The teachers' latest backbones, in `names` order."""
        return [self.models[d].backbone for d in self.names]

    def record(self) -> dict:
        """What happened to the sources: teachers, sources left out, empty periods, late first models."""
        return {"teachers": list(self.teachers or []),
                "left_out": [d for d in self.models if self.teachers is not None and d not in self.teachers],
                "empty_periods": {str(p): names for p, names in sorted(self.empty.items())},
                "first_model_after_teachers_chosen": dict(self.late)}


class SeedContext:
    """Everything one seed's methods share."""

    def __init__(self, store: PeriodStore, backbone: str, hparams, seed: int, insertion_period: int, log=None,
                 source_cache=None):
        self.store = store
        self.spec = store.spec
        self.backbone = backbone
        self.hparams = hparams
        self.seed = int(seed)
        self.insertion_period = int(insertion_period)
        self.log = log or (lambda line: None)
        self.access = []  # (who, period) of every training read
        self.base_snapshot = None  # the base's weights at the insertion period
        self.student_start = None  # where transfer methods start instead (`training.student_init`), if not there
        self.student_start_note = None
        self.source_cache = source_cache  # a SourceCache, or None (train every source)
        self.sources = SourceZoo(self)

    def new_backbone(self, name: str) -> keras.Model:
        return build_backbone(self.backbone, self.spec, name=name, **self.hparams.backbone_options)

    def rows(self, period: int, who: str):
        """Period `period`'s rows (all domains) for training by `who`; the read is logged."""
        self.access.append((who, int(period)))
        return self.store.train_rows(period)

    def target_rows(self, period: int, who: str):
        return self.rows(period, who).domain(self.spec.target)

    def fit_seed(self, period: int, salt: int = 0) -> int:
        return self.seed * 1000 + period * 10 + 7 + salt
