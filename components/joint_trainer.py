"""The joint trainer: `JointTrainer`, a TFX `Trainer` running this module's `run_fn`, in one of two roles.

- The joint teacher (the pipeline's `joint_teacher.enabled`), below.
- The init role (`student.student_init` "joint_embeddings", joint teacher off): the same model and training, beside
  the K source trainers, for the student's start alone. It also gets the latest student (`previous_student`, the
  resolver channel the DIIT trainer warm-starts from): when there is one, it trains nothing and writes a placeholder
  artifact that says so (`skipped`, `trained: false`, no backbone), as the student no longer needs a start; when
  there is none (the student's first span), it trains and its model reaches the DIIT trainer's `init_model`, whose
  embedding tables the fresh student takes (components/diit_trainer.py, `start_from_joint`).

The simulation's `kd_joint` in the pipeline: one multi-domain model (`diit_tf.baselines.joint`: the backbone over
the features and a domain id, plus per-domain heads) trained on every domain's rows of the span, warm-started from
its own previous-period model, is the student's one teacher instead of the K source models. The student still
serves alone, at the base's cost; the joint model is never pushed.

The trainer streams every row of the span's train split with its domain index (`streaming.joint_batches`), trains
with the per-period CTR path (`diit_tf.ctr.PeriodTrainer`), and writes the artifact layout of
`components/training.py` for the joint model *read as the target* (`as_domain_model`: every row tagged as the
target domain): the Keras file is what the DIIT trainer loads as its teacher, the SavedModel scores the target.
The eval split's target rows give its logged AUC. Under a multi-worker strategy only the chief writes.

`fn_args.custom_config`: `feature_spec`, `backbone`, `backbone_options`, `epochs`, `batch_size`, `learning_rate`,
`strategy`, optional `seed`, `shuffle_buffer`, `steps_per_execution` (the pipeline's `source` block: the joint model
is trained as the source models would be). `fn_args.train_steps` / `eval_steps` bound the work;
`fn_args.previous_student` (set by `JointTrainer`'s executor from its `previous_student` input) is the latest
student's artifact uri, or None.

Why a `Trainer` subclass: TFX's `Trainer` takes one model input (`base_model`, here the joint model's own previous
model), and `custom_config` cannot carry an artifact (docs/toolchain.md); `JointTrainerSpec` is `TrainerSpec` with
one more optional `Model` channel, and the executor is TFX's `GenericExecutor` that also passes that channel's uri.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import keras
from absl import logging
from tfx import types
from tfx.components.trainer.component import Trainer
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.standard_component_specs import TrainerSpec
from tfx.utils import json_utils

from components import source_trainer, training
from diit_tf.baselines.joint import DOMAIN_FEATURE, as_domain_model, build_joint_model
from diit_tf.ctr import PeriodTrainer
from diit_tf.data import streaming
from diit_tf.export import export_student, placeholder_rows
from diit_tf.features import FeatureSpec

ROLE = "joint trainer"
TEACHER_NAME = "joint_teacher"

STUDENT_KEY = "previous_student"  # the init role's extra input: the latest student, if any

# Every key the joint trainer's custom_config may hold: a source trainer's, without the domain (it trains on all).
CONFIG_KEYS = source_trainer.CONFIG_KEYS - {"domain"}
REQUIRED_KEYS = ("feature_spec", "backbone", "epochs", "batch_size", "learning_rate")


def train_joint(spec: FeatureSpec, data: streaming.TrainerInput, config: dict,
                base_model_uri: Optional[str] = None, log_dir: Optional[str] = None) -> tuple:
    """Train (or continue training) the joint model on every row of `data.train_files`. Returns `(view, info)`:
    the joint model read as the target (`as_domain_model`, sharing its weights) and what the run log keeps."""
    strategy, shard = training.strategy_from_config(config.get("strategy"))
    seed = int(config.get("seed", 0))
    keras.utils.set_random_seed(seed)
    batches = streaming.joint_batches(data.train_files, data.columns, spec, int(config["batch_size"]), seed,
                                      int(config.get("shuffle_buffer") or streaming.SHUFFLE_BUFFER),
                                      strategy.num_replicas_in_sync, domain_feature=DOMAIN_FEATURE)
    options = dict(config.get("backbone_options") or {})
    with streaming.naming_bad_files(data.train_files, data.columns, ROLE):
        if not streaming.has_rows(streaming.parsed_batches(data.train_files, data.columns)):
            raise streaming.StreamInputError(f"{ROLE}: the span's train split has no rows (files "
                                             f"{data.train_files[:3]}); nothing is trained or pushed")
        with strategy.scope():
            joint = build_joint_model(config["backbone"], spec, **options)
            view = as_domain_model(joint, spec, name=TEACHER_NAME)
            warm_from = training.warm_start(view, base_model_uri, ROLE)  # the view holds exactly the joint's weights
            trainer = PeriodTrainer(joint, config["learning_rate"],
                                    steps_per_execution=int(config.get("steps_per_execution") or 1))
        logging.info("%s: %d domain(s), %d epoch(s), warm start from %s", ROLE, len(spec.domains), config["epochs"],
                     warm_from or "nothing (first period)")
        info = {"role": "joint", "domain": spec.target,  # the domain the saved view tags its rows with
                "domains": list(spec.domains), "backbone": config["backbone"], "backbone_options": options,
                "batch_size": int(config["batch_size"]), "warm_started_from": warm_from,
                **training.fit_logged(strategy, shard, trainer, batches, config["epochs"], ROLE, data.train_steps,
                                      log_dir)}
    if data.eval_files:  # the target's rows: what the view predicts
        info["eval"] = training.evaluate_domain(view, spec, data, spec.target, ROLE, log_dir, info["train_steps"])
    return view, info


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (`JointTrainer`, `run_fn="components.joint_trainer.run_fn"`)."""
    if training.serves_parameter_server_task((fn_args.custom_config or {}).get("strategy"), "joint trainer"):
        return  # a worker or ps task: the chief's training loop ran on it
    student = training.previous_model(getattr(fn_args, STUDENT_KEY, None), ROLE)
    if student:  # the init role once the student has a previous model: nothing to start, nothing to train
        training.checked_config(fn_args.custom_config, CONFIG_KEYS, REQUIRED_KEYS, ROLE)
        if training.is_chief():
            skip(student, training.model_uri_of(fn_args.serving_model_dir), fn_args.model_run_dir)
        return
    config, _, spec, data, previous = training.trainer_input(fn_args, CONFIG_KEYS, REQUIRED_KEYS, ROLE)
    chief = training.is_chief()
    view, info = train_joint(spec, data, config, previous, log_dir=fn_args.model_run_dir if chief else None)
    if not chief:
        return
    model_uri = training.model_uri_of(fn_args.serving_model_dir)
    export_student(view, spec, f"{model_uri}/{training.SERVING_DIR}", overwrite=True,
                   warmup_examples=placeholder_rows(spec))
    training.save_backbone(view, model_uri, info)
    training.write_run_log(fn_args.model_run_dir, "history.json", info)
    logging.info("%s: eval on the target's rows %s", ROLE, info.get("eval"))


def skip(student_uri: str, model_uri: str, model_run_dir: Optional[str]) -> dict:
    """The init role's artifact when the student has a previous model (`student_uri`): a placeholder
    (`training.write_placeholder`: `trained: false`, no backbone) saying that nothing was trained and why, which the
    DIIT trainer ignores. Returns the info written (also the run log's `history.json`)."""
    info = {"role": "joint", "skipped": True, "previous_student": student_uri,
            "reason": f"the student has a previous model ({student_uri}) and warm-starts from it: the joint model "
                      "that starts a new student (student_init \"joint_embeddings\") is not needed, nothing is "
                      "trained"}
    training.write_placeholder(model_uri, info)
    training.write_run_log(model_run_dir, "history.json", {**info, "trained": False})
    logging.info("%s: %s", ROLE, info["reason"])
    return info


# ------------------------------------------------------------------------------------------------ the component
class JointTrainerSpec(TrainerSpec):
    """`TrainerSpec` with the init role's optional `previous_student` channel."""

    INPUTS = {**TrainerSpec.INPUTS, STUDENT_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True)}


class Executor(trainer_executor.GenericExecutor):
    """TFX's generic trainer executor; `fn_args.previous_student` is the `previous_student` input's uri (or None)."""

    def _GetFnArgs(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
                   exec_properties: Dict[str, Any]):
        fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
        students = input_dict.get(STUDENT_KEY) or []
        setattr(fn_args, STUDENT_KEY, artifact_utils.get_single_uri(students) if students else None)
        return fn_args


class JointTrainer(Trainer):
    """The joint model's `Trainer` (see the module docstring): TFX's `Trainer` for a `run_fn`, plus the optional
    `previous_student` input of the init role. Outputs `model` and `model_run`, as `Trainer`'s."""

    SPEC_CLASS = JointTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, examples: types.BaseChannel, transform_graph: types.BaseChannel, run_fn: str,
                 train_args: trainer_pb2.TrainArgs, eval_args: trainer_pb2.EvalArgs, custom_config: Mapping,
                 base_model: Optional[types.BaseChannel] = None,
                 previous_student: Optional[types.BaseChannel] = None):
        # `self.SPEC_CLASS`, not the module's name: TFX reloads this module whenever it imports `run_fn`
        # (`import_utils.import_func_from_module`), after which the name is another class than the one
        # `BaseComponent` checks the spec against (this class's `SPEC_CLASS`)
        spec = self.SPEC_CLASS(
            examples=examples, transform_graph=transform_graph, base_model=base_model, run_fn=run_fn,
            train_args=train_args, eval_args=eval_args, custom_config=json_utils.dumps(dict(custom_config)),
            model=types.Channel(type=standard_artifacts.Model),
            model_run=types.Channel(type=standard_artifacts.ModelRun),
            **{STUDENT_KEY: previous_student})
        # `Trainer.__init__` builds a `TrainerSpec`; this spec is that one plus a channel
        base_component.BaseComponent.__init__(self, spec=spec)
