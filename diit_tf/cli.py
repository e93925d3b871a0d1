"""The `diit` command. Each subcommand lives in `diit_tf/commands/<name>.py` and defines
`register(subparsers)`, which adds its parser and sets `func`; they are discovered here."""
from __future__ import annotations

import argparse
import os
import importlib
import pkgutil
import sys

from diit_tf import commands
from diit_tf.quiet import quiet_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diit",
        description="DIIT (Domain-Invariant Information Transfer) for cross-domain CTR: data, simulation, "
        "pipeline, serving and tuning.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv=None) -> int:
    quiet_logging()  # before any command module imports TensorFlow
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, KeyError, RuntimeError) as err:
        # One clear line for users; DIIT_DEBUG=1 shows the traceback.
        if os.environ.get("DIIT_DEBUG"):
            raise
        print(f"diit {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
