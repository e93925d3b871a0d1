"""`diit tune`: Keras Tuner sweeps of DIIT's hyperparameters.

    diit tune --dataset runs/data/ml-1m --algorithm random --max-trials 20 --directory runs/tune/ml-1m
    diit tune ... --space "tau=0.5:8:log,beta2=0.1:5,gate_hidden=32|64,alpha=0.5"
    KERASTUNER_TUNER_ID=chief KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000 diit tune ...   # + workers
"""
from __future__ import annotations

import argparse

from diit_tf.tuning.space import HYPERPARAMETER_NAMES
from diit_tf.commands._argtypes import add_dataset_arguments, check_directory, positive_int

DESCRIPTION = (
    "Sweep DIIT's hyperparameters with Keras Tuner. Source models (and the target's base model, the student's warm "
    "start) are trained once on periods 1..P (--train-period), outside the trials; each trial trains DIIT on period "
    "P and is scored by the target domain's AUC on period P+1 (val_auc), never on the training period. "
    "Resumable: rerunning with the same --directory continues the sweep (a larger --max-trials adds trials). "
    "Prints one line per trial and a leaderboard, and writes DIR/best_hparams.json (read by `diit simulate "
    "--hparams` and the pipeline through diit_tf.tuning.best_hparams.load_best_hparams) and DIR/simulate_hparams.json. "
    "Distributed: start one process with KERASTUNER_TUNER_ID=chief and the others with tuner0, tuner1, ..., all "
    "with KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT (see docs/tuning.md)."
)
SPACE_HELP = (
    "search-space overrides, comma-separated: name=lo:hi[:log|:linear] (range), name=a|b|c (choice), name=v "
    "(fixed); or a JSON object / .json file ({\"tau\": {\"min\": 0.5, \"max\": 8, \"sampling\": \"log\"}}). "
    f"Names: {', '.join(HYPERPARAMETER_NAMES)}"
)


def register(subparsers) -> None:
    p = subparsers.add_parser("tune", help="Keras Tuner sweep of DIIT's hyperparameters (random|bayesian|hyperband)",
                              description=DESCRIPTION, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_dataset_arguments(p)
    p.add_argument("--directory", required=True, metavar="DIR",
                   help="sweep directory: trials, cached source models, best_hparams.json; rerun to resume")
    p.add_argument("--algorithm", choices=("random", "bayesian", "hyperband"), default="random",
                   help="search algorithm")
    p.add_argument("--max-trials", type=positive_int, default=10, help="trials in total (a resumed sweep adds the rest)")
    p.add_argument("--train-period", type=positive_int, default=None,
                   help="period P the trials train on (validated on P+1); default: half the periods minus 2 "
                        "(at least 1), so later periods stay unseen for `diit simulate`")
    p.add_argument("--space", default=None, metavar="OVERRIDES", help=SPACE_HELP)
    p.add_argument("--backbone", choices=("dnn", "dcn", "wdl"), default="dnn",
                   help="backbone of sources, base and student")
    p.add_argument("--hidden-units", type=_int_list, default=(128, 64), help="backbone hidden units, comma-separated")
    p.add_argument("--embedding-dim", type=positive_int, default=16, help="backbone embedding size")
    p.add_argument("--epochs", type=positive_int, default=1, help="epochs over period P per trial")
    p.add_argument("--max-epochs", type=positive_int, default=3, help="hyperband: most epochs of one trial")
    p.add_argument("--batch-size", type=positive_int, default=512, help="target batch size (and mix batch size)")
    p.add_argument("--source-epochs", type=positive_int, default=1,
                   help="epochs per period of the source models and the base")
    p.add_argument("--seed", type=int, default=0, help="seed of the source models, the search and every trial")
    p.add_argument("--compare-seeds", type=int, default=0,
                   help="after the search, retrain the default and the best DIIT with this many seeds and report "
                        "their val AUC (0: skip)")
    p.add_argument("--top", type=positive_int, default=10, help="rows of the leaderboard")
    p.add_argument("--overwrite", action="store_true", help="discard an existing sweep in --directory")
    p.set_defaults(func=_tune)


def _int_list(text: str) -> tuple:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _tune(args) -> int:
    from diit_tf.data.layout import progress
    from diit_tf.data.registry import resolve_dataset
    from diit_tf.tuning.run import Sweep, run_sweep
    from diit_tf.tuning.space import parse_overrides

    if args.compare_seeds < 0:
        raise ValueError(f"--compare-seeds should be >= 0. Received: {args.compare_seeds}")
    space = parse_overrides(args.space)  # errors name the hyperparameter, before any data is read
    check_directory("--directory", args.directory)
    data_dir = resolve_dataset(args.dataset, args.data_root, log=progress)
    run_sweep(Sweep(data_dir, args.directory, algorithm=args.algorithm, max_trials=args.max_trials,
                    train_period=args.train_period, space=space, backbone=args.backbone,
                    backbone_options={"hidden_units": list(args.hidden_units), "embedding_dim": args.embedding_dim},
                    epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, source_epochs=args.source_epochs,
                    max_epochs=args.max_epochs, compare_seeds=args.compare_seeds, overwrite=args.overwrite,
                    top=args.top))
    return 0


__all__ = ["register"]
