"""Parameter-server training (`diit_tf.parameter_servers`): the refusals by hand, and on loopback a cluster of two
"worker" and two "ps" processes, each started with its own TF_CONFIG through `python -m diit_tf.parameter_servers`,
with a coordinator process that trains DIIT (default and paper form) and the plain CTR step through `fit`: every
variable lives on a parameter server (both used), every scheduled step runs, the teachers stay bit-identical, the
student learns a label it can learn (its log loss on the target rows falls), and the discriminator is updated in
the paper's form."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from diit_tf import parameter_servers

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "components"))
from multi_worker_setup import REPO, free_ports, process_env  # noqa: E402  (the multi-worker tests' loopback helpers)

CLUSTER = {"worker": ["localhost:1", "localhost:2"], "ps": ["localhost:3"]}


@pytest.mark.parametrize("config, message", [
    ({"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 0}},
     "TF_CONFIG's cluster has no 'ps' task: parameter-server training needs both. Received jobs: ['worker']"),
    ({"cluster": {}, "task": {"type": "ps", "index": 0}},
     "TF_CONFIG's cluster has no 'worker' and no 'ps' task: parameter-server training needs both. Received jobs: []"),
    ({"cluster": CLUSTER, "task": {"type": "chief", "index": 0}},
     "TF_CONFIG's task type should be one of ['worker', 'ps'] to serve (the chief runs the training loop instead). "
     "Received: 'chief'"),
    ({"cluster": CLUSTER, "task": {"type": "ps", "index": 1}},
     "TF_CONFIG's task index should be in [0, 1) for the 1 'ps' task(s). Received: 1"),
])
def test_serve_refuses_a_cluster_it_cannot_serve(config, message):
    with pytest.raises(ValueError) as err:
        parameter_servers.serve(config)
    assert str(err.value) == message


def test_serve_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match=r"^TF_CONFIG is not set: parameter-server training needs the cluster"):
        parameter_servers.serve()
    monkeypatch.setenv("TF_CONFIG", "{cluster")
    with pytest.raises(ValueError, match=r"^TF_CONFIG is not valid JSON .*Received: '\{cluster'$"):
        parameter_servers.serve()


def test_strategy_refuses_a_partitioner():
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner()
    with pytest.raises(ValueError, match="^variable_partitioner is not supported: Keras 3 variables cannot be sharded"):
        parameter_servers.strategy({"cluster": CLUSTER}, variable_partitioner=partitioner)


@pytest.mark.parametrize("steps", [0, -3, 2.0, True])
def test_fit_refuses_a_step_count_that_is_not_positive(steps):
    with pytest.raises(ValueError) as err:
        parameter_servers.fit(None, None, steps, tf.distribute.get_strategy())
    assert str(err.value) == f"`steps` should be a positive integer. Received: {steps!r}"


def test_fit_refuses_another_strategy():
    with pytest.raises(ValueError) as err:
        parameter_servers.fit(None, None, 5, tf.distribute.get_strategy())
    assert str(err.value).startswith("parameter_servers.fit needs a ParameterServerStrategy")
    assert str(err.value).endswith("Received: _DefaultDistributionStrategy")


def test_the_entry_point_has_help_and_names_a_missing_tf_config():
    env = {**process_env(), "PYTHONPATH": REPO}
    shown = subprocess.run([sys.executable, "-m", "diit_tf.parameter_servers", "--help"], capture_output=True,
                           text=True, env=env, cwd=REPO, timeout=300)
    assert shown.returncode == 0 and "start its gRPC server from TF_CONFIG" in " ".join(shown.stdout.split())
    failed = subprocess.run([sys.executable, "-m", "diit_tf.parameter_servers"], capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=300)
    assert failed.returncode == 2 and "error: TF_CONFIG is not set" in failed.stderr


COORDINATOR = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    import keras
    from diit_tf import parameter_servers
    from diit_tf.backbones import build_backbone
    from diit_tf.config import DIITConfig
    from diit_tf.ctr import CTRTrainer
    from diit_tf.features import FeatureSpec
    from diit_tf.losses import ctr_bce
    from diit_tf.model import DIITModel

    cluster = json.loads(sys.argv[1])
    spec = FeatureSpec(categorical={"user_id": 97, "item_id": 53}, numeric=("price",),
                       domains=("target", "source_a", "source_b"), target="target")

    def rows(rng, n):
        return {"user_id": rng.integers(0, 97, n), "item_id": rng.integers(0, 53, n),
                "price": rng.random(n).astype("float32")}

    def label(x):  # learnable from the user alone
        return (x["user_id"] % 2).astype("float32")

    held = rows(np.random.default_rng(1), 2048)

    def diit_input():
        rng = np.random.default_rng(0)
        x_t, x_m = rows(rng, 2048), rows(rng, 2048)
        target = tf.data.Dataset.from_tensor_slices((x_t, label(x_t))).repeat().batch(64)
        return tf.data.Dataset.zip((target, tf.data.Dataset.from_tensor_slices(x_m).repeat().batch(64)))

    def ctr_input():
        x = rows(np.random.default_rng(0), 2048)
        return tf.data.Dataset.from_tensor_slices((x, label(x))).repeat().batch(64)

    def logloss(model):
        return float(ctr_bce(label(held), model(held, training=False)["logit"]))

    def places(variables):
        return sorted({v.value.device.split("/device")[0] for v in variables})

    strategy = parameter_servers.strategy({"cluster": cluster})
    result = {}
    for form, config in (("default", DIITConfig()), ("paper", DIITConfig.paper())):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            teachers = [build_backbone("dnn", spec, hidden_units=(8,), embedding_dim=4, name=f"t{k}") for k in range(2)]
            student = build_backbone("dnn", spec, hidden_units=(8,), embedding_dim=4, name="s")
            model = DIITModel(teachers, student, config)
            model.compile(optimizer=keras.optimizers.Adam(0.01),
                          discriminator_optimizer=keras.optimizers.Adam(0.01))
        before = [w.copy() for t in teachers for w in t.get_weights()]
        helpers = [v.numpy().copy() for v in model.discriminator.weights] if config.use_adversarial else []
        start = logloss(student)
        history = parameter_servers.fit(model, diit_input, steps=200, strategy=strategy)
        result[form] = {
            "places": places(model.weights), "losses": history["losses"], "logloss": [start, logloss(student)],
            "teachers_same": all(np.array_equal(a, b) for a, b in zip(before, [w for t in teachers for w in t.get_weights()])),
            "iterations": int(model.optimizer.iterations.numpy()),
            "discriminator_moved": bool(helpers) and any(not np.array_equal(a, v.numpy())
                                                        for a, v in zip(helpers, model.discriminator.weights)),
        }
    with strategy.scope():
        keras.utils.set_random_seed(0)
        plain = build_backbone("dnn", spec, hidden_units=(8,), embedding_dim=4, name="plain")
        trainer = CTRTrainer(plain)
        trainer.compile(optimizer=keras.optimizers.Adam(0.01))
    start = logloss(plain)
    history = parameter_servers.fit(trainer, ctr_input, steps=200, strategy=strategy)
    result["ctr"] = {"places": places(plain.weights), "losses": history["losses"], "logloss": [start, logloss(plain)]}
    print("RESULT " + json.dumps(result))
""")


@pytest.mark.slow  # five processes on loopback, 600 steps
def test_diit_and_ctr_steps_train_on_parameter_servers():
    ports = free_ports(4)
    cluster = {"worker": [f"localhost:{p}" for p in ports[:2]], "ps": [f"localhost:{p}" for p in ports[2:]]}
    env = {**process_env(), "PYTHONPATH": REPO, "GRPC_FAIL_FAST": "use_caller"}
    servers = [subprocess.Popen([sys.executable, "-m", "diit_tf.parameter_servers"], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**process_env({"cluster": cluster, "task": {"type": kind, "index": i}}),
                                     "PYTHONPATH": REPO})
               for kind in ("worker", "ps") for i in range(len(cluster[kind]))]
    try:
        proc = subprocess.run([sys.executable, "-c", COORDINATOR, json.dumps(cluster)], capture_output=True,
                              text=True, env=env, cwd=REPO, timeout=900)
    finally:
        for server in servers:
            server.kill()
            server.wait()
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    both_ps = ["/job:ps/replica:0/task:0", "/job:ps/replica:0/task:1"]
    for form in ("default", "paper", "ctr"):
        run = result[form]
        assert run["places"] == both_ps, (form, run["places"])  # no variable on a worker or the coordinator
        assert len(run["losses"]) == 200 and all(l == l and abs(l) < 1e6 for l in run["losses"]), form
        start, end = run["logloss"]
        assert start > 0.6 and end < 0.45 * start, (form, start, end)  # the label is learnable from the user
    for form in ("default", "paper"):
        assert result[form]["teachers_same"], form
        assert 0 < result[form]["iterations"] <= 200  # may undercount: see the module docstring
    assert result["paper"]["discriminator_moved"] and not result["default"]["discriminator_moved"]
