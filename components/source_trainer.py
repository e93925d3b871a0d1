"""`run_fn` of the per-domain source trainers (one TFX `Trainer` per source domain).

Each source domain keeps its own CTR model, retrained incrementally every period: the trainer streams the period's
transformed training rows of its domain (`diit_tf/data/streaming.py`), warm-starts from its own previous-period
model (`fn_args.base_model`, resolved by a `LatestArtifactStrategy` Resolver over this trainer's output), trains
with the one per-period CTR path (`diit_tf.ctr.PeriodTrainer`), and writes the model artifact layout of
`components/training.py` (SavedModel + Keras backbone + model_info.json) and TensorBoard logs under `model_run`.

A span without rows of the domain does not stop the run: the trainer keeps its previous model (the artifact is
copied), or writes a placeholder when it has none yet, which the DIIT trainer leaves out of the period's teachers.
Under a multi-worker strategy every worker trains; only the chief writes the artifact and the logs.

`fn_args.custom_config`: `feature_spec`, `domain`, `backbone`, `backbone_options`, `epochs`, `batch_size`,
`learning_rate`, `strategy` ({"name", "devices", "shard"}), optional `seed`, `shuffle_buffer`,
`steps_per_execution`. `fn_args.train_steps` / `eval_steps` (TFX `TrainArgs` / `EvalArgs` `num_steps`) bound the work.
"""
from __future__ import annotations

import re
from typing import Optional

import keras
from absl import logging

from components import training
from diit_tf.data import streaming
from diit_tf.backbones import build_backbone
from diit_tf.ctr import PeriodTrainer
from diit_tf.export import export_student, placeholder_rows
from diit_tf.features import FeatureSpec


def train_source(spec: FeatureSpec, domain: str, data: streaming.TrainerInput, config: dict,
                 base_model_uri: Optional[str] = None, log_dir: Optional[str] = None) -> tuple:
    """Train (or continue training) the source model of `domain` on its rows of `data.train_files`.

    Returns `(backbone, info)`; `backbone` is None when the split has no rows of `domain` (nothing trained).
    `log_dir`: where TensorBoard logs go (None: none).
    """
    role = f"source trainer {domain!r}"
    if domain not in spec.domains:
        raise ValueError(f"source trainer: domain {domain!r} is not one of the dataset's domains {list(spec.domains)}")
    strategy, shard = training.strategy_from_config(config.get("strategy"))  # first: it configures the runtime
    seed = int(config.get("seed", 0))
    keras.utils.set_random_seed(seed)
    batches = streaming.domain_batches(data.train_files, data.columns, spec, domain, int(config["batch_size"]), seed,
                                       int(config.get("shuffle_buffer") or streaming.SHUFFLE_BUFFER),
                                       strategy.num_replicas_in_sync)
    info = {"role": "source", "domain": domain, "backbone": config["backbone"],
            "backbone_options": dict(config.get("backbone_options") or {}), "batch_size": int(config["batch_size"])}
    with streaming.naming_bad_files(data.train_files, data.columns, role):
        if not streaming.has_domain_rows(data.train_files, data.columns, spec, domain, int(config["batch_size"]),
                                         strategy.num_replicas_in_sync):
            return None, {**info, "train_rows": 0}
        with strategy.scope():
            backbone = build_backbone(config["backbone"], spec, name="source_" + re.sub(r"[^0-9A-Za-z_]", "_", domain),
                                      **dict(config.get("backbone_options") or {}))
            warm_from = training.warm_start(backbone, base_model_uri, role)
            trainer = PeriodTrainer(backbone, config["learning_rate"],
                                    steps_per_execution=int(config.get("steps_per_execution") or 1))
        logging.info("%s: %d epoch(s), warm start from %s", role, config["epochs"],
                     warm_from or "nothing (first period)")
        info["warm_started_from"] = warm_from
        info.update(training.fit_logged(strategy, shard, trainer, batches, config["epochs"], role, data.train_steps,
                                        log_dir))
    if data.eval_files:
        info["eval"] = training.evaluate_domain(backbone, spec, data, domain, role, log_dir, info["train_steps"])
    return backbone, info


def write_source_model(spec: FeatureSpec, backbone, info: dict, model_uri: str,
                       previous_uri: Optional[str]) -> dict:
    """Write the artifact: the trained model; else (no rows) the previous model kept, or a placeholder. Returns
    the info written."""
    domain = info["domain"]
    if backbone is not None:
        export_student(backbone, spec, f"{model_uri}/{training.SERVING_DIR}", overwrite=True,
                       warmup_examples=placeholder_rows(spec))
        training.save_backbone(backbone, model_uri, info)
        return info
    if previous_uri:
        info = {**info, "kept_previous_model": previous_uri,
                "reason": f"the span has no rows of domain {domain!r}: the previous model is kept"}
        training.keep_previous_model(previous_uri, model_uri, info)
    else:
        info = {**info, "reason": f"the span has no rows of domain {domain!r} and there is no previous model: no "
                                  "model yet, the DIIT trainer leaves this source out of the period's teachers"}
        training.write_placeholder(model_uri, info)
    logging.warning("source trainer %r: %s", domain, info["reason"])
    return info


# Every key a source trainer's custom_config may hold (the pipeline's "source" block without the step counts, which
# go to TFX's TrainArgs / EvalArgs, plus the feature spec, the domain and the strategy).
CONFIG_KEYS = frozenset({"feature_spec", "domain", "strategy", "seed", "backbone", "backbone_options", "epochs",
                         "batch_size", "learning_rate", "shuffle_buffer", "steps_per_execution"})


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (generic trainer, `run_fn="components.source_trainer.run_fn"`)."""
    if training.serves_parameter_server_task((fn_args.custom_config or {}).get("strategy"), "source trainer"):
        return  # a worker or ps task: the chief's training loop ran on it
    config, role, spec, data, previous = training.trainer_input(
        fn_args, CONFIG_KEYS, ("feature_spec", "domain", "backbone", "epochs", "batch_size", "learning_rate"),
        "source trainer")
    chief = training.is_chief()
    backbone, info = train_source(spec, config["domain"], data, config, previous,
                                  log_dir=fn_args.model_run_dir if chief else None)
    if not chief:  # another worker of a multi-worker run: the chief writes the artifact
        return
    info = write_source_model(spec, backbone, info, training.model_uri_of(fn_args.serving_model_dir), previous)
    training.write_run_log(fn_args.model_run_dir, "history.json", info)
    logging.info("%s: eval %s", role, info.get("eval"))
