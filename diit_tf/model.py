"""The DIIT model: a target (student) backbone learning from K frozen source (teacher) backbones.

Huang et al., "DIIT: A Domain-Invariant Information Transfer Method for Industrial Cross-Domain Recommendation",
CIKM 2024 (arXiv 2410.10835); formulas as read in docs/method.md.

Per training step the model consumes a labelled **target batch** `(x_t, y_t)` and a **mix batch** `x_m` (period-p
rows of all domains). On the mix batch:
- extractor 1 (domain level): `g = softmax(MLP(e_T))`, `ē_S = Σ g_k P_k(e_Sk)`, `z̄_S = Σ g_k z_Sk`;
- extractor 2 (representation level): `h_S = Mapper(ē_S)` and a discriminator D telling `h_S` from `e_T`;
- the migrator: `L_KD = α·MSE(e_T, h_S) + (1-α)·τ²·KL(p_τ(z̄_S) ‖ p_τ(z_T))`.
Phase 1 updates D alone on `L_adv1 = BCE(D(sg(e_T)), 1) + BCE(D(sg(h_S)), 0)`. Phase 2 updates student, gate
(and its projections) and mapper on `L_CE(y_t, z_T(x_t)) + β1·L_adv2 + β2·L_KD (+ γ·BCE(y_t, z̄_S(x_t)))`, where
`L_adv2 = BCE(D(GRL(h_S)), 0)` goes through a gradient reversal layer, so lowering it through the GRL raises D's
confusion, with D frozen. Teachers are called with `training=False`, their outputs are stop-gradiented and their
variables are never handed to an optimizer: they stay bit-identical.

Both phases share one forward pass: phase 1 runs under `tape.stop_recording()` inside phase 2's tape, and phase 2's
adversarial term is computed with the discriminator *after* its update, exactly as if the phases ran one after the
other. Only the CTR loss sees target rows' labels; KD and the adversarial game see the mix batch.

Example:
    teachers = [build_backbone("dnn", spec, name=f"teacher_{k}") for k in range(2)]   # trained, loaded
    model = DIITModel(teachers, build_backbone("dnn", spec, name="student"), DIITConfig(beta2=1.0))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), discriminator_optimizer=keras.optimizers.Adam(1e-3))
    model.fit(tf.data.Dataset.zip((target_ds, mix_ds)), epochs=1)     # elements ((x_t, y_t), x_m)
    export_student(model.student, spec, "serving/diit/1")
"""
from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

from diit_tf.config import DIITConfig
from diit_tf.distribute import scaled_for_replicas
from diit_tf.layers.discriminator import DomainDiscriminator
from diit_tf.layers.gating_aggregator import GatingAggregator
from diit_tf.layers.gradient_reversal import GradientReversal
from diit_tf.layers.mapper import Mapper
from diit_tf.losses import adversarial_bce, ctr_bce, logit_spot_kl, middle_spot_mse, origin_ce

# Keys of a batch's features that carry the sources' outputs on its rows (see `DIITModel.teacher_outputs`).
TEACHER_KEYS = ("teacher_representations", "teacher_logits")
# The key of a mix batch's features that says which source each row was drawn from (an index into the teachers,
# < 0 for a row of no source): what the gate's origin loss (`DIITConfig.gate_origin`) and routing by origin
# (`DIITConfig.route_by_origin`) read.
ORIGIN_KEY = "mix_origin"
LOSS_NAMES = ("loss", "ce", "adv1", "adv2", "mse", "kl", "kl_target", "kd", "gate_bce", "origin")


def sharpened(weights, temperature: float):
    """`w_k^(1/T) / Σ_j w_j^(1/T)` per row of `weights` (B, K), rows summing to 1 (`DIITConfig.routing_temperature`);
    T = 1 returns `weights` itself. Computed as a softmax of `log w / T`, so a zero weight stays zero."""
    if temperature == 1.0:
        return weights
    return tf.nn.softmax(tf.math.log(tf.maximum(weights, 1e-30)) / temperature, axis=-1)


def routed_by_origin(weights, origin):
    """`weights` (B, K) with each row drawn from a source (`origin` k >= 0, (B,) or (B, 1)) replaced by that
    source's one-hot, and the rows of no source (< 0) left as they are (`DIITConfig.route_by_origin`)."""
    origin = tf.reshape(tf.cast(origin, tf.int32), (-1,))
    one_hot = tf.one_hot(tf.maximum(origin, 0), tf.shape(weights)[-1], dtype=weights.dtype)
    return tf.where((origin >= 0)[:, None], one_hot, weights)


def check_backbone_inputs(backbone: keras.Model, features, where: str) -> None:
    """Raise a ValueError naming the problem if `features` does not fit `backbone`'s named inputs."""
    if not isinstance(features, Mapping):
        raise ValueError(f"{where} should be a dict of feature name to tensor. Received: {type(features).__name__}")
    expected = backbone.input if isinstance(backbone.input, Mapping) else {t.name: t for t in backbone.inputs}
    missing = [name for name in expected if name not in features]
    if missing:
        raise ValueError(f"{where} is missing feature(s) {missing}; the backbone expects {sorted(expected)}")
    for name, spec in expected.items():
        value = features[name]
        dtype = tf.as_dtype(value.dtype)
        want = tf.as_dtype(spec.dtype)
        if dtype.is_integer != want.is_integer or dtype.is_floating != want.is_floating:
            raise ValueError(f"{where}[{name!r}] should have dtype {want.name}. Received: {dtype.name}")
        rank = len(value.shape)
        if rank != len(spec.shape):
            raise ValueError(f"{where}[{name!r}] should have shape {tuple(spec.shape)} (batch first). "
                             f"Received: {tuple(value.shape)}")


def _check_backbone(model, role: str) -> int:
    out = getattr(model, "output", None)
    if not isinstance(out, Mapping) or "representation" not in out or "logit" not in out:
        raise ValueError(f"The {role} should be a backbone from `build_backbone` with outputs "
                         f"{{'representation', 'logit'}}. Received: {type(model).__name__} with output {out!r}")
    return int(out["representation"].shape[-1])


def _dummy_batch(backbone: keras.Model) -> dict:
    expected = backbone.input if isinstance(backbone.input, Mapping) else {t.name: t for t in backbone.inputs}
    return {name: tf.zeros((1,) + tuple(spec.shape[1:]), dtype=spec.dtype) for name, spec in expected.items()}


def _with_embeddings(student: keras.Model) -> keras.Model:
    """A view of `student` (same layers, same weights) that also returns its concatenated input embeddings (the
    output of its `features` layer): `(representation, logit, embeddings)`."""
    try:
        embeddings = student.get_layer("features").output
    except ValueError:
        raise ValueError("gate_input='embeddings' needs a student with a `features` embedding layer (a backbone "
                         f"from `build_backbone`). Received: {student.name!r}") from None
    return keras.Model(student.input, [student.output["representation"], student.output["logit"], embeddings],
                       name=f"{student.name}_with_embeddings")


@keras.saving.register_keras_serializable(package="diit_tf")
class DIITModel(keras.Model):
    """DIIT training harness around a student backbone; `model.student` is what gets exported.

    Args:
      teachers: list of K >= 1 trained source backbones (frozen here).
      student: the target backbone (trained here; may be warm-started).
      config: a `DIITConfig` (or dict of its fields).
    """

    def __init__(self, teachers, student, config=None, **kwargs):
        kwargs.setdefault("name", "diit")
        super().__init__(**kwargs)
        teachers = list(teachers or [])
        if not teachers:
            raise ValueError("`teachers` should hold at least one source backbone (K >= 1). Received: K=0")
        if isinstance(config, Mapping):
            config = DIITConfig.from_dict(config)
        self.diit_config = config or DIITConfig()
        student_dim = _check_backbone(student, "student")
        teacher_dims = [_check_backbone(t, f"teacher {k}") for k, t in enumerate(teachers)]
        for teacher in teachers:
            teacher.trainable = False
        self.teachers = teachers
        self.student = student
        cfg = self.diit_config
        self.gate = GatingAggregator(num_sources=len(teachers), hidden_units=cfg.gate_hidden,
                                     uniform=not cfg.use_gate, prior=cfg.gate_prior != "none", name="gate")
        # The gate loss's affine map of the mixed logit (DIITConfig.gate_calibration): a = kernel, b = bias.
        self.gate_calibration = (keras.layers.Dense(1, kernel_initializer="ones", name="gate_calibration")
                                 if cfg.gate_calibration and cfg.use_gate else None)
        if self.gate_calibration is not None:
            self.gate_calibration.build((None, 1))
        # The middle spot's regressor: source side -> student space (the paper), or student -> every source's
        # space at once (one output block per source, FitNets' direction).
        mapped_dim = student_dim if cfg.middle_spot == "mapper" else sum(teacher_dims)
        self.mapper = Mapper(output_dim=mapped_dim, hidden_units=cfg.mapper_hidden, name="mapper")
        self._student_with_embeddings = (_with_embeddings(student) if cfg.gate_input == "embeddings" else None)
        self.grl = GradientReversal(cfg.grl_lambda, name="grl")
        self.discriminator = DomainDiscriminator(hidden_units=cfg.discriminator_hidden, name="discriminator")
        self.teacher_dims = teacher_dims
        self._teacher_function = None
        self.trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_NAMES}
        self.gate_trackers = [keras.metrics.Mean(name=f"gate_w{k}") for k in range(len(teachers))]
        self.auc = keras.metrics.AUC(name="auc", num_thresholds=1000)
        self.logloss = keras.metrics.BinaryCrossentropy(name="logloss", from_logits=True)
        self._build_eagerly()

    # ------------------------------------------------------------------ building
    def _build_eagerly(self):
        """Create every variable now (one forward pass on a dummy row), so optimizers see them at compile."""
        dummy = _dummy_batch(self.student)
        forward = self._forward(dummy, dummy, training=False)
        if self.diit_config.use_adversarial:  # only the adversarial part has a discriminator to build
            self.discriminator(forward["adv_real"])
            self.grl(forward["adv_fake"])
        self.built = True

    def compile(self, optimizer="adam", discriminator_optimizer=None, **kwargs):
        """`optimizer` trains student, gate and mapper; `discriminator_optimizer` trains the discriminator."""
        super().compile(optimizer=optimizer, **kwargs)
        self.discriminator_optimizer = keras.optimizers.get(discriminator_optimizer or "adam")
        if self.discriminator_optimizer is self.optimizer:
            raise ValueError("`discriminator_optimizer` should be a different optimizer object from `optimizer`.")
        self.optimizer.build(self.phase2_variables)
        self.discriminator_optimizer.build(self.phase1_variables)
        self.gate_optimizer = None
        if self.diit_config.gate_fit_epochs and self.diit_config.use_gate:
            self.gate_optimizer = keras.optimizers.Adam(self.diit_config.gate_fit_learning_rate)
            self.gate_optimizer.build(self.gate_scoring_variables)
        self._gate_fit_functions = None

    @property
    def phase1_variables(self):
        """What phase 1 updates: the discriminator only."""
        return list(self.discriminator.trainable_variables)

    @property
    def uses_mapper(self) -> bool:
        """Whether a loss reads the mapper: the middle spot, or the adversary in its "mapper" form."""
        cfg = self.diit_config
        return cfg.use_middle or (cfg.use_adversarial and cfg.adversary == "mapper")

    @property
    def phase2_variables(self):
        """What phase 2 updates: student, gate (with projections) and, when a loss reads it, the mapper. Never
        teachers or D."""
        mapper = list(self.mapper.trainable_variables) if self.uses_mapper else []
        calibration = list(self.gate_calibration.trainable_variables) if self.gate_calibration is not None else []
        return list(self.student.trainable_variables) + list(self.gate.trainable_variables) + calibration + mapper

    @property
    def gate_scoring_variables(self):
        """The gate's variables that shape its weights g(x) (not the projections P_k, which only the middle spot
        reads), and the gate loss's calibration when there is one: what `fit_gate` trains."""
        projections = {id(v) for p in (self.gate.projections or []) for v in p.trainable_variables}
        calibration = list(self.gate_calibration.trainable_variables) if self.gate_calibration is not None else []
        return [v for v in self.gate.trainable_variables if id(v) not in projections] + calibration

    @property
    def metrics(self):
        return list(self.trackers.values()) + self.gate_trackers + [self.auc, self.logloss]

    # ------------------------------------------------------------------ forward
    def call(self, inputs, training=False):
        """The student's prediction, `{"representation", "logit"}`: what is served."""
        return self.student(inputs, training=training)

    def _teachers(self, x):
        """The frozen sources' `(representations, logits)` on `x`, as lists over sources: read from `x` when it
        carries them (`TEACHER_KEYS`, see `teacher_outputs`), computed otherwise."""
        if TEACHER_KEYS[1] in x:
            logits = tf.split(tf.cast(x[TEACHER_KEYS[1]], tf.float32), len(self.teachers), axis=-1)
            reps = tf.split(tf.cast(x[TEACHER_KEYS[0]], tf.float32), self.teacher_dims, axis=-1)
            return [tf.stop_gradient(r) for r in reps], [tf.stop_gradient(z) for z in logits]
        x = {k: x[k] for k in self._input_names}  # not the extra keys a mix batch may carry (ORIGIN_KEY)
        outs = [t(x, training=False) for t in self.teachers]
        reps = [tf.stop_gradient(o["representation"]) for o in outs]
        logits = [tf.stop_gradient(o["logit"]) for o in outs]
        return reps, logits

    @property
    def _input_names(self) -> list:
        """The student's input feature names (the keys every batch of features must carry)."""
        inputs = self.student.input
        return list(inputs) if isinstance(inputs, Mapping) else [t.name for t in self.student.inputs]

    @property
    def learns_gate(self) -> bool:
        """Whether the gate's weights are learned (a gate, and more than one source): what a prior or a fit of the
        gate (`DIITConfig.gate_prior`, `gate_fit_epochs`) can act on."""
        return not self.gate._fixed_weights

    def set_gate_prior(self, weights) -> None:
        """Set the gate's domain-level prior `π` (K weights, one per teacher; `DIITConfig.gate_prior`), e.g. once
        per period from each source's quality on the target's labelled rows (`diit_tf.baselines.kd.quality_weights`)."""
        self.gate.set_prior(weights)

    def gate_weights(self, features, batch_size: int = 8192) -> np.ndarray:
        """The gate's weights `g(x)` (N, K) on rows `features` (numpy arrays): what the gate would give these rows
        in a training step (a diagnostic: it trains nothing). The sources run only for a gate whose query reads
        their outputs (`query_reads_sources`; the library's gate reads the student alone)."""
        names = self._input_names
        n = len(features[names[0]])
        reads_sources = getattr(self.gate, "query_reads_sources", True)  # an unknown gate: assume it reads them
        out = []
        for start in range(0, n, batch_size):
            x = {k: features[k][start:start + batch_size] for k in names}
            _, _, query = self._student_pass(x, False)
            reps, logits = self._teachers(x) if reads_sources else (None, None)
            out.append(keras.ops.convert_to_numpy(self.gate.gate(self.gate.query(query, reps, logits))))
        return np.concatenate(out) if out else np.zeros((0, len(self.teachers)), np.float32)

    def teacher_outputs(self, features, batch_size: int = 8192) -> dict:
        """Every source's representation and logit on `features` (numpy arrays), computed once in large batches:
        `{"teacher_representations": (N, Σ_k d_k), "teacher_logits": (N, K)}`. Adding these arrays to the rows
        of a batch (`dict(features, **outputs)`) makes the training step read them instead of calling the
        teachers: the same values (the teachers are frozen) for less work, since a row the step sees several times
        (the target rows, once per epoch) or a batch of a few hundred rows costs far more per row than one large
        batch. Only the rows the step will see should be passed."""
        if self._teacher_function is None:
            @tf.function(reduce_retracing=True)  # one trace serves every batch size (the last chunk is shorter)
            def run(x):
                outs = [t(x, training=False) for t in self.teachers]
                return (tf.concat([o["representation"] for o in outs], axis=-1),
                        tf.concat([tf.reshape(o["logit"], (-1, 1)) for o in outs], axis=-1))
            self._teacher_function = run
        names = self._input_names
        n = len(features[names[0]])
        reps, logits = [], []
        for start in range(0, n, batch_size):
            r, z = self._teacher_function({k: features[k][start:start + batch_size] for k in names})
            reps.append(r.numpy())
            logits.append(z.numpy())
        width = sum(self.teacher_dims)
        return {TEACHER_KEYS[0]: np.concatenate(reps) if reps else np.zeros((0, width), np.float32),
                TEACHER_KEYS[1]: np.concatenate(logits) if logits else np.zeros((0, len(self.teachers)), np.float32)}

    def fit_gate(self, dataset, epochs: int, seed: int = 0, loss: str = "supervised") -> dict:
        """Fit the gate alone on its supervised loss (`gate_supervision_loss`, the form `gate_loss`) over labelled
        target rows, or (`loss="origin"`) on its origin loss (`origin_ce`) over mix rows whose features carry
        `ORIGIN_KEY`, with the gate's own optimizer (Adam at `DIITConfig.gate_fit_learning_rate`, built when
        `gate_fit_epochs` > 0). Only `gate_scoring_variables` change: the student is read stop-gradiented (the
        gate's query, `training=False`) and the sources are frozen, so neither moves during the fit.

        `dataset`: one pass over the rows, batches `(x, y)` (x may carry the sources' outputs, `TEACHER_KEYS`; with
        `loss="origin"` it must carry `ORIGIN_KEY`, and y is not read).
        One pass of the student and the sources computes each row's gate query and the sources' logits, kept in
        memory ((query width + K + 1) floats per row); then `epochs` passes over them, each in a new order (seeded
        by `seed`) and in batches of the dataset's first batch size, each pass one traced call. Returns
        `{"gate_bce": mean loss of the last pass, "steps": steps taken}`. Under a `tf.distribute` strategy every
        replica takes each whole batch, so every worker should read the same rows (the pipeline does not shard
        this dataset)."""
        if getattr(self, "gate_optimizer", None) is None:
            raise ValueError("This model has no gate optimizer: build it with `DIITConfig(gate_fit_epochs=N)`, N > 0, "
                             "and a gate (`use_gate=True`), and compile it")
        strategy = tf.distribute.get_strategy()
        if loss not in ("supervised", "origin"):
            raise ValueError(f"`loss` should be 'supervised' or 'origin'. Received: {loss!r}")
        if getattr(self, "_gate_fit_functions", None) is None:
            self._gate_fit_functions = self._make_gate_fit_functions(strategy)
        inputs_of, one_pass = self._gate_fit_functions[0], self._gate_fit_functions[1][loss]
        name = "gate_bce" if loss == "supervised" else "origin"  # the loss's name in the result (LOSS_NAMES)
        queries, logits, labels, batch_size = [], [], [], None
        for x, y in dataset:
            if loss == "origin" and ORIGIN_KEY not in x:
                raise ValueError(f"fit_gate(loss='origin') needs each row's source: the rows' features should carry "
                                 f"{ORIGIN_KEY!r}")
            q, z = inputs_of(x)
            queries.append(q.numpy())
            logits.append(z.numpy())
            target = x[ORIGIN_KEY] if loss == "origin" else y
            labels.append(np.asarray(target, np.int32 if loss == "origin" else np.float32).reshape(-1))
            batch_size = batch_size or len(labels[-1])
        if not labels:
            return {name: float("nan"), "steps": 0}
        queries, logits, labels = (tf.constant(np.concatenate(v)) for v in (queries, logits, labels))
        rng = np.random.default_rng(seed)
        size = tf.constant(batch_size)
        steps, last = 0, float("nan")
        for _ in range(int(epochs)):
            order = tf.constant(rng.permutation(int(labels.shape[0])))
            mean, n = one_pass(tf.gather(queries, order), tf.gather(logits, order), tf.gather(labels, order), size)
            steps, last = steps + int(n), float(mean)
        return {name: last, "steps": steps}

    def _make_gate_fit_functions(self, strategy) -> tuple:
        """`fit_gate`'s traced pieces: the gate's inputs on a batch, and one pass of gate updates over cached rows."""
        names = self._input_names
        k = len(self.teachers)

        @tf.function(reduce_retracing=True)
        def inputs_of(x):
            _, _, query = self._student_pass({n: x[n] for n in names}, False)
            reps, logits = self._teachers(x)
            return (self.gate.query(query, reps, logits),
                    tf.concat([tf.reshape(tf.cast(z, tf.float32), (-1, 1)) for z in logits], axis=-1))

        def supervised(query, logits, y):
            return self.gate_supervision_loss(y, {"gate_target": self.gate.gate(query),
                                                  "z_sources_target": tf.split(logits, k, axis=-1)})

        def origin(query, logits, source):
            return origin_ce(self.gate.gate(query, with_prior=False), source)

        def step_of(loss_of):
            def step(query, logits, target):
                variables = self.gate_scoring_variables
                with tf.GradientTape() as tape:
                    loss = loss_of(query, logits, target)
                    replica_loss = scaled_for_replicas(loss)
                grads = tape.gradient(replica_loss, variables)
                self.gate_optimizer.apply_gradients(zip(grads, variables))
                return loss
            return step

        # One pass over the cached rows (already in the pass's order) in one traced call, slicing the batches out of
        # the tensors: a loop over a tf.data pipeline inside the trace cost ~100x more per step (measured). Under a
        # strategy every replica takes the whole batch (the same rows), and its gradient of loss / replicas is summed
        # over the replicas: the single-device update, with the same number of steps everywhere.
        def pass_of(step):
            @tf.function(reduce_retracing=True)
            def one_pass(queries, logits, labels, batch_size):
                rows = tf.shape(labels)[0]
                count = (rows + batch_size - 1) // batch_size
                total = tf.constant(0.0)
                for i in tf.range(count):
                    batch = slice(i * batch_size, tf.minimum((i + 1) * batch_size, rows))
                    total += strategy.reduce(tf.distribute.ReduceOp.MEAN, strategy.run(
                        step, args=(queries[batch], logits[batch], labels[batch])), axis=None)
                return total / tf.cast(tf.maximum(count, 1), tf.float32), count
            return one_pass

        return inputs_of, {"supervised": pass_of(step_of(supervised)), "origin": pass_of(step_of(origin))}

    def _student_pass(self, x, training):
        """`(e_T, z_T, gate query)` from one student pass; the query is stop-gradiented (the gate reads the
        student but does not shape it)."""
        if self._student_with_embeddings is not None:
            representation, logit, embeddings = self._student_with_embeddings(x, training=training)
            return representation, logit, tf.stop_gradient(embeddings)
        out = self.student(x, training=training)
        return out["representation"], out["logit"], tf.stop_gradient(out["representation"])

    @property
    def _supervises_gate(self) -> bool:
        return self.diit_config.gate_supervision > 0 and self.diit_config.use_gate

    def _kd_weights(self, weights):
        """The gate's weights where KD mixes the sources: sharpened (`routing_temperature`), and constants unless
        the KD losses train the gate (`gate_from_kd`)."""
        kd_weights = sharpened(weights, self.diit_config.routing_temperature)
        return kd_weights if self.diit_config.gate_from_kd else tf.stop_gradient(kd_weights)

    def _forward(self, x_t, x_m, training):
        """Everything both phases need, from ONE student pass over the target and mix rows stacked together
        (and one pass of each teacher over the rows the losses use): the same values as separate calls, with
        fewer, larger kernels.
        """
        cfg = self.diit_config
        names = self._input_names
        n_t = tf.shape(x_t[names[0]])[0]
        x_all = {k: tf.concat([x_t[k], tf.cast(x_m[k], x_t[k].dtype)], axis=0) for k in names}
        e_all, z_all, query_all = self._student_pass(x_all, training)
        n_m = tf.shape(e_all)[0] - n_t
        # tf.split, not slicing: its gradient is one concat instead of zero-padded StridedSliceGrads.
        e_target, e_mix = tf.split(e_all, [n_t, n_m], axis=0)
        z_target, z_mix = tf.split(z_all, [n_t, n_m], axis=0)
        forward = {"z_target": z_target, "e_target": e_target, "e_mix": e_mix, "z_mix": z_mix}
        # Gate supervision and the target rows' logit spot need the sources' view of the labelled target rows too.
        on_target = self._supervises_gate or cfg.target_kd > 0
        if on_target and TEACHER_KEYS[1] in x_m:
            x_all.update({k: tf.concat([x_t[k], x_m[k]], axis=0) for k in TEACHER_KEYS})
        reps, logits = self._teachers(x_all if on_target else x_m)
        query = query_all if on_target else tf.split(query_all, [n_t, n_m], axis=0)[1]
        if not self.gate.built:  # the first (eager, dummy) pass builds the gate through Keras' __call__
            self.gate(query, reps, logits)
        weights = self.gate.gate(self.gate.query(query, reps, logits))
        if on_target:
            forward["gate_target"], weights = tf.split(weights, [n_t, n_m], axis=0)
            forward["z_sources_target"] = [z[:n_t] for z in logits]
            if cfg.target_kd > 0:  # z̄_S on the target rows, from the gate's KD weights there
                forward["z_bar_target"] = self.gate.aggregate_logit(self._kd_weights(forward["gate_target"]),
                                                                    forward["z_sources_target"])
            reps, logits = [r[n_t:] for r in reps], [z[n_t:] for z in logits]
        if cfg.reads_origin and ORIGIN_KEY in x_m:  # absent only from the dummy batch that builds the model
            forward["origin"] = x_m[ORIGIN_KEY]
        if cfg.gate_origin > 0 and self.gate.prior_logits is not None:
            # the origin loss teaches the learned scores alone which source a row comes from; the prior then
            # weighs that by the sources' quality: g_k ∝ π_k P(k | x)
            query_mix = tf.split(query, [n_t, n_m], axis=0)[1] if on_target else query
            forward["gate_origin"] = self.gate.gate(self.gate.query(query_mix, reps, logits), with_prior=False)
        kd_weights = self._kd_weights(weights)
        if cfg.route_by_origin and "origin" in forward:
            kd_weights = routed_by_origin(kd_weights, forward["origin"])
        e_bar, z_bar = self.gate.aggregate(kd_weights, reps, logits)
        forward.update({"z_bar": z_bar, "gate": weights})
        if self.uses_mapper:  # else neither the middle spot nor the mapper's adversary reads it: no mapper pass
            if cfg.middle_spot == "mapper":  # the paper: the mapper carries ē_S into the student's space
                forward["middle_student"], forward["middle_source"] = e_mix, self.mapper(e_bar)
            else:                            # FitNets: regress every source's representation from the student's
                forward["middle_student"] = self.mapper(e_mix)
                forward["middle_source"] = tf.concat(reps, axis=-1)  # teachers' outputs: already stop-gradiented
                forward["middle_weights"] = kd_weights
        if cfg.use_adversarial:
            if cfg.adversary == "mapper":  # real: the student's side, fake: the source side of the middle spot
                forward["adv_real"], forward["adv_fake"] = forward["middle_student"], forward["middle_source"]
            else:                          # the student's representations of target rows vs mix rows
                forward["adv_real"], forward["adv_fake"] = e_target, e_mix
        return forward

    # ------------------------------------------------------------------ losses
    def discriminator_loss(self, forward):
        """Phase 1: `BCE(D(sg(real)), 1) + BCE(D(sg(fake)), 0)`."""
        d_real = self.discriminator(tf.stop_gradient(forward["adv_real"]))
        d_fake = self.discriminator(tf.stop_gradient(forward["adv_fake"]))
        return adversarial_bce(d_real, True) + adversarial_bce(d_fake, False)

    def adversarial_loss(self, forward):
        """Phase 2's `L_adv2`, through the gradient reversal layer (D frozen in this phase).

        - adversary "mapper", middle spot "mapper" (the paper): `BCE(D(GRL(h_S)), 0)`, plus
          `BCE(D(GRL(e_T)), 1)` when `symmetric_adversarial`;
        - adversary "mapper", middle spot "student": the trainable side is the student's, `BCE(D(GRL(Mapper(e_T))), 1)`;
        - adversary "domain": `BCE(D(GRL(e_T(x_t))), 1) + BCE(D(GRL(e_T(x_m))), 0)`, DANN's game in the student.
        """
        cfg = self.diit_config
        real_side = adversarial_bce(self.discriminator(self.grl(forward["adv_real"])), True)
        fake_side = adversarial_bce(self.discriminator(self.grl(forward["adv_fake"])), False)
        if cfg.adversary == "domain":
            return real_side + fake_side
        if cfg.middle_spot == "student":
            return real_side
        return fake_side + real_side if cfg.symmetric_adversarial else fake_side

    def middle_spot_loss(self, forward):
        """`L_MSE`. Middle spot "mapper" (the paper): `mean (e_T - Mapper(ē_S))²`. Middle spot "student":
        `mean_b Σ_k g_k(x_b) · mean_j (R_k(e_T(x_b))_j - e_Sk(x_b)_j)²`, where `R_k` is the mapper's output block
        for source k and the teachers' representations are constants: each source's representation is regressed
        in its own space (independently trained sources' spaces are not aligned, so they are never summed)."""
        if self.diit_config.middle_spot == "mapper":
            return middle_spot_mse(forward["middle_student"], forward["middle_source"])
        student = tf.split(forward["middle_student"], self.teacher_dims, axis=-1)
        source = tf.split(forward["middle_source"], self.teacher_dims, axis=-1)
        per_source = tf.stack([tf.reduce_mean(tf.square(a - b), axis=-1) for a, b in zip(student, source)], axis=-1)
        return tf.reduce_mean(tf.reduce_sum(forward["middle_weights"] * per_source, axis=-1))

    def gate_supervision_loss(self, y_t, forward):
        """The gate's supervised loss on labelled target rows (`gate_loss`):

        - "mixture": `BCE(y, σ(Σ_k g_k(x) z_Sk(x)))`, or `BCE(y, σ(a · Σ_k g_k z_Sk + b))` with
          `gate_calibration` (a, b learned, this loss only);
        - "confidence": `mean_b Σ_k -q_k log g_k` with `q = softmax_k(-BCE(y, σ(z_Sk)) / gate_temperature)`.
        """
        cfg = self.diit_config
        g = forward["gate_target"]
        z = tf.concat([tf.reshape(v, (-1, 1)) for v in forward["z_sources_target"]], axis=-1)  # (B, K)
        if cfg.gate_loss == "mixture":
            mixed = tf.reduce_sum(g * z, axis=-1, keepdims=True)
            return ctr_bce(y_t, mixed if self.gate_calibration is None else self.gate_calibration(mixed))
        y = tf.reshape(tf.cast(y_t, tf.float32), (-1, 1))
        per_source = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.broadcast_to(y, tf.shape(z)), logits=z)
        q = tf.stop_gradient(tf.nn.softmax(-per_source / cfg.gate_temperature, axis=-1))
        return tf.reduce_mean(-tf.reduce_sum(q * tf.math.log(g + 1e-12), axis=-1))

    def student_losses(self, y_t, forward):
        """Phase 2 losses by name; `loss` is the total the student, gate and mapper minimise. Only `ce` (and
        `gate_bce`) read labels, and only the target rows'."""
        cfg = self.diit_config
        losses = {"ce": ctr_bce(y_t, forward["z_target"])}
        total = losses["ce"]
        if cfg.use_adversarial:
            losses["adv2"] = self.adversarial_loss(forward)
            total = total + cfg.beta1 * losses["adv2"]
        if self.uses_mapper:
            losses["mse"] = self.middle_spot_loss(forward)
        losses["kl"] = logit_spot_kl(forward["z_bar"], forward["z_mix"], cfg.tau)
        kd = 0.0
        if cfg.use_middle:
            kd = kd + cfg.alpha * losses["mse"]
        if cfg.target_kd > 0:
            losses["kl_target"] = logit_spot_kl(forward["z_bar_target"], forward["z_target"], cfg.tau)
        if cfg.use_logit:
            kl = losses["kl"] + cfg.target_kd * losses["kl_target"] if cfg.target_kd > 0 else losses["kl"]
            kd = kd + (1.0 - cfg.alpha) * kl
        losses["kd"] = tf.convert_to_tensor(kd, tf.float32)
        total = total + cfg.beta2 * losses["kd"]
        if self._supervises_gate:
            losses["gate_bce"] = self.gate_supervision_loss(y_t, forward)
            total = total + cfg.gate_supervision * losses["gate_bce"]
        if cfg.reads_origin and "origin" not in forward:
            option = "gate_origin > 0" if cfg.gate_origin > 0 else "route_by_origin"
            raise ValueError(f"DIITConfig.{option} needs each mix row's source: the mix batch's features should "
                             f"carry {ORIGIN_KEY!r} (an index into the sources, < 0 for none)")
        if cfg.gate_origin > 0:
            losses["origin"] = origin_ce(forward.get("gate_origin", forward["gate"]), forward["origin"])
            total = total + cfg.gate_origin * losses["origin"]
        losses["loss"] = total
        return losses

    # ------------------------------------------------------------------ steps
    def _unpack(self, data):
        try:
            (x_t, y_t), x_m = data
        except (TypeError, ValueError):
            raise ValueError("DIITModel.fit expects elements ((target_features, target_labels), mix_features). "
                             f"Received: {type(data).__name__} of length {len(data) if hasattr(data, '__len__') else '?'}") from None
        check_backbone_inputs(self.student, x_t, "target batch")
        check_backbone_inputs(self.student, x_m, "mix batch")
        return x_t, tf.cast(y_t, tf.float32), x_m

    def train_step(self, data):
        x_t, y_t, x_m = self._unpack(data)
        cfg = self.diit_config
        with tf.GradientTape() as tape:
            forward = self._forward(x_t, x_m, training=True)
            if cfg.use_adversarial:
                with tape.stop_recording():
                    adv1 = self.discriminator_step(forward)
                self.trackers["adv1"].update_state(adv1)
            losses = self.student_losses(y_t, forward)
            replica_loss = scaled_for_replicas(losses["loss"])
        variables = self.phase2_variables
        grads = tape.gradient(replica_loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        for name, value in losses.items():
            self.trackers[name].update_state(value)
        mean_gate = tf.reduce_mean(forward["gate"], axis=0)
        for k, tracker in enumerate(self.gate_trackers):
            tracker.update_state(mean_gate[k])
        return self._results(train=True)

    def discriminator_step(self, forward):
        """Phase 1: one update of the discriminator on `L_adv1`; returns the loss."""
        variables = self.phase1_variables
        with tf.GradientTape() as tape:
            loss = self.discriminator_loss(forward)
            replica_loss = scaled_for_replicas(loss)
        grads = tape.gradient(replica_loss, variables)
        self.discriminator_optimizer.apply_gradients(zip(grads, variables))
        return loss

    def test_step(self, data):
        """Target-domain evaluation: `(features, labels)` -> `auc`, `logloss`."""
        if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], Mapping):
            x, y = data
        else:
            raise ValueError("DIITModel.evaluate expects (target_features, target_labels) batches.")
        check_backbone_inputs(self.student, x, "evaluation batch")
        y = tf.reshape(tf.cast(y, tf.float32), (-1, 1))
        logit = self.student(x, training=False)["logit"]
        self.auc.update_state(y, tf.sigmoid(logit))
        self.logloss.update_state(y, logit)
        return {"auc": self.auc.result(), "logloss": self.logloss.result()}

    def evaluate(self, *args, **kwargs):
        """Keras' evaluate, with the target metrics returned as Python floats."""
        result = super().evaluate(*args, **kwargs)
        if isinstance(result, dict):
            return {k: float(v) for k, v in result.items()}
        if isinstance(result, (list, tuple)):
            return [float(v) for v in result]
        return float(result)

    def _results(self, train):
        out = {name: t.result() for name, t in self.trackers.items() if name != "gate_bce" or
               self._supervises_gate}
        if not self.diit_config.gate_origin > 0:
            out.pop("origin")
        if not self.diit_config.target_kd > 0:
            out.pop("kl_target")
        if not self.diit_config.use_adversarial:
            out.pop("adv1"), out.pop("adv2")
        if not self.uses_mapper:
            out.pop("mse")
        out.update({t.name: t.result() for t in self.gate_trackers})
        return out

    def get_config(self):
        return {"name": self.name, "config": self.diit_config.to_dict()}

    @classmethod
    def from_config(cls, config):
        raise NotImplementedError("DIITModel is a training harness: save and reload `model.student` (and the "
                                  "teachers) instead of the whole model.")


def make_diit_dataset(target_features, target_labels, mix_features, batch_size=256, mix_batch_size=None, seed=0):
    """Zip a shuffled target dataset with a repeated, shuffled mix dataset into DIIT's `((x_t, y_t), x_m)` batches.

    One pass over the target rows is one epoch; the mix batches cycle as needed.
    """
    mix_batch_size = mix_batch_size or batch_size
    n_target = len(target_labels)
    if n_target == 0:
        raise ValueError("The target dataset is empty: DIIT needs labelled target rows to train on.")
    n_mix = len(next(iter(mix_features.values())))
    if n_mix == 0:
        raise ValueError("The mix dataset is empty: DIIT needs rows of the source domains.")
    target = tf.data.Dataset.from_tensor_slices((dict(target_features), np.asarray(target_labels, np.float32)))
    target = target.shuffle(min(n_target, 100_000), seed=seed).batch(batch_size)
    mix = tf.data.Dataset.from_tensor_slices(dict(mix_features)).shuffle(min(n_mix, 100_000), seed=seed + 1)
    mix = mix.repeat().batch(mix_batch_size, drop_remainder=True)
    return tf.data.Dataset.zip((target, mix)).prefetch(tf.data.AUTOTUNE)
