"""What the launchers' fake platforms share (local_vertex.py, local_tfjob.py): they run a job's replicas as local
processes, as the platform would run them in machines or pods. `LocalReplicas.start` starts every replica of every
task type with the job's own command and the `TF_CONFIG` the platform sets (`{"cluster": {"chief": [...], "worker":
[...]}, "task": {"type": ..., "index": ...}, "environment": "cloud"}`, loopback ports), each writing its output to
`<log_dir>/<type>-<index>.log`."""
import os
import subprocess
import sys
import time

from multi_worker_setup import REPO, free_ports, process_env


class LocalReplicas:
    def __init__(self, log_dir, timeout=900):
        self.log_dir, self.timeout = log_dir, timeout
        self.replicas = []  # {"task": {"type", "index"}, "proc": Popen, "log": file, "path": str}

    def start(self, groups, tf_config=True):
        """`groups`: `(task type, replica count, command)` in the cluster's order, e.g. `[("chief", 1, [...]),
        ("worker", 3, [...])]`. The command's `python` (the image's) is this test's interpreter. `tf_config`: whether
        the platform sets `TF_CONFIG`."""
        ports = iter(free_ports(sum(count for _, count, _ in groups)))
        cluster = {kind: [f"localhost:{next(ports)}" for _ in range(count)] for kind, count, _ in groups}
        for kind, count, command in groups:
            command = list(command)
            if command[0] == "python":
                command[0] = sys.executable
            for index in range(count):
                task = {"type": kind, "index": index}
                log = open(os.path.join(self.log_dir, f"{kind}-{index}.log"), "w")
                proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,  # the image's workdir
                                        env=process_env({"cluster": cluster, "task": task, "environment": "cloud"}
                                                        if tf_config else None))
                self.replicas.append({"task": task, "proc": proc, "log": log, "path": log.name})

    def wait(self, grace=30, primary_ends_job=False) -> list:
        """Every replica's exit code once all have exited. As the platform ends a job one of whose replicas failed,
        the others are killed `grace` seconds after the first failure (a worker whose chief is gone would wait for
        it); past the timeout every replica is killed and it is a `TimeoutError`. `primary_ends_job` (a job whose
        worker and ps replicas serve until the end): once the chief (the first replica) has exited 0 the others
        are stopped, and count as succeeded unless they had already failed."""
        deadline, failed_at = time.monotonic() + self.timeout, None
        while self.running():
            codes = [replica["proc"].poll() for replica in self.replicas]
            if primary_ends_job and codes[0] == 0:
                self.kill()
                return [0 if code is None else code for code in codes]
            if failed_at is None and any(code not in (None, 0) for code in codes):
                failed_at = time.monotonic()
            if failed_at is not None and time.monotonic() > failed_at + grace:
                break
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"replicas still running after {self.timeout} s: {self.logs()}")
            time.sleep(0.2)
        self.kill()
        return [replica["proc"].returncode for replica in self.replicas]

    def running(self) -> bool:
        return any(replica["proc"].poll() is None for replica in self.replicas)

    def kill(self):
        """Kill the replicas still running and close every log."""
        for replica in self.replicas:
            if replica["proc"].poll() is None:
                replica["proc"].kill()
            replica["proc"].wait()
            replica["log"].close()

    def logs(self) -> dict:
        """`{"chief-0": text, "worker-0": text, ...}`: what each replica printed."""
        out = {}
        for replica in self.replicas:
            with open(replica["path"]) as f:
                out[f"{replica['task']['type']}-{replica['task']['index']}"] = f.read()
        return out
