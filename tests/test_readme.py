"""The README's library snippet runs as written (on a small synthetic dataset it builds first)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a dataset and runs the snippet in subprocesses

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_library_snippet_runs(tmp_path):
    snippet = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    build = [sys.executable, "-m", "diit_tf.cli", "data", "synthetic", "--out", "runs/data/synthetic",
             "--periods", "4", "--rows-target", "1500", "--rows-source", "3000,3000"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(build, cwd=tmp_path, check=True, capture_output=True, env=env, timeout=300)
    out = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    auc = float(re.search(r"target AUC on period 4: ([0-9.]+)", out.stdout).group(1))
    assert 0.5 < auc <= 1.0
    assert (tmp_path / "runs/serving/diit/1/saved_model.pb").is_file()
