"""Plain CTR training of one backbone and the two target metrics, shared by the simulation, the tuner and the
pipeline's trainers.

`CTRTrainer(backbone)` minimises `L = BCE(y, σ(logit))` over exactly `backbone.trainable_variables` (frozen parts,
e.g. CTNet's source towers, are left alone): the single-domain incremental model of the paper's industrial setting.
`auc` (ROC AUC, NaN when a class is missing) and `logloss` (mean BCE, computed stably from logits) score a model on
the target domain's next period.

Example:
    trainer = CTRTrainer(build_backbone("dnn", spec))
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    trainer.fit(dataset_of_features_and_labels, epochs=1)
    auc(labels, trainer.predict(features)["logit"])
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from diit_tf.losses import ctr_bce


class CTRTrainer(keras.Model):
    """Plain CTR training of any model returning `{"logit": (B, 1), ...}`: `L = BCE(y, σ(logit))`.

    Trains exactly `model.trainable_variables` (frozen parts, e.g. CTNet's source towers, are left alone).

    Args:
      model: a backbone (or any Keras model with a `"logit"` output).
    """

    def __init__(self, model: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def call(self, inputs, training=False):
        return self.model(inputs, training=training)

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        x, y = data
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            loss = ctr_bce(y, self.model(x, training=True)["logit"])
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


def auc(labels, scores) -> float:
    """ROC AUC (NaN when a class is missing)."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels).reshape(-1)
    if labels.min() == labels.max():
        return float("nan")
    return float(roc_auc_score(labels, np.asarray(scores).reshape(-1)))


def logloss(labels, logits) -> float:
    """Mean binary cross-entropy of probabilities `σ(logits)` (computed stably from the logits)."""
    y = np.asarray(labels, np.float64).reshape(-1)
    z = np.asarray(logits, np.float64).reshape(-1)
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))
