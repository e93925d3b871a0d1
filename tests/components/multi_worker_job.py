"""One process of the multi-worker tests (run by tests/components/test_multi_worker.py, not collected by pytest):
runs the source trainer's `run_fn` or the DIIT trainer's executor exactly as TFX would, with the `TF_CONFIG` of
its task (or none for the single-worker reference), and prints `DONE <json>`.

    python multi_worker_job.py '<json job>'
"""
import json
import os
import sys

job = json.loads(sys.argv[1])
if job.get("tf_config"):
    os.environ["TF_CONFIG"] = json.dumps(job["tf_config"])
sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)), job["repo"]]


def source():
    from tfx.components.trainer.fn_args_utils import FnArgs

    from components.source_trainer import run_fn

    run_fn(FnArgs(custom_config=job["config"], transform_output=job["transform"], train_files=job["train_files"],
                  eval_files=job["eval_files"], serving_model_dir=os.path.join(job["out"], "Format-Serving"),
                  model_run_dir=job["run"]))


def student():
    from tfx.types import artifact_utils, standard_artifacts

    from components.diit_trainer import Executor

    def artifact(kind, uri, splits=None):
        a = kind()
        a.uri = uri
        if splits:
            a.split_names = artifact_utils.encode_split_names(splits)
        return a

    inputs = {"examples": [artifact(standard_artifacts.Examples, job["examples"], ["train", "eval"])],
              "transform_graph": [artifact(standard_artifacts.TransformGraph, job["transform"])]}
    for k, uri in enumerate(job["teachers"]):
        inputs[f"source_model_{k}"] = [artifact(standard_artifacts.Model, uri)]
    outputs = {"model": [artifact(standard_artifacts.Model, job["out"])],
               "model_run": [artifact(standard_artifacts.ModelRun, job["run"])]}
    Executor().Do(inputs, outputs, {"custom_config": json.dumps(job["config"])})


{"source": source, "student": student}[job["task"]]()
print("DONE " + json.dumps({"chief": job.get("tf_config", {}).get("task", {}).get("index", 0) == 0}), flush=True)
