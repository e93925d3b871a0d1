"""HAMUR: the hypernetwork's and the adapter's shapes, an adapter forward computed by hand on a 1x3 input, the
domain norm's statistics, and the routing of each row through its own domain's tower."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from diit_tf.baselines import DomainNorm, HyperAdapter, HyperNetwork, build_hamur_model, joint_features
from diit_tf.simulation.training import CTRTrainer

from multi_domain_rows import cycling_period


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# ------------------------------------------------------------------------------------------------------- shapes
def test_hypernetwork_maps_each_instance_to_a_k_by_k_matrix():
    hyper = HyperNetwork(rank=5, hidden_units=(8,))
    m = hyper(tf.random.normal((4, 12)))
    assert m.shape == (4, 5, 5)
    assert [tuple(w.shape) for w in hyper.weights] == [(12, 8), (8,), (8, 25), (25,)]
    assert float(tf.reduce_min(m)) >= 0.0  # ReLU on the output layer too, as in the reference
    with pytest.raises(ValueError, match="rank"):
        HyperNetwork(rank=0)


def test_adapter_factors_and_generated_weights_have_the_documented_shapes():
    adapter = HyperAdapter(bottleneck=4, rank=3)
    h, m = tf.random.normal((2, 6)), tf.random.uniform((2, 3, 3))
    assert adapter(h, m).shape == (2, 6)
    shapes = {w.path.split("/")[-1]: tuple(w.shape) for w in adapter.weights}
    assert shapes == {"u_down": (6, 3), "v_down": (3, 4), "b_down": (4,), "u_up": (4, 3), "v_up": (3, 6),
                      "b_up": (6,), "gamma": (6,), "beta": (6,), "moving_mean": (6,), "moving_variance": (6,)}
    w_down, w_up = adapter.adapter_weights(m)
    assert w_down.shape == (2, 6, 4) and w_up.shape == (2, 4, 6)
    # W_down(x) = U M(x) V for each row, and the cheap right-to-left product equals h · W_down(x)
    u, v = adapter.u_down.numpy(), adapter.v_down.numpy()
    for b in range(2):
        np.testing.assert_allclose(w_down[b], u @ m[b].numpy() @ v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(adapter._through(h, adapter.u_down, m, adapter.v_down),
                               np.einsum("bd,bdr->br", h.numpy(), w_down.numpy()), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------- forward by hand
def _hand_adapter():
    adapter = HyperAdapter(bottleneck=2, rank=2)
    adapter.build((None, 3), (None, 2, 2))
    values = {
        "u_down": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
        "v_down": [[0.1, 0.0], [0.0, 0.1]],
        "b_down": [0.0, -1.0],
        "u_up": [[1.0, 0.0], [0.0, 1.0]],
        "v_up": [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]],
        "b_up": [0.0, 0.0, 0.5],
        "gamma": [1.0, 2.0, 1.0],
        "beta": [0.0, 0.0, 1.0],
        "moving_mean": [0.0, 1.0, 1.0],
        "moving_variance": [1.0, 4.0, 0.25],
    }
    for w in adapter.weights:
        w.assign(np.array(values[w.path.split("/")[-1]], np.float32))
    return adapter


H = np.array([[1.0, 2.0, 3.0]], np.float32)
M = np.array([[[1.0, 0.0], [0.0, 2.0]]], np.float32)


def test_adapter_forward_by_hand_at_inference():
    # h U_down = [1+3, 2+3] = [4, 5]; · M = [4, 10]; · V_down = [0.4, 1.0]; + b_down = [0.4, 0.0]; σ -> [σ(.4), .5]
    # a U_up = a; · M = [σ(.4), 1.0]; · V_up = [σ(.4), 1, 1]; + b_up: u = [σ(.4), 1, 1.5]
    # norm (moving stats): γ (u - μ) / sqrt(v + ε) + β = [σ(.4)/sqrt(1+ε), 2·0/sqrt(4+ε), 0.5/sqrt(.25+ε) + 1]
    eps = 1e-5
    u = np.array([_sigmoid(0.4), 1.0, 1.5])
    normed = np.array([1.0, 2.0, 1.0]) * (u - [0.0, 1.0, 1.0]) / np.sqrt(np.array([1.0, 4.0, 0.25]) + eps) \
        + [0.0, 0.0, 1.0]
    expected = H[0] + normed  # ≈ [1 + σ(0.4), 2, 5]
    out = _hand_adapter()(tf.constant(H), tf.constant(M), training=False)
    np.testing.assert_allclose(out.numpy()[0], expected, rtol=1e-5)
    np.testing.assert_allclose(out.numpy()[0], [1 + _sigmoid(0.4), 2.0, 5.0], rtol=1e-4)


def test_adapter_forward_by_hand_in_training_moves_the_moving_statistics():
    adapter = _hand_adapter()
    out = adapter(tf.constant(H), tf.constant(M), training=True)
    # one row: the batch mean is u itself and the variance 0, so the normalised part is β
    np.testing.assert_allclose(out.numpy()[0], H[0] + [0.0, 0.0, 1.0], rtol=1e-5)
    u = np.array([_sigmoid(0.4), 1.0, 1.5])
    np.testing.assert_allclose(adapter.norm.moving_mean.numpy(), [0.0, 1.0, 1.0] + 0.01 * (u - [0.0, 1.0, 1.0]),
                               rtol=1e-5)
    np.testing.assert_allclose(adapter.norm.moving_variance.numpy(), 0.99 * np.array([1.0, 4.0, 0.25]), rtol=1e-5)


def test_domain_norm_on_an_empty_batch_changes_nothing():
    norm = DomainNorm()
    norm.build((None, 2))
    norm.moving_mean.assign([1.0, 2.0])
    out = norm(tf.zeros((0, 2)), training=True)
    assert out.shape == (0, 2)
    np.testing.assert_array_equal(norm.moving_mean.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(norm.moving_variance.numpy(), [1.0, 1.0])
    with pytest.raises(ValueError, match="momentum"):
        DomainNorm(momentum=1.0)


def test_layer_configs_round_trip():
    for layer in (DomainNorm(momentum=0.9), HyperNetwork(rank=3, hidden_units=(4, 2)), HyperAdapter(5, 3)):
        clone = layer.__class__.from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()


# ----------------------------------------------------------------------------------------------- the model
def _period(spec):
    return cycling_period(spec, n=40)


def _model(spec):
    return build_hamur_model(spec, hidden_units=(8, 4), embedding_dim=4, adapter_units=3, rank=2, hyper_units=(5,))


def test_model_outputs_follow_the_backbone_contract(tiny_spec):
    model = _model(tiny_spec)
    out = model(joint_features(_period(tiny_spec)))
    assert out["representation"].shape == (40, 4) and out["logit"].shape == (40, 1)
    names = {w.path.split("/")[-1] for w in model.weights}
    assert {"u_down", "v_down", "u_up", "v_up", "moving_mean"} <= names


def test_each_row_goes_through_its_own_domain_tower_only(tiny_spec):
    model = _model(tiny_spec)
    period = _period(tiny_spec)
    x = joint_features(period)
    before = model(x)["logit"].numpy()
    towers = model.get_layer("domain_towers")
    towers.heads[2].bias.assign([5.0])  # change domain 2's output layer only
    after = model(x)["logit"].numpy()
    ids = period.domain_ids
    np.testing.assert_allclose(after[ids != 2], before[ids != 2], rtol=1e-6)
    np.testing.assert_allclose(after[ids == 2], before[ids == 2] + 5.0, rtol=1e-5)


@pytest.mark.slow
def test_served_predictions_do_not_depend_on_the_other_rows_of_the_batch(tiny_spec):
    model = _model(tiny_spec)
    period = _period(tiny_spec)
    x = joint_features(period)
    alone = model.predict(joint_features(period.subset(period.domains == "target")), verbose=0)["logit"]
    mixed = model.predict(x, verbose=0)["logit"]
    np.testing.assert_allclose(alone, mixed[period.domains == "target"], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_training_updates_the_hypernetwork_and_the_domains_seen(tiny_spec):
    model = _model(tiny_spec)
    period = _period(tiny_spec)
    keep = period.domains != "source_b"  # source_b has no rows: its tower and statistics stay untouched
    part = period.subset(keep)
    towers = model.get_layer("domain_towers")
    hyper_before = [w.numpy().copy() for w in model.get_layer("hypernetwork").weights]
    b_before = [w.numpy().copy() for w in towers.adapters[2].weights + towers.towers[2].weights]
    t_before = towers.adapters[0].norm.moving_mean.numpy().copy()
    trainer = CTRTrainer(model)
    trainer.compile(optimizer=keras.optimizers.Adam(0.01))
    trainer.fit(tf.data.Dataset.from_tensors((joint_features(part), part.labels)), epochs=3, verbose=0)
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(hyper_before, model.get_layer("hypernetwork").weights))
    assert not np.allclose(t_before, towers.adapters[0].norm.moving_mean.numpy())
    for a, w in zip(b_before, towers.adapters[2].weights + towers.towers[2].weights):
        np.testing.assert_array_equal(a, w.numpy())


@pytest.mark.slow
def test_model_saves_and_loads_with_equal_outputs(tiny_spec, tmp_path):
    model = _model(tiny_spec)
    x = joint_features(_period(tiny_spec))
    path = tmp_path / "hamur.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x)["logit"], model(x)["logit"], rtol=1e-6)
