"""The gate loss's optimum over fixed weights: the loss by hand, and a fit that routes where one source knows a group."""
import numpy as np
import pytest

from diit_tf.simulation.mixture import mixture_fit, mixture_loss


def test_mixture_loss_by_hand():
    z = np.array([[2.0, 0.0], [-1.0, 1.0]])
    y = np.array([1.0, 0.0])
    # mixed logits with weights (0.75, 0.25), a = 2, b = -0.5: 2 * 1.5 - 0.5 = 2.5 and 2 * (-0.5) - 0.5 = -1.5
    expected = (np.log1p(np.exp(-2.5)) + np.log1p(np.exp(-1.5))) / 2
    assert mixture_loss(z, y, np.array([0.75, 0.25]), a=2.0, b=-0.5) == pytest.approx(expected)
    per_row = np.array([[1.0, 0.0], [0.0, 1.0]])                 # row 1 from source 0 (2.0), row 2 from source 1 (1.0)
    assert mixture_loss(z, y, per_row) == pytest.approx((np.log1p(np.exp(-2.0)) + np.log1p(np.exp(1.0))) / 2)


def test_the_fit_routes_each_group_to_the_source_that_knows_it():
    rng = np.random.default_rng(0)
    n = 4000
    truth = rng.normal(0.0, 2.0, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-truth))).astype(float)
    group = np.where(np.arange(n) < n // 2, "a", "b")
    noise = rng.normal(0.0, 2.0, n)
    # source 0 knows group a (its logit there is the truth), source 1 group b; elsewhere each is pure noise
    logits = np.stack([np.where(group == "a", truth, noise), np.where(group == "b", truth, noise[::-1])], axis=1)
    routed = mixture_fit(logits, labels, group)
    shared = mixture_fit(logits, labels)
    assert routed["weights"]["a"][0] > 0.9 and routed["weights"]["b"][1] > 0.9
    assert shared["weights"]["0"][0] == pytest.approx(0.5, abs=0.1)  # symmetric sources: no shared preference
    assert routed["loss"] < shared["loss"] - 0.05 and shared["loss"] <= shared["uniform_loss"] + 1e-9


def test_identical_sources_leave_nothing_to_route():
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 1.5, 2000)
    labels = (rng.random(2000) < 1 / (1 + np.exp(-z))).astype(float)
    fit = mixture_fit(np.stack([z, z], axis=1), labels, np.where(np.arange(2000) % 2, "x", "y"))
    assert fit["loss"] == pytest.approx(fit["uniform_loss"], abs=1e-6)
