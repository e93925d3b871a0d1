"""Units of the simulation: hyperparameter validation, optimizer reset, transfer datasets, metrics, summaries."""
import json
import re

import keras
import numpy as np
import pytest

from diit_tf.cli import main
from diit_tf.data import PeriodData
from diit_tf.simulation.hparams import Hparams
from diit_tf.simulation.methods import parse_methods
from diit_tf.simulation.protocol import SimulationResult, resolve_insertion_period, summarize
from diit_tf.simulation.report import paired, results_json, verdict
from diit_tf.simulation.training import _sliced, auc, logloss, reset_optimizers, transfer_dataset

from simulation_fixtures import tiny_spec


# ----------------------------------------------------------------------------------------------------- hparams
def test_hparams_defaults_and_overrides():
    hp = Hparams({"training": {"epochs": 2}, "methods": {"diit": {"learning_rate": 0.01,
                                                                  "diit_config": {"beta2": 1.5}}}})
    assert hp.epochs == 2 and hp.batch_size == 512 and hp.mix_batch_size == 512
    assert hp.learning_rate("diit_no_gate") == 0.01  # ablations share DIIT's
    assert hp.learning_rate("base") == 0.001
    assert hp.diit_config(use_gate=False).beta2 == 1.5


@pytest.mark.parametrize("data, field", [
    ({"trainig": {}}, "trainig"),
    ({"training": {"epochs": 0}}, "training.epochs"),
    ({"training": {"lr": 1}}, "lr"),
    ({"methods": {"dann": {"gamma": 1}}}, "gamma"),
    ({"methods": {"diit": {"diit_config": {"beta9": 1}}}}, "beta9"),
    ({"insertion_period": 0}, "insertion_period"),
])
def test_hparams_errors_name_the_field(data, field):
    with pytest.raises(ValueError, match=field):
        Hparams(data, where="hp.json")


@pytest.mark.parametrize("key, value", [
    ("epochs", True), ("epochs", 1.5), ("batch_size", True), ("batch_size", -8), ("batch_size", "512"),
    ("mix_batch_size", True), ("mix_batch_size", 0), ("insertion_period", True), ("insertion_period", 2.5),
])
def test_hparams_counts_refuse_a_boolean_and_a_non_integer_naming_the_key(key, value):
    """JSON true was taken for 1 (an epoch, a batch of one row, the first period); 1.5 reached the trainers."""
    data = {key: value} if key == "insertion_period" else {"training": {key: value}}
    name = key if key == "insertion_period" else f"training.{key}"
    null = "null or " if key in ("mix_batch_size", "insertion_period") else ""
    with pytest.raises(ValueError) as info:
        Hparams(data, where="hp.json")
    assert str(info.value) == f"hp.json: `{name}` should be {null}a positive integer. Received: {value!r}"


def test_hparams_take_an_integral_float_count_as_its_integer():
    hp = Hparams({"training": {"epochs": 2.0, "batch_size": 256.0, "mix_batch_size": 64.0}, "insertion_period": 3.0})
    assert (hp.epochs, hp.batch_size, hp.mix_batch_size, hp.insertion_period) == (2, 256, 64, 3)
    assert all(type(v) is int for v in (hp.epochs, hp.batch_size, hp.mix_batch_size, hp.insertion_period))
    assert hp.data["training"]["batch_size"] == 256 and Hparams({}).insertion_period is None
    for where, data in (("training.learning_rate", {"training": {"learning_rate": True}}),
                        ("methods.diit.learning_rate", {"methods": {"diit": {"learning_rate": True}}})):
        with pytest.raises(ValueError, match=rf"^hp\.json: `{where}` should be > 0\. Received: True$"):
            Hparams(data, where="hp.json")  # True was a learning rate of 1


def test_hparams_load_reports_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        Hparams.load(path)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        Hparams.load(tmp_path / "missing.json")


def test_parse_methods():
    assert parse_methods("diit,joint")[0] == "base"
    assert parse_methods("all")[:2] == ["base", "diit"]
    with pytest.raises(ValueError, match="diit_nope"):
        parse_methods("diit,diit_nope")


def test_insertion_period():
    assert resolve_insertion_period([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) == 4
    assert resolve_insertion_period([1, 2]) == 1
    with pytest.raises(ValueError, match="insertion-period"):
        resolve_insertion_period([1, 2, 3], 3)


# ---------------------------------------------------------------------------------------------------- training
def test_reset_optimizers_zeroes_slots_but_keeps_the_learning_rate():
    v = keras.Variable(np.ones(3, "float32"))
    opt = keras.optimizers.Adam(0.05)
    opt.build([v])
    opt.apply_gradients([(np.ones(3, "float32"), v)])
    holder = type("Holder", (), {})()
    holder.optimizer = opt
    assert int(opt.iterations) == 1
    assert reset_optimizers(holder) == 3  # iterations, momentum, velocity
    assert int(opt.iterations) == 0
    assert all(np.all(np.asarray(x) == 0) for x in opt.variables if "learning_rate" not in x.path)
    assert float(opt.learning_rate) == pytest.approx(0.05)


def test_reset_optimizers_again_after_more_steps_and_for_a_new_optimizer():
    v = keras.Variable(np.ones(2, "float32"))
    holder = type("Holder", (), {})()
    for lr in (0.1, 0.2):  # the second optimizer has other slot variables: the cached reset must follow
        holder.optimizer = keras.optimizers.Adam(lr)
        holder.optimizer.build([v])
        for _ in range(2):
            holder.optimizer.apply_gradients([(np.full(2, 3.0, "float32"), v)])
            assert int(holder.optimizer.iterations) > 0
            reset_optimizers(holder)
            assert all(np.all(np.asarray(x) == 0) for x in holder.optimizer.variables if "learning_rate" not in x.path)
        assert float(holder.optimizer.learning_rate) == pytest.approx(lr)


def test_sliced_makes_the_same_batches_as_row_slicing():
    parts = ({"a": np.arange(7)}, np.arange(7.0) * 10)
    batches = [(x["a"].tolist(), y.tolist()) for x, y in _sliced(parts, 3).as_numpy_iterator()]
    assert batches == [([0, 1, 2], [0, 10, 20]), ([3, 4, 5], [30, 40, 50]), ([6], [60])]
    assert [x["a"].tolist() for x, _ in _sliced(parts, 3, drop_remainder=True).as_numpy_iterator()] == [
        [0, 1, 2], [3, 4, 5]]
    even = _sliced(({"a": np.arange(6)}, np.zeros(6)), 3)
    assert even.element_spec[1].shape.as_list() == [None]  # like .batch(): no retrace when a period divides evenly
    assert len(list(even)) == 2


def _cycling_period(n):
    """`n` rows of period 1 whose domains cycle target, source_a, source_b; user_id = row number, label = row % 2."""
    spec = tiny_spec()
    domains = np.array(spec.domains)[np.arange(n) % 3]
    feats = {"user_id": np.arange(n, dtype=np.int64), "item_id": np.zeros(n, np.int64),
             "domain_code": (np.arange(n) % 3).astype(np.float32), "period_code": np.ones(n, np.float32)}
    return PeriodData(feats, (np.arange(n) % 2).astype(np.float32), domains, 1, spec)


def test_transfer_dataset_labelled_part_is_exactly_the_target_rows():
    n = 90
    period = _cycling_period(n)
    target = period.domain("target")
    ds = transfer_dataset(target, period, batch_size=8, seed=0, mix_batch_size=16, mix_labels=True, epochs=2)
    users, mix_users, mix_domains, steps = [], [], set(), 0
    for (x_t, y_t), (x_m, y_m, d_m) in ds:
        users += list(np.asarray(x_t["user_id"]))
        mix_users += list(np.asarray(x_m["user_id"]))
        assert x_m["user_id"].shape[0] == 16
        mix_domains |= set(np.asarray(d_m))
        steps += 1
    assert steps == 2 * 4  # 30 target rows in batches of 8, twice
    first, second = users[:30], users[30:]
    assert sorted(first) == sorted(second) == list(range(0, n, 3))  # every target row once per pass, nothing else
    assert first != second  # a fresh order each pass
    assert mix_domains == {0, 1, 2}
    assert len(mix_users) == 8 * 16 and len(set(mix_users)) == n  # cycles through every mix row before repeating


def test_transfer_dataset_annotates_exactly_the_rows_it_batches():
    n = 60
    period = _cycling_period(n)
    seen = []

    def annotate(features):
        seen.append(len(features["user_id"]))
        return {"double": 2.0 * features["user_id"], "pair": np.stack([features["user_id"]] * 2, axis=1)}

    ds = transfer_dataset(period.domain("target"), period, batch_size=8, seed=0, mix_batch_size=16, epochs=3,
                          annotate=annotate)
    plain = transfer_dataset(period.domain("target"), period, batch_size=8, seed=0, mix_batch_size=16, epochs=3)
    for ((x_t, _), x_m), ((p_t, _), p_m) in zip(ds, plain):
        for x in (x_t, x_m):
            np.testing.assert_array_equal(x["double"], 2.0 * x["user_id"].numpy())
            np.testing.assert_array_equal(x["pair"][:, 1], x["user_id"])
        np.testing.assert_array_equal(x_t["user_id"], p_t["user_id"])  # the same batches as without annotations
        np.testing.assert_array_equal(x_m["user_id"], p_m["user_id"])
    # the target rows once (not once per epoch), then the distinct mix rows drawn (3 passes x 3 steps x 16 rows)
    assert seen == [20, 60]


def test_metrics_match_sklearn():
    from sklearn.metrics import log_loss, roc_auc_score

    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.3).astype(float)
    z = rng.normal(size=200) + y
    assert auc(y, z) == pytest.approx(roc_auc_score(y, z))
    assert logloss(y, z) == pytest.approx(log_loss(y, 1 / (1 + np.exp(-z))), rel=1e-6)
    assert np.isnan(auc(np.ones(5), np.arange(5)))


# ----------------------------------------------------------------------------------------------------- summary
def _result(aucs):
    """aucs: {method: {seed: {period: auc}}}"""
    records = [{"seed": s, "method": m, "period": p, "auc": a, "logloss": 0.5, "infer_seconds": 0.1}
               for m, by_seed in aucs.items() for s, by_p in by_seed.items() for p, a in by_p.items()]
    secs = [{"seed": 0, "method": m, "period": 1, "seconds": 2.0 if m == "diit" else 1.0} for m in aucs]
    return SimulationResult("d", "dnn", "t", [0, 1], list(aucs), [1, 2, 3], 1, records, secs, [], {"training": {
        "epochs": 1, "batch_size": 4}}, {})


def test_summary_lift_is_the_mean_relative_gain_over_seeds_and_periods():
    result = _result({"base": {0: {2: 0.70, 3: 0.60}, 1: {2: 0.80, 3: 0.50}},
                      "diit": {0: {2: 0.77, 3: 0.60}, 1: {2: 0.80, 3: 0.55}}})
    s = summarize(result)
    assert s["diit"]["rel_auc_lift_vs_base"] == pytest.approx((0.1 + 0.0 + 0.0 + 0.1) / 4)
    assert s["diit"]["per_seed_auc"] == pytest.approx([0.685, 0.675])
    assert s["diit"]["auc_std"] == pytest.approx(np.std([0.685, 0.675], ddof=1))
    assert s["diit"]["train_seconds_per_period"] == 2.0
    shaped = results_json(result, s)
    assert shaped["periods_evaluated"] == [2, 3]
    assert "logloss_std" not in shaped["methods"]["diit"]
    lines = verdict(s)
    assert "larger than its spread" in lines[0]


def test_paired_comparison_counts_seeds_and_takes_the_spread_of_the_differences():
    a = {"per_seed_auc": [0.70, 0.60, 0.66]}
    b = {"per_seed_auc": [0.68, 0.61, 0.63]}  # differences 0.02, -0.01, 0.03: mean 0.0133, sd 0.0208
    assert paired(a, b) == "; per seed ahead in 2 of 3, diff +0.0133 ± 0.0208"
    assert paired(b, a) == "; per seed ahead in 1 of 3, diff -0.0133 ± 0.0208"
    assert paired(a, {"per_seed_auc": [0.7]}) == ""  # not the same seeds
    assert paired(a, {}) == ""
    summary = {"diit": {"auc_mean": np.mean(a["per_seed_auc"]), "auc_std": 0.05, "rel_auc_lift_vs_base": 0.01, "rel_auc_lift_std": 0.0,
                        **a},
               "kd": {"auc_mean": np.mean(b["per_seed_auc"]), "auc_std": 0.04, **b}}
    assert verdict(summary)[1] == ("DIIT is ahead of, but within the seed spread of, kd: 0.6533 vs 0.6400 (diff "
                                   "+0.0133, combined seed spread 0.0640; per seed ahead in 2 of 3, diff +0.0133 "
                                   "± 0.0208).")


def test_simulate_rejects_a_bad_dataset(tmp_path, capsys):
    assert main(["simulate", "--dataset", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 1
    assert "--dataset" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["simulate", "--dataset", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 1
    assert "metadata.json" in capsys.readouterr().err


def test_simulate_names_an_unknown_method_in_one_line_before_reading_the_dataset(tmp_path, capsys):
    """A typo in --methods is one line naming --methods, the name, every method --methods accepts and the
    `method:option=value` form; it comes before the dataset is read (`nowhere` would be a --dataset error)."""
    from diit_tf.simulation.catalog import NAMED

    def error(methods):
        assert main(["simulate", "--dataset", str(tmp_path / "nowhere"), "--methods", methods,
                     "--out", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.endswith("\n")  # one line, no traceback
        return err

    err = error("diit,bogus")
    assert err.startswith("diit simulate: error: --methods: unknown method(s) ['bogus']; known methods: base, diit, ")
    assert set(NAMED) <= set(re.findall(r"[a-z0-9_]+", err))
    assert "method:option=value" in err and "e.g. diit:gate_loss=confidence" in err
    err = error("bogus:beta=1")  # an unknown base of the option form
    assert err.startswith("diit simulate: error: --methods: unknown method 'bogus' in 'bogus:beta=1'; known methods: ")
    assert "method:option=value" in err
    err = error("base:beta=1")  # options on a method that takes none
    assert "--methods 'base:beta=1': options after ':' are for DIIT methods (diit, diit_paper, " in err
    assert "and the fixed-weighting KD methods (kd_uniform, kd_static, " in err
    assert error("kd_static:gate_input=embeddings").startswith(  # a KD method takes its own few options only
        "diit simulate: error: --methods 'kd_static:gate_input=embeddings': kd_static takes beta, temperature, "
        "target_kd after ':'. Received 'gate_input'")
    assert "`target_kd` should be a number >= 0. Received: -1" in error("kd_uniform:target_kd=-1")
    assert "`temperature` should be a number > 0. Received: 0" in error("kd_uniform:temperature=0")
    # a bad DIIT option or value names the --methods item (a value of the wrong type was a TypeError traceback)
    err = error("diit:gate_los=confidence")
    assert "error: --methods 'diit:gate_los=confidence': Unknown DIIT option(s) ['gate_los']; known options: " in err
    assert error("diit:tau=abc").startswith("diit simulate: error: --methods 'diit:tau=abc': ")
    # a DIIT option's value of the wrong type is one sentence naming the option (a string compared with 0 was
    # "'>=' not supported between instances of 'str' and 'int'"; a switch took 3)
    assert error("diit:target_kd=abc") == ("diit simulate: error: --methods 'diit:target_kd=abc': `target_kd` should "
                                           "be a number. Received: 'abc'\n")
    assert error("diit:use_gate=3") == ("diit simulate: error: --methods 'diit:use_gate=3': `use_gate` should be a "
                                        "bool. Received: 3\n")
    assert error("diit_paper:route_by_origin=1") == ("diit simulate: error: --methods 'diit_paper:route_by_origin=1': "
                                                     "`route_by_origin` should be a bool. Received: 1\n")
    assert not (tmp_path / "o").exists()


def test_simulate_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--hparams" in text and "diit_single_source" in text


def test_hparams_accept_a_diit_tune_record(tmp_path):
    path = tmp_path / "best_hparams.json"
    path.write_text(json.dumps({"diit_config": {"beta2": 2.0, "tau": 3.0}, "objective": {"name": "val_auc",
                                "value": 0.7}, "training": {"learning_rate": 0.002, "mix_ratio": 0.5,
                                                            "discriminator_learning_rate": 0.004}}))
    hp = Hparams.load(path)
    assert hp.diit_config().beta2 == 2.0 and hp.diit_config().tau == 3.0
    assert hp.learning_rate("diit") == 0.002 and hp.learning_rate("base") == 0.001
    assert hp.diit_option("mix_ratio", 1.0) == 0.5 and hp.diit_option("discriminator_learning_rate", 0) == 0.004


def test_bundled_presets_load_by_name():
    from diit_tf.simulation.hparams import presets

    assert "synthetic" in presets()
    hp = Hparams.load("synthetic")
    assert hp.insertion_period is not None and "validation" in hp.data["selected_on"]


@pytest.mark.slow
def test_train_share_trains_on_a_fixed_share_and_evaluates_on_every_row(tmp_path):
    from diit_tf.simulation.context import PeriodStore, SeedContext

    from simulation_fixtures import ROWS, write_tiny_dataset

    store = PeriodStore(write_tiny_dataset(tmp_path / "data", periods=2), train_share=0.5)
    total = sum(ROWS.values())
    assert len(store.get(1)) == total  # evaluation reads every row
    part = store.train_rows(1)
    assert 0.4 * total < len(part) < 0.6 * total and store.train_rows(1) is part
    assert set(zip(part.features["user_id"], part.labels)) <= set(zip(store.get(1).features["user_id"],
                                                                       store.get(1).labels))
    ctx = SeedContext(store, "dnn", Hparams({"backbone": {"hidden_units": [4], "embedding_dim": 2}}), 3, 1)
    assert ctx.rows(1, "base") is part and ctx.access == [("base", 1)]  # the same rows for every seed and method
    full = PeriodStore(tmp_path / "data")
    assert full.train_rows(2) is full.get(2)
    with pytest.raises(ValueError, match="train_share"):
        PeriodStore(tmp_path / "data", train_share=1.5)


def test_simulate_keeps_an_earlier_runs_results_unless_overwrite(tmp_path, capsys):
    """--out holding a run's results.json (or best_hparams.json) is refused before any data is read; --overwrite
    lets the run go on (to the --dataset error here); a file as --out is refused."""
    out = tmp_path / "o"
    out.mkdir()
    (out / "results.json").write_text('{"old": 1}')
    argv = ["simulate", "--dataset", str(tmp_path / "nowhere"), "--out", str(out)]
    assert main(argv) == 1
    assert f"--out {str(out)!r} already holds a run's results.json; pass --overwrite" in capsys.readouterr().err
    assert (out / "results.json").read_text() == '{"old": 1}'
    assert main(argv + ["--overwrite"]) == 1
    assert "--dataset" in capsys.readouterr().err
    afile = out / "results.json"
    assert main(["simulate", "--dataset", str(tmp_path / "nowhere"), "--out", str(afile)]) == 1
    assert capsys.readouterr().err == f"diit simulate: error: --out {str(afile)!r} is a file; give a directory\n"
    # a path under a file was taken and failed only when the report was written, after the whole run
    assert main(["simulate", "--dataset", str(tmp_path / "nowhere"), "--out", str(afile / "sub")]) == 1
    assert capsys.readouterr().err == (f"diit simulate: error: --out {str(afile / 'sub')!r} lies under "
                                       f"{str(afile)!r}, a file; give a directory\n")


@pytest.mark.parametrize("flag, value, message", [
    ("--seed-list", ",", "argument --seed-list: expected one or more comma-separated seeds in [0, 2**32), got ','"),
    ("--seed-list", "-1", "argument --seed-list: expected one or more comma-separated seeds in [0, 2**32), got '-1'"),
    ("--seed-list", "a,b", "argument --seed-list: expected comma-separated integers, got 'a,b'"),
    ("--learning-rate", "inf", "argument --learning-rate: expected a positive number, got 'inf'"),
])
def test_simulate_refuses_bad_seeds_and_rates_naming_the_flag(tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--dataset", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), flag, value])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_simulate_refuses_empty_methods_and_an_empty_grid_step(tmp_path, capsys):
    from diit_tf.simulation.validation import parse_grid

    assert main(["simulate", "--dataset", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                 "--methods", " , "]) == 1
    assert "--methods is empty (' , '): give comma-separated methods, or 'all'" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"--tune-grid 'diit.beta2=' has no values; expected method.option=v1,v2"):
        parse_grid("diit.tau=1,2;diit.beta2=")


@pytest.mark.parametrize("extra, message", [
    ([], "--tune-grid sets the grid of --tune transfer and is ignored without it; pass --tune transfer, or leave "
         "--tune-grid out"),
    (["--tune", "budget"], "--tune-grid sets the grid of --tune transfer and is not used by --tune budget; leave it out"),
])
def test_simulate_refuses_a_tune_grid_without_tune_transfer(tmp_path, capsys, extra, message):
    """Refused in one line before the dataset is read (the missing --dataset would fail otherwise)."""
    assert main(["simulate", "--dataset", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                 "--tune-grid", "diit.beta2=1,2", *extra]) == 1
    err = capsys.readouterr().err
    assert message in err and "--dataset" not in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("grid", ["", "   ", " ; "])
def test_simulate_refuses_an_empty_tune_grid_in_one_line_naming_the_flag(tmp_path, capsys, grid):
    """An empty --tune-grid tuned the default grid as if it were not given; now refused before the dataset is
    read (the missing --dataset would fail otherwise)."""
    assert main(["simulate", "--dataset", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                 "--tune", "transfer", "--tune-grid", grid]) == 1
    assert capsys.readouterr().err == (
        f"diit simulate: error: --tune-grid is empty ({grid!r}): give method.option=v1,v2 steps separated by ';', "
        f"e.g. 'diit.beta2=0.5,1,2', or leave --tune-grid out for the default grid\n")


def test_simulate_refuses_a_malformed_tune_grid_before_reading_the_dataset(tmp_path, capsys):
    assert main(["simulate", "--dataset", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                 "--tune", "transfer", "--tune-grid", "diit.beta2="]) == 1
    assert capsys.readouterr().err == ("diit simulate: error: --tune-grid 'diit.beta2=' has no values; expected "
                                       "method.option=v1,v2\n")


def test_simulate_refuses_a_file_as_source_cache_before_reading_data(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("kept")
    for cache, message in ((afile, f"--source-cache {str(afile)!r} is a file; give a directory"),
                           (afile / "sub", f"--source-cache {str(afile / 'sub')!r} lies under {str(afile)!r}, a file")):
        assert main(["simulate", "--dataset", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                     "--source-cache", str(cache)]) == 1
        err = capsys.readouterr().err
        assert message in err and "Errno" not in err and len(err.splitlines()) == 1
    assert afile.read_text() == "kept"
