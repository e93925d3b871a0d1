"""Regions of a benchmark's target rows: which source its design says is relevant on which rows.

A dataset's metadata.json may record `ground_truth.relevance = {"feature": <categorical feature>, "regions":
{<source>: [raw values of that feature]}}` (the feature defaults to `item_category`, the synthetic regional
experts'; `movielens-1m-age-gender` uses `gender`). The reports split the gate's weights and the sources' quality by
these regions. A row's region is read from the model's input, the feature's hashed id, so it is what a gate can see.
"""
from __future__ import annotations

from typing import Callable, Mapping, Optional

import numpy as np

DEFAULT_FEATURE = "item_category"


def region_of_rows(relevance: Mapping, ids, buckets: int) -> np.ndarray:
    """The region of each row from its hashed id of the regions' feature: `relevance` is
    `metadata["ground_truth"]["relevance"]`, `buckets` the feature's hash buckets. A bucket that holds values of
    different regions gives `ambiguous`, a bucket of no region `unknown`."""
    from diit_tf.features import hash_ids

    region_of_bucket = {}
    for region, values in relevance["regions"].items():
        for bucket in np.asarray(hash_ids([str(v) for v in values], buckets)).tolist():
            region_of_bucket[bucket] = region if region_of_bucket.get(bucket, region) == region else "ambiguous"
    return np.array([region_of_bucket.get(int(b), "unknown") for b in np.asarray(ids)])


def regions_of(relevance: Optional[Mapping], spec) -> Optional[Callable[[Mapping], np.ndarray]]:
    """`features -> region of each row` for a dataset whose relevance has two regions or more on a categorical
    feature of `spec`; None otherwise (nothing to split)."""
    relevance = relevance or {}
    feature = relevance.get("feature", DEFAULT_FEATURE)
    buckets = spec.categorical.get(feature)
    if len(relevance.get("regions") or {}) < 2 or not buckets:
        return None
    return lambda features: region_of_rows(relevance, features[feature], buckets)
