"""The pipeline with the DIIT trainer swapped for `VertexDIITTrainer` (components/diit_trainer_vertex.py), the edit
docs/pipeline.md describes, compiles for Kubeflow V2 / Vertex AI Pipelines: the task runs the launcher executor with
the launcher settings in its custom_config, on the same inputs, and the Evaluator and Pusher still take its model."""
import json

from tfx import v1 as tfx

from components.diit_trainer_vertex import TRAINING_ARGS_KEY, VERTEX_REGION_KEY, VertexDIITTrainer
from pipeline import diit

POOL = {"machine_spec": {"machine_type": "n1-highmem-16"}, "container_spec": {"image_uri": "gcr.io/project/diit:1"}}
LAUNCHER = {VERTEX_REGION_KEY: "us-central1",
            TRAINING_ARGS_KEY: {"project": "project", "worker_pool_specs": [{**POOL, "replica_count": 1},
                                                                            {**POOL, "replica_count": 3}]}}


def _vertex_student(**kwargs):
    """What the edit builds in place of pipeline/diit.py's `DIITTrainer(...)`: the same arguments, the launcher's
    settings and the multi-worker strategy added to custom_config."""
    config = {**kwargs.pop("custom_config"), "strategy": {"name": "multi_worker", "shard": "data"}, **LAUNCHER}
    return VertexDIITTrainer(custom_config=config, **kwargs)


def test_kubeflow_v2_compile_with_the_vertex_student(tiny_dataset, tmp_path, make_config, monkeypatch):
    from diit_tf.data import load_spec
    from pipeline.schema import write_schema

    config = make_config(tmp_path, tiny_dataset)
    schema = write_schema(load_spec(config.path("data_dir")), str(tmp_path / "schema.pbtxt"))
    cloud = config.with_overrides({"pipeline_root": "gs://bucket/diit/root", "schema_path": schema})
    monkeypatch.setattr(diit, "DIITTrainer", _vertex_student)
    pipeline = diit.pipeline_from_config(cloud, metadata=False)
    out = tmp_path / "diit_kfp.json"
    tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image="gcr.io/project/diit:1"),
        output_filename=str(out)).run(pipeline)
    spec = json.loads(out.read_text())["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    task = tasks[diit.STUDENT_ID]
    args = spec["deploymentSpec"]["executors"][f"{task['componentRef']['name']}_executor"]["container"]["args"]
    assert args[args.index("--executor_class_path") + 1] == "components.diit_trainer_vertex.Executor"
    producers = {k: v["taskOutputArtifact"]["producerTask"] for k, v in task["inputs"]["artifacts"].items()}
    assert producers == {"examples": "Transform", "transform_graph": "Transform", "base_model": "previous_student",
                         "source_model_0": "source_trainer_source_a", "source_model_1": "source_trainer_source_b"}
    config = json.loads(task["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constantValue"]["stringValue"])
    assert {k: config[k] for k in LAUNCHER} == LAUNCHER
    assert config["strategy"] == {"name": "multi_worker", "shard": "data"} and "feature_spec" in config
    for name, key in (("evaluator", "model"), ("pusher", "model")):
        assert tasks[name]["inputs"]["artifacts"][key]["taskOutputArtifact"]["producerTask"] == diit.STUDENT_ID
