import keras
import numpy as np
import pytest

from diit_tf.backbones import BACKBONES, build_backbone


def _batch(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return {"user_id": rng.integers(0, 97, n), "item_id": rng.integers(0, 53, n),
            "price": rng.random(n).astype("float32")}


@pytest.mark.parametrize("kind", sorted(BACKBONES))
def test_backbone_contract_and_save_round_trip(kind, tiny_spec, tmp_path):
    model = build_backbone(kind, tiny_spec, hidden_units=(16, 8), embedding_dim=4, name="student")
    out = model(_batch())
    assert set(out) == {"representation", "logit"}
    assert tuple(out["representation"].shape) == (6, 8) and tuple(out["logit"].shape) == (6, 1)
    model.save(tmp_path / "b.keras")
    loaded = keras.saving.load_model(tmp_path / "b.keras")
    again = loaded(_batch())
    np.testing.assert_allclose(out["logit"], again["logit"], rtol=1e-6)
    np.testing.assert_allclose(out["representation"], again["representation"], rtol=1e-6)


def test_wide_part_is_linear_in_ids(tiny_spec):
    """W&D logit = wide + deep: zeroing the deep head leaves exactly the sum of the wide weights of the ids."""
    model = build_backbone("wdl", tiny_spec, hidden_units=(4,), embedding_dim=2)
    dense = model.get_layer("logit_dense")
    dense.set_weights([np.zeros_like(w) for w in dense.get_weights()])
    wide = model.get_layer("wide_features")
    tables = {n: t.embeddings.numpy() for n, t in wide.tables.items()}
    batch = _batch(3)
    expected = tables["user_id"][batch["user_id"], 0] + tables["item_id"][batch["item_id"], 0] + batch["price"]
    np.testing.assert_allclose(model(batch)["logit"].numpy()[:, 0], expected, rtol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(hidden_units=()), "hidden_units"),
    (dict(hidden_units=(8, 0)), "hidden_units"),
    (dict(dropout=1.0), "dropout"),
])
def test_bad_backbone_arguments(tiny_spec, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_backbone("dnn", tiny_spec, **kwargs)


def test_unknown_backbone_is_named(tiny_spec):
    with pytest.raises(ValueError, match="'transformer'"):
        build_backbone("transformer", tiny_spec)
    with pytest.raises(ValueError, match="cross_layers"):
        build_backbone("dcn", tiny_spec, cross_layers=0)
