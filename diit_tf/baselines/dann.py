"""DANN for the target model: domain-adversarial training with a gradient reversal layer (Ganin & Lempitsky,
ICML 2015; Ganin et al., JMLR 2016), adapted to the industrial period protocol.

Per step, a labelled target batch `(x_t, y_t)` and a labelled mix batch `(x_m, y_m, d_m)` of all domains:
`L = BCE(y_t, σ(z_T(x_t))) + w_s · BCE(y_m, σ(z_T(x_m))) + w_d · CE(d_m, C(GRL_λ(e_T(x_m))))`,
where `e_T`, `z_T` are the target backbone's representation and logit and `C` is a domain classifier (MLP, softmax
over all domains). The classifier learns to tell domains apart; through the GRL the backbone learns
representations it cannot, while the CTR losses keep them predictive. One optimizer, one step. Only the backbone
is served.

Example:
    model = DANN(student=build_backbone("dnn", spec), num_domains=3, grl_lambda=0.1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(transfer_dataset(target_rows, mix_rows, 512, seed=0, mix_labels=True), epochs=1)

Args:
  student: the target backbone.
  num_domains: number of domains (classes of the domain classifier), >= 2.
  grl_lambda: λ of the gradient reversal (>= 0).
  domain_weight: w_d, weight of the domain loss (>= 0).
  source_weight: w_s, weight of the CTR loss on the labelled mix rows (>= 0; 0 = target labels only).
  hidden_units: widths of the domain classifier's hidden layers.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from diit_tf.layers.gradient_reversal import GradientReversal
from diit_tf.losses import ctr_bce


class DANN(keras.Model):
    def __init__(self, student, num_domains: int, grl_lambda: float = 0.1, domain_weight: float = 1.0,
                 source_weight: float = 1.0, hidden_units=(64,), **kwargs):
        kwargs.setdefault("name", "dann")
        super().__init__(**kwargs)
        if not isinstance(num_domains, int) or num_domains < 2:
            raise ValueError(f"`num_domains` should be an integer >= 2. Received: {num_domains!r}")
        for name, value in (("domain_weight", domain_weight), ("source_weight", source_weight)):
            if not value >= 0:
                raise ValueError(f"`{name}` should be >= 0. Received: {value!r}")
        self.student = student
        self.num_domains = num_domains
        self.domain_weight = float(domain_weight)
        self.source_weight = float(source_weight)
        self.grl = GradientReversal(grl_lambda, name="grl")
        self.classifier = keras.Sequential(
            [keras.layers.Dense(u, activation="relu") for u in hidden_units] + [keras.layers.Dense(num_domains)],
            name="domain_classifier",
        )
        rep_dim = int(student.output["representation"].shape[-1])
        self.classifier.build((None, rep_dim))
        self.grl.build((None, rep_dim))
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "ce", "ce_mix", "domain")}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def train_step(self, data):
        (x_t, y_t), (x_m, y_m, d_m) = data
        variables = self.student.trainable_variables + self.classifier.trainable_variables
        with tf.GradientTape() as tape:
            ce = ctr_bce(y_t, self.student(x_t, training=True)["logit"])
            out_m = self.student(x_m, training=True)
            ce_mix = ctr_bce(y_m, out_m["logit"])
            domain_logits = self.classifier(self.grl(out_m["representation"]))
            domain = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=tf.cast(d_m, tf.int32), logits=domain_logits))
            loss = ce + self.source_weight * ce_mix + self.domain_weight * domain
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        for name, value in (("loss", loss), ("ce", ce), ("ce_mix", ce_mix), ("domain", domain)):
            self.trackers[name].update_state(value)
        return {name: t.result() for name, t in self.trackers.items()}
