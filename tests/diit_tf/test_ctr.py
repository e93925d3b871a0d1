import math

import keras
import numpy as np
import pytest

from diit_tf.backbones import build_backbone
from diit_tf.ctr import CTRTrainer, auc, logloss


def test_auc_hand_value():
    # pairs (pos, neg): (0.4, 0.1) ok, (0.4, 0.35) ok, (0.8, 0.1) ok, (0.8, 0.35) ok -> 1.0; swap one to get 0.75
    assert auc([0, 1, 0, 1], [0.1, 0.4, 0.35, 0.8]) == 1.0
    assert auc([0, 1, 0, 1], [0.1, 0.3, 0.35, 0.8]) == 0.75
    assert math.isnan(auc([1, 1], [0.2, 0.3]))


def test_logloss_hand_value():
    # logit 0 -> p = 0.5 -> -log 0.5 for either label; logit ln 3 -> p = 0.75 -> -log 0.75 for y = 1
    expected = (math.log(2) + math.log(2) + -math.log(0.75)) / 3
    assert abs(logloss([0, 1, 1], [0.0, 0.0, math.log(3)]) - expected) < 1e-12


@pytest.mark.slow
def test_ctr_trainer_trains_only_trainable_variables(tiny_spec):
    backbone = build_backbone("dnn", tiny_spec, hidden_units=(8,), embedding_dim=2)
    frozen = backbone.get_layer("features")
    frozen.trainable = False
    before_frozen = [w.numpy().copy() for w in frozen.weights]
    before_head = backbone.get_layer("logit_dense").kernel.numpy().copy()
    trainer = CTRTrainer(backbone)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    rng = np.random.default_rng(0)
    x = {"user_id": rng.integers(0, 97, 64), "item_id": rng.integers(0, 53, 64), "price": rng.random(64).astype("float32")}
    y = (x["user_id"] % 2).astype("float32")
    history = trainer.fit(x, y, epochs=3, batch_size=16, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(before_frozen, frozen.weights))
    assert not np.array_equal(before_head, backbone.get_layer("logit_dense").kernel.numpy())
