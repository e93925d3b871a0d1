"""Taobao display advertising (Tianchi dataset 56, web only) from its raw files into the span layout.

Raw files in `raw_dir`:
  `raw_sample.csv`: user, time_stamp, adgroup_id, pid, nonclk, clk
  `ad_feature.csv`: adgroup_id, cate_id, campaign_id, customer, brand, price
  `user_profile.csv`: userid, cms_segid, cms_group_id, final_gender_code, age_level, pvalue_level, shopping_level,
      occupation, `new_user_class_level ` (the raw header has a trailing space; headers are matched stripped)
As in the paper: domain = city level `new_user_class_level` (1-4, named `city_1`..`city_4`), label = `clk`,
period = day of `time_stamp` (unix seconds; days in Beijing time, UTC+8, by default: the 8 days 2017-05-06..13).

Bad rows (dropped, counted by reason): empty user or adgroup_id, clk not 0/1, clk and nonclk both 0 or both 1,
time_stamp not a number, user without a profile row or with an empty/unknown city level. Rows whose ad has no
`ad_feature.csv` row keep the missing token for the ad features and price 0 (counted in `unmatched_rows`).

Features: categorical user, adgroup_id, pid, cate_id, campaign_id, customer, brand and the profile fields;
numeric `log_price` = log1p(price).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from diit_tf.data.convert import (PERIOD, BadRows, DomainRule, LabelRule, PeriodRule, join_side, make_spec,
                                  read_raw_csv, write_periods)
from diit_tf.data.layout import progress

SAMPLE = ("raw_sample.csv", ("user", "time_stamp", "adgroup_id", "pid", "nonclk", "clk"))
AD = ("ad_feature.csv", ("adgroup_id", "cate_id", "campaign_id", "customer", "brand", "price"))
PROFILE = ("user_profile.csv", ("userid", "cms_segid", "cms_group_id", "final_gender_code", "age_level",
                                "pvalue_level", "shopping_level", "occupation", "new_user_class_level"))
CITY = "new_user_class_level"
CITY_LEVELS = ("1", "2", "3", "4")
NUMERIC = ("log_price",)


def convert_taobao(raw_dir, *, target: str = "", periods: int = 0, utc_offset_hours: float = 8.0, log=None):
    """Read and join the raw files. Returns `(spec, frame, bad, extra)` (see `write_periods`)."""
    log = log or progress
    period_rule = PeriodRule("time_stamp", mode="day", periods=periods, utc_offset_hours=utc_offset_hours)
    raw_dir = Path(raw_dir)  # the period rule is checked above, before the (large) raw files are read
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"Taobao raw directory {raw_dir} not found")
    bad = BadRows(log)
    sample_path, ad_path, profile_path = (raw_dir / name for name, _ in (SAMPLE, AD, PROFILE))
    log(f"reading {sample_path}")
    frame = read_raw_csv(sample_path, SAMPLE[1], bad=bad)
    log(f"  {len(frame):,} impressions")
    where = sample_path.name
    frame = bad.drop(frame, ((frame["user"].str.strip() == "") | (frame["adgroup_id"].str.strip() == "")).to_numpy(),
                     f"user or adgroup_id empty ({where})")
    frame, labels = LabelRule("clk").apply(frame, bad, where)
    nonclk = pd.to_numeric(frame["nonclk"], errors="coerce")
    frame = bad.drop(frame, (nonclk != 1 - labels).to_numpy(), f"clk and nonclk disagree ({where})")
    labels = labels.loc[frame.index]

    unmatched = {}
    log(f"reading {profile_path}")
    profile = read_raw_csv(profile_path, PROFILE[1], bad=bad)
    frame = join_side(frame, profile, "user", "userid", profile_path, unmatched, log)
    no_profile = frame["cms_segid"].isna().to_numpy()  # every profile row has the key column set
    frame = bad.drop(frame, no_profile, f"user has no row in {profile_path.name} (city level unknown)")
    city = frame[CITY].fillna("").str.strip()
    frame = bad.drop(frame, (city == "").to_numpy(), f"{CITY} missing ({profile_path.name})")
    city = frame[CITY].str.strip()
    frame = bad.drop(frame, (~city.isin(CITY_LEVELS)).to_numpy(), f"{CITY} not one of 1-4 ({profile_path.name})")
    frame[CITY] = frame[CITY].str.strip()

    log(f"reading {ad_path}")
    ads = read_raw_csv(ad_path, AD[1], bad=bad)
    frame = join_side(frame, ads, "adgroup_id", "adgroup_id", ad_path, unmatched, log)
    price = pd.to_numeric(frame.pop("price"), errors="coerce")
    unmatched["log_price filled with 0 (price missing)"] = int(price.isna().sum())
    frame["log_price"] = np.log1p(price.fillna(0.0).clip(lower=0.0))
    frame["brand"] = frame["brand"].replace("NULL", "")  # ad_feature.csv writes a missing brand as NULL

    rule = DomainRule(CITY, prefix="city_", target=target)
    frame, domain_names = rule.apply(frame, bad, profile_path.name)
    frame, span, period_info = period_rule.apply(frame, bad, where)
    categorical = ["user", "adgroup_id", "pid", "cate_id", "campaign_id", "customer", "brand"] + [
        c for c in PROFILE[1] if c not in ("userid", CITY)]
    out = frame[categorical + list(NUMERIC)].copy()
    out["clk"] = labels.loc[out.index]
    out["domain"] = domain_names.loc[out.index]
    out[PERIOD] = span
    names, target = rule.domains_and_target(out["domain"])
    names = tuple(sorted(names))  # city_1 .. city_4
    spec = make_spec(out, categorical, NUMERIC, "clk", "domain", names, target)
    extra = {"unmatched_rows": unmatched, "period_rule": period_info,
             "files": [SAMPLE[0], AD[0], PROFILE[0]]}
    return spec, out, bad, extra


def build_taobao(out_dir, raw_dir, overwrite: bool = False, log=None, **options) -> dict:
    """Convert raw Taobao files at `raw_dir` and write the span layout at `out_dir`. Returns the metadata."""
    log = log or progress
    spec, frame, bad, extra = convert_taobao(raw_dir, log=log, **options)
    built_with = {"converter": "diit_tf.data.taobao", "domain": CITY, "label": "clk", "period": "day of time_stamp",
                  **options, **extra}
    return write_periods(out_dir, frame, spec, dataset="taobao", built_with=built_with, bad=bad,
                         overwrite=overwrite, log=log)
