"""`diit tune`: a 2-trial sweep completes, resumes, and its best hyperparameters are consumed by the trainer."""
import contextlib
import io
import json

import keras
import numpy as np
import pytest

from diit_tf import cli
from diit_tf.model import DIITModel, make_diit_dataset
from diit_tf.tuning.best_hparams import load_best_hparams

from tuning_fixtures import TINY_BACKBONE, build_tiny

pytestmark = pytest.mark.slow  # a tuning sweep


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return build_tiny(tmp_path_factory.mktemp("tune-data") / "syn")


@pytest.fixture(scope="module")
def sweep(data_dir, tmp_path_factory):
    """A finished 2-trial sweep: (directory, argv, exit code, stdout, stderr), whichever test asks first."""
    directory = tmp_path_factory.mktemp("sweep") / "tune"
    argv = ["tune", "--dataset", str(data_dir), "--directory", str(directory), "--algorithm", "random",
            "--max-trials", "2", "--train-period", "1", "--space", "gate_hidden=8|16,mapper_hidden=8", *TINY_BACKBONE]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return directory, argv, code, out.getvalue(), err.getvalue()


def _trials(directory):
    return sorted(json.loads(p.read_text())["status"] for p in (directory / "diit_tune").glob("trial_*/trial.json"))


@pytest.mark.slow
def test_two_trial_sweep_resume_and_trainer_consumes_best(sweep, data_dir, capsys):
    directory, argv, code, out, err = sweep
    assert code == 0
    # a progress line per trial, then the leaderboard
    assert err.count("completed: val_auc") == 2
    assert "rank" in out and "2 completed of 2 trial(s)" in out
    assert _trials(directory) == ["COMPLETED", "COMPLETED"]
    record = json.loads((directory / "best_hparams.json").read_text())
    assert record["objective"]["name"] == "val_auc"
    assert (record["objective"]["train_period"], record["objective"]["validation_period"]) == (1, 2)
    assert 0.0 < record["objective"]["value"] <= 1.0
    assert record["diit_config"]["mapper_hidden"] == [8]          # the fixed override reached the result
    assert record["diit_config"]["gate_hidden"] in (8, 16)

    # the rerun with the same directory continues: nothing left to do at 2, one more trial at 3
    assert cli.main(argv) == 0
    assert "resuming" in capsys.readouterr().err
    assert len(_trials(directory)) == 2
    more = list(argv)
    more[more.index("--max-trials") + 1] = "3"
    assert cli.main(more + ["--compare-seeds", "1"]) == 0
    assert _trials(directory) == ["COMPLETED"] * 3
    comparison = json.loads((directory / "best_hparams.json").read_text())["search"]["comparison"]
    for where in (comparison, comparison["held_out"]):      # validation period 2, held-out period 3
        assert set(where) >= {"default", "best", "base", "base_best_lr"}
        assert all(0 < where[k]["mean"] <= 1 for k in ("default", "best", "base", "base_best_lr"))
    assert comparison["held_out"]["periods"] == {"train": 2, "test": 3}
    assert "held out (train period 2, test period 3)" in capsys.readouterr().out

    # the trainer consumes best_hparams.json: a DIITModel built from it trains and its student predicts
    config, training = load_best_hparams(directory / "best_hparams.json")
    assert config.mapper_hidden == (8,)
    from diit_tf.backbones import build_backbone
    from diit_tf.data import load_period
    from diit_tf.tuning.context import mix_rows

    period = load_period(data_dir, 2)
    spec = period.spec
    opts = dict(hidden_units=(8, 4), embedding_dim=4)
    teachers = [build_backbone("dnn", spec, name=f"t{k}", **opts) for k in range(len(spec.sources))]
    model = DIITModel(teachers, build_backbone("dnn", spec, name="student", **opts), config)
    model.compile(optimizer=keras.optimizers.Adam(training["learning_rate"]),
                  discriminator_optimizer=keras.optimizers.Adam(training["discriminator_learning_rate"]))
    assert tuple(model.mapper.hidden_units) == (8,)
    target = period.domain(spec.target)
    mix = mix_rows(period, training["mix_ratio"], seed=0)
    history = model.fit(make_diit_dataset(target.features, target.labels, mix.features, batch_size=128),
                        epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(training["learning_rate"], rel=1e-6)


@pytest.mark.slow
def test_rerun_with_other_settings_is_refused(sweep, capsys):
    directory, argv, code, _, _ = sweep
    assert code == 0 and (directory / "tune_settings.json").exists()
    changed = [a if a != "random" else "bayesian" for a in argv]
    assert cli.main(changed) == 1
    err = capsys.readouterr().err
    assert "other settings" in err and "algorithm" in err


def test_bad_space_fails_before_training(data_dir, tmp_path, capsys):
    base = ["tune", "--dataset", str(data_dir), "--directory", str(tmp_path / "d"), "--max-trials", "1"]
    assert cli.main(base + ["--space", "taux=1:2"]) == 1
    assert "unknown hyperparameter 'taux'" in capsys.readouterr().err
    assert cli.main(base + ["--space", "beta2=3:3"]) == 1
    assert "'beta2': empty range" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_mix_rows_keeps_every_target_row(data_dir):
    from diit_tf.data import load_period
    from diit_tf.tuning.context import mix_rows

    period = load_period(data_dir, 1)
    half = mix_rows(period, 0.5, seed=3)
    target = period.spec.target
    assert (half.domains == target).sum() == (period.domains == target).sum()
    sources = (period.domains != target).sum()
    assert 0.35 * sources < (half.domains != target).sum() < 0.65 * sources
    assert mix_rows(period, 1.0) is period
    with pytest.raises(ValueError, match="mix_ratio"):
        mix_rows(period, 0.0)


def test_tune_takes_a_named_dataset_like_simulate(tmp_path, monkeypatch, capsys):
    from diit_tf.data import registry

    monkeypatch.setitem(registry.DATASETS, "tiny", registry.synthetic_dataset(
        "tiny", "test", periods=3, rows_target=400, rows_source=(600, 500), users=200, items=150))
    argv = ["tune", "--dataset", "tiny", "--data-root", str(tmp_path / "data"), "--directory", str(tmp_path / "t"),
            "--algorithm", "random", "--max-trials", "1", "--train-period", "1", *TINY_BACKBONE]
    assert cli.main(argv) == 0
    assert "dataset tiny: not built yet" in capsys.readouterr().err
    assert (tmp_path / "data" / "tiny" / "metadata.json").is_file() and (tmp_path / "t" / "best_hparams.json").is_file()
    assert cli.main(["tune", "--dataset", "synthetc", "--directory", str(tmp_path / "u")]) == 1
    assert "--dataset should be one of" in capsys.readouterr().err


def test_tune_refuses_a_file_as_directory_before_reading_data(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("kept")
    assert cli.main(["tune", "--dataset", str(tmp_path / "nowhere"), "--directory", str(afile)]) == 1
    err = capsys.readouterr().err
    assert f"--directory {str(afile)!r} is a file; give a directory" in err and "Errno" not in err
    assert len(err.splitlines()) == 1 and afile.read_text() == "kept"
