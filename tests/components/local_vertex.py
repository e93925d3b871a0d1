"""A stand-in for Vertex AI's job service, for the launcher tests (tests/components/test_diit_trainer_vertex.py):
nothing reaches Google Cloud. `FakeJobService` replaces `gapic.JobServiceClient` inside TFX's `training_clients`, so
TFX builds and "submits" the CustomJob exactly as it would. It records each `create_custom_job` and answers
`get_custom_job` with a final state; with `run=True` it also does what Vertex does with the job: it starts every
replica of every worker pool as a local process running the pool's container command, with the `TF_CONFIG` Vertex
sets (pool 0 the `chief`, pool 1 the `worker`s, loopback ports), and the job succeeds when every replica exits 0."""
import json
import os
import subprocess
import sys
import types

from google.cloud.aiplatform_v1.types.job_state import JobState

from multi_worker_setup import REPO, free_ports, process_env

TASK_TYPES = ("chief", "worker")  # Vertex's TF_CONFIG task type of worker pool 0, 1


class FakeJobService:
    def __init__(self, run=False, log_dir=None, timeout=900):
        self.run, self.log_dir, self.timeout = run, log_dir, timeout
        self.endpoints, self.submitted, self.replicas = [], [], []

    def install(self, monkeypatch):
        """Make TFX's Vertex job client use this service instead of Google Cloud's."""
        from tfx.extensions.google_cloud_ai_platform import training_clients

        monkeypatch.setattr(training_clients, "gapic", types.SimpleNamespace(JobServiceClient=self._client))
        return self

    def _client(self, client_options):
        self.endpoints.append(client_options["api_endpoint"])
        return self

    def create_custom_job(self, parent, custom_job):
        self.submitted.append((parent, json.loads(json.dumps(custom_job))))
        if self.run:
            self._start(custom_job["job_spec"]["worker_pool_specs"])
        return types.SimpleNamespace(name=f"{parent}/customJobs/{len(self.submitted)}")

    def get_custom_job(self, name, retry=None):
        ok = all(self._wait(replica) == 0 for replica in self.replicas)
        return types.SimpleNamespace(name=name, state=JobState.JOB_STATE_SUCCEEDED if ok else JobState.JOB_STATE_FAILED)

    def _start(self, pools):
        counts = [int(pool["replica_count"]) for pool in pools]
        ports = iter(free_ports(sum(counts)))
        cluster = {TASK_TYPES[k]: [f"localhost:{next(ports)}" for _ in range(n)] for k, n in enumerate(counts)}
        for k, pool in enumerate(pools):
            container = pool["container_spec"]
            command = list(container["command"]) + list(container.get("args") or [])
            if command[0] == "python":  # the image's python is this test's
                command[0] = sys.executable
            for index in range(counts[k]):
                task = {"type": TASK_TYPES[k], "index": index}
                log = open(os.path.join(self.log_dir, f"{task['type']}-{index}.log"), "w")
                proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,  # the image's workdir
                                        env=process_env({"cluster": cluster, "task": task, "environment": "cloud"}))
                self.replicas.append({"task": task, "proc": proc, "log": log, "path": log.name})

    def _wait(self, replica):
        try:
            return replica["proc"].wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            replica["proc"].kill()
            raise
        finally:
            replica["log"].close()

    def logs(self) -> dict:
        """`{"chief-0": text, "worker-0": text, ...}`: what each replica printed."""
        out = {}
        for replica in self.replicas:
            with open(replica["path"]) as f:
                out[f"{replica['task']['type']}-{replica['task']['index']}"] = f.read()
        return out
