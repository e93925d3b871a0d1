"""The DIIT TFX pipeline: one run per period (the latest span), as a daily job.

Runnable three ways from the repository root, all reading the same config file (`$DIIT_PIPELINE_CONFIG`, default
`pipeline/config.json`; see pipeline/configs.py):

    python pipeline/diit.py                                                  # LocalDagRunner, one run
    tfx pipeline create --engine local --pipeline_path pipeline/diit.py      # register (executes this file)
    tfx run create --engine local --pipeline_name diit                       # run (executes this file again)

Evaluation data. The Evaluator scores the **eval split of the current span** (a hash-partitioned quarter of the
period's rows, raw examples straight from ExampleGen) which no trainer of this run fitted on, for the candidate
student and for the last blessed student (the baseline). That is the freshest labelled data a daily job has, and
it is what the push decision is about: "is the new student better than the served one on today's traffic?". It is
an in-period holdout for the candidate and an out-of-time score for the baseline (trained through the previous
period), so the comparison slightly favours the candidate; the strictly time-ordered number of docs/method.md (a model
trained through period p scored on period p+1) is exactly the *baseline's* score in the next run, which the demo
reports per period. The next span cannot be used: it does not exist yet when today's run decides to push.
"""
from __future__ import annotations

import os
import re
import sys
from typing import Optional

if __package__ in (None, ""):  # executed as a file (python pipeline/diit.py, or by the tfx CLI)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == "__main__":  # an entry point: quiet TensorFlow before it loads
    from diit_tf.quiet import quiet_logging

    quiet_logging()

import tensorflow_model_analysis as tfma  # noqa: E402
import tensorflow as tf  # noqa: E402
from tfx import v1 as tfx  # noqa: E402

from components.diit_trainer import DIITTrainer  # noqa: E402
from components.example_gen import SpanCsvExampleGen  # noqa: E402
from components.joint_trainer import JointTrainer  # noqa: E402
from components.pusher import AtomicPusher  # noqa: E402
from components.validation_gate import ValidationGate  # noqa: E402
from diit_tf.features import FeatureSpec  # noqa: E402
from pipeline import configs  # noqa: E402
from pipeline.schema import write_schema  # noqa: E402
from pipeline.scratch import run_scratch  # noqa: E402

SPAN_PATTERN = "span-{SPAN}/*"
PREDICTION_KEY = "probabilities"
STUDENT_ID = "diit_trainer"
BASE_ID = "base_trainer"
JOINT_ID = "joint_trainer"
INIT_JOINT_ID = "init_joint_trainer"  # `student.student_init` "joint_embeddings": the joint model of its start
EVALUATOR_ID = "evaluator"
PUSHER_ID = "pusher"
SERVING_MODEL_NAME = "diit"


def node_id(prefix: str, domain: str) -> str:
    """A component id for a domain name (ids allow letters, digits and underscores)."""
    return f"{prefix}_{re.sub(r'[^0-9A-Za-z_]', '_', domain)}"


def eval_config(spec: FeatureSpec, target_auc_floor: float, regression_tolerance: float) -> tfma.EvalConfig:
    """TFMA: AUC, log loss, example count, overall and per domain; target-slice AUC floor and no regression."""
    target_slice = tfma.SlicingSpec(feature_values={spec.domain: spec.target})
    auc_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": float(target_auc_floor)}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -float(regression_tolerance) - 1e-10}),
    )
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name="serving_default", label_key=spec.label,
                                    prediction_key=PREDICTION_KEY)],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[spec.domain])],
        metrics_specs=[tfma.MetricsSpec(metrics=[
            tfma.MetricConfig(class_name="ExampleCount"),
            tfma.MetricConfig(class_name="BinaryCrossentropy", config='"name": "logloss"'),
            tfma.MetricConfig(class_name="AUC", per_slice_thresholds=[
                tfma.PerSliceMetricThreshold(slicing_specs=[target_slice], threshold=auc_threshold)]),
        ])],
    )


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_dir: str,
    schema_path: str,
    serving_dir: str,
    spec: FeatureSpec,
    config: configs.PipelineConfig,
    metadata_connection_config=None,
    beam_pipeline_args=None,
) -> tfx.dsl.Pipeline:
    """The pipeline of one period. Pure: paths and settings in, `tfx.dsl.Pipeline` out.

    Args:
      pipeline_name, pipeline_root: TFX's.
      data_dir: the span layout (metadata.json, span-N/data.csv); the latest span (or `config["span"]`) is read.
      schema_path: the curated schema (schema.pbtxt) to import.
      serving_dir: the student is pushed into `<serving_dir>/diit/<version>/`.
      spec: the dataset's FeatureSpec (domains, target, columns).
      config: the pipeline config (trainer, evaluator, strategy, tuner settings); unset trainer settings come from
        its hyperparameters (`config.resolved(data_dir)`).
      metadata_connection_config: ML Metadata connection (None: the orchestrator's default).
      beam_pipeline_args: Beam args of every Beam-based component (default: config's).
    """
    if not spec.target or len(spec.domains) < 2:
        raise ValueError(f"the dataset's FeatureSpec needs a target and at least one source domain; "
                         f"domains={list(spec.domains)}, target={spec.target!r}")
    ids = [node_id("source_trainer", d) for d in spec.sources]
    if len(set(ids)) != len(ids):
        raise ValueError(f"source domain names {list(spec.sources)} collide as component ids {ids}; rename them")
    spec_dict = spec.to_dict()
    config = config.resolved(data_dir)
    strategy = dict(config["strategy"])
    components = []

    # ExampleGen: the latest span folder (or a fixed one), split train/eval by hash, typed by the FeatureSpec.
    span = config["span"]
    range_config = (tfx.proto.RangeConfig(static_range=tfx.proto.StaticRange(start_span_number=span,
                                                                             end_span_number=span))
                    if span is not None else None)
    example_gen = SpanCsvExampleGen(
        input_base=data_dir,
        input_config=tfx.proto.Input(splits=[tfx.proto.Input.Split(name="single_split", pattern=SPAN_PATTERN)]),
        output_config=tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=[
            tfx.proto.SplitConfig.Split(name=name, hash_buckets=buckets)
            for name, buckets in config["split_buckets"].items()])),
        range_config=range_config,
    )
    components.append(example_gen)
    # StatisticsGen: per-split statistics of the span.
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    components.append(statistics_gen)
    # ImportSchemaGen: the curated schema derived from the FeatureSpec (never re-inferred from today's data).
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_path)
    components.append(schema_gen)
    # ExampleValidator: the span against the schema.
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    components.append(example_validator)
    # ValidationGate: any anomaly stops the run here, naming the span and the fields.
    gate = ValidationGate(examples=example_gen.outputs["examples"], statistics=statistics_gen.outputs["statistics"],
                          anomalies=example_validator.outputs["anomalies"],
                          schema=schema_gen.outputs["schema"], input_base=data_dir).with_id("validation_gate")
    components.append(gate)
    # Transform: FeatureSpec.transform (stable hashed ids), on the validated schema only.
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=gate.outputs["validated_schema"],
        preprocessing_fn=configs.PREPROCESSING_FN,
        custom_config={"feature_spec": spec_dict},
    )
    components.append(transform)

    # The previous student (warm start of today's student, of the Tuner's trials, and the init joint trainer's cue).
    previous_student = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model, producer_component_id=STUDENT_ID,
                              output_key="model"),
    ).with_id("previous_student")

    def domain_trainer(trainer_id, previous_id, domain, joint_role=False, student_channel=None, **changes):
        """A Trainer of one domain's own model (SOURCE_RUN_FN; or, `joint_role`, the joint model: a `JointTrainer`
        with JOINT_RUN_FN, `domain` None, given the previous student in the init role), warm-started from its own
        previous model."""
        source = {**config["source"], **changes}
        previous = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
            model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model, producer_component_id=trainer_id,
                                  output_key="model"),
        ).with_id(previous_id)
        common = dict(
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            base_model=previous.outputs["model"],
            train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=source.pop("train_steps")),
            eval_args=tfx.proto.EvalArgs(splits=["eval"], num_steps=source.pop("eval_steps")),
            custom_config={"feature_spec": spec_dict, "strategy": strategy, **source,
                           **({"domain": domain} if domain is not None else {})},
        )
        if joint_role:
            trainer = JointTrainer(run_fn=configs.JOINT_RUN_FN, previous_student=student_channel, **common)
        else:
            trainer = tfx.components.Trainer(run_fn=configs.SOURCE_RUN_FN, **common)
        trainer = trainer.with_id(trainer_id)
        components.extend([previous, trainer])
        return trainer

    # One trainer per source domain, each warm-started from its own previous-period model; or, with the joint
    # teacher, one joint model over every domain instead (the student's one teacher, never pushed).
    source_models, student = {}, dict(config["student"])
    joint = config["joint_teacher"]
    if joint["enabled"]:
        trainer = domain_trainer(JOINT_ID, "previous_joint", None, joint_role=True,
                                 learning_rate=joint["learning_rate"])
        source_models["joint"] = trainer.outputs["model"]
        student["teacher"] = "joint"
    else:
        for domain in spec.sources:
            trainer = domain_trainer(node_id("source_trainer", domain), node_id("previous_source", domain), domain)
            source_models[domain] = trainer.outputs["model"]
    # The init joint trainer (student_init "joint_embeddings"): the joint model, with the `source` settings, on every
    # row, whose embedding tables start a student that has no previous model; once there is a previous student it
    # trains nothing (its artifact says so) and the student warm-starts from its own model. Never pushed.
    init_model = None
    if student["student_init"] == "joint_embeddings":
        init_model = domain_trainer(INIT_JOINT_ID, "previous_init_joint", None, joint_role=True,
                                    student_channel=previous_student.outputs["model"]).outputs["model"]
    # The target's single-domain base (optional): what the student is compared with, never pushed.
    if config["base_trainer"]["enabled"]:
        domain_trainer(BASE_ID, "previous_base", spec.target)
    components.append(previous_student)

    # Tuner (optional): a DIIT sweep on this span's transformed examples; its best hyperparameters reach the DIIT
    # trainer.
    hyperparameters = None
    tuner_config = config["tuner"]
    if tuner_config["enabled"]:
        tuner = tfx.components.Tuner(
            tuner_fn=tuner_config["tuner_fn"],
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            base_model=previous_student.outputs["model"],
            train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=tuner_config["train_steps"]),
            eval_args=tfx.proto.EvalArgs(splits=["eval"], num_steps=tuner_config["eval_steps"]),
            custom_config={"feature_spec": spec_dict, **tuner_config["custom_config"]},
        )
        components.append(tuner)
        hyperparameters = tuner.outputs["best_hyperparameters"]

    # DIIT trainer: the student, from the K latest source models (or the joint model); a first student may start
    # from the init joint trainer's tables.
    diit_trainer = DIITTrainer(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        source_models=source_models,
        base_model=previous_student.outputs["model"],
        hyperparameters=hyperparameters,
        init_model=init_model,
        custom_config={"feature_spec": spec_dict, "strategy": strategy, **student},
    ).with_id(STUDENT_ID)
    components.append(diit_trainer)

    # The last blessed student: the Evaluator's baseline (no regression).
    blessed_student = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model, producer_component_id=STUDENT_ID,
                              output_key="model"),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing,
                                       producer_component_id=EVALUATOR_ID, output_key="blessing"),
    ).with_id("last_blessed_student")
    # Evaluator: TFMA on the span's eval split, overall and per domain; blesses or not.
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=diit_trainer.outputs["model"],
        baseline_model=blessed_student.outputs["model"],
        example_splits=["eval"],
        eval_config=eval_config(spec, config["evaluator"]["target_auc_floor"],
                                config["evaluator"]["regression_tolerance"]),
    ).with_id(EVALUATOR_ID)
    # Pusher: the student alone, only when blessed, atomically into <serving_dir>/diit/<version>/.
    pusher = AtomicPusher(
        model=diit_trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(filesystem=tfx.proto.PushDestination.Filesystem(
            base_directory=os.path.join(serving_dir, SERVING_MODEL_NAME))),
    ).with_id(PUSHER_ID)
    components += [blessed_student, evaluator, pusher]

    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=bool(config["enable_cache"]),
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args if beam_pipeline_args is not None
                                else config["beam_pipeline_args"]),
    )


def check_data_dir(config: configs.PipelineConfig, data_dir: str) -> None:
    """A FileNotFoundError naming where `data_dir` came from (the config file, or e.g. --dataset) when `data_dir`
    holds no dataset."""
    if not os.path.isfile(os.path.join(data_dir, "metadata.json")):
        raise FileNotFoundError(f"data_dir {data_dir!r} (from {config.origin('data_dir')}) holds no dataset "
                                "(metadata.json); name a dataset (e.g. synthetic) or write one first, e.g. `diit data "
                                "synthetic --out runs/data/synthetic`")


def pipeline_from_config(config: Optional[configs.PipelineConfig] = None, metadata: bool = True) -> tfx.dsl.Pipeline:
    """Build the pipeline from a config (default: `load_config()`): resolves paths, reads the FeatureSpec, writes
    the curated schema when no `schema_path` is configured."""
    from diit_tf.data import load_spec

    config = config or configs.load_config()
    data_dir = config.data_dir()
    check_data_dir(config, data_dir)
    spec = load_spec(data_dir)
    pipeline_root = config.path("pipeline_root")
    schema_path = config.path("schema_path") or write_schema(spec, os.path.join(pipeline_root, "schema",
                                                                                 "schema.pbtxt"))
    if not tf.io.gfile.exists(schema_path):
        raise FileNotFoundError(f"schema_path {schema_path!r} (from {config.origin('schema_path')}) does not exist")
    metadata_config = None
    if metadata:
        os.makedirs(os.path.dirname(config.path("metadata_path")), exist_ok=True)
        metadata_config = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.path("metadata_path"))
    return create_pipeline(
        pipeline_name=config["pipeline_name"],
        pipeline_root=pipeline_root,
        data_dir=data_dir,
        schema_path=schema_path,
        serving_dir=config.path("serving_dir"),
        spec=spec,
        config=config,
        metadata_connection_config=metadata_config,
    )


def run(config: Optional[configs.PipelineConfig] = None) -> None:
    """One pipeline run (one period) with LocalDagRunner, in a temporary directory of its own that is removed
    afterwards (pipeline/scratch.py: TFX's Beam components leave a 49 MB package copy there per run)."""
    with run_scratch():
        tfx.orchestration.LocalDagRunner().run(pipeline_from_config(config))


if __name__ == "__main__":
    run()
