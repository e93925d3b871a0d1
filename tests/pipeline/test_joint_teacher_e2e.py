"""End to end with LocalDagRunner and the joint teacher (`joint_teacher.enabled`, the simulation's `kd_joint`):
two spans; the joint trainer trains on every row and warm-starts from its own previous model, the student distils
it alone, and only the student is pushed."""
import os

import numpy as np
import pytest
import tensorflow as tf

from components.training import load_backbone, read_model_info
from landing_fixtures import empty_landing, run_spans
from pipeline import diit

pytestmark = pytest.mark.slow  # end-to-end LocalDagRunner runs


@pytest.fixture(scope="module")
def runs(tiny_dataset, tmp_path_factory, make_config):
    root = tmp_path_factory.mktemp("joint_e2e")
    landing = empty_landing(root, tiny_dataset)
    config = make_config(root, landing, joint_teacher={"enabled": True, "beta": 2.0})
    return {"config": config, **run_spans(config, tiny_dataset, landing, (1, 2), {"joint": diit.JOINT_ID})}


def test_the_student_distils_the_joint_model_and_alone_is_pushed(runs, tiny_dataset):
    for span in (1, 2):
        assert runs[span]["pushed"], span
        info = read_model_info(runs[span]["student_uri"])
        assert info["teacher"] == "joint" and info["teachers"] == {"joint": runs[f"joint_{span}"]}
        assert info["diit"]["use_gate"] is False and info["diit"]["beta2"] == 2.0
    joint = read_model_info(runs["joint_2"])
    assert joint["role"] == "joint" and joint["warm_started_from"] == runs["joint_1"]
    assert read_model_info(runs[2]["student_uri"])["warm_started_from"] == runs[1]["student_uri"]
    # every row of the span: the train split holds about 3/4 of the rows (hash split 3:1), so one pass is at least
    # 0.6 x rows / batch steps; one domain's rows alone would be at most 500 of the 1,300 (38%)
    assert joint["train_steps"] >= -(-sum(1 for _ in open(tiny_dataset / "span-2" / "data.csv")) * 0.6 // 128)
    serving = os.path.join(runs["config"].path("serving_dir"), "diit", runs[2]["pushed_version"])
    pushed = os.path.join(serving, "variables", "variables")
    sizes = [int(np.prod(shape)) for name, shape in tf.train.list_variables(pushed)
             if "OBJECT_GRAPH" not in name and "save_counter" not in name]
    student = load_backbone(runs[2]["student_uri"])
    assert sum(sizes) == student.count_params() < load_backbone(runs["joint_2"]).count_params()
    assert sorted(student.input) == sorted(load_backbone(runs["joint_2"]).input)   # a single-domain model
