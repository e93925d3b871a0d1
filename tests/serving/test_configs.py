"""The TF Serving configs parse as what TF Serving expects, and agree with each other and with the local server."""
import os
import re

import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "serving", "configs")
BATCHING_FIELDS = {"max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
                   "pad_variable_length_inputs", "allowed_batch_sizes", "thread_pool_name",
                   "enable_large_batch_splitting", "max_execution_batch_size"}


def test_models_config_is_a_model_server_config_for_diit():
    with open(os.path.join(CONFIGS, "models.config")) as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == ("diit", "/models/diit", "tensorflow")
    assert model.model_version_policy.latest.num_versions == 1


def test_batching_parameters_use_known_fields():
    with open(os.path.join(CONFIGS, "batching_parameters.txt")) as f:
        lines = [ln.split("#")[0].strip() for ln in f]
    fields = [re.match(r"(\w+)", ln).group(1) for ln in lines if ln]
    assert fields and set(fields) <= BATCHING_FIELDS
    text = "\n".join(lines)
    assert re.search(r"max_batch_size \{ value: \d+ \}", text)


def test_docker_compose_points_tf_serving_at_the_configs():
    with open(os.path.join(CONFIGS, "docker-compose.yml")) as f:
        compose = yaml.safe_load(f)
    service = compose["services"]["tf-serving"]
    assert service["image"].startswith("tensorflow/serving:")
    assert {"127.0.0.1:8500:8500", "127.0.0.1:8501:8501"} <= set(service["ports"])
    flags = dict(arg.lstrip("-").split("=", 1) for arg in service["command"])
    assert flags["model_config_file"] == "/configs/models.config"
    assert flags["batching_parameters_file"] == "/configs/batching_parameters.txt"
    assert any(v.endswith(":/models:ro") for v in service["volumes"])
