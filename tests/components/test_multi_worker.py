"""Multi-worker training with `MultiWorkerMirroredStrategy` (`strategy.name` "multi_worker", `TF_CONFIG`): two worker
processes on loopback run the source trainer's `run_fn` and the DIIT trainer's executor as TFX would. Both train,
only the chief writes the model artifact and the logs, and the model is the one a single worker trains on the same
data in the same order (`strategy.shard` "data": each global batch is the single worker's batch, split between
the workers), within float tolerance (the two workers' gradients are summed in another order)."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from components import training
from diit_tf.config import PAPER_FORM

from transformed_fixtures import write_transform_output, write_transformed

pytestmark = pytest.mark.slow  # two TF workers in subprocesses

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SPEC = {"categorical": {"user_id": 32, "item_id": 16}, "numeric": ["freshness"], "label": "click",
        "domain": "domain", "domains": ["target", "src_a", "src_b"], "target": "target"}
MODEL = {"backbone": "dnn", "backbone_options": {"hidden_units": [8], "embedding_dim": 4}, "epochs": 2,
         "batch_size": 16, "learning_rate": 0.01, "seed": 3, "shuffle_buffer": 64}


def _data(per_domain=(96, 128, 64), seed=0):
    """Rows of each domain in multiples of the batch size, so no batch is partial on one worker or two."""
    rng = np.random.default_rng(seed)
    domain = np.repeat(np.array([b"target", b"src_a", b"src_b"]), per_domain)
    rng.shuffle(domain)
    n = len(domain)
    user = rng.integers(0, 32, n)
    return {"user_id": user, "item_id": rng.integers(0, 16, n), "freshness": rng.random(n).astype("float32"),
            "click": (rng.random(n) < 0.3 + 0.4 * (user % 2)).astype("float32"), "domain": domain}


def _ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run(jobs, timeout=900):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    env.pop("TF_CONFIG", None)
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "multi_worker_job.py"), json.dumps(job)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
             for job in jobs]
    outs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0 and "DONE" in out, err[-3000:]
            outs.append(out)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return outs


def _cluster_jobs(job, out_dir):
    ports = _ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    return [{**job, "out": os.path.join(out_dir, "model"), "run": os.path.join(out_dir, "run"),
             "tf_config": {"cluster": cluster, "task": {"type": "worker", "index": i}}} for i in range(2)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi_worker")
    examples = root / "examples"
    train = write_transformed(examples / "Split-train", _data(), shards=2)
    write_transformed(examples / "Split-eval", _data((32, 32, 32), seed=1), shards=1)
    transform = write_transform_output(root / "transform")
    common = {"repo": REPO, "transform": transform}
    source = {**common, "task": "source", "train_files": [os.path.join(examples, "Split-train", "*")],
              "eval_files": [os.path.join(examples, "Split-eval", "*")],
              "config": {**MODEL, "feature_spec": SPEC, "domain": "src_a"}}
    single_source = str(root / "single" / "source_a")
    multi = str(root / "multi" / "source_a")
    _run([{**source, "out": os.path.join(single_source, "model"), "run": os.path.join(single_source, "run")}])
    _run(_cluster_jobs({**source, "config": {**source["config"], "strategy": {"name": "multi_worker",
                                                                              "shard": "data"}}}, multi))
    # The DIIT trainer: both runs distil from the same two teachers (the single-worker source models).
    teachers = []
    for d in ("src_a", "src_b"):
        out = str(root / "teachers" / d)
        _run([{**source, "config": {**source["config"], "domain": d}, "out": out, "run": out + "-run"}])
        teachers.append(out)
    student = {**common, "task": "student", "examples": str(examples), "teachers": teachers,
               # the paper's form, so that both phases (discriminator, then student) run under the strategy
               "config": {**MODEL, "feature_spec": SPEC, "mix_batch_size": 32, "diit": dict(PAPER_FORM)}}
    single_student = str(root / "single" / "student")
    multi_student = str(root / "multi" / "student")
    _run([{**student, "out": os.path.join(single_student, "model"), "run": os.path.join(single_student, "run")}])
    _run(_cluster_jobs({**student, "config": {**student["config"], "strategy": {"name": "multi_worker",
                                                                                "shard": "data"}}}, multi_student))
    return {"single_source": single_source, "multi_source": multi, "single_student": single_student,
            "multi_student": multi_student, "train": train}


def _weights(model_dir):
    return training.load_backbone(model_dir).get_weights()


@pytest.mark.parametrize("which", ["source", "student"])
def test_two_workers_train_like_one(runs, which):
    single = os.path.join(runs[f"single_{which}"], "model")
    multi = os.path.join(runs[f"multi_{which}"], "model")
    before = training.load_backbone(single)  # trained, so it differs from a fresh model of the same seed
    assert any(np.abs(w).sum() > 0 for w in before.get_weights())
    for a, b in zip(_weights(single), _weights(multi)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    info_single = training.read_model_info(single)
    info_multi = training.read_model_info(multi)
    assert info_multi["train_steps"] == info_single["train_steps"]
    np.testing.assert_allclose(info_multi["history"]["loss"], info_single["history"]["loss"], rtol=1e-4)


@pytest.mark.parametrize("which", ["source", "student"])
def test_only_the_chief_writes(runs, which):
    multi = runs[f"multi_{which}"]
    # one artifact, written once: the SavedModel, the Keras backbone, the run log and TensorBoard logs
    assert os.path.isfile(os.path.join(multi, "model", "Format-Serving", "saved_model.pb"))
    assert os.path.isfile(os.path.join(multi, "run", "history.json"))
    assert os.path.isdir(os.path.join(multi, "run", "train"))
    events = [f for d, _, fs in os.walk(os.path.join(multi, "run")) for f in fs if "tfevents" in f]
    assert len(events) == 2  # train/ and eval/ of the chief only
