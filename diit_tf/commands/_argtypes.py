"""argparse `type=` helpers shared by the subcommands (the leading underscore keeps the CLI from listing it)."""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """A whole number >= 1, or an argparse error quoting what was given."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value
