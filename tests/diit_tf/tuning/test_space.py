"""The search space: defaults equal the library's, overrides parse and fail clearly, best_hparams.json round-trips."""
import json

import keras_tuner
import pytest

from diit_tf.config import DIITConfig
from diit_tf.tuning import space
from diit_tf.tuning.space import (
    HYPERPARAMETER_NAMES, load_best_hparams, parse_overrides, read_best_hparams, search_space, simulation_hparams,
    split_values)


def test_every_default_equals_the_library_default():
    hp = keras_tuner.HyperParameters()
    values = search_space(hp)
    assert set(values) == set(HYPERPARAMETER_NAMES)
    assert {"tau", "alpha", "beta1", "beta2", "grl_lambda", "learning_rate", "discriminator_learning_rate",
            "gate_hidden", "mapper_hidden", "mix_ratio"} == set(values)
    config, training = split_values(values)
    assert config == DIITConfig()
    assert training == {"learning_rate": 1e-3, "discriminator_learning_rate": 1e-3, "mix_ratio": 1.0}


def test_text_overrides_range_log_choice_fixed():
    dims = parse_overrides("tau=0.5:8:log, beta2=0.1:5, gate_hidden=32|64, alpha=0.3")
    assert (dims["tau"].min, dims["tau"].max, dims["tau"].sampling, dims["tau"].default) == (0.5, 8, "log", 2.0)
    assert (dims["beta2"].kind, dims["beta2"].sampling) == ("float", "log")  # keeps the base sampling
    assert dims["gate_hidden"].values == (32, 64) and dims["gate_hidden"].default == 64
    assert dims["alpha"].kind == "fixed" and dims["alpha"].default == 0.3
    hp = keras_tuner.HyperParameters()
    values = search_space(hp, dims)
    assert values["alpha"] == 0.3 and values["tau"] == 2.0
    # a default outside the new range moves to the nearest end
    assert parse_overrides("beta2=1:5")["beta2"].default == 1


def test_json_overrides_match_text():
    text = parse_overrides("tau=0.5:8:log,gate_hidden=32|64")
    as_json = parse_overrides(json.dumps({"tau": {"min": 0.5, "max": 8, "sampling": "log"},
                                          "gate_hidden": {"values": [32, 64]}}))
    assert text == as_json


@pytest.mark.parametrize("override, words", [
    ("taux=1:2", ["unknown hyperparameter 'taux'", "tau"]),
    ("tau=2:2", ["'tau'", "empty range"]),
    ("beta2=5:0.1", ["'beta2'", "empty range"]),
    ("gate_hidden=", ["'gate_hidden'", "empty override"]),
    ({"gate_hidden": {"values": []}}, ["'gate_hidden'", "empty choice"]),
    ("alpha=0:2", ["'alpha'", "[0, 1]"]),
    ("beta1=0:1:log", ["'beta1'", "log range needs min > 0"]),
    ("tau=0.5:8:cubic", ["'tau'", "sampling"]),
    ("tau=a:b", ["'tau'", "not a number"]),
    ("mix_ratio=0:1", ["'mix_ratio'", "(0, 1]"]),
    ("gate_hidden=16.5", ["'gate_hidden'", "integer"]),
])
def test_bad_override_is_a_clear_error(override, words):
    with pytest.raises(ValueError) as info:
        parse_overrides(override)
    for word in words:
        assert word in str(info.value)


def test_best_hparams_round_trip(tmp_path):
    values = dict(space.default_values(), tau=4.0, mapper_hidden=32, mix_ratio=0.5, learning_rate=3e-3)
    record = space.best_hparams_record(values, 0.71, 3, 4, "synthetic")
    path = space.write_best_hparams(tmp_path / "best_hparams.json", record)
    config, training = load_best_hparams(path)
    assert config == DIITConfig(tau=4.0, mapper_hidden=(32,))
    assert training == {"learning_rate": 3e-3, "discriminator_learning_rate": 1e-3, "mix_ratio": 0.5}
    doc = json.loads(path.read_text())
    assert doc["objective"] == {"name": "val_auc", "direction": "max", "value": 0.71, "train_period": 3,
                                "validation_period": 4}
    assert load_best_hparams(tmp_path) == (config, training)  # a directory holding the file


def test_reads_the_tfx_tuner_output(tmp_path):
    hp = keras_tuner.HyperParameters()
    search_space(hp)
    hp.values["beta2"] = 2.0
    hp.values["gate_hidden"] = 16
    (tmp_path / "best_hyperparameters.txt").write_text(json.dumps(hp.get_config()))
    config, training = load_best_hparams(tmp_path)
    assert (config.beta2, config.gate_hidden) == (2.0, 16)
    assert load_best_hparams(hp.get_config()) == (config, training)


def test_bad_best_hparams_name_the_field(tmp_path):
    path = tmp_path / "best_hparams.json"
    path.write_text(json.dumps({"diit_config": {"tau": 2.0, "bogus": 1}}))
    with pytest.raises(ValueError, match="bogus"):
        load_best_hparams(path)
    path.write_text(json.dumps({"diit_config": {}, "training": {"mix_ratio": 0}}))
    with pytest.raises(ValueError, match="training.mix_ratio"):
        load_best_hparams(path)
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        read_best_hparams({"values": {"tau": 2.0, "speed": 3}})
    with pytest.raises(FileNotFoundError):
        load_best_hparams(tmp_path / "missing.json")


def test_diit_simulate_reads_the_tuning_result(tmp_path):
    from diit_tf.simulation.hparams import Hparams

    values = dict(space.default_values(), beta2=1.5, learning_rate=2e-3, mix_ratio=0.4)
    record = space.best_hparams_record(values, 0.7, 3, 4, "x")
    hparams = Hparams(simulation_hparams(record, base={"training": {"epochs": 1, "batch_size": 256}}))
    assert hparams.diit_config() == DIITConfig(beta2=1.5)
    assert hparams.learning_rate("diit") == 2e-3
    assert hparams.learning_rate("base") == 1e-3
    assert hparams.method_options("diit")["mix_ratio"] == 0.4
    # and best_hparams.json itself, as `diit simulate --hparams best_hparams.json` loads it
    direct = Hparams.load(space.write_best_hparams(tmp_path / "best_hparams.json", record))
    assert direct.diit_config() == DIITConfig(beta2=1.5) and direct.learning_rate("diit") == 2e-3
