"""A 2-period simulation of every method on tiny data, through the `diit simulate` CLI, with every fit call and every
evaluation spied on: the protocol never trains on a period before it is evaluated on it, DIIT's labelled (CTR)
batches hold only target-domain rows, and the report has the documented shape."""
import json

import keras
import numpy as np
import pytest

from diit_tf.cli import main
from diit_tf.model import DIITModel
from diit_tf.simulation import catalog, methods
from diit_tf.simulation.training import CTRTrainer

from simulation_fixtures import DOMAINS, TINY_HPARAMS, write_tiny_dataset

pytestmark = pytest.mark.slow  # the module's simulation run

TARGET_CODE = float(DOMAINS.index("target"))


def _labelled_and_mix(model, data):
    """(labelled feature batches, mix feature batches) of what `fit` is given."""
    labelled, mix = [], []
    for element in data:
        if isinstance(element[0], tuple):  # ((x_t, y_t), x_m) or ((x_t, y_t), (x_m, y_m, d_m))
            (x_t, _), x_m = element
            labelled.append(x_t)
            mix.append(x_m[0] if isinstance(x_m, tuple) else x_m)
        else:
            labelled.append(element[0])
    return labelled, mix


def _codes(batches, name):
    return np.concatenate([np.asarray(b[name]) for b in batches]) if batches else np.array([])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tiny_dataset = write_tiny_dataset(tmp_path_factory.mktemp("tiny") / "data")
    out = tmp_path_factory.mktemp("sim")
    hp = out / "hp.json"
    hp.write_text(json.dumps(TINY_HPARAMS))
    log = []
    original_fit = keras.Model.fit

    def spy_fit(self, x=None, *args, **kwargs):
        labelled, mix = _labelled_and_mix(self, x)
        log.append({"kind": "fit", "model": self, "periods": set(_codes(labelled + mix, "period_code")),
                    "labelled_domains": set(_codes(labelled, "domain_code")),
                    "mix_domains": set(_codes(mix, "domain_code"))})
        return original_fit(self, x, *args, **kwargs)

    def spy_logits(original):
        def logits(self, data):
            log.append({"kind": "eval", "method": self.name, "periods": set(np.asarray(data.features["period_code"])),
                        "domains": set(np.asarray(data.features["domain_code"]))})
            return original(self, data)
        return logits

    mp = pytest.MonkeyPatch()
    mp.setattr(keras.Model, "fit", spy_fit)
    mp.setattr(methods.Method, "logits", spy_logits(methods.Method.logits))
    mp.setattr(methods.Joint, "logits", spy_logits(methods.Joint.logits))
    try:
        code = main(["simulate", "--dataset", str(tiny_dataset), "--seeds", "1", "--methods", "all",
                     "--insertion-period", "1", "--hparams", str(hp), "--out", str(out / "report"),
                     "--tensorboard", str(out / "tb")])
    finally:
        mp.undo()
    return {"code": code, "log": log, "out": out / "report", "tb": out / "tb"}


@pytest.mark.slow  # the module's simulation run (every method, tiny data)
def test_every_method_runs_and_is_evaluated_on_both_periods(run):
    assert run["code"] == 0
    evals = [e for e in run["log"] if e["kind"] == "eval"]
    for name in catalog.ALL_METHODS:
        periods = sorted(p for e in evals if e["method"] == name for p in e["periods"])
        assert periods == [2.0, 3.0], name


@pytest.mark.slow  # the module's simulation run (every method, tiny data)
def test_protocol_never_trains_on_a_period_before_evaluating_on_it(run):
    seen = set()  # periods any fit call has consumed so far
    evaluated = []
    for event in run["log"]:
        if event["kind"] == "fit":
            seen |= event["periods"]
        else:
            (q,) = event["periods"]
            assert all(p < q for p in seen), f"{event['method']} evaluated on period {q} after training on {seen}"
            assert event["domains"] == {TARGET_CODE}
            evaluated.append(q)
    # ...and the protocol does go on to train on each evaluated period except the last.
    assert 2.0 in seen and 3.0 not in seen
    assert evaluated


@pytest.mark.slow  # the module's simulation run (every method, tiny data)
def test_each_fit_call_sees_a_single_period(run):
    fits = [e for e in run["log"] if e["kind"] == "fit"]
    assert fits and all(len(e["periods"]) == 1 for e in fits)


@pytest.mark.slow  # the module's simulation run (every method, tiny data)
def test_diit_ctr_loss_sees_only_target_rows(run):
    diit_fits = [e for e in run["log"] if e["kind"] == "fit" and isinstance(e["model"], DIITModel)]
    # diit + 5 ablations/variants, 2 periods each
    assert len(diit_fits) == 2 * sum(name.startswith("diit") for name in catalog.ALL_METHODS)
    for event in diit_fits:
        assert event["labelled_domains"] == {TARGET_CODE}
        assert event["mix_domains"] - {TARGET_CODE}, "the mix batches should contain source rows"


@pytest.mark.slow  # the module's simulation run (every method, tiny data)
def test_target_models_train_on_target_rows_and_sources_on_their_own(run):
    plain = [e for e in run["log"] if e["kind"] == "fit" and isinstance(e["model"], CTRTrainer)]
    names = {e["model"].model.name for e in plain}
    assert {"source_0", "source_1", "target"} <= names
    for event in plain:
        name = event["model"].model.name
        if name == "source_0":
            assert event["labelled_domains"] == {1.0}
        elif name == "source_1":
            assert event["labelled_domains"] == {2.0}
        elif name in ("target", "ctnet"):
            assert event["labelled_domains"] == {TARGET_CODE}


@pytest.mark.slow  # the module's simulation run (every method, tiny data)
def test_results_json_has_the_documented_shape(run):
    results = json.loads((run["out"] / "results.json").read_text())
    assert set(results) == {"dataset", "backbone", "target_domain", "seeds", "methods", "periods_evaluated"}
    assert results["backbone"] == "dnn" and results["target_domain"] == "target" and results["seeds"] == [0]
    assert results["periods_evaluated"] == [2, 3]
    assert list(results["methods"]) == catalog.ALL_METHODS
    for name, r in results["methods"].items():
        assert set(r) == {"auc_mean", "auc_std", "logloss_mean", "rel_auc_lift_vs_base", "per_seed_auc",
                          "train_seconds_per_period"}, name
        assert 0.0 <= r["auc_mean"] <= 1.0 and len(r["per_seed_auc"]) == 1 and r["train_seconds_per_period"] > 0
    assert results["methods"]["base"]["rel_auc_lift_vs_base"] == 0.0


@pytest.mark.slow  # the module's simulation run (every method, tiny data)
def test_report_files_are_written(run):
    report = (run["out"] / "report.md").read_text()
    assert "| diit |" in report and "Verdict" in report
    png = (run["out"] / "auc_per_period.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    details = json.loads((run["out"] / "details.json").read_text())
    assert details["insertion_period"] == 1
    assert "diit_single_source" in details["notes"]
    gates = details["notes"]["training_diagnostics"]["diit"]["0"]["1"]
    assert gates["gate_w0"] + gates["gate_w1"] == pytest.approx(1.0, abs=1e-3)
    assert "Gate weights" in report


def test_tensorboard_logs_hold_named_scalars_per_method_and_period(run):
    from diit_tf.simulation.tensorboard import read_scalars

    runs = sorted(p.parent.name for p in run["tb"].glob("*/seed-0"))
    assert runs == sorted(catalog.ALL_METHODS)
    diit = read_scalars(run["tb"] / "diit" / "seed-0")
    for name in ("ce", "kl", "kd", "gate_bce"):  # the default form: logit spot and the supervised gate
        assert set(diit[f"loss/{name}"]) == {1, 2}, name  # trained on periods 1 and 2
    assert not {"loss/adv1", "loss/adv2", "loss/mse"} & set(diit)
    paper = read_scalars(run["tb"] / "diit_paper" / "seed-0")
    for name in ("ce", "adv1", "adv2", "mse", "kl", "kd"):
        assert set(paper[f"loss/{name}"]) == {1, 2}, name
    assert diit["gate/source_a"][1] + diit["gate/source_b"][1] == pytest.approx(1.0, abs=1e-3)
    results = json.loads((run["out"] / "details.json").read_text())
    by_period = {r["period"]: r["auc"] for r in results["records"] if r["method"] == "diit"}
    assert diit["target/auc"] == pytest.approx(by_period)  # evaluated on periods 2 and 3
    base = read_scalars(run["tb"] / "base" / "seed-0")
    assert set(base["loss/loss"]) == {1, 2} and set(base["target/auc"]) == {2, 3}
    single = read_scalars(run["tb"] / "diit_single_source" / "seed-0")
    assert [tag for tag in single if tag.startswith("gate/")] == [
        "gate/" + results["notes"]["diit_single_source"]["0"]["source"]]
