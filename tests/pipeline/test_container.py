"""The container image the compiled Kubeflow V2 / Vertex pipeline runs. No Docker engine runs here, so the build
itself is untested; what is checked: the Dockerfile installs exactly requirements.txt (and this repository without
dependencies), copies every package pyproject.toml installs, uses the Python TFX 1.16 needs, and every entry point
the compiled pipeline JSON names (the task command module, the component executors, run_fn, preprocessing_fn,
tuner_fn) and the `diit` script exist in an environment with those pins (this one)."""
import importlib
import json
import os
import re
import shlex

import pytest

from pipeline import diit

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _instructions():
    """(instruction, argument) pairs of the Dockerfile, continuation lines joined, comments dropped."""
    text = open(os.path.join(REPO, "Dockerfile")).read()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [tuple(line.strip().split(None, 1)) for line in joined.splitlines() if line.strip()]


def test_the_image_installs_exactly_the_pins_and_this_repository():
    steps = _instructions()
    bases = [argument for kind, argument in steps if kind == "FROM"]
    assert re.match(r"python:3\.10(\.\d+)?-", bases[-1])  # the final stage: the Python TFX 1.16 needs
    beam = re.search(r"apache-beam==([\d.]+)", open(os.path.join(REPO, "requirements.txt")).read()).group(1)
    assert bases[0] == f"apache/beam_python3.10_sdk:{beam} AS beam"  # the SDK harness of the pinned Beam
    installs = []
    for kind, argument in steps:
        if kind == "RUN":
            for command in argument.split("&&"):
                words = shlex.split(command)
                if words[:4] == ["python", "-m", "pip", "install"]:
                    installs.append(words[4:])
    assert installs == [["--upgrade", "pip"], ["-r", "requirements.txt"], ["--no-deps", "."]]
    copies = {argument.split()[-2]: argument.split()[-1] for kind, argument in steps if kind == "COPY"}
    assert copies["requirements.txt"] == "./"
    # every package pyproject.toml installs is in the image, and the files the build reads
    pyproject = open(os.path.join(REPO, "pyproject.toml")).read()
    listed = re.search(r"packages = \[([^\]]*)\]", pyproject).group(1)
    mapped = dict(re.findall(r'^"([\w.]+)" = "([\w/]+)"$', pyproject, re.M))  # [tool.setuptools.package-dir]
    packages = {mapped.get(p, p.split(".")[0]).split("/")[0]
                for p in (p.strip().strip('"') for p in listed.split(",")) if p}
    assert packages == {"diit_tf", "components", "pipeline", "serving"}
    for package in sorted(packages):
        assert package in copies, f"the Dockerfile does not copy package {package!r}"
    assert {"pyproject.toml", "README.md"} <= set(" ".join(a for k, a in steps if k == "COPY").split())
    # nothing the build needs is excluded by .dockerignore
    ignored = open(os.path.join(REPO, ".dockerignore")).read().split()
    assert not set(ignored) & (packages | {"requirements.txt", "pyproject.toml", "README.md"})


def test_requirements_pin_every_package_exactly():
    lines = [line.strip() for line in open(os.path.join(REPO, "requirements.txt")) if line.strip()
             and not line.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[A-Za-z0-9_.+\-]+", line) for line in lines), \
        [line for line in lines if "==" not in line]
    names = {line.split("==")[0].lower() for line in lines}
    assert {"tfx", "tensorflow", "keras", "kfp"} <= names


@pytest.fixture(scope="module")
def compiled(tiny_dataset, tmp_path_factory, make_config):
    from tfx import v1 as tfx

    from diit_tf.data import load_spec
    from pipeline.schema import write_schema

    root = tmp_path_factory.mktemp("container")
    config = make_config(root, tiny_dataset, tuner={"enabled": True, "tuner_fn": "diit_tf.tuning.tfx.tuner_fn"})
    schema = write_schema(load_spec(config.path("data_dir")), str(root / "schema.pbtxt"))
    cloud = config.with_overrides({"pipeline_root": "gs://bucket/diit/root", "schema_path": schema})
    out = root / "diit_kfp.json"
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image="gcr.io/project/diit:1"),
        output_filename=str(out))
    runner.run(diit.pipeline_from_config(cloud, metadata=False))
    return json.loads(out.read_text())


def _importable(dotted: str) -> bool:
    module, _, attribute = dotted.rpartition(".")
    try:
        return hasattr(importlib.import_module(module), attribute)
    except ImportError:
        return False


def test_every_entry_point_of_the_compiled_pipeline_exists(compiled):
    executors = compiled["pipelineSpec"]["deploymentSpec"]["executors"]
    commands, dotted = set(), set()
    for executor in executors.values():
        container = executor.get("container")
        if not container:  # resolvers and importers run in the orchestrator, not in the image
            continue
        assert container["image"] == "gcr.io/project/diit:1"
        commands.add(tuple(container["command"]))
        for argument in container.get("args", []):
            dotted.update(re.findall(r"\b(?:components|diit_tf|tfx)\.[A-Za-z0-9_.]+\.[A-Za-z_][A-Za-z0-9_]*", argument))
    for command in commands:
        assert command[:2] == ("python", "-m")
        assert importlib.util.find_spec(command[2]) is not None, command
    text = json.dumps(compiled)
    for expected in ("components.diit_trainer.Executor", "components.source_trainer.run_fn",
                     "components.transform_module.preprocessing_fn", "diit_tf.tuning.tfx.tuner_fn"):
        assert expected in text, expected
        assert _importable(expected), expected
    missing = sorted(d for d in dotted if d.startswith(("components.", "diit_tf.")) and not _importable(d))
    assert not missing


def test_the_diit_script_exists():
    pyproject = open(os.path.join(REPO, "pyproject.toml")).read()
    target = re.search(r'^diit = "([^"]+)"', pyproject, re.M).group(1)
    module, function = target.split(":")
    assert callable(getattr(importlib.import_module(module), function))
