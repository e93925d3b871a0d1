"""Plain CTR training of one model, period after period, and the two target metrics: the single-domain
incremental model of the paper's industrial setting, written once for the simulation, the tuner and the pipeline.

`CTRTrainer(model)` minimises `L = BCE(y, σ(logit))` (`diit_tf.losses.ctr_bce`, the one log loss of the project)
over exactly `model.trainable_variables` (frozen parts, e.g. CTNet's source towers, are left alone), and is correct
under a multi-replica `tf.distribute` strategy (the loss is scaled per replica, see `diit_tf.distribute`).

`PeriodTrainer(model, learning_rate)` trains that model on one period at a time. Warm start is weights only: the
model keeps its weights from one period to the next, and every period starts with a fresh optimizer (Adam's slots
and step counter zeroed in place by `reset_optimizers`, as when a production job reloads yesterday's model; zeroing
in place keeps the traced train function, so nothing is re-traced). A period's rows arrive as a `tf.data.Dataset`
of `(features, labels)` batches: the simulation builds it from numpy arrays
(`diit_tf.simulation.training.labelled_dataset`), the pipeline streams Transform's TFRecords
(`diit_tf/data/streaming.py`).

`auc` (ROC AUC, NaN when a class is missing) and `logloss` (mean BCE of `σ(logit)`, the same formula as `ctr_bce`)
score a model on the target domain's rows.

Example:
    period_model = PeriodTrainer(build_backbone("dnn", spec), learning_rate=1e-3)
    for p in periods:
        period_model.fit(dataset_of_period(p), epochs=1)       # (features, labels) batches
    auc(labels, period_model.model.predict(features)["logit"])
"""
from __future__ import annotations

import weakref
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from diit_tf.data.streaming import unknown_length
from diit_tf.distribute import scaled_for_replicas
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
            replica_loss = scaled_for_replicas(loss)
        grads = tape.gradient(replica_loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


class PeriodTrainer:
    """One model trained incrementally, period after period: warm start = weights only, a fresh Adam per period.

    Args:
      model: the backbone (or any model with a `"logit"` output); it keeps its weights across periods.
      learning_rate: Adam's learning rate.
      steps_per_execution: training steps per traced call (the updates are the same; small models run faster).
    """

    def __init__(self, model: keras.Model, learning_rate: float, steps_per_execution: int = 1):
        self.model = model
        self.trainer = CTRTrainer(model)
        self.trainer.compile(optimizer=keras.optimizers.Adam(learning_rate),
                             steps_per_execution=steps_per_execution)
        self.trainer.optimizer.build(model.trainable_variables)

    @property
    def backbone(self) -> keras.Model:
        return self.model

    def fit(self, dataset: tf.data.Dataset, epochs: int = 1, callbacks: Optional[Sequence] = None,
            verbose=0) -> keras.callbacks.History:
        """Train on one period: `epochs` passes over `dataset` (`(features, labels)` batches) with a fresh optimizer."""
        reset_optimizers(self.trainer)
        with unknown_length():
            return self.trainer.fit(dataset, epochs=epochs, callbacks=list(callbacks or []), verbose=verbose)


# ------------------------------------------------------------------------------------------ fresh optimizers
def optimizers_of(model) -> list:
    """Every Keras optimizer held by `model` (e.g. DIIT's `optimizer` and `discriminator_optimizer`)."""
    found = []
    for value in vars(model).values():
        if isinstance(value, keras.optimizers.Optimizer) and all(value is not f for f in found):
            found.append(value)
    opt = getattr(model, "optimizer", None)
    if isinstance(opt, keras.optimizers.Optimizer) and all(opt is not f for f in found):
        found.append(opt)
    return found


# model -> (ids of its optimizer variables, traced reset): a period's few dozen small assignments run as one graph
# call instead of one eager op each (measured ~8 ms -> <1 ms per DIIT period; periods of small targets are ~0.1 s).
_RESETTERS = weakref.WeakKeyDictionary()


def reset_optimizers(model) -> int:
    """Zero every optimizer slot and step counter of `model` (not the learning rate). Returns how many
    variables were reset."""
    variables = [v for opt in optimizers_of(model) for v in opt.variables
                 if v.path.split("/")[-1] != "learning_rate"]
    cached = _RESETTERS.get(model)
    if cached is None or cached[0] != [id(v) for v in variables]:
        def zero_all():
            for variable in variables:
                variable.assign(tf.zeros(variable.shape, variable.dtype))

        cached = ([id(v) for v in variables], tf.function(zero_all))
        _RESETTERS[model] = cached
    cached[1]()
    return len(variables)


# -------------------------------------------------------------------------------------------------- metrics
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
