"""scripts/answer.py: the per-benchmark gains over the base are paired by seed within one run (values by hand), the
joint model's come from its own run, and the figure is a PNG; the committed table is the committed results'."""
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("answer", REPO / "scripts" / "answer.py")
answer = importlib.util.module_from_spec(spec)
sys.modules["answer"] = answer
spec.loader.exec_module(answer)


def _run(root, name, per_seed):
    (root / name).mkdir(parents=True)
    methods = {m: {"per_seed_auc": aucs} for m, aucs in per_seed.items()}
    (root / name / "results.json").write_text(json.dumps({"dataset": name, "methods": methods}))


def test_gains_are_paired_by_seed_and_a_missing_method_comes_from_the_next_run(tmp_path):
    _run(tmp_path, "test", {"base": [0.70, 0.72], "diit": [0.71, 0.74], "kd_uniform": [0.70, 0.73]})
    _run(tmp_path, "joint-run", {"base": [0.69, 0.70], "joint": [0.72, 0.72], "diit": [0.60, 0.60]})
    rows = answer.gains(tmp_path, (("bench", ("test", "joint-run")),), ("kd_uniform", "diit", "joint", "kd_static"))
    got = rows[0]["gains"]
    # diit: gains 0.01 and 0.02 -> mean 0.015, sample std sqrt(((0.005)^2 * 2) / 1) = 0.0070711
    assert got["diit"][0] == pytest.approx(0.015) and got["diit"][1] == pytest.approx(math.sqrt(2) * 0.005)
    assert got["diit"][2:] == (2, "test")  # the first run that has it, not the other
    assert got["kd_uniform"][0] == pytest.approx(0.005)
    # joint: 0.03 and 0.02 against its own run's base, not the test run's
    assert got["joint"][0] == pytest.approx(0.025) and got["joint"][3] == "joint-run"
    assert "kd_static" not in got  # in neither run
    table = answer.markdown(rows, ("kd_uniform", "diit", "joint", "kd_static"))
    assert "| bench (`test`) | +0.0050 ± 0.0071 | +0.0150 ± 0.0071 | **+0.0250 ± 0.0071** (2 seeds, `joint-run`) |  |" \
        in table
    out = answer.plot(rows, tmp_path / "fig" / "a.png", ("kd_uniform", "diit", "joint", "kd_static"))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_prefix_column_takes_the_runs_method_of_that_family(tmp_path):
    _run(tmp_path, "test", {"base": [0.70, 0.72], "diit": [0.71, 0.74]})
    _run(tmp_path, "origin", {"base": [0.70, 0.72], "diit:gate_origin=1+gate_fit_epochs=3": [0.73, 0.73]})
    got = answer.gains(tmp_path, (("bench", ("test", "origin")),), ("diit", "diit+origin"))[0]["gains"]
    assert got["diit+origin"][0] == pytest.approx(0.02) and got["diit+origin"][3] == "origin"
    assert got["diit"][3] == "test"


def test_the_origin_and_target_spot_columns_tell_their_rows_apart(tmp_path):
    _run(tmp_path, "test", {"base": [0.70, 0.72], "diit:gate_origin=1+gate_fit_epochs=3": [0.71, 0.73],
                            "diit:gate_origin=1+gate_fit_epochs=3+target_kd=1": [0.74, 0.76]})
    got = answer.gains(tmp_path, (("bench", ("test",)),), ("diit+origin", "diit+target"))[0]["gains"]
    assert got["diit+origin"][0] == pytest.approx(0.01)  # the row without the spot, though the other one matches
    assert got["diit+target"][0] == pytest.approx(0.04)  # its prefix too


def test_runs_with_different_seeds_are_refused(tmp_path):
    _run(tmp_path, "test", {"base": [0.70, 0.72], "diit": [0.71]})
    with pytest.raises(ValueError, match="diit and base have 1 and 2 seeds"):
        answer.gains(tmp_path, (("bench", ("test",)),), ("diit",))


def test_a_missing_report_is_a_clear_exit(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        answer.main(["--results", str(tmp_path), "--out", str(tmp_path / "a.png")])
    assert exit_.value.code == 2
    assert "a report is missing" in capsys.readouterr().err


def test_the_committed_figure_exists_and_every_benchmark_has_diit():
    assert answer.FIGURE.is_file(), "run `python scripts/reproduce.py --render`"
    for row in answer.gains():
        assert {"base", "diit"} <= set(json.loads((answer.RESULTS / row["runs"][0] / "results.json").read_text())[
            "methods"]), row["label"]
        assert "diit" in row["gains"] and "joint" in row["gains"], row["label"]
