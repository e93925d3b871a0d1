"""best_hparams.json: written, read back (also the TFX Tuner's file), checked, and read by `diit simulate`."""
import json

import keras_tuner
import pytest

from diit_tf.config import DIITConfig
from diit_tf.tuning.best_hparams import (best_hparams_record, load_best_hparams, read_best_hparams,
                                         simulation_hparams, write_best_hparams)
from diit_tf.tuning.space import default_values, search_space


def test_best_hparams_round_trip(tmp_path):
    values = dict(default_values(), tau=4.0, mapper_hidden=32, mix_ratio=0.5, learning_rate=3e-3)
    record = best_hparams_record(values, 0.71, 3, 4, "synthetic")
    path = write_best_hparams(tmp_path / "best_hparams.json", record)
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

    values = dict(default_values(), beta2=1.5, learning_rate=2e-3, mix_ratio=0.4)
    record = best_hparams_record(values, 0.7, 3, 4, "x")
    hparams = Hparams(simulation_hparams(record, base={"training": {"epochs": 1, "batch_size": 256}}))
    assert hparams.diit_config() == DIITConfig(beta2=1.5)
    assert hparams.learning_rate("diit") == 2e-3
    assert hparams.learning_rate("base") == 1e-3
    assert hparams.method_options("diit")["mix_ratio"] == 0.4
    # and best_hparams.json itself, as `diit simulate --hparams best_hparams.json` loads it
    direct = Hparams.load(write_best_hparams(tmp_path / "best_hparams.json", record))
    assert direct.diit_config() == DIITConfig(beta2=1.5) and direct.learning_rate("diit") == 2e-3
