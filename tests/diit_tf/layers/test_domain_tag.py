"""DomainTag: a constant domain index per row, saved and loaded by name."""
import keras
import numpy as np
import pytest

from diit_tf.layers import DomainTag


def test_every_row_gets_the_index():
    out = DomainTag(2)(np.array([[7], [0], [9]], np.int64))
    assert out.dtype == "int64"
    np.testing.assert_array_equal(np.asarray(out), [[2], [2], [2]])


@pytest.mark.parametrize("index", [-1, 1.5, True, "1"])
def test_a_bad_index_is_refused(index):
    with pytest.raises(ValueError, match="index"):
        DomainTag(index)


def test_a_model_with_a_tag_saves_and_loads(tmp_path):
    x = keras.Input(shape=(1,), dtype="int64", name="user_id")
    model = keras.Model(x, DomainTag(4, name="tag")(x))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")  # safe mode: no Lambda
    assert loaded.get_layer("tag").index == 4
    np.testing.assert_array_equal(np.asarray(loaded(np.array([[1], [2]], np.int64))), [[4], [4]])
