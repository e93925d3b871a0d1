"""`tuner_fn` for the TFX `Tuner` component: a DIIT sweep on the examples the component is given.

The Tuner reads exactly its inputs (lineage): Transform's `transformed_examples` of the span being processed,
streamed (`diit_tf/data/streaming.py`), the `transform_graph` (the columns to parse) and, when wired, the previous
student as `base_model`. Once per execution, before the first trial:
- each source domain's teacher is trained on the train split's rows of that domain (`source_epochs` passes,
  `diit_tf.ctr.PeriodTrainer`, from scratch); a source with no rows in the span is left out;
- every trial's student starts from the previous student's weights (`base_model`, its `keras/backbone.keras`), or
  from fresh weights on the first run.
A trial trains DIIT on the train split (target rows labelled, every domain's rows in the mix dataset, subsampled by
the trial's `mix_ratio`) and is scored on the target rows of the **eval split** (`val_auc`): the hash-held-out part
of the same span, the rows the pipeline's Evaluator also scores. `train_steps` / `eval_steps` (TFX `TrainArgs` /
`EvalArgs` `num_steps`) bound each trial's training batches per epoch and its validation batches.

Wiring (pipeline option `tuner.enabled`; `pipeline/diit.py` does this):

    tuner = tfx.components.Tuner(
        tuner_fn="diit_tf.tuning.tfx.tuner_fn",
        examples=transform.outputs["transformed_examples"], transform_graph=transform.outputs["transform_graph"],
        base_model=previous_student.outputs["model"],
        train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=50),
        eval_args=tfx.proto.EvalArgs(splits=["eval"], num_steps=20),
        custom_config={"feature_spec": spec.to_dict(), "max_trials": 10, ...})
    diit_trainer = DIITTrainer(..., hyperparameters=tuner.outputs["best_hyperparameters"])

`custom_config` keys: see `CUSTOM_CONFIG_DEFAULTS` (`feature_spec` is required); unknown keys are an error.
"""
from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Optional

from diit_tf.counts import positive_count
from diit_tf.tuning.hypermodel import DIITHyperModel

CUSTOM_CONFIG_DEFAULTS = {
    "feature_spec": None,        # FeatureSpec.to_dict() of the dataset (the pipeline passes it to every component)
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
    if not settings["feature_spec"]:
        raise ValueError("Tuner custom_config: `feature_spec` (FeatureSpec.to_dict() of the dataset) is required")
    # the counts, as positive integers (`positive_count`: True is none, 256.0 is 256); `mix_batch_size` null or one
    for key in ("max_trials", "max_epochs", "epochs", "batch_size", "source_epochs", "mix_batch_size"):
        settings[key] = positive_count(settings[key], key, "Tuner custom_config", null=key == "mix_batch_size")
    from diit_tf.tuning.tuner import ALGORITHMS

    if settings["algorithm"] not in ALGORITHMS:
        raise ValueError(f"Tuner custom_config: `algorithm` should be one of {list(ALGORITHMS)}. "
                         f"Received: {settings['algorithm']!r}")
    return settings


class ExamplesHyperModel(DIITHyperModel):
    """`DIITHyperModel` whose trials read the Tuner's streamed examples: DIIT batches of the train split, `val_auc`
    on the eval split's target rows.

    Args:
      context: as `DIITHyperModel` (here `examples_context`, called before the first trial).
      data: a `diit_tf.data.streaming.TrainerInput` (train and eval files, columns, step bounds).
      **kwargs: `DIITHyperModel`'s (space, epochs, batch_size, mix_batch_size, seed).
    """

    def __init__(self, context, data, **kwargs):
        super().__init__(context, **kwargs)
        self.data = data

    def train_dataset(self, mix_ratio: float):
        from diit_tf.data import streaming

        spec = self.context.spec
        batches = streaming.diit_batches(self.data.train_files, self.data.columns, spec, self.batch_size,
                                         self.mix_batch_size, streaming.mix_rates(spec, mix_ratio), seed=self.seed)
        return streaming.bounded(batches, self.data.train_steps)

    def validation_dataset(self):
        from diit_tf.data import streaming

        spec = self.context.spec
        batches = streaming.domain_batches(self.data.eval_files, self.data.columns, spec, spec.target, 4096,
                                           shuffle_buffer=0)
        return streaming.bounded(batches, self.data.eval_steps)

    def fit(self, hp, model, *args, **kwargs):
        from diit_tf.data.streaming import unknown_length

        with unknown_length():
            return super().fit(hp, model, *args, **kwargs)


def examples_context(spec, data, settings: dict, base_model_uri: Optional[str] = None, log=None):
    """The `TuningContext` of one Tuner execution: teachers trained on the train split, the student's start."""
    import keras

    from diit_tf.backbones import build_backbone
    from diit_tf.ctr import PeriodTrainer
    from diit_tf.data import streaming
    from diit_tf.tuning.context import DEFAULT_BACKBONE_OPTIONS, TuningContext

    log = log or (lambda line: None)
    options = dict(DEFAULT_BACKBONE_OPTIONS if settings["backbone_options"] is None else settings["backbone_options"])
    if "hidden_units" in options:
        options["hidden_units"] = tuple(options["hidden_units"])
    seed = int(settings["seed"])
    keras.utils.set_random_seed(seed)
    for split, files in (("train", data.train_files), ("eval", data.eval_files)):  # trials fit and score on these
        if not streaming.has_domain_rows(files, data.columns, spec, spec.target):
            raise streaming.StreamInputError(
                f"Tuner: the span's {split} split has no rows of the target domain {spec.target!r} (files "
                f"{files[:3]}{' ...' if len(files) > 3 else ''}): no trial can be trained or scored")
    teachers = []
    for k, domain in enumerate(spec.sources):
        if not streaming.has_domain_rows(data.train_files, data.columns, spec, domain, settings["batch_size"]):
            log(f"Tuner: source {domain!r} has no rows in this span; left out of the teachers")
            continue
        rows = streaming.domain_batches(data.train_files, data.columns, spec, domain, settings["batch_size"],
                                        seed * 1000 + k)
        teacher = build_backbone(settings["backbone"], spec, name=f"teacher_{k}", **options)
        PeriodTrainer(teacher, settings["source_learning_rate"]).fit(rows, epochs=settings["source_epochs"])
        teacher.trainable = False
        teachers.append(teacher)
        log(f"Tuner: teacher of source {domain!r} trained on the train split")
    if not teachers:
        raise ValueError(f"Tuner: no source domain of {list(spec.sources)} has rows in the train split: there is "
                         "nothing to distil from")
    student = build_backbone(settings["backbone"], spec, name="student_init", **options)
    if base_model_uri:
        previous = keras.models.load_model(_backbone_file(base_model_uri), compile=False)
        student.set_weights(previous.get_weights())
        log(f"Tuner: trials start from the previous student {base_model_uri}")
    return TuningContext(spec=spec, backbone=settings["backbone"], backbone_options=options, teachers=teachers,
                         student_weights=student.get_weights(), train=None, validation=None, train_period=None,
                         validation_period=None, dataset="examples")


def _backbone_file(base_model: str) -> str:
    """`<model_uri>/keras/backbone.keras` of a pipeline model artifact (layout: components/training.py), given the
    artifact uri or its `Format-Serving` path (what TFX passes as `fn_args.base_model`)."""
    uri = base_model.rstrip("/")
    if os.path.basename(uri) == "Format-Serving":
        uri = os.path.dirname(uri)
    path = os.path.join(uri, "keras", "backbone.keras")
    import tensorflow as tf

    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"Tuner: base_model {base_model!r} has no Keras backbone at {path!r}")
    return path


def tuner_fn(fn_args):
    """TFX entry point: returns `TunerFnResult(tuner, fit_kwargs)` for a DIIT sweep (Keras 3 models)."""
    import sys

    from diit_tf.data import streaming
    from diit_tf.features import FeatureSpec
    from diit_tf.tuning.space import dimensions
    from diit_tf.tuning.tuner import make_tuner

    settings = tuner_settings(getattr(fn_args, "custom_config", None))
    spec = FeatureSpec.from_dict(settings["feature_spec"])
    if not getattr(fn_args, "transform_graph_path", None):
        raise ValueError("Tuner: no transform_graph input; wire Transform's `transform_graph` (the tuner parses the "
                         "transformed examples with its feature spec)")
    import tensorflow_transform as tft

    columns = streaming.check_columns(tft.TFTransformOutput(fn_args.transform_graph_path).transformed_feature_spec(),
                                      spec, "Tuner")
    data = streaming.TrainerInput(streaming.expand_files(fn_args.train_files),
                                  streaming.expand_files(fn_args.eval_files), columns,
                                  fn_args.train_steps, fn_args.eval_steps)
    streaming.check_gzip(data.train_files + data.eval_files, "Tuner")  # a truncated file, before any trial
    base_model = getattr(fn_args, "base_model", None)
    if base_model and not _has_backbone(base_model):  # the previous student may be a missing or foreign artifact
        base_model = None

    def log(line):
        print(line, file=sys.stderr, flush=True)

    hypermodel = ExamplesHyperModel(lambda: examples_context(spec, data, settings, base_model, log), data,
                                    space=dimensions(settings["space"]), epochs=settings["epochs"],
                                    batch_size=settings["batch_size"], mix_batch_size=settings["mix_batch_size"],
                                    seed=settings["seed"])
    tuner = make_tuner(settings["algorithm"], hypermodel, Path(fn_args.working_dir), max_trials=settings["max_trials"],
                       project_name=settings["project_name"], seed=settings["seed"],
                       max_epochs=settings["max_epochs"])
    try:
        from tfx.components.tuner.component import TunerFnResult
    except ImportError:  # pragma: no cover  (TFX not installed: same shape)
        TunerFnResult = _FallbackResult
    return TunerFnResult(tuner=tuner, fit_kwargs={"verbose": 0})


def _has_backbone(base_model: str) -> bool:
    try:
        _backbone_file(base_model)
        return True
    except FileNotFoundError:
        return False
