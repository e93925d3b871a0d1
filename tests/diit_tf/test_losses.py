"""Tests for diit_tf.losses: every expected value computed by hand with `math`."""
import math

import numpy as np
import pytest

from diit_tf import losses

import tensorflow as tf  # noqa: E402  (after diit_tf, which silences TensorFlow)


def _sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def _bernoulli_kl(p, q):
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def test_middle_spot_mse_hand_value():
    a = tf.constant([[1.0, 2.0, 3.0]])
    b = tf.constant([[0.0, 4.0, 3.5]])
    # (1 + 4 + 0.25) / 3 elements
    value = losses.middle_spot_mse(a, b)
    assert value.dtype == tf.float32 and value.shape == ()
    assert float(value) == pytest.approx(5.25 / 3)


def test_middle_spot_mse_is_element_mean_over_batch_and_width():
    a = tf.constant([[1.0, 1.0], [0.0, 0.0]])
    b = tf.zeros((2, 2))
    assert float(losses.middle_spot_mse(a, b)) == pytest.approx(2.0 / 4)


def test_middle_spot_mse_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same shape"):
        losses.middle_spot_mse(tf.zeros((1, 3)), tf.zeros((1, 4)))


def test_logit_spot_kl_zero_when_equal():
    z = tf.constant([[-3.0], [0.0], [2.5]])
    assert float(losses.logit_spot_kl(z, z, 2.0)) == pytest.approx(0.0, abs=1e-7)


def test_logit_spot_kl_hand_value_tau_2():
    tau = 2.0
    p, q = _sigmoid(1.0 / tau), _sigmoid(-1.0 / tau)
    expected = tau**2 * _bernoulli_kl(p, q)
    value = losses.logit_spot_kl(tf.constant([[1.0]]), tf.constant([[-1.0]]), tau)
    assert value.dtype == tf.float32 and value.shape == ()
    assert float(value) == pytest.approx(expected, rel=1e-5)


def test_logit_spot_kl_batch_mean_and_direction():
    teacher, student = [2.0, -1.0, 0.5], [0.0, 1.0, 0.5]
    tau = 1.0
    expected = sum(_bernoulli_kl(_sigmoid(t), _sigmoid(s)) for t, s in zip(teacher, student)) / 3
    value = losses.logit_spot_kl(tf.constant([teacher]).numpy().T, tf.constant([student]).numpy().T, tau)
    assert float(value) == pytest.approx(expected, rel=1e-5)
    # KL is not symmetric: swapping teacher and student changes the value.
    swapped = sum(_bernoulli_kl(_sigmoid(s), _sigmoid(t)) for t, s in zip(teacher, student)) / 3
    assert abs(swapped - expected) > 1e-3
    assert float(losses.logit_spot_kl(np.array(student), np.array(teacher), tau)) == pytest.approx(swapped, rel=1e-5)


def test_logit_spot_kl_scales_with_tau_squared():
    t, s = tf.constant([[0.3]]), tf.constant([[-0.8]])
    for tau in (0.5, 3.0):
        softened = _bernoulli_kl(_sigmoid(0.3 / tau), _sigmoid(-0.8 / tau))
        assert float(losses.logit_spot_kl(t, s, tau)) == pytest.approx(tau**2 * softened, rel=1e-5)


def test_logit_spot_kl_stable_for_large_logits():
    value = losses.logit_spot_kl(tf.constant([[200.0]]), tf.constant([[-200.0]]), 1.0)
    # p ~ 1, q ~ e^-200: KL ~ -log q = 200 (the 0 * log 0 term vanishes).
    assert np.isfinite(float(value))
    assert float(value) == pytest.approx(200.0, rel=1e-4)


def test_logit_spot_kl_accepts_tensor_temperature():
    tau = 2.0
    expected = tau**2 * _bernoulli_kl(_sigmoid(0.5), _sigmoid(-0.5))
    value = losses.logit_spot_kl(tf.constant([[1.0]]), tf.constant([[-1.0]]), tf.constant(tau))
    assert float(value) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, float("nan")])
def test_logit_spot_kl_bad_temperature_raises(bad):
    with pytest.raises(ValueError, match="`temperature` should be > 0"):
        losses.logit_spot_kl(tf.zeros((1, 1)), tf.zeros((1, 1)), bad)


def test_adversarial_bce_hand_values():
    logits = tf.constant([[0.0], [2.0], [-1.0]])
    target = sum(-math.log(_sigmoid(z)) for z in (0.0, 2.0, -1.0)) / 3
    source = sum(-math.log(1 - _sigmoid(z)) for z in (0.0, 2.0, -1.0)) / 3
    assert float(losses.adversarial_bce(logits, True)) == pytest.approx(target, rel=1e-6)
    assert float(losses.adversarial_bce(logits, False)) == pytest.approx(source, rel=1e-6)
    assert float(losses.adversarial_bce(tf.zeros((4, 1)), True)) == pytest.approx(math.log(2), rel=1e-6)


def test_adversarial_bce_rejects_non_bool():
    with pytest.raises(ValueError, match="`is_target` should be a Python bool"):
        losses.adversarial_bce(tf.zeros((1, 1)), 1)


@pytest.mark.parametrize("labels", [[1.0, 0.0, 1.0], [[1.0], [0.0], [1.0]], [1, 0, 1]])
def test_ctr_bce_hand_value(labels):
    logits = tf.constant([[0.5], [1.5], [-2.0]])
    expected = (-math.log(_sigmoid(0.5)) - math.log(1 - _sigmoid(1.5)) - math.log(_sigmoid(-2.0))) / 3
    value = losses.ctr_bce(tf.constant(labels), logits)
    assert value.dtype == tf.float32 and value.shape == ()
    assert float(value) == pytest.approx(expected, rel=1e-6)


def test_losses_are_differentiable_towards_both_sides():
    t = tf.Variable([[1.0]])
    s = tf.Variable([[-1.0]])
    with tf.GradientTape() as tape:
        loss = losses.logit_spot_kl(t, s, 2.0)
    gt, gs = tape.gradient(loss, [t, s])
    assert float(gs) != 0.0 and float(gt) != 0.0


def test_origin_ce_hand_value_leaves_rows_of_no_source_out():
    g = np.array([[0.8, 0.2], [0.3, 0.7], [0.5, 0.5], [0.9, 0.1]], np.float32)
    origin = np.array([0, 0, -1, 1])
    expected = -(math.log(0.8) + math.log(0.3) + math.log(0.1)) / 3
    np.testing.assert_allclose(losses.origin_ce(g, origin).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(losses.origin_ce(g, origin.reshape(-1, 1)).numpy(), expected, rtol=1e-6)
    assert losses.origin_ce(g, np.full(4, -1)).numpy() == 0.0
