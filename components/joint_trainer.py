"""`run_fn` of the joint teacher's trainer (a TFX `Trainer`, when the pipeline's `joint_teacher.enabled` is set).

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
is trained as the source models would be). `fn_args.train_steps` / `eval_steps` bound the work.
"""
from __future__ import annotations

from typing import Optional

import keras
from absl import logging

from components import source_trainer, training
from diit_tf.baselines.joint import DOMAIN_FEATURE, as_domain_model, build_joint_model
from diit_tf.ctr import PeriodTrainer
from diit_tf.data import streaming
from diit_tf.export import export_student, placeholder_rows
from diit_tf.features import FeatureSpec

ROLE = "joint trainer"
TEACHER_NAME = "joint_teacher"

# Every key the joint trainer's custom_config may hold: a source trainer's, without the domain (it trains on all).
CONFIG_KEYS = source_trainer.CONFIG_KEYS - {"domain"}


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
    """TFX Trainer entry point (generic trainer, `run_fn="components.joint_trainer.run_fn"`)."""
    if training.serves_parameter_server_task((fn_args.custom_config or {}).get("strategy"), "joint trainer"):
        return  # a worker or ps task: the chief's training loop ran on it
    config, _, spec, data, previous = training.trainer_input(
        fn_args, CONFIG_KEYS, ("feature_spec", "backbone", "epochs", "batch_size", "learning_rate"), ROLE)
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
