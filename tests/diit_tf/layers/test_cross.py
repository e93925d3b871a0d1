import keras
import numpy as np
import pytest

from diit_tf.layers.cross import CrossLayer


def test_cross_layer_matches_hand_computation():
    # x0 = x = [1, 2, 3]; W = ones(3, 3), b = 0  =>  W x = [6, 6, 6]; x0 * Wx + x = [6, 12, 18] + [1, 2, 3]
    layer = CrossLayer(kernel_initializer="ones", bias_initializer="zeros")
    x0 = np.array([[1.0, 2.0, 3.0]], "float32")
    out = keras.ops.convert_to_numpy(layer(x0, x0))
    np.testing.assert_allclose(out, [[7.0, 14.0, 21.0]])


def test_cross_layer_low_rank_hand_computation():
    # U = ones(3, 1): U^T x = 6; V = ones(1, 3), b = 0: V(6) = [6, 6, 6]; same result as full rank with ones
    layer = CrossLayer(projection_dim=1, kernel_initializer="ones")
    x0 = np.array([[1.0, 2.0, 3.0]], "float32")
    x = np.array([[0.0, 1.0, 0.0]], "float32")
    # U^T x = 1, V -> [1, 1, 1]; x0 * [1,1,1] + x = [1, 3, 3]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x0, x)), [[1.0, 3.0, 3.0]])


def test_cross_layer_config_and_save_round_trip(tmp_path):
    layer = CrossLayer(projection_dim=2, name="cross")
    assert CrossLayer.from_config(layer.get_config()).get_config() == layer.get_config()
    inp = keras.Input((4,))
    model = keras.Model(inp, layer(inp, inp))
    x = np.random.default_rng(0).random((5, 4)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(model(x), loaded(x), rtol=1e-6)


def test_cross_layer_bad_arguments():
    with pytest.raises(ValueError, match="projection_dim"):
        CrossLayer(projection_dim=0)
    layer = CrossLayer()
    with pytest.raises(ValueError, match="same last dimension"):
        layer(np.ones((1, 3), "float32"), np.ones((1, 4), "float32"))
