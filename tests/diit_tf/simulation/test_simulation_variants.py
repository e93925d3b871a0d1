"""The experimental source-aware gate: its gate reads the sources, so two examples with the same student
representation but different source outputs get different weights; teachers stay frozen."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from diit_tf.backbones import build_backbone
from diit_tf.config import DIITConfig
from diit_tf.model import DIITModel
from diit_tf.simulation.variants import SourceAwareGate, use_source_aware_gate


def test_gate_depends_on_the_sources():
    gate = SourceAwareGate(num_sources=2, hidden_units=8)
    e_t = tf.ones((2, 4))
    reps = [tf.constant([[1.0, 0, 0, 0], [0, 0, 0, 5.0]]), tf.zeros((2, 4))]
    logits = [tf.constant([[2.0], [-2.0]]), tf.zeros((2, 1))]
    e_bar, z_bar, g = gate(e_t, reps, logits)
    assert g.shape == (2, 2) and e_bar.shape == (2, 4) and z_bar.shape == (2, 1)
    np.testing.assert_allclose(tf.reduce_sum(g, -1), [1.0, 1.0], rtol=1e-6)
    assert not np.allclose(g[0], g[1]), "same student representation, different sources: weights should differ"
    assert gate.gate_hidden.kernel.shape == (4 + 4 + 4 + 2, 8)


@pytest.mark.slow  # trains DIIT
def test_diit_with_source_aware_gate_trains_and_keeps_teachers_frozen(tiny_spec):
    def backbone(name):
        return build_backbone("dnn", tiny_spec, hidden_units=(8, 4), embedding_dim=4, name=name)

    teachers = [backbone("t0"), backbone("t1")]
    before = [t.get_weights() for t in teachers]
    model = DIITModel(teachers, backbone("s"), DIITConfig.paper(gate_supervision=0.5))
    use_source_aware_gate(model)
    assert isinstance(model.gate, SourceAwareGate)
    model.compile(optimizer=keras.optimizers.Adam(0.01), discriminator_optimizer=keras.optimizers.Adam(0.01))
    gate_before = [w.copy() for w in model.gate.get_weights()]
    rng = np.random.default_rng(0)
    x = {"user_id": rng.integers(0, 97, 32), "item_id": rng.integers(0, 53, 32),
         "price": rng.random(32).astype("float32")}
    y = (rng.random(32) < 0.5).astype("float32")
    model.fit(tf.data.Dataset.from_tensors(((x, y), x)), epochs=2, verbose=0)
    assert any(not np.allclose(a, b) for a, b in zip(gate_before, model.gate.get_weights()))
    for t, w in zip(teachers, before):
        assert all(np.array_equal(a, b) for a, b in zip(t.get_weights(), w))
