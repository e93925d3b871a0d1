"""Tests for diit_tf.layers.gating_aggregator: aggregation checked against a hand computation on 1x3 inputs."""
import math

import numpy as np
import pytest

from diit_tf.layers.gating_aggregator import GatingAggregator

import keras  # noqa: E402  (after diit_tf, which silences TensorFlow)

E_T = np.array([[1.0, 2.0, 3.0]], dtype="float32")
E_1 = np.array([[1.0, 0.0, 2.0]], dtype="float32")
E_2 = np.array([[0.0, 4.0, -1.0]], dtype="float32")
Z_1 = np.array([[0.5]], dtype="float32")
Z_2 = np.array([[-1.5]], dtype="float32")


def _set_gate(layer, hidden_kernel, output_kernel):
    layer.gate_hidden.kernel.assign(np.asarray(hidden_kernel, dtype="float32"))
    layer.gate_hidden.bias.assign(np.zeros(layer.hidden_units, dtype="float32"))
    layer.gate_output.kernel.assign(np.asarray(output_kernel, dtype="float32"))
    layer.gate_output.bias.assign(np.zeros(layer.num_sources, dtype="float32"))


def test_aggregation_matches_hand_computation():
    layer = GatingAggregator(num_sources=2, hidden_units=2)
    layer(E_T, [E_1, E_2], [Z_1, Z_2])  # build
    # hidden = relu(e_T @ H) with H columns (1,0,0) and (0,0,1): h = (1, 3)
    # gate logits = h @ O with O = [[1, 0], [0, 0.5]]: (1, 1.5)
    _set_gate(layer, [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 0.5]])
    g1 = math.exp(1.0) / (math.exp(1.0) + math.exp(1.5))
    g2 = 1.0 - g1
    e_bar, z_bar, gate = layer(E_T, [E_1, E_2], [Z_1, Z_2])
    assert not layer.projections  # equal widths, no projection_dim: identity
    np.testing.assert_allclose(gate.numpy(), [[g1, g2]], rtol=1e-6)
    np.testing.assert_allclose(e_bar.numpy(), [[g1 * 1.0, g2 * 4.0, g1 * 2.0 - g2 * 1.0]], rtol=1e-6)
    np.testing.assert_allclose(z_bar.numpy(), [[g1 * 0.5 - g2 * 1.5]], rtol=1e-6)
    # the logit alone, for given weights: 0.25 * 0.5 + 0.75 * (-1.5) = -1.0
    np.testing.assert_allclose(layer.aggregate_logit(np.array([[0.25, 0.75]], "float32"), [Z_1, Z_2]).numpy(),
                               [[-1.0]], rtol=1e-6)


def test_gate_weights_sum_to_one_per_example():
    rng = np.random.default_rng(0)
    layer = GatingAggregator(num_sources=3, hidden_units=8)
    e_t = rng.normal(size=(5, 4)).astype("float32")
    sources = [rng.normal(size=(5, 4)).astype("float32") for _ in range(3)]
    logits = [rng.normal(size=(5, 1)).astype("float32") for _ in range(3)]
    e_bar, z_bar, gate = layer(e_t, sources, logits)
    assert gate.shape == (5, 3) and e_bar.shape == (5, 4) and z_bar.shape == (5, 1)
    np.testing.assert_allclose(gate.numpy().sum(axis=1), np.ones(5), rtol=1e-6)
    assert (gate.numpy() > 0).all()


def test_uniform_gives_one_over_k_and_no_gate_weights():
    layer = GatingAggregator(num_sources=2, uniform=True)
    e_bar, z_bar, gate = layer(E_T, [E_1, E_2], [Z_1, Z_2])
    np.testing.assert_allclose(gate.numpy(), [[0.5, 0.5]])
    np.testing.assert_allclose(e_bar.numpy(), [[0.5, 2.0, 0.5]])
    np.testing.assert_allclose(z_bar.numpy(), [[-0.5]])
    assert layer.gate_hidden is None and not layer.weights


def test_projection_created_only_when_widths_differ():
    same = GatingAggregator(num_sources=2, hidden_units=4)
    same(E_T, [E_1, E_2], [Z_1, Z_2])
    assert same.projections is None
    assert len(same.trainable_weights) == 4  # gate only: 2 kernels + 2 biases

    wide = np.ones((1, 5), dtype="float32")
    differ = GatingAggregator(num_sources=2, hidden_units=4)
    e_bar, _, _ = differ(E_T, [E_1, wide], [Z_1, Z_2])
    assert len(differ.projections) == 2
    assert e_bar.shape == (1, 3)  # projected to d_T
    assert [tuple(p.kernel.shape) for p in differ.projections] == [(3, 3), (5, 3)]
    assert all(not p.use_bias for p in differ.projections)


def test_projection_dim_projects_every_source_and_is_hand_checkable():
    layer = GatingAggregator(num_sources=2, projection_dim=2, uniform=True)
    e_bar, _, _ = layer(E_T, [E_1, E_2], [Z_1, Z_2])
    assert e_bar.shape == (1, 2) and len(layer.projections) == 2
    for p in layer.projections:
        p.kernel.assign(np.ones((3, 2), dtype="float32"))
    e_bar, _, _ = layer(E_T, [E_1, E_2], [Z_1, Z_2])
    # P(e_1) = (3, 3), P(e_2) = (3, 3); uniform mean = (3, 3)
    np.testing.assert_allclose(e_bar.numpy(), [[3.0, 3.0]])


def test_logits_of_shape_b_are_accepted():
    layer = GatingAggregator(num_sources=2, uniform=True)
    _, z_bar, _ = layer(E_T, [E_1, E_2], [Z_1[:, 0], Z_2[:, 0]])
    np.testing.assert_allclose(z_bar.numpy(), [[-0.5]])


@pytest.mark.parametrize("bad", [0, -1, 1.5, None, True])
def test_bad_num_sources_raises(bad):
    with pytest.raises(ValueError, match="`num_sources` should be >= 1"):
        GatingAggregator(num_sources=bad)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"hidden_units": 0}, "hidden_units"),
        ({"hidden_units": (8, 8)}, "hidden_units"),
        ({"projection_dim": 0}, "projection_dim"),
        ({"activation": "no_such_activation"}, "activation"),
        ({"uniform": "yes"}, "uniform"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}` should be"):
        GatingAggregator(num_sources=2, **kwargs)


def test_wrong_number_of_sources_at_call_raises_naming_k():
    layer = GatingAggregator(num_sources=2)
    with pytest.raises(ValueError, match="num_sources=2"):
        layer(E_T, [E_1], [Z_1])
    layer(E_T, [E_1, E_2], [Z_1, Z_2])  # built
    with pytest.raises(ValueError, match="`source_logits` should be a list of num_sources=2"):
        layer(E_T, [E_1, E_2], [Z_1, Z_2, Z_2])


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"hidden_units": 7, "projection_dim": 5, "activation": "tanh", "uniform": False}, {"uniform": True}],
)
def test_config_round_trip(kwargs):
    layer = GatingAggregator(num_sources=3, name="gate", **kwargs)
    config = layer.get_config()
    for key, value in kwargs.items():
        assert config[key] == value
    assert GatingAggregator.from_config(config).get_config() == config


@pytest.mark.parametrize("uniform", [False, True])
def test_save_load_round_trip(tmp_path, uniform):
    e_t, e_1, e_2 = keras.Input((3,)), keras.Input((3,)), keras.Input((5,))
    z_1, z_2 = keras.Input((1,)), keras.Input((1,))
    outputs = GatingAggregator(num_sources=2, hidden_units=4, uniform=uniform, name="gate")(
        e_t, [e_1, e_2], [z_1, z_2]
    )
    model = keras.Model([e_t, e_1, e_2, z_1, z_2], list(outputs))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    rng = np.random.default_rng(1)
    inputs = [rng.normal(size=(2, d)).astype("float32") for d in (3, 3, 5, 1, 1)]
    for expected, actual in zip(model(inputs), loaded(inputs)):
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-6)
    assert loaded.get_layer("gate").get_config() == model.get_layer("gate").get_config()


def test_single_source_has_weight_one_and_no_gate_network():
    import numpy as np
    from diit_tf.layers.gating_aggregator import GatingAggregator

    layer = GatingAggregator(num_sources=1, hidden_units=4)
    e_t = np.ones((2, 3), "float32")
    e_s = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], "float32")
    z_s = np.array([[0.5], [-1.0]], "float32")
    e_bar, z_bar, g = layer(e_t, [e_s], [z_s])
    np.testing.assert_allclose(np.asarray(g), [[1.0], [1.0]])
    np.testing.assert_allclose(np.asarray(e_bar), e_s)
    np.testing.assert_allclose(np.asarray(z_bar), z_s)
    assert not layer.trainable_weights


# ------------------------------------------------------------------------------------------------ the gate prior
def test_prior_adds_log_pi_to_the_scores_by_hand():
    layer = GatingAggregator(num_sources=2, hidden_units=2, prior=True)
    layer(E_T, [E_1, E_2], [Z_1, Z_2])  # build
    _set_gate(layer, [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 0.5]])  # scores (1, 1.5)
    _, _, gate = layer(E_T, [E_1, E_2], [Z_1, Z_2])
    g1 = math.exp(1.0) / (math.exp(1.0) + math.exp(1.5))
    np.testing.assert_allclose(gate.numpy(), [[g1, 1 - g1]], rtol=1e-6)  # the prior starts uniform: no change
    layer.set_prior([3.0, 1.0])  # normalised: π = (3/4, 1/4)
    e_bar, z_bar, gate = layer(E_T, [E_1, E_2], [Z_1, Z_2])
    a, b = 0.75 * math.exp(1.0), 0.25 * math.exp(1.5)  # softmax(s + log π) = π_k e^{s_k} / Σ π_j e^{s_j}
    g1 = a / (a + b)
    np.testing.assert_allclose(gate.numpy(), [[g1, 1 - g1]], rtol=1e-6)
    np.testing.assert_allclose(z_bar.numpy(), [[g1 * 0.5 - (1 - g1) * 1.5]], rtol=1e-6)
    assert [w.name for w in layer.non_trainable_weights] == ["prior_logits"]
    assert "prior_logits" not in [w.name for w in layer.trainable_weights]


def test_prior_floor_keeps_a_zero_weight_source_reachable():
    layer = GatingAggregator(num_sources=2, hidden_units=2, prior=True)
    layer(E_T, [E_1, E_2], [Z_1, Z_2])
    _set_gate(layer, np.zeros((3, 2)), np.zeros((2, 2)))  # scores 0: the gate is the prior itself
    layer.set_prior([1.0, 0.0])
    _, _, gate = layer(E_T, [E_1, E_2], [Z_1, Z_2])
    floor = GatingAggregator.PRIOR_FLOOR
    np.testing.assert_allclose(gate.numpy(), [[1 / (1 + floor), floor / (1 + floor)]], rtol=1e-5)


def test_set_prior_rejects_bad_weights_and_a_gate_without_a_prior():
    layer = GatingAggregator(num_sources=2, hidden_units=2, prior=True)
    with pytest.raises(ValueError, match="Build the gate"):
        layer.set_prior([0.5, 0.5])
    layer(E_T, [E_1, E_2], [Z_1, Z_2])
    for bad in ([1.0], [-1.0, 2.0], [0.0, 0.0], [float("nan"), 1.0]):
        with pytest.raises(ValueError, match="one per source"):
            layer.set_prior(bad)
    plain = GatingAggregator(num_sources=2, hidden_units=2)
    plain(E_T, [E_1, E_2], [Z_1, Z_2])
    with pytest.raises(ValueError, match="prior=True"):
        plain.set_prior([0.5, 0.5])
    with pytest.raises(ValueError, match="prior"):
        GatingAggregator(num_sources=2, prior="yes")
    uniform = GatingAggregator(num_sources=2, uniform=True, prior=True)
    _, _, gate = uniform(E_T, [E_1, E_2], [Z_1, Z_2])
    uniform.set_prior([0.9, 0.1])  # the ablation's weights are fixed: nothing to act on
    np.testing.assert_allclose(uniform(E_T, [E_1, E_2], [Z_1, Z_2])[2].numpy(), [[0.5, 0.5]])


def test_prior_survives_save_and_load(tmp_path):
    e_t, e_1, e_2 = keras.Input((3,)), keras.Input((3,)), keras.Input((3,))
    z_1, z_2 = keras.Input((1,)), keras.Input((1,))
    layer = GatingAggregator(num_sources=2, hidden_units=4, prior=True, name="gate")
    model = keras.Model([e_t, e_1, e_2, z_1, z_2], list(layer(e_t, [e_1, e_2], [z_1, z_2])))
    layer.set_prior([0.2, 0.8])
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    inputs = [E_T, E_1, E_2, Z_1, Z_2]
    np.testing.assert_allclose(loaded(inputs)[2].numpy(), model(inputs)[2].numpy(), rtol=1e-6)
    np.testing.assert_allclose(loaded.get_layer("gate").prior_logits.numpy(), np.log([0.2, 0.8]), rtol=1e-6)
