"""What the launcher students' compile tests share (test_vertex_student.py, test_tfjob_student.py): the pipeline
with pipeline/diit.py's `DIITTrainer` swapped for a launcher (`VertexDIITTrainer`, `TFJobDIITTrainer`), the edit
docs/pipeline.md describes, compiled for Kubeflow V2; and what its task must be: the launcher's executor with the
launcher settings in its custom_config, on the same inputs, the Evaluator and the Pusher taking its model."""
import json

from tfx import v1 as tfx

from pipeline import diit

IMAGE = "gcr.io/project/diit:1"
STRATEGY = {"name": "multi_worker", "shard": "data"}


def launcher_student(launcher, settings):
    """What the edit builds in place of `DIITTrainer(...)`: the same arguments, the launcher's `settings` and the
    multi-worker strategy added to custom_config."""
    def build(**kwargs):
        return launcher(custom_config={**kwargs.pop("custom_config"), "strategy": STRATEGY, **settings}, **kwargs)
    return build


def compile_with(student, tiny_dataset, tmp_path, make_config, monkeypatch) -> dict:
    """The compiled pipeline spec (`pipelineSpec`) of the tiny config with `student` as the DIIT trainer."""
    from diit_tf.data import load_spec
    from pipeline.schema import write_schema

    config = make_config(tmp_path, tiny_dataset)
    schema = write_schema(load_spec(config.path("data_dir")), str(tmp_path / "schema.pbtxt"))
    cloud = config.with_overrides({"pipeline_root": "gs://bucket/diit/root", "schema_path": schema})
    monkeypatch.setattr(diit, "DIITTrainer", student)
    pipeline = diit.pipeline_from_config(cloud, metadata=False)
    out = tmp_path / "diit_kfp.json"
    tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=IMAGE),
        output_filename=str(out)).run(pipeline)
    return json.loads(out.read_text())["pipelineSpec"]


def check_student_task(spec: dict, executor_class: str, settings: dict) -> None:
    """The DIIT trainer's task runs `executor_class` with `settings` and the strategy in its custom_config, on the
    local trainer's inputs, and the Evaluator and the Pusher take its model."""
    tasks = spec["root"]["dag"]["tasks"]
    task = tasks[diit.STUDENT_ID]
    args = spec["deploymentSpec"]["executors"][f"{task['componentRef']['name']}_executor"]["container"]["args"]
    assert args[args.index("--executor_class_path") + 1] == executor_class
    producers = {k: v["taskOutputArtifact"]["producerTask"] for k, v in task["inputs"]["artifacts"].items()}
    assert producers == {"examples": "Transform", "transform_graph": "Transform", "base_model": "previous_student",
                         "source_model_0": "source_trainer_source_a", "source_model_1": "source_trainer_source_b"}
    config = json.loads(task["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constantValue"]["stringValue"])
    assert {k: config[k] for k in settings} == settings
    assert config["strategy"] == STRATEGY and "feature_spec" in config
    for name, key in (("evaluator", "model"), ("pusher", "model")):
        assert tasks[name]["inputs"]["artifacts"][key]["taskOutputArtifact"]["producerTask"] == diit.STUDENT_ID
