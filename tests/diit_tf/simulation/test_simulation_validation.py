"""Hyperparameter selection on validation periods: grid parsing, option routing, and a tiny budget search whose
scores come only from periods before the test insertion period, and a transfer search on a stub simulation that
records a value it already scored (not rerun), so tuning.json lists every value of every step, and says each
candidate's warning once."""
import json
from types import SimpleNamespace

import pytest

from diit_tf.simulation.context import PeriodStore
from diit_tf.simulation.hparams import Hparams
from diit_tf.simulation import validation
from diit_tf.simulation.validation import parse_grid, tune, with_option

from simulation_fixtures import TINY_HPARAMS, write_tiny_dataset


def test_parse_grid():
    assert parse_grid("diit.beta2=0.5,1;diit.symmetric_adversarial=True,False;kd_uniform.beta=2") == [
        ("diit", "beta2", [0.5, 1]), ("diit", "symmetric_adversarial", [True, False]), ("kd_uniform", "beta", [2])]
    with pytest.raises(ValueError, match="method.option"):
        parse_grid("beta2=1")


def test_with_option_routes_diit_config_and_training_options():
    hp = with_option(Hparams(), "diit", "beta2", 2.0)
    hp = with_option(hp, "diit", "mix_ratio", 0.5)
    hp = with_option(hp, "kd_uniform", "beta", 3.0)
    hp = with_option(hp, "training", "mix_batch_size", 1024)
    assert hp.mix_batch_size == 1024
    assert hp.diit_config().beta2 == 2.0
    assert hp.diit_option("mix_ratio", 1.0) == 0.5
    assert hp.method_options("kd_uniform") == {"beta": 3.0}
    with pytest.raises(ValueError, match="beta9"):
        with_option(hp, "diit", "beta9", 1.0)


@pytest.mark.slow  # runs the budget search
def test_budget_search_uses_only_validation_periods(tmp_path):
    store = PeriodStore(write_tiny_dataset(tmp_path / "data", periods=5))
    hp = Hparams(TINY_HPARAMS)
    best = tune(store, "budget", hp, "dnn", [0], p0=4, dataset_name="tiny", out_dir=tmp_path / "out",
                grid={"learning_rate": [0.001, 0.01], "epochs": [1]}, log=lambda line: None)
    assert store.periods == [1, 2, 3, 4]  # period 5 (the test evaluation) was never loaded for tuning
    assert 5 not in store._cache
    trials = json.loads((tmp_path / "out" / "tuning.json").read_text())["trials"]
    assert len(trials) == 2
    scores = {t["trial"]: t["methods"]["base"] for t in trials}
    winner = max(scores, key=scores.get)
    assert winner == f"learning_rate={best.data['training']['learning_rate']} epochs=1"
    saved = Hparams.load(tmp_path / "out" / "best_hparams.json")
    assert saved.insertion_period == 4 and "periods 3..4" in saved.data["selected_on"]


def test_transfer_search_records_the_values_it_does_not_rerun(tmp_path, monkeypatch):
    runs = []

    def fake_simulation(store, methods, hparams, **kwargs):
        cfg = hparams.diit_config()
        runs.append((cfg.beta2, cfg.gate_input))
        score = 0.70 + 0.01 * cfg.beta2 - (0.005 if cfg.gate_input == "embeddings" else 0.0)
        return SimpleNamespace(methods=list(methods), score=score, notes={})

    monkeypatch.setattr(validation, "run_simulation", fake_simulation)
    monkeypatch.setattr(validation, "summarize", lambda r: {m: {"auc_mean": r.score} for m in ["base", *r.methods]})
    store = SimpleNamespace(periods=[1, 2, 3, 4, 5, 6])
    grid = parse_grid("diit.beta2=1,2;diit.gate_input=representation,embeddings")
    best = tune(store, "transfer", Hparams(), "dnn", [100], 4, "tiny", tmp_path, grid=grid,
                           log=lambda line: None)

    assert runs == [(1, "representation"), (2, "representation"), (2, "embeddings")]  # (2, representation) once
    assert best.diit_config().beta2 == 2 and best.diit_config().gate_input == "representation"
    record = json.loads((tmp_path / "tuning.json").read_text())
    assert [t["trial"] for t in record["trials"]] == ["diit.beta2=1", "diit.beta2=2", "diit.gate_input=representation",
                                                      "diit.gate_input=embeddings"]
    assert record["trials"][2] == {"trial": "diit.gate_input=representation", "methods": {"diit": 0.72},
                                   "same_as": "diit.beta2=2"}
    assert record["chosen"] == "diit.beta2=2, diit.gate_input=representation"
    assert "warnings" not in record and "Warning" not in (tmp_path / "tuning.md").read_text()  # none was given


def test_a_bad_grid_value_is_refused_before_any_trial_naming_the_step(tmp_path, monkeypatch):
    runs = []
    monkeypatch.setattr(validation, "run_simulation", lambda *a, **k: runs.append(1))
    store = SimpleNamespace(periods=[1, 2, 3, 4, 5, 6])
    hparams = Hparams(where="preset.json")
    for text, message in [
        ("diit.beta2=1,2;kd_static.bta=1", r"^--tune-grid kd_static.bta=1: `methods.kd_static` has unknown option"),
        ("diit.beta2=1;diit.gate_input=foo", r"^--tune-grid diit.gate_input=foo: `gate_input` should be one of"),
    ]:
        with pytest.raises(ValueError, match=message):
            tune(store, "transfer", hparams, "dnn", [100], 4, "tiny", tmp_path, grid=parse_grid(text),
                 log=lambda line: None)
    assert runs == [] and not (tmp_path / "tuning.json").exists()



def test_a_candidates_warning_is_said_once_in_the_log_tuning_md_and_tuning_json(tmp_path, monkeypatch):
    """The candidates run silently: a warning of theirs (`few_target_rows`', here a stand-in naming the batch size)
    is logged when a candidate first gives it, never again for the candidates that repeat it."""
    def fake_simulation(store, methods, hparams, **kwargs):
        size = hparams.batch_size
        return SimpleNamespace(methods=list(methods), score=size / 10000,
                               notes={"few_target_rows": {"batch_size": size, "warning": f"few rows for {size}"}})

    monkeypatch.setattr(validation, "run_simulation", fake_simulation)
    monkeypatch.setattr(validation, "summarize", lambda r: {m: {"auc_mean": r.score} for m in ["base", *r.methods]})
    store = SimpleNamespace(periods=[1, 2, 3, 4, 5, 6])
    lines = []
    grid = parse_grid("training.batch_size=512,1024;kd_uniform.beta=1,2")
    tune(store, "transfer", Hparams(), "dnn", [100], 4, "tiny", tmp_path, grid=grid, log=lines.append)

    assert lines == [
        "warning: few rows for 512",
        "  tune transfer: training.batch_size=512: diit 0.0512",
        "warning: few rows for 1024",
        "  tune transfer: training.batch_size=1024: diit 0.1024",
        "  tune transfer: kd_uniform.beta=1: kd_uniform 0.1024",  # batch 1024 again: not said again
        "  tune transfer: kd_uniform.beta=2: kd_uniform 0.1024",
        f"tune transfer: training.batch_size=1024, kd_uniform.beta=1; wrote {tmp_path / 'best_hparams.json'}",
    ]
    assert (tmp_path / "tuning.md").read_text() == (
        "# Tuning (transfer) on tiny / dnn\n\n"
        "transfer: chosen on validation periods 3..4 (inserted at 2, test insertion 4), seeds [100], dnn: "
        "training.batch_size=1024, kd_uniform.beta=1\n\n"
        "Warning: few rows for 512.\n\n"
        "Warning: few rows for 1024.\n\n"
        "| trial | validation AUC |\n|---|---|\n"
        "| training.batch_size=512 | diit 0.0512 |\n"
        "| training.batch_size=1024 | diit 0.1024 |\n"
        "| kd_uniform.beta=1 | kd_uniform 0.1024 |\n"
        "| kd_uniform.beta=2 | kd_uniform 0.1024 |\n")
    record = json.loads((tmp_path / "tuning.json").read_text())
    assert record["warnings"] == ["few rows for 512", "few rows for 1024"]
