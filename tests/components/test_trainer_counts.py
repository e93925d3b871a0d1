"""The trainers' counts (`epochs`, `batch_size`, the DIIT trainer's `mix_batch_size`) checked when they run, not
only when the pipeline config is loaded: a custom_config that reaches a trainer directly (from the Tuner, a
hand-written pipeline) with a boolean, a zero, a negative, a fraction or a string is an error naming the key, before
any row is read or model built; an integral float (256.0) is its integer, as the trainers' `int()` took it."""
import pytest

from components import training
from components.diit_trainer import train_student

from transformed_fixtures import SPEC

REQUIRED = {"feature_spec": {}, "backbone": "dnn", "epochs": 1, "batch_size": 8, "learning_rate": 0.1}
BAD = (True, False, 0, -3, 2.5, "abc", "8")
NO_TEACHER = {"left_out": {"src_a": "-", "src_b": "-"}}  # train_student's checks come before it reads `data`


def test_checked_counts_takes_integers_and_integral_floats():
    """By hand: 2.0 -> 2, 256.0 -> 256 (ints, not floats); a null optional count stays null; other keys untouched."""
    config = {"epochs": 2.0, "batch_size": 256.0, "mix_batch_size": None, "shuffle_buffer": 1000, "seed": 3.0}
    checked = training.checked_counts(config, "student", "DIIT trainer", ("mix_batch_size", "shuffle_buffer",
                                                                          "steps_per_execution"))
    assert checked == {"epochs": 2, "batch_size": 256, "mix_batch_size": None, "shuffle_buffer": 1000, "seed": 3.0}
    assert [type(checked[k]) for k in ("epochs", "batch_size", "shuffle_buffer")] == [int, int, int]
    assert "steps_per_execution" not in checked  # an absent optional count is not added
    assert config["epochs"] == 2.0  # the caller's config is not changed


@pytest.mark.parametrize("bad", BAD + (None,))
def test_checked_counts_names_a_bad_required_count(bad):
    for key in ("epochs", "batch_size"):
        with pytest.raises(ValueError, match=rf"^source trainer: `source\.{key}` should be a positive integer\. "
                                             rf"Received: {bad!r}$"):
            training.checked_counts({**REQUIRED, key: bad}, "source", "source trainer")


# (key, "null or " when null is allowed): the source and joint trainers' counts, then the DIIT trainer's (its
# `gate_fit_rows`, with its own wording, and the Executor's `train_steps` / `eval_steps`: test_training.py)
SOURCE_COUNTS = (("epochs", ""), ("batch_size", ""), ("shuffle_buffer", "null or "),
                 ("steps_per_execution", "null or "))
STUDENT_COUNTS = SOURCE_COUNTS + (("mix_batch_size", "null or "),)


def source_and_joint_trainers() -> tuple:
    """`(module, where, custom_config)` of the source and joint trainers: every required key, a valid value each."""
    from components import joint_trainer, source_trainer

    return ((source_trainer, "source trainer", {**REQUIRED, "domain": "src_a"}),
            (joint_trainer, "joint trainer", REQUIRED))


@pytest.mark.parametrize("bad", BAD)
def test_each_trainer_refuses_a_bad_count_naming_it(bad):
    """The source and joint trainers (`run_fn`, through `training.trainer_input`) and the DIIT trainer
    (`train_student`, also what the Executor calls after the Tuner's values are merged) each name the key."""
    from tfx.components.trainer.fn_args_utils import FnArgs

    for module, where, config in source_and_joint_trainers():
        for key, null in SOURCE_COUNTS:
            with pytest.raises(ValueError, match=rf"^{where}: `source\.{key}` should be {null}a positive integer\. "
                                                 rf"Received: {bad!r}$"):
                module.run_fn(FnArgs(custom_config={**config, key: bad}))
    for key, null in STUDENT_COUNTS:
        with pytest.raises(ValueError, match=rf"^DIIT trainer: `student\.{key}` should be {null}a positive integer\. "
                                             rf"Received: {bad!r}$"):
            train_student(SPEC, {}, None, {**REQUIRED, "diit": {}, key: bad}, **NO_TEACHER)


def test_valid_counts_pass_the_checks():
    """Integers, integral floats and null optional counts get past the counts to the next check: the empty feature
    spec of the source and joint trainers; the DIIT trainer's `gate_fit_rows`, checked next (here deliberately bad)."""
    from tfx.components.trainer.fn_args_utils import FnArgs

    optional = {"shuffle_buffer": 4, "steps_per_execution": 2}
    for module, _, config in source_and_joint_trainers():
        for counts in ({"epochs": 2, "batch_size": 8, **optional}, {"epochs": 2.0, "batch_size": 8.0},
                       {"shuffle_buffer": None, "steps_per_execution": None}):
            with pytest.raises(TypeError, match="categorical"):
                module.run_fn(FnArgs(custom_config={**config, **counts}))
    for counts in ({"epochs": 2, "batch_size": 8, "mix_batch_size": 16, **optional},
                   {"epochs": 2.0, "batch_size": 8.0, "mix_batch_size": 16.0}, {"mix_batch_size": None}):
        with pytest.raises(ValueError, match=r"^DIIT trainer: `student\.gate_fit_rows`"):
            train_student(SPEC, {}, None, {**REQUIRED, "diit": {}, **counts, "gate_fit_rows": 0}, **NO_TEACHER)
