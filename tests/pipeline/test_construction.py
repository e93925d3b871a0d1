"""Pipeline construction: the components, their wiring, the evaluation config, and a Kubeflow V2 compile."""
import json

import pytest

from pipeline import diit


@pytest.fixture(scope="module")
def built(tiny_dataset, tmp_path_factory, make_config):
    config = make_config(tmp_path_factory.mktemp("construct"), tiny_dataset)
    return diit.pipeline_from_config(config), config


def _by_id(pipeline):
    return {c.id: c for c in pipeline.components}


def test_components_and_wiring(built):
    pipeline, _ = built
    nodes = _by_id(pipeline)
    expected = {"SpanCsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "validation_gate",
                "Transform", "previous_source_source_a", "source_trainer_source_a", "previous_source_source_b",
                "source_trainer_source_b", "previous_student", "diit_trainer", "last_blessed_student", "evaluator",
                "pusher"}
    assert set(nodes) == expected
    # Transform runs on the schema the gate let through (training depends on validation by data).
    assert nodes["Transform"].inputs["schema"].producer_component_id == "validation_gate"
    # Each source trainer warm-starts from its own previous model.
    for d in ("source_a", "source_b"):
        resolver_input = nodes[f"previous_source_{d}"].raw_inputs["model"]
        assert resolver_input.producer_component_id == f"source_trainer_{d}"
        assert nodes[f"source_trainer_{d}"].inputs["base_model"].producer_component_id == f"previous_source_{d}"
        assert json.loads(nodes[f"source_trainer_{d}"].exec_properties["custom_config"])["domain"] == d
    # The DIIT trainer gets both source models and the previous student.
    diit_inputs = nodes["diit_trainer"].inputs
    assert {diit_inputs[k].producer_component_id for k in diit_inputs if k.startswith("source_model_")} == \
        {"source_trainer_source_a", "source_trainer_source_b"}
    assert diit_inputs["base_model"].producer_component_id == "previous_student"
    # The Evaluator compares with the last blessed student; the Pusher pushes the DIIT trainer's model.
    assert nodes["evaluator"].inputs["baseline_model"].producer_component_id == "last_blessed_student"
    assert nodes["pusher"].inputs["model"].producer_component_id == "diit_trainer"
    assert nodes["pusher"].inputs["model_blessing"].producer_component_id == "evaluator"
    assert "--runner=FnApiRunner" in pipeline.beam_pipeline_args


def test_eval_config_thresholds_on_target_slice(built):
    _, config = built
    from diit_tf.data import load_spec

    spec = load_spec(config.path("data_dir"))
    ec = diit.eval_config(spec, 0.6, 0.01)
    assert ec.model_specs[0].signature_name == "serving_default"
    assert ec.model_specs[0].prediction_key == "probabilities"
    assert ec.model_specs[0].label_key == "click"
    assert [list(s.feature_keys) for s in ec.slicing_specs] == [[], ["domain"]]
    names = [m.class_name for m in ec.metrics_specs[0].metrics]
    assert names == ["ExampleCount", "BinaryCrossentropy", "AUC"]
    auc = ec.metrics_specs[0].metrics[2].per_slice_thresholds[0]
    assert dict(auc.slicing_specs[0].feature_values) == {"domain": "target"}
    assert auc.threshold.value_threshold.lower_bound.value == pytest.approx(0.6)
    assert auc.threshold.change_threshold.absolute.value == pytest.approx(-0.01, abs=1e-8)


def test_kubeflow_v2_compile(built, tmp_path):
    from tfx import v1 as tfx

    from diit_tf.data import load_spec
    from pipeline.schema import write_schema

    _, config = built
    # In production the curated schema lives next to the data (gs://...); here a local copy stands in for it.
    schema = write_schema(load_spec(config.path("data_dir")), str(tmp_path / "schema.pbtxt"))
    cloud = config.with_overrides({"pipeline_root": "gs://bucket/diit/root", "schema_path": schema,
                                   "beam_pipeline_args": ["--runner=DataflowRunner", "--region=us-central1"]})
    pipeline = diit.pipeline_from_config(cloud, metadata=False)
    out = tmp_path / "diit_kfp.json"
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image="gcr.io/project/diit:latest"),
        output_filename=str(out))
    runner.run(pipeline)
    spec = json.loads(out.read_text())
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    for name in ("SpanCsvExampleGen", "validation_gate", "Transform", "source_trainer_source_a", "diit_trainer",
                 "evaluator", "pusher"):
        assert name in tasks
    assert "DataflowRunner" in out.read_text()
    assert spec["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/diit/root"
    # the joint teacher's pipeline compiles too: the joint trainer in place of the source trainers
    runner.run(diit.pipeline_from_config(cloud.with_overrides({"joint_teacher": {"enabled": True}}), metadata=False))
    tasks = json.loads(out.read_text())["pipelineSpec"]["root"]["dag"]["tasks"]
    assert {"joint_trainer", "diit_trainer", "pusher"} <= set(tasks) and "source_trainer_source_a" not in tasks
    # and so does the init joint trainer beside the source trainers (student_init "joint_embeddings")
    runner.run(diit.pipeline_from_config(cloud.with_overrides({"student": {"student_init": "joint_embeddings"}}),
                                         metadata=False))
    tasks = json.loads(out.read_text())["pipelineSpec"]["root"]["dag"]["tasks"]
    assert {"init_joint_trainer", "source_trainer_source_a", "diit_trainer", "pusher"} <= set(tasks)
    producers = {task: {key: value["taskOutputArtifact"]["producerTask"]
                        for key, value in tasks[task]["inputs"]["artifacts"].items()}
                 for task in ("init_joint_trainer", "diit_trainer")}
    assert producers["init_joint_trainer"]["previous_student"] == "previous_student"
    assert producers["init_joint_trainer"]["base_model"] == "previous_init_joint"
    assert producers["diit_trainer"]["init_model"] == "init_joint_trainer"


def test_base_trainer_beside_the_student(tiny_dataset, tmp_path, make_config):
    config = make_config(tmp_path, tiny_dataset, base_trainer={"enabled": True})
    nodes = _by_id(diit.pipeline_from_config(config))
    base = nodes[diit.BASE_ID]
    assert nodes["previous_base"].raw_inputs["model"].producer_component_id == diit.BASE_ID
    assert base.inputs["base_model"].producer_component_id == "previous_base"
    settings = json.loads(base.exec_properties["custom_config"])
    assert settings["domain"] == "target"
    source = json.loads(nodes["source_trainer_source_a"].exec_properties["custom_config"])
    assert {k: v for k, v in settings.items() if k != "domain"} == {k: v for k, v in source.items() if k != "domain"}
    unbounded = ("train_steps", "eval_steps", "shuffle_buffer", "steps_per_execution")  # null: every row, defaults
    assert None not in [v for k, v in settings.items() if k not in unbounded]  # every setting resolved from hparams
    assert nodes["pusher"].inputs["model"].producer_component_id == "diit_trainer"


def test_the_joint_teacher_replaces_the_source_trainers(tiny_dataset, tmp_path, make_config):
    config = make_config(tmp_path, tiny_dataset, joint_teacher={"enabled": True, "beta": 3.0})
    nodes = _by_id(diit.pipeline_from_config(config))
    assert not [n for n in nodes if n.startswith(("source_trainer", "previous_source"))]
    joint = nodes[diit.JOINT_ID]
    assert joint.exec_properties["run_fn"] == "components.joint_trainer.run_fn"
    assert nodes["previous_joint"].raw_inputs["model"].producer_component_id == diit.JOINT_ID
    assert joint.inputs["base_model"].producer_component_id == "previous_joint"
    settings = json.loads(joint.exec_properties["custom_config"])
    assert "domain" not in settings and settings["backbone_options"] == {"hidden_units": [16], "embedding_dim": 4}
    student_inputs = nodes["diit_trainer"].inputs
    assert [student_inputs[k].producer_component_id for k in student_inputs if k.startswith("source_model_")] == \
        [diit.JOINT_ID]
    student = json.loads(nodes["diit_trainer"].exec_properties["custom_config"])
    assert student["teacher"] == "joint" and student["student_init"] == "base"
    assert {k: student["diit"][k] for k in ("use_gate", "use_middle", "use_adversarial", "alpha", "beta2")} == \
        {"use_gate": False, "use_middle": False, "use_adversarial": False, "alpha": 0.0, "beta2": 3.0}
    assert nodes["pusher"].inputs["model"].producer_component_id == "diit_trainer"   # the student alone is pushed


def test_the_joint_embeddings_start_adds_the_init_joint_trainer_beside_the_sources(tiny_dataset, tmp_path,
                                                                                   make_config):
    """student_init "joint_embeddings": the joint trainer in its init role, beside the source trainers, with the
    source settings, warm-started from its own model and given the previous student; its model is the DIIT
    trainer's `init_model`, never a teacher; the student alone is pushed."""
    small = {"backbone": "dnn", "backbone_options": {"hidden_units": [16], "embedding_dim": 4}, "batch_size": 128}
    config = make_config(tmp_path, tiny_dataset, student={**small, "student_init": "joint_embeddings"},
                         source={**small, "learning_rate": 0.004})
    nodes = _by_id(diit.pipeline_from_config(config))
    init = nodes[diit.INIT_JOINT_ID]
    assert isinstance(init, diit.JointTrainer) and diit.JOINT_ID not in nodes
    assert init.exec_properties["run_fn"] == "components.joint_trainer.run_fn"
    assert nodes["previous_init_joint"].raw_inputs["model"].producer_component_id == diit.INIT_JOINT_ID
    assert init.inputs["base_model"].producer_component_id == "previous_init_joint"
    assert init.inputs["previous_student"].producer_component_id == "previous_student"
    settings = json.loads(init.exec_properties["custom_config"])
    source = json.loads(nodes["source_trainer_source_a"].exec_properties["custom_config"])
    assert settings == {k: v for k, v in source.items() if k != "domain"} and settings["learning_rate"] == 0.004
    student_inputs = nodes["diit_trainer"].inputs
    assert student_inputs["init_model"].producer_component_id == diit.INIT_JOINT_ID
    assert student_inputs["base_model"].producer_component_id == "previous_student"
    assert sorted(student_inputs[k].producer_component_id for k in student_inputs if k.startswith("source_model_")) \
        == ["source_trainer_source_a", "source_trainer_source_b"]
    student = json.loads(nodes["diit_trainer"].exec_properties["custom_config"])
    assert student["student_init"] == "joint_embeddings" and "teacher" not in student
    assert nodes["pusher"].inputs["model"].producer_component_id == "diit_trainer"
    # without the option there is no init trainer and no init_model input
    plain = _by_id(diit.pipeline_from_config(make_config(tmp_path, tiny_dataset)))
    assert diit.INIT_JOINT_ID not in plain and "init_model" not in plain["diit_trainer"].inputs


def test_kd_origin_keeps_the_source_trainers_and_routes_the_students_kd(tiny_dataset, tmp_path, make_config):
    config = make_config(tmp_path, tiny_dataset, kd_origin={"enabled": True, "beta": 3.0})
    nodes = _by_id(diit.pipeline_from_config(config))
    assert diit.JOINT_ID not in nodes
    student_inputs = nodes["diit_trainer"].inputs
    assert sorted(student_inputs[k].producer_component_id for k in student_inputs if k.startswith("source_model_")) \
        == ["source_trainer_source_a", "source_trainer_source_b"]
    student = json.loads(nodes["diit_trainer"].exec_properties["custom_config"])
    assert "teacher" not in student
    assert {k: student["diit"][k] for k in ("route_by_origin", "use_gate", "use_middle", "use_adversarial", "alpha",
                                            "gate_supervision", "beta2")} == \
        {"route_by_origin": True, "use_gate": False, "use_middle": False, "use_adversarial": False, "alpha": 0.0,
         "gate_supervision": 0.0, "beta2": 3.0}
