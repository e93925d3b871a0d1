"""The `diit` command. Each subcommand lives in `diit_tf/commands/<name>.py` and defines
`register(subparsers)`, which adds its parser and sets `func`; they are discovered here.

The TFX pipeline, its components and the local serving stack are the project folders `pipeline/`, `components/`
and `serving/`. They are not top-level packages of site-packages: a checkout has them at the repository root, an
installed wheel under `diit_tf/_project/` (see pyproject.toml). `main` puts that directory on `sys.path` first.
"""
from __future__ import annotations

import argparse
import os
import importlib
import pkgutil
import sys
from pathlib import Path

from diit_tf import commands
from diit_tf.quiet import quiet_logging


PROJECT_PACKAGES = ("pipeline", "components", "serving")


def project_root() -> Path:
    """The directory holding the project packages: the repository root of a checkout (also an editable install),
    else `diit_tf/_project` of an installed wheel."""
    package = Path(__file__).resolve().parent
    for root in (package.parent, package / "_project"):
        if all((root / name / "__init__.py").is_file() for name in PROJECT_PACKAGES):
            return root
    raise FileNotFoundError(f"none of {package.parent} and {package / '_project'} holds the project packages "
                            f"{list(PROJECT_PACKAGES)}; reinstall diit-tf")


def use_project_packages() -> Path:
    """Make `import pipeline`, `components` and `serving` find this project's folders (first on sys.path)."""
    root = str(project_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    return Path(root)


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
    use_project_packages()
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
