"""Tests for diit_tf.layers.mapper."""
import numpy as np
import pytest

from diit_tf.layers.mapper import Mapper

import keras  # noqa: E402  (after diit_tf, which silences TensorFlow)

X = np.array([[1.0, -2.0, 3.0]], dtype="float32")


def _set_ones(layer):
    for weight in layer.weights:
        weight.assign(np.ones(weight.shape, dtype="float32") if "kernel" in weight.path else np.zeros(weight.shape))


def test_hand_value_with_ones_kernels():
    mapper = Mapper(output_dim=2, hidden_units=(4,))
    mapper(X)
    _set_ones(mapper)
    # hidden = relu(1 - 2 + 3) = 2 in each of 4 units; output = 4 * 2 = 8 (linear, no activation)
    np.testing.assert_allclose(mapper(X).numpy(), [[8.0, 8.0]])
    # hidden relu(-1 + 2 - 3) = relu(-2) = 0
    np.testing.assert_allclose(mapper(-X).numpy(), [[0.0, 0.0]])
    # the last layer is linear: with biases, hidden = relu(2 + 5) = 7, output = 4 * 7 - 100 < 0 passes through
    mapper.hidden_layers[0].bias.assign(np.full(4, 5.0, dtype="float32"))
    mapper.output_layer.bias.assign(np.full(2, -100.0, dtype="float32"))
    np.testing.assert_allclose(mapper(X).numpy(), [[4 * 7.0 - 100.0] * 2])


def test_shapes_and_depth():
    mapper = Mapper(output_dim=5, hidden_units=(8, 6))
    out = mapper(np.zeros((4, 3), dtype="float32"))
    assert out.shape == (4, 5)
    assert [tuple(layer.kernel.shape) for layer in mapper.hidden_layers] == [(3, 8), (8, 6)]
    assert tuple(mapper.output_layer.kernel.shape) == (6, 5)
    assert mapper.output_layer.activation is keras.activations.linear


def test_int_hidden_units_is_accepted():
    assert Mapper(output_dim=3, hidden_units=16).hidden_units == (16,)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"output_dim": 0}, "output_dim"),
        ({"output_dim": 2.5}, "output_dim"),
        ({"output_dim": 3, "hidden_units": ()}, "hidden_units"),
        ({"output_dim": 3, "hidden_units": (8, 0)}, "hidden_units"),
        ({"output_dim": 3, "hidden_units": "64"}, "hidden_units"),
        ({"output_dim": 3, "activation": "no_such_activation"}, "activation"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}` should be"):
        Mapper(**kwargs)


def test_config_round_trip():
    layer = Mapper(output_dim=7, hidden_units=(5, 3), activation="tanh", name="mapper")
    config = layer.get_config()
    assert config["output_dim"] == 7 and config["hidden_units"] == [5, 3] and config["activation"] == "tanh"
    assert Mapper.from_config(config).get_config() == config


def test_save_load_round_trip(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, Mapper(output_dim=4, hidden_units=(6, 5), name="mapper")(inputs))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(0).normal(size=(2, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)
    assert loaded.get_layer("mapper").get_config() == model.get_layer("mapper").get_config()


def test_callable_activation_config_round_trip():
    layer = Mapper(output_dim=2, activation=keras.activations.gelu)
    config = layer.get_config()
    restored = Mapper.from_config(config)
    assert restored.activation is keras.activations.gelu
    assert restored.get_config() == config
