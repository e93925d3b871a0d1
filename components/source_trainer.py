"""`run_fn` of the per-domain source trainers (one TFX `Trainer` per source domain).

Each source domain keeps its own CTR model, retrained incrementally every period: the trainer reads the period's
transformed training rows, keeps its domain's rows, warm-starts from its own previous-period model
(`fn_args.base_model`, resolved by a `LatestArtifactStrategy` Resolver over this trainer's output), trains, and
writes the model artifact layout of `components/training.py` (SavedModel + Keras backbone + model_info.json).

`fn_args.custom_config`: `feature_spec`, `domain`, `backbone`, `backbone_options`, `epochs`, `batch_size`,
`learning_rate`, `strategy` ({"name", "devices"}), optional `seed`.
"""
from __future__ import annotations

import re
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from components import training
from diit_tf.backbones import build_backbone
from diit_tf.export import export_student, placeholder_rows
from diit_tf.features import FeatureSpec


def _transformed_feature_spec(transform_output_dir: str) -> dict:
    import tensorflow_transform as tft

    return tft.TFTransformOutput(transform_output_dir).transformed_feature_spec()


def train_source(spec: FeatureSpec, domain: str, train: dict, evaluation: dict, config: dict,
                 base_model_uri=None) -> tuple:
    """Train (or continue training) the source model of `domain`. Returns (backbone, info)."""
    if domain not in spec.domains:
        raise ValueError(f"source trainer: domain {domain!r} is not one of the dataset's domains {list(spec.domains)}")
    rows = training.rows_of_domain(train, spec, domain)
    n = len(rows[spec.label])
    if n == 0:
        raise ValueError(f"source trainer {domain!r}: the span's train split has no rows of domain {domain!r}")
    keras.utils.set_random_seed(int(config.get("seed", 0)))
    strategy = training.make_strategy(**(config.get("strategy") or {"name": "default"}))
    with strategy.scope():
        backbone = build_backbone(config["backbone"], spec, name="source_" + re.sub(r"[^0-9A-Za-z_]", "_", domain),
                                  **dict(config.get("backbone_options") or {}))
        warm_from = training.warm_start(backbone, base_model_uri, f"source trainer {domain!r}")
        model = training.logit_model(backbone, spec)
        model.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]),
                      loss=keras.losses.BinaryCrossentropy(from_logits=True))
    ds = tf.data.Dataset.from_tensor_slices(
        (training.features_of(rows, spec), np.asarray(rows[spec.label], np.float32).reshape(-1, 1)))
    ds = ds.shuffle(min(n, 100_000), seed=int(config.get("seed", 0))).batch(config["batch_size"])
    logging.info("source trainer %r: %d rows, %d epoch(s), warm start from %s", domain, n, config["epochs"],
                 warm_from or "nothing (first period)")
    start = time.time()
    history = model.fit(ds, epochs=config["epochs"], verbose=0,
                        callbacks=[training.RaiseOnNaNLoss(f"source trainer {domain!r}")])
    info = {
        "role": "source",
        "domain": domain,
        "backbone": config["backbone"],
        "backbone_options": dict(config.get("backbone_options") or {}),
        "warm_started_from": warm_from,
        "train_rows": n,
        "train_seconds": round(time.time() - start, 2),
        "history": {k: [float(x) for x in v] for k, v in history.history.items()},
        "eval": training.evaluate_backbone(backbone, spec, training.rows_of_domain(evaluation, spec, domain))
        if evaluation else {},
    }
    return backbone, info


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (generic trainer, `run_fn="components.source_trainer.run_fn"`)."""
    config = dict(fn_args.custom_config or {})
    for key in ("feature_spec", "domain", "backbone", "epochs", "batch_size", "learning_rate"):
        if key not in config:
            raise ValueError(f"source trainer: custom_config is missing {key!r}; received keys {sorted(config)}")
    spec = FeatureSpec.from_dict(config["feature_spec"])
    feature_spec = _transformed_feature_spec(fn_args.transform_output)
    train = training.load_transformed(fn_args.train_files, feature_spec)
    evaluation = training.load_transformed(fn_args.eval_files, feature_spec) if fn_args.eval_files else None
    base_uri = training.model_uri_of(fn_args.base_model) if fn_args.base_model else None
    backbone, info = train_source(spec, config["domain"], train, evaluation, config, base_uri)
    model_uri = training.model_uri_of(fn_args.serving_model_dir)
    export_student(backbone, spec, fn_args.serving_model_dir, overwrite=True, warmup_examples=placeholder_rows(spec))
    training.save_backbone(backbone, model_uri, info)
    training.write_run_log(fn_args.model_run_dir, "history.json", info)
    logging.info("source trainer %r: eval %s", config["domain"], info["eval"])
