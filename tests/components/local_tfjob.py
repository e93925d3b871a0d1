"""A stand-in for the Kubernetes API server and Kubeflow's training operator, for the TFJob launcher tests
(tests/components/test_diit_trainer_tfjob.py): nothing reaches a cluster. `FakeTrainingOperator` replaces
`kubernetes.config`'s loaders and `kubernetes.client.CustomObjectsApi`, records every TFJob created, read and
deleted, and answers each read with the next of the `statuses` it was given (the last one repeats) or first raises
the next of `errors`. With `run=True` it does what the operator does with the job: it starts every replica of
`Chief` and `Worker` as a local process running the container's command, with the `TF_CONFIG` the operator sets
(`chief`, `worker`, loopback ports: local_replicas.py; none in a job of one replica), and the job is `Succeeded`
when every replica exits 0, else `Failed` with the operator's message."""
import copy
import re

from local_replicas import LocalReplicas

REPLICA_TYPES = ("Chief", "Worker")  # the operator's TF_CONFIG task type is the replica type in lowercase
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def condition(kind, message="", reason=None):
    """A TFJob status condition as the operator writes it."""
    return {"type": kind, "status": "True", "reason": reason or f"TFJob{kind}", "message": message,
            "lastTransitionTime": "2024-05-01T10:00:00Z", "lastUpdateTime": "2024-05-01T10:00:00Z"}


def status(*kinds, message=""):
    """A TFJob status whose conditions are `kinds` in turn (the last with `message`)."""
    return {"conditions": [condition(k, message if k == kinds[-1] else "") for k in kinds],
            "replicaStatuses": {"Chief": {"active": 1}}}


CREATED, RUNNING = status("Created"), status("Created", "Running")
SUCCEEDED = status("Created", "Running", "Succeeded", message="TFJob completed.")


class FakeTrainingOperator:
    def __init__(self, statuses=(SUCCEEDED,), errors=(), run=False, log_dir=None, timeout=900):
        self.statuses, self.errors, self.run = list(statuses), list(errors), run
        self.local = LocalReplicas(log_dir, timeout)
        self.configs, self.created, self.reads, self.deleted = [], [], [], []

    @property
    def replicas(self) -> list:
        return self.local.replicas

    def install(self, monkeypatch, in_cluster=True):
        """Make the `kubernetes` client talk to this operator; `in_cluster`: whether a pod's config is there."""
        from kubernetes import client, config

        def load_incluster_config(*args, **kwargs):
            if not in_cluster:
                raise config.ConfigException("Service host/port is not set.")
            self.configs.append("in-cluster")

        monkeypatch.setattr(config, "load_incluster_config", load_incluster_config)
        monkeypatch.setattr(config, "load_kube_config", lambda *args, **kwargs: self.configs.append("kubeconfig"))
        monkeypatch.setattr(client, "CustomObjectsApi", lambda *args, **kwargs: self)
        return self

    def create_namespaced_custom_object(self, group, version, namespace, plural, body, **kwargs):
        from kubernetes.client.exceptions import ApiException

        name = body["metadata"]["name"]
        if not DNS_LABEL.match(name):  # what the API server answers (a TFJob's name makes its pods' and services')
            raise ApiException(status=422, reason=f"TFJob.kubeflow.org {name!r} is invalid")
        self.created.append({"group": group, "version": version, "namespace": namespace, "plural": plural,
                             "body": copy.deepcopy(body)})
        if self.run:
            specs = body["spec"]["tfReplicaSpecs"]
            groups = [(kind.lower(), specs[kind]["replicas"], _command(specs[kind]))
                      for kind in REPLICA_TYPES if kind in specs]
            # the operator sets no TF_CONFIG in a job of one replica (kubeflow/training-operator issue 1078)
            self.local.start(groups, tf_config=sum(count for _, count, _ in groups) > 1)
        return copy.deepcopy(body)

    def get_namespaced_custom_object(self, group, version, namespace, plural, name, **kwargs):
        self.reads.append((group, version, namespace, plural, name))
        if self.errors:
            raise self.errors.pop(0)
        body = self._job(namespace, name)
        if self.run:
            return {**body, "status": self._run_status(namespace, name)}
        now = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {**body, "status": copy.deepcopy(now)}

    def delete_namespaced_custom_object(self, group, version, namespace, plural, name, **kwargs):
        self._job(namespace, name)
        self.deleted.append((group, version, namespace, plural, name))
        self.local.kill()
        return {"status": "Success"}

    def _job(self, namespace, name) -> dict:
        from kubernetes.client.exceptions import ApiException

        for job in self.created:
            if (job["namespace"], job["body"]["metadata"]["name"]) == (namespace, name):
                return copy.deepcopy(job["body"])
        raise ApiException(status=404, reason=f'tfjobs.kubeflow.org "{name}" not found')

    def _run_status(self, namespace, name) -> dict:
        """The status once every replica has exited: `Succeeded`, or `Failed` naming the failed replicas."""
        codes = self.local.wait()
        failed = {}
        for replica, code in zip(self.replicas, codes):
            if code != 0:
                kind = replica["task"]["type"].capitalize()
                failed[kind] = failed.get(kind, 0) + 1
        if not failed:
            return SUCCEEDED
        kind, count = next(iter(failed.items()))
        return status("Created", "Running", "Failed",
                      message=f"TFJob {namespace}/{name} has failed because {count} {kind} replica(s) failed.")

    def logs(self) -> dict:
        """`{"chief-0": text, "worker-0": text, ...}`: what each replica printed."""
        return self.local.logs()


def _command(spec) -> list:
    [container] = spec["template"]["spec"]["containers"]
    return list(container["command"]) + list(container.get("args") or [])
