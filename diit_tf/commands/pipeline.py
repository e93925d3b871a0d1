"""`diit pipeline`: run one period of the TFX pipeline locally, or compile it for Kubeflow V2 / Vertex. Settings
come from the pipeline config file (docs/pipeline.md); `--dataset` and `--hparams` override its `data_dir` and
`hparams`."""
from __future__ import annotations

import json
import os
import time

from diit_tf.commands._argtypes import add_dataset_arguments, hparams_flag


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "pipeline",
        help="run / compile the DIIT TFX pipeline (one run = one period)",
        description="The DIIT TFX pipeline (docs/pipeline.md). Settings come from --config, else "
        "$DIIT_PIPELINE_CONFIG, else pipeline/config.json; relative paths are taken from the repository root.",
    )
    sub = parser.add_subparsers(dest="pipeline_command", metavar="<action>")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    run = sub.add_parser("run", help="one LocalDagRunner run over the latest span (or --span N)",
                         description="Run the pipeline once with LocalDagRunner: the latest span of data_dir (or "
                         "--span), validation, Transform, source trainers, DIIT trainer, Evaluator, Pusher. "
                         "Prints the evaluation, blessing and push of the run.")
    run.add_argument("--config", help="pipeline config JSON (default: $DIIT_PIPELINE_CONFIG or pipeline/config.json)")
    run.add_argument("--span", type=int, help="process this span instead of the latest")
    _add_overrides(run)
    run.set_defaults(func=_run)

    comp = sub.add_parser("compile", help="compile for Kubeflow Pipelines V2 / Vertex AI (writes the pipeline JSON)",
                          description="Compile the same pipeline with KubeflowV2DagRunner into a pipeline JSON "
                          "(no cluster is contacted). Paths in the config may be gs:// URIs.")
    comp.add_argument("--config", help="pipeline config JSON")
    comp.add_argument("--image", required=True, help="container image holding this repository installed")
    comp.add_argument("--out", required=True, help="pipeline JSON to write")
    _add_overrides(comp)
    comp.set_defaults(func=_compile)


def _add_overrides(parser) -> None:
    add_dataset_arguments(parser, override="the config's data_dir")
    parser.add_argument("--hparams", default=None, metavar="NAME|JSON",
                        help="hyperparameter preset or file (from the current directory) of every trainer (default: the "
                             "config's `hparams`, from the repository root; null "
                             "there: the preset validated on the dataset)")
    parser.add_argument("--joint-teacher", action="store_true",
                        help="one joint multi-domain model instead of the source trainers, distilled into the "
                        "student (sets `joint_teacher.enabled`; docs/pipeline.md, \"The joint teacher\")")
    parser.add_argument("--kd-origin", action="store_true",
                        help="the student distils each mix row from the source it came from, by logit KD with "
                        "kd_origin's beta from the hparams (sets `kd_origin.enabled`; docs/pipeline.md, \"Routing by "
                        "origin\")")


def _absolute_if_path(value: str) -> str:
    """Names stay names; an existing file or directory becomes absolute (config paths are read from the repository
    root, command-line paths from the current directory)."""
    return os.path.abspath(value) if os.path.exists(value) else value


def _config(args):
    from pipeline import configs

    overrides, origins = {}, {}
    if getattr(args, "span", None) is not None:
        overrides["span"], origins["span"] = args.span, "--span"
    if args.dataset:
        overrides["data_dir"], origins["data_dir"] = _absolute_if_path(args.dataset), "--dataset"
    if args.data_root:
        overrides["data_root"], origins["data_root"] = os.path.abspath(args.data_root), "--data-root"
    if args.hparams:
        overrides["hparams"], origins["hparams"] = hparams_flag(args.hparams), "--hparams"
    if args.joint_teacher:  # run and compile both take it (_add_overrides)
        overrides["joint_teacher"], origins["joint_teacher.enabled"] = {"enabled": True}, "--joint-teacher"
    if args.kd_origin:
        overrides["kd_origin"], origins["kd_origin.enabled"] = {"enabled": True}, "--kd-origin"
    return configs.load_config(args.config, overrides=overrides or None, origins=origins)


def _run(args) -> int:
    from pipeline import diit, results

    from diit_tf.data.layout import list_spans, progress

    config = _config(args)
    start = time.time()
    data_dir = config.data_dir(log=progress)
    diit.check_data_dir(config, data_dir)  # before the "running" line
    span = config["span"]
    if span is not None and span not in list_spans(data_dir):  # else TFX: "Cannot find matching for split ..."
        raise ValueError(f"--span {span}: {data_dir} has no span-{span}/ (spans: {list_spans(data_dir)})")
    print(f"[pipeline] running {config['pipeline_name']!r} on {data_dir} "
          f"(span {config['span'] if config['span'] is not None else 'latest'}); trainer settings from "
          f"{config.resolved(data_dir).resolved_from}", flush=True)
    diit.run(config)
    summary = results.run_summary(config.path("metadata_path"), since_ms=int(start * 1000))
    print(json.dumps(summary, indent=2))
    print(f"[pipeline] done in {time.time() - start:.0f} s")
    return 0


def _compile(args) -> int:
    from tfx import v1 as tfx

    from pipeline import diit

    if not args.image.strip():  # else compiled into a pipeline whose every step has no image to run in
        raise ValueError(f"--image is empty ({args.image!r}): give the container image holding this repository "
                         "installed (see the Dockerfile)")
    parent = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(parent):  # else a TensorFlow NotFoundError traceback after compiling
        raise FileNotFoundError(f"--out {args.out!r}: directory {parent} does not exist")
    config = _config(args)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=args.image),
        output_filename=args.out)
    runner.run(diit.pipeline_from_config(config, metadata=False))
    print(f"[pipeline] wrote {args.out}")
    return 0
