"""`DIITTrainer`: the custom TFX component that trains the student (target-domain model) with DIIT.

Inputs:
  examples         transformed examples of the period (Transform's output), streamed (`diit_tf/data/streaming.py`):
                   the train split's target rows zipped with its mix rows for fitting (with `diit.gate_origin` > 0
                   or `diit.route_by_origin` each mix row also carries its source, `diit_tf.model.ORIGIN_KEY`),
                   the eval split for the logged per-domain metrics. With `diit.gate_fit_epochs` > 0 the gate is
                   first fitted alone: on one pass of at most `gate_fit_rows` mix rows' sources (with
                   `gate_origin` > 0), then on the labels of at most `gate_fit_rows` target rows (unless
                   `gate_supervision` is 0 while `gate_origin` > 0), as the simulation does (which fits on all of
                   the period's rows)
  transform_graph  Transform's graph (gives the transformed feature spec)
  source_model_<k> the K latest source models, one channel per source domain (the source trainers of *this* run,
                   already updated on the period); reloaded as frozen Keras backbones (teachers) from
                   `<model_uri>/keras/backbone.keras`; a source whose artifact is a placeholder (no rows yet) is
                   left out of the period's teachers, and the run log says so
  base_model       optional: the previous student (a `LatestArtifactStrategy` Resolver over this component's own
                   output), whose weights warm-start the student
  hyperparameters  optional: the Tuner's best hyperparameters (when the Tuner is enabled)
  init_model       optional: the joint model of the init joint trainer (`student_init` "joint_embeddings",
                   components/joint_trainer.py), whose embedding tables a student without a previous model starts
                   from; a placeholder (the init trainer skipped: there is a previous student) is ignored
Outputs:
  model            the exported student alone under `Format-Serving` (diit_tf.export.export_student), its Keras
                   backbone under `keras/` (warm start of the next period) and `keras/model_info.json`
  model_run        training history and metrics (`history.json`) and TensorBoard logs (`components/tensorboard.py`:
                   every loss by name, the gate weight per source, the eval split's AUC per domain)

Why one channel per source instead of a list: `Trainer(base_model=...)` takes exactly one artifact and
`custom_config` cannot carry artifacts (docs/toolchain.md); a ComponentSpec built for K sources has K typed,
lineage-tracked inputs and compiles for both LocalDagRunner and Kubeflow V2.

A NaN loss raises `NaNLossError`, unreadable input a `StreamInputError` naming the file or field: the execution
fails, no model artifact is published, nothing is pushed. Under a multi-worker strategy (`strategy.name`
"multi_worker", `TF_CONFIG`) every worker trains and only the chief writes the artifacts; `VertexDIITTrainer`
(components/diit_trainer_vertex.py) runs this executor as a Vertex AI custom job with N replicas, `TFJobDIITTrainer`
(components/diit_trainer_tfjob.py) as a Kubeflow Training Operator TFJob.

`custom_config` (the pipeline config's "student" block): backbone, options, epochs, batch sizes, learning rates,
`mix_ratio` (one rate for every source or `{source: rate}`), `diit` (DIITConfig fields), `student_init` ("base":
the previous student, or a fresh model on the first span; "best_source": on a span without a previous student,
the weights of the source model with the best AUC on the span's target rows; "best_source_embeddings": that model's
embedding tables only, into a fresh student; "joint_embeddings": on a span without a previous student, the
embedding tables of the `init_model` joint model, into a fresh student, `start_from_joint`), optional
`train_steps` / `eval_steps` (steps in all / eval batches), `shuffle_buffer`, `steps_per_execution`, `seed`,
`gate_fit_rows` (at most that many rows in each of the gate's own fits, held in memory: the mix rows of the
origin fit, the target rows of the supervised one; and the target rows on which the sources are scored for the
gate's quality prior and the best source's start; default 262,144),
`teacher` ("sources", the default: the K source models; "joint": the joint trainer's model alone, given as the
one channel of `source_models`, the simulation's `kd_joint`, see components/joint_trainer.py). Any other
key is an error naming it (`CONFIG_KEYS`), when the component is built and when it runs; so is, when it runs, a
count that is not a positive integer (`diit_tf.counts.positive_count`: a boolean is no integer here, 256.0 is 256):
`epochs` and `batch_size`, and `mix_batch_size`, `train_steps`, `eval_steps`, `shuffle_buffer`,
`steps_per_execution`, `gate_fit_rows` unless null.

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
from diit_tf.counts import positive_count

SOURCE_PREFIX = "source_model_"
JOINT_TEACHER = "joint"  # `teacher`: the student's teachers are the source models, or the joint model alone
TEACHERS = ("sources", JOINT_TEACHER)
# the input holding the joint model whose embedding tables start a fresh student (student_init "joint_embeddings")
INIT_KEY = "init_model"
JOINT_START = "joint_embeddings"


class DIITTrainerSpec(ComponentSpec):
    """The fixed part of the DIIT trainer's interface; `spec_for(k)` adds the K source-model channels."""

    PARAMETERS = {"custom_config": ExecutionParameter(type=str)}
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "transform_graph": ChannelParameter(type=standard_artifacts.TransformGraph),
        "base_model": ChannelParameter(type=standard_artifacts.Model, optional=True),
        "hyperparameters": ChannelParameter(type=standard_artifacts.HyperParameters, optional=True),
        INIT_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
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
def train_student(spec, teacher_uris: Mapping[str, str], data, config: Mapping,
                  base_model_uri: Optional[str] = None, left_out: Optional[Mapping[str, str]] = None,
                  log_dir: Optional[str] = None, init_model_uri: Optional[str] = None) -> tuple:
    """Train the student with DIIT on the period's rows, streamed. Returns (student backbone, info dict).

    `teacher_uris`: source domain -> model artifact uri; `left_out`: source domain -> why it has no teacher this
    period (no model yet); every source domain is in exactly one of them. With no teacher at all the student is
    trained on the target rows alone, as the base would be. With `config["teacher"] == "joint"` the one teacher is
    the joint model (`teacher_uris == {"joint": uri}`, components/joint_trainer.py) instead of the sources.
    `data`: a `diit_tf.data.streaming.TrainerInput`; `config`: the "student" block of the pipeline config plus
    `strategy` and optional `seed`; `log_dir`: where TensorBoard logs go (None: none); `init_model_uri`: the joint
    model whose embedding tables start a student without a previous model under `student_init` "joint_embeddings"
    (None: there is none, e.g. the init joint trainer skipped).
    """
    import keras
    import numpy as np

    from components.tensorboard import EVAL_DIR, ScalarLog, eval_scalars, write_scalars
    from diit_tf.config import DIITConfig
    from diit_tf.data import streaming
    from diit_tf.simulation.hparams import COPIED_BY_INIT, SOURCE_INITS, STUDENT_INITS

    role = "DIIT trainer (student)"
    init = config.get("student_init") or "base"
    if init not in STUDENT_INITS:
        raise ValueError(f"DIIT trainer: `student.student_init` should be one of {list(STUDENT_INITS)}. Received: "
                         f"{config['student_init']!r}")
    left_out = dict(left_out or {})
    kind = config.get("teacher") or "sources"
    if kind not in TEACHERS:
        raise ValueError(f"DIIT trainer: `teacher` should be one of {list(TEACHERS)}. Received: {kind!r}")
    if kind == JOINT_TEACHER:
        if set(teacher_uris) | set(left_out) != {JOINT_TEACHER}:
            raise ValueError(f"DIIT trainer: teacher 'joint' takes exactly one model, the joint trainer's. "
                             f"Received models of {sorted(set(teacher_uris) | set(left_out))}")
        if init == JOINT_START:
            raise ValueError("DIIT trainer: `student.student_init` is 'joint_embeddings'; with the joint teacher the "
                             "student already distils from the joint model: set it to \"base\"")
        if init != "base":
            raise ValueError(f"DIIT trainer: `student.student_init` is {init!r}, which starts "
                             "from a source model; with the joint teacher there is none: set it to \"base\"")
        sources = [JOINT_TEACHER] if JOINT_TEACHER in teacher_uris else []
    else:
        missing = [d for d in spec.sources if d not in teacher_uris and d not in left_out]
        if missing:
            raise ValueError(f"DIIT trainer: no source model for source domain(s) {missing}")
        sources = [d for d in spec.sources if d in teacher_uris]
    config = training.checked_counts(config, "student", "DIIT trainer",
                                     ("mix_batch_size", "shuffle_buffer", "steps_per_execution"))
    fit_rows = gate_fit_rows(config)
    strategy, shard = training.strategy_from_config(config.get("strategy"))  # first: it configures the runtime
    keras.utils.set_random_seed(int(config.get("seed", 0)))
    diit_config = DIITConfig.from_dict(dict(config.get("diit") or {}))
    rates = streaming.mix_rates(spec, config.get("mix_ratio", 1.0))
    # the gate's origin loss and routing by origin read each mix row's source: its position among the teachers'
    # sources (the joint teacher is no source's own, so every row is -1 for it; its one weight is 1 anyway)
    origin_sources = [d for d in sources if d in spec.sources] if diit_config.reads_origin and sources else None
    batches = _batches(spec, data, config, rates, with_mix=bool(sources), replicas=strategy.num_replicas_in_sync,
                       origin_sources=origin_sources)
    with streaming.naming_bad_files(data.train_files, data.columns, "DIIT trainer"):
        if not streaming.has_domain_rows(data.train_files, data.columns, spec, spec.target, int(config["batch_size"]),
                                         strategy.num_replicas_in_sync):
            raise streaming.StreamInputError(
                f"DIIT trainer: the span's train split has no rows of the target domain {spec.target!r} "
                f"(files {data.train_files[:3]}{' ...' if len(data.train_files) > 3 else ''}); nothing is trained "
                "or pushed")
        with strategy.scope():
            teachers = [training.load_backbone(teacher_uris[d]) for d in sources]
            model, student, warm_from = _model(spec, config, teachers, diit_config, base_model_uri, role)
        logging.info("DIIT trainer: %d teacher(s) %s%s, %d epoch(s), warm start from %s", len(teachers), sources,
                     f", left out {sorted(left_out)}" if left_out else "", config["epochs"],
                     warm_from or "nothing (first period)")
        started_from = None
        if init == JOINT_START and warm_from is None:
            started_from = start_from_joint(init_model_uri, student)
            logging.info("DIIT trainer: no previous student; the student starts from the embedding tables of the "
                         "joint model %s (%d table(s); student_init=%s)", init_model_uri, len(started_from["tables"]),
                         init)
        elif init in SOURCE_INITS and warm_from is None and teachers:
            started_from = start_from_best_source(spec, data, sources, teachers, student, init, fit_rows)
            logging.info("DIIT trainer: no previous student; the student starts from source %r's %s (AUC on the "
                         "span's target rows %s; student_init=%s)", started_from["from"],
                         COPIED_BY_INIT[init], started_from["auc"],
                         init)
        prior = None
        learns_gate = bool(teachers) and model.learns_gate  # no teacher: `model` is the plain CTR trainer
        if diit_config.gate_prior == "quality" and learns_gate:
            gains, weights = quality_prior(spec, data, teachers, diit_config.gate_prior_temperature, fit_rows)
            model.set_gate_prior(weights)
            prior = {"sources": sources, "auc_gain": [round(float(g), 5) for g in gains],
                     "weights": [round(float(w), 4) for w in weights]}
            logging.info("DIIT trainer: the gate's quality prior %s", dict(zip(sources, prior["weights"])))
        # The gate's own fits, as the simulation's DIIT.train_period (DIITConfig.gate_fits, in order).
        fits = diit_config.gate_fits if learns_gate else ()
        if fits and training.is_parameter_server(strategy):
            raise ValueError("DIIT trainer: the gate's own fit (`diit.gate_fit_epochs` > 0) does not run on parameter "
                             "servers; set it to 0 or use strategy 'multi_worker'")
        gate_fit = gate_fit_origin = None
        if "origin" in fits:
            gate_fit_origin = fit_gate_on_origin(spec, data, config, model, strategy, diit_config, rates,
                                                 origin_sources, fit_rows)
        if "supervised" in fits:
            gate_fit = fit_gate_on_target(spec, data, config, model, strategy, diit_config, fit_rows)
        teacher_weights = [[w.copy() for w in t.get_weights()] for t in teachers]
        log = ScalarLog(log_dir, names={f"gate_w{k}": f"gate/{d}" for k, d in enumerate(sources)})
        start = time.time()
        with streaming.unknown_length():
            history = training.fit_under(strategy, model, training.with_shard_policy(batches, shard),
                                         steps=data.train_steps, role=role, epochs=int(config["epochs"]), verbose=0,
                                         callbacks=training.fit_callbacks(role, data.train_steps, [log]))
    for d, before, teacher in zip(sources, teacher_weights, teachers):
        if not all(np.array_equal(a, b) for a, b in zip(before, teacher.get_weights())):
            raise RuntimeError(f"DIIT trainer: the teacher of source {d!r} changed during training")
    info = {
        "role": "student",
        "domain": spec.target,
        "backbone": config["backbone"],
        "backbone_options": dict(config.get("backbone_options") or {}),
        "diit": diit_config.to_dict(),
        "teacher": kind,
        "teachers": {d: teacher_uris[d] for d in sources},
        "left_out_sources": left_out,
        "warm_started_from": warm_from,
        "started_from_source": started_from,
        "mix_rates": rates,
        "gate_prior": prior,
        "gate_fit": gate_fit,
        "gate_fit_origin": gate_fit_origin,
        "batch_size": int(config["batch_size"]),
        "train_steps": training.steps_run(strategy, history, log),
        "train_seconds": round(time.time() - start, 2),
        "history": {k: [float(x) for x in v] for k, v in history.history.items()},
    }
    if not teachers:
        info["note"] = "no source has a model yet: the student was trained on the target rows alone (as the base)"
    if data.eval_files:
        with streaming.naming_bad_files(data.eval_files, data.columns, "DIIT trainer"):
            info["eval"] = training.evaluate(student, streaming.bounded(
                streaming.eval_batches(data.eval_files, data.columns, spec), data.eval_steps), spec.domains)
        write_scalars(log_dir and os.path.join(log_dir, EVAL_DIR), eval_scalars(info["eval"], spec.target),
                      step=log.step)
    return student, info


GATE_FIT_ROWS = 262_144  # default `gate_fit_rows`: rows each of the gate's own fits holds in memory


def gate_fit_rows(config: Mapping) -> int:
    """`config["gate_fit_rows"]` (None: `GATE_FIT_ROWS`), checked: a positive integer, else an error naming it."""
    return positive_count(config.get("gate_fit_rows"), "student.gate_fit_rows", "DIIT trainer", null=True,
                          default=GATE_FIT_ROWS, what=" (the rows each of the gate's own fits holds in memory)")


def fit_gate_on_target(spec, data, config: Mapping, model, strategy, diit_config, max_rows: int) -> dict:
    """`gate_fit_epochs` passes of the gate alone on its supervised loss (`DIITModel.fit_gate`) over one pass of
    the train split's target rows, bounded to `max_rows` rows, streamed once into the fit's in-memory cache.

    The bound keeps the trainer's memory flat, as `fit_gate_on_origin`'s: the rows are the first `max_rows` of a
    shuffled pass (read from the first files, shuffled within `shuffle_buffer` windows), not a uniform sample of a
    larger span. Returns `fit_gate`'s `{"gate_bce", "steps"}` and `max_rows`."""
    from diit_tf.data import streaming

    seed = int(config.get("seed", 0))
    target = streaming.domain_batches(
        data.train_files, data.columns, spec, spec.target, int(config["batch_size"]), seed + 3,
        int(config.get("shuffle_buffer") or streaming.SHUFFLE_BUFFER), strategy.num_replicas_in_sync)
    rows = streaming.first_rows(target, max_rows)
    with strategy.scope():
        # every worker reads the same target rows: the fit runs the same steps on every replica (fit_gate)
        fitted = model.fit_gate(training.with_shard_policy(streaming.bounded(rows, data.train_steps), "off"),
                                diit_config.gate_fit_epochs, seed=seed + 4)
    logging.info("DIIT trainer: fitted the gate alone on the target rows' labels, %d step(s) over at most %d rows, "
                 "gate loss %.4f", fitted["steps"], max_rows, fitted["gate_bce"])
    return {**fitted, "max_rows": max_rows}


def fit_gate_on_origin(spec, data, config: Mapping, model, strategy, diit_config, rates: Mapping,
                       origin_sources: List[str], max_rows: int) -> dict:
    """`gate_fit_epochs` passes of the gate alone on its origin loss (`DIITModel.fit_gate(..., loss="origin")`,
    `DIITConfig.gate_origin`) over one pass of the train split's mix rows, as the training's mix keeps them (keep
    rates `rates`, each row's source among `origin_sources` under `ORIGIN_KEY`), bounded to `max_rows` rows.

    The bound keeps the trainer's memory flat: `fit_gate` caches (query width + K + 1) floats per row, so the whole
    mix of a 25M-row span would not fit (nor its target rows, which `fit_gate_on_target` bounds the same way);
    262,144 rows of a 64-wide query and 2 sources are about 70 MB. The rows are the first `max_rows` of a shuffled
    pass (read from the first files, shuffled within `shuffle_buffer` windows), not a uniform sample of a larger
    span. Returns `fit_gate`'s `{"origin", "steps"}` and `max_rows`."""
    import tensorflow as tf

    from diit_tf.data import streaming
    from diit_tf.model import ORIGIN_KEY

    seed = int(config.get("seed", 0))
    mix = streaming.mix_batches(data.train_files, data.columns, spec, rates, int(config["batch_size"]), seed + 5,
                                int(config.get("shuffle_buffer") or streaming.SHUFFLE_BUFFER),
                                strategy.num_replicas_in_sync, origin_key=ORIGIN_KEY, origin_sources=origin_sources,
                                repeat=False)
    # fit_gate reads `(x, y)` batches; with loss="origin" y is not read (the rows' sources are in x)
    rows = streaming.first_rows(mix, max_rows).map(lambda x: (x, tf.zeros_like(x[ORIGIN_KEY], tf.float32)))
    with strategy.scope():
        # every worker reads the same mix rows: the fit runs the same steps on every replica (fit_gate)
        fitted = model.fit_gate(training.with_shard_policy(streaming.bounded(rows, data.train_steps), "off"),
                                diit_config.gate_fit_epochs, seed=seed + 6, loss="origin")
    logging.info("DIIT trainer: fitted the gate alone on the mix rows' sources, %d step(s) over at most %d rows, "
                 "origin loss %.4f", fitted["steps"], max_rows, fitted["origin"])
    return {**fitted, "max_rows": max_rows}


def target_logits(spec, data, teachers: list, max_rows: int = GATE_FIT_ROWS) -> tuple:
    """`(logits, labels)`: each teacher's logits on the train split's first `max_rows` target rows (K arrays) and
    their labels, streamed once in file order. Only logits and labels are kept, (K + 1) floats a row: the bound
    keeps memory flat whatever the target's traffic (as the gate's fits, `gate_fit_rows`)."""
    import numpy as np

    from diit_tf.data import streaming

    logits, labels = [[] for _ in teachers], []
    rows = streaming.domain_batches(data.train_files, data.columns, spec, spec.target, 4096, shuffle_buffer=0)
    for x, y in streaming.first_rows(rows, max_rows):
        labels.append(np.asarray(y, np.float64).reshape(-1))
        for k, teacher in enumerate(teachers):
            logits[k].append(np.asarray(teacher(x, training=False)["logit"], np.float64).reshape(-1))
    return [np.concatenate(z) for z in logits], np.concatenate(labels)


def quality_prior(spec, data, teachers: list, temperature: float, max_rows: int = GATE_FIT_ROWS) -> tuple:
    """`(gains, weights)` of the gate's "quality" prior (`DIITConfig.gate_prior`): each teacher's AUC gain over
    chance on the train split's first `max_rows` target rows and their softmax at `temperature`
    (`diit_tf.baselines.kd.quality_weights`, `kd_static`'s weighting)."""
    from diit_tf.baselines.kd import quality_weights

    return quality_weights(*target_logits(spec, data, teachers, max_rows), temperature=temperature)


def start_from_best_source(spec, data, sources: list, teachers: list, student,
                           init: str = "best_source", max_rows: int = GATE_FIT_ROWS) -> dict:
    """`student_init = "best_source"` when there is no previous student: copy into the student the weights of the
    teacher with the best AUC on the train split's first `max_rows` target rows (the first on a tie;
    `diit_tf.baselines.kd.static_weights(..., "best")`), as `diit simulate` starts every transfer method at the
    insertion period (`training.student_init`); the source backbones must have the student's architecture.
    `"best_source_embeddings"`: that teacher's embedding tables only (the towers may differ; the tables must match).
    Returns what the run log keeps: `{"from": domain, "auc": {domain: AUC}, "init": init}`."""
    import numpy as np

    from diit_tf.baselines import finetune
    from diit_tf.baselines.kd import static_weights, teacher_gains

    gains = teacher_gains(*target_logits(spec, data, teachers, max_rows))
    best = int(np.argmax(static_weights(gains, "best")))
    try:
        if init == "best_source_embeddings":
            finetune.copy_embeddings(teachers[best], student)
        else:
            finetune.copy_weights(teachers[best], student)
    except ValueError as err:
        raise ValueError(f"DIIT trainer: `student.student_init` is {init!r}, but {err}: give the student the sources' "
                         f"{'embedding_dim' if init == 'best_source_embeddings' else 'backbone and backbone_options'}"
                         ", or set student_init to \"base\"") from None
    return {"from": sources[best], "auc": {d: round(float(g) + 0.5, 5) for d, g in zip(sources, gains)},
            "init": init}


def start_from_joint(init_model_uri: Optional[str], student) -> dict:
    """`student_init = "joint_embeddings"` when there is no previous student: copy into the fresh student the
    embedding tables of the joint model under `init_model_uri` (the init joint trainer's, trained on every row of
    the span), matched by weight path as the simulation's `JointStart` matches them
    (`diit_tf.baselines.finetune.tables_by_path`: the joint model's domain-id table has no counterpart); the towers
    stay as initialised. Returns what the run log keeps: `{"from": "joint", "init", "model", "tables"}`."""
    from diit_tf.baselines.finetune import tables_by_path

    if not init_model_uri:
        raise ValueError("DIIT trainer: `student.student_init` is 'joint_embeddings' and the student has no previous "
                         f"model, but there is no joint model to start from (input `{INIT_KEY}`: the init joint "
                         "trainer's model, which the pipeline wires when student_init is \"joint_embeddings\")")
    joint = training.load_backbone(init_model_uri)
    try:
        tables = tables_by_path(joint, student, f"the joint model {init_model_uri!r}")
    except ValueError as err:
        raise ValueError(f"DIIT trainer: `student.student_init` is 'joint_embeddings', but {err}: give the student "
                         "the `source` block's features and embedding_dim (`backbone_options.embedding_dim`; the "
                         "joint model is trained with the `source` settings), or set student_init to \"base\"") \
            from None
    for i, table in tables.items():
        student.weights[i].assign(table)
    return {"from": JOINT_TEACHER, "init": JOINT_START, "model": init_model_uri,
            "tables": [student.weights[i].path for i in tables]}


def _batches(spec, data, config: Mapping, rates: Mapping, with_mix: bool, replicas: int,
             origin_sources: Optional[List[str]] = None):
    """DIIT's `((x_t, y_t), x_m)` batches of the train split, or the target's `(x_t, y_t)` alone (no teacher).
    With `origin_sources` (the teachers' source domains, in their order) every mix batch also carries each row's
    source under `ORIGIN_KEY`, for the gate's origin loss (`DIITConfig.gate_origin`)."""
    from diit_tf.data import streaming
    from diit_tf.model import ORIGIN_KEY

    batch_size = int(config["batch_size"])
    seed = int(config.get("seed", 0))
    shuffle_buffer = int(config.get("shuffle_buffer") or streaming.SHUFFLE_BUFFER)
    if with_mix:
        return streaming.diit_batches(data.train_files, data.columns, spec, batch_size,
                                      config.get("mix_batch_size") or batch_size, rates, seed=seed,
                                      shuffle_buffer=shuffle_buffer, replicas=replicas,
                                      origin_key=ORIGIN_KEY if origin_sources is not None else None,
                                      origin_sources=origin_sources)
    return streaming.domain_batches(data.train_files, data.columns, spec, spec.target, batch_size, seed,
                                    shuffle_buffer, replicas)


def _model(spec, config: Mapping, teachers: list, diit_config, base_model_uri: Optional[str], role: str) -> tuple:
    """`(model to fit, student backbone, warm start uri)`: a compiled `DIITModel` over the frozen teachers, or the
    plain per-period CTR trainer when there is none. Called in the strategy's scope."""
    import keras

    from diit_tf.backbones import build_backbone
    from diit_tf.ctr import PeriodTrainer
    from diit_tf.model import DIITModel

    student = build_backbone(config["backbone"], spec, name="student", **dict(config.get("backbone_options") or {}))
    warm_from = training.warm_start(student, base_model_uri, role)
    steps_per_execution = int(config.get("steps_per_execution") or 1)
    if not teachers:
        return PeriodTrainer(student, config["learning_rate"], steps_per_execution=steps_per_execution), student, \
            warm_from
    model = DIITModel(teachers, student, diit_config)
    model.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]),
                  discriminator_optimizer=keras.optimizers.Adam(
                      config.get("discriminator_learning_rate") or config["learning_rate"]),
                  steps_per_execution=steps_per_execution)
    return model, student, warm_from


def apply_tuned(config: dict, hyperparameters_uri: str) -> dict:
    """The Tuner's best hyperparameters (diit_tf.tuning's `best_hyperparameters.txt`) into the student config:
    only the settings the Tuner searched, so the student's other DIIT options (`gate_origin`, `gate_prior`, ...)
    and training settings stay as configured. A record without its searched values (a bare `diit_config`)
    replaces every DIIT option, as it says nothing about which were searched."""
    from diit_tf.config import DIITConfig
    from diit_tf.tuning.best_hparams import read_best_hparams
    from diit_tf.tuning.space import split_values

    record = read_best_hparams(hyperparameters_uri)
    searched = dict(record.get("hyperparameters") or {})
    if searched:
        diit_config, training = split_values(searched, DIITConfig.from_dict(dict(config.get("diit") or {})))
        values = {k: v for k, v in {**diit_config.to_dict(), **training}.items() if k in searched}
    else:
        values = {**record["diit_config"], **{k: v for k, v in record["training"].items() if v is not None}}
    logging.info("DIIT trainer: tuned settings %s", values)
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


# Every key the DIIT trainer's custom_config may hold: the pipeline's "student" block (pipeline/configs.py), the
# feature spec and the strategy. Anything else is a typo that would otherwise be ignored.
CONFIG_KEYS = frozenset({
    "feature_spec", "strategy", "seed", "backbone", "backbone_options", "epochs", "batch_size", "mix_batch_size",
    "mix_ratio", "learning_rate", "discriminator_learning_rate", "diit", "student_init", "train_steps", "eval_steps",
    "shuffle_buffer", "steps_per_execution", "teacher", "gate_fit_rows"})


def check_config_keys(config: Mapping, extra=(), where: str = "DIIT trainer") -> None:
    """Raise a ValueError naming every key of `config` that is neither in `CONFIG_KEYS` nor in `extra`."""
    unknown = sorted(set(config) - CONFIG_KEYS - set(extra))
    if unknown:
        raise ValueError(f"{where}: unknown custom_config key(s) {unknown}; known: {sorted(CONFIG_KEYS | set(extra))}")


# ------------------------------------------------------------------------------------------------ the executor
class Executor(base_executor.BaseExecutor):
    """Runs `train_student` on the component's artifacts and writes the model artifact."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        import tensorflow_transform as tft

        from diit_tf.data import streaming
        from diit_tf.export import export_student, placeholder_rows
        from diit_tf.features import FeatureSpec

        self._log_startup(input_dict, output_dict, exec_properties)
        config = json.loads(exec_properties.get("custom_config") or "{}")
        if training.serves_parameter_server_task(config.get("strategy"), "DIIT trainer"):
            return  # a worker or ps task: the chief's training loop ran on it
        check_config_keys(config)
        steps = {key: positive_count(config.pop(key, None), f"student.{key}", "DIIT trainer", null=True)
                 for key in ("train_steps", "eval_steps")}  # TrainerInput's, not train_student's
        if "feature_spec" not in config:
            raise ValueError(f"DIIT trainer: custom_config is missing 'feature_spec'; keys {sorted(config)}")
        spec = FeatureSpec.from_dict(config.pop("feature_spec"))
        teacher_uris, left_out = source_models(input_dict)

        base = input_dict.get("base_model") or []
        base_uri = training.previous_model(artifact_utils.get_single_instance(base).uri if base else None,
                                           "DIIT trainer (student)", logging.warning)
        init_uri = init_model(input_dict)
        hp = input_dict.get("hyperparameters") or []
        if hp:
            config = apply_tuned(config, artifact_utils.get_single_instance(hp).uri)

        transform_uri = artifact_utils.get_single_instance(input_dict["transform_graph"]).uri
        columns = streaming.check_columns(tft.TFTransformOutput(transform_uri).transformed_feature_spec(), spec,
                                          "DIIT trainer")
        examples = input_dict["examples"]
        chief = training.is_chief()
        data = streaming.TrainerInput(  # only the chief evaluates
            train_files=training.split_files(examples, "train"),
            eval_files=training.split_files(examples, "eval") if chief else [],
            columns=columns, **steps)
        run_uri = artifact_utils.get_single_instance(output_dict["model_run"]).uri
        student, info = train_student(spec, teacher_uris, data, config, base_uri, left_out,
                                      log_dir=run_uri if chief else None, init_model_uri=init_uri)
        if not chief:  # another worker of a multi-worker run: the chief writes the artifact
            return
        model_uri = artifact_utils.get_single_instance(output_dict["model"]).uri
        export_student(student, spec, os.path.join(model_uri, training.SERVING_DIR), overwrite=True,
                       warmup_examples=placeholder_rows(spec))
        training.save_backbone(student, model_uri, info)
        training.write_run_log(run_uri, "history.json", info)
        logging.info("DIIT trainer: student eval %s", info.get("eval"))


def init_model(input_dict: Mapping) -> Optional[str]:
    """The `init_model` input's uri when it holds a model; None without the input, or for the placeholder the init
    joint trainer writes when it skipped (there is a previous student), which is logged."""
    models = input_dict.get(INIT_KEY) or []
    if not models:
        return None
    uri = artifact_utils.get_single_instance(models).uri
    if training.has_model(uri):
        return uri
    reason = training.read_model_info(uri).get("reason") or "no model"
    logging.info("DIIT trainer: the joint model %s holds no model (%s); it is not used", uri, reason)
    return None


def source_models(input_dict: Mapping) -> tuple:
    """`(teacher_uris, left_out)` from the `source_model_<k>` inputs: domain -> artifact uri of the sources with a
    model, and domain -> reason for those whose artifact is a placeholder (no rows yet), which sit this period out.
    The run log says which source kept its previous model and which is left out."""
    teacher_uris, left_out = {}, {}
    for key in sorted(k for k in input_dict if k.startswith(SOURCE_PREFIX)):
        artifact = artifact_utils.get_single_instance(input_dict[key])
        info = training.read_model_info(artifact.uri)
        domain = JOINT_TEACHER if info.get("role") == "joint" else info.get("domain")
        if domain in teacher_uris or domain in left_out:
            raise ValueError(f"DIIT trainer: two source models of domain {domain!r}")
        if training.has_model(artifact.uri):
            teacher_uris[domain] = artifact.uri
            if info.get("kept_previous_model"):
                logging.warning("DIIT trainer: source %r had no rows in this span; its teacher is its previous "
                                "model %s", domain, info["kept_previous_model"])
        else:
            left_out[domain] = info.get("reason") or "no model"
            logging.warning("DIIT trainer: source %r has no model yet (%s); it is left out of this period's "
                            "teachers", domain, left_out[domain])
    return teacher_uris, left_out


class DIITTrainer(base_component.BaseComponent):
    """Train the student with DIIT from the K latest source models (see the module docstring)."""

    SPEC_CLASS = DIITTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
    EXTRA_CONFIG_KEYS = ()  # custom_config keys a launcher subclass's executor takes out before training

    def __init__(self, examples: types.BaseChannel, transform_graph: types.BaseChannel,
                 source_models: Mapping[str, types.BaseChannel], custom_config: Mapping,
                 base_model: Optional[types.BaseChannel] = None,
                 hyperparameters: Optional[types.BaseChannel] = None,
                 init_model: Optional[types.BaseChannel] = None):
        if not source_models:
            raise ValueError("DIITTrainer: `source_models` should map each source domain to a model channel.")
        check_config_keys(custom_config, self.EXTRA_CONFIG_KEYS, type(self).__name__)
        spec_class = spec_for(len(source_models))
        inputs = {f"{SOURCE_PREFIX}{k}": channel for k, channel in enumerate(source_models.values())}
        spec = spec_class(
            examples=examples,
            transform_graph=transform_graph,
            base_model=base_model,
            hyperparameters=hyperparameters,
            custom_config=json.dumps(dict(custom_config), sort_keys=True),
            **{INIT_KEY: init_model},
            model=types.Channel(type=standard_artifacts.Model),
            model_run=types.Channel(type=standard_artifacts.ModelRun),
            **inputs,
        )
        super().__init__(spec=spec)
