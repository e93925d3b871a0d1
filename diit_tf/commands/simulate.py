"""`diit simulate`: the industrial period simulation, DIIT against baselines and ablations, with a report.

    diit simulate --dataset synthetic --backbone dnn --seeds 3 --methods all --out runs/sim-synthetic
    diit simulate --dataset movielens-1m --seeds 3 --hparams best_hparams.json --out runs/sim-ml
    diit simulate --dataset data/my-dataset --methods base,diit,joint --validation --out runs/val
"""
from __future__ import annotations

import argparse
import shlex
import sys

from diit_tf.commands._argtypes import add_dataset_arguments, check_directory, positive_float, positive_int


def _seed_list(text):
    """`--seed-list`: comma-separated seeds, each an integer in [0, 2**32) (what NumPy and Keras take)."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not seeds or not all(0 <= s < 2 ** 32 for s in seeds):
        raise argparse.ArgumentTypeError(f"expected one or more comma-separated seeds in [0, 2**32), got {text!r}")
    return seeds


def register(subparsers) -> None:
    from diit_tf.simulation.catalog import ALL_METHODS, NAMED as NAMED_METHODS

    method_help = "; ".join(f"{name}: {desc}" for name, desc in NAMED_METHODS.items())
    parser = subparsers.add_parser(
        "simulate",
        help="period-by-period simulation: DIIT vs baselines and ablations, with a report",
        description=(
            "Run the industrial protocol: every domain's model is trained incrementally (warm start, one period at "
            "a time, its own rows only); from the insertion period on the target model is trained with DIIT (or a "
            "baseline) from the latest frozen source models; every model trained through period p is scored on "
            "period p+1 of the target domain. Writes OUT/report.md, OUT/results.json, OUT/details.json and "
            "OUT/auc_per_period.png. Progress goes to stderr, one line per period."),
        epilog=f"Methods: {method_help}.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataset_arguments(parser, default="synthetic")
    parser.add_argument("--backbone", default="dnn", choices=["dnn", "dcn", "wdl"],
                        help="backbone of every model (default: dnn)")
    parser.add_argument("--seeds", type=positive_int, default=3, metavar="N",
                        help="number of seeds 0..N-1 (default: 3)")
    parser.add_argument("--seed-list", type=_seed_list, default=None, metavar="S1,S2",
                        help="explicit comma-separated seeds (overrides --seeds)")
    parser.add_argument("--methods", default="all",
                        help=f"comma-separated methods or 'all' (default). base is always run. 'all' is: "
                             f"{', '.join(ALL_METHODS)}; by name only: "
                             f"{', '.join(n for n in NAMED_METHODS if n not in ALL_METHODS)}")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="report directory to write; one that already holds a run's results.json (or, with "
                             "--tune, best_hparams.json) is refused unless --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results of an earlier run at --out")
    parser.add_argument("--hparams", default=None, metavar="JSON",
                        help="hyperparameter file, a bundled preset (synthetic, movielens-1m: chosen on validation "
                             "periods, see docs/results.md) or 'none' (built-in defaults): training budget, backbone "
                             "widths, per-method options; see diit_tf/simulation/hparams.py. Default: the preset "
                             "validated on the dataset (a named dataset built with its current recipe), else the "
                             "built-in defaults")
    parser.add_argument("--insertion-period", type=positive_int, default=None, metavar="P0",
                        help="first period trained with DIIT / the transfer methods (default: from --hparams, else "
                             "the period after the first third)")
    parser.add_argument("--periods", type=positive_int, default=None, metavar="N",
                        help="use only the first N periods of the dataset")
    parser.add_argument("--validation", action="store_true",
                        help="validation protocol for choosing hyperparameters: use only periods up to the insertion "
                             "period P0 and insert two periods earlier, so nothing evaluated is ever a test period")
    parser.add_argument("--tune", choices=["budget", "transfer"], default=None,
                        help="choose hyperparameters on the validation periods instead of running the test: "
                             "'budget' = learning rate x epochs on the base (shared by every method), 'transfer' = "
                             "coordinate search over DIIT's, KD's and DANN's options. Writes OUT/best_hparams.json "
                             "(starting from --hparams) and OUT/tuning.md")
    parser.add_argument("--tune-grid", default=None, metavar="SPEC",
                        help="transfer grid, e.g. 'diit.beta2=0.5,1,2;diit.gate_supervision=0,0.5;kd_uniform.beta=1,2' "
                             "(default: the grid in diit_tf/simulation/validation.py)")
    parser.add_argument("--source-cache", default=None, metavar="DIR",
                        help="reuse source models trained by an earlier run with the same dataset, backbone, budget, "
                             "seed and code (keyed by all of them; for sweeps; see diit_tf/simulation/source_cache.py)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="override training.epochs")
    parser.add_argument("--learning-rate", type=positive_float, default=None,
                        help="override training.learning_rate (every method without its own)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="override training.batch_size")
    parser.add_argument("--diit", action="append", default=[], metavar="KEY=VALUE",
                        help="override a DIITConfig option for DIIT and its ablations (repeatable), e.g. "
                             "--diit beta2=1.0 --diit gate_supervision=0.5")
    parser.add_argument("--option", action="append", default=[], metavar="METHOD.KEY=VALUE",
                        help="override one method option of --hparams (repeatable; the value is JSON, else a "
                             "string), e.g. --option kd_static.beta=2 --option kd_static.weighting=softmax "
                             "--option hamur.hyper_units=[64]; diit.KEY sets a DIITConfig option, as in --tune-grid")
    parser.add_argument("--train-share", type=positive_float, default=1.0, metavar="F",
                        help="train every model on a fixed random share F in (0, 1] of each period's rows (the same "
                             "rows for every seed and method), as the TFX pipeline trains on the train split of each "
                             "span; evaluation always uses every target row of the next period (default: 1)")
    parser.add_argument("--tensorboard", default=None, metavar="DIR",
                        help="also write TensorBoard logs, one run per method and seed (DIR/<method>/seed-<s>): "
                             "training losses by name and DIIT's gate weight per source per period, target AUC and "
                             "LogLoss per evaluated period; open with `tensorboard --logdir DIR`")
    parser.set_defaults(func=run)


def _quiet_training_logs() -> None:
    """Per-model retracing notices and the one-source gate's softmax warning are expected here: hide them."""
    import warnings

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    warnings.filterwarnings("ignore", message="You are using a softmax over axis -1 of a tensor of shape")


def _default_hparams(choice, data_dir):
    """`--hparams none`: the built-in defaults; unset: the preset validated on the dataset at `data_dir`
    (diit_tf.data.registry.preset_of), else the built-in defaults."""
    from diit_tf.data.registry import preset_of
    from diit_tf.simulation.hparams import Hparams
    from diit_tf.simulation.protocol import default_log

    preset = preset_of(data_dir) if choice is None else None
    if preset is None:
        if choice is None:
            default_log("hyperparameters: the built-in defaults (no preset was validated on this dataset)")
        return Hparams()
    default_log(f"hyperparameters: preset {preset!r} (chosen on validation periods of this dataset; --hparams none "
                f"for the built-in defaults)")
    return Hparams.load(preset)


def _row_groups(data_dir, spec):
    """For a benchmark whose ground truth says which source is relevant on which rows (metadata.json's
    `ground_truth.relevance`, e.g. synthetic-regional-experts' item categories, movielens-1m-age-gender's gender):
    the region of each row, so the report splits the gate weights by region. None for other datasets."""
    from diit_tf.data import read_metadata
    from diit_tf.data.regions import regions_of

    region = regions_of((read_metadata(data_dir).get("ground_truth") or {}).get("relevance"), spec)
    return None if region is None else (lambda rows: region(rows.features))


def _check_out(out, overwrite: bool) -> None:
    """--out is a directory to write (or to create, `check_directory`); one holding an earlier run's results needs
    --overwrite."""
    from pathlib import Path

    check_directory("--out", out)
    path = Path(out)
    held = [name for name in ("results.json", "best_hparams.json") if (path / name).exists()]
    if held and not overwrite:
        raise FileExistsError(f"--out {out!r} already holds a run's {held[0]}; pass --overwrite to replace it, or "
                              f"give another --out")


def run(args) -> int:
    import time

    started = time.time()
    _quiet_training_logs()
    from diit_tf.data.registry import dataset_name, resolve_dataset
    from diit_tf.keyvalue import parse_value, split_assignment
    from diit_tf.simulation.context import PeriodStore
    from diit_tf.simulation.hparams import Hparams
    from diit_tf.simulation.methods import parse_methods
    from diit_tf.simulation.protocol import default_log, resolve_insertion_period, run_simulation
    from diit_tf.simulation.report import dataset_record, run_record, write_report

    # the methods, --out, and a file or preset name are checked first, so a bad one fails before any data is built
    if not args.methods.replace(",", "").strip():
        raise ValueError(f"--methods is empty ({args.methods!r}): give comma-separated methods, or 'all'")
    parse_methods(args.methods)
    grid = None
    if args.tune_grid is not None:
        if args.tune != "transfer":
            # the grid is the transfer stage's; without --tune it would be ignored, and --tune budget has its own
            raise ValueError("--tune-grid sets the grid of --tune transfer and "
                             + ("is not used by --tune budget; leave it out" if args.tune else
                                "is ignored without it; pass --tune transfer, or leave --tune-grid out"))
        from diit_tf.simulation.validation import parse_grid

        grid = parse_grid(args.tune_grid)
        if not grid:  # '' or ' ; ' would tune the default grid, as if the flag were not given
            raise ValueError(f"--tune-grid is empty ({args.tune_grid!r}): give method.option=v1,v2 steps separated "
                             f"by ';', e.g. 'diit.beta2=0.5,1,2', or leave --tune-grid out for the default grid")
    _check_out(args.out, args.overwrite)
    if args.source_cache:
        check_directory("--source-cache", args.source_cache)
    hparams = Hparams.load(args.hparams) if args.hparams not in (None, "none") else None
    data_dir = resolve_dataset(args.dataset, args.data_root, log=default_log)
    hparams = hparams or _default_hparams(args.hparams, data_dir)
    training = {k: v for k, v in (("epochs", args.epochs), ("learning_rate", args.learning_rate),
                                  ("batch_size", args.batch_size)) if v is not None}
    changes = {}
    if training:
        changes["training"] = training
    if args.diit:
        overrides = {}
        for item in args.diit:
            key, value = split_assignment(item, "--diit")
            overrides[key] = parse_value(value)
        methods = hparams.to_dict()["methods"]
        diit = dict(methods.get("diit", {}))
        diit["diit_config"] = {**diit.get("diit_config", {}), **overrides}
        methods["diit"] = diit
        changes["methods"] = methods
    if changes:
        hparams = hparams.replace(**changes)
    if args.option:
        from diit_tf.simulation.validation import with_option

        for item in args.option:
            key, value = split_assignment(item, "--option", "METHOD.KEY=VALUE")
            method, _, option = key.partition(".")
            if not (method.strip() and option.strip() and value):
                raise ValueError(f"--option expects METHOD.KEY=VALUE. Received: {item!r}")
            # checked under the item's name, so a bad value names the --option, not the preset file; the result
            # keeps the file's name for the errors that come later
            label = f"--option {item}"
            try:
                changed = with_option(hparams, method.strip(), option.strip(), parse_value(value), where=label)
                changed.diit_config()
            except ValueError as err:
                message = str(err)
                raise ValueError(message if message.startswith(label) else f"{label}: {message}") from None
            hparams = Hparams(changed.to_dict(), where=hparams.where)

    seeds = args.seed_list or list(range(args.seeds))

    store = PeriodStore(data_dir, train_share=args.train_share)
    periods = store.periods
    if args.periods:
        if args.periods < 2:
            raise ValueError("--periods should be at least 2")
        periods = periods[: args.periods]
    p0 = resolve_insertion_period(periods, args.insertion_period or hparams.insertion_period)
    name = dataset_name(data_dir) or str(data_dir.name)
    cache = None
    if args.source_cache:
        from diit_tf.simulation.source_cache import SourceCache

        cache = SourceCache(args.source_cache, data_dir, args.backbone, hparams, train_share=args.train_share)
    if args.tune:
        from diit_tf.simulation.validation import tune

        store.periods = periods
        tune(store, args.tune, hparams, args.backbone, seeds, p0, name, args.out, grid=grid, log=default_log,
             source_cache=cache)
        return 0
    if args.validation:
        periods = [p for p in periods if p <= p0]
        if len(periods) < 3:
            raise ValueError(f"--validation needs at least 3 periods up to the insertion period {p0}")
        p0 = periods[max(0, len(periods) - 3)]
        name += " (validation)"
    store.periods = periods
    result = run_simulation(store, backbone=args.backbone, methods=args.methods, seeds=seeds, hparams=hparams,
                            insertion_period=p0, dataset_name=name, source_cache=cache,
                            row_groups=_row_groups(data_dir, store.spec))
    # the command that gives these results (--overwrite changes none of them)
    command = ("diit simulate " + " ".join(shlex.quote(a) for a in sys.argv[2:] if a != "--overwrite")
               if len(sys.argv) > 2 else "")
    results = write_report(result, args.out, command=command, dataset=dataset_record(data_dir),
                           run=run_record(started))
    print(f"wrote {args.out}/report.md, results.json, details.json, auc_per_period.png")
    if args.tensorboard:
        from diit_tf.simulation.tensorboard import write_tensorboard

        runs = write_tensorboard(result, args.tensorboard, store.spec.sources)
        print(f"wrote TensorBoard logs of {len(runs)} run(s) under {args.tensorboard} "
              f"(tensorboard --logdir {args.tensorboard})")
    for method, r in results["methods"].items():
        print(f"  {method:20s} AUC {r['auc_mean']:.4f} ± {r['auc_std']:.4f}  lift {100 * r['rel_auc_lift_vs_base']:+.2f}%"
              f"  train {r['train_seconds_per_period']:.2f}s/period")
    return 0
