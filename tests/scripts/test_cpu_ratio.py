"""scripts/cpu_ratio.py: each method's CPU seconds over the base's, per (seed, period), first periods left out."""
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("cpu_ratio", REPO / "scripts" / "cpu_ratio.py")
cpu_ratio = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cpu_ratio)


def _row(seed, method, period, cpu, first=False):
    return {"seed": seed, "method": method, "period": period, "cpu_seconds": cpu, "first": first}


def test_ratios_by_hand():
    details = {"train_seconds": [
        _row(0, "base", 4, 9.0, first=True), _row(0, "diit", 4, 90.0, first=True),  # traced: left out
        _row(0, "base", 5, 1.0), _row(0, "diit", 5, 2.0), _row(0, "kd", 5, 1.5),
        _row(1, "base", 5, 2.0), _row(1, "diit", 5, 5.0),
    ]}
    ratios = cpu_ratio.cpu_ratios(details)
    assert ratios["diit"] == pytest.approx((2.0 / 1.0 + 5.0 / 2.0) / 2)  # 2.25
    assert ratios["kd"] == pytest.approx(1.5)
    assert "base" not in ratios


def test_a_run_without_cpu_seconds_says_so(tmp_path, capsys):
    path = tmp_path / "details.json"
    path.write_text('{"train_seconds": []}')
    assert cpu_ratio.main([str(path)]) == 0
    assert "no CPU seconds recorded" in capsys.readouterr().out
    assert cpu_ratio.main([str(tmp_path / "missing.json")]) == 1
