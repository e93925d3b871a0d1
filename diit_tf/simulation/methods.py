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

from diit_tf.baselines import (ROW_WEIGHTS, CTNet, DANN, WeightedKD, as_domain_model, build_hamur_model,
                               build_joint_model, build_star_model, copy_weights, joint_features, joint_spec,
                               quality_weights, static_weights, teacher_gains, teacher_logits)
from diit_tf.baselines.kd import KD_OPTION_BOUNDS, kd_option_problem
from diit_tf.config import PAPER_FORM, DIITConfig
from diit_tf.keyvalue import parse_value, split_assignment
from diit_tf.model import ORIGIN_KEY, DIITModel
from diit_tf.simulation.catalog import ALL_METHODS, EXPERIMENTAL, MULTI_DOMAIN, NAMED
from diit_tf.simulation.variants import use_source_aware_gate
from diit_tf.simulation.context import DomainModel
from diit_tf.simulation.training import (
    STEPS_PER_EXECUTION, auc, compile_fresh, labelled_dataset, predict_logits, reset_optimizers, transfer_dataset)

import keras


class Method:
    name = "method"
    starts_at_insertion = True  # False: has its own history from the first period on
    # True for a method with a history of its own whose target model still starts at the insertion period, where
    # `training.student_init` puts every transfer method's (kd_joint's student, `_student_from_snapshot`)
    student_at_insertion = False
    serves_sources = False      # True: sources are in the serving path (CTNet)
    needs_sources = True        # False: never reads the source models (base, joint, finetune)

    def record(self, period, entry: dict) -> None:
        """Keep what was chosen for `period` (the report writes it to details.json under `notes.<name>`)."""
        self.selection = getattr(self, "selection", {})
        self.selection.setdefault(str(period), {}).update(entry)

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
        self.last_history = self.model.fit(rows.features, rows.labels, ctx.hparams.epochs, ctx.hparams.batch_size,
                                           ctx.fit_seed(period))

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


def source_index(rows, names) -> np.ndarray:
    """int32 per row: the position of the row's domain in `names` (the teachers' order), -1 for any other domain."""
    lookup = {name: k for k, name in enumerate(names)}
    return np.fromiter((lookup.get(d, -1) for d in rows.domains), dtype=np.int32, count=len(rows))


def with_features(rows, **extra):
    """`rows` with per-row arrays added to its features."""
    return type(rows)(dict(rows.features, **extra), rows.labels, rows.domains, rows.span, rows.spec)


def _student_from_snapshot(ctx, name="student"):
    """A target model at the insertion period: the base's weights then, or where `training.student_init` says
    (`ctx.student_start`, e.g. the best source's weights)."""
    student = ctx.new_backbone(name)
    if ctx.base_snapshot is None:
        raise RuntimeError("the base's weights at insertion are not available (the base must run first)")
    student.set_weights(ctx.base_snapshot if ctx.student_start is None else ctx.student_start)
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
    """DIIT from the latest frozen sources, in the library's default form (`DIITConfig()`: the supervised gate and
    the logit spot) or, with `paper=True`, in the paper's form (gate + adversarial mapper + multi-spot KD);
    `changes` switch parts off or set options."""

    def __init__(self, name="diit", source_aware_gate=False, paper=False, **changes):
        self.name = name
        self.changes = changes
        self.source_aware_gate = source_aware_gate
        self.paper = paper

    def resolve_config(self, ctx) -> DIITConfig:
        """The run's `methods.diit.diit_config` (preset and --option), then `changes`. The paper's form keeps the
        run's weights (β, α, τ, and γ when the run sets it; else the paper's 0) and forces its structure: every part
        on, the gate reading the student's representation and trained through the KD losses."""
        if not self.paper:
            return ctx.hparams.diit_config(**self.changes)
        structure = {k: v for k, v in PAPER_FORM.items() if k != "gate_supervision"}
        return DIITConfig.paper(**{**ctx.hparams.diit_config_dict(), **structure, **self.changes})

    def chosen_sources(self, ctx) -> list:
        return list(range(len(ctx.sources.names)))

    def setup(self, ctx):
        self.config = self.resolve_config(ctx)
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
        if self.config.reads_origin:  # each mix row's source, for the gate's origin loss or routing by it
            mix = with_features(mix, **{ORIGIN_KEY: source_index(mix, [ctx.sources.names[k]
                                                                       for k in self.source_ids])})
        prior = self.config.gate_prior == "quality" and self.model.learns_gate
        fits = self.config.gate_fits if self.model.learns_gate else ()
        # the sources' outputs on the target rows, one compiled pass for the prior and the gate's supervised fit
        outputs = self.model.teacher_outputs(target.features) if prior or "supervised" in fits else None
        if prior:
            gains, weights = quality_weights(list(outputs["teacher_logits"].T), target.labels,
                                             temperature=self.config.gate_prior_temperature)
            self.model.set_gate_prior(weights)
            self.record(period, {"auc_gain": [round(float(g), 5) for g in gains],
                                 "prior": [round(float(w), 4) for w in weights]})
        reset_optimizers(self.model)
        if "origin" in fits:  # the gate alone on the mix rows' sources first
            fitted = self.model.fit_gate(labelled_dataset(mix.features, mix.labels, ctx.hparams.batch_size,
                                                          ctx.fit_seed(period, 5)),
                                         epochs=self.config.gate_fit_epochs, seed=ctx.fit_seed(period, 6),
                                         loss="origin")
            self.record(period, {"gate_fit_origin": round(fitted["origin"], 5),
                                 "gate_fit_origin_steps": fitted["steps"]})
        if "supervised" in fits:  # ... then on the target's labels
            features = dict(target.features, **outputs)
            fitted = self.model.fit_gate(labelled_dataset(features, target.labels, ctx.hparams.batch_size,
                                                          ctx.fit_seed(period, 3)),
                                         epochs=self.config.gate_fit_epochs, seed=ctx.fit_seed(period, 4))
            self.record(period, {"gate_fit_bce": round(fitted["gate_bce"], 5), "gate_fit_steps": fitted["steps"]})
        data = transfer_dataset(target, mix, ctx.hparams.batch_size, ctx.fit_seed(period),
                                ctx.hparams.mix_batch_size, epochs=ctx.hparams.epochs,
                                annotate=self.model.teacher_outputs)
        history = self.model.fit(data, epochs=1, verbose=0)
        self.last_history = {k: float(v[-1]) for k, v in history.history.items()}

    def gate_weights(self, data) -> np.ndarray:
        """The gate's weights on `data`'s rows, (N, K), as a diagnostic (nothing is trained)."""
        return self.model.gate_weights(data.features)

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
        self.selection = {"source": ctx.sources.names[best], "auc_on_insertion_period": scores}
        ctx.log(f"    {self.name}: chose source {ctx.sources.names[best]!r} "
                f"(AUC on target rows of period {ctx.insertion_period}: {', '.join(f'{s:.4f}' for s in scores)})")
        return [best]


# -------------------------------------------------------------------------------------------------- baselines
class FixedWeightKD(Method):
    """KD from a fixed weighting of frozen teachers (`diit_tf.baselines.kd.WeightedKD`), re-chosen every period.

    Subclasses say which models teach (`teacher_models`) and with which weights (`choose`); the data (target rows
    labelled, every row of the period as the mix), the loss and the budget are the same for all of them."""

    name = "kd"

    def teacher_models(self, ctx) -> list:
        """The models copied into the frozen teachers at the start of each period."""
        return ctx.sources.latest()

    def choose(self, ctx, period, target):
        """`(teacher models, weights or None)` for this period; None keeps the uniform weights."""
        return self.teacher_models(ctx), None

    option_changes: dict = {}  # a `--methods kd_static:target_kd=1` variant's options, over the hparams'
    # (KD_OPTION_BOUNDS)

    def setup(self, ctx):
        kind = type(self).name  # the method's own name (`self.name` is a variant's whole text)
        self.options = {**ctx.hparams.method_options(kind), **self.option_changes}
        cfg = ctx.hparams.diit_config()
        self.teachers = _frozen_copies(ctx, self.teacher_models(ctx))
        self.model = WeightedKD(self.teachers, _student_from_snapshot(ctx), beta=self.options.get("beta", cfg.beta2),
                                temperature=self.options.get("temperature", cfg.tau),
                                target_kd=self.options.get("target_kd", 0.0), name=kind)
        compile_fresh(self.model, ctx.hparams.learning_rate(kind))
        self.model.optimizer.build(self.model.student.trainable_variables)

    def period_rows(self, ctx, period):
        """The period's rows the method trains on (the target's labelled rows and the mix are taken from them)."""
        return ctx.rows(period, self.name)

    def train_period(self, ctx, period):
        rows = self.period_rows(ctx, period)
        target = rows.domain(ctx.spec.target)
        models, weights = self.choose(ctx, period, target)
        _refresh(self.teachers, models)
        if weights is not None:
            self.model.set_teacher_weights(weights)
        reset_optimizers(self.model)
        data = transfer_dataset(target, rows, ctx.hparams.batch_size, ctx.fit_seed(period),
                                ctx.hparams.mix_batch_size, epochs=ctx.hparams.epochs)
        self.model.fit(data, epochs=1, verbose=0)

    @property
    def serving_model(self):
        return self.model.student


class KDUniform(FixedWeightKD):
    """KD from the uniform average of the latest sources."""

    name = "kd_uniform"


def _source_logits(ctx, target):
    """Each latest source's logits on the target's labelled rows."""
    return teacher_logits(ctx.sources.latest(), target.features)


class KDStatic(FixedWeightKD):
    """KD from every latest source with fixed per-source weights from its quality on the target's labelled rows of
    the current period (`quality` auc | logloss, `weighting` above_chance | softmax, `weight_temperature`)."""

    name = "kd_static"

    def choose(self, ctx, period, target):
        quality = self.options.get("quality", "auc")
        gains, weights = quality_weights(_source_logits(ctx, target), target.labels, quality,
                                         self.options.get("weighting", "above_chance"),
                                         float(self.options.get("weight_temperature", 0.01)))
        self.record(period, {f"{quality}_gain": [round(float(g), 5) for g in gains],
                             "weights": [round(float(w), 4) for w in weights]})
        return ctx.sources.latest(), weights


class KDBestSingle(FixedWeightKD):
    """KD from the one latest source with the best quality on the target's labelled rows of the current period."""

    name = "kd_best_single"

    def teacher_models(self, ctx):
        return ctx.sources.latest()[:1]

    def choose(self, ctx, period, target):
        gains = teacher_gains(_source_logits(ctx, target), target.labels, self.options.get("quality", "auc"))
        best = int(np.argmax(static_weights(gains, "best")))
        self.record(period, {"source": ctx.sources.names[best], "gains": [round(float(g), 5) for g in gains]})
        return [ctx.sources.latest()[best]], None


class KDOrigin(FixedWeightKD):
    """KD from every latest source, each mix row from the source it was drawn from (the target's own rows of the
    mix from the sources' uniform average): the routing a gate would learn from the rows' origin, known here
    without learning (`WeightedKD`'s per-row weights, `ROW_WEIGHTS`)."""

    name = "kd_origin"

    def period_rows(self, ctx, period):
        rows = ctx.rows(period, self.name)
        k = len(self.teachers)
        origin = source_index(rows, ctx.sources.names)
        weights = np.where((origin >= 0)[:, None], np.eye(k, dtype=np.float32)[np.maximum(origin, 0)],
                           np.float32(1.0 / k))
        return with_features(rows, **{ROW_WEIGHTS: weights})


class KDSelf(FixedWeightKD):
    """KD from the frozen previous-period target model alone (the student's own weights at the start of the
    period; the base's at insertion): the same data and loss as the source KD methods, no source at all."""

    name = "kd_self"
    needs_sources = False

    def teacher_models(self, ctx):
        return [self.model.student] if hasattr(self, "model") else [_student_from_snapshot(ctx, "previous_target")]


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

    def build_model(self, ctx):
        return build_joint_model(ctx.backbone, ctx.spec, **ctx.hparams.backbone_options)

    def setup(self, ctx):
        self.model = DomainModel(self.build_model(ctx), ctx.hparams.learning_rate(self.name))

    def train_period(self, ctx, period):
        rows = ctx.rows(period, self.name)
        self.model.fit(joint_features(rows), rows.labels, ctx.hparams.epochs, ctx.hparams.batch_size,
                       ctx.fit_seed(period))

    def logits(self, data):
        return predict_logits(self.model.backbone, joint_features(data, domain=data.spec.target))

    @property
    def serving_model(self):
        return self.model.backbone


class KDJoint(Joint):
    """Logit KD into the target's single-domain model from a multi-domain teacher: `joint`'s model, trained the same
    way on every domain from the first period on, frozen each period after its own update and read as the target
    (`as_domain_model`: every row, source rows included, tagged as the target). From the insertion period the
    student (where every transfer method starts) distils from it on the target's labelled rows and the mix rows,
    with the KD family's loss and budget. Serves the student alone; trains what `joint` trains plus the student.
    An answer to "what would it take to match `joint` with one model per domain", not a baseline of the paper."""

    name = "kd_joint"
    student_at_insertion = True  # its student starts at the insertion period where every transfer method does

    def setup(self, ctx):
        super().setup(ctx)
        self.frozen = self.build_model(ctx)
        self.student_kd = None

    def train_period(self, ctx, period):
        super().train_period(ctx, period)
        if period < ctx.insertion_period:
            return
        copy_weights(self.model.backbone, self.frozen)
        if self.student_kd is None:
            options, cfg = ctx.hparams.method_options(self.name), ctx.hparams.diit_config()
            teacher = as_domain_model(self.frozen, ctx.spec, name="joint_teacher")
            self.student_kd = WeightedKD([teacher], _student_from_snapshot(ctx), beta=options.get("beta", cfg.beta2),
                                         temperature=options.get("temperature", cfg.tau),
                                         target_kd=options.get("target_kd", 0.0), name=self.name)
            compile_fresh(self.student_kd, ctx.hparams.learning_rate(self.name))
            self.student_kd.optimizer.build(self.student_kd.student.trainable_variables)
        rows = ctx.rows(period, self.name)
        reset_optimizers(self.student_kd)
        data = transfer_dataset(rows.domain(ctx.spec.target), rows, ctx.hparams.batch_size, ctx.fit_seed(period, 1),
                                ctx.hparams.mix_batch_size, epochs=ctx.hparams.epochs)
        self.student_kd.fit(data, epochs=1, verbose=0)

    logits = Method.logits  # the student's, on the features alone (not Joint's domain-tagged call)

    @property
    def serving_model(self):
        return self.student_kd.student


def _note_mlp_only(ctx, name):
    if ctx.backbone != "dnn":
        ctx.log(f"    {name}: uses MLP towers (hidden_units, embedding_dim), not the {ctx.backbone} backbone")


class HAMURMethod(Joint):
    """HAMUR (hypernetwork-generated domain adapters in per-domain towers), trained like `joint` on every domain's
    rows of each period and served for the target; options `adapter_units`, `rank`, `hyper_units`."""

    name = "hamur"

    def build_model(self, ctx):
        _note_mlp_only(ctx, self.name)
        backbone = ctx.hparams.backbone_options
        options = {"adapter_units": 32, "rank": 32, "hyper_units": (64,)}
        options.update(ctx.hparams.method_options(self.name))
        return build_hamur_model(ctx.spec, hidden_units=backbone.get("hidden_units", (128, 64)),
                                 embedding_dim=backbone.get("embedding_dim", 16),
                                 adapter_units=options["adapter_units"], rank=options["rank"],
                                 hyper_units=tuple(options["hyper_units"]))


class STARMethod(Joint):
    """STAR (partitioned normalization, star-topology FCN, auxiliary network), trained like `joint` on every
    domain's rows of each period and served for the target; option `aux_units`."""

    name = "star"

    def build_model(self, ctx):
        _note_mlp_only(ctx, self.name)
        backbone = ctx.hparams.backbone_options
        return build_star_model(ctx.spec, hidden_units=backbone.get("hidden_units", (128, 64)),
                                embedding_dim=backbone.get("embedding_dim", 16),
                                aux_units=tuple(ctx.hparams.method_options(self.name).get("aux_units", (32,))))


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
    "diit_paper": lambda: DIIT("diit_paper", paper=True),
    "dann": DANNMethod,
    "ctnet": CTNetMethod,
    "finetune": Finetune,
    "joint": Joint,
    "kd_uniform": KDUniform,
    "kd_static": KDStatic,
    "kd_best_single": KDBestSingle,
    "kd_origin": KDOrigin,
    "kd_self": KDSelf,
    "kd_joint": KDJoint,
    "hamur": HAMURMethod,
    "star": STARMethod,
    "diit_no_gate": lambda: DIIT("diit_no_gate", paper=True, use_gate=False),
    "diit_no_adv": lambda: DIIT("diit_no_adv", paper=True, use_adversarial=False),
    "diit_no_middle": lambda: DIIT("diit_no_middle", paper=True, use_middle=False),
    "diit_no_logit": lambda: DIIT("diit_no_logit", paper=True, use_logit=False),
    "diit_single_source": lambda: DIITSingleSource("diit_single_source"),
}
_FACTORIES["diit_source_gate"] = lambda: DIIT("diit_source_gate", source_aware_gate=True)
METHODS = {name: (_FACTORIES[name], NAMED[name]) for name in _FACTORIES}



DIIT_METHODS = tuple(name for name in METHODS if name.startswith("diit"))  # the ones taking DIITConfig options
# The fixed-weighting KD methods take their options (KD_OPTION_BOUNDS) after ':' too (over the hparams'
# `methods.<name>`), e.g. `kd_static:target_kd=1`, so a run can hold a KD method with and without one.
KD_METHODS = tuple(name for name, (factory, _) in METHODS.items()
                   if isinstance(factory, type) and issubclass(factory, FixedWeightKD))


def known_methods() -> str:
    """What `--methods` accepts, in one line: every method name, and the `method:option=value` form of DIIT's and
    of the fixed-weighting KD methods'."""
    return (f"known methods: {', '.join(ALL_METHODS)} (or 'all'); named only: {', '.join(MULTI_DOMAIN)}; "
            f"experimental: {', '.join(EXPERIMENTAL)}; or a DIIT method with DIITConfig options changed, "
            f"method:option=value[+option=value...], e.g. diit:gate_loss=confidence (DIIT methods: "
            f"{', '.join(DIIT_METHODS)}), or a KD method ({', '.join(KD_METHODS)}) with {', '.join(KD_OPTION_BOUNDS)} "
            f"changed, e.g. kd_static:target_kd=1")


def parse_variant(name: str):
    """`"diit:gate_loss=confidence+gate_from_kd=false"` -> ("diit", {"gate_loss": "confidence", "gate_from_kd":
    False}): a DIIT method (or ablation) with `DIITConfig` options changed, named by that text. None for a plain
    method name. A ValueError naming `--methods` and the text for an unknown method, one that is not DIIT's, or an
    unknown or bad option."""
    if ":" not in name:
        return None
    base, _, text = name.partition(":")
    if base not in METHODS:
        raise ValueError(f"--methods: unknown method {base!r} in {name!r}; {known_methods()}")
    if base not in DIIT_METHODS + KD_METHODS:
        raise ValueError(f"--methods {name!r}: options after ':' are for DIIT methods ({', '.join(DIIT_METHODS)}) "
                         f"and the fixed-weighting KD methods ({', '.join(KD_METHODS)}). Received base method "
                         f"{base!r}")
    changes = {}
    for item in filter(None, (part.strip() for part in text.split("+"))):
        key, value = split_assignment(item, f"--methods {name!r}", "key=value options after ':'")
        changes[key] = parse_value(value)
    if base in KD_METHODS:
        for key, value in changes.items():
            if key not in KD_OPTION_BOUNDS:
                raise ValueError(f"--methods {name!r}: {base} takes {', '.join(KD_OPTION_BOUNDS)} after ':'. "
                                 f"Received {key!r}")
            problem = kd_option_problem(key, value)
            if problem:
                raise ValueError(f"--methods {name!r}: {problem}")
        return base, changes
    form = DIITConfig.paper() if getattr(METHODS[base][0](), "paper", False) else DIITConfig()
    try:
        DIITConfig.from_dict({**form.to_dict(), **changes})  # raises naming an unknown or bad option
    except (TypeError, ValueError) as err:  # DIITConfig checks each value's type first (a ValueError naming it)
        raise ValueError(f"--methods {name!r}: {err}") from None
    return base, changes


def make_method(name: str) -> Method:
    variant = parse_variant(name)
    try:
        factory = METHODS[variant[0] if variant else name][0]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; {known_methods()}") from None
    method = factory()
    if variant and variant[0] in KD_METHODS:
        method.option_changes = variant[1]
    elif variant:
        method.changes = {**method.changes, **variant[1]}
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
    unknown = [n for n in names if n not in METHODS and not parse_variant(n)]
    if unknown:
        raise ValueError(f"--methods: unknown method(s) {unknown}; {known_methods()}")
    ordered = ["base"] + [n for n in dict.fromkeys(names) if n != "base"]
    return ordered
