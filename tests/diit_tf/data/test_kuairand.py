"""The KuaiRand converter on a fixture written in the raw KuaiRand schema."""
import math

import pytest

from diit_tf.data import list_spans, load_period, read_span
from diit_tf.data.kuairand import build_kuairand, convert_kuairand

QUIET = lambda line: None  # noqa: E731
LOG_HEADER = ("user_id,video_id,date,hourmin,time_ms,is_click,is_like,is_follow,is_comment,is_forward,is_hate,"
              "long_view,play_time_ms,duration_ms,profile_stay_time,comment_stay_time,is_profile_enter,is_rand,tab")


def log_row(user, video, date, hourmin, click, tab):
    return f"{user},{video},{date},{hourmin},1649400000000,{click},0,0,0,0,0,0,1000,2000,0,0,0,0,{tab}"


LOG_1 = [
    log_row(0, 10, 20220408, 1500, 1, 1),
    log_row(1, 11, 20220408, 900, 0, 1),
    log_row(0, 11, 20220408, 2300, 0, 0),
    log_row(2, 12, 20220409, 1000, 1, 4),
    log_row(1, 10, 20220409, 1100, 1, 1),
    log_row(2, 10, 20220409, 1200, 2, 1),     # bad: is_click 2
    log_row("", 10, 20220409, 1200, 0, 1),    # bad: empty user_id
    log_row(3, 13, 20220410, 800, 0, 0),      # user 3 and video 13 have no feature rows
    log_row(1, 12, 20220410, 800, 0, ""),     # bad: empty tab
    log_row(0, 12, "x", 800, 0, 0),           # bad: date
]
LOG_2 = [log_row(0, 10, 20220422, 1000, 1, 1)]
USER_HEADER = ("user_id,user_active_degree,is_lowactive_period,is_live_streamer,is_video_author,follow_user_num,"
               "follow_user_num_range,fans_user_num,fans_user_num_range,friend_user_num,friend_user_num_range,"
               "register_days,register_days_range," + ",".join(f"onehot_feat{i}" for i in range(18)))
VIDEO_HEADER = ("video_id,author_id,video_type,upload_dt,upload_type,visible_status,video_duration,server_width,"
                "server_height,music_id,music_type,tag")


def write_fixture(raw, log_header=LOG_HEADER):
    raw.mkdir(exist_ok=True)
    (raw / "log_standard_4_08_to_4_21_pure.csv").write_text("\n".join([log_header] + LOG_1) + "\n")
    (raw / "log_standard_4_22_to_5_08_pure.csv").write_text("\n".join([LOG_HEADER] + LOG_2) + "\n")
    (raw / "log_random_4_22_to_5_08_pure.csv").write_text("\n".join([LOG_HEADER, log_row(9, 9, 20220422, 1, 1, 1)]))
    users = [f"{u},high_active,0,0,0,5,(0 10],3,[1 10),0,0,200,61-90," + ",".join(["1"] * 18) for u in (0, 1, 2)]
    (raw / "user_features_pure.csv").write_text("\n".join([USER_HEADER] + users) + "\n")
    videos = ['10,100,NORMAL,2022-01-01,1,public,15000.0,720,1280,5,1,"28,7"',
              "11,101,AD,2022-01-02,2,public,,720,1280,6,2,9",
              "12,100,NORMAL,2022-01-03,1,public,999.0,720,1280,7,1,"]
    (raw / "video_features_basic_pure.csv").write_text("\n".join([VIDEO_HEADER] + videos) + "\n")
    return raw


@pytest.mark.slow
def test_convert_counts_bad_rows_and_cuts_days(tmp_path):
    raw = write_fixture(tmp_path / "raw")
    out = tmp_path / "kr"
    metadata = build_kuairand(out, raw, log=QUIET)
    spec = metadata["feature_spec"]
    assert spec["label"] == "is_click" and spec["domain"] == "domain"
    assert spec["domains"] == ["tab_1", "tab_0", "tab_4"] and spec["target"] == "tab_4"  # largest first; smallest
    assert metadata["bad_rows"] == {
        "user_id or video_id empty (log_standard_4_08_to_4_21_pure.csv)": 1,
        "user_id or video_id empty (log_standard_4_22_to_5_08_pure.csv)": 0,
        "is_click missing or not a number (log_standard)": 0,
        "is_click not 0/1 (log_standard)": 1,
        "tab missing (log_standard)": 1,
        "date missing or not a number (log_standard)": 1,
    }
    # one span per date, in date order; the random-exposure log is not read
    assert metadata["built_with"]["period_rule"]["values_of_span"] == {
        "1": ["20220408"], "2": ["20220409"], "3": ["20220410"], "4": ["20220422"]}
    assert metadata["rows_per_period_per_domain"] == {
        "1": {"tab_1": 2, "tab_0": 1, "tab_4": 0}, "2": {"tab_1": 1, "tab_0": 0, "tab_4": 1},
        "3": {"tab_1": 0, "tab_0": 1, "tab_4": 0}, "4": {"tab_1": 1, "tab_0": 0, "tab_4": 0}}
    assert metadata["built_with"]["unmatched_rows"]["user_features_pure.csv"] == 1
    assert metadata["built_with"]["unmatched_rows"]["video_features_basic_pure.csv"] == 1
    assert list_spans(out) == [1, 2, 3, 4]
    span = read_span(out, 1)
    assert span["hour"].tolist() == ["15", "9", "23"]
    assert span["tag"].tolist() == ["28", "9", "9"]  # first tag of "28,7"
    assert span["fans_user_num_range"].tolist() == ["[1 10)"] * 3
    assert span["is_click"].tolist() == [1, 0, 0]
    # video 11 has no duration: log_duration_s filled with 0
    assert span["log_duration_s"].tolist() == pytest.approx([math.log1p(15.0), 0.0, 0.0])
    third = read_span(out, 3)
    assert third["user_active_degree"].tolist() == ["<missing>"] and third["author_id"].tolist() == ["<missing>"]
    assert "onehot_feat17" in spec["categorical"] and spec["numeric"] == ["log_duration_s"]
    assert len(load_period(out, 2)) == 2


def test_max_domains_keeps_largest_and_counts_excluded(tmp_path):
    raw = write_fixture(tmp_path / "raw")
    spec, frame, bad, _ = convert_kuairand(raw, max_domains=2, log=QUIET)
    assert spec.domains == ("tab_1", "tab_0") and spec.target == "tab_0"
    assert bad.excluded == {"domain not in ['tab_1', 'tab_0']": 1}
    spec, frame, bad, _ = convert_kuairand(raw, domains=("tab_0", "tab_1"), target="tab_1", days_per_period=2,
                                           log=QUIET)
    assert spec.domains == ("tab_0", "tab_1") and spec.target == "tab_1"
    assert frame.groupby("__period__").size().to_dict() == {1: 4, 2: 2}  # {0408, 0409} and {0410, 0422}


def test_missing_column_names_column_and_file(tmp_path):
    raw = write_fixture(tmp_path / "raw", log_header=LOG_HEADER.replace(",tab", ",tab_name"))
    with pytest.raises(ValueError, match=r"log_standard_4_08_to_4_21_pure.csv: missing column\(s\) \['tab'\]"):
        convert_kuairand(raw, log=QUIET)


def test_no_logs_is_an_error(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(FileNotFoundError, match="log_standard"):
        convert_kuairand(tmp_path / "raw", log=QUIET)


def test_bad_period_and_domain_options_are_one_clear_error(tmp_path):
    """Negative --periods, --max-domains and a zero --days-per-period are refused before the raw files are read (an
    empty raw directory would be a FileNotFoundError); --domains naming no tab present names what is there (both
    were an IndexError traceback)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    for options, message in (({"periods": -1}, r"`periods` should be 0 \(every period\) or a positive integer"),
                             ({"max_domains": -3}, r"`max_domains` should be 0 \(every tab\) or a positive integer"),
                             ({"days_per_period": 0}, r"`days_per_period` should be a positive integer")):
        with pytest.raises(ValueError, match=message):
            convert_kuairand(empty, log=QUIET, **options)
    raw = write_fixture(tmp_path / "raw")
    with pytest.raises(ValueError, match=r"no row has a domain in \['tab_9'\] \(log_standard\); domains present: "
                                         r"\['tab_0', 'tab_1', 'tab_4'\]"):
        convert_kuairand(raw, domains=("tab_9",), log=QUIET)


def test_period_rule_with_no_rows_left_is_a_clear_error():
    import pandas as pd

    from diit_tf.data.convert import BadRows, PeriodRule

    frame = pd.DataFrame({"date": ["x", ""]})  # every period value unparseable: dropped
    with pytest.raises(ValueError, match=r"no rows left to cut into periods by 'date' \(here\)"):
        PeriodRule("date", mode="value").apply(frame, BadRows(QUIET), "here")


def test_the_command_refuses_an_existing_out_before_reading_the_raw_files(tmp_path, monkeypatch, capsys):
    """`diit data kuairand --out <a dataset>` without --overwrite stops before any raw file is read (the raw
    directory here does not exist, which would be the error otherwise); with --overwrite the raw files are read."""
    from diit_tf import cli

    out = tmp_path / "out"
    out.mkdir()
    (out / "metadata.json").write_text("{}")
    assert cli.main(["data", "kuairand", "--raw-dir", str(tmp_path / "nowhere"), "--out", str(out)]) == 1
    assert capsys.readouterr().err.strip() == (f"diit data: error: {out} already exists and is not empty; pass "
                                               f"--overwrite (overwrite=True) to replace it")
    assert cli.main(["data", "kuairand", "--raw-dir", str(tmp_path / "nowhere"), "--out", str(out),
                     "--overwrite"]) == 1
    raw = tmp_path / "nowhere"
    assert capsys.readouterr().err.strip() == f"diit data: error: KuaiRand raw directory {raw} not found"
    assert (out / "metadata.json").read_text() == "{}"      # nothing replaced by the failed build
