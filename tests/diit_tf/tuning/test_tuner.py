"""The tuner factory: every algorithm declares the full space without building a model or reading data."""
import pytest

from diit_tf.tuning.hypermodel import DIITHyperModel
from diit_tf.tuning.space import HYPERPARAMETER_NAMES
from diit_tf.tuning.tuner import ALGORITHMS, make_tuner


def _no_data():
    raise AssertionError("the context (teachers, data) was prepared although no trial ran")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_space_is_declared_lazily(algorithm, tmp_path):
    hypermodel = DIITHyperModel(_no_data, space="alpha=0.25,gate_hidden=16|32")
    tuner = make_tuner(algorithm, hypermodel, tmp_path, max_trials=4)
    space = tuner.oracle.get_space()
    assert sorted(hp.name for hp in space.space) == sorted(HYPERPARAMETER_NAMES)
    alpha = next(hp for hp in space.space if hp.name == "alpha")
    assert space.get("alpha") == 0.25 and type(alpha).__name__ == "Fixed"
    assert tuner.oracle.objective.name == "val_auc" and tuner.oracle.objective.direction == "max"
    assert tuner.oracle.max_trials == 4
    assert hypermodel._context is None


def test_bad_arguments_are_clear(tmp_path):
    hypermodel = DIITHyperModel(_no_data)
    with pytest.raises(ValueError, match="algorithm"):
        make_tuner("grid", hypermodel, tmp_path)
    with pytest.raises(ValueError, match="max_trials"):
        make_tuner("random", hypermodel, tmp_path, max_trials=0)
    with pytest.raises(ValueError, match="epochs"):
        DIITHyperModel(_no_data, epochs=0)
    for name, value, null in (("epochs", True, ""), ("batch_size", 0, ""), ("batch_size", 8.5, ""),
                              ("mix_batch_size", True, "null or "), ("mix_batch_size", 0, "null or ")):
        with pytest.raises(ValueError) as info:  # True was taken for 1; mix_batch_size 0 for "as batch_size"
            DIITHyperModel(_no_data, **{name: value})
        assert str(info.value) == f"`{name}` should be {null}a positive integer. Received: {value!r}"
    counted = DIITHyperModel(_no_data, epochs=2.0, batch_size=256.0)  # a JSON writer's 256.0 is 256, as the trainers
    assert (counted.epochs, counted.batch_size, counted.mix_batch_size) == (2, 256, 256)
    assert type(counted.batch_size) is int and DIITHyperModel(_no_data, mix_batch_size=64.0).mix_batch_size == 64
    with pytest.raises(ValueError, match="unknown hyperparameter 'beta3'"):
        DIITHyperModel(_no_data, space="beta3=1:2")
