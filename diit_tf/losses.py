"""The losses of DIIT, as plain functions on tensors that return a float32 scalar.

- `middle_spot_mse`: the migrator's middle spot, student representation vs mapped source representation.
- `logit_spot_kl`: the migrator's logit spot, temperature-softened Bernoulli KL from the aggregated source logit.
- `adversarial_bce`: the domain discriminator's loss against an all-target or all-source label.
- `ctr_bce`: the click-through-rate loss on labelled target samples.
- `origin_ce`: the gate's origin loss, its weights against the source each mix row was drawn from.

Reference: Huang et al., "DIIT: A Domain-Invariant Information Transfer Method for Industrial Cross-Domain
Recommendation", CIKM 2024, arXiv 2410.10835; the formulas are this project's reading (docs/method.md).
None of these functions stops gradients: whoever calls them decides which side is frozen (e.g. the teachers are
frozen by never handing their variables to an optimizer, and the gate is trained through the logit spot).
"""
from __future__ import annotations

import numbers

import tensorflow as tf

__all__ = ["middle_spot_mse", "logit_spot_kl", "adversarial_bce", "ctr_bce", "origin_ce"]


def _float32(x) -> tf.Tensor:
    return tf.cast(tf.convert_to_tensor(x), tf.float32)


def _same_shape(a: tf.Tensor, b: tf.Tensor, a_name: str, b_name: str) -> None:
    if a.shape.rank is not None and b.shape.rank is not None and not a.shape.is_compatible_with(b.shape):
        raise ValueError(
            f"`{a_name}` and `{b_name}` should have the same shape. "
            f"Received: {a_name}.shape={a.shape}, {b_name}.shape={b.shape}"
        )


def middle_spot_mse(student_repr, mapped_source_repr) -> tf.Tensor:
    """Middle-spot distillation loss: the plain element mean of the squared difference.

    `L_MSE = mean_{b, j} (e_T(x_b)_j - h_S(x_b)_j)^2` over all B x d elements (not the per-example sum of
    squares `||.||^2`, so its scale does not grow with the representation width d).

    Args:
        student_repr: (B, d) target-model (student) representation `e_T(x)`.
        mapped_source_repr: (B, d) mapped aggregated source representation `h_S(x) = Mapper(ē_S(x))`.

    Returns:
        float32 scalar.
    """
    student_repr = _float32(student_repr)
    mapped_source_repr = _float32(mapped_source_repr)
    _same_shape(student_repr, mapped_source_repr, "student_repr", "mapped_source_repr")
    return tf.reduce_mean(tf.square(student_repr - mapped_source_repr))


def logit_spot_kl(teacher_logit, student_logit, temperature) -> tf.Tensor:
    """Logit-spot distillation loss: `τ² · mean_b KL(p_τ(z_teacher) ‖ p_τ(z_student))`.

    `p_τ(z) = [σ(z/τ), 1 - σ(z/τ)]` is the click Bernoulli softened by temperature τ, and for one example
    `KL(p ‖ q) = p_1 (log p_1 - log q_1) + p_0 (log p_0 - log q_0)`. Logs are taken with `log_sigmoid`
    (`log σ(u)` and `log(1 - σ(u)) = log σ(-u)`), so large logits neither overflow nor give `0 · log 0`.
    The τ² factor keeps gradient magnitudes comparable across temperatures (Hinton et al., 2015).

    Args:
        teacher_logit: (B, 1) or (B,) aggregated source logit `z̄_S(x)` (the gate is trained through it).
        student_logit: same shape, the target model's logit `z_T(x)`.
        temperature: τ > 0, a Python number or a scalar tensor (only a Python number is checked eagerly).

    Returns:
        float32 scalar (0 when the two logits are equal).
    """
    if isinstance(temperature, bool) or (
        isinstance(temperature, numbers.Real) and not temperature > 0
    ):
        raise ValueError(f"`temperature` should be > 0. Received: temperature={temperature!r}")
    teacher_logit = _float32(teacher_logit)
    student_logit = _float32(student_logit)
    _same_shape(teacher_logit, student_logit, "teacher_logit", "student_logit")
    tau = _float32(temperature)
    t = teacher_logit / tau
    s = student_logit / tau
    log_p1, log_p0 = tf.math.log_sigmoid(t), tf.math.log_sigmoid(-t)
    log_q1, log_q0 = tf.math.log_sigmoid(s), tf.math.log_sigmoid(-s)
    kl = tf.exp(log_p1) * (log_p1 - log_q1) + tf.exp(log_p0) * (log_p0 - log_q0)
    return tf.square(tau) * tf.reduce_mean(kl)


def adversarial_bce(logits, is_target: bool) -> tf.Tensor:
    """Domain-discriminator loss: mean sigmoid cross-entropy of `logits` against one constant label.

    Label 1 (`is_target=True`) means "target-model representation", 0 means "mapped source representation":
    `BCE(z, 1) = softplus(-z) = -log σ(z)` and `BCE(z, 0) = softplus(z) = -log(1 - σ(z))`, averaged over the batch.
    Phase 1 minimises `adversarial_bce(D(e_T), True) + adversarial_bce(D(h_S), False)` over D's weights.

    Args:
        logits: (B, 1) or (B,) discriminator logits.
        is_target: Python bool, the label shared by the whole batch.

    Returns:
        float32 scalar.
    """
    if not isinstance(is_target, bool):
        raise ValueError(f"`is_target` should be a Python bool. Received: is_target={is_target!r}")
    logits = _float32(logits)
    return tf.reduce_mean(tf.math.softplus(-logits if is_target else logits))


def ctr_bce(labels, logits) -> tf.Tensor:
    """Click-through-rate loss: mean sigmoid binary cross-entropy from logits, `mean_b BCE(y_b, σ(z_b))`.

    Args:
        labels: (B,) or (B, 1) 0/1 labels (any numeric dtype; cast to float32).
        logits: (B, 1) logits (or (B,)); labels are reshaped to the logits' shape.

    Returns:
        float32 scalar.
    """
    logits = _float32(logits)
    labels = tf.reshape(_float32(labels), tf.shape(logits))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def origin_ce(weights, origin, epsilon: float = 1e-12) -> tf.Tensor:
    """The gate's origin loss: `mean_{b: o_b >= 0} -log g_{o_b}(x_b)`, the cross-entropy of the gate's weights
    against the source each mix row was drawn from (`o_b`, an index into the sources; negative for a row of no
    source, e.g. a target row of the mix, which is left out). Its minimiser is `g_k(x) = P(row from source k | x)`,
    which Mansour, Mohri and Rostamizadeh (NeurIPS 2008) weigh the sources' predictors by, the distribution-weighted
    combining rule. 0 when no row has a source.

    Args:
        weights: (B, K) the gate's weights (rows sum to 1).
        origin: (B,) or (B, 1) integer source index per row, < 0 for none.
        epsilon: added inside the log.

    Returns:
        float32 scalar.
    """
    weights = _float32(weights)
    origin = tf.reshape(tf.cast(origin, tf.int32), [-1])
    has = origin >= 0
    picked = tf.gather(weights, tf.maximum(origin, 0), axis=1, batch_dims=1)
    nll = tf.where(has, -tf.math.log(picked + epsilon), 0.0)
    return tf.math.divide_no_nan(tf.reduce_sum(nll), tf.reduce_sum(tf.cast(has, tf.float32)))
