import keras
import numpy as np
import pytest

from diit_tf.layers.feature_embedding import FeatureEmbedding


def test_embedding_concatenates_rows_and_numerics():
    layer = FeatureEmbedding({"a": 4, "b": 3}, ("x",), embedding_dim=2)
    layer.build()
    layer.tables["a"].embeddings.assign(np.arange(8, dtype="float32").reshape(4, 2))
    layer.tables["b"].embeddings.assign(-np.arange(6, dtype="float32").reshape(3, 2))
    out = layer({"a": np.array([1, 3]), "b": np.array([2, 0]), "x": np.array([0.5, 1.5], "float32")})
    # a rows 1, 3 = [2, 3], [6, 7]; b rows 2, 0 = [-4, -5], [0, -1]; then x
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), [[2, 3, -4, -5, 0.5], [6, 7, 0, -1, 1.5]])
    assert layer.output_dim == 5


def test_embedding_missing_feature_is_named():
    layer = FeatureEmbedding({"a": 4}, ("x",))
    with pytest.raises(ValueError, match=r"\['x'\]"):
        layer({"a": np.array([1])})


def test_embedding_config_and_save_round_trip(tmp_path):
    layer = FeatureEmbedding({"a": 4}, ("x",), embedding_dim=3, name="features")
    assert FeatureEmbedding.from_config(layer.get_config()).get_config() == layer.get_config()
    inputs = {"a": keras.Input((), dtype="int64", name="a"), "x": keras.Input((), dtype="float32", name="x")}
    model = keras.Model(inputs, layer(inputs))
    batch = {"a": np.array([0, 3]), "x": np.array([1.0, 2.0], "float32")}
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(model(batch), loaded(batch))


def test_embedding_bad_arguments():
    with pytest.raises(ValueError, match="embedding_dim"):
        FeatureEmbedding({"a": 4}, embedding_dim=0)
    with pytest.raises(ValueError, match="cannot both be empty"):
        FeatureEmbedding({}, ())
