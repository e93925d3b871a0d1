"""CTNet-style continual transfer (Liu et al., "Continual Transfer Learning for Cross-Domain Click-Through Rate
Prediction at Taobao", WWW 2023), reduced to this project's backbone contract.

The target model keeps its own backbone (warm-started period after period) and additionally takes the **frozen,
latest** source models' representations as inputs: `a_k = Adapter_k(sg(e_Sk(x)))` (Dense + ReLU), and
`z(x) = z_T(x) + w · Σ_k a_k` with `w` zero-initialised, so at insertion CTNet predicts exactly what the target
model did and learns how much of the sources to use. Unlike DIIT, the sources stay in the serving path: serving
runs K+1 towers. Differences to the paper: one transfer spot (the last hidden layer) instead of one adapter per
layer, and sources refreshed every period by copying the latest source weights into the frozen towers.

Example:
    model = CTNet(target=build_backbone("dnn", spec), sources=[src_a_copy, src_b_copy])
    CTRTrainer(model)  # trains target + adapters + w; sources are frozen
    model.refresh_sources([latest_a, latest_b])       # each period

Args:
  target: the target backbone.
  sources: K >= 1 source backbones owned by this model (frozen; refreshed with `refresh_sources`).
  adapter_units: width of each adapter (default: the target representation width).
"""
from __future__ import annotations

import keras
import tensorflow as tf


class CTNet(keras.Model):
    def __init__(self, target, sources, adapter_units: int = None, **kwargs):
        kwargs.setdefault("name", "ctnet")
        super().__init__(**kwargs)
        sources = list(sources or [])
        if not sources:
            raise ValueError("`sources` should hold at least one source backbone. Received: none")
        for source in sources:
            source.trainable = False
        self.target = target
        self.sources = sources
        units = adapter_units or int(target.output["representation"].shape[-1])
        self.adapters = [keras.layers.Dense(units, activation="relu", name=f"adapter_{k}")
                         for k in range(len(sources))]
        self.transfer = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros", name="transfer_logit")
        for adapter, source in zip(self.adapters, sources):
            adapter.build((None, int(source.output["representation"].shape[-1])))
        self.transfer.build((None, units))

    def refresh_sources(self, latest) -> None:
        """Copy the latest source models' weights into the frozen source towers."""
        latest = list(latest)
        if len(latest) != len(self.sources):
            raise ValueError(f"expected {len(self.sources)} source models, received {len(latest)}")
        for tower, model in zip(self.sources, latest):
            tower.set_weights(model.get_weights())

    def call(self, inputs, training=False):
        out = self.target(inputs, training=training)
        adapted = [adapter(tf.stop_gradient(source(inputs, training=False)["representation"]))
                   for adapter, source in zip(self.adapters, self.sources)]
        transferred = adapted[0] if len(adapted) == 1 else tf.add_n(adapted)
        return {"representation": out["representation"], "logit": out["logit"] + self.transfer(transferred)}
