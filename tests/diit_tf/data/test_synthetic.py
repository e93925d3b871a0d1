"""The synthetic generator: deterministic by seed, sizes as configured, domains and CTR as documented; sources of
unequal relevance with their ground truth, and the original dataset byte for byte when they are not used."""
import hashlib
import math

import numpy as np
import pandas as pd
import pytest

from diit_tf.data import list_spans, load_period, read_span
from diit_tf.data.synthetic import (BENCHMARKS, SyntheticConfig, auc, build_synthetic, buckets_for, generate,
                                    regions, relevance_design, source_names)

SMALL = dict(periods=3, rows_target=300, rows_source=(1500, 1200), users=400, items=200)


def test_same_seed_same_data_other_seed_other_data():
    _, a, truth_a = generate(SyntheticConfig(seed=3, **SMALL))
    _, b, truth_b = generate(SyntheticConfig(seed=3, **SMALL))
    _, c, _ = generate(SyntheticConfig(seed=4, **SMALL))
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x, y)
    assert truth_a == truth_b
    assert not a[0].equals(c[0])


def test_sizes_domains_and_columns():
    config = SyntheticConfig(seed=0, **SMALL)
    spec, spans, truth = generate(config)
    assert spec.domains == ("target", "source_a", "source_b") and spec.target == "target"
    assert len(spans) == 3
    for frame in spans:
        assert frame["domain"].value_counts().to_dict() == {"source_a": 1500, "source_b": 1200, "target": 300}
        assert set(frame.columns) == {"user_id", "item_id", "user_group", "item_category", "freshness", "click",
                                      "domain"}
        assert set(frame["click"].unique()) <= {0, 1}
        assert frame["user_id"].between(0, 399).all() and frame["item_id"].between(0, 199).all()
    # users and items overlap across domains: sources know about target users
    first = spans[0]
    target_users = set(first.loc[first.domain == "target", "user_id"])
    source_users = set(first.loc[first.domain != "target", "user_id"])
    assert len(target_users & source_users) > 0.5 * len(target_users)
    # CTR of period 1 is calibrated to `ctr` in expectation
    assert truth["mean_true_ctr"]["1"] == {"target": 0.3, "source_a": 0.3, "source_b": 0.3}


def test_labels_carry_signal():
    _, spans, truth = generate(SyntheticConfig(seed=0, **SMALL))
    for period in truth["auc_of_true_ctr"].values():
        assert 0.7 < period["target"] < 0.97


def test_build_writes_layout(tmp_path):
    config = SyntheticConfig(seed=1, **SMALL)
    metadata = build_synthetic(tmp_path / "syn", config, log=lambda line: None)
    assert list_spans(tmp_path / "syn") == [1, 2, 3]
    assert metadata["rows_per_period_per_domain"]["2"] == {"target": 300, "source_a": 1500, "source_b": 1200}
    assert metadata["built_with"]["seed"] == 1 and metadata["built_with"]["rows_source"] == [1500, 1200]
    period = load_period(tmp_path / "syn", 2)
    assert len(period) == 3000 and (period.domains == "target").sum() == 300
    assert read_span(tmp_path / "syn", 2)["user_id"].str.fullmatch(r"\d+").all()


@pytest.mark.parametrize("field, value", [("shared_weight", 1.5), ("drift", 1.0), ("rows_source", ()),
                                          ("ctr", 0.0), ("periods", 0)])
def test_bad_config_names_field(field, value):
    with pytest.raises(ValueError, match=f"`{field}`"):
        SyntheticConfig(**{field: value})


def test_helpers():
    assert source_names(3) == ["source_a", "source_b", "source_c"]
    assert source_names(28)[26:] == ["source_aa", "source_ab"]
    assert buckets_for(3000) == 8192 and buckets_for(1) == 16 and buckets_for(8) == 16
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert auc([0, 1], [0.5, 0.5]) == 0.5
    assert np.isnan(auc([1, 1], [0.1, 0.2]))


# ------------------------------------------------------------------------------- sources of unequal relevance
def test_source_weights_table_by_hand():
    config = SyntheticConfig(rows_source=(10, 10, 10), item_categories=4, shared_weights=(0.9, 0.5, 0.2),
                             source_categories=((1, 0), (2,), (0, 1, 2, 3)))
    np.testing.assert_array_equal(config.source_weights(), [[0.9, 0.9, 0.0, 0.0],
                                                            [0.0, 0.0, 0.5, 0.0],
                                                            [0.2, 0.2, 0.2, 0.2]])
    assert config.source_categories == ((0, 1), (2,), (0, 1, 2, 3))
    assert regions(config) == {"source_a+source_c": [0, 1], "source_b+source_c": [2], "source_c": [3]}
    uniform = SyntheticConfig(rows_source=(10, 10), item_categories=2, shared_weight=0.7)
    assert uniform.uniform and not config.uniform
    np.testing.assert_array_equal(uniform.source_weights(), [[0.7, 0.7], [0.7, 0.7]])


@pytest.mark.parametrize("field, value", [("shared_weights", (0.5,)), ("shared_weights", (0.5, 1.2)),
                                          ("source_categories", ((0,),)), ("source_categories", ((0,), ())),
                                          ("source_categories", ((0,), (32,)))])
def test_bad_relevance_knobs_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"`{field}`"):
        SyntheticConfig(rows_source=(10, 10), **{field: value})


def test_knobs_equal_to_the_uniform_setting_give_the_same_rows():
    """Per-source weights all equal to `shared_weight` on every category are the original generator, row for row."""
    _, plain, _ = generate(SyntheticConfig(seed=2, **SMALL))
    every = tuple(range(32))
    _, same, truth = generate(SyntheticConfig(seed=2, shared_weights=(0.85, 0.85), source_categories=(every, every),
                                              **SMALL))
    for x, y in zip(plain, same):
        pd.testing.assert_frame_equal(x, y)
    assert "relevance" in truth


def test_a_source_with_the_targets_click_function_scores_like_the_truth():
    """Target and source_a both fully shared (weight 1): source_a's true function on the target's rows IS the
    target's, so its correlation is 1 and its AUC that of the true click probabilities."""
    config = SyntheticConfig(seed=0, shared_weight=1.0, shared_weights=(1.0, 0.0), **SMALL)
    _, _, truth = generate(config)
    for period, record in truth["relevance"]["on_target_rows"].items():
        assert record["source_a"]["logit_correlation"] == 1.0
        assert record["source_a"]["true_auc"] == truth["auc_of_true_ctr"][period]["target"]
        assert record["source_b"]["logit_correlation"] < 0.5


def test_relevance_ground_truth_follows_the_shared_weights():
    # With a finite pool of users and items (and popular items drawn often), unrelated random functions still
    # correlate a little by chance on a given draw: hence the tolerance.
    config = SyntheticConfig(seed=0, periods=2, rows_target=4000, rows_source=(500, 500, 500),
                             shared_weights=(1.0, 0.5, 0.0))
    _, _, truth = generate(config)
    relevance = truth["relevance"]
    assert relevance["target_shared_weight"] == 0.85
    expected = {"source_a": math.sqrt(0.85), "source_b": math.sqrt(0.5 * 0.85), "source_c": 0.0}
    for name, corr in expected.items():
        assert relevance["sources"][name]["latent_correlation_with_target"] == round(corr, 4)
        for period in ("1", "2"):
            measured = relevance["on_target_rows"][period][name]["logit_correlation"]
            assert abs(measured - corr) < 0.15, (name, period, measured)
    aucs = [relevance["on_target_rows"]["1"][n]["true_auc"] for n in ("source_a", "source_b", "source_c")]
    assert aucs == sorted(aucs, reverse=True) and abs(aucs[2] - 0.5) < 0.05
    # the target's own true AUC is above every source's on its rows
    assert truth["auc_of_true_ctr"]["1"]["target"] > aucs[0]


def test_regional_sources_share_only_on_their_categories():
    config = SyntheticConfig(seed=0, periods=1, rows_target=6000, rows_source=(500, 500),
                             shared_weights=(1.0, 1.0), source_categories=(range(16), range(16, 32)))
    _, _, truth = generate(config)
    relevance = truth["relevance"]
    assert relevance["regions"] == {"source_a": list(range(16)), "source_b": list(range(16, 32))}
    assert relevance["sources"]["source_a"]["shares_on_item_categories"] == list(range(16))
    by_region = {name: entry["by_region"] for name, entry in relevance["on_target_rows"]["1"].items()}
    assert by_region["source_a"]["source_a"]["rows"] + by_region["source_a"]["source_b"]["rows"] == 6000
    for own, other in (("source_a", "source_b"), ("source_b", "source_a")):
        assert abs(by_region[own][own]["logit_correlation"] - math.sqrt(0.85)) < 0.1
        assert abs(by_region[own][other]["logit_correlation"]) < 0.1


def test_unused_relevance_knobs_leave_the_build_record_unchanged(tmp_path):
    plain = build_synthetic(tmp_path / "a", SyntheticConfig(seed=1, **SMALL), log=lambda line: None)
    assert "shared_weights" not in plain["built_with"] and "relevance" not in plain["ground_truth"]
    used = build_synthetic(tmp_path / "b", SyntheticConfig(seed=1, shared_weights=(0.9, 0.1), **SMALL),
                           log=lambda line: None)
    assert used["built_with"]["shared_weights"] == [0.9, 0.1] and "source_categories" not in used["built_with"]
    assert set(used["ground_truth"]["relevance"]["on_target_rows"]) == {"1", "2", "3"}


def _tree_digest(path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


# sha256 of every file (spans and metadata.json) generator version 2 wrote before it had the relevance knobs
# (computed with that version of diit_tf/data/synthetic.py and `_tree_digest`)
GOLDEN = {
    "small": "c899cd9cd45ac4e898abbfc113a7ae1dfb0f4355ff555b96e36adbea580c4086",
    "default": "ca070ecadb0b8519af273709148114efaa62b911113f20bf36441bcb60ced4d9",
}


@pytest.mark.parametrize("which", ["small", pytest.param("default", marks=pytest.mark.slow)])
def test_the_dataset_is_byte_identical_without_the_new_knobs(tmp_path, which):
    config = SyntheticConfig(seed=1, **SMALL) if which == "small" else SyntheticConfig()
    build_synthetic(tmp_path / "syn", config, log=lambda line: None)
    assert _tree_digest(tmp_path / "syn") == GOLDEN[which]


def test_benchmarks_are_frozen():
    """The benchmark definitions (docs/benchmarks.md): changing one is changing a published benchmark."""
    assert {name: config.to_dict() for name, config in BENCHMARKS.items()} == {
        "unequal-sources": {**SyntheticConfig().to_dict(), "rows_source": [12000] * 4,
                            "shared_weights": [0.9, 0.6, 0.3, 0.0]},
        "regional-experts": {**SyntheticConfig().to_dict(), "rows_source": [12000, 12000],
                             "shared_weights": [0.9, 0.9],
                             "source_categories": [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 19, 28],
                                                   [13, 14, 16, 17, 18, 20, 21, 22, 23, 24, 25, 26, 27, 29, 30, 31]]},
        "strong-regional-experts": {**SyntheticConfig().to_dict(), "rows_target": 1000, "rows_source": [24000, 24000],
                                    "shared_weight": 0.95, "shared_weights": [1.0, 1.0],
                                    "source_categories": [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 19, 28],
                                                          [13, 14, 16, 17, 18, 20, 21, 22, 23, 24, 25, 26, 27, 29, 30,
                                                           31]]},
    }


@pytest.mark.parametrize("benchmark", ["regional-experts", "strong-regional-experts"])
def test_regional_experts_regions_are_told_apart_by_the_hashed_category(benchmark):
    from diit_tf.data.regions import region_of_rows
    from diit_tf.features import hash_ids

    config = BENCHMARKS[benchmark]
    relevance = relevance_design(config)
    buckets = config.spec().categorical["item_category"]
    ids = np.asarray(hash_ids([str(c) for c in range(config.item_categories)], buckets))
    assert region_of_rows(relevance, ids, buckets).tolist() == [
        "source_a" if c in relevance["sources"]["source_a"]["shares_on_item_categories"] else "source_b"
        for c in range(config.item_categories)]


@pytest.mark.slow
def test_relevance_flags_and_benchmark_through_the_cli(tmp_path, capsys, monkeypatch):
    from diit_tf import cli
    from diit_tf.data import read_metadata
    from diit_tf.data import synthetic

    out = tmp_path / "syn"
    assert cli.main(["data", "synthetic", "--out", str(out), "--periods", "2", "--rows-target", "50",
                     "--rows-source", "100,80", "--users", "60", "--items", "40", "--item-categories", "4",
                     "--shared-weights", "0.9,0.2", "--source-categories", "0-1;2,3"]) == 0
    metadata = read_metadata(out)
    assert metadata["built_with"]["shared_weights"] == [0.9, 0.2]
    assert metadata["built_with"]["source_categories"] == [[0, 1], [2, 3]]
    assert metadata["ground_truth"]["relevance"]["regions"] == {"source_a": [0, 1], "source_b": [2, 3]}
    capsys.readouterr()
    assert cli.main(["data", "synthetic", "--out", str(tmp_path / "x"), "--shared-weights", "0.9"]) == 1
    assert "`shared_weights` should be empty or 2 weight(s)" in capsys.readouterr().err
    assert cli.main(["data", "synthetic", "--benchmark", "unequal-sources", "--rows-target", "50",
                     "--out", str(tmp_path / "y")]) == 2
    assert "drop --rows-target or drop --benchmark" in capsys.readouterr().err
    small = SyntheticConfig(periods=2, rows_target=50, rows_source=(100, 100), users=60, items=40,
                            shared_weights=(0.5, 0.0))
    monkeypatch.setitem(synthetic.BENCHMARKS, "unequal-sources", small)
    assert cli.main(["data", "synthetic", "--benchmark", "unequal-sources", "--out", str(tmp_path / "b")]) == 0
    metadata = read_metadata(tmp_path / "b")
    assert metadata["dataset"] == "synthetic-unequal-sources"
    assert metadata["built_with"] == {"generator": "diit_tf.data.synthetic", "generator_version": synthetic.GENERATOR_VERSION,
                                      **small.to_dict()}


def test_generator_output_is_pinned_to_its_version():
    """Named datasets are cached by recipe, which holds GENERATOR_VERSION: a generator change that moves any row
    must raise the version (so stale caches are rebuilt) and update this fingerprint."""
    import hashlib

    from diit_tf.data.synthetic import GENERATOR_VERSION

    _, spans, _ = generate(SyntheticConfig(seed=5, periods=2, rows_target=40, rows_source=(60, 50), users=30, items=20))
    digest = hashlib.sha256(b"".join(f.to_csv(index=False).encode() for f in spans)).hexdigest()
    assert (GENERATOR_VERSION, digest) == (
        2, "f781f9476f9514319480d45ec0b7676324161a5f888a4c8745c005f4a8ba7293"), \
        "the generator's output changed: raise GENERATOR_VERSION and update the fingerprint here"


def test_bad_source_categories_are_shown_as_ranges_not_every_number(tmp_path, capsys):
    from diit_tf import cli
    from diit_tf.data.synthetic import category_ranges

    assert category_ranges([(0, 1, 2, 5), (7,), (3, 4, 9, 10, 11)]) == "0-2,5;7;3-4,9-11"
    out = tmp_path / "syn"
    assert cli.main(["data", "synthetic", "--out", str(out), "--source-categories", "0-99;1"]) == 1
    err = capsys.readouterr().err
    assert ("`source_categories` should be empty or 2 non-empty set(s) of item categories in [0, 32), one per "
            "source. Received: '0-99;1'") in err
    assert len(err.splitlines()) == 1 and "50, 51" not in err and not out.exists()
