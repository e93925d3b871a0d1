"""argparse `type=` helpers shared by the subcommands (the leading underscore keeps the CLI from listing it)."""
from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """A whole number >= 1, or an argparse error quoting what was given."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a learning rate, a share, seconds), or an argparse error quoting what was given."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def add_dataset_arguments(parser, default=None, override: str = "") -> None:
    """`--dataset NAME|DIR` and `--data-root DIR`, the same on every command that reads a dataset. With `override`
    (e.g. "the config's data_dir"), both are optional and unset means that."""
    from diit_tf.data.registry import DEFAULT_DATA_ROOT, describe

    parser.add_argument(
        "--dataset", default=default, required=default is None and not override, metavar="NAME|DIR",
        help=f"a named dataset, built once under --data-root and rebuilt when the code would build it differently "
             f"({describe()}), or a dataset directory in the span layout (`diit data ...`)"
             + (f"; default: {default}" if default else f"; default: {override}" if override else ""))
    parser.add_argument("--data-root", default=None if override else DEFAULT_DATA_ROOT, metavar="DIR",
                        help="where named datasets are cached (default: "
                             + (f"{override}'s data_root)" if override else f"{DEFAULT_DATA_ROOT}, from the current "
                                                                             f"directory)"))


def check_directory(flag: str, value) -> None:
    """A directory to write (or to create): refuse, naming `flag`, a path that is a file or lies under one."""
    from pathlib import Path

    path = Path(value)
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                where = "is a file" if part == path else f"lies under {str(part)!r}, a file"
                raise ValueError(f"{flag} {str(value)!r} {where}; give a directory")
            return


def hparams_flag(value: str) -> str:
    """`--hparams` of `diit demo` and `diit pipeline`: a file, taken from the current directory (a config FILE's
    `hparams` is taken from the repository root instead) and made absolute, else a bundled preset's name, kept.
    Neither: a ValueError naming the flag and the path tried."""
    from pathlib import Path

    from diit_tf.simulation.hparams import presets

    path = Path(value).expanduser()
    if path.is_file():
        return str(path.resolve())
    if value in presets():
        return value
    raise ValueError(f"--hparams {value!r}: no file {str(path.absolute())} (a relative path is taken from the current "
                     f"directory) and no bundled preset of that name ({', '.join(presets())})")
