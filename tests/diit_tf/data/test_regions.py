"""Regions of a benchmark's target rows from its recorded relevance: read from the hashed feature the model sees."""
import numpy as np

from diit_tf.data.regions import region_of_rows, regions_of
from diit_tf.features import FeatureSpec, hash_ids


def test_region_of_rows_from_hashed_ids():
    from diit_tf.features import hash_ids

    relevance = {"regions": {"source_a": [0, 1], "source_b": [2, 3]}}
    buckets = 1 << 20  # wide enough for no collision among four ids
    ids = np.asarray(hash_ids(["1", "3", "0", "2"], buckets))
    assert region_of_rows(relevance, ids, buckets).tolist() == ["source_a", "source_b", "source_a", "source_b"]
    one = np.asarray(hash_ids(["0", "2"], 1))  # a single bucket holds both regions
    assert region_of_rows(relevance, one, 1).tolist() == ["ambiguous", "ambiguous"]


def test_regions_of_reads_the_recorded_feature_and_needs_two_regions():
    spec = FeatureSpec(categorical={"gender": 16, "item_category": 64}, numeric=(), domains=("<18", ">=18-F", ">=18-M"),
                       target="<18")
    gender = {"feature": "gender", "regions": {">=18-F": ["F"], ">=18-M": ["M"]}}
    region = regions_of(gender, spec)
    features = {"gender": np.asarray(hash_ids(["M", "F", "F"], 16)), "item_category": np.zeros(3, np.int64)}
    assert region(features).tolist() == [">=18-M", ">=18-F", ">=18-F"]
    # without "feature": the synthetic benchmarks' item_category
    by_category = {"regions": {"a": [0], "b": [1]}}
    features["item_category"] = np.asarray(hash_ids(["1", "0", "1"], 64))
    assert regions_of(by_category, spec)(features).tolist() == ["b", "a", "b"]
    assert regions_of({"feature": "gender", "regions": {"a": ["F"]}}, spec) is None  # one region: nothing to split
    assert regions_of({"feature": "occupation", "regions": gender["regions"]}, spec) is None  # not a model input
    assert regions_of(None, spec) is None
