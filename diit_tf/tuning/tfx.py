"""`tuner_fn` for the TFX `Tuner` component: the same sweep as `diit tune`, run inside a pipeline.

The objective is the target domain's AUC on the period *after* the training period, which one ExampleGen run (one
span) cannot provide, so the tuner reads the span layout itself (`custom_config["data_dir"]`, the directory the
pipeline's ExampleGen reads): it trains on period `span - 1` and validates on period `span` (the span being
processed; the latest span when `span` is not given). `fn_args.train_files` / `train_steps` are not used: a trial
trains `epochs` passes over the training period's target rows.

Wiring (pipeline option `tuner.enabled`):

    tuner = tfx.components.Tuner(
        tuner_fn="diit_tf.tuning.tfx.tuner_fn",
        examples=example_gen.outputs["examples"],          # required by the component, not read by tuner_fn
        train_args=tfx.proto.TrainArgs(num_steps=1), eval_args=tfx.proto.EvalArgs(num_steps=1),
        custom_config={"data_dir": config.path("data_dir"), "span": config["span"], "max_trials": 10, ...})
    trainer = Trainer(..., hyperparameters=tuner.outputs["best_hyperparameters"])
    # in the DIIT trainer's run_fn:
    config, training = diit_tf.tuning.best_hparams.load_best_hparams(fn_args.hyperparameters)   # when not None

`custom_config` keys (all optional but `data_dir`): see `CUSTOM_CONFIG_DEFAULTS`; unknown keys are an error.
"""
from __future__ import annotations

import collections
from pathlib import Path

CUSTOM_CONFIG_DEFAULTS = {
    "data_dir": None,            # the span layout (metadata.json + span-N/data.csv); required
    "span": None,                # the span being processed (validation period); None: the latest span
    "train_period": None,        # overrides span - 1
    "algorithm": "random",       # random | bayesian | hyperband
    "max_trials": 10,
    "max_epochs": 3,             # hyperband only
    "space": None,               # search-space overrides (text or object, as `diit tune --space`)
    "backbone": "dnn",
    "backbone_options": None,    # default {"hidden_units": [128, 64], "embedding_dim": 16}
    "epochs": 1,
    "batch_size": 512,
    "mix_batch_size": None,
    "source_epochs": 1,
    "source_learning_rate": 1e-3,
    "seed": 0,
    "project_name": "diit_tune",
    "feature_spec": None,        # passed by the pipeline to every component; checked against the dataset's
}

# TFX's own result type when TFX is importable; the executor only reads `.tuner` and `.fit_kwargs`.
_FallbackResult = collections.namedtuple("TunerFnResult", ["tuner", "fit_kwargs"])


def tuner_settings(custom_config) -> dict:
    """`custom_config` merged over the defaults and validated (errors name the key)."""
    given = dict(custom_config or {})
    unknown = sorted(set(given) - set(CUSTOM_CONFIG_DEFAULTS))
    if unknown:
        raise ValueError(f"Tuner custom_config: unknown key(s) {unknown}; known: {sorted(CUSTOM_CONFIG_DEFAULTS)}")
    settings = {**CUSTOM_CONFIG_DEFAULTS, **given}
    if not settings["data_dir"]:
        raise ValueError("Tuner custom_config: `data_dir` (the span layout the pipeline reads) is required")
    if settings["feature_spec"] is not None:
        from diit_tf.data import load_spec

        if dict(settings["feature_spec"]) != load_spec(settings["data_dir"]).to_dict():
            raise ValueError(f"Tuner custom_config: `feature_spec` differs from the one of {settings['data_dir']}")
    for key in ("max_trials", "max_epochs", "epochs", "batch_size", "source_epochs"):
        value = settings[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"Tuner custom_config: `{key}` should be a positive integer. Received: {value!r}")
    for key in ("span", "train_period"):
        value = settings[key]
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"Tuner custom_config: `{key}` should be null or a period number >= 1. Received: {value!r}")
    from diit_tf.tuning.tuner import ALGORITHMS

    if settings["algorithm"] not in ALGORITHMS:
        raise ValueError(f"Tuner custom_config: `algorithm` should be one of {list(ALGORITHMS)}. "
                         f"Received: {settings['algorithm']!r}")
    return settings


def train_period_for(settings: dict) -> int:
    """The training period: `train_period`, else the span before `span` (the latest span when unset)."""
    from diit_tf.data import list_spans

    if settings["train_period"] is not None:
        return int(settings["train_period"])
    spans = list_spans(settings["data_dir"])
    span = settings["span"] if settings["span"] is not None else (spans[-1] if spans else None)
    if span is None or span - 1 not in spans or span not in spans:
        raise ValueError(f"Tuner: span {span} needs the previous period to train on in {settings['data_dir']} "
                         f"(periods: {spans}); the first span cannot be tuned")
    return span - 1


def tuner_fn(fn_args):
    """TFX entry point: returns `TunerFnResult(tuner, fit_kwargs)` for a DIIT sweep (Keras 3 models)."""
    from diit_tf.tuning.context import prepare_context
    from diit_tf.tuning.hypermodel import DIITHyperModel
    from diit_tf.tuning.space import dimensions
    from diit_tf.tuning.tuner import make_tuner

    settings = tuner_settings(getattr(fn_args, "custom_config", None))
    p = train_period_for(settings)
    space = dimensions(settings["space"])
    directory = Path(fn_args.working_dir)
    data_dir = settings["data_dir"]

    def context():
        return prepare_context(data_dir, train_period=p, backbone=settings["backbone"],
                               backbone_options=settings["backbone_options"], epochs=settings["source_epochs"],
                               batch_size=settings["batch_size"], learning_rate=settings["source_learning_rate"],
                               seed=settings["seed"], cache_dir=directory / "cache")

    hypermodel = DIITHyperModel(context, space=space, epochs=settings["epochs"], batch_size=settings["batch_size"],
                                mix_batch_size=settings["mix_batch_size"], seed=settings["seed"])
    tuner = make_tuner(settings["algorithm"], hypermodel, directory, max_trials=settings["max_trials"],
                       project_name=settings["project_name"], seed=settings["seed"],
                       max_epochs=settings["max_epochs"])
    try:
        from tfx.components.tuner.component import TunerFnResult
    except ImportError:  # pragma: no cover  (TFX not installed: same shape)
        TunerFnResult = _FallbackResult
    return TunerFnResult(tuner=tuner, fit_kwargs={"verbose": 0})
