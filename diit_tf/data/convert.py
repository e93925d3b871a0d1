"""Shared steps of the dataset converters: bad-row accounting, label/domain/period rules, and writing a joined
table of all periods into the span layout.

A converter (RecBole atomic files, KuaiRand, Taobao) reads its raw files, joins them into one table with raw
feature columns, a label, a domain name and a period number, drops bad rows through `BadRows` (which counts every
dropped row under a reason, so nothing is silently lost), and hands the table to `write_periods`.
"""
from __future__ import annotations

import codecs
import csv
import dataclasses
import math
import operator
import re
from collections import OrderedDict
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from diit_tf.data.layout import DatasetWriter, progress

PERIOD = "__period__"


def buckets_for(cardinality: int, minimum: int = 16, maximum: int = 1 << 22) -> int:
    """Hash buckets for a categorical feature: the power of two at least twice its cardinality (few collisions),
    clipped to [minimum, maximum]."""
    want = max(int(cardinality), 1) * 2
    return int(min(max(minimum, 1 << math.ceil(math.log2(want))), maximum))


class BadRows:
    """Counts dropped rows by reason. `drop(frame, mask, reason)` removes bad rows (malformed or missing values);
    `exclude(frame, mask, reason)` removes rows a user option leaves out (other domains, early periods), counted
    apart. Both return the frame without the masked rows."""

    def __init__(self, log=None):
        self.counts: "OrderedDict[str, int]" = OrderedDict()
        self.excluded: "OrderedDict[str, int]" = OrderedDict()
        self.log = log or progress

    def exclude(self, frame: pd.DataFrame, mask, reason: str) -> pd.DataFrame:
        return self._remove(frame, mask, reason, self.excluded, "excluding {:,} row(s)")

    def drop(self, frame: pd.DataFrame, bad, reason: str) -> pd.DataFrame:
        return self._remove(frame, bad, reason, self.counts, "dropping {:,} bad row(s)")

    def _remove(self, frame: pd.DataFrame, mask, reason: str, tally: dict, message: str) -> pd.DataFrame:
        """`frame` without the `mask` rows, counted under `reason` in `tally` and logged when there are any."""
        mask = np.asarray(mask, dtype=bool)
        count = int(mask.sum())
        tally[reason] = tally.get(reason, 0) + count
        if count:
            self.log(f"  {message.format(count)}: {reason}")
            return frame.loc[~mask]
        return frame

    def as_dict(self) -> dict:
        return dict(self.counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def require_columns(columns: Sequence[str], required: Sequence[str], path) -> None:
    """Raise a ValueError naming the missing column(s) and the file."""
    missing = [c for c in required if c not in columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; the header has {list(columns)}")


# ---------------------------------------------------------------------------------------------------------- label
_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
        "!=": operator.ne}
_LABEL_RE = re.compile(r"^\s*([^<>=!\s]+)\s*(>=|<=|==|!=|>|<)\s*([-+0-9.eE]+)\s*$")


@dataclasses.dataclass(frozen=True)
class LabelRule:
    """How the 0/1 label is made: `field op threshold` (e.g. `rating>=4`) or, with no op, `field` already 0/1.

    `LabelRule.parse("rating>=4")`, `LabelRule.parse("is_click")`.
    """

    field: str
    op: Optional[str] = None
    threshold: Optional[float] = None

    @classmethod
    def parse(cls, text: str) -> "LabelRule":
        match = _LABEL_RE.match(text)
        if match:
            return cls(match.group(1), match.group(2), float(match.group(3)))
        if re.fullmatch(r"[^<>=!\s]+", text.strip()):
            return cls(text.strip())
        raise ValueError(f"label rule should be `field` or `field<op>number` (op one of {list(_OPS)}). "
                         f"Received: {text!r}")

    def __str__(self) -> str:
        return self.field if self.op is None else f"{self.field}{self.op}{self.threshold:g}"

    def apply(self, frame: pd.DataFrame, bad: BadRows, where: str):
        """Return `(frame, labels)`: rows whose label field is missing/non-numeric (or not 0/1 without an op) are
        dropped and counted."""
        values = pd.to_numeric(frame[self.field], errors="coerce")
        frame = bad.drop(frame, values.isna().to_numpy(), f"{self.field} missing or not a number ({where})")
        values = values.loc[frame.index]
        if self.op is None:
            frame = bad.drop(frame, (~values.isin([0, 1])).to_numpy(), f"{self.field} not 0/1 ({where})")
            return frame, values.loc[frame.index].astype("int64")
        return frame, _OPS[self.op](values, self.threshold).astype("int64")


# --------------------------------------------------------------------------------------------------------- domain
@dataclasses.dataclass(frozen=True)
class DomainRule:
    """How a row's domain is named from a field.

    Args:
      field: the raw field.
      bins: numeric cut points; value < bins[0] -> names[0], bins[i-1] <= value < bins[i] -> names[i], value >=
        bins[-1] -> names[-1]. Without bins each distinct value is a domain named `prefix + value`.
      names: domain names for the bins (default: `<b0`, `b0-b1`, ..., `>=bk` style names).
      prefix: prefix of value-named domains (no bins).
      keep: only these domain names are kept (others are counted as `excluded_domain`, not bad rows).
      target: the target domain; default: the smallest kept domain by rows.
      split_by: a second field that splits every domain but the target by its values: domain `d` becomes
        `d-<value>` (rows with that field missing are dropped and counted). Needs `target`.
      split_groups: with `split_by`, `((group, (value, ...)), ...)`: domain `d` becomes `d-<group>` of the group
        holding the field's first value (a multi-valued field such as "Comedy Romance" is split by "Comedy");
        rows whose first value is in no group are dropped and counted.
    """

    field: str
    bins: tuple = ()
    names: tuple = ()
    prefix: str = ""
    keep: tuple = ()
    target: str = ""
    split_by: str = ""
    split_groups: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "bins", tuple(float(b) for b in self.bins))
        object.__setattr__(self, "split_groups", tuple((str(g), tuple(str(v) for v in values))
                                                       for g, values in self.split_groups))
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "keep", tuple(str(k) for k in self.keep))
        if list(self.bins) != sorted(set(self.bins)):
            raise ValueError(f"`domain bins` should be strictly increasing. Received: {list(self.bins)}")
        if self.bins and self.names and len(self.names) != len(self.bins) + 1:
            raise ValueError(f"`domain names` should have len(bins)+1 = {len(self.bins) + 1} names. "
                             f"Received: {list(self.names)}")
        if self.names and not self.bins:
            raise ValueError("`domain names` only apply with `domain bins`")
        if self.split_by and not self.target:
            raise ValueError(f"`split_by` ({self.split_by!r}) needs the target domain, which is not split")
        if self.split_groups and not self.split_by:
            raise ValueError("`split_groups` only apply with `split_by`")
        owners = [v for _, values in self.split_groups for v in values]
        if len(owners) != len(set(owners)):
            raise ValueError(f"`split_groups` should put each value in one group. Received: {list(self.split_groups)}")

    @property
    def bin_names(self) -> tuple:
        if self.names:
            return self.names
        b = [f"{x:g}" for x in self.bins]
        return tuple([f"<{b[0]}"] + [f"{lo}-{hi}" for lo, hi in zip(b, b[1:])] + [f">={b[-1]}"])

    def apply(self, frame: pd.DataFrame, bad: BadRows, where: str):
        """Return `(frame, domains)`: rows with a missing (or, with bins, non-numeric) domain value are dropped and
        counted; rows of domains outside `keep` are dropped and counted under `excluded_domain`."""
        raw = frame[self.field]
        if self.bins:
            values = pd.to_numeric(raw, errors="coerce")
            frame = bad.drop(frame, values.isna().to_numpy(), f"{self.field} missing or not a number ({where})")
            values = values.loc[frame.index].to_numpy()
            index = np.searchsorted(np.asarray(self.bins), values, side="right")
            domains = pd.Series(np.asarray(self.bin_names, dtype=object)[index], index=frame.index)
        else:
            text = raw.astype(object).where(raw.notna(), "").astype(str).str.strip()
            frame = bad.drop(frame, (text == "").to_numpy(), f"{self.field} missing ({where})")
            domains = self.prefix + text.loc[frame.index]
        if self.keep:
            outside = ~domains.isin(self.keep)
            if outside.all():
                raise ValueError(f"no row has a domain in {list(self.keep)} ({where}); domains present: "
                                 f"{sorted(domains.unique())[:20]}")
            frame = bad.exclude(frame, outside.to_numpy(), f"domain not in {list(self.keep)}")
            domains = domains.loc[frame.index]
        if self.split_by:
            raw = frame[self.split_by]
            text = raw.astype(object).where(raw.notna(), "").astype(str).str.strip()
            split = (domains != self.target) & (text == "")
            frame = bad.drop(frame, split.to_numpy(), f"{self.split_by} missing ({where})")
            domains, text = domains.loc[frame.index], text.loc[frame.index]
            if self.split_groups:
                group_of = {v: g for g, values in self.split_groups for v in values}
                text = text.str.split().str[0].map(group_of).fillna("")
                outside = (domains != self.target) & (text == "")
                frame = bad.exclude(frame, outside.to_numpy(), f"{self.split_by} in none of the split groups")
                domains, text = domains.loc[frame.index], text.loc[frame.index]
            domains = domains.where(domains == self.target, domains + "-" + text)
        return frame, domains.astype(str)

    def domains_and_target(self, domains: pd.Series) -> tuple:
        """`(ordered domain names, target)`: bins/keep order when given, else by decreasing size; the target is
        `target` or the smallest domain."""
        sizes = domains.value_counts()
        named = self.keep or (self.bin_names if self.bins else ())
        if named and self.split_by:  # each split domain in place of its name, its parts in the split values' order
            parts = {}
            for d in sizes.index:
                owners = [n for n in named if n != self.target and d.startswith(f"{n}-")]
                if owners:
                    parts.setdefault(max(owners, key=len), []).append(d)
            named = [part for n in named for part in ([n] if n == self.target else sorted(parts.get(n, ())))]
        if named:
            order = [d for d in named if d in sizes.index]
        else:
            order = list(sizes.index)  # largest first
        if not order:
            raise ValueError(f"no rows left with a domain from field {self.field!r}")
        target = self.target or min(order, key=lambda d: (sizes[d], order.index(d)))
        if target not in order:
            raise ValueError(f"target domain {target!r} has no rows; domains present: {order}")
        return tuple(order), target


# --------------------------------------------------------------------------------------------------------- period
@dataclasses.dataclass(frozen=True)
class PeriodRule:
    """How rows are cut into periods (spans numbered 1..N in time order).

    Modes:
      `equal-rows`: `periods` slices of equal row count, global cut points by `field` (a time stamp; ties keep
        file order).
      `day`: one period per calendar day of a unix time stamp in seconds, shifted by `utc_offset_hours`.
      `value`: one period per distinct value of `field` (e.g. a YYYYMMDD date), in sorted order.
      With `day` or `value`, `periods` (if set) keeps only the last N periods; `group` merges consecutive
      periods into one span.
    """

    field: str
    mode: str = "equal-rows"
    periods: int = 0
    utc_offset_hours: float = 0.0
    group: int = 1

    def __post_init__(self):
        if self.mode not in ("equal-rows", "day", "value"):
            raise ValueError(f"`period mode` should be one of equal-rows, day, value. Received: {self.mode!r}")
        if self.mode == "equal-rows" and self.periods < 1:
            raise ValueError(f"`periods` should be a positive integer for equal-rows. Received: {self.periods!r}")
        if self.periods < 0:
            raise ValueError(f"`periods` should be 0 (every period) or a positive integer (the last N). "
                             f"Received: {self.periods!r}")
        if self.group < 1:
            raise ValueError(f"`group` should be a positive integer. Received: {self.group!r}")

    def apply(self, frame: pd.DataFrame, bad: BadRows, where: str):
        """Return `(frame, periods, info)`: periods int 1..N; rows with a missing/unparseable period field are
        dropped and counted; `info` describes the cut (cut points or the value of each span)."""
        raw = frame[self.field]
        values = pd.to_numeric(raw, errors="coerce")
        frame = bad.drop(frame, values.isna().to_numpy(), f"{self.field} missing or not a number ({where})")
        values = values.loc[frame.index]
        if len(frame) == 0:  # every row dropped or excluded before: nothing to cut (an IndexError below)
            raise ValueError(f"no rows left to cut into periods by {self.field!r} ({where}); see the dropped and "
                             f"excluded rows above")
        if self.mode == "equal-rows":
            order = np.argsort(values.to_numpy(), kind="stable")
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order))
            period = rank * self.periods // max(len(order), 1) + 1
            cuts = [float(values.to_numpy()[order[(k * len(order)) // self.periods]]) for k in range(self.periods)]
            info = {"mode": self.mode, "field": self.field, "periods": self.periods, "first_value_of_span": cuts}
            return frame, pd.Series(period, index=frame.index), info
        if self.mode == "day":
            keys = np.floor((values.to_numpy() + self.utc_offset_hours * 3600.0) / 86400.0).astype(np.int64)
            label = lambda k: str(pd.Timestamp(int(k) * 86400, unit="s").date())  # noqa: E731
        else:
            keys = values.to_numpy()
            label = lambda k: str(int(k)) if float(k).is_integer() else repr(float(k))  # noqa: E731
        distinct = np.unique(keys)
        group_of = {k: i // self.group for i, k in enumerate(distinct)}
        groups = sorted(set(group_of.values()))
        if self.periods:
            groups = groups[-self.periods:]
        first = groups[0]
        span = pd.Series([group_of[k] - first + 1 for k in keys], index=frame.index)
        keep = (span >= 1).to_numpy()
        if self.periods:
            frame = bad.exclude(frame, ~keep, f"before the last {self.periods} period(s)")
        span = span.loc[frame.index]
        values_of_span = {}
        for k in distinct:
            n = group_of[k] - first + 1
            if n >= 1:
                values_of_span.setdefault(str(n), []).append(label(k))
        info = {"mode": self.mode, "field": self.field, "group": self.group, "values_of_span": values_of_span}
        if self.mode == "day":
            info["utc_offset_hours"] = self.utc_offset_hours
        return frame, span.astype("int64"), info


# ---------------------------------------------------------------------------------------------------------- write
def make_spec(frame: pd.DataFrame, categorical: Sequence[str], numeric: Sequence[str], label: str, domain: str,
              domains: Sequence[str], target: str, max_buckets: int = 1 << 22, buckets: Mapping = None):
    """A FeatureSpec whose hash buckets follow each categorical column's cardinality in `frame`."""
    from diit_tf.features import FeatureSpec

    buckets = dict(buckets or {})
    cats = {name: buckets.get(name) or buckets_for(frame[name].nunique(), maximum=max_buckets)
            for name in categorical}
    return FeatureSpec(categorical=cats, numeric=tuple(numeric), label=label, domain=domain,
                       domains=tuple(domains), target=target)


def write_periods(out_dir, frame: pd.DataFrame, spec, dataset: str, built_with: Mapping, bad: BadRows,
                  overwrite: bool = False, log=None, extra: Mapping = None) -> dict:
    """Write `frame` (raw columns + a `PERIOD` column of 1..N) as one span per period. Returns the metadata."""
    log = log or progress
    with DatasetWriter(out_dir, spec, dataset=dataset, overwrite=overwrite, log=log) as writer:
        periods = sorted(int(p) for p in frame[PERIOD].unique())
        if periods != list(range(1, len(periods) + 1)):
            raise ValueError(f"{dataset}: periods should be 1..N without gaps. Received: {periods}")
        for n, part in frame.groupby(PERIOD, sort=True):
            writer.write_span(int(n), part)
        extra = {"excluded_rows": dict(bad.excluded), **dict(extra or {})}
        return writer.finish(built_with=built_with, bad_rows=bad.as_dict(), extra=extra)


# ------------------------------------------------------------------------------------------------------ raw files
def undecodable_lines(path) -> list:
    """1-based numbers of the lines of `path` that are not valid UTF-8 (empty, after one streaming pass, when the
    whole file decodes)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        return []
    except UnicodeDecodeError:
        pass
    bad = []
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                bad.append(number)
    return bad


def read_header(path, sep: str) -> list:
    """The header fields of a text table (quoted CSV allowed); a header that is not UTF-8 is an error naming the
    file and line 1."""
    with open(path, "rb") as f:
        first = f.readline()
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}, line 1 (the header): byte {first[err.start]:#04x} at position {err.start} is not "
                         f"valid UTF-8") from None
    return next(csv.reader([text.rstrip("\r\n")], delimiter=sep), [])


def read_table(path, bad: Optional[BadRows] = None, **read_csv_options) -> pd.DataFrame:
    """`pd.read_csv(path, dtype=str, ...)` (empty = missing) that handles bytes which are not UTF-8: with `bad`,
    the rows holding them are dropped and counted (their line numbers logged); without it, the first such line is a
    ValueError naming the file and the line."""
    options = dict(dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8", engine="c")
    options.update(read_csv_options)
    lines = undecodable_lines(path)
    if not lines:
        return pd.read_csv(path, **options)
    if bad is None:
        raise ValueError(f"{path}, line {lines[0]}: not valid UTF-8" + (
            f" (and {len(lines) - 1} more line(s))" if len(lines) > 1 else ""))
    frame = pd.read_csv(path, encoding_errors="surrogateescape", **options)
    mask = np.zeros(len(frame), dtype=bool)
    for name in frame.columns:
        mask |= frame[name].str.contains(_ESCAPED, regex=True).to_numpy()
    shown = ", ".join(str(n) for n in lines[:10]) + (" ..." if len(lines) > 10 else "")
    bad.log(f"  {Path(path).name}: line(s) {shown} are not valid UTF-8")
    return bad.drop(frame, mask, f"line not valid UTF-8 ({Path(path).name})")


_ESCAPED = "[\udc80-\udcff]"  # what `surrogateescape` makes of a byte that is not UTF-8


def read_raw_csv(path, required: Sequence[str], optional: Sequence[str] = (), sep: str = ",",
                 bad: Optional[BadRows] = None) -> pd.DataFrame:
    """Read the named columns of a raw CSV as strings (empty = missing). Header names are matched after stripping
    whitespace (Taobao's `new_user_class_level ` has a trailing space); the result uses the stripped names. A
    missing required column is a ValueError naming it and the file; rows that are not UTF-8 go as in
    `read_table`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"raw file {path} not found")
    stripped = [h.strip() for h in read_header(path, sep)]
    require_columns(stripped, required, path)
    wanted = [c for c in list(required) + list(optional) if c in stripped]
    positions = [stripped.index(c) for c in wanted]
    frame = read_table(path, bad, sep=sep, header=0, usecols=positions)
    frame.columns = [stripped[i] for i in sorted(positions)]
    return frame[wanted]


def glob_one(raw_dir, pattern: str, required: bool = True) -> Optional[Path]:
    """The single file matching `pattern` in `raw_dir` (error if several, or none when required)."""
    matches = sorted(Path(raw_dir).glob(pattern))
    if len(matches) > 1:
        raise ValueError(f"{raw_dir}: several files match {pattern!r}: {[m.name for m in matches]}; keep one")
    if not matches:
        if required:
            raise FileNotFoundError(f"{raw_dir}: no file matches {pattern!r}")
        return None
    return matches[0]


def join_side(frame: pd.DataFrame, side: pd.DataFrame, left: str, right: str, path, unmatched: dict,
              log=None) -> pd.DataFrame:
    """Left-join side features on `left == right`; counts rows without a side row in `unmatched[file name]`.
    Duplicate keys in the side table are an error naming the file."""
    log = log or progress
    dup = int(side[right].duplicated().sum())
    if dup:
        raise ValueError(f"{path}: {dup} duplicate value(s) of {right!r}; it should identify rows")
    side = side.rename(columns={right: left}) if right != left else side
    new = [c for c in side.columns if c != left and c not in frame.columns]
    out = frame.merge(side[[left] + new], on=left, how="left", indicator="__matched__")
    out.index = frame.index
    missing = int((out.pop("__matched__") != "both").sum())
    unmatched[Path(path).name] = missing
    if missing:
        log(f"  {missing:,} row(s) have no row in {Path(path).name}: their {new} are written as missing")
    return out
