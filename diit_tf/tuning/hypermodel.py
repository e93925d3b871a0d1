"""The DIIT HyperModel: `build(hp)` returns a compiled Keras 3 `DIITModel`, `fit` trains it on period `p` and
validates on the target rows of period `p+1` (`val_auc`, to maximise).

The teachers (frozen source models) and the student's warm start come from a `TuningContext`, prepared once
outside the trials (`diit_tf.tuning.context.prepare_context`) and only when the first trial needs it, so a
distributed chief (which runs no trial) never loads data.

Example:
    hypermodel = DIITHyperModel(lambda: prepare_context("data/ml-1m", train_period=3))
    tuner = make_tuner("random", hypermodel, directory="runs/tune", max_trials=20)
    tuner.search()                        # fit() provides the data; extra kwargs (callbacks, ...) are forwarded
"""
from __future__ import annotations

from typing import Callable, Optional, Union

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

from diit_tf.model import DIITModel, make_diit_dataset
from diit_tf.counts import positive_count
from diit_tf.tuning.context import TuningContext, mix_rows
from diit_tf.tuning.space import dimensions, search_space, split_values


class DIITHyperModel(keras_tuner.HyperModel):
    """DIIT under keras-tuner.

    Args:
      context: a `TuningContext`, or a zero-argument callable returning one (called once, on first use).
      space: search-space overrides (see `diit_tf.tuning.space.parse_overrides`).
      epochs: passes over period p's target rows per trial (Hyperband sets its own).
      batch_size / mix_batch_size: target and mix batch sizes (mix defaults to batch_size).
      seed: every trial starts from the same seed, so trials differ by their hyperparameters only.
    """

    def __init__(self, context: Union[TuningContext, Callable[[], TuningContext]], space=None, epochs: int = 1,
                 batch_size: int = 512, mix_batch_size: Optional[int] = None, seed: int = 0, name: str = "diit"):
        super().__init__(name=name, tunable=True)
        epochs, batch_size = positive_count(epochs, "epochs"), positive_count(batch_size, "batch_size")
        mix_batch_size = positive_count(mix_batch_size, "mix_batch_size", null=True)
        self._context = context if isinstance(context, TuningContext) else None
        self._factory = None if isinstance(context, TuningContext) else context
        self.space = dimensions(space)  # validated now: a bad override fails before any training
        self.epochs = epochs
        self.batch_size = batch_size
        self.mix_batch_size = mix_batch_size or batch_size
        self.seed = int(seed)
        self._validation = None

    @property
    def context(self) -> TuningContext:
        if self._context is None:
            self._context = self._factory()
        return self._context

    def declare_hyperparameters(self, hp):
        search_space(hp, self.space)

    def build(self, hp) -> DIITModel:
        config, training = split_values(search_space(hp, self.space))
        ctx = self.context
        keras.utils.set_random_seed(self.seed)
        model = DIITModel(ctx.teachers, ctx.new_student(), config)
        model.compile(optimizer=keras.optimizers.Adam(training["learning_rate"]),
                      discriminator_optimizer=keras.optimizers.Adam(training["discriminator_learning_rate"]))
        return model

    def train_dataset(self, mix_ratio: float) -> tf.data.Dataset:
        """DIIT batches of period p: labelled target rows zipped with the (subsampled) mix dataset."""
        ctx = self.context
        target = ctx.train.domain(ctx.spec.target)
        mix = mix_rows(ctx.train, mix_ratio, seed=self.seed)
        return make_diit_dataset(target.features, target.labels, mix.features, batch_size=self.batch_size,
                                 mix_batch_size=self.mix_batch_size, seed=self.seed)

    def validation_dataset(self) -> tf.data.Dataset:
        """The target rows of period p+1 as `(features, labels)` batches (what `val_auc` is computed on)."""
        if self._validation is None:
            v = self.context.validation
            self._validation = tf.data.Dataset.from_tensor_slices(
                (dict(v.features), np.asarray(v.labels, np.float32))).batch(4096).cache()
        return self._validation

    def fit(self, hp, model, *args, **kwargs):
        """Train on period p, validate on p+1's target rows. `**kwargs` (callbacks, epochs, ...) are forwarded."""
        _, training = split_values({k: v for k, v in hp.values.items() if k in self.space})
        kwargs.setdefault("epochs", self.epochs)
        kwargs.setdefault("validation_data", self.validation_dataset())
        kwargs.setdefault("verbose", 0)
        return model.fit(self.train_dataset(training["mix_ratio"]), *args, **kwargs)


def score_values(hypermodel: DIITHyperModel, values: dict, seed: Optional[int] = None) -> float:
    """Train DIIT once with hyperparameter `values` (missing names take their defaults) and return its val AUC."""
    hp = keras_tuner.HyperParameters()
    search_space(hp)
    for name, value in values.items():
        if not str(name).startswith("tuner/"):
            hp.values[name] = value
    old_seed = hypermodel.seed
    if seed is not None:
        hypermodel.seed = int(seed)
    try:
        model = hypermodel.build(hp)
        history = hypermodel.fit(hp, model)
    finally:
        hypermodel.seed = old_seed
    return float(history.history["val_auc"][-1])
