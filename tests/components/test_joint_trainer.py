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
