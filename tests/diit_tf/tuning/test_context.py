"""diit_tf/tuning/context.py: the tuning settings' counts (`positive_count`, over `diit_tf.counts.as_count`), checked
before any data is read."""
import pytest

from diit_tf.counts import positive_count
from diit_tf.tuning.context import prepare_context


@pytest.mark.parametrize("value", [True, False, 0, -3, 2.5, "8", [8]])
def test_positive_count_refuses_naming_the_setting(value):
    with pytest.raises(ValueError) as info:
        positive_count(value, "batch_size", "Tuner custom_config")
    assert str(info.value) == f"Tuner custom_config: `batch_size` should be a positive integer. Received: {value!r}"
    with pytest.raises(ValueError) as info:
        positive_count(value, "epochs", null=True)
    assert str(info.value) == f"`epochs` should be null or a positive integer. Received: {value!r}"


def test_positive_count_takes_an_integral_float_as_its_integer():
    assert positive_count(256.0, "batch_size") == 256 and type(positive_count(256.0, "batch_size")) is int
    assert positive_count(3, "epochs") == 3
    assert positive_count(None, "mix_batch_size", null=True) is None
    with pytest.raises(ValueError, match=r"^`mix_batch_size` should be a positive integer\. Received: None$"):
        positive_count(None, "mix_batch_size")


@pytest.mark.parametrize("name, value", [("epochs", True), ("batch_size", 0), ("batch_size", 64.5)])
def test_prepare_context_names_a_bad_count_before_reading_the_data(tmp_path, name, value):
    with pytest.raises(ValueError) as info:  # `nowhere` would be a missing-dataset error
        prepare_context(tmp_path / "nowhere", **{name: value})
    assert str(info.value) == f"`{name}` should be a positive integer. Received: {value!r}"
