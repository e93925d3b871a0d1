"""The search space: defaults equal the library's, overrides parse and fail clearly."""
import json

import keras_tuner
import pytest

from diit_tf.config import DIITConfig
from diit_tf.tuning.space import HYPERPARAMETER_NAMES, parse_overrides, search_space, split_values


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
