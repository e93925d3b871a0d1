"""The benchmarks of sources of unequal relevance are named datasets of `diit simulate --dataset`: each name builds
once under the data root through its `diit data` command."""
import json

import pytest

from diit_tf import cli
from diit_tf.simulation.datasets import NAMED, resolve_dataset

BENCHMARKS = {
    "movielens-1m-age7": ["data", "movielens-1m", "--domains", "age7"],
    "synthetic-unequal-sources": ["data", "synthetic", "--benchmark", "unequal-sources"],
    "synthetic-regional-experts": ["data", "synthetic", "--benchmark", "regional-experts"],
}


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_names_build_through_their_data_command(name, tmp_path, monkeypatch):
    calls = []

    def fake_main(argv):
        calls.append(argv)
        out = tmp_path / "root" / name
        out.mkdir(parents=True)
        (out / "metadata.json").write_text(json.dumps({"feature_spec": {}}))
        return 0

    monkeypatch.setattr(cli, "main", fake_main)
    assert resolve_dataset(name, tmp_path / "root") == tmp_path / "root" / name
    assert calls == [BENCHMARKS[name] + ["--out", str(tmp_path / "root" / name)]]
    assert resolve_dataset(name, tmp_path / "root") == tmp_path / "root" / name and len(calls) == 1  # reused


@pytest.mark.parametrize("name", sorted(NAMED))
def test_every_named_command_is_a_valid_data_command(name):
    args = cli.build_parser().parse_args(["data", *NAMED[name], "--out", "x"])
    assert args.out == "x" and args.func is not None
