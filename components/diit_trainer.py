"""`DIITTrainer`: the custom TFX component that trains the student (target-domain model) with DIIT.

Inputs:
  examples         transformed examples of the period (Transform's output; train split for fitting, eval split for
                   the logged metrics)
  transform_graph  Transform's graph (gives the transformed feature spec)
  source_model_<k> the K latest source models, one channel per source domain (the source trainers of *this* run,
                   already updated on the period); reloaded as frozen Keras backbones (teachers) from
                   `<model_uri>/keras/backbone.keras`
  base_model       optional: the previous student (a `LatestArtifactStrategy` Resolver over this component's own
                   output), whose weights warm-start the student
  hyperparameters  optional: the Tuner's best hyperparameters (when the Tuner is enabled)
Outputs:
  model            the exported student alone under `Format-Serving` (diit_tf.export.export_student), its Keras
                   backbone under `keras/` (warm start of the next period) and `keras/model_info.json`
  model_run        training history and metrics (`history.json`)

Why one channel per source instead of a list: `Trainer(base_model=...)` takes exactly one artifact and
`custom_config` cannot carry artifacts (docs/toolchain.md); a ComponentSpec built for K sources has K typed,
lineage-tracked inputs and compiles for both LocalDagRunner and Kubeflow V2.

A NaN loss raises `NaNLossError`: the execution fails, no model artifact is published, nothing is pushed.

Example:
    diit_trainer = DIITTrainer(
        examples=transform.outputs["transformed_examples"], transform_graph=transform.outputs["transform_graph"],
        source_models={d: trainers[d].outputs["model"] for d in spec.sources},
        base_model=student_resolver.outputs["model"], custom_config={...}).with_id("diit_trainer")
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, List, Mapping, Optional

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components import training

SOURCE_PREFIX = "source_model_"


class DIITTrainerSpec(ComponentSpec):
    """The fixed part of the DIIT trainer's interface; `spec_for(k)` adds the K source-model channels."""

    PARAMETERS = {"custom_config": ExecutionParameter(type=str)}
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "transform_graph": ChannelParameter(type=standard_artifacts.TransformGraph),
        "base_model": ChannelParameter(type=standard_artifacts.Model, optional=True),
        "hyperparameters": ChannelParameter(type=standard_artifacts.HyperParameters, optional=True),
    }
    OUTPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_run": ChannelParameter(type=standard_artifacts.ModelRun),
    }


_SPECS: Dict[int, type] = {}


def spec_for(num_sources: int) -> type:
    """The ComponentSpec class with `source_model_0 .. source_model_{K-1}` channels (cached per K)."""
    if num_sources < 1:
        raise ValueError(f"DIITTrainer needs at least one source model. Received: {num_sources}")
    if num_sources not in _SPECS:
        inputs = dict(DIITTrainerSpec.INPUTS)
        inputs.update({f"{SOURCE_PREFIX}{k}": ChannelParameter(type=standard_artifacts.Model)
                       for k in range(num_sources)})
        _SPECS[num_sources] = type(f"DIITTrainerSpec{num_sources}", (DIITTrainerSpec,), {"INPUTS": inputs})
    return _SPECS[num_sources]


# ----------------------------------------------------------------------------------------------- the training
def train_student(spec, teacher_uris: Mapping[str, str], train: Mapping, evaluation: Optional[Mapping],
                  config: Mapping, base_model_uri: Optional[str] = None) -> tuple:
    """Train the student with DIIT on the period's rows. Returns (student backbone, info dict).

    `teacher_uris`: source domain -> model artifact uri; `train` / `evaluation`: transformed columns (numpy) of all
    domains; `config`: the "student" block of the pipeline config plus `strategy` and optional `seed`.
    """
    import keras
    import numpy as np

    from diit_tf.backbones import build_backbone
    from diit_tf.config import DIITConfig
    from diit_tf.model import DIITModel

    missing = [d for d in spec.sources if d not in teacher_uris]
    if missing:
        raise ValueError(f"DIIT trainer: no source model for source domain(s) {missing}")
    target = training.rows_of_domain(train, spec, spec.target)
    n_target = len(target[spec.label])
    if n_target == 0:
        raise ValueError(f"DIIT trainer: the span's train split has no rows of the target domain {spec.target!r}")
    seed = int(config.get("seed", 0))
    mix = mix_rows(train, spec, float(config.get("mix_ratio", 1.0)), seed)
    n_mix = len(mix[spec.label])
    keras.utils.set_random_seed(seed)
    batch_size = int(config["batch_size"])
    mix_batch_size = min(int(config.get("mix_batch_size") or batch_size), n_mix)
    diit_config = DIITConfig.from_dict(dict(config.get("diit") or {}))
    strategy = training.make_strategy(**(config.get("strategy") or {"name": "default"}))
    with strategy.scope():
        teachers = [training.load_backbone(teacher_uris[d]) for d in spec.sources]
        student = build_backbone(config["backbone"], spec, name="student",
                                 **dict(config.get("backbone_options") or {}))
        warm_from = training.warm_start(student, base_model_uri, "DIIT trainer (student)")
        model = DIITModel(teachers, student, diit_config)
        model.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]),
                      discriminator_optimizer=keras.optimizers.Adam(
                          config.get("discriminator_learning_rate") or config["learning_rate"]))
    dataset = diit_dataset(target, mix, spec, batch_size, mix_batch_size, seed, strategy.num_replicas_in_sync)
    logging.info("DIIT trainer: %d target rows, %d mix rows, %d teacher(s), %d epoch(s), warm start from %s",
                 n_target, n_mix, len(teachers), config["epochs"], warm_from or "nothing (first period)")
    teacher_weights = [[w.copy() for w in t.get_weights()] for t in teachers]
    start = time.time()
    history = model.fit(dataset, epochs=int(config["epochs"]), verbose=0,
                        callbacks=[training.RaiseOnNaNLoss("DIIT trainer (student)")])
    for d, before, teacher in zip(spec.sources, teacher_weights, teachers):
        if not all(np.array_equal(a, b) for a, b in zip(before, teacher.get_weights())):
            raise RuntimeError(f"DIIT trainer: the teacher of source {d!r} changed during training")
    info = {
        "role": "student",
        "domain": spec.target,
        "backbone": config["backbone"],
        "backbone_options": dict(config.get("backbone_options") or {}),
        "diit": diit_config.to_dict(),
        "teachers": {d: teacher_uris[d] for d in spec.sources},
        "warm_started_from": warm_from,
        "target_rows": n_target,
        "mix_rows": n_mix,
        "train_seconds": round(time.time() - start, 2),
        "history": {k: [float(x) for x in v] for k, v in history.history.items()},
    }
    if evaluation is not None:
        info["eval"] = {d: training.evaluate_backbone(student, spec, training.rows_of_domain(evaluation, spec, d))
                        for d in spec.domains}
    return student, info


def mix_rows(data: Mapping, spec, mix_ratio: float, seed: int = 0) -> dict:
    """The mix dataset: every target row and a random `mix_ratio` share of each source's rows."""
    import numpy as np

    if not 0 < mix_ratio <= 1:
        raise ValueError(f"`mix_ratio` should be in (0, 1]. Received: {mix_ratio!r}")
    if mix_ratio == 1:
        return dict(data)
    domains = np.asarray(data[spec.domain]).astype(str)
    rng = np.random.default_rng(seed)
    keep = (domains == spec.target) | (rng.random(len(domains)) < mix_ratio)
    return {name: np.asarray(values)[keep] for name, values in data.items()}


def diit_dataset(target: Mapping, mix: Mapping, spec, batch_size: int, mix_batch_size: int, seed: int,
                 replicas: int = 1):
    """`((x_t, y_t), x_m)` batches: one pass over the shuffled target rows per epoch, the mix rows cycling.

    As `diit_tf.model.make_diit_dataset`, except that under a multi-replica strategy every batch has the same
    size (the last partial target batch is dropped), since a distributed iterator cannot split an element whose
    components have different batch sizes.
    """
    import numpy as np
    import tensorflow as tf

    n_target = len(target[spec.label])
    drop = replicas > 1
    if drop:
        batch_size = max(replicas, min(batch_size, n_target) // replicas * replicas)
        mix_batch_size = max(replicas, mix_batch_size // replicas * replicas)
    x_t = tf.data.Dataset.from_tensor_slices(
        (training.features_of(target, spec), np.asarray(target[spec.label], np.float32)))
    x_t = x_t.shuffle(min(n_target, 100_000), seed=seed).batch(batch_size, drop_remainder=drop)
    n_mix = len(mix[spec.label])
    x_m = tf.data.Dataset.from_tensor_slices(training.features_of(mix, spec))
    x_m = x_m.shuffle(min(n_mix, 100_000), seed=seed + 1).repeat().batch(mix_batch_size, drop_remainder=True)
    return tf.data.Dataset.zip((x_t, x_m)).prefetch(tf.data.AUTOTUNE)


def apply_tuned(config: dict, hyperparameters_uri: str) -> dict:
    """The Tuner's best hyperparameters (diit_tf.tuning's `best_hyperparameters.txt`) into the student config."""
    from diit_tf.tuning.best_hparams import load_best_hparams

    diit_config, tuned = load_best_hparams(hyperparameters_uri)
    logging.info("DIIT trainer: tuned settings %s, %s", diit_config, tuned)
    values = {**diit_config.to_dict(), **{k: v for k, v in tuned.items() if v is not None}}
    return merge_hyperparameters(config, values)


def merge_hyperparameters(config: dict, values: Mapping) -> dict:
    """Tuner values into the student config: DIITConfig fields go to `diit`, student keys replace theirs."""
    from diit_tf.config import DIITConfig
    import dataclasses

    diit_fields = {f.name for f in dataclasses.fields(DIITConfig)}
    config = dict(config)
    diit = dict(config.get("diit") or {})
    for key, value in values.items():
        if key in diit_fields:
            diit[key] = value
        elif key in config and key != "diit":
            config[key] = value
        else:
            logging.warning("DIIT trainer: ignoring tuner hyperparameter %r (no such setting)", key)
    config["diit"] = diit
    return config


# ------------------------------------------------------------------------------------------------ the executor
class Executor(base_executor.BaseExecutor):
    """Runs `train_student` on the component's artifacts and writes the model artifact."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        import tensorflow as tf
        import tensorflow_transform as tft

        from diit_tf.export import export_student, placeholder_rows
        from diit_tf.features import FeatureSpec

        self._log_startup(input_dict, output_dict, exec_properties)
        config = json.loads(exec_properties.get("custom_config") or "{}")
        if "feature_spec" not in config:
            raise ValueError(f"DIIT trainer: custom_config is missing 'feature_spec'; keys {sorted(config)}")
        spec = FeatureSpec.from_dict(config.pop("feature_spec"))

        teacher_uris = {}
        for key in sorted(k for k in input_dict if k.startswith(SOURCE_PREFIX)):
            artifact = artifact_utils.get_single_instance(input_dict[key])
            domain = training.read_model_info(artifact.uri).get("domain")
            if domain in teacher_uris:
                raise ValueError(f"DIIT trainer: two source models of domain {domain!r}")
            teacher_uris[domain] = artifact.uri

        base = input_dict.get("base_model") or []
        base_uri = artifact_utils.get_single_instance(base).uri if base else None
        if base_uri and not tf.io.gfile.exists(training.backbone_path(base_uri)):
            logging.warning("DIIT trainer: previous student %s has no Keras backbone; training from scratch", base_uri)
            base_uri = None
        hp = input_dict.get("hyperparameters") or []
        if hp:
            config = apply_tuned(config, artifact_utils.get_single_instance(hp).uri)

        transform_uri = artifact_utils.get_single_instance(input_dict["transform_graph"]).uri
        feature_spec = tft.TFTransformOutput(transform_uri).transformed_feature_spec()
        examples = input_dict["examples"]
        train = training.load_transformed([os.path.join(artifact_utils.get_split_uri(examples, "train"), "*")],
                                          feature_spec)
        evaluation = training.load_transformed(
            [os.path.join(artifact_utils.get_split_uri(examples, "eval"), "*")], feature_spec)

        student, info = train_student(spec, teacher_uris, train, evaluation, config, base_uri)

        model_uri = artifact_utils.get_single_instance(output_dict["model"]).uri
        export_student(student, spec, os.path.join(model_uri, training.SERVING_DIR), overwrite=True,
                       warmup_examples=placeholder_rows(spec))
        training.save_backbone(student, model_uri, info)
        run_uri = artifact_utils.get_single_instance(output_dict["model_run"]).uri
        training.write_run_log(run_uri, "history.json", info)
        logging.info("DIIT trainer: student eval %s", info.get("eval"))


class DIITTrainer(base_component.BaseComponent):
    """Train the student with DIIT from the K latest source models (see the module docstring)."""

    SPEC_CLASS = DIITTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, examples: types.BaseChannel, transform_graph: types.BaseChannel,
                 source_models: Mapping[str, types.BaseChannel], custom_config: Mapping,
                 base_model: Optional[types.BaseChannel] = None,
                 hyperparameters: Optional[types.BaseChannel] = None):
        if not source_models:
            raise ValueError("DIITTrainer: `source_models` should map each source domain to a model channel.")
        spec_class = spec_for(len(source_models))
        inputs = {f"{SOURCE_PREFIX}{k}": channel for k, channel in enumerate(source_models.values())}
        spec = spec_class(
            examples=examples,
            transform_graph=transform_graph,
            base_model=base_model,
            hyperparameters=hyperparameters,
            custom_config=json.dumps(dict(custom_config), sort_keys=True),
            model=types.Channel(type=standard_artifacts.Model),
            model_run=types.Channel(type=standard_artifacts.ModelRun),
            **inputs,
        )
        super().__init__(spec=spec)
