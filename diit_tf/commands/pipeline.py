"""`diit pipeline`: run one period of the TFX pipeline locally, compile it for Kubeflow V2 / Vertex, or show what
the last run produced. Settings come from the pipeline config file (docs/pipeline.md)."""
from __future__ import annotations

import json
import time


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
    run.set_defaults(func=_run)

    comp = sub.add_parser("compile", help="compile for Kubeflow Pipelines V2 / Vertex AI (writes the pipeline JSON)",
                          description="Compile the same pipeline with KubeflowV2DagRunner into a pipeline JSON "
                          "(no cluster is contacted). Paths in the config may be gs:// URIs.")
    comp.add_argument("--config", help="pipeline config JSON")
    comp.add_argument("--image", required=True, help="container image holding this repository installed")
    comp.add_argument("--out", required=True, help="pipeline JSON to write")
    comp.set_defaults(func=_compile)


def _config(args):
    from pipeline import configs

    overrides = {"span": args.span} if getattr(args, "span", None) is not None else None
    return configs.load_config(args.config, overrides=overrides)


def _run(args) -> int:
    from pipeline import diit, results

    config = _config(args)
    start = time.time()
    print(f"[pipeline] running {config['pipeline_name']!r} on {config.path('data_dir')} "
          f"(span {config['span'] if config['span'] is not None else 'latest'})", flush=True)
    diit.run(config)
    summary = results.run_summary(config.path("metadata_path"), since_ms=int(start * 1000))
    print(json.dumps(summary, indent=2))
    print(f"[pipeline] done in {time.time() - start:.0f} s")
    return 0


def _compile(args) -> int:
    from tfx import v1 as tfx

    from pipeline import diit

    config = _config(args)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=args.image),
        output_filename=args.out)
    runner.run(diit.pipeline_from_config(config, metadata=False))
    print(f"[pipeline] wrote {args.out}")
    return 0
