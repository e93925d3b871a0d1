"""The Taobao display-ad converter on a fixture written in the raw Tianchi schema (trailing-space header)."""
import math

import pytest

from diit_tf.data import list_spans, load_period, read_span
from diit_tf.data.taobao import build_taobao, convert_taobao

QUIET = lambda line: None  # noqa: E731
DAY = 86400
T0 = 1494000000  # 2017-05-05 16:00 UTC = 2017-05-06 00:00 Beijing
SAMPLE = [
    "user,time_stamp,adgroup_id,pid,nonclk,clk",
    f"1,{T0 + 3600},11,430548_1007,1,0",
    f"2,{T0 + 7200},12,430539_1007,0,1",
    f"3,{T0 + DAY + 100},11,430548_1007,1,0",
    f"1,{T0 + DAY + 200},13,430548_1007,0,1",   # ad 13 has no ad_feature row
    f"4,{T0 + 100},11,430548_1007,1,0",         # bad: user 4 has no profile
    f"5,{T0 + 100},11,430548_1007,1,0",         # bad: user 5 has no city level
    f"2,{T0 + 100},11,430548_1007,1,1",         # bad: clk and nonclk disagree
    "2,x,11,430548_1007,1,0",                   # bad: time_stamp
    f"3,{T0 - 10},12,430548_1007,1,0",          # 2017-05-05 23:59:50 Beijing
]
PROFILE_HEADER = ("userid,cms_segid,cms_group_id,final_gender_code,age_level,pvalue_level,shopping_level,occupation,"
                  "new_user_class_level ")
PROFILE = [PROFILE_HEADER, "1,0,5,2,5,,3,0,2", "2,0,1,1,1,1,3,0,3", "3,0,2,2,2,2,3,1,2 ", "5,0,2,2,2,2,3,1,"]
ADS = ["adgroup_id,cate_id,campaign_id,customer,brand,price", "11,6406,83237,1,NULL,99.0", "12,4520,5,7,123,0.5"]


def write_fixture(raw, profile=PROFILE, sample=SAMPLE):
    raw.mkdir(exist_ok=True)
    (raw / "raw_sample.csv").write_text("\n".join(sample) + "\n")
    (raw / "user_profile.csv").write_text("\n".join(profile) + "\n")
    (raw / "ad_feature.csv").write_text("\n".join(ADS) + "\n")
    return raw


def test_convert_domains_labels_days_and_bad_rows(tmp_path):
    out = tmp_path / "tb"
    metadata = build_taobao(out, write_fixture(tmp_path / "raw"), log=QUIET)
    spec = metadata["feature_spec"]
    assert spec["domains"] == ["city_2", "city_3"] and spec["target"] == "city_3"
    assert spec["label"] == "clk" and spec["numeric"] == ["log_price"]
    assert "new_user_class_level" not in spec["categorical"] and "pvalue_level" in spec["categorical"]
    assert {k: v for k, v in metadata["bad_rows"].items() if v} == {
        "clk and nonclk disagree (raw_sample.csv)": 1,
        "user has no row in user_profile.csv (city level unknown)": 1,
        "new_user_class_level missing (user_profile.csv)": 1,
        "time_stamp missing or not a number (raw_sample.csv)": 1,
    }
    # Beijing days: 05-05 (1 row), 05-06 (2 rows), 05-07 (2 rows)
    assert metadata["built_with"]["period_rule"]["values_of_span"] == {
        "1": ["2017-05-05"], "2": ["2017-05-06"], "3": ["2017-05-07"]}
    assert metadata["rows_per_period_per_domain"] == {
        "1": {"city_2": 1, "city_3": 0}, "2": {"city_2": 1, "city_3": 1}, "3": {"city_2": 2, "city_3": 0}}
    assert metadata["built_with"]["unmatched_rows"]["ad_feature.csv"] == 1
    assert list_spans(out) == [1, 2, 3]
    span = read_span(out, 2)
    assert span["user"].tolist() == ["1", "2"] and span["clk"].tolist() == [0, 1]
    assert span["brand"].tolist() == ["<missing>", "123"]  # NULL brand
    assert span["pvalue_level"].tolist() == ["<missing>", "1"]
    assert span["log_price"].tolist() == pytest.approx([math.log1p(99.0), math.log1p(0.5)])
    third = read_span(out, 3)
    assert third["log_price"].tolist() == pytest.approx([math.log1p(99.0), 0.0])  # ad 13: no price
    assert load_period(out, 3).domains.tolist() == ["city_2", "city_2"]


def test_utc_days_and_last_periods(tmp_path):
    raw = write_fixture(tmp_path / "raw")
    spec, frame, bad, extra = convert_taobao(raw, utc_offset_hours=0, log=QUIET)
    assert frame.groupby("__period__").size().to_dict() == {1: 3, 2: 2}
    spec, frame, bad, extra = convert_taobao(raw, periods=2, log=QUIET)
    assert frame.groupby("__period__").size().to_dict() == {1: 2, 2: 2}
    assert bad.excluded == {"before the last 2 period(s)": 1}


def test_trailing_space_header_is_accepted_and_missing_column_named(tmp_path):
    profile = [PROFILE_HEADER.replace("new_user_class_level ", "new_user_class_level")] + PROFILE[1:]
    spec, *_ = convert_taobao(write_fixture(tmp_path / "a", profile=profile), log=QUIET)
    assert spec.domains == ("city_2", "city_3")
    profile = [PROFILE_HEADER.replace(",new_user_class_level ", "")] + [r.rsplit(",", 1)[0] for r in PROFILE[1:]]
    with pytest.raises(ValueError, match=r"user_profile.csv: missing column\(s\) \['new_user_class_level'\]"):
        convert_taobao(write_fixture(tmp_path / "b", profile=profile), log=QUIET)
    sample = [SAMPLE[0].replace(",clk", ",click")] + SAMPLE[1:]
    with pytest.raises(ValueError, match=r"raw_sample.csv: missing column\(s\) \['clk'\]"):
        convert_taobao(write_fixture(tmp_path / "c", sample=sample), log=QUIET)
