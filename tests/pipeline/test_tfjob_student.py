"""The pipeline with the DIIT trainer swapped for `TFJobDIITTrainer` (components/diit_trainer_tfjob.py), the edit
docs/pipeline.md describes, compiles for Kubeflow V2 (Kubeflow Pipelines): the task runs the TFJob launcher's
executor with its settings in its custom_config, on the same inputs, and the Evaluator and Pusher still take its
model (launcher_compile.py)."""
import pytest

from components.diit_trainer_tfjob import TFJOB_KEY, TFJobDIITTrainer

from launcher_compile import IMAGE, check_student_task, compile_with, launcher_student

LAUNCHER = {TFJOB_KEY: {"namespace": "kubeflow-ranking", "image": IMAGE, "workers": 3,
                        "resources": {"limits": {"cpu": "8", "memory": "32Gi"}}}}


def test_kubeflow_v2_compile_with_the_tfjob_student(tiny_dataset, tmp_path, make_config, monkeypatch):
    spec = compile_with(launcher_student(TFJobDIITTrainer, LAUNCHER), tiny_dataset, tmp_path, make_config,
                        monkeypatch)
    check_student_task(spec, "components.diit_trainer_tfjob.Executor", LAUNCHER)


def test_an_incomplete_tfjob_setting_stops_the_pipeline_build(tiny_dataset, tmp_path, make_config, monkeypatch):
    broken = {TFJOB_KEY: {**LAUNCHER[TFJOB_KEY], "workers": -1}}
    with pytest.raises(ValueError, match=r"^TFJobDIITTrainer: tfjob.workers should be a non-negative integer"):
        compile_with(launcher_student(TFJobDIITTrainer, broken), tiny_dataset, tmp_path, make_config, monkeypatch)
