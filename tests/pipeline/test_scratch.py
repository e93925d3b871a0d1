"""pipeline/scratch.py: a run's temporary directory is its own and is removed afterwards."""
import os
import subprocess
import sys
import tempfile

import pytest

from pipeline import scratch


@pytest.fixture
def temp_base(tmp_path, monkeypatch):
    base = tmp_path / "tmp"
    base.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    monkeypatch.setenv("TMPDIR", "/somewhere/else")
    return base


def test_run_scratch_holds_the_runs_temp_files_and_is_removed(temp_base):
    with scratch.run_scratch() as path:
        assert os.path.dirname(path) == str(temp_base)
        assert os.path.basename(path).startswith(f"diit-run-{os.getpid()}-")
        made = tempfile.mkdtemp()                      # as TFX's build_ephemeral_package does
        assert os.path.dirname(made) == path
        assert os.environ["TMPDIR"] == path
        child = subprocess.run([sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"],
                               capture_output=True, text=True, check=True)
        assert child.stdout.strip() == path           # processes the run starts inherit it
    assert os.listdir(temp_base) == []
    assert tempfile.tempdir == str(temp_base)
    assert os.environ["TMPDIR"] == "/somewhere/else"


def test_run_scratch_is_removed_when_the_run_raises(temp_base):
    with pytest.raises(RuntimeError, match="validation failed"):
        with scratch.run_scratch():
            open(os.path.join(tempfile.mkdtemp(), "file"), "w").close()
            raise RuntimeError("validation failed")
    assert os.listdir(temp_base) == []
    assert tempfile.tempdir == str(temp_base)
    assert os.environ["TMPDIR"] == "/somewhere/else"


def test_temp_dir_at_restores_an_unset_tmpdir(tmp_path, monkeypatch):
    monkeypatch.delenv("TMPDIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", None)
    with scratch.temp_dir_at(tmp_path):
        assert tempfile.gettempdir() == str(tmp_path)
    assert "TMPDIR" not in os.environ and tempfile.tempdir is None


def test_a_killed_runs_scratch_is_removed_by_the_next_run(temp_base):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()                                          # its pid no longer runs
    stale = temp_base / f"diit-run-{dead.pid}-abc"
    (stale / "build" / "tfx").mkdir(parents=True)
    live = temp_base / f"diit-run-{os.getppid()}-def"    # a run still going (our parent process)
    live.mkdir()
    other = temp_base / "tmp_not_ours"
    other.mkdir()
    with scratch.run_scratch() as path:
        assert sorted(os.listdir(temp_base)) == sorted([live.name, other.name, os.path.basename(path)])
    assert sorted(os.listdir(temp_base)) == sorted([live.name, other.name])
