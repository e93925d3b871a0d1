"""What one seed of a simulation shares between methods: the data (with an access log), the source models
(trained once per seed and period), the base's weights at insertion, and the hyperparameters.

Every read of a period's rows for training goes through `SeedContext.rows(period, who)`, which records
`(who, period)`; evaluation reads are recorded separately by the protocol. The protocol tests check this log.
"""
from __future__ import annotations

import time

from diit_tf import _quiet  # noqa: F401
import keras

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
    """

    def __init__(self, data_dir=None, spec=None, loader=None, periods=None):
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
        self.spec = spec
        self.periods = sorted(int(p) for p in periods)
        self._loader = loader
        self._cache = {}

    def get(self, period: int):
        if period not in self.periods:
            raise ValueError(f"period {period} is not in this dataset (periods: {self.periods})")
        if period not in self._cache:
            self._cache[period] = self._loader(period)
        return self._cache[period]


class DomainModel:
    """One domain's own CTR model, trained incrementally (`diit_tf.ctr.PeriodTrainer`: each period starts from the
    previous weights with a fresh optimizer) on `epochs` passes over the given in-memory rows."""

    def __init__(self, backbone: keras.Model, learning_rate: float):
        self.backbone = backbone
        self.period_trainer = PeriodTrainer(backbone, learning_rate, steps_per_execution=STEPS_PER_EXECUTION)

    def fit(self, features, labels, epochs: int, batch_size: int, seed: int) -> None:
        self.period_trainer.fit(labelled_dataset(features, labels, batch_size, seed, epochs=epochs), epochs=1)


class SourceZoo:
    """The source domains' models of one seed: trained once per period and shared by every method (frozen copies
    are what methods use)."""

    def __init__(self, ctx: "SeedContext"):
        self.ctx = ctx
        self.models = {d: DomainModel(ctx.new_backbone(f"source_{i}"), ctx.hparams.learning_rate("base"))
                       for i, d in enumerate(ctx.spec.sources)}
        self.trained_through = None
        self.seconds = {}

    def train(self, period: int) -> None:
        start = time.perf_counter()
        rows = self.ctx.rows(period, "sources")
        for i, (domain, model) in enumerate(self.models.items()):
            part = rows.domain(domain)
            model.fit(part.features, part.labels, self.ctx.hparams.epochs, self.ctx.hparams.batch_size,
                      self.ctx.seed * 1000 + period * 10 + i)
        self.trained_through = period
        self.seconds[period] = time.perf_counter() - start

    def latest(self) -> list:
        """The latest source backbones, in `spec.sources` order."""
        return [m.backbone for m in self.models.values()]


class SeedContext:
    """Everything one seed's methods share."""

    def __init__(self, store: PeriodStore, backbone: str, hparams, seed: int, insertion_period: int, log=None):
        self.store = store
        self.spec = store.spec
        self.backbone = backbone
        self.hparams = hparams
        self.seed = int(seed)
        self.insertion_period = int(insertion_period)
        self.log = log or (lambda line: None)
        self.access = []  # (who, period) of every training read
        self.base_snapshot = None
        self.sources = SourceZoo(self)

    def new_backbone(self, name: str) -> keras.Model:
        return build_backbone(self.backbone, self.spec, name=name, **self.hparams.backbone_options)

    def rows(self, period: int, who: str):
        """Period `period`'s rows (all domains) for training by `who`; the read is logged."""
        self.access.append((who, int(period)))
        return self.store.get(period)

    def target_rows(self, period: int, who: str):
        return self.rows(period, who).domain(self.spec.target)

    def fit_seed(self, period: int, salt: int = 0) -> int:
        return self.seed * 1000 + period * 10 + 7 + salt
