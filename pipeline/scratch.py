"""A pipeline run's own temporary directory, removed when the run ends.

Every Beam-based TFX component (ExampleGen, StatisticsGen, Transform, Evaluator, ...) given `beam_pipeline_args`
without `--extra_packages`, `--setup_file`, `--requirements_file` or an SDK container image repackages the installed
TFX into an sdist for remote Beam workers (`tfx.utils.dependency_utils.build_ephemeral_package`): a copy of about
49 MB under `tempfile.mkdtemp()`, never removed. A local runner does not use it. A daily job leaves one copy per Beam
component per run, and a day of test suites and demos filled this machine's disk (1,301 copies, 64 GB). TensorFlow's
autograph also leaves a source file per converted function there.

`run_scratch()` points Python's temporary directory (`tempfile.tempdir`, and `TMPDIR` for the processes the run
starts, such as Beam's multi-process workers) at a fresh directory `diit-run-<pid>-*` under the system's temporary
directory for the duration of a run, then removes it and restores both, whether the run succeeded or raised. A run
that was killed cannot clean up after itself: the next run removes the scratch directories whose process is gone.

Example:
    with run_scratch():
        tfx.orchestration.LocalDagRunner().run(pipeline)
"""
from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile

PREFIX = "diit-run-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale(parent: str) -> list:
    """Remove the scratch directories under `parent` whose run's process no longer exists; returns their paths."""
    removed = []
    for path in glob.glob(os.path.join(parent, PREFIX + "*")):
        match = re.match(re.escape(PREFIX) + r"(\d+)-", os.path.basename(path))
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def temp_dir_at(path: str):
    """Point `tempfile.tempdir` and `TMPDIR` at `path` until the block ends, then restore both."""
    saved_tempdir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = os.environ["TMPDIR"] = str(path)
    try:
        yield str(path)
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env


@contextlib.contextmanager
def run_scratch():
    """Yield a fresh temporary directory that every `tempfile` call of this process (and `TMPDIR` of its children)
    uses until the block ends; then remove it and restore the previous settings."""
    parent = tempfile.gettempdir()
    remove_stale(parent)
    scratch = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent)
    try:
        with temp_dir_at(scratch):
            yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
