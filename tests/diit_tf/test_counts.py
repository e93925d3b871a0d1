"""diit_tf/counts.py: the one "is this setting a count" predicate of the pipeline config, the trainers and
DIITConfig, and the one "is this setting a number" predicate, free of TensorFlow so that pipeline/configs.py loads
without it."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diit_tf.counts import as_count, is_count, is_number, positive_count

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value, minimum, expected", [
    (3, 1, True), (1, 1, True), (0, 1, False), (-1, 1, False), (0, 0, True), (-1, 0, False),
    (True, 1, False), (False, 0, False),  # JSON true / false are Python's True / False, ints to isinstance
    (2.0, 1, False), ("3", 1, False), (None, 1, False), (None, 0, False),
])
def test_is_count_by_hand(value, minimum, expected):
    assert is_count(value, minimum) is expected


def test_the_pipeline_config_the_trainers_and_diitconfig_ask_the_one_predicate():
    import diit_tf.config
    from components import training
    from pipeline import configs

    from diit_tf.simulation import hparams
    from diit_tf.tuning import context

    assert configs.is_count is diit_tf.config.is_count is is_count
    # the trainers, the simulation's hyperparameters and the tuning settings read a count through positive_count,
    # which asks as_count (is_count after taking an integral float as its integer); the trainers' own twin
    # (components.training.positive_int) is folded into it
    from components import diit_trainer

    assert training.positive_count is diit_trainer.positive_count is positive_count
    assert hparams.positive_count is context.positive_count is positive_count
    assert not hasattr(training, "positive_int")
    assert not hasattr(configs, "_is_count")
    # and each still reads as before: true is no count, 0 is one for gate_fit_epochs (>= 0) and not for the rest
    with pytest.raises(ValueError, match=r"`gate_fit_epochs` should be an integer >= 0\. Received: True$"):
        diit_tf.config.DIITConfig(gate_fit_epochs=True)
    assert diit_tf.config.DIITConfig(gate_fit_epochs=0).gate_fit_epochs == 0
    with pytest.raises(ValueError, match=r"`student\.shuffle_buffer` should be null or a positive integer\. "
                                         r"Received: 0$"):
        configs.PipelineConfig({"student": {"shuffle_buffer": 0}}, source="x.json")
    with pytest.raises(ValueError, match=r"^w: `k` should be null or a positive integer\. Received: True$"):
        positive_count(True, "k", "w", null=True)


def test_positive_count_takes_a_default_for_null_and_says_what_the_count_is_for():
    assert positive_count(None, "k", "w", null=True) is None
    assert positive_count(None, "k", "w", null=True, default=7) == 7
    assert positive_count(3.0, "k", "w", null=True, default=7) == 3
    with pytest.raises(ValueError) as info:  # null where it may not be
        positive_count(None, "k", "w", default=7)
    assert str(info.value) == "w: `k` should be a positive integer. Received: None"
    with pytest.raises(ValueError) as info:
        positive_count(0, "student.gate_fit_rows", "DIIT trainer", null=True, default=7, what=" (rows in memory)")
    assert str(info.value) == ("DIIT trainer: `student.gate_fit_rows` should be null or a positive integer (rows in "
                               "memory). Received: 0")


@pytest.mark.parametrize("value, minimum, expected", [
    (3, 1, 3), (256.0, 1, 256), (0.0, 0, 0), (0, 1, None), (-2.0, 1, None), (2.5, 1, None), (float("inf"), 1, None),
    (float("nan"), 1, None), (True, 1, None), (False, 0, None), ("3", 1, None), (None, 1, None),
])
def test_as_count_by_hand(value, minimum, expected):
    counted = as_count(value, minimum)
    assert counted == expected and type(counted) is type(expected)  # 256.0 comes back as the int 256


@pytest.mark.parametrize("value, expected", [
    (0, True), (-2, True), (0.5, True), (float("inf"), True), (np.float32(1.5), True), (np.int64(3), True),
    (True, False), (False, False), ("1", False), ("abc", False), (None, False), ([1], False),
])
def test_is_number_by_hand(value, expected):
    assert is_number(value) is expected


def test_diitconfig_the_kd_options_and_the_pipeline_config_ask_the_one_number_predicate():
    import diit_tf.config
    from diit_tf.baselines import kd
    from pipeline import configs

    assert diit_tf.config.is_number is kd.is_number is configs.is_number is is_number
    assert not hasattr(configs, "_is_number")
    assert kd.kd_option_problem("beta", "abc") == "`beta` should be a number >= 0. Received: 'abc'"
    with pytest.raises(ValueError, match=r"`evaluator\.regression_tolerance` should be >= 0\. Received: True$"):
        configs.PipelineConfig({"evaluator": {"regression_tolerance": True}}, source="x.json")


@pytest.mark.slow  # starts a Python subprocess
def test_the_pipeline_config_loads_without_tensorflow():
    code = ("import sys, pipeline.configs, diit_tf.config, diit_tf.counts; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "[]", out.stderr
