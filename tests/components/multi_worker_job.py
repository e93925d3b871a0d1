"""One process of the multi-worker tests (started by multi_worker_setup.run_jobs, not collected by pytest):
runs the source or joint trainer's `run_fn` or the DIIT trainer's executor exactly as TFX would, with the `TF_CONFIG` of
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


def source(module="source_trainer"):
    import importlib

    from tfx.components.trainer.fn_args_utils import FnArgs

    run_fn = importlib.import_module(f"components.{module}").run_fn
    run_fn(FnArgs(custom_config=job["config"], transform_output=job["transform"], train_files=job["train_files"],
                  eval_files=job["eval_files"], serving_model_dir=os.path.join(job["out"], "Format-Serving"),
                  model_run_dir=job["run"], train_steps=job.get("train_steps")))


def student():
    from components.diit_trainer import Executor
    from multi_worker_setup import student_artifacts

    inputs, outputs = student_artifacts(job["examples"], job["transform"], job["teachers"], job["out"], job["run"])
    # serialized as DIITTrainer serializes it (sorted keys: the feature spec's order is the backbone's layer order)
    Executor().Do(inputs, outputs, {"custom_config": json.dumps(job["config"], sort_keys=True)})


{"source": source, "joint": lambda: source("joint_trainer"), "student": student}[job["task"]]()
print("DONE " + json.dumps({"chief": job.get("tf_config", {}).get("task", {}).get("index", 0) == 0}), flush=True)
