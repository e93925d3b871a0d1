"""The search-space override mini-language of `diit tune --space` (and the TFX Tuner's `custom_config["space"]`).

Comma-separated: `name=lo:hi[:log|:linear]` a range, `name=a|b|c` a choice, `name=v` a fixed value; or the same as a
JSON object (`{"tau": {"min": 0.5, "max": 8, "sampling": "log"}, "gate_hidden": {"values": [32, 64]}, "alpha":
0.3}`), or the path of a JSON file holding one. `read_overrides` turns any of these into that JSON form; which names
exist and which values they accept is the search space's business (`diit_tf.tuning.space.parse_overrides`).

Example:
    read_overrides("tau=0.5:8:log, gate_hidden=32|64, alpha=0.3")
    # {"tau": {"min": 0.5, "max": 8, "sampling": "log"}, "gate_hidden": {"values": [32, 64]}, "alpha": 0.3}
"""
from __future__ import annotations

import json
from typing import Mapping, Union

from diit_tf.jsonfile import read_json_object


def read_overrides(spec: Union[None, str, Mapping]) -> Mapping:
    """`--space` text, JSON text, a JSON file's path or a mapping -> {name: number | {"min", "max"[, "sampling"]} |
    {"values"}}. Raises ValueError (FileNotFoundError for a missing file) naming what is wrong."""
    if spec is None or spec == "":
        return {}
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("{"):
            try:
                spec = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f"search-space override is not valid JSON: {err}") from None
        elif text.endswith(".json") and "=" not in text:
            spec = read_json_object(text, f"search-space file {text}")
        else:
            spec = _parse_text(text)
    if not isinstance(spec, Mapping):
        raise ValueError(f"search-space override should be a JSON object or name=range text. Received: {spec!r}")
    return spec


def _parse_text(text: str) -> dict:
    out = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if "=" not in item:
            raise ValueError(f"search-space override {item!r} should read name=lo:hi[:log], name=a|b|c or name=v")
        name, _, value = (s.strip() for s in item.partition("="))
        if not name:
            raise ValueError(f"search-space override {item!r} has no hyperparameter name before '='")
        if name in out:
            raise ValueError(f"hyperparameter {name!r} is overridden twice in the search space")
        if value == "":
            raise ValueError(f"hyperparameter {name!r}: empty override (expected lo:hi, a|b|c or a value)")
        if "|" in value:
            out[name] = {"values": [number(name, v) for v in value.split("|")]}
        elif ":" in value:
            parts = value.split(":")
            if len(parts) not in (2, 3):
                raise ValueError(f"hyperparameter {name!r}: range {value!r} should be lo:hi or lo:hi:log")
            entry = {"min": number(name, parts[0]), "max": number(name, parts[1])}
            if len(parts) == 3:
                entry["sampling"] = parts[2].strip()
            out[name] = entry
        else:
            out[name] = number(name, value)
    return out


def number(name: str, text):
    """`text` (a number or its text) as an int or a float; ValueError naming hyperparameter `name` otherwise."""
    if isinstance(text, bool):
        raise ValueError(f"hyperparameter {name!r}: expected a number. Received: {text!r}")
    if isinstance(text, (int, float)):
        return text
    text = str(text).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"hyperparameter {name!r}: {text!r} is not a number") from None
