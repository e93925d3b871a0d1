"""Importing the library changes nothing process-wide; `quiet_logging()` (called by entry points) does."""
import json
import os
import subprocess
import sys

import pytest

PROBE = r"""
import json, os, sys, warnings
def state():
    return {"env": {k: os.environ.get(k) for k in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")},
            "ignored": sorted({f[2].__name__ for f in warnings.filters if f[0] == "ignore" and f[1] is None})}
before = state()
import diit_tf, diit_tf.features, diit_tf.data, diit_tf.export, diit_tf.simulation.protocol, diit_tf.tuning.run
after_import = state()
from diit_tf.quiet import quiet_logging
quiet_logging()
print(json.dumps({"before": before, "after_import": after_import, "after_quiet": state()}))
"""


@pytest.mark.slow
def test_import_changes_nothing_and_quiet_logging_does():
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND", "PYTHONWARNINGS")}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["before"]["env"] == {"TF_CPP_MIN_LOG_LEVEL": None, "KERAS_BACKEND": None}
    # importing the library (and TensorFlow through it) sets no variable and adds no blanket ignore filter
    assert got["after_import"]["env"] == got["before"]["env"]
    assert "FutureWarning" not in got["after_import"]["ignored"]
    assert got["after_quiet"]["env"] == {"TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    assert {"FutureWarning", "DeprecationWarning"} <= set(got["after_quiet"]["ignored"])
