"""diit_tf/simulation/protocol.py: a training period where the target has fewer training rows than one batch
(`training.batch_size`) trains every method one optimizer step per epoch, so their AUCs can agree to 4 decimals:
the run log and the report's notes warn, naming the periods, the target's rows and the batch size, and suggesting
--batch-size; a --tune run, whose candidates run silently, says it once in its log, tuning.md and tuning.json. Only a
warning: the results are unchanged."""
import contextlib
import io
import json

import numpy as np
import pytest

from diit_tf.cli import main
from diit_tf.data.layout import PeriodData
from diit_tf.simulation.context import PeriodStore
from diit_tf.simulation.protocol import SimulationResult, few_rows_warning, few_target_rows
from diit_tf.simulation.report import write_report

from simulation_fixtures import ROWS, TINY_HPARAMS, tiny_spec, write_tiny_dataset

# target rows per period; period 3 is only scored (the last period trains nothing)
TARGET_ROWS = {1: 3, 2: 10, 3: 2}


def _period(p, spec):
    domains = np.array(["target"] * TARGET_ROWS[p] + ["source_a"] * 20)
    n = len(domains)
    features = {"user_id": np.zeros(n, np.int64), "item_id": np.zeros(n, np.int64),
                "domain_code": np.zeros(n, np.float32), "period_code": np.full(n, p, np.float32)}
    return PeriodData(features, np.zeros(n, np.float32), domains, p, spec)


def _store(**kwargs):
    spec = tiny_spec()
    return PeriodStore(spec=spec, loader=lambda p: _period(p, spec), periods=[1, 2, 3], **kwargs)


def test_few_target_rows_are_the_training_periods_with_fewer_target_rows_than_a_batch():
    store = _store()
    assert few_target_rows(store, 5) == {1: 3}            # period 2 has 10 >= 5; period 3 is never trained on
    assert few_target_rows(store, 11) == {1: 3, 2: 10}
    assert few_target_rows(store, 3) == {}                # 3 rows make one full batch of 3: not fewer
    # with train_share the models train on part of the rows: that part is what counts
    shared = _store(train_share=0.5)
    kept = {p: len(shared.train_rows(p).domain("target")) for p in (1, 2)}
    assert few_target_rows(shared, 11) == kept


def test_the_warning_names_the_periods_the_rows_and_the_batch_size_and_suggests_batch_size():
    assert few_rows_warning("target", {2: 10, 1: 3}, 512) == (
        "the target domain 'target' has fewer training rows than one batch (training.batch_size 512) in period(s) "
        "1 (3 rows), 2 (10 rows): every method trains one optimizer step per epoch there, so the methods' AUCs can "
        "agree to 4 decimals. For several steps per period pass a --batch-size below 3 (or set "
        "training.batch_size in the --hparams file)")


def _result(notes):
    records = [{"seed": 0, "method": m, "period": 2, "auc": 0.6, "logloss": 0.5, "infer_seconds": 0.1}
               for m in ("base", "diit")]
    secs = [{"seed": 0, "method": m, "period": 1, "seconds": 1.0} for m in ("base", "diit")]
    return SimulationResult("d", "dnn", "target", [0], ["base", "diit"], [1, 2], 1, records, secs, [],
                            {"training": {"epochs": 1, "batch_size": 512}}, notes)


def test_the_report_notes_carry_the_warning(tmp_path):
    warning = few_rows_warning("target", {1: 3}, 512)
    write_report(_result({"few_target_rows": {"batch_size": 512, "rows": {"1": 3}, "warning": warning}}), tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert f"## Notes\n\nWarning: {warning}.\n" in report
    assert '"few_target_rows"' not in report  # said in words, not again in the notes' JSON
    write_report(_result({}), tmp_path / "plain")
    assert "Warning:" not in (tmp_path / "plain" / "report.md").read_text()


def _simulate(data, out, *extra):
    hp = out.parent / "hp.json"
    hp.write_text(json.dumps(TINY_HPARAMS))  # batch_size 64, below the tiny target's 240 rows a period
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["simulate", "--dataset", str(data), "--seeds", "1", "--methods", "base,kd_uniform",
                     "--insertion-period", "2", "--hparams", str(hp), "--out", str(out), *extra])
    assert code == 0, err.getvalue()
    return err.getvalue(), (out / "report.md").read_text(), json.loads((out / "details.json").read_text())


@pytest.mark.slow  # two simulation runs
def test_simulate_warns_in_the_run_log_and_the_report(tmp_path):
    data = write_tiny_dataset(tmp_path / "data", periods=3)
    rows = ROWS["target"]  # 240 target rows in every period; periods 1 and 2 are trained on
    expected = (f"the target domain 'target' has fewer training rows than one batch (training.batch_size 512) in "
                f"period(s) 1 ({rows} rows), 2 ({rows} rows): every method trains one optimizer step per epoch "
                f"there, so the methods' AUCs can agree to 4 decimals. For several steps per period pass a "
                f"--batch-size below {rows} (or set training.batch_size in the --hparams file)")
    err, report, details = _simulate(data, tmp_path / "big", "--batch-size", "512")
    assert f"warning: {expected}\n" in err
    assert f"Warning: {expected}." in report
    assert details["notes"]["few_target_rows"] == {"batch_size": 512, "rows": {"1": rows, "2": rows},
                                                   "warning": expected}
    err, report, details = _simulate(data, tmp_path / "small")  # batch 64 < 240 rows: no warning
    assert "warning:" not in err and "Warning:" not in report and "few_target_rows" not in details["notes"]


@pytest.mark.slow  # a transfer search of two candidates
def test_a_tune_run_warns_once_in_the_run_log_and_tuning_md(tmp_path):
    data = write_tiny_dataset(tmp_path / "data", periods=5)
    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps(TINY_HPARAMS))
    out = tmp_path / "tune"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["simulate", "--dataset", str(data), "--seeds", "1", "--insertion-period", "4", "--hparams",
                     str(hp), "--batch-size", "512", "--tune", "transfer", "--tune-grid", "kd_uniform.beta=1,2",
                     "--out", str(out)])
    assert code == 0, err.getvalue()
    rows = ROWS["target"]  # 240 target rows a period; the validation periods are 1..4, of which 1..3 are trained on
    expected = (f"the target domain 'target' has fewer training rows than one batch (training.batch_size 512) in "
                f"period(s) 1 ({rows} rows), 2 ({rows} rows), 3 ({rows} rows): every method trains one optimizer "
                f"step per epoch there, so the methods' AUCs can agree to 4 decimals. For several steps per period "
                f"pass a --batch-size below {rows} (or set training.batch_size in the --hparams file)")
    assert err.getvalue().count(f"warning: {expected}\n") == 1  # two candidates, one warning
    assert err.getvalue().count("warning:") == 1
    assert (out / "tuning.md").read_text().count(f"\nWarning: {expected}.\n") == 1
    assert json.loads((out / "tuning.json").read_text())["warnings"] == [expected]
