"""The synthetic generator: deterministic by seed, sizes as configured, domains and CTR as documented."""
import numpy as np
import pandas as pd
import pytest

from diit_tf.data import list_spans, load_period, read_span
from diit_tf.data.synthetic import SyntheticConfig, auc, build_synthetic, buckets_for, generate, source_names

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
