"""Multi-worker training with `MultiWorkerMirroredStrategy` (`strategy.name` "multi_worker", `TF_CONFIG`): two worker
processes on loopback run the source and joint trainers' `run_fn` and the DIIT trainer's executor as TFX would. Both train,
only the chief writes the model artifact and the logs, and the model is the one a single worker trains on the same
data in the same order (`strategy.shard` "data": each global batch is the single worker's batch, split between
the workers), within float tolerance (the two workers' gradients are summed in another order)."""
import os

import numpy as np
import pytest

from components import training

from multi_worker_setup import cluster_jobs, run_jobs

pytestmark = pytest.mark.slow  # two TF workers in subprocesses


@pytest.fixture(scope="module")
def runs(mw_span, mw_student):
    root, source = mw_span["root"], mw_span["source"]
    single_source = str(root / "single" / "source_a")
    multi = str(root / "multi" / "source_a")
    run_jobs([{**source, "out": os.path.join(single_source, "model"), "run": os.path.join(single_source, "run")}])
    run_jobs(cluster_jobs({**source, "config": {**source["config"], "strategy": {"name": "multi_worker",
                                                                                 "shard": "data"}}}, multi))
    # The joint trainer: every row of the span, with its domain index.
    joint = {**source, "task": "joint", "config": {k: v for k, v in source["config"].items() if k != "domain"}}
    single_joint, multi_joint = str(root / "single" / "joint"), str(root / "multi" / "joint")
    run_jobs([{**joint, "out": os.path.join(single_joint, "model"), "run": os.path.join(single_joint, "run")}])
    run_jobs(cluster_jobs({**joint, "config": {**joint["config"], "strategy": {"name": "multi_worker",
                                                                               "shard": "data"}}}, multi_joint))
    # The DIIT trainer: both runs distil from the same two teachers (the single-worker source models).
    student = mw_student["job"]
    multi_student = str(root / "multi" / "student")
    run_jobs(cluster_jobs({**student, "config": {**student["config"], "strategy": {"name": "multi_worker",
                                                                                   "shard": "data"}}},
                          multi_student))
    return {"single_source": single_source, "multi_source": multi, "single_joint": single_joint,
            "multi_joint": multi_joint, "single_student": mw_student["single"],
            "multi_student": multi_student, "train": mw_span["train"]}


def _weights(model_dir):
    return training.load_backbone(model_dir).get_weights()


@pytest.mark.parametrize("which", ["source", "joint", "student"])
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


@pytest.mark.parametrize("which", ["source", "joint", "student"])
def test_only_the_chief_writes(runs, which):
    multi = runs[f"multi_{which}"]
    # one artifact, written once: the SavedModel, the Keras backbone, the run log and TensorBoard logs
    assert os.path.isfile(os.path.join(multi, "model", "Format-Serving", "saved_model.pb"))
    assert os.path.isfile(os.path.join(multi, "run", "history.json"))
    assert os.path.isdir(os.path.join(multi, "run", "train"))
    events = [f for d, _, fs in os.walk(os.path.join(multi, "run")) for f in fs if "tfevents" in f]
    assert len(events) == 2  # train/ and eval/ of the chief only
