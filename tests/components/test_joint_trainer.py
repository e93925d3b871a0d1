"""The joint teacher's trainer (components/joint_trainer.py) on streamed transformed TFRecords: one pass over every
row, the saved target view that the DIIT trainer loads, warm start, and the DIIT trainer with the joint model as its
one teacher (`teacher: "joint"`, the simulation's `kd_joint`)."""
import numpy as np
import pytest
from tfx.types import standard_artifacts

from components import training
from components.diit_trainer import source_models, train_student
from components.joint_trainer import train_joint
from diit_tf.baselines.joint import DOMAIN_FEATURE
from diit_tf.config import DIITConfig
from diit_tf.data import streaming

from transformed_fixtures import COLUMNS, SPEC, transformed, write_transformed

pytestmark = pytest.mark.slow  # trains models

CONFIG = {"backbone": "dnn", "backbone_options": {"hidden_units": [8], "embedding_dim": 4}, "epochs": 1,
          "batch_size": 32, "learning_rate": 0.01}
KD = {**CONFIG, "teacher": "joint", "diit": DIITConfig.logit_kd(2.0).to_dict()}


def split(tmp_path, name, data, eval_data=None) -> streaming.TrainerInput:
    train = write_transformed(str(tmp_path / name / "train"), data)
    evaluation = write_transformed(str(tmp_path / name / "eval"), eval_data) if eval_data is not None else []
    return streaming.TrainerInput(train, evaluation, dict(COLUMNS))


def _artifact(uri):
    artifact = standard_artifacts.Model()
    artifact.uri = uri
    return [artifact]


@pytest.fixture(scope="module")
def joint_uri(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("joint")
    view, info = train_joint(SPEC, split(tmp, "p", transformed(), transformed(seed=5)), CONFIG)
    uri = str(tmp / "joint")
    training.save_backbone(view, uri, info)
    return uri


def test_the_joint_model_trains_on_every_row_and_saves_its_view_of_the_target(tmp_path, joint_uri):
    data, evaluation = transformed(), transformed(seed=5)
    info = training.read_model_info(joint_uri)
    assert info["role"] == "joint" and info["domain"] == "target" and info["domains"] == list(SPEC.domains)
    assert info["train_steps"] == -(-len(data["click"]) // CONFIG["batch_size"])  # one pass over all 240 rows
    assert info["eval"]["rows"] == int((evaluation["domain"] == b"target").sum())
    teacher = training.load_backbone(joint_uri)          # what the DIIT trainer loads: single-domain inputs
    assert sorted(teacher.input) == sorted(SPEC.feature_names)
    joint = teacher.get_layer("joint")
    x = {k: evaluation[k] for k in SPEC.feature_names}
    for index, domain in enumerate(SPEC.domains):        # the view is the joint model with every row tagged target
        tagged = joint({**x, DOMAIN_FEATURE: np.full(len(evaluation["click"]), index, np.int64)})["logit"]
        same = np.allclose(teacher(x)["logit"], tagged, rtol=1e-5)
        assert same == (domain == "target")


def test_the_joint_model_warm_starts_from_its_previous_model(tmp_path, joint_uri):
    frozen, info = train_joint(SPEC, split(tmp_path, "p2", transformed(seed=2)), {**CONFIG, "learning_rate": 1e-30},
                               joint_uri)
    assert info["warm_started_from"] == joint_uri
    for a, b in zip(frozen.get_weights(), training.load_backbone(joint_uri).get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_the_student_distils_from_the_joint_teacher_alone(tmp_path, joint_uri):
    uris, left_out = source_models({"source_model_0": _artifact(joint_uri)})
    assert uris == {"joint": joint_uri} and left_out == {}
    before = training.load_backbone(joint_uri).get_weights()
    student, info = train_student(SPEC, uris, split(tmp_path, "p", transformed(seed=1), transformed(seed=6)), KD)
    assert info["teacher"] == "joint" and info["teachers"] == {"joint": joint_uri}
    assert info["diit"]["use_gate"] is False and info["diit"]["beta2"] == 2.0 and info["diit"]["alpha"] == 0.0
    assert {"ce", "kl"} <= set(info["history"]) and "gate_bce" not in info["history"]
    assert sorted(student.input) == sorted(SPEC.feature_names)   # the student stays a single-domain model
    for a, b in zip(before, training.load_backbone(joint_uri).get_weights()):
        np.testing.assert_array_equal(a, b)                       # the saved teacher is untouched


def test_the_joint_teacher_is_refused_with_sources_or_a_best_source_start(tmp_path, joint_uri):
    data = split(tmp_path, "p", transformed(seed=1))
    with pytest.raises(ValueError, match="teacher 'joint' takes exactly one model"):
        train_student(SPEC, {"joint": joint_uri, "src_a": joint_uri}, data, KD)
    with pytest.raises(ValueError, match="no source model for source domain"):
        train_student(SPEC, {"joint": joint_uri}, data, {**KD, "teacher": "sources"})
    with pytest.raises(ValueError, match="student_init.*set it to \"base\""):
        train_student(SPEC, {"joint": joint_uri}, data, {**KD, "student_init": "best_source"})
    with pytest.raises(ValueError, match="`teacher` should be one of"):
        train_student(SPEC, {"joint": joint_uri}, data, {**KD, "teacher": "everyone"})


def test_a_span_without_rows_is_a_clear_error(tmp_path):
    empty = write_transformed(str(tmp_path / "empty"), {k: v[:0] for k, v in transformed().items()})
    with pytest.raises(streaming.StreamInputError, match="joint trainer: the span's train split has no rows"):
        train_joint(SPEC, streaming.TrainerInput(empty, [], dict(COLUMNS)), CONFIG)


def test_an_unknown_setting_is_named_and_the_source_block_is_known():
    from types import SimpleNamespace

    from components import joint_trainer
    from pipeline import configs

    with pytest.raises(ValueError, match=r"^joint trainer: unknown custom_config key\(s\) \['domain'\]"):
        joint_trainer.run_fn(SimpleNamespace(custom_config={"feature_spec": {}, "domain": "target"}))
    source = configs.PipelineConfig({"joint_teacher": {"enabled": True}}).resolved("synthetic")["source"]
    assert set(source) - {"train_steps", "eval_steps"} | {"feature_spec", "strategy"} <= joint_trainer.CONFIG_KEYS


# ---------------------------------------------------------------------- the init role: student_init "joint_embeddings"
NO_SOURCES = {"src_a": "no model yet", "src_b": "no model yet"}  # the student trains on the target rows alone
JOINT_START = {**CONFIG, "diit": {}, "student_init": "joint_embeddings"}


def test_a_fresh_student_takes_the_joint_models_tables_and_keeps_its_own_towers(tmp_path, joint_uri, monkeypatch):
    """With no previous student, the student's embedding tables are the joint model's (matched by path; the joint
    model's domain-id table has none in the student) and every other weight is the student's initialisation, here
    with other towers than the joint model's. history.json records the start."""
    from components import diit_trainer
    from diit_tf.layers.feature_embedding import embedding_positions

    seen = []
    original = diit_trainer.start_from_joint

    def spy(uri, student):
        before = [w.copy() for w in student.get_weights()]
        started = original(uri, student)
        seen.append((before, [w.copy() for w in student.get_weights()], embedding_positions(student),
                     [w.path for w in student.weights]))
        return started

    monkeypatch.setattr(diit_trainer, "start_from_joint", spy)
    other_towers = {**JOINT_START, "backbone_options": {"hidden_units": [5], "embedding_dim": 4}}
    data = split(tmp_path, "p", transformed(seed=1), transformed(seed=6))
    _, info = train_student(SPEC, {}, data, other_towers, left_out=NO_SOURCES, init_model_uri=joint_uri)
    joint = training.load_backbone(joint_uri)
    tables = {joint.weights[i].path: joint.weights[i].numpy() for i in embedding_positions(joint)}
    assert sorted(tables) == ["features/embedding_domain_id/embeddings", "features/embedding_item_id/embeddings",
                              "features/embedding_user_id/embeddings"]
    assert len(seen) == 1
    before, after, positions, paths = seen[0]
    assert [paths[i] for i in positions] == ["features/embedding_user_id/embeddings",
                                             "features/embedding_item_id/embeddings"]
    for i in positions:
        np.testing.assert_array_equal(after[i], tables[paths[i]])
        assert not np.array_equal(before[i], tables[paths[i]])
    for i in set(range(len(after))) - set(positions):  # the towers, as initialised
        np.testing.assert_array_equal(after[i], before[i])
    assert info["started_from_source"] == {"from": "joint", "init": "joint_embeddings", "model": joint_uri,
                                           "tables": [paths[i] for i in positions]}
    assert info["warm_started_from"] is None


def test_a_warm_started_student_does_not_take_the_joint_models_tables(tmp_path, joint_uri):
    """With a previous student, the student warm-starts from it: the joint model is not read (a learning rate of
    1e-30 leaves the previous student's tables, not the joint model's)."""
    from diit_tf.layers.feature_embedding import embedding_positions

    data = split(tmp_path, "p", transformed(seed=1))
    first, info = train_student(SPEC, {}, data, JOINT_START, left_out=NO_SOURCES, init_model_uri=joint_uri)
    previous = str(tmp_path / "student")
    training.save_backbone(first, previous, info)
    second, warm = train_student(SPEC, {}, data, {**JOINT_START, "learning_rate": 1e-30}, previous,
                                 left_out=NO_SOURCES, init_model_uri=joint_uri)
    assert warm["warm_started_from"] == previous and warm["started_from_source"] is None
    for a, b in zip(second.get_weights(), first.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    joint = training.load_backbone(joint_uri)
    i = embedding_positions(second)[0]
    assert second.weights[i].path == joint.weights[embedding_positions(joint)[0]].path
    assert not np.allclose(second.get_weights()[i], joint.weights[embedding_positions(joint)[0]].numpy())


def test_a_joint_model_whose_tables_do_not_match_the_student_is_a_clear_error(tmp_path, joint_uri):
    data = split(tmp_path, "p", transformed(seed=1))
    narrow = {**JOINT_START, "backbone_options": {"hidden_units": [8], "embedding_dim": 3}}
    with pytest.raises(ValueError) as error:
        train_student(SPEC, {}, data, narrow, left_out=NO_SOURCES, init_model_uri=joint_uri)
    assert str(error.value) == (
        f"DIIT trainer: `student.student_init` is 'joint_embeddings', but the joint model {joint_uri!r} has no table "
        "features/embedding_user_id/embeddings of shape (32, 3) (its tables: {'features/embedding_user_id/embeddings'"
        ": (32, 4), 'features/embedding_item_id/embeddings': (16, 4), 'features/embedding_domain_id/embeddings': "
        "(3, 4)}): give the student the `source` block's features and embedding_dim (`backbone_options.embedding_dim`"
        "; the joint model is trained with the `source` settings), or set student_init to \"base\"")
    with pytest.raises(ValueError, match=r"^DIIT trainer: `student.student_init` is 'joint_embeddings' and the student "
                                         r"has no previous model, but there is no joint model to start from \(input "
                                         r"`init_model`"):
        train_student(SPEC, {}, data, JOINT_START, left_out=NO_SOURCES)


def test_the_init_role_trains_nothing_once_there_is_a_previous_student(tmp_path, joint_uri, caplog):
    """`previous_student` set: the run_fn writes a placeholder that says why, reads no example (the fn_args here
    have none) and the DIIT trainer's `init_model` ignores it; a typo in the settings is still named."""
    import json
    import logging
    import os
    from types import SimpleNamespace

    from components import joint_trainer
    from components.diit_trainer import init_model
    from diit_tf.backbones import build_backbone

    student = str(tmp_path / "student")
    training.save_backbone(build_backbone("dnn", SPEC, name="student", hidden_units=[8], embedding_dim=4), student,
                           {"role": "student"})
    model = tmp_path / "init" / "model"
    fn_args = SimpleNamespace(custom_config={**CONFIG, "feature_spec": SPEC.to_dict()}, previous_student=student,
                              serving_model_dir=str(model / training.SERVING_DIR), model_run_dir=str(tmp_path / "run"))
    with caplog.at_level(logging.INFO):
        joint_trainer.run_fn(fn_args)
    reason = (f"the student has a previous model ({student}) and warm-starts from it: the joint model that starts a "
              "new student (student_init \"joint_embeddings\") is not needed, nothing is trained")
    assert not training.has_model(str(model))
    assert training.read_model_info(str(model)) == {"role": "joint", "skipped": True, "previous_student": student,
                                                    "reason": reason, "trained": False}
    assert json.loads((tmp_path / "run" / "history.json").read_text())["reason"] == reason
    assert os.path.isfile(model / training.SERVING_DIR / training.NO_MODEL_FILE)
    assert f"joint trainer: {reason}" in caplog.text
    with caplog.at_level(logging.INFO):
        assert init_model({"init_model": _artifact(str(model))}) is None
    assert f"DIIT trainer: the joint model {model} holds no model ({reason}); it is not used" in caplog.text
    assert init_model({"init_model": _artifact(joint_uri)}) == joint_uri and init_model({}) is None
    with pytest.raises(ValueError, match=r"^joint trainer: unknown custom_config key\(s\) \['epoch'\]"):
        joint_trainer.run_fn(SimpleNamespace(**{**vars(fn_args), "custom_config": {**fn_args.custom_config,
                                                                                    "epoch": 1}}))
