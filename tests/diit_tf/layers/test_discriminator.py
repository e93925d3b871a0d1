"""Tests for diit_tf.layers.discriminator."""
import numpy as np
import pytest

from diit_tf.layers.discriminator import DomainDiscriminator

import keras  # noqa: E402  (after diit_tf, which silences TensorFlow)

X = np.array([[1.0, 2.0, 3.0]], dtype="float32")


def test_hand_value_with_ones_kernels():
    disc = DomainDiscriminator(hidden_units=(2,))
    disc(X)
    for weight in disc.weights:
        weight.assign(np.ones(weight.shape, dtype="float32") if "kernel" in weight.path else np.zeros(weight.shape))
    # hidden = relu(1 + 2 + 3) = 6 in both units; logit = 6 + 6 = 12 (no sigmoid: the loss applies it)
    np.testing.assert_allclose(disc(X).numpy(), [[12.0]])
    disc.logit_layer.bias.assign(np.array([-20.0], dtype="float32"))
    np.testing.assert_allclose(disc(X).numpy(), [[-8.0]])


def test_output_is_one_logit_per_example():
    disc = DomainDiscriminator(hidden_units=(8, 4))
    out = disc(np.zeros((5, 3), dtype="float32"))
    assert out.shape == (5, 1)
    assert [tuple(layer.kernel.shape) for layer in disc.hidden_layers] == [(3, 8), (8, 4)]


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"hidden_units": ()}, "hidden_units"),
        ({"hidden_units": []}, "hidden_units"),
        ({"hidden_units": (-1,)}, "hidden_units"),
        ({"hidden_units": (4.0,)}, "hidden_units"),
        ({"hidden_units": None}, "hidden_units"),
        ({"activation": "no_such_activation"}, "activation"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}` should be"):
        DomainDiscriminator(**kwargs)


def test_config_round_trip():
    layer = DomainDiscriminator(hidden_units=(5, 3), activation="tanh", name="disc")
    config = layer.get_config()
    assert config["hidden_units"] == [5, 3] and config["activation"] == "tanh"
    assert DomainDiscriminator.from_config(config).get_config() == config


def test_save_load_round_trip(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, DomainDiscriminator(hidden_units=(6,), name="disc")(inputs))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(0).normal(size=(2, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)
    assert loaded.get_layer("disc").get_config() == model.get_layer("disc").get_config()
