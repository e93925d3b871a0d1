"""STAR: partitioned normalization and a star-topology layer computed by hand on a 1x2 input, and the routing of each
row through its own domain's parameters."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from diit_tf.baselines import StarTopology, build_star_model, joint_features
from diit_tf.simulation.training import CTRTrainer

from multi_domain_rows import cycling_period


def _hand_star():
    star = StarTopology(num_domains=2, hidden_units=(2,))
    star.build((None, 2))
    values = {
        "pn_gamma": [1.0, 3.0], "pn_beta": [0.5, 0.0],
        "w_0": [[1.0, 2.0], [3.0, 4.0]], "w_0_domain_1": [[1.0, 0.0], [0.0, 0.5]],
        "b_0": [0.0, -1.0], "b_0_domain_1": [1.0, 0.0],
        "w_1": [[1.0], [1.0]], "w_1_domain_1": [[2.0], [-1.0]],
        "b_1": [0.5], "b_1_domain_1": [0.0],
    }
    for name, value in values.items():
        [w for w in star.weights if w.path.split("/")[-1] == name][0].assign(np.array(value, np.float32))
    norm = star.norms[1]
    norm.moving_mean.assign([0.0, 1.0])
    norm.moving_variance.assign([1.0, 4.0])
    norm.gamma.assign([2.0, 1.0])
    norm.beta.assign([0.0, 1.0])
    return star


def test_star_forward_by_hand_at_inference():
    # PN: x̂ = [(1-0)/sqrt(1+ε), (2-1)/sqrt(4+ε)] ≈ [1, .5]
    #     (γ ⊙ γ_1) x̂ + (β + β_1) = [2·1 + .5, 3·.5 + 1] = [2.5, 2.5]
    # layer 0: W_0 ⊙ W_0,1 = [[1, 0], [0, 2]] -> [2.5, 5]; + b_0 + b_0,1 = [3.5, 4]; ReLU -> representation [3.5, 4]
    # layer 1: W_1 ⊙ W_1,1 = [[2], [-1]] -> 7 - 4 = 3; + 0.5 -> s_m = 3.5
    representation, logit = _hand_star()(tf.constant([[1.0, 2.0]]), tf.constant([1]), training=False)
    np.testing.assert_allclose(representation.numpy(), [[3.5, 4.0]], rtol=1e-4)
    np.testing.assert_allclose(logit.numpy(), [[3.5]], rtol=1e-4)


@pytest.mark.slow
def test_star_domains_start_from_the_shared_network():
    star = StarTopology(num_domains=3, hidden_units=(4,))
    x = tf.random.normal((6, 5))
    _, logit = star(x, tf.constant([0, 1, 2, 0, 1, 2]), training=False)
    _, same = star(x, tf.constant([1, 1, 1, 1, 1, 1]), training=False)
    np.testing.assert_allclose(logit.numpy(), same.numpy(), rtol=1e-5, atol=1e-6)


def _period(spec):
    return cycling_period(spec, n=30)


@pytest.mark.slow
def test_star_model_routes_rows_and_trains(tiny_spec):
    model = build_star_model(tiny_spec, hidden_units=(8, 4), embedding_dim=4, aux_units=(3,))
    period = _period(tiny_spec)
    x = joint_features(period)
    out = model(x)
    assert out["representation"].shape == (30, 4) and out["logit"].shape == (30, 1)
    star = model.get_layer("star")
    before = out["logit"].numpy()
    [w for w in star.weights if w.path.split("/")[-1] == "b_2_domain_2"][0].assign([5.0])
    after = model(x)["logit"].numpy()
    ids = period.domain_ids
    np.testing.assert_allclose(after[ids != 2], before[ids != 2], rtol=1e-6)
    np.testing.assert_allclose(after[ids == 2], before[ids == 2] + 5.0, rtol=1e-5)
    trainer = CTRTrainer(model)
    trainer.compile(optimizer=keras.optimizers.Adam(0.01))
    shared = star.shared_kernels[0].numpy().copy()
    trainer.fit(tf.data.Dataset.from_tensors((x, period.labels)), epochs=2, verbose=0)
    assert not np.allclose(shared, star.shared_kernels[0].numpy())


@pytest.mark.slow
def test_star_model_saves_and_loads_with_equal_outputs(tiny_spec, tmp_path):
    model = build_star_model(tiny_spec, hidden_units=(8, 4), embedding_dim=4, aux_units=(3,))
    star = model.get_layer("star")
    for w in star.weights:  # move every parameter away from its initial value
        w.assign(w.numpy() + np.random.default_rng(0).normal(0, 0.1, w.shape).astype(np.float32))
    x = joint_features(_period(tiny_spec))
    model.save(tmp_path / "star.keras")
    loaded = keras.models.load_model(tmp_path / "star.keras")
    np.testing.assert_allclose(loaded(x)["logit"], model(x)["logit"], rtol=1e-5)
