"""End to end with LocalDagRunner and `student.student_init` "joint_embeddings": two spans. Span 1: the init joint
trainer trains on every row beside the source trainers, and the student, which has no previous model, starts from
its embedding tables. Span 2: the init joint trainer sees the previous student, trains nothing and says so; the
student warm-starts from its previous model. Only the student is pushed."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from components.training import has_model, load_backbone, read_model_info
from diit_tf.data import load_spec
from landing_fixtures import empty_landing, run_spans
from pipeline import diit

pytestmark = pytest.mark.slow  # end-to-end LocalDagRunner runs


@pytest.fixture(scope="module")
def runs(tiny_dataset, tmp_path_factory, make_config):
    root = tmp_path_factory.mktemp("joint_embeddings_e2e")
    landing = empty_landing(root, tiny_dataset)
    small = {"backbone": "dnn", "backbone_options": {"hidden_units": [16], "embedding_dim": 4}, "batch_size": 128}
    config = make_config(root, landing, student={**small, "student_init": "joint_embeddings"})
    models = {"init": diit.INIT_JOINT_ID, "source": "source_trainer_source_a"}
    return {"config": config, **run_spans(config, tiny_dataset, landing, (1, 2), models)}


def test_the_first_student_starts_from_the_init_joint_models_tables(runs, tiny_dataset):
    joint = read_model_info(runs["init_1"])
    assert joint["role"] == "joint" and joint["warm_started_from"] is None and has_model(runs["init_1"])
    # every row of the span: one pass is at least 0.6 x rows / batch steps (the train split is about 3/4 of the
    # rows); one domain's rows alone would be at most 500 of the 1,300 (38%)
    rows = sum(1 for _ in open(tiny_dataset / "span-1" / "data.csv"))
    assert joint["train_steps"] >= -(-rows * 0.6 // 128)
    student = read_model_info(runs[1]["student_uri"])
    assert student["warm_started_from"] is None
    # one table per categorical feature of the dataset, in the custom_config's (sorted) order; not the joint
    # model's domain-id table
    tables = [f"features/embedding_{name}/embeddings" for name in sorted(load_spec(str(tiny_dataset)).categorical)]
    assert len(tables) == 4 and student["started_from_source"] == {
        "from": "joint", "init": "joint_embeddings", "model": runs["init_1"], "tables": tables}
    # the student learns from the source models, trained beside the init joint trainer
    assert sorted(student["teachers"]) == ["source_a", "source_b"]
    assert student["teachers"]["source_a"] == runs["source_1"]
    history = json.loads(open(os.path.join(os.path.dirname(runs[1]["student_uri"]), "..", "model_run",
                                           os.path.basename(runs[1]["student_uri"]), "history.json")).read())
    assert history["started_from_source"] == student["started_from_source"]


def test_later_the_init_joint_trainer_skips_and_the_student_warm_starts(runs):
    skipped = read_model_info(runs["init_2"])
    assert not has_model(runs["init_2"])
    assert skipped["skipped"] is True and skipped["trained"] is False
    assert skipped["previous_student"] == runs[1]["student_uri"]
    student = read_model_info(runs[2]["student_uri"])
    assert student["warm_started_from"] == runs[1]["student_uri"] and student["started_from_source"] is None
    assert read_model_info(runs["source_2"])["warm_started_from"] == runs["source_1"]   # the sources train on


def test_only_the_student_is_pushed(runs):
    assert runs[1]["pushed"] and runs[2]["pushed"]
    serving = runs["config"].path("serving_dir")
    assert os.listdir(serving) == [diit.SERVING_MODEL_NAME]
    pushed = os.path.join(serving, diit.SERVING_MODEL_NAME, runs[1]["pushed_version"], "variables", "variables")
    sizes = [int(np.prod(shape)) for name, shape in tf.train.list_variables(pushed)
             if "OBJECT_GRAPH" not in name and "save_counter" not in name]
    student = load_backbone(runs[1]["student_uri"])
    assert sum(sizes) == student.count_params() < load_backbone(runs["init_1"]).count_params()
