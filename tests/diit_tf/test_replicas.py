"""The custom train steps under a multi-replica strategy make the same update as one device on the whole global
batch: DIIT's two phases (the discriminator and the student each updated once per global step, the losses reduced
as global-batch means, the teachers untouched), the plain CTR step and the gate's own fit (`fit_gate`). Checked by hand: plain SGD (an update
linear in the gradient, so a wrong loss reduction shows as a doubled step) on two logical CPUs against one device,
from the same weights on the same global batches. In a subprocess: the device setup is process-wide."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # trains under a two-replica strategy

SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from diit_tf.backbones import build_backbone
    from diit_tf.config import DIITConfig
    from diit_tf.ctr import CTRTrainer
    from diit_tf.features import FeatureSpec
    from diit_tf.model import DIITModel

    spec = FeatureSpec(categorical={"user_id": 97, "item_id": 53}, numeric=("price",),
                       domains=("target", "source_a", "source_b"), target="target")
    rng = np.random.default_rng(0)

    def rows(n):
        return {"user_id": rng.integers(0, 97, n), "item_id": rng.integers(0, 53, n),
                "price": rng.random(n).astype("float32")}

    steps, batch = 3, 8
    x_t, x_m = rows(steps * batch), rows(steps * batch)
    y_t = (rng.random(steps * batch) < 0.4).astype("float32")
    diit_data = tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices((x_t, y_t)).batch(batch),
                                     tf.data.Dataset.from_tensor_slices(x_m).batch(batch)))
    ctr_data = tf.data.Dataset.from_tensor_slices((x_t, y_t)).batch(batch)

    keras.utils.set_random_seed(7)
    init = {"teachers": [build_backbone("dnn", spec, hidden_units=(8,), embedding_dim=4, name=f"t{k}").get_weights()
                         for k in range(2)],
            "student": build_backbone("dnn", spec, hidden_units=(8,), embedding_dim=4, name="s").get_weights()}

    def diit_model(config):  # under the strategy in scope: teachers and student from `init`, SGD
        teachers = []
        for k in range(2):
            t = build_backbone("dnn", spec, hidden_units=(8,), embedding_dim=4, name=f"t{k}")
            t.set_weights(init["teachers"][k])
            teachers.append(t)
        student = build_backbone("dnn", spec, hidden_units=(8,), embedding_dim=4, name="s")
        student.set_weights(init["student"])
        keras.utils.set_random_seed(11)
        model = DIITModel(teachers, student, config)
        model.compile(optimizer=keras.optimizers.SGD(0.5), discriminator_optimizer=keras.optimizers.SGD(0.5))
        return model, teachers, student

    def diit(strategy):
        with strategy.scope():
            model, teachers, student = diit_model(DIITConfig.paper(beta1=1.0, beta2=1.0))
        helpers = [v.numpy().copy() for v in model.gate.weights + model.mapper.weights + model.discriminator.weights]
        history = model.fit(diit_data, epochs=1, verbose=0).history
        return {"student": [w.tolist() for w in student.get_weights()],
                "gate_mapper_d": [v.numpy().tolist() for v in
                                  model.gate.weights + model.mapper.weights + model.discriminator.weights],
                "helpers_init": [h.tolist() for h in helpers],
                "teachers_same": all(np.array_equal(a, b) for t, w in zip(teachers, init["teachers"])
                                     for a, b in zip(t.get_weights(), w)),
                "iterations": [int(opt.iterations.numpy())
                               for opt in (model.optimizer, model.discriminator_optimizer)],
                "history": {k: float(v[-1]) for k, v in history.items()},
                "replicas": strategy.num_replicas_in_sync}

    def ctr(strategy):
        with strategy.scope():
            model = build_backbone("dnn", spec, hidden_units=(8,), embedding_dim=4, name="s")
            model.set_weights(init["student"])
            trainer = CTRTrainer(model)
            trainer.compile(optimizer=keras.optimizers.SGD(0.5))
        trainer.fit(ctr_data, epochs=1, verbose=0)
        return {"weights": [w.tolist() for w in model.get_weights()],
                "iterations": int(trainer.optimizer.iterations.numpy())}

    def gate_fit(strategy):
        with strategy.scope():
            model, _, _ = diit_model(DIITConfig(gate_fit_epochs=1))
            model.gate_optimizer = keras.optimizers.SGD(0.5)  # linear in the gradient (see the module docstring)
            model.gate_optimizer.build(model.gate_scoring_variables)
            result = model.fit_gate(ctr_data, epochs=1)
        return {"gate": [v.numpy().tolist() for v in model.gate_scoring_variables], **result,
                "iterations": int(model.gate_optimizer.iterations.numpy())}

    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    print("RESULT " + json.dumps({"diit": [diit(one), diit(two)], "ctr": [ctr(one), ctr(two)],
                                  "gate_fit": [gate_fit(one), gate_fit(two)]}))
""")


def _run():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def _close(a, b):
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)


def test_two_replicas_make_the_single_device_update():
    result = _run()
    one, two = result["diit"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    # one update of each phase per global step: 3 steps -> 3 student updates and 3 discriminator updates
    assert one["iterations"] == two["iterations"] == [3, 3]
    assert one["teachers_same"] and two["teachers_same"]
    # the discriminator, gate and mapper moved, and by the same amount on two replicas as on one device
    assert any(not np.allclose(np.asarray(a), np.asarray(b)) for a, b in zip(one["gate_mapper_d"], one["helpers_init"]))
    _close(one["gate_mapper_d"], two["gate_mapper_d"])
    _close(one["student"], two["student"])
    # the reported losses are the global-batch means (metrics averaged over replicas)
    for name, value in one["history"].items():
        np.testing.assert_allclose(two["history"][name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    ctr_one, ctr_two = result["ctr"]
    assert ctr_one["iterations"] == ctr_two["iterations"] == 3
    _close(ctr_one["weights"], ctr_two["weights"])
    # DIITModel.fit_gate: one gate update per global batch, the same on two replicas as on one device
    fit_one, fit_two = result["gate_fit"]
    assert fit_one["steps"] == fit_two["steps"] == fit_one["iterations"] == fit_two["iterations"] == 3
    _close(fit_one["gate"], fit_two["gate"])
    np.testing.assert_allclose(fit_two["gate_bce"], fit_one["gate_bce"], rtol=1e-5)
