"""Distributed tuning with keras-tuner's own chief/worker mode: one chief and two workers on loopback."""
import json
import os
import socket
import subprocess
import sys

import pytest

from tuning_fixtures import TINY_BACKBONE, build_tiny

pytestmark = pytest.mark.slow  # a chief and two workers in subprocesses

TIMEOUT_SECONDS = 420  # hard bound for the whole run (the machine is shared; a run takes ~1 minute alone)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_chief_and_two_workers_complete_every_trial(tmp_path):
    data_dir = build_tiny(tmp_path / "syn")
    directory = tmp_path / "tune"
    port = _free_port()
    argv = [sys.executable, "-m", "diit_tf.cli", "tune", "--dataset", str(data_dir), "--directory", str(directory),
            "--algorithm", "random", "--max-trials", "3", "--train-period", "1", *TINY_BACKBONE]
    procs = {}
    logs = {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            env = dict(os.environ, KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1",
                       KERASTUNER_ORACLE_PORT=str(port), CUDA_VISIBLE_DEVICES="")
            logs[tuner_id] = open(tmp_path / f"{tuner_id}.log", "w+")
            procs[tuner_id] = subprocess.Popen(argv, env=env, stdout=logs[tuner_id], stderr=subprocess.STDOUT)
        codes = {}
        for tuner_id, proc in procs.items():
            try:
                codes[tuner_id] = proc.wait(timeout=TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                codes[tuner_id] = None
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for f in logs.values():
            f.close()
    text = {k: (tmp_path / f"{k}.log").read_text() for k in procs}
    assert codes == {"chief": 0, "tuner0": 0, "tuner1": 0}, "\n\n".join(f"== {k}\n{v[-3000:]}" for k, v in text.items())

    statuses = [json.loads(p.read_text())["status"] for p in (directory / "diit_tune").glob("trial_*/trial.json")]
    assert statuses == ["COMPLETED"] * 3
    # trials ran in the workers, never in the chief; each worker reports through the chief's oracle
    worker_lines = [line for k in ("tuner0", "tuner1") for line in text[k].splitlines() if "completed: val_auc" in line]
    assert len(worker_lines) == 3
    assert "completed: val_auc" not in text["chief"]
    for k in ("tuner0", "tuner1"):
        assert f"worker {k} done" in text[k]
    # the chief writes the leaderboard and best_hparams.json
    assert "3 completed of 3 trial(s)" in text["chief"]
    record = json.loads((directory / "best_hparams.json").read_text())
    assert record["objective"]["value"] == pytest.approx(max(
        json.loads(p.read_text())["score"] for p in (directory / "diit_tune").glob("trial_*/trial.json")))
