"""What the DIIT trainer's launcher tests share (test_diit_trainer_vertex.py, test_diit_trainer_tfjob.py): the
student's artifacts of a pipeline run, and the check that a replica's command runs the DIIT trainer's executor on
exactly those artifacts with the training config alone."""
import json
import os

from tfx.types import artifact_utils

from multi_worker_setup import student_artifacts

# The artifacts of one pipeline run's DIIT trainer: examples, transform graph, two teachers, outputs, base model.
PIPELINE_RUN = ("/pipe/Transform/transformed_examples/5", "/pipe/Transform/transform_graph/5",
                ["/pipe/source_trainer_src_a/model/3", "/pipe/source_trainer_src_b/model/4"],
                "/pipe/diit_trainer/9")
PIPELINE_BASE_MODEL = "/pipe/diit_trainer/model/2"


def artifacts(examples, transform, teachers, out, base_model=None):
    """`(inputs, outputs)` of the DIIT trainer: the model and its run directory under `out`."""
    return student_artifacts(examples, transform, teachers, os.path.join(out, "model"), os.path.join(out, "run"),
                             base_model)


def pipeline_run_artifacts():
    return artifacts(*PIPELINE_RUN, base_model=PIPELINE_BASE_MODEL)


def flags(command):
    """The flags of TFX's `run_executor` command, `{flag: value}`."""
    assert command[:3] == ["python", "-m", "tfx.scripts.run_executor"]
    assert len(command) == 11  # three words, four flags with a value each
    return dict(zip(command[3::2], command[4::2]))


def assert_runs_the_student_on_the_pipeline_run(command, training_config):
    """`command` runs `components.diit_trainer.Executor` on `pipeline_run_artifacts()`, with `training_config` as
    the only exec property (no launcher key reaches the replicas)."""
    found = flags(command)
    assert found["--executor_class_path"] == "components.diit_trainer.Executor"
    sent = artifact_utils.parse_artifact_dict(found["--inputs"])
    assert {k: [a.uri for a in v] for k, v in sent.items()} == {
        "examples": [PIPELINE_RUN[0]], "transform_graph": [PIPELINE_RUN[1]],
        "source_model_0": [PIPELINE_RUN[2][0]], "source_model_1": [PIPELINE_RUN[2][1]],
        "base_model": [PIPELINE_BASE_MODEL]}
    assert artifact_utils.decode_split_names(sent["examples"][0].split_names) == ["train", "eval"]
    assert sent["examples"][0].type_name == "Examples" and sent["source_model_1"][0].type_name == "Model"
    received = artifact_utils.parse_artifact_dict(found["--outputs"])
    assert {k: [a.uri for a in v] for k, v in received.items()} == {
        "model": [f"{PIPELINE_RUN[3]}/model"], "model_run": [f"{PIPELINE_RUN[3]}/run"]}
    properties = json.loads(found["--exec-properties"])
    assert list(properties) == ["custom_config"]
    assert json.loads(properties["custom_config"]) == training_config


def component(launcher_class, config):
    """The launcher's component on the DIIT trainer's channels (two teachers and a base model)."""
    from tfx import types
    from tfx.types import standard_artifacts

    return launcher_class(
        examples=types.Channel(type=standard_artifacts.Examples),
        transform_graph=types.Channel(type=standard_artifacts.TransformGraph),
        source_models={d: types.Channel(type=standard_artifacts.Model) for d in ("src_a", "src_b")},
        base_model=types.Channel(type=standard_artifacts.Model), custom_config=config)


def assert_is_the_diit_trainer_with_its_launcher(launcher_class, executor_class, config):
    """The component is `DIITTrainer` (same inputs and outputs) with `executor_class`, and the launcher's settings
    reach that executor in custom_config; the local DIIT trainer keeps its own executor."""
    from components import diit_trainer

    built = component(launcher_class, config)
    assert built.executor_spec.executor_class is executor_class
    assert isinstance(built, diit_trainer.DIITTrainer)
    assert sorted(built.inputs) == ["base_model", "examples", "source_model_0", "source_model_1", "transform_graph"]
    assert sorted(built.outputs) == ["model", "model_run"]
    assert json.loads(built.exec_properties["custom_config"]) == json.loads(json.dumps(config))
    assert diit_trainer.DIITTrainer.EXECUTOR_SPEC.executor_class is diit_trainer.Executor
