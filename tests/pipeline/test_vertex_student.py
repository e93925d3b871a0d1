"""The pipeline with the DIIT trainer swapped for `VertexDIITTrainer` (components/diit_trainer_vertex.py), the edit
docs/pipeline.md describes, compiles for Kubeflow V2 / Vertex AI Pipelines: the task runs the launcher executor with
the launcher settings in its custom_config, on the same inputs, and the Evaluator and Pusher still take its model
(launcher_compile.py)."""
from components.diit_trainer_vertex import TRAINING_ARGS_KEY, VERTEX_REGION_KEY, VertexDIITTrainer

from launcher_compile import IMAGE, check_student_task, compile_with, launcher_student

POOL = {"machine_spec": {"machine_type": "n1-highmem-16"}, "container_spec": {"image_uri": IMAGE}}
LAUNCHER = {VERTEX_REGION_KEY: "us-central1",
            TRAINING_ARGS_KEY: {"project": "project", "worker_pool_specs": [{**POOL, "replica_count": 1},
                                                                            {**POOL, "replica_count": 3}]}}


def test_kubeflow_v2_compile_with_the_vertex_student(tiny_dataset, tmp_path, make_config, monkeypatch):
    spec = compile_with(launcher_student(VertexDIITTrainer, LAUNCHER), tiny_dataset, tmp_path, make_config,
                        monkeypatch)
    check_student_task(spec, "components.diit_trainer_vertex.Executor", LAUNCHER)
