"""Plain knowledge distillation from the uniform source ensemble (Hinton et al., 2015), the simplest transfer
baseline DIIT must beat.

`z̄_S(x) = (1/K) Σ_k z_Sk(x)` from the frozen sources on the mix batch; the student minimises
`BCE(y_t, σ(z_T(x_t))) + β · τ² · KL(p_τ(z̄_S(x_m)) ‖ p_τ(z_T(x_m)))` with `p_τ(z) = [σ(z/τ), 1-σ(z/τ)]`
(the same logit-spot loss as DIIT, `diit_tf.losses.logit_spot_kl`). No gate, no mapper, no adversary.

Example:
    model = UniformKD(teachers=[src_a, src_b], student=build_backbone("dnn", spec), beta=0.5, temperature=2.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(transfer_dataset(target_rows, mix_rows, 512, seed=0), epochs=1)   # ((x_t, y_t), x_m)

Args:
  teachers: K >= 1 source backbones (frozen here: `trainable=False`, never given to the optimizer).
  student: the target backbone.
  beta: weight of the distillation term (>= 0).
  temperature: τ > 0.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from diit_tf.losses import ctr_bce, logit_spot_kl


class UniformKD(keras.Model):
    def __init__(self, teachers, student, beta: float = 0.5, temperature: float = 2.0, **kwargs):
        kwargs.setdefault("name", "kd_uniform")
        super().__init__(**kwargs)
        teachers = list(teachers or [])
        if not teachers:
            raise ValueError("`teachers` should hold at least one source backbone. Received: none")
        if not beta >= 0:
            raise ValueError(f"`beta` should be >= 0. Received: {beta!r}")
        if not temperature > 0:
            raise ValueError(f"`temperature` should be > 0. Received: {temperature!r}")
        for teacher in teachers:
            teacher.trainable = False
        self.teachers = teachers
        self.student = student
        self.beta = float(beta)
        self.temperature = float(temperature)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "ce", "kl")}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def ensemble_logit(self, x):
        """The uniform average of the frozen sources' logits."""
        logits = [tf.stop_gradient(t(x, training=False)["logit"]) for t in self.teachers]
        return tf.add_n(logits) / float(len(logits))

    def train_step(self, data):
        (x_t, y_t), x_m = data
        z_bar = self.ensemble_logit(x_m)
        variables = self.student.trainable_variables
        with tf.GradientTape() as tape:
            ce = ctr_bce(y_t, self.student(x_t, training=True)["logit"])
            kl = logit_spot_kl(z_bar, self.student(x_m, training=True)["logit"], self.temperature)
            loss = ce + self.beta * kl
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        for name, value in (("loss", loss), ("ce", ce), ("kl", kl)):
            self.trackers[name].update_state(value)
        return {name: t.result() for name, t in self.trackers.items()}
