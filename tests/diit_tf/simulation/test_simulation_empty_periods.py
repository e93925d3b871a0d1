"""Periods where a domain has no rows: a source without rows keeps its previous model, a source without a model at
the insertion period is left out of every method's teachers (and not added when its first model comes later), the
run log and the report say so; a target without rows in a period stops the run before any training."""
import contextlib
import io
import json

import keras
import numpy as np
import pytest

from diit_tf.cli import main

from simulation_fixtures import DOMAINS, TINY_HPARAMS, write_tiny_dataset

pytestmark = pytest.mark.slow  # simulation runs

# source_b has no rows through the insertion period 2 and its first model in period 3; source_a none in period 3
EMPTY = {1: ["source_b"], 2: ["source_b"], 3: ["source_a"]}
TRANSFER = "base,diit,kd_uniform,ctnet,diit_single_source"


def _simulate(data, out, methods):
    """Run `diit simulate` on `data`; returns (exit code, what it logged to stderr)."""
    hp = out / "hp.json"
    hp.write_text(json.dumps(TINY_HPARAMS))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["simulate", "--dataset", str(data), "--seeds", "1", "--methods", methods,
                     "--insertion-period", "2", "--hparams", str(hp), "--out", str(out / "report")])
    return code, err.getvalue()


def _spy_fits(monkeypatch):
    """Record, for every `fit` on (features, labels) batches, the (domain, period) codes of the rows it sees."""
    fits = []
    original = keras.Model.fit

    def spy(self, x=None, *args, **kwargs):
        if not isinstance(next(iter(x))[0], tuple):  # not a transfer batch ((x_t, y_t), x_m)
            fits.append({(float(d), float(p)) for xb, _ in x
                         for d, p in zip(np.asarray(xb["domain_code"]), np.asarray(xb["period_code"]))})
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    return fits


@pytest.fixture(scope="module")
def empty_sources_run(tmp_path_factory):
    data = write_tiny_dataset(tmp_path_factory.mktemp("tiny") / "data", periods=4, empty=EMPTY)
    out = tmp_path_factory.mktemp("sim")
    mp = pytest.MonkeyPatch()
    fits = _spy_fits(mp)
    try:
        code, err = _simulate(data, out, TRANSFER)
    finally:
        mp.undo()
    details = json.loads((out / "report" / "details.json").read_text())
    return {"code": code, "err": err, "fits": fits, "details": details,
            "report": (out / "report" / "report.md").read_text()}


def test_simulation_runs_and_every_method_is_scored(empty_sources_run):
    assert empty_sources_run["code"] == 0
    records = empty_sources_run["details"]["records"]
    assert {(r["method"], r["period"]) for r in records} == {(m, q) for m in TRANSFER.split(",") for q in (3, 4)}


def test_an_empty_source_keeps_its_model_and_trains_again_when_it_has_rows(empty_sources_run):
    a, b = float(DOMAINS.index("source_a")), float(DOMAINS.index("source_b"))
    trained = {code for fit in empty_sources_run["fits"] for code in fit if len(fit) == 1}
    assert (a, 1.0) in trained and (a, 2.0) in trained and (a, 3.0) not in trained
    assert (b, 3.0) in trained and (b, 1.0) not in trained and (b, 2.0) not in trained


def test_a_source_without_a_model_at_insertion_is_left_out_of_the_teachers(empty_sources_run):
    details = empty_sources_run["details"]
    assert details["notes"]["sources"] == {"0": {
        "teachers": ["source_a"], "left_out": ["source_b"],
        "empty_periods": {"1": ["source_b"], "2": ["source_b"], "3": ["source_a"]},
        "first_model_after_teachers_chosen": {"source_b": 3}}}
    diagnostics = details["notes"]["training_diagnostics"]
    for name in ("diit", "diit_single_source"):  # DIIT's gate: one weight, for source_a
        for history in diagnostics[name]["0"].values():
            assert sorted(k for k in history if k.startswith("gate_w")) == ["gate_w0"]
    assert details["notes"]["diit_single_source"]["0"]["source"] == "source_a"


def test_the_run_log_and_the_report_say_so(empty_sources_run):
    err, report = empty_sources_run["err"], empty_sources_run["report"]
    assert "[seed 0] period 1: source 'source_b' has no rows: no model yet" in err
    assert "[seed 0] period 3: source 'source_a' has no rows: keeps its model of period 2" in err
    assert "[seed 0] teachers from period 2 on: source_a; left out (no rows yet): source_b" in err
    assert "[seed 0] period 3: source 'source_b' has its first model; it is not added" in err
    assert "## Source domains without rows" in report
    assert ("- seed 0: teachers source_a; left out source_b; empty: period 1: source_b; period 2: source_b; "
            "period 3: source_a; first model after the teachers were chosen (not added): source_b (period 3)") in report


def test_an_empty_target_period_stops_before_any_training(tmp_path, monkeypatch):
    data = write_tiny_dataset(tmp_path / "data", periods=3, empty={3: ["target"]})
    fits = _spy_fits(monkeypatch)
    code, err = _simulate(data, tmp_path, "base")
    assert code != 0 and fits == []
    assert "the target domain 'target' has no rows in period(s) [3]" in err
    assert not (tmp_path / "report").exists()


def test_no_source_rows_through_insertion_stops_transfer_methods_before_training(tmp_path, monkeypatch):
    data = write_tiny_dataset(tmp_path / "data", periods=3, empty={1: ["source_a", "source_b"],
                                                                  2: ["source_a", "source_b"]})
    fits = _spy_fits(monkeypatch)
    code, err = _simulate(data, tmp_path, "base,kd_uniform")
    assert code != 0 and fits == []
    assert "no source domain has rows in periods [1, 2]" in err
    code, err = _simulate(data, tmp_path, "base,joint")  # methods without sources still run
    assert code == 0, err
