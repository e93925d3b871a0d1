"""What every trial of a sweep shares: frozen source models, the student's warm start, and the two periods.

The sweep reproduces one step of the period protocol (docs/method.md): for a training period `p`
- every source domain's own model is trained incrementally on periods `1..p` (a fresh Adam each period, warm
  start = weights only), then frozen: these are the teachers, trained **once**, outside the trials;
- the target's base model is trained incrementally on periods `1..p-1`; its weights are every trial's student
  initialisation (DIIT plugged into an existing incremental model, as in `diit simulate`);
- a trial trains DIIT on period `p` (target rows labelled, mix dataset = period `p`'s rows of all domains) and is
  scored on the **target rows of period `p+1`** (`val_auc`), never on the training period.
The base itself, trained one more period (on `p`'s target rows), is scored on the same rows for reference.

The teachers and the student's starting weights are cached under `cache_dir` (keyed by dataset, period and
training settings), so a resumed sweep, a distributed worker and a later comparison reuse them.

This is the tuning package's own small source trainer: `diit_tf/simulation` keeps its source models inside a
running simulation (`SourceZoo`), which a sweep cannot call one period at a time without a whole simulation.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from diit_tf.backbones import build_backbone
from diit_tf.counts import positive_count
from diit_tf.ctr import PeriodTrainer
from diit_tf.simulation.training import STEPS_PER_EXECUTION, labelled_dataset

DEFAULT_BACKBONE_OPTIONS = {"hidden_units": (128, 64), "embedding_dim": 16}


def _log_default(line: str) -> None:
    import sys

    print(line, file=sys.stderr, flush=True)


def default_train_period(periods) -> int:
    """The default training period of a sweep: early enough that the periods a simulation evaluates on later
    stay unseen (half the periods minus two, at least the first), and always with a next period to validate on."""
    periods = sorted(int(p) for p in periods)
    if len(periods) < 2:
        raise ValueError(f"tuning needs at least two periods (train on p, validate on p+1). Received: {periods}")
    candidate = max(periods[0], len(periods) // 2 - 2)
    return min(candidate, periods[-2])


@dataclasses.dataclass
class TuningContext:
    """Everything a trial needs. `teachers` are frozen source backbones (in `spec.sources` order)."""

    spec: object
    backbone: str
    backbone_options: dict
    teachers: list
    student_weights: list
    train: object          # PeriodData: period p, all domains
    validation: object     # PeriodData: period p+1, target rows only
    train_period: int
    validation_period: int
    dataset: str
    base_val_auc: Optional[float] = None

    def base_auc(self, learning_rate: float = 1e-3, epochs: int = 1, batch_size: int = 512, seed: int = 0) -> float:
        """The base (the target's own model, no transfer) trained on period p from the same warm start with
        `learning_rate`, scored on period p+1: the control that tells a DIIT lift from a learning-rate effect."""
        keras.utils.set_random_seed(seed)
        base = self.new_student("base")
        target = self.train.domain(self.spec.target)
        _fit_period(base, target.features, target.labels, epochs, batch_size, learning_rate, seed)
        return target_auc(base, self.validation)

    def new_student(self, name: str = "student") -> keras.Model:
        """A fresh student backbone holding the base's weights of period p-1."""
        student = build_backbone(self.backbone, self.spec, name=name, **self.backbone_options)
        if self.student_weights:
            student.set_weights(self.student_weights)
        return student


def _fit_period(backbone, features, labels, epochs, batch_size, learning_rate, seed):
    """One period of incremental training (`diit_tf.ctr.PeriodTrainer`: warm weights, a fresh Adam), on the same
    in-memory batches as the simulation's domain models."""
    if len(labels) == 0:
        return
    PeriodTrainer(backbone, learning_rate, steps_per_execution=STEPS_PER_EXECUTION).fit(
        labelled_dataset(features, labels, batch_size, seed, epochs=epochs))


def target_auc(backbone, data, batch_size: int = 8192) -> float:
    """AUC of `backbone` on `data` with the same estimator as the sweep's `val_auc` (keras AUC, 1000 thresholds)."""
    metric = keras.metrics.AUC(num_thresholds=1000)
    logits = backbone.predict(dict(data.features), batch_size=batch_size, verbose=0)["logit"]
    metric.update_state(np.asarray(data.labels).reshape(-1, 1), tf.sigmoid(logits))
    return float(metric.result())


# Part of the cache key: bumped whenever per-period training changes, so cached weights trained by other code are
# never reused (2: `_fit_period` runs `diit_tf.ctr.PeriodTrainer` on the simulation's in-memory batches).
_TRAINER_VERSION = 2


def _cache_key(data_dir, train_period, backbone, backbone_options, epochs, batch_size, learning_rate, seed) -> str:
    meta = Path(data_dir) / "metadata.json"
    digest = hashlib.sha256(meta.read_bytes()).hexdigest() if meta.is_file() else str(Path(data_dir).resolve())
    blob = json.dumps({"data": digest, "trainer": _TRAINER_VERSION, "p": int(train_period), "backbone": backbone,
                       "options": {k: list(v) if isinstance(v, tuple) else v for k, v in backbone_options.items()},
                       "epochs": epochs, "batch_size": batch_size, "lr": learning_rate, "seed": seed},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def prepare_context(data_dir, train_period: Optional[int] = None, backbone: str = "dnn",
                    backbone_options: Optional[dict] = None, epochs: int = 1, batch_size: int = 512,
                    learning_rate: float = 1e-3, seed: int = 0, cache_dir=None,
                    log: Callable[[str], None] = _log_default) -> TuningContext:
    """Train (or reload from `cache_dir`) the teachers and the student's warm start for training period `p`.

    Args:
      data_dir: a dataset in the span layout (`diit data ...`).
      train_period: `p`; trials train on it and are validated on `p+1` (default: `default_train_period`).
      backbone / backbone_options: the architecture of sources, base and student (as `diit simulate`).
      epochs / batch_size / learning_rate: the sources' and the base's per-period training.
      seed: seeds the initial weights and shuffles.
      cache_dir: where to keep the trained weights (None: no cache).
    """
    from diit_tf.data import list_spans, load_period, read_metadata

    options, epochs, batch_size = _check_training_options(backbone_options, epochs, batch_size)  # before any read
    metadata = read_metadata(data_dir)
    spans = list_spans(data_dir)
    spec = _spec(metadata)
    p = _check_periods(data_dir, spec, spans, train_period)

    def new(name):
        return build_backbone(backbone, spec, name=name, **options)

    train = load_period(data_dir, p, spec)
    validation = load_period(data_dir, p + 1, spec).domain(spec.target)
    if len(validation) == 0 or validation.labels.min() == validation.labels.max():
        raise ValueError(f"period {p + 1} has no target rows with both labels: val_auc is undefined")
    key = _cache_key(data_dir, p, backbone, options, epochs, batch_size, learning_rate, seed)
    cached = Path(cache_dir) / f"context-p{p}-{key}" if cache_dir else None
    if cached is not None and (cached / "context.json").is_file():
        teachers, student, base_val_auc = _load_cached(cached, new, len(spec.sources))
        log(f"reusing sources and base of periods 1..{p} from {cached}")
    else:
        keras.utils.set_random_seed(seed)
        teachers = [new(f"teacher_{k}") for k in range(len(spec.sources))]
        student = new("student_init")
        _train_through(data_dir, spec, [s for s in spans if s <= p], train, teachers, student, epochs, batch_size,
                       learning_rate, seed, log)
        base_val_auc = _base_score(new, student, train, validation, epochs, batch_size, learning_rate, seed, log)
        if cached is not None:
            _save_atomic(cached, teachers, student, {"train_period": p, "base_val_auc": base_val_auc,
                                                     "backbone": backbone, "seed": seed})
    for teacher in teachers:
        teacher.trainable = False
    return TuningContext(spec=spec, backbone=backbone, backbone_options=options, teachers=teachers,
                         student_weights=student.get_weights(), train=train, validation=validation,
                         train_period=p, validation_period=p + 1, dataset=str(metadata.get("dataset")),
                         base_val_auc=base_val_auc)


def _check_periods(data_dir, spec, spans, train_period) -> int:
    """The training period `p`: a period of the dataset with a next one; the dataset has a target and a source."""
    if not spec.target or not spec.sources:
        raise ValueError(f"{data_dir}: the dataset needs a target domain and at least one source domain "
                         f"(target={spec.target!r}, domains={list(spec.domains)})")
    p = default_train_period(spans) if train_period is None else int(train_period)
    if p not in spans:
        raise ValueError(f"`train_period` {p} is not a period of {data_dir} (periods: {spans})")
    if p + 1 not in spans:
        raise ValueError(f"`train_period` {p} has no next period to validate on in {data_dir} (periods: {spans}); "
                         f"the objective is the target's AUC on period {p + 1}")
    return p


def _check_training_options(backbone_options, epochs, batch_size) -> tuple:
    """`(options, epochs, batch_size)`: the backbone options (library defaults when None; `hidden_units` as a
    tuple), the epochs and batch size as positive integers (`positive_count`)."""
    options = dict(DEFAULT_BACKBONE_OPTIONS if backbone_options is None else backbone_options)
    if "hidden_units" in options:
        options["hidden_units"] = tuple(options["hidden_units"])
    return options, positive_count(epochs, "epochs"), positive_count(batch_size, "batch_size")


def _load_cached(cached: Path, new, n_sources: int):
    """(teachers, student warm start, base val AUC) saved by an earlier `prepare_context` with the same key."""
    teachers = [new(f"teacher_{k}") for k in range(n_sources)]
    student = new("student_init")
    for k, teacher in enumerate(teachers):
        teacher.load_weights(str(cached / f"teacher_{k}.weights.h5"))
    student.load_weights(str(cached / "student_init.weights.h5"))
    return teachers, student, json.loads((cached / "context.json").read_text()).get("base_val_auc")


def _train_through(data_dir, spec, periods, train, teachers, student, epochs, batch_size, learning_rate, seed, log):
    """Incremental training over `periods` (up to `p`): every source each period; the target's base up to p-1."""
    from diit_tf.data import load_period

    p = periods[-1]
    for period in periods:
        rows = train if period == p else load_period(data_dir, period, spec)
        for k, domain in enumerate(spec.sources):
            part = rows.domain(domain)
            _fit_period(teachers[k], part.features, part.labels, epochs, batch_size, learning_rate,
                        seed * 1000 + period * 10 + k)
        target = rows.domain(spec.target)
        if period < p:
            _fit_period(student, target.features, target.labels, epochs, batch_size, learning_rate,
                        seed * 1000 + period * 10 + 9)
        log(f"  sources{' and base' if period < p else ''} trained on period {period} "
            f"({len(rows):,} rows, {len(target):,} target)")


def _base_score(new, student, train, validation, epochs, batch_size, learning_rate, seed, log) -> float:
    """The base continues one more period (on p's target rows): its score on p+1 is the reference a trial should
    beat."""
    p = train.span
    base = new("base")
    base.set_weights(student.get_weights())
    target = train.domain(train.spec.target)
    _fit_period(base, target.features, target.labels, epochs, batch_size, learning_rate,
                seed * 1000 + p * 10 + 9)
    base_val_auc = target_auc(base, validation)
    log(f"  base (target model alone) trained through period {p}: val_auc {base_val_auc:.4f} on period {p + 1}")
    return base_val_auc


def _spec(metadata):
    from diit_tf.features import FeatureSpec

    return FeatureSpec.from_dict(metadata["feature_spec"])


def _save_atomic(target: Path, teachers, student, info: dict) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for k, teacher in enumerate(teachers):
            teacher.save_weights(str(tmp / f"teacher_{k}.weights.h5"))
        student.save_weights(str(tmp / "student_init.weights.h5"))
        (tmp / "context.json").write_text(json.dumps(info, indent=2) + "\n")
        try:
            os.rename(tmp, target)
        except OSError:  # another process (a distributed worker) got there first: keep its copy
            pass
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def mix_rows(period, mix_ratio: float, seed: int = 0):
    """Period rows for the mix dataset: every target row and a `mix_ratio` share of each source's rows.

    `period` is a `PeriodData` of all domains; `mix_ratio` in (0, 1] (1 keeps everything: the library default).
    """
    if not 0 < mix_ratio <= 1:
        raise ValueError(f"`mix_ratio` should be in (0, 1]. Received: {mix_ratio!r}")
    if mix_ratio >= 1:
        return period
    rng = np.random.default_rng(seed)
    keep = (period.domains == period.spec.target) | (rng.random(len(period)) < mix_ratio)
    return period.subset(keep)


def mix_filter(spec, mix_ratio: float, seed: int = 0):
    """The same subsampling for a `tf.data` pipeline of raw or transformed examples: use as
    `dataset.filter(mix_filter(spec, ratio))` on dict elements holding the domain column."""
    if not 0 < mix_ratio <= 1:
        raise ValueError(f"`mix_ratio` should be in (0, 1]. Received: {mix_ratio!r}")
    target = tf.constant(spec.target)

    def keep(features, *rest):
        domain = tf.reshape(features[spec.domain], [-1])[0]
        if mix_ratio >= 1:
            return tf.constant(True)
        return tf.logical_or(tf.equal(domain, target), tf.random.uniform([], seed=seed) < mix_ratio)

    return keep
