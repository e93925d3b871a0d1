"""The `--space` mini-language: text, JSON text and a JSON file read to the same form; bad text names the problem."""
import json

import pytest

from diit_tf.tuning.overrides import number, read_overrides

TEXT = "tau=0.5:8:log, gate_hidden=32|64, alpha=0.3, beta2=0.1:5"
FORM = {"tau": {"min": 0.5, "max": 8, "sampling": "log"}, "gate_hidden": {"values": [32, 64]}, "alpha": 0.3,
        "beta2": {"min": 0.1, "max": 5}}


def test_text_json_and_file_read_alike(tmp_path):
    assert read_overrides(TEXT) == FORM
    assert read_overrides(json.dumps(FORM)) == FORM
    path = tmp_path / "space.json"
    path.write_text(json.dumps(FORM))
    assert read_overrides(str(path)) == FORM
    assert read_overrides(FORM) is FORM
    assert read_overrides(None) == {} and read_overrides("") == {}


@pytest.mark.parametrize("text, words", [
    ("tau", ["'tau'", "name=lo:hi"]),
    ("=3", ["no hyperparameter name"]),
    ("tau=1,tau=2", ["'tau'", "twice"]),
    ("tau=", ["'tau'", "empty override"]),
    ("tau=1:2:3:4", ["'tau'", "lo:hi"]),
    ("tau=abc", ["'tau'", "'abc' is not a number"]),
    ("{bad json", ["not valid JSON"]),
    ("[1, 2]", ["name=range text"]),
])
def test_bad_text_names_the_problem(text, words):
    with pytest.raises(ValueError) as info:
        read_overrides(text if not text.startswith("[") else json.loads(text))
    for word in words:
        assert word in str(info.value)


def test_missing_file_and_numbers(tmp_path):
    with pytest.raises(FileNotFoundError, match="search-space file"):
        read_overrides(str(tmp_path / "nope.json"))
    assert (number("x", "3"), number("x", "0.5"), number("x", 2.0)) == (3, 0.5, 2.0)
    assert isinstance(number("x", "3"), int)
    with pytest.raises(ValueError, match="expected a number"):
        number("x", True)
