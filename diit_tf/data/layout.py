"""The period-partitioned dataset layout shared by `diit simulate` and the TFX pipeline.

```
<data_dir>/
  metadata.json      # dataset, feature_spec, periods, rows_per_period_per_domain, built_with, bad_rows
  span-1/data.csv    # period 1: rows of ALL domains, one domain column; header = raw column names
  span-2/data.csv
  ...
```

A dataset is written with `DatasetWriter`, which builds everything in a temporary sibling directory and renames it
into place only when the build succeeded, so an interrupted build never leaves a half dataset behind, and which
refuses to replace an existing dataset unless asked to.

Raw column conventions (what TFX `CsvExampleGen` reads with the input pattern `span-{SPAN}/*`):
categorical ids are written as strings or integers (never `123.0`), numeric features as floats, the label as a 0/1
integer and the domain as its name. A missing categorical value is written as `MISSING` (an empty CSV field would be
a missing feature for TFX).

Example:
  >>> with DatasetWriter("out/ml", spec, dataset="movielens-1m", overwrite=True) as writer:
  ...     writer.write_span(1, frame_of_period_1)
  ...     writer.finish(built_with={"periods": 10}, bad_rows={"missing_age": 0})
  >>> period = load_period("out/ml", 1)        # features (hashed through spec.transform), labels, domains
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional

import numpy as np
import pandas as pd

from diit_tf.jsonfile import read_json_object

if TYPE_CHECKING:  # imported lazily: diit_tf.features loads TensorFlow, which `diit --help` should not wait for
    from diit_tf.features import FeatureSpec

METADATA_FILE = "metadata.json"
SPAN_FILE = "data.csv"
MISSING = "<missing>"
_SPAN_RE = re.compile(r"^span-(\d+)$")


def progress(line: str) -> None:
    """Progress output of long work: one line on stderr, flushed."""
    print(line, file=sys.stderr, flush=True)


def span_dir(data_dir, n: int) -> Path:
    return Path(data_dir) / f"span-{int(n)}"


def span_path(data_dir, n: int) -> Path:
    return span_dir(data_dir, n) / SPAN_FILE


def is_dataset(path) -> bool:
    return (Path(path) / METADATA_FILE).is_file()


def raw_columns(spec: "FeatureSpec") -> list:
    """The CSV header of a span: categorical, numeric, label, domain."""
    return list(spec.categorical) + list(spec.numeric) + [spec.label, spec.domain]


# --------------------------------------------------------------------------------------------------------- writing
def format_span(frame: pd.DataFrame, spec: "FeatureSpec", where: str = "span") -> pd.DataFrame:
    """Return `frame` reduced to the raw columns in canonical types, or raise naming what is wrong.

    Categorical: strings (integers and integral floats lose any `.0`; missing values become `MISSING`).
    Numeric: float64 without NaN. Label: int 0/1. Domain: one of `spec.domains`.
    """
    missing = [c for c in raw_columns(spec) if c not in frame.columns]
    if missing:
        raise ValueError(f"{where} is missing column(s) {missing}; it has {list(frame.columns)}")
    out = {}
    for name in spec.categorical:
        out[name] = categorical_strings(frame[name])
    for name in spec.numeric:
        values = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        bad = int(values.isna().sum())
        if bad:
            raise ValueError(f"{where}: numeric feature {name!r} has {bad} missing/non-numeric value(s)")
        out[name] = values
    labels = pd.to_numeric(frame[spec.label], errors="coerce")
    bad = int((~labels.isin([0, 1])).sum())
    if bad:
        raise ValueError(f"{where}: label {spec.label!r} has {bad} value(s) that are not 0/1")
    out[spec.label] = labels.astype("int64")
    domains = frame[spec.domain].astype(str)
    unknown = ~domains.isin(spec.domains)
    if unknown.any():
        raise ValueError(
            f"{where}: domain column {spec.domain!r} has {int(unknown.sum())} row(s) with unknown domains "
            f"{sorted(domains[unknown].unique())[:5]}; known: {list(spec.domains)}"
        )
    out[spec.domain] = domains
    return pd.DataFrame(out, index=frame.index)[raw_columns(spec)].reset_index(drop=True)


def categorical_strings(values: pd.Series) -> pd.Series:
    """Ids as strings: `12` and `12.0` both become `"12"`, NaN/empty becomes `MISSING`, strings are stripped."""
    if pd.api.types.is_float_dtype(values):
        whole = values.notna() & (values == np.floor(values.fillna(0)))
        text = values.astype(object)
        text[whole] = values[whole].astype("int64").astype(str)
        text[~whole & values.notna()] = values[~whole & values.notna()].astype(str)
        text[values.isna()] = MISSING
        return text.astype(str)
    if pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values.astype("int64").astype(str)
    text = values.astype(object).where(values.notna(), MISSING).astype(str).str.strip()
    return text.where(text != "", MISSING)


def check_out_dir(out_dir, overwrite: bool) -> None:
    """A dataset directory may be written: it does not exist, is empty, or `overwrite` is set; else a
    FileExistsError naming it. `DatasetWriter` checks it, and the converters' commands before they read any raw
    file (reading KuaiRand's or Taobao's logs takes minutes)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} already exists and is not empty; pass --overwrite (overwrite=True) to "
                              f"replace it")


class DatasetWriter:
    """Builds a dataset in a temporary sibling directory, then renames it into place.

    Use as a context manager: leaving the block with an exception (or without `finish`) removes the temporary
    directory and leaves any existing dataset at `out_dir` untouched.

    Args:
      out_dir: the dataset directory to create.
      spec: the FeatureSpec (saved in metadata.json; spans are checked against it).
      dataset: a short name of the dataset ("synthetic", "movielens-1m", ...).
      overwrite: replace an existing dataset at `out_dir`; without it an existing non-empty directory is an error.
      log: a callable taking a progress line (default: `progress`, which prints to stderr); pass
        `lambda line: None` to stay quiet.
    """

    def __init__(self, out_dir, spec: "FeatureSpec", dataset: str, overwrite: bool = False, log=None):
        self.out_dir = Path(out_dir)
        self.spec = spec
        self.dataset = dataset
        self.overwrite = overwrite
        self.log = log or progress
        self.rows: dict = {}
        self.clicks: dict = {}
        self._tmp: Optional[Path] = None
        check_out_dir(self.out_dir, overwrite)

    def __enter__(self) -> "DatasetWriter":
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}.building-", dir=self.out_dir.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self._tmp, 0o777 & ~umask)  # mkdtemp makes it private; a dataset is an ordinary directory
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._tmp is not None and self._tmp.exists():
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = None

    def write_span(self, n: int, frame: pd.DataFrame) -> pd.DataFrame:
        """Write period `n` (1-based). Returns the frame as written (canonical raw columns)."""
        if self._tmp is None:
            raise RuntimeError("DatasetWriter.write_span must be called inside `with DatasetWriter(...)`")
        if int(n) < 1 or int(n) in self.rows:
            raise ValueError(f"span number should be a new positive integer. Received: {n!r}")
        if len(frame) == 0:
            raise ValueError(f"span-{n} of {self.dataset} would be empty")
        frame = format_span(frame, self.spec, where=f"span-{n} of {self.dataset}")
        path = self._tmp / f"span-{int(n)}"
        path.mkdir()
        frame.to_csv(path / SPAN_FILE, index=False)
        grouped = frame.groupby(self.spec.domain)[self.spec.label]
        self.rows[int(n)] = {d: int(grouped.size().get(d, 0)) for d in self.spec.domains}
        self.clicks[int(n)] = {d: int(grouped.sum().get(d, 0)) for d in self.spec.domains}
        total = len(frame)
        per = ", ".join(f"{d} {self.rows[int(n)][d]:,}" for d in self.spec.domains)
        self.log(f"  span-{n}: {total:,} rows ({per}), CTR {frame[self.spec.label].mean():.3f}")
        return frame

    def finish(self, built_with: Mapping = None, bad_rows: Mapping = None, extra: Mapping = None) -> dict:
        """Write metadata.json and move the dataset into place. Returns the metadata."""
        if self._tmp is None:
            raise RuntimeError("DatasetWriter.finish must be called inside `with DatasetWriter(...)`")
        if not self.rows:
            raise ValueError(f"dataset {self.dataset} has no spans")
        periods = sorted(self.rows)
        if periods != list(range(1, len(periods) + 1)):
            raise ValueError(f"spans should be numbered 1..N without gaps. Received: {periods}")
        metadata = {
            "dataset": self.dataset,
            "feature_spec": self.spec.to_dict(),
            "periods": periods,
            "rows_per_period_per_domain": {str(p): self.rows[p] for p in periods},
            "clicks_per_period_per_domain": {str(p): self.clicks[p] for p in periods},
            "built_with": dict(built_with or {}),
            "bad_rows": dict(bad_rows or {}),
        }
        metadata.update(dict(extra or {}))
        with open(self._tmp / METADATA_FILE, "w") as f:
            json.dump(metadata, f, indent=2, default=_json_default)
            f.write("\n")
        if self.out_dir.exists() and not self.overwrite:
            if not self.out_dir.is_dir() or any(self.out_dir.iterdir()):
                raise FileExistsError(f"{self.out_dir} appeared while building; pass --overwrite to replace it")
        replace_directory(self._tmp, self.out_dir)
        self._tmp = None
        return metadata


def replace_directory(new, out_dir) -> None:
    """Move the finished directory `new` to `out_dir`, replacing whatever is there: the old one is renamed aside
    first and removed only once `new` is in place."""
    new, out_dir = Path(new), Path(out_dir)
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        os.rename(out_dir, old)
    os.rename(new, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (Path,)):
        return str(value)
    raise TypeError(f"not JSON serialisable: {value!r}")


# --------------------------------------------------------------------------------------------------------- reading
def read_metadata(data_dir) -> dict:
    path = Path(data_dir) / METADATA_FILE
    metadata = read_json_object(path, missing=f"not found: {data_dir} is not a dataset (build one with `diit data ...`)")
    if "feature_spec" not in metadata:
        raise ValueError(f"{path} has no 'feature_spec' field")
    return metadata


def load_spec(data_dir) -> "FeatureSpec":
    """The FeatureSpec stored in `<data_dir>/metadata.json`."""
    from diit_tf.features import FeatureSpec

    return FeatureSpec.from_dict(read_metadata(data_dir)["feature_spec"])


def list_spans(data_dir) -> list:
    """Sorted span numbers present under `data_dir` (folders `span-<N>` holding a `data.csv`)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"dataset directory {data_dir} not found")
    spans = []
    for child in data_dir.iterdir():
        match = _SPAN_RE.match(child.name)
        if match and (child / SPAN_FILE).is_file():
            spans.append(int(match.group(1)))
    return sorted(spans)


def read_span(data_dir, n: int, spec: Optional["FeatureSpec"] = None) -> pd.DataFrame:
    """The raw rows of span `n` as a DataFrame, validated against the spec (see `load_period` for the checks).

    Categorical columns are strings, numeric float64, the label int64 (0/1), the domain a string.
    """
    spec = spec or load_spec(data_dir)
    path = span_path(data_dir, n)
    if not path.is_file():
        raise FileNotFoundError(f"span-{n} not found: no {path} (spans present: {list_spans(data_dir)})")
    with open(path) as f:
        header = f.readline().rstrip("\r\n").split(",")
    missing = [c for c in raw_columns(spec) if c not in header]
    if missing:
        raise ValueError(f"{path} is missing column(s) {missing}; its header is {header}")
    # every column is read (with usecols, pandas drops a row's surplus fields without a word: a value holding an
    # unquoted comma would slip through); a row with more fields than the header is an error naming its line
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, engine="c")
    except pd.errors.ParserError as err:
        raise ValueError(f"{path}: malformed row: {str(err).strip()}") from None
    frame = frame[list(raw_columns(spec))]
    if len(frame) == 0:
        raise ValueError(f"span-{n} is empty: {path} has no rows")
    for name in spec.categorical:
        empty = int((frame[name] == "").sum())
        if empty:
            raise ValueError(f"{path}: categorical feature {name!r} is empty in {empty} row(s)")
    for name in spec.numeric:
        frame[name] = _numeric(frame[name], name, path, "numeric feature")
    labels = _numeric(frame[spec.label], spec.label, path, "label")
    bad = int((~labels.isin([0.0, 1.0])).sum())
    if bad:
        raise ValueError(f"{path}: label {spec.label!r} is not 0/1 in {bad} row(s)")
    frame[spec.label] = labels.astype("int64")
    unknown = ~frame[spec.domain].isin(spec.domains)
    if unknown.any():
        names = sorted(frame.loc[unknown, spec.domain].unique())[:5]
        raise ValueError(
            f"{path}: domain {spec.domain!r} is unknown in {int(unknown.sum())} row(s) (e.g. {names}); "
            f"known domains: {list(spec.domains)}"
        )
    return frame


def _numeric(column: pd.Series, name: str, path, what: str) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce")
    bad = int(values.isna().sum())
    if bad:
        raise ValueError(f"{path}: {what} {name!r} is NaN, empty or not a number in {bad} row(s)")
    return values.astype("float64")


@dataclasses.dataclass
class PeriodData:
    """One period of a dataset, ready for a model.

    Attributes:
      features: model inputs, `spec.transform` of the raw columns: int64 bucket ids and float32 numerics, (rows,).
      labels: float32 0/1, (rows,).
      domains: domain names, numpy str array, (rows,).
      span: the period number.
      spec: the FeatureSpec used.
    """

    features: dict
    labels: np.ndarray
    domains: np.ndarray
    span: int
    spec: "FeatureSpec"

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def domain_ids(self) -> np.ndarray:
        """int32 index of each row's domain in `spec.domains`."""
        lookup = {name: i for i, name in enumerate(self.spec.domains)}
        return np.fromiter((lookup[d] for d in self.domains), dtype=np.int32, count=len(self.domains))

    def subset(self, mask) -> "PeriodData":
        """The rows selected by a boolean mask or index array."""
        return PeriodData({k: v[mask] for k, v in self.features.items()}, self.labels[mask], self.domains[mask],
                          self.span, self.spec)

    def domain(self, name: str) -> "PeriodData":
        """The rows of one domain (`spec.domain_index` raises on an unknown name)."""
        self.spec.domain_index(name)
        return self.subset(self.domains == name)


def load_period(data_dir, n: int, spec: Optional["FeatureSpec"] = None) -> PeriodData:
    """Read span `n` of a dataset and turn it into model inputs through `spec.transform`.

    Raises (naming file, field and number of bad rows): FileNotFoundError for a missing dataset or span;
    ValueError for a missing column, an empty span, an empty categorical value, a NaN/non-numeric numeric feature
    or label, a label that is not 0/1, an unknown domain.
    """
    import tensorflow as tf

    spec = spec or load_spec(data_dir)
    frame = read_span(data_dir, n, spec)
    # object arrays of Python str convert to tf.string ~15x faster than numpy unicode arrays
    raw = {name: tf.constant(frame[name].to_numpy(dtype=object)) for name in spec.categorical}
    raw.update({name: tf.constant(frame[name].to_numpy(dtype=np.float32)) for name in spec.numeric})
    transformed = spec.transform(raw)
    features = {name: np.asarray(transformed[name]) for name in spec.feature_names}
    return PeriodData(
        features=features,
        labels=frame[spec.label].to_numpy(dtype=np.float32),
        domains=frame[spec.domain].to_numpy(dtype=str),
        span=int(n),
        spec=spec,
    )
