"""A stand-in for Vertex AI's job service, for the launcher tests (tests/components/test_diit_trainer_vertex.py):
nothing reaches Google Cloud. `FakeJobService` replaces `gapic.JobServiceClient` inside TFX's `training_clients`, so
TFX builds and "submits" the CustomJob exactly as it would. It records each `create_custom_job` and answers
`get_custom_job` with a final state; with `run=True` it also does what Vertex does with the job: it starts every
replica of every worker pool as a local process running the pool's container command, with the `TF_CONFIG` Vertex
sets (pool 0 the `chief`, pool 1 the `worker`s, pool 2 the `ps` tasks; loopback ports: local_replicas.py), and the
job succeeds when every replica exits 0; a job with parameter servers, whose worker and ps replicas serve until the
job ends, ends with its primary replica (Vertex: the primary "reports status for the job as a whole"): it succeeds
when the chief exits 0, and the others are stopped then."""
import json
import types

from google.cloud.aiplatform_v1.types.job_state import JobState

from local_replicas import LocalReplicas

TASK_TYPES = ("chief", "worker", "ps")  # Vertex's TF_CONFIG task type of worker pool 0, 1, 2


class FakeJobService:
    def __init__(self, run=False, log_dir=None, timeout=900):
        self.run = run
        self.local = LocalReplicas(log_dir, timeout)
        self.endpoints, self.submitted = [], []
        self.parameter_servers = False

    @property
    def replicas(self) -> list:
        return self.local.replicas

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
        ok = all(code == 0 for code in self.local.wait(primary_ends_job=self.parameter_servers))
        return types.SimpleNamespace(name=name, state=JobState.JOB_STATE_SUCCEEDED if ok else JobState.JOB_STATE_FAILED)

    def _start(self, pools):
        self.parameter_servers = len(pools) > 2
        self.local.start([(TASK_TYPES[k], int(pool["replica_count"]),
                           list(pool["container_spec"]["command"]) + list(pool["container_spec"].get("args") or []))
                          for k, pool in enumerate(pools)])

    def logs(self) -> dict:
        """`{"chief-0": text, "worker-0": text, ...}`: what each replica printed."""
        return self.local.logs()
