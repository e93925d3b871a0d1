"""The methods a simulation compares, all under one period protocol and one backbone.

Each method keeps its own target-side state across periods and answers three calls from the protocol:
`setup(ctx)` once (at the insertion period for methods that transfer into the target model, at the first period
for methods with their own history), `train_period(ctx, p)` with period `p`'s rows only, and `logits(data)` on
target rows it has never trained on. Transfer methods start at the insertion period from the base's weights of
period `p0 - 1` (the production setting: DIIT is plugged into an existing incremental model).

Registry: `METHODS[name]` is `(factory, description)`; `make_method(name, ctx)`.
"""
from __future__ import annotations

import numpy as np

from diit_tf.baselines import CTNet, DANN, UniformKD, build_joint_model, copy_weights, joint_features, joint_spec
from diit_tf.model import DIITModel
from diit_tf.simulation.catalog import ALL_METHODS, DESCRIPTIONS, EXPERIMENTAL
from diit_tf.simulation.variants import use_source_aware_gate
from diit_tf.simulation.context import DomainModel
from diit_tf.simulation.training import (
    STEPS_PER_EXECUTION, auc, compile_fresh, predict_logits, reset_optimizers, transfer_dataset)

import keras


class Method:
    name = "method"
    starts_at_insertion = True  # False: has its own history from the first period on
    serves_sources = False      # True: sources are in the serving path (CTNet)
    needs_sources = True        # False: never reads the source models (base, joint, finetune)

    def setup(self, ctx) -> None:
        raise NotImplementedError

    def train_period(self, ctx, period: int) -> None:
        raise NotImplementedError

    def logits(self, data) -> np.ndarray:
        return predict_logits(self.serving_model, data.features)

    @property
    def serving_model(self) -> keras.Model:
        raise NotImplementedError


# ------------------------------------------------------------------------------------------------- single domain
class Base(Method):
    """The target domain's own incremental model (single-domain backbone): the reference of every lift."""

    name = "base"
    starts_at_insertion = False
    needs_sources = False

    def setup(self, ctx):
        self.model = DomainModel(ctx.new_backbone("target"), ctx.hparams.learning_rate(self.name))

    def train_period(self, ctx, period):
        rows = ctx.target_rows(period, self.name)
        self.model.fit(rows.features, rows.labels, ctx.hparams.epochs, ctx.hparams.batch_size, ctx.fit_seed(period))

    @property
    def serving_model(self):
        return self.model.backbone


def subsample_sources(rows, target: str, ratio: float, seed: int):
    """The mix dataset: every target row and a random `ratio` share of the source rows."""
    if ratio >= 1.0:
        return rows
    rng = np.random.default_rng(seed)
    keep = (rows.domains == target) | (rng.random(len(rows)) < ratio)
    return rows.subset(keep)


def _student_from_snapshot(ctx, name="student"):
    student = ctx.new_backbone(name)
    if ctx.base_snapshot is None:
        raise RuntimeError("the base's weights at insertion are not available (the base must run first)")
    student.set_weights(ctx.base_snapshot)
    return student


def _frozen_copies(ctx, sources):
    copies = []
    for k, source in enumerate(sources):
        copy = ctx.new_backbone(f"teacher_{k}")
        copy.set_weights(source.get_weights())
        copy.trainable = False
        copies.append(copy)
    return copies


def _refresh(copies, sources):
    for copy, source in zip(copies, sources):
        copy_weights(source, copy)


# ------------------------------------------------------------------------------------------------------- DIIT
class DIIT(Method):
    """DIIT (gate + adversarial mapper + multi-spot KD) from the latest frozen sources; `changes` switch parts off."""

    def __init__(self, name="diit", source_aware_gate=False, **changes):
        self.name = name
        self.changes = changes
        self.source_aware_gate = source_aware_gate

    def chosen_sources(self, ctx) -> list:
        return list(range(len(ctx.spec.sources)))

    def setup(self, ctx):
        self.config = ctx.hparams.diit_config(**self.changes)
        self.source_ids = self.chosen_sources(ctx)
        latest = ctx.sources.latest()
        self.teachers = _frozen_copies(ctx, [latest[k] for k in self.source_ids])
        self.model = DIITModel(self.teachers, _student_from_snapshot(ctx), self.config)
        if self.source_aware_gate:
            use_source_aware_gate(self.model)
        lr = ctx.hparams.learning_rate(self.name)
        d_lr = float(ctx.hparams.diit_option("discriminator_learning_rate", lr))
        self.model.compile(optimizer=keras.optimizers.Adam(lr), discriminator_optimizer=keras.optimizers.Adam(d_lr),
                           steps_per_execution=STEPS_PER_EXECUTION)

    def train_period(self, ctx, period):
        latest = ctx.sources.latest()
        _refresh(self.teachers, [latest[k] for k in self.source_ids])
        rows = ctx.rows(period, self.name)
        target = rows.domain(ctx.spec.target)
        mix = subsample_sources(rows, ctx.spec.target, float(ctx.hparams.diit_option("mix_ratio", 1.0)),
                                ctx.fit_seed(period, 2))
        reset_optimizers(self.model)
        data = transfer_dataset(target, mix, ctx.hparams.batch_size, ctx.fit_seed(period),
                                ctx.hparams.mix_batch_size, epochs=ctx.hparams.epochs)
        history = self.model.fit(data, epochs=1, verbose=0)
        self.last_history = {k: float(v[-1]) for k, v in history.history.items()}

    @property
    def serving_model(self):
        return self.model.student


class DIITSingleSource(DIIT):
    """DIIT with one teacher: the source whose frozen model scores best on the target's rows of the insertion
    period (training data, never an evaluation period)."""

    def chosen_sources(self, ctx):
        rows = ctx.target_rows(ctx.insertion_period, self.name)
        scores = [auc(rows.labels, predict_logits(m, rows.features)) for m in ctx.sources.latest()]
        best = int(np.nanargmax(scores))
        self.selection = {"source": ctx.spec.sources[best], "auc_on_insertion_period": scores}
        ctx.log(f"    {self.name}: chose source {ctx.spec.sources[best]!r} "
                f"(AUC on target rows of period {ctx.insertion_period}: {', '.join(f'{s:.4f}' for s in scores)})")
        return [best]


# -------------------------------------------------------------------------------------------------- baselines
class KDUniform(Method):
    name = "kd_uniform"

    def setup(self, ctx):
        options = ctx.hparams.method_options(self.name)
        cfg = ctx.hparams.diit_config()
        self.teachers = _frozen_copies(ctx, ctx.sources.latest())
        self.model = UniformKD(self.teachers, _student_from_snapshot(ctx), beta=options.get("beta", cfg.beta2),
                               temperature=options.get("temperature", cfg.tau))
        compile_fresh(self.model, ctx.hparams.learning_rate(self.name))
        self.model.optimizer.build(self.model.student.trainable_variables)

    def train_period(self, ctx, period):
        _refresh(self.teachers, ctx.sources.latest())
        rows = ctx.rows(period, self.name)
        reset_optimizers(self.model)
        data = transfer_dataset(rows.domain(ctx.spec.target), rows, ctx.hparams.batch_size, ctx.fit_seed(period),
                                ctx.hparams.mix_batch_size, epochs=ctx.hparams.epochs)
        self.model.fit(data, epochs=1, verbose=0)

    @property
    def serving_model(self):
        return self.model.student


class DANNMethod(Method):
    name = "dann"

    def setup(self, ctx):
        options = {"grl_lambda": 0.1, "domain_weight": 0.1, "source_weight": 0.5}
        options.update(ctx.hparams.method_options(self.name))
        self.model = DANN(_student_from_snapshot(ctx), num_domains=len(ctx.spec.domains), **options)
        compile_fresh(self.model, ctx.hparams.learning_rate(self.name))
        self.model.optimizer.build(self.model.student.trainable_variables + self.model.classifier.trainable_variables)

    def train_period(self, ctx, period):
        rows = ctx.rows(period, self.name)
        reset_optimizers(self.model)
        data = transfer_dataset(rows.domain(ctx.spec.target), rows, ctx.hparams.batch_size, ctx.fit_seed(period),
                                ctx.hparams.mix_batch_size, mix_labels=True, epochs=ctx.hparams.epochs)
        self.model.fit(data, epochs=1, verbose=0)

    @property
    def serving_model(self):
        return self.model.student


class CTNetMethod(Method):
    name = "ctnet"
    serves_sources = True

    def setup(self, ctx):
        options = ctx.hparams.method_options(self.name)
        towers = _frozen_copies(ctx, ctx.sources.latest())
        self.model = CTNet(_student_from_snapshot(ctx), towers, adapter_units=options.get("adapter_units"))
        self.trainer = DomainModel(self.model, ctx.hparams.learning_rate(self.name))

    def train_period(self, ctx, period):
        self.model.refresh_sources(ctx.sources.latest())
        rows = ctx.target_rows(period, self.name)
        self.trainer.fit(rows.features, rows.labels, ctx.hparams.epochs, ctx.hparams.batch_size, ctx.fit_seed(period))

    @property
    def serving_model(self):
        return self.model


class Joint(Method):
    """One shared-bottom model (domain embedding + per-domain heads) trained incrementally on all domains."""

    name = "joint"
    starts_at_insertion = False
    needs_sources = False

    def setup(self, ctx):
        self.model = DomainModel(build_joint_model(ctx.backbone, ctx.spec, **ctx.hparams.backbone_options),
                                 ctx.hparams.learning_rate(self.name))

    def train_period(self, ctx, period):
        rows = ctx.rows(period, self.name)
        self.model.fit(joint_features(rows), rows.labels, ctx.hparams.epochs, ctx.hparams.batch_size,
                       ctx.fit_seed(period))

    def logits(self, data):
        return predict_logits(self.model.backbone, joint_features(data, domain=data.spec.target))

    @property
    def serving_model(self):
        return self.model.backbone


class Finetune(Method):
    """Every period: copy the all-domain model (trained incrementally on every domain's rows, no domain input) into
    the target model, then train it on the target's rows."""

    name = "finetune"
    starts_at_insertion = False
    needs_sources = False

    def setup(self, ctx):
        lr = ctx.hparams.learning_rate(self.name)
        self.pooled = DomainModel(ctx.new_backbone("all_domains"), lr)
        self.model = DomainModel(ctx.new_backbone("target"), lr)

    def train_period(self, ctx, period):
        rows = ctx.rows(period, self.name)
        hp = ctx.hparams
        self.pooled.fit(rows.features, rows.labels, hp.epochs, hp.batch_size, ctx.fit_seed(period))
        if period >= ctx.insertion_period:
            copy_weights(self.pooled.backbone, self.model.backbone)
            target = rows.domain(ctx.spec.target)
            self.model.fit(target.features, target.labels, hp.epochs, hp.batch_size, ctx.fit_seed(period, 1))

    @property
    def serving_model(self):
        return self.model.backbone


# -------------------------------------------------------------------------------------------------- registry
_FACTORIES = {
    "base": Base,
    "diit": lambda: DIIT("diit"),
    "dann": DANNMethod,
    "ctnet": CTNetMethod,
    "finetune": Finetune,
    "joint": Joint,
    "kd_uniform": KDUniform,
    "diit_no_gate": lambda: DIIT("diit_no_gate", use_gate=False),
    "diit_no_adv": lambda: DIIT("diit_no_adv", use_adversarial=False),
    "diit_no_middle": lambda: DIIT("diit_no_middle", use_middle=False),
    "diit_no_logit": lambda: DIIT("diit_no_logit", use_logit=False),
    "diit_single_source": lambda: DIITSingleSource("diit_single_source"),
}
_FACTORIES["diit_source_gate"] = lambda: DIIT("diit_source_gate", source_aware_gate=True)
METHODS = {name: (_FACTORIES[name], {**DESCRIPTIONS, **EXPERIMENTAL}[name]) for name in _FACTORIES}



def make_method(name: str) -> Method:
    try:
        factory = METHODS[name][0]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(ALL_METHODS)}") from None
    method = factory()
    method.name = name
    return method


def parse_methods(text) -> list:
    """`"all"`, a comma-separated string or a list of names -> validated list, `base` first (always included)."""
    if isinstance(text, str):
        names = [n.strip() for n in text.split(",") if n.strip()]
    else:
        names = [n for part in text for n in str(part).split(",") if n.strip()]
    if not names or names == ["all"]:
        names = list(ALL_METHODS)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"--methods: unknown method(s) {unknown}; known methods: {', '.join(ALL_METHODS)} (or 'all'), "
                         f"experimental: {', '.join(EXPERIMENTAL)}")
    ordered = ["base"] + [n for n in dict.fromkeys(names) if n != "base"]
    return ordered
