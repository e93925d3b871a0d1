"""The Beam components (ExampleGen, StatisticsGen, Transform, Evaluator) on Beam's multi-process local mode:
`--direct_running_mode=multi_processing --direct_num_workers=2`. One pipeline run over a tiny span completes and
pushes, and Beam's SDK workers ran as separate processes (`apache_beam.runners.worker.sdk_worker_main`, seen as
children of this process while the run goes on)."""
import os
import shutil
import subprocess
import threading
import time

import pytest

from pipeline import diit, results

pytestmark = pytest.mark.slow  # a pipeline run on Beam's multi-process runner

BEAM_ARGS = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]


class ChildWatcher(threading.Thread):
    """Polls this process's children and keeps the command lines of those running Beam SDK workers."""

    def __init__(self):
        super().__init__(daemon=True)
        self.workers = set()
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            listing = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(os.getpid())], capture_output=True,
                                     text=True).stdout
            self.workers.update(line.split(None, 1)[0] for line in listing.splitlines()
                                if "sdk_worker_main" in line)
            time.sleep(0.3)


def test_the_pipeline_runs_on_beams_multi_process_mode(tiny_dataset, tmp_path, make_config):
    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copy2(tiny_dataset / "metadata.json", landing / "metadata.json")
    shutil.copytree(tiny_dataset / "span-1", landing / "span-1")
    config = make_config(tmp_path, landing, beam_pipeline_args=BEAM_ARGS)
    watcher = ChildWatcher()
    watcher.start()
    start_ms = int(time.time() * 1000)
    try:
        diit.run(config)
    finally:
        watcher.stop.set()
        watcher.join()
    summary = results.run_summary(config.path("metadata_path"), since_ms=start_ms)
    assert summary["pushed"], summary
    assert set(summary["evaluation"]["candidate"]) >= {"overall", "domain=target"}
    assert len(watcher.workers) >= 2, "no Beam SDK worker process was seen"
