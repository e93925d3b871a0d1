"""Plain knowledge distillation from a fixed weighting of frozen teachers (Hinton et al., 2015): the transfer
baselines DIIT must beat, and the controls that tell what its gate adds.

The teacher logit is a fixed convex combination of the frozen teachers' logits on the mix batch,
`z̄(x) = Σ_k w_k z_k(x)` (`w_k >= 0`, `Σ_k w_k = 1`); the student minimises
`BCE(y_t, σ(z_T(x_t))) + β · τ² · KL(p_τ(z̄(x_m)) ‖ p_τ(z_T(x_m)))` with `p_τ(z) = [σ(z/τ), 1-σ(z/τ)]`
(the same logit-spot loss as DIIT, `diit_tf.losses.logit_spot_kl`). No gate, no mapper, no adversary: the weights
are set from outside (`set_teacher_weights`, e.g. once per period) and never learned.

Weightings (`static_weights`), from each teacher's *gain over chance* on labelled target rows (`teacher_gains`):
- `uniform`: `w_k = 1/K` (`UniformKD`, the `kd_uniform` baseline);
- `best`: all weight on the teacher with the largest gain (`kd_best_single`);
- `above_chance`: `w_k ∝ max(g_k, 0)`, uniform when no teacher beats chance (`kd_static`'s parameter-free rule);
- `softmax`: `w_k = softmax(g / t)_k` with temperature `t > 0` (`t → 0`: `best`; `t → ∞`: `uniform`).
Per-row weights: a mix batch whose features carry `ROW_WEIGHTS` ((B, K), rows summing to 1) is distilled from
`z̄(x_b) = Σ_k W_bk z_k(x_b)` instead (`kd_origin`: each row from the source it came from).
The gain `g_k` is `AUC_k - 0.5` (quality `auc`) or `H(ȳ) - LogLoss_k` (quality `logloss`, where `H(ȳ)` is the
log loss of always predicting the rows' click rate ȳ), so 0 means "no better than chance" for both measures.

Example:
    model = WeightedKD(teachers=[src_a, src_b], student=build_backbone("dnn", spec), beta=0.5, temperature=2.0)
    gains = teacher_gains(teacher_logits(teachers, x_t), y_t, quality="auc")
    model.set_teacher_weights(static_weights(gains, "above_chance"))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(transfer_dataset(target_rows, mix_rows, 512, seed=0), epochs=1)   # ((x_t, y_t), x_m)

Args (WeightedKD):
  teachers: K >= 1 teacher backbones (frozen here: `trainable=False`, never given to the optimizer).
  student: the target backbone.
  beta: weight of the distillation term (>= 0).
  temperature: τ > 0.
  weights: the initial teacher weights, K non-negative numbers with a positive sum (normalised); default uniform.
"""
from __future__ import annotations

from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from diit_tf.counts import is_number
from diit_tf.ctr import auc, logloss
from diit_tf.losses import ctr_bce, logit_spot_kl

QUALITIES = ("auc", "logloss")
# The key of a mix batch's features holding per-row teacher weights, (B, K); without it the fixed weights apply.
ROW_WEIGHTS = "teacher_row_weights"
WEIGHTINGS = ("uniform", "best", "above_chance", "softmax")


# ------------------------------------------------------------------------------------------- weighting rules
def teacher_logits(teachers, features, chunk: int = 8192) -> list:
    """Each teacher's logits on `features` (a dict of (n,) arrays), flat float64, `chunk` rows per direct call
    (a few times cheaper than `Model.predict`'s loop for the once-per-period scoring of a few thousand rows)."""
    n = len(next(iter(features.values())))
    out = []
    for teacher in teachers:
        parts = [np.asarray(teacher({k: v[i:i + chunk] for k, v in features.items()}, training=False)["logit"])
                 for i in range(0, n, chunk)]
        out.append(np.concatenate(parts).astype(np.float64).reshape(-1))
    return out


def teacher_gains(teacher_logits, labels, quality: str = "auc") -> np.ndarray:
    """Each teacher's gain over chance on labelled rows: `AUC_k - 0.5` or `H(ȳ) - LogLoss_k` (see module doc).

    Args:
      teacher_logits: K arrays of logits, one per teacher, each (n,) or (n, 1), on the same n labelled rows.
      labels: (n,) 0/1 labels.
      quality: "auc" or "logloss".

    Returns:
      float64 array (K,). With a single class among the labels the AUC is undefined and every gain is NaN.
    """
    if quality not in QUALITIES:
        raise ValueError(f"`quality` should be one of {QUALITIES}. Received: {quality!r}")
    labels = np.asarray(labels, np.float64).reshape(-1)
    if labels.size == 0:
        raise ValueError("`labels` is empty: cannot score the teachers on no rows")
    if quality == "auc":
        return np.array([auc(labels, z) - 0.5 for z in teacher_logits], np.float64)
    rate = float(np.clip(labels.mean(), 1e-7, 1 - 1e-7))
    chance = -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))
    return np.array([chance - logloss(labels, z) for z in teacher_logits], np.float64)


def static_weights(gains, weighting: str = "above_chance", temperature: float = 0.01) -> np.ndarray:
    """Fixed teacher weights from gains over chance (higher is better); they sum to 1.

    `uniform`: 1/K; `best`: one-hot on the largest gain (the first on ties); `above_chance`: `∝ max(g_k, 0)`, uniform
    when no gain is positive; `softmax`: `softmax(g / temperature)`. NaN gains (undefined quality) count as chance
    (0), so with no usable labels every rule but `best` falls back to uniform and `best` picks the first teacher.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"`weighting` should be one of {WEIGHTINGS}. Received: {weighting!r}")
    gains = np.nan_to_num(np.asarray(gains, np.float64).reshape(-1), nan=0.0)
    k = gains.size
    if k == 0:
        raise ValueError("`gains` is empty: need one gain per teacher")
    if weighting == "uniform":
        return np.full(k, 1.0 / k)
    if weighting == "best":
        return np.eye(k)[int(np.argmax(gains))]
    if weighting == "above_chance":
        positive = np.maximum(gains, 0.0)
        total = positive.sum()
        return positive / total if total > 0 else np.full(k, 1.0 / k)
    if not temperature > 0:
        raise ValueError(f"`temperature` should be > 0. Received: {temperature!r}")
    scaled = gains / float(temperature)
    scaled = np.exp(scaled - scaled.max())
    return scaled / scaled.sum()


def quality_weights(logits, labels, quality: str = "auc", weighting: str = "softmax",
                    temperature: float = 0.01) -> tuple:
    """`(gains, weights)`: each teacher's gain over chance on labelled rows (`teacher_gains`) and the fixed weights
    they give (`static_weights`). `logits`: K arrays of the teachers' logits on the same labelled rows. This is
    `kd_static`'s weighting, and the domain-level prior of DIIT's gate (`DIITConfig(gate_prior="quality")`)."""
    gains = teacher_gains(logits, labels, quality)
    return gains, static_weights(gains, weighting, temperature)


# The options of a fixed-weighting KD student (WeightedKD's, and what `--methods kd_static:option=value` may change)
# and the bound each holds.
KD_OPTION_BOUNDS = {"beta": ">= 0", "temperature": "> 0", "target_kd": ">= 0"}


def kd_option_problem(name: str, value) -> Optional[str]:
    """Why `value` is no valid KD option `name` (`KD_OPTION_BOUNDS`: a number, not a boolean, within its bound), in
    one sentence naming it, or None when it is valid."""
    bound = KD_OPTION_BOUNDS[name]
    if is_number(value) and (value > 0 if bound == "> 0" else value >= 0):
        return None
    return f"`{name}` should be a number {bound}. Received: {value!r}"


# ------------------------------------------------------------------------------------------------- the model
class WeightedKD(keras.Model):
    def __init__(self, teachers, student, beta: float = 0.5, temperature: float = 2.0, weights=None,
                 target_kd: float = 0.0, **kwargs):
        kwargs.setdefault("name", "kd")
        super().__init__(**kwargs)
        teachers = list(teachers or [])
        if not teachers:
            raise ValueError("`teachers` should hold at least one teacher backbone. Received: none")
        for name, value in (("beta", beta), ("temperature", temperature), ("target_kd", target_kd)):
            problem = kd_option_problem(name, value)
            if problem:
                raise ValueError(problem)
        for teacher in teachers:
            teacher.trainable = False
        self.teachers = teachers
        self.student = student
        self.beta = float(beta)
        self.temperature = float(temperature)
        self.target_kd = float(target_kd)
        # A variable, so new weights each period reuse the traced train step.
        self.teacher_weights = self.add_weight(shape=(len(teachers),), initializer="zeros", trainable=False,
                                               name="teacher_weights")
        self.set_teacher_weights(np.full(len(teachers), 1.0 / len(teachers)) if weights is None else weights)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "ce", "kl")}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def set_teacher_weights(self, weights) -> np.ndarray:
        """Set the fixed teacher weights (K non-negative numbers, normalised to sum 1); returns them."""
        weights = np.asarray(weights, np.float64).reshape(-1)
        if weights.size != len(self.teachers):
            raise ValueError(f"`weights` should hold one weight per teacher ({len(self.teachers)}). "
                             f"Received: {weights.size}")
        if not (np.all(np.isfinite(weights)) and np.all(weights >= 0) and weights.sum() > 0):
            raise ValueError(f"`weights` should be finite, non-negative and not all zero. Received: {weights.tolist()}")
        weights = weights / weights.sum()
        self.teacher_weights.assign(weights.astype(np.float32))
        return weights

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def ensemble_logit(self, x):
        """`Σ_k w_k z_k(x)` over the frozen teachers, (B, 1); per row with `x[ROW_WEIGHTS]` when `x` has it."""
        weights = x.get(ROW_WEIGHTS, self.teacher_weights)
        x = {k: v for k, v in x.items() if k != ROW_WEIGHTS}
        logits = tf.concat([tf.stop_gradient(t(x, training=False)["logit"]) for t in self.teachers], axis=-1)
        return tf.reduce_sum(logits * tf.cast(weights, logits.dtype), axis=-1, keepdims=True)

    def compute_kd_loss(self, x_t, y_t, x_m):
        """`(loss, ce, kl)` of one step: `ce + β·kl` (see the module doc); with `target_kd` λ > 0 the labelled
        target rows get a logit spot too, from the same fixed weights, `ce + β·(kl + λ·KL(x_t))` (as
        `DIITConfig.target_kd`), and `kl` is the sum `kl + λ·KL(x_t)`."""
        x_t = {k: v for k, v in x_t.items() if k != ROW_WEIGHTS}
        student_t = self.student(x_t, training=True)["logit"]
        ce = ctr_bce(y_t, student_t)
        student_m = {k: v for k, v in x_m.items() if k != ROW_WEIGHTS}
        kl = logit_spot_kl(self.ensemble_logit(x_m), self.student(student_m, training=True)["logit"],
                           self.temperature)
        if self.target_kd > 0:
            kl = kl + self.target_kd * logit_spot_kl(self.ensemble_logit(x_t), student_t, self.temperature)
        return ce + self.beta * kl, ce, kl

    def train_step(self, data):
        (x_t, y_t), x_m = data
        variables = self.student.trainable_variables
        with tf.GradientTape() as tape:
            loss, ce, kl = self.compute_kd_loss(x_t, y_t, x_m)
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        for name, value in (("loss", loss), ("ce", ce), ("kl", kl)):
            self.trackers[name].update_state(value)
        return {name: t.result() for name, t in self.trackers.items()}


class UniformKD(WeightedKD):
    """KD from the uniform average of the teachers, `z̄ = (1/K) Σ_k z_k` (the `kd_uniform` baseline)."""

    def __init__(self, teachers, student, beta: float = 0.5, temperature: float = 2.0, **kwargs):
        kwargs.setdefault("name", "kd_uniform")
        super().__init__(teachers, student, beta=beta, temperature=temperature, weights=None, **kwargs)
