"""What the multi-worker tests share (tests/components/test_multi_worker.py, test_diit_trainer_vertex.py,
test_diit_trainer_tfjob.py): a small transformed span, its settings, free loopback ports, and the trainer processes
(`multi_worker_job.py`) started with the `TF_CONFIG` of their task. The span and the DIIT trainer's teachers are
session fixtures (conftest.py)."""
import json
import os
import socket
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SPEC = {"categorical": {"user_id": 32, "item_id": 16}, "numeric": ["freshness"], "label": "click",
        "domain": "domain", "domains": ["target", "src_a", "src_b"], "target": "target"}
MODEL = {"backbone": "dnn", "backbone_options": {"hidden_units": [8], "embedding_dim": 4}, "epochs": 2,
         "batch_size": 16, "learning_rate": 0.01, "seed": 3, "shuffle_buffer": 64}


def span_data(per_domain=(96, 128, 64), seed=0):
    """Rows of each domain in multiples of the batch size, so no batch is partial on one worker or two."""
    rng = np.random.default_rng(seed)
    domain = np.repeat(np.array([b"target", b"src_a", b"src_b"]), per_domain)
    rng.shuffle(domain)
    n = len(domain)
    user = rng.integers(0, 32, n)
    return {"user_id": user, "item_id": rng.integers(0, 16, n), "freshness": rng.random(n).astype("float32"),
            "click": (rng.random(n) < 0.3 + 0.4 * (user % 2)).astype("float32"), "domain": domain}


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def process_env(tf_config=None):
    """The environment of a trainer process: quiet TensorFlow, and `TF_CONFIG` only when given."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def run_jobs(jobs, timeout=900):
    """Run `multi_worker_job.py` once per job, concurrently; each must print DONE. Returns their stdouts."""
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "multi_worker_job.py"), json.dumps(job)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=process_env(),
                              cwd=REPO)
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


def cluster_jobs(job, out_dir):
    """`job` as two workers of a loopback cluster writing into `out_dir`/model and `out_dir`/run."""
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    return [{**job, "out": os.path.join(out_dir, "model"), "run": os.path.join(out_dir, "run"),
             "tf_config": {"cluster": cluster, "task": {"type": "worker", "index": i}}} for i in range(2)]


def student_artifacts(examples, transform, teachers, model, run, base_model=None) -> tuple:
    """`(input_dict, output_dict)` of the DIIT trainer's executor, as TFX hands them: the examples with their
    train/eval splits, the transform graph, one `source_model_<k>` per teacher uri, optional `base_model`."""
    from tfx.types import artifact_utils, standard_artifacts

    def artifact(kind, uri, splits=None):
        a = kind()
        a.uri = uri
        if splits:
            a.split_names = artifact_utils.encode_split_names(splits)
        return a

    inputs = {"examples": [artifact(standard_artifacts.Examples, examples, ["train", "eval"])],
              "transform_graph": [artifact(standard_artifacts.TransformGraph, transform)]}
    inputs.update({f"source_model_{k}": [artifact(standard_artifacts.Model, uri)] for k, uri in enumerate(teachers)})
    if base_model:
        inputs["base_model"] = [artifact(standard_artifacts.Model, base_model)]
    return inputs, {"model": [artifact(standard_artifacts.Model, model)],
                    "model_run": [artifact(standard_artifacts.ModelRun, run)]}
