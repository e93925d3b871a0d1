"""KEY=VALUE items: split at the first '=', the value read as JSON, true/false in any case, else kept as text."""
import pytest

from diit_tf.keyvalue import parse_value, split_assignment


@pytest.mark.parametrize("item, expected", [
    ("tau=2", ("tau", "2")),
    (" tau = 2 ", ("tau", "2")),
    ("diit.beta2=0.5,1", ("diit.beta2", "0.5,1")),
    ("query=a=b", ("query", "a=b")),  # cut at the first '=' only
    ("tau=", ("tau", "")),            # an empty value is the caller's to judge
])
def test_split_assignment(item, expected):
    assert split_assignment(item, "--diit") == expected


@pytest.mark.parametrize("item", ["tau", "=2", " = 2"])
def test_split_assignment_names_the_option_and_the_form(item):
    with pytest.raises(ValueError) as info:
        split_assignment(item, "--option", "METHOD.KEY=VALUE")
    assert str(info.value) == f"--option expects METHOD.KEY=VALUE. Received: {item!r}"


@pytest.mark.parametrize("text, expected", [
    ("2", 2),
    ("0.5", 0.5),
    ("-1e-3", -0.001),
    ("true", True), ("True", True), ("TRUE", True),
    ("false", False), ("False", False),
    ("null", None),
    ("[32, 64]", [32, 64]),
    ('{"a": 1}', {"a": 1}),
    ('"7"', "7"),                  # a JSON string stays text
    ("confidence", "confidence"),  # not JSON: the text itself
    (" student ", "student"),
    ("", ""),
])
def test_parse_value(text, expected):
    value = parse_value(text)
    assert value == expected and type(value) is type(expected)
