"""read_json_object: the object in a file, or an error that starts with the label and says what is wrong."""
import pytest

from diit_tf.jsonfile import read_json_object


def test_reads_the_object(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"tau": 2, "gate": {"hidden": [32, 64]}}')
    assert read_json_object(path) == {"tau": 2, "gate": {"hidden": [32, 64]}}
    assert read_json_object(str(path), "settings") == {"tau": 2, "gate": {"hidden": [32, 64]}}


def test_missing_file_names_the_label_and_the_hint(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError) as info:
        read_json_object(path)
    assert str(info.value) == f"{path} not found"
    with pytest.raises(FileNotFoundError) as info:
        read_json_object(path, "pipeline config 'nope.json'", missing="does not exist (pass --config)")
    assert str(info.value) == "pipeline config 'nope.json' does not exist (pass --config)"


@pytest.mark.parametrize("text, message", [
    ("{bad", "search-space file s.json is not valid JSON: Expecting property name enclosed in double quotes: "
             "line 1 column 2 (char 1)"),
    ("[1, 2]", "search-space file s.json should hold a JSON object. Received: list"),
    ("3", "search-space file s.json should hold a JSON object. Received: int"),
])
def test_bad_content_names_the_label(tmp_path, text, message):
    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        read_json_object(path, "search-space file s.json")
    assert str(info.value) == message
