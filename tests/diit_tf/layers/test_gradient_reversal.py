"""Tests for diit_tf.layers.gradient_reversal."""
import numpy as np
import pytest

from diit_tf.layers.gradient_reversal import GradientReversal

import keras  # noqa: E402  (after diit_tf, which silences TensorFlow)
import tensorflow as tf  # noqa: E402


def _grad(layer, x, w):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(w * layer(x))
    return tape.gradient(y, x).numpy()


def test_forward_is_identity():
    x = np.array([[1.0, -2.0, 3.5]], dtype="float32")
    np.testing.assert_array_equal(GradientReversal(lam=0.7)(x).numpy(), x)


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0, 2.0])
def test_gradient_is_minus_lam_times_upstream(lam):
    w = tf.constant([[1.0, -2.0, 3.0]])
    grad = _grad(GradientReversal(lam=lam), [[4.0, 5.0, 6.0]], w)
    # Exact: -lam * w, computed by hand.
    np.testing.assert_array_equal(grad, np.array([[-lam * 1.0, lam * 2.0, -lam * 3.0]], dtype="float32"))


def test_lam_is_schedulable_after_build_and_inside_tf_function():
    layer = GradientReversal(lam=1.0)
    w = tf.constant([[1.0, 1.0, 1.0]])
    x = tf.constant([[1.0, 2.0, 3.0]])

    @tf.function
    def grad_fn(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(w * layer(x))
        return tape.gradient(y, x)

    np.testing.assert_array_equal(grad_fn(x).numpy(), [[-1.0, -1.0, -1.0]])
    layer.lam = 0.25  # same traced function, new value read from the weight
    np.testing.assert_array_equal(grad_fn(x).numpy(), [[-0.25, -0.25, -0.25]])
    assert layer.lam == 0.25
    assert layer.get_config()["lam"] == 0.25
    assert len(layer.non_trainable_weights) == 1 and not layer.trainable_weights


def test_lam_set_before_build_is_used():
    layer = GradientReversal(lam=1.0)
    layer.lam = 3.0
    grad = _grad(layer, [[1.0, 1.0, 1.0]], tf.constant([[1.0, 1.0, 1.0]]))
    np.testing.assert_array_equal(grad, [[-3.0, -3.0, -3.0]])


@pytest.mark.parametrize("bad", [-0.1, -1, "1.0", None, True, float("nan")])
def test_bad_lam_raises(bad):
    with pytest.raises(ValueError, match="`lam` should be a non-negative number"):
        GradientReversal(lam=bad)


def test_bad_lam_in_setter_raises_and_keeps_value():
    layer = GradientReversal(lam=0.5)
    layer(tf.zeros((1, 3)))
    with pytest.raises(ValueError, match="`lam`"):
        layer.lam = -2.0
    assert layer.lam == 0.5


def test_config_round_trip():
    layer = GradientReversal(lam=0.3, name="grl")
    layer(tf.zeros((1, 3)))
    layer.lam = 0.6
    config = layer.get_config()
    assert config["lam"] == pytest.approx(0.6)
    restored = GradientReversal.from_config(config)
    assert restored.get_config() == config
    assert restored.lam == pytest.approx(0.6)


def test_save_load_round_trip(tmp_path):
    inputs = keras.Input(shape=(3,))
    outputs = keras.layers.Dense(2, kernel_initializer="ones")(GradientReversal(lam=0.4, name="grl")(inputs))
    model = keras.Model(inputs, outputs)
    model.get_layer("grl").lam = 0.9
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_layer("grl").lam == pytest.approx(0.9)
    x = np.array([[1.0, 2.0, 3.0]], dtype="float32")
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy())
    np.testing.assert_allclose(loaded(x).numpy(), [[6.0, 6.0]])
