"""The benchmarks of sources of unequal relevance are named datasets (`diit_tf.data.registry`): each name builds the
same rows as its documented `diit data` command, once, under the data root, with its recipe recorded."""
import filecmp

import pytest

from diit_tf import cli
from diit_tf.data import movielens, read_metadata
from diit_tf.data.registry import DATASETS, resolve_dataset

pytestmark = pytest.mark.slow  # builds benchmark datasets

SYNTHETIC = {"synthetic-unequal-sources": "unequal-sources", "synthetic-regional-experts": "regional-experts",
             "synthetic-strong-regional-experts": "strong-regional-experts"}


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_a_synthetic_benchmark_name_builds_what_its_data_command_builds(name, tmp_path):
    built = resolve_dataset(name, tmp_path / "root")
    assert built == tmp_path / "root" / name
    by_hand = tmp_path / "by-hand"
    assert cli.main(["data", "synthetic", "--benchmark", SYNTHETIC[name], "--out", str(by_hand)]) == 0
    spans = sorted(p.name for p in by_hand.iterdir() if p.name.startswith("span-"))
    assert spans and spans == sorted(p.name for p in built.iterdir() if p.name.startswith("span-"))
    for span in spans:
        assert filecmp.cmp(by_hand / span / "data.csv", built / span / "data.csv", shallow=False), span
    meta = read_metadata(built)
    assert meta["recipe"]["benchmark"] == SYNTHETIC[name] and meta["ground_truth"] == read_metadata(by_hand)[
        "ground_truth"]
    stamp = (built / "metadata.json").stat().st_mtime_ns
    assert resolve_dataset(name, tmp_path / "root") == built  # reused, not rebuilt
    assert (built / "metadata.json").stat().st_mtime_ns == stamp


def test_the_age7_name_builds_movielens_with_seven_age_domains(tmp_path, monkeypatch):
    calls = []

    def fake_build(out_dir, periods=10, cache_dir=None, overwrite=False, log=None, domains="age3"):
        calls.append({"periods": periods, "domains": domains})
        out_dir.mkdir(parents=True)
        (out_dir / "metadata.json").write_text('{"feature_spec": {}}')
        return {}

    monkeypatch.setattr(movielens, "build_movielens_1m", fake_build)
    resolve_dataset("movielens-1m-age7", tmp_path)
    assert calls == [{"periods": 10, "domains": "age7"}]
    rules = read_metadata(tmp_path / "movielens-1m-age7")["recipe"]["rules"]["domain"]
    assert rules["names"] == ["<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"] and rules["target"] == "<18"
    assert rules["bins"] == [18, 25, 35, 45, 50, 56]


def test_the_default_movielens_recipe_is_unchanged_by_the_domain_splits():
    rules = DATASETS["movielens-1m"].full_recipe()["rules"]["domain"]
    assert rules == {"field": "age", "bins": [25, 35], "names": ["<25", "25-34", ">=35"], "target": "<25"}
