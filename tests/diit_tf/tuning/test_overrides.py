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


def test_overwrite_discards_the_old_sweeps_best_hparams(tmp_path):
    """--overwrite starts a new sweep: the discarded sweep's best_hparams.json and simulate_hparams.json go with it
    (they stayed beside the new settings, and a new sweep that completed no trial left them as its result)."""
    from diit_tf.tuning.run import SETTINGS_FILE, SIMULATE_HPARAMS_FILE, SWEEP_KEYS, check_settings
    from diit_tf.tuning.best_hparams import BEST_HPARAMS_FILE

    settings = {key: f"new {key}" for key in SWEEP_KEYS}
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({key: f"old {key}" for key in SWEEP_KEYS}))
    for name in (BEST_HPARAMS_FILE, SIMULATE_HPARAMS_FILE):
        (tmp_path / name).write_text("{}")
    with pytest.raises(ValueError, match="holds a sweep with other settings"):
        check_settings(tmp_path, settings, overwrite=False)
    assert (tmp_path / BEST_HPARAMS_FILE).exists()  # refused: nothing touched
    assert check_settings(tmp_path, settings, overwrite=True) is False
    assert not (tmp_path / BEST_HPARAMS_FILE).exists() and not (tmp_path / SIMULATE_HPARAMS_FILE).exists()
    assert json.loads((tmp_path / SETTINGS_FILE).read_text()) == settings
