# The container image of the DIIT pipeline on Kubeflow Pipelines V2 / Vertex AI Pipelines: every component's
# executor runs in it (`diit pipeline compile --image <this image>` writes it into the compiled JSON as each task's
# image; the task's command is TFX's `python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`).
# It holds Python 3.10 (the one Python TFX 1.16 installs on), exactly the pins of requirements.txt, and this
# repository installed without dependencies, so the executors import `diit_tf` and `components`. It also carries
# Beam's SDK harness launcher (its ENTRYPOINT), so Dataflow can run it as `--sdk_container_image`: Transform's and
# the Evaluator's workers import this repository too. (Kubeflow's task command replaces the ENTRYPOINT.)
#
#   docker build -t gcr.io/<project>/diit:<version> .
#   docker push gcr.io/<project>/diit:<version>
#   diit pipeline compile --image gcr.io/<project>/diit:<version> --config my-vertex-config.json --out diit_pipeline.json
FROM apache/beam_python3.10_sdk:2.74.0 AS beam

FROM python:3.10.13-slim

COPY --from=beam /opt/apache/beam /opt/apache/beam
ENTRYPOINT ["/opt/apache/beam/boot"]

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=3

WORKDIR /pipeline

# The pins first (a layer reused while only the code changes). A current pip resolves the TFX pins in minutes;
# the bundled one backtracks for a long time.
COPY requirements.txt ./
RUN python -m pip install --upgrade pip \
 && python -m pip install -r requirements.txt

# This repository, without touching the pinned dependencies.
COPY pyproject.toml README.md ./
COPY diit_tf ./diit_tf
COPY components ./components
COPY pipeline ./pipeline
COPY serving ./serving
RUN python -m pip install --no-deps . \
 && python -c "import diit_tf, components.diit_trainer, components.source_trainer, pipeline.diit" \
 && diit --help > /dev/null
