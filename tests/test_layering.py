"""The import graph follows the layering, read from the source (AST) without importing anything.

Floors, each importing only its own floor and the ones below:

    features -> data -> core -> simulation / baselines / tuning -> components / pipeline -> serving -> CLI

`features` is the FeatureSpec the data layout is written with; on the ground floor with it, `jsonfile` (reading a
settings file's JSON object), `keyvalue` (KEY=VALUE items) and `counts` (whether a setting is a count); the core is
layers, backbones, losses, config, model, ctr, export, warmup, distribute and parameter_servers; the CLI is `diit_tf/cli.py` and `diit_tf/commands/`,
and nothing imports it.
Serving needs a SavedModel and TF Serving's protos only: it imports none of `diit_tf`, `components`, `pipeline`.
Every import counts, also one inside a function or under `if TYPE_CHECKING:`.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("diit_tf", "components", "pipeline", "serving")

# Module prefix -> floor; the longest matching prefix wins. `diit_tf` itself (its docstring and version) is on the
# ground floor, but it is not a prefix: a new module under diit_tf/ needs a floor of its own.
FLOORS = {
    "diit_tf": 0,
    "diit_tf.quiet": 0,
    "diit_tf.features": 0,
    "diit_tf.jsonfile": 0,
    "diit_tf.keyvalue": 0,
    "diit_tf.counts": 0,
    "diit_tf.data": 1,
    "diit_tf.layers": 2,
    "diit_tf.backbones": 2,
    "diit_tf.losses": 2,
    "diit_tf.config": 2,
    "diit_tf.model": 2,
    "diit_tf.ctr": 2,
    "diit_tf.export": 2,
    "diit_tf.warmup": 2,
    "diit_tf.distribute": 2,
    "diit_tf.parameter_servers": 2,
    "diit_tf.simulation": 3,
    "diit_tf.baselines": 3,
    "diit_tf.tuning": 3,
    "components": 4,
    "pipeline": 4,
    "serving": 5,
    "diit_tf.cli": 6,
    "diit_tf.commands": 6,
}
# Serving may import from these prefixes only (besides third-party packages).
SERVING_MAY_IMPORT = ("serving",)


NOT_A_PREFIX = ("diit_tf",)


def floor_of(module: str, floors=FLOORS):
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in floors and (n == len(parts) or prefix not in NOT_A_PREFIX):
            return floors[prefix]
    return None


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path, packages) -> list:
    """(line, imported module) for every import of one of `packages` in the file at `path`."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # `from pkg import sub` may import the submodule pkg.sub: count the deeper name when it is a module
            names = [f"{base}.{alias.name}" if _is_module(root, f"{base}.{alias.name}") else base
                     for alias in node.names]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.split(".")[0] in packages]
    return found


def _is_module(root: Path, dotted: str) -> bool:
    path = root.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def violations(root: Path, packages=PACKAGES, floors=FLOORS, serving_may_import=SERVING_MAY_IMPORT) -> list:
    """Every import that goes up a floor, leaves serving's allowed set, or touches a module without a floor."""
    problems = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            module = module_name(path, root)
            here = floor_of(module, floors)
            if here is None:
                problems.append(f"{module}: no floor assigned (add it to FLOORS)")
                continue
            for line, target in imports_of(path, root, packages):
                there = floor_of(target, floors)
                where = f"{path.relative_to(root)}:{line}"
                if there is None:
                    problems.append(f"{where}: {module} imports {target}, which has no floor")
                elif there > here:
                    problems.append(f"{where}: {module} (floor {here}) imports {target} (floor {there})")
                elif module.split(".")[0] == "serving" and not target.startswith(serving_may_import):
                    problems.append(f"{where}: serving imports {target}; it needs a SavedModel and TF Serving only")
    return problems


def test_the_tree_has_no_back_edge():
    assert violations(ROOT) == []


def test_every_package_module_is_seen():
    """The walk covers the tree (a typo in PACKAGES would make the check above vacuous)."""
    modules = {module_name(p, ROOT) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    for expected in ("diit_tf.model", "diit_tf.export", "diit_tf.data.registry", "diit_tf.cli",
                     "components.diit_trainer", "pipeline.diit", "serving.client"):
        assert expected in modules
    # and it does see real edges: the model imports the losses, the CLI imports the commands
    assert any(t == "diit_tf.losses" for _, t in imports_of(ROOT / "diit_tf" / "model.py", ROOT, PACKAGES))
    assert any(t == "diit_tf.commands" for _, t in imports_of(ROOT / "diit_tf" / "cli.py", ROOT, PACKAGES))


def _write(root: Path, files: dict) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


FAKE = {
    "diit_tf/__init__.py": "",
    "diit_tf/losses.py": "import math\n",
    "diit_tf/cli.py": "from diit_tf import losses\n",
    "diit_tf/simulation/__init__.py": "",
    "diit_tf/simulation/protocol.py": "from ..losses import *\n",
    "serving/__init__.py": "",
    "serving/codec.py": "import numpy\n",
    "serving/server.py": "from serving import codec\n",
}


def test_a_clean_fake_tree_passes(tmp_path):
    _write(tmp_path, FAKE)
    assert violations(tmp_path) == []


@pytest.mark.parametrize("module, source, expected", [
    ("diit_tf/losses.py", "def f():\n    from diit_tf.simulation import protocol\n",
     "diit_tf.losses (floor 2) imports diit_tf.simulation.protocol (floor 3)"),
    ("diit_tf/simulation/protocol.py", "from .. import cli\n",
     "diit_tf.simulation.protocol (floor 3) imports diit_tf.cli (floor 6)"),
    ("diit_tf/losses.py", "import serving.server\n", "diit_tf.losses (floor 2) imports serving.server (floor 5)"),
    ("serving/server.py", "from diit_tf.losses import x\n", "serving imports diit_tf.losses"),
    ("diit_tf/stray.py", "", "diit_tf.stray: no floor assigned"),
])
def test_a_deliberate_back_edge_fails(tmp_path, module, source, expected):
    _write(tmp_path, FAKE)
    _write(tmp_path, {module: source})
    problems = violations(tmp_path)
    assert len(problems) == 1 and expected in problems[0], problems
