"""A general importer for RecBole atomic files (`.inter`, `.user`, `.item`) into the span layout.

Atomic files are tab-separated with a header of `field:type` entries, type one of `token`, `token_seq`, `float`,
`float_seq` (https://recbole.io/docs/user_guide/data/atomic_files.html). Interactions are joined with the user and
item files on `user_field` / `item_field`; the domain, the label and the periods come from rules (see
`diit_tf/data/convert.py`), so any atomic dataset can be cut into cross-domain periods.

Example (MovieLens-1M as in movielens.py):
  >>> build_atomic("data/ml", "ml-1m.inter", user="ml-1m.user", item="ml-1m.item",
  ...              domain=DomainRule("age", bins=(25, 35), names=("<25", "25-34", ">=35"), target="<25"),
  ...              label=LabelRule.parse("rating>=4"), period=PeriodRule("timestamp", periods=10),
  ...              categorical=("user_id", "item_id", "gender", "occupation"))
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from diit_tf.data.convert import (
    PERIOD, BadRows, DomainRule, LabelRule, PeriodRule, make_spec, read_header, read_table, write_periods)
from diit_tf.data.layout import progress

ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")
# Raised whenever the importer writes different rows for the same files and options (recorded in the recipe of
# named datasets built with it, so their caches are rebuilt).
IMPORTER_VERSION = 2


def read_atomic(path, bad: Optional[BadRows] = None) -> tuple:
    """Read one atomic file. Returns `(frame, types)`: every column as a string (empty = missing), columns named
    without their `:type` suffix, and `types` mapping each name to its RecBole type. A line that is not UTF-8 is
    dropped and counted in `bad` when given, else a ValueError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"atomic file {path} not found")
    header = read_header(path, "\t") if path.stat().st_size else [""]
    types, names = {}, []
    for entry in header:
        name, sep, kind = entry.rpartition(":")
        if not sep or not name or kind not in ATOMIC_TYPES:
            raise ValueError(f"{path}: header entry {entry!r} should be `field:type` with type one of "
                             f"{list(ATOMIC_TYPES)}")
        names.append(name)
        types[name] = kind
    frame = read_table(path, bad, sep="\t", header=0, names=names, quoting=csv.QUOTE_NONE)
    return frame, types


def import_atomic(inter, user=None, item=None, *, domain: DomainRule, label: LabelRule, period: PeriodRule,
                  categorical: Optional[Sequence[str]] = None, numeric: Optional[Sequence[str]] = None,
                  user_field: str = "user_id", item_field: str = "item_id", label_name: str = "label",
                  domain_name: str = "domain", max_buckets: int = 1 << 22, log=None):
    """Read, join and cut atomic files. Returns `(spec, frame, bad, info)`: the FeatureSpec, one table with the raw
    columns and a `PERIOD` column, the `BadRows` counts and a description of the period cut.

    Default features: every `token` field (categorical) and every `float` field (numeric) of the three files,
    except the fields the label, domain and period rules read. `token_seq` fields are used only when named, as
    their first token.
    """
    log = log or progress
    bad = BadRows(log)
    log(f"reading {inter}")
    frame, types = read_atomic(inter, bad)
    where = {name: Path(inter).name for name in frame.columns}
    for path, key in ((user, user_field), (item, item_field)):
        if path is None:
            continue
        log(f"reading {path}")
        side, side_types = read_atomic(path, bad)
        if key not in side.columns:
            raise ValueError(f"{path}: missing join column {key!r}; the header has {list(side.columns)}")
        if key not in frame.columns:
            raise ValueError(f"{inter}: missing join column {key!r}; the header has {list(frame.columns)}")
        dup = int(side[key].duplicated().sum())
        if dup:
            raise ValueError(f"{path}: {dup} duplicate value(s) of {key!r}; it should identify rows")
        new = [c for c in side.columns if c != key and c not in frame.columns]
        frame = frame.merge(side[[key] + new], on=key, how="left", indicator="__matched__")
        unmatched = (frame.pop("__matched__") != "both").to_numpy()
        info_unmatched = int(unmatched.sum())
        if info_unmatched:
            log(f"  {info_unmatched:,} interaction(s) have no row in {Path(path).name} (their {new} are missing)")
        for c in new:
            types[c] = side_types[c]
            where[c] = Path(path).name
    used = {label.field, domain.field, period.field}
    for field in used:
        if field not in frame.columns:
            raise ValueError(f"field {field!r} (used by the label/domain/period rule) is in none of the atomic files "
                             f"{[str(p) for p in (inter, user, item) if p]}; fields: {list(frame.columns)}")
    # A default never contradicts the other, explicit list: fields named numeric are not categorical by default,
    # and fields named categorical are not numeric by default.
    if categorical is None:
        categorical = [c for c in frame.columns if types[c] == "token" and c not in used and c not in (numeric or ())]
    if numeric is None:
        numeric = [c for c in frame.columns if types[c] == "float" and c not in used and c not in categorical]
    for name in list(categorical) + list(numeric):
        if name not in frame.columns:
            raise ValueError(f"feature {name!r} is in none of the atomic files; fields: {list(frame.columns)}")
    names = f"{Path(inter).stem} atomic files"
    frame, labels = label.apply(frame, bad, names)
    frame, domains = domain.apply(frame, bad, names)
    out = pd.DataFrame(index=frame.index)
    for name in categorical:
        values = frame[name]
        if types[name].endswith("_seq"):
            values = values.str.split(" ").str[0]
        out[name] = values
    for name in numeric:
        values = pd.to_numeric(frame[name].replace("", None), errors="coerce")
        missing = values.isna().to_numpy()
        if missing.any():
            out, frame = out.loc[~missing], bad.drop(frame, missing, f"{name} missing or not a number ({names})")
            values = values.loc[frame.index]
        out[name] = values.astype("float64")
    out[label_name] = labels.loc[out.index]
    out[domain_name] = domains.loc[out.index]
    frame = frame.loc[out.index]
    frame, periods, period_info = period.apply(frame, bad, names)
    out = out.loc[frame.index]
    out[PERIOD] = periods
    domain_names, target = domain.domains_and_target(out[domain_name])
    spec = make_spec(out, categorical, numeric, label_name, domain_name, domain_names, target, max_buckets)
    info = {"period": period_info, "feature_source_file": {n: where[n] for n in spec.feature_names}}
    return spec, out, bad, info


def build_atomic(out_dir, inter, user=None, item=None, *, dataset: str = "recbole", overwrite: bool = False,
                 log=None, built_with: Optional[dict] = None, extra: Optional[dict] = None, **options) -> dict:
    """`import_atomic` then write the span layout at `out_dir`; `extra` goes into metadata.json as it is (e.g. a
    design's `ground_truth`). Returns the metadata."""
    log = log or progress
    spec, frame, bad, info = import_atomic(inter, user, item, log=log, **options)
    log(f"writing {len(frame):,} rows in {frame[PERIOD].nunique()} span(s) to {out_dir}")
    record = {
        "importer": "diit_tf.data.recbole",
        "files": [Path(p).name for p in (inter, user, item) if p],
        "label_rule": str(options["label"]),
        "domain_rule": {"field": options["domain"].field, "bins": list(options["domain"].bins),
                        "names": list(options["domain"].bin_names) if options["domain"].bins else [],
                        "keep": list(options["domain"].keep),
                        **({"split_by": options["domain"].split_by} if options["domain"].split_by else {}),
                        **({"split_groups": [[g, list(v)] for g, v in options["domain"].split_groups]}
                           if options["domain"].split_groups else {})},
        "period_rule": info["period"],
        "feature_source_file": info["feature_source_file"],
    }
    record.update(built_with or {})
    return write_periods(out_dir, frame, spec, dataset=dataset, built_with=record, bad=bad, overwrite=overwrite,
                         log=log, extra=extra)
