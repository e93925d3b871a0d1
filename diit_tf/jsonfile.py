"""Reading a JSON file that should hold one object, with errors that name the file and what it is for.

One reader for the settings files of every floor: the search-space file of `diit tune --space`, `best_hparams.json`,
`diit simulate --hparams` files, a dataset's `metadata.json` and the pipeline config.

Example:
    read_json_object("runs/tune/best_hparams.json", "hyperparameter file runs/tune/best_hparams.json")
    # FileNotFoundError "hyperparameter file runs/tune/best_hparams.json not found" when it is missing,
    # ValueError "... is not valid JSON: ..." or "... should hold a JSON object. Received: list" when it is bad
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional


def read_json_object(path, label: Optional[str] = None, missing: str = "not found") -> dict:
    """The JSON object in the file at `path`. Every error starts with `label` (default: the path); a missing file
    raises FileNotFoundError `"<label> <missing>"`, text that is not JSON or JSON that is not an object ValueError."""
    path = Path(path)
    label = str(path) if label is None else label
    if not path.is_file():
        raise FileNotFoundError(f"{label} {missing}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{label} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{label} should hold a JSON object. Received: {type(data).__name__}")
    return data
