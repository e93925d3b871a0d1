"""The KEY=VALUE items of the command line: `diit simulate --diit gate_loss=confidence`, `--option diit.tau=2`,
`--tune-grid diit.beta2=0.5,1` and the `diit:gate_from_kd=false+...` method variants.

`split_assignment` cuts one item at its first '=', `parse_value` reads the value: JSON when it is JSON (numbers,
true/false, null, lists, objects), true/false in any case (Python's True/False), else the text itself.

Example:
    split_assignment(" tau = 2 ", "--diit", "KEY=VALUE")  # ("tau", "2")
    parse_value("2"), parse_value("0.5"), parse_value("False"), parse_value("confidence")
    # 2, 0.5, False, "confidence"
"""
from __future__ import annotations

import json


def split_assignment(item: str, what: str, form: str = "KEY=VALUE") -> tuple:
    """`"key=value"` -> `("key", "value")`, both stripped, cut at the first '='. ValueError naming `what` (the option
    or text the item came from) and the expected `form` when there is no '=' or nothing before it."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"{what} expects {form}. Received: {item!r}")
    return key.strip(), value.strip()


def parse_value(text: str):
    """The value of a KEY=VALUE item: JSON if it reads as JSON, True/False for true/false in any case, else `text`."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
