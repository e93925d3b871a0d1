"""The distribution installs one top-level package, `diit_tf`; the project folders go under `diit_tf/_project/`.

`pipeline/`, `components/` and `serving/` stay at the repository's top (the TFX CLI runs `pipeline/diit.py` from
there), but an installed wheel holds them as `diit_tf/_project/{pipeline,components,serving}`, so they claim no
generic top-level name in site-packages; `diit_tf.cli.use_project_packages` puts their directory on `sys.path`.
"""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomli

from diit_tf import cli

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"components", "pipeline", "serving"}


def _setuptools_config():
    return tomli.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _package_dirs(top: str) -> set:
    return {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / top).rglob("__init__.py")}


def test_the_package_list_covers_the_tree():
    config = _setuptools_config()
    listed = set(config["packages"])
    library = _package_dirs("diit_tf")
    project = {f"diit_tf._project.{name}" for name in PROJECT}
    assert listed == library | project, "pyproject.toml's packages differ from the package folders of the tree"
    assert {p.split(".")[0] for p in listed} == {"diit_tf"}  # one top-level name
    for package, folder in config["package-dir"].items():
        assert package in project and (ROOT / folder / "__init__.py").is_file()
        assert not _package_dirs(folder) - {folder}, f"{folder}/ has subpackages: list them in pyproject.toml"


def test_project_root_in_a_checkout_and_in_an_installed_wheel(tmp_path, monkeypatch):
    assert cli.project_root() == ROOT
    installed = tmp_path / "site-packages" / "diit_tf"
    for name in PROJECT:
        (installed / "_project" / name).mkdir(parents=True)
        (installed / "_project" / name / "__init__.py").write_text("")
    monkeypatch.setattr(cli, "__file__", str(installed / "cli.py"))
    assert cli.project_root() == installed / "_project"
    shutil.rmtree(installed / "_project" / "serving")
    with pytest.raises(FileNotFoundError, match="serving"):
        cli.project_root()


PROBE = r"""
import json, sys
from diit_tf import cli
root = cli.use_project_packages()
import components, pipeline.configs, serving.server
print(json.dumps({"diit_tf": sys.modules["diit_tf"].__file__, "root": str(root),
                  "modules": {m.__name__: m.__file__ for m in (components, pipeline.configs, serving.server)}}))
"""


@pytest.mark.slow
def test_the_wheel_has_one_top_level_package_and_its_cli_finds_the_project(tmp_path):
    """Builds the wheel from a copy of the tree (pip fetches the build backend from the package index)."""
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("diit_tf", *PROJECT):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(src)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("diit_tf-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"diit_tf", wheel.name.split("-py")[0] + ".dist-info"}
    for name in PROJECT:
        assert f"diit_tf/_project/{name}/__init__.py" in names
    assert "diit_tf/_project/pipeline/config.json" in names
    assert "diit_tf/_project/serving/configs/models.config" in names

    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                                str(wheel)], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-2000:]
    assert not any((target / name).exists() for name in PROJECT)
    env = {**os.environ, "PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["diit_tf"].startswith(str(target))
    assert got["root"] == str(target / "diit_tf" / "_project")
    for module, path in got["modules"].items():
        assert path.startswith(got["root"]), (module, path)
