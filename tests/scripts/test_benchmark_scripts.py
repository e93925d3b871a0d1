"""scripts/check_benchmark.py and scripts/gate_optimum.py share one reading of a benchmark: its dataset and recorded
relevance (`open_benchmark`), the frozen sources' logits on the target's rows (`sources_on_target`) and a score's AUC
per region (`auc_by_region`), all in check_benchmark.py, which gate_optimum.py imports from beside it."""
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture
def scripts(monkeypatch):
    """The two scripts imported as `python scripts/<name>.py` finds its neighbours: scripts/ first on sys.path."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    for name in ("check_benchmark", "gate_optimum"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield importlib.import_module("check_benchmark"), importlib.import_module("gate_optimum")
    for name in ("check_benchmark", "gate_optimum"):
        sys.modules.pop(name, None)


def test_auc_by_region_by_hand(scripts):
    check_benchmark, _ = scripts
    labels = np.array([1, 0, 1, 0, 1, 0])
    logits = np.array([2.0, 1.0, 0.0, 1.0, 3.0, -1.0])
    region = np.array(["a", "a", "b", "b", "c", "c"])
    # a: the click scores above the non-click (AUC 1); b: below (0); c is not asked for
    assert check_benchmark.auc_by_region(labels, logits, region, ("a", "b")) == {"a": 1.0, "b": 0.0}


def test_gate_optimum_reads_the_benchmark_through_check_benchmark(scripts):
    check_benchmark, gate_optimum = scripts
    for name in ("open_benchmark", "sources_on_target", "auc_by_region"):
        assert getattr(gate_optimum, name) is getattr(check_benchmark, name)
