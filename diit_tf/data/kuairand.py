"""KuaiRand (kuairand.com, web only) from its raw files into the span layout.

Raw files in `raw_dir` (KuaiRand-Pure / -1K / -27K share the schema):
  `log_standard_*.csv`: user_id, video_id, date (YYYYMMDD), hourmin, time_ms, is_click, ..., is_rand, tab
  `user_features_*.csv`: user_id, user_active_degree, is_lowactive_period, is_live_streamer, is_video_author,
      follow_user_num(_range), fans_user_num(_range), friend_user_num(_range), register_days(_range), onehot_feat0..17
  `video_features_basic_*.csv`: video_id, author_id, video_type, upload_dt, upload_type, visible_status,
      video_duration, server_width, server_height, music_id, music_type, tag
As in the paper: domain = `tab` (named `tab_<value>`), label = `is_click`, period = `date` (one span per day, or
`days_per_period` days). The target is the smallest kept domain unless given. The random-exposure logs
(`log_random_*`) are not read. User and video feature files are optional; rows without a user/video row get the
missing token for those features (counted in metadata `unmatched_rows`).

Features: categorical user_id, video_id, hour (from hourmin), the user profile fields (ranges, not raw counts),
author_id, video_type, upload_type, music_type, first tag; numeric `log_duration_s` = log1p(video_duration / 1000).
Bad rows (dropped, counted by reason): empty user_id or video_id, is_click not 0/1, date not a number, empty tab.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from diit_tf.data.convert import (PERIOD, BadRows, DomainRule, LabelRule, PeriodRule, glob_one, join_side,
                                  make_spec, read_raw_csv, write_periods)
from diit_tf.data.layout import progress

LOG_COLUMNS = ("user_id", "video_id", "date", "hourmin", "is_click", "tab")
USER_COLUMNS = ("user_active_degree", "is_lowactive_period", "is_live_streamer", "is_video_author",
                "follow_user_num_range", "fans_user_num_range", "friend_user_num_range", "register_days_range")
USER_ONEHOT = tuple(f"onehot_feat{i}" for i in range(18))
VIDEO_COLUMNS = ("author_id", "video_type", "upload_type", "music_type", "tag")
VIDEO_NUMERIC = "video_duration"
NUMERIC = ("log_duration_s",)


def convert_kuairand(raw_dir, *, domains: Sequence[str] = (), max_domains: int = 0, target: str = "",
                     days_per_period: int = 1, periods: int = 0, log=None):
    """Read and join the raw files. Returns `(spec, frame, bad, extra)` (see `write_periods`)."""
    log = log or progress
    if max_domains < 0:
        raise ValueError(f"`max_domains` should be 0 (every tab) or a positive integer. Received: {max_domains!r}")
    if days_per_period < 1:
        raise ValueError(f"`days_per_period` should be a positive integer. Received: {days_per_period!r}")
    period_rule = PeriodRule("date", mode="value", periods=periods, group=days_per_period)  # checked before reading
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"KuaiRand raw directory {raw_dir} not found")
    log_files = sorted(raw_dir.glob("log_standard_*.csv"))
    if not log_files:
        raise FileNotFoundError(f"{raw_dir}: no log_standard_*.csv file (the KuaiRand interaction logs)")
    bad = BadRows(log)
    parts = []
    for path in log_files:
        log(f"reading {path}")
        part = read_raw_csv(path, LOG_COLUMNS, bad=bad)
        part = bad.drop(part, ((part["user_id"].str.strip() == "") | (part["video_id"].str.strip() == "")).to_numpy(),
                        f"user_id or video_id empty ({path.name})")
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    log(f"  {len(frame):,} log rows from {len(log_files)} file(s)")

    unmatched = {}
    categorical = ["user_id", "video_id", "hour"]
    user_path = glob_one(raw_dir, "user_features_*.csv", required=False)
    if user_path is not None:
        log(f"reading {user_path}")
        users = read_raw_csv(user_path, ("user_id",) + USER_COLUMNS, optional=USER_ONEHOT, bad=bad)
        frame = join_side(frame, users, "user_id", "user_id", user_path, unmatched, log)
        categorical += [c for c in users.columns if c != "user_id"]
    else:
        log(f"  no user_features_*.csv in {raw_dir}: user profile features left out")
    video_path = glob_one(raw_dir, "video_features_basic_*.csv", required=False)
    numeric = []
    if video_path is not None:
        log(f"reading {video_path}")
        videos = read_raw_csv(video_path, ("video_id",) + VIDEO_COLUMNS + (VIDEO_NUMERIC,), bad=bad)
        frame = join_side(frame, videos, "video_id", "video_id", video_path, unmatched, log)
        frame["tag"] = frame["tag"].str.split(",").str[0]
        categorical += list(VIDEO_COLUMNS)
        duration = pd.to_numeric(frame.pop(VIDEO_NUMERIC), errors="coerce")
        filled = int(duration.isna().sum())
        unmatched["log_duration_s filled with 0 (video_duration missing)"] = filled
        frame["log_duration_s"] = np.log1p(duration.fillna(0.0).clip(lower=0.0) / 1000.0)
        numeric = list(NUMERIC)
    else:
        log(f"  no video_features_basic_*.csv in {raw_dir}: video features left out")
    hourmin = pd.to_numeric(frame["hourmin"], errors="coerce")
    frame["hour"] = (hourmin // 100).astype("Int64").astype(str).replace("<NA>", "")

    where = "log_standard"
    frame, labels = LabelRule("is_click").apply(frame, bad, where)
    keep = tuple(domains)
    if max_domains and not keep:
        tabs = frame["tab"].str.strip()
        keep = tuple("tab_" + tabs[tabs != ""].value_counts().index[:max_domains])
        log(f"  keeping the {max_domains} largest tab(s): {list(keep)}")
    rule = DomainRule("tab", prefix="tab_", keep=keep, target=target)
    frame, domain_names = rule.apply(frame, bad, where)
    frame, span, period_info = period_rule.apply(frame, bad, where)
    out = frame[categorical + numeric].copy()
    out["is_click"] = labels.loc[out.index]
    out["domain"] = domain_names.loc[out.index]
    out[PERIOD] = span
    names, target = rule.domains_and_target(out["domain"])
    spec = make_spec(out, categorical, numeric, "is_click", "domain", names, target)
    extra = {"unmatched_rows": unmatched, "period_rule": period_info,
             "files": [p.name for p in log_files + [user_path, video_path] if p is not None]}
    return spec, out, bad, extra


def build_kuairand(out_dir, raw_dir, overwrite: bool = False, log=None, **options) -> dict:
    """Convert raw KuaiRand files at `raw_dir` and write the span layout at `out_dir`. Returns the metadata."""
    log = log or progress
    spec, frame, bad, extra = convert_kuairand(raw_dir, log=log, **options)
    built_with = {"converter": "diit_tf.data.kuairand", "domain": "tab", "label": "is_click", "period": "date",
                  **{k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()}, **extra}
    return write_periods(out_dir, frame, spec, dataset="kuairand", built_with=built_with, bad=bad,
                         overwrite=overwrite, log=log)
