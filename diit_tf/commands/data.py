"""`diit data`: build datasets in the period-partitioned span layout, and describe them.

    diit data synthetic --out data/synthetic [--seed 0 --periods 8 --rows-target 3000 --rows-source 15000,12000]
    diit data movielens-1m --out data/ml-1m [--periods 10 --cache-dir ~/.cache/diit-tf]
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


def _run(build):
    """Run a build; turn an existing-output error into a clean message and exit code 1."""
    try:
        return build()
    except FileExistsError as err:
        print(f"diit data: error: {err}", file=sys.stderr)
        return 1


# ------------------------------------------------------------------------------------------------------ synthetic
def _register_synthetic(sub) -> None:
    from_defaults = _synthetic_defaults()
    p = sub.add_parser(
        "synthetic",
        help="the embedded synthetic dataset (deterministic by seed)",
        description="Generate the synthetic cross-domain CTR dataset: a small target domain and larger source "
        "domains sharing users and items; click logits = shared part (weight --shared-weight) + domain-specific "
        "part, drifting from period to period (--drift). Deterministic by --seed. " + LAYOUT_HELP,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_common(p)
    d = from_defaults
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")
    p.add_argument("--periods", type=int, default=d.periods, help="number of periods (spans)")
    p.add_argument("--rows-target", type=int, default=d.rows_target, help="target-domain rows per period")
    p.add_argument("--rows-source", type=_int_list, default=d.rows_source,
                   help="rows per period of each source domain, comma-separated (one value per source)")
    p.add_argument("--users", type=int, default=d.users, help="size of the user pool")
    p.add_argument("--items", type=int, default=d.items, help="size of the item pool")
    p.add_argument("--user-groups", type=int, default=d.user_groups, help="cardinality of user_group")
    p.add_argument("--item-categories", type=int, default=d.item_categories, help="cardinality of item_category")
    p.add_argument("--dim", type=int, default=d.dim, help="latent dimension of the ground truth")
    p.add_argument("--shared-weight", type=float, default=d.shared_weight,
                   help="share of logit variance common to all domains (0: unrelated domains, 1: identical)")
    p.add_argument("--drift", type=float, default=d.drift, help="per-period random-walk step of the latent factors")
    p.add_argument("--overlap", type=float, default=d.overlap,
                   help="probability that a user/item also appears in a domain that is not its home")
    p.add_argument("--signal", type=float, default=d.signal, help="scale of the click logit")
    p.add_argument("--ctr", type=float, default=d.ctr, help="click rate of every domain in period 1")
    p.set_defaults(func=_synthetic)


def _synthetic_defaults():
    from diit_tf.data.synthetic import SyntheticConfig

    return SyntheticConfig()


def _synthetic(args) -> int:
    from diit_tf.data.synthetic import SyntheticConfig, build_synthetic

    config = SyntheticConfig(
        seed=args.seed, periods=args.periods, rows_target=args.rows_target, rows_source=args.rows_source,
        users=args.users, items=args.items, user_groups=args.user_groups, item_categories=args.item_categories,
        dim=args.dim, shared_weight=args.shared_weight, drift=args.drift, overlap=args.overlap,
        signal=args.signal, ctr=args.ctr,
    )

    def build():
        metadata = build_synthetic(args.out, config, overwrite=args.overwrite)
        _summary(args.out, metadata)
        return 0

    return _run(build)


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
        print("bad rows (dropped): " + ", ".join(f"{k} {v:,}" for k, v in bad.items()))
