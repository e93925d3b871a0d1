"""What the DIIT trainer's launchers share (`VertexDIITTrainer` in components/diit_trainer_vertex.py,
`TFJobDIITTrainer` in components/diit_trainer_tfjob.py): a launcher is `DIITTrainer` with another executor, which
runs the DIIT trainer's own executor (`REPLICA_EXECUTOR`) in N replicas elsewhere and waits for them.

Every launcher keeps its settings in `custom_config` next to the student's, under keys of its own; the replicas get
`custom_config` without them (`split_config`, `replica_properties`), and more than one replica needs the
`"multi_worker"` strategy (`check_strategy`). A replica runs TFX's `run_executor` script on the component's own
artifacts (`replica_command`: the command TFX gives Vertex's replicas, `training_clients.generate_container_command`).
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional

from tfx import types
from tfx.types import artifact_utils
from tfx.utils import name_utils

from components import diit_trainer

# What each replica runs (`python -m tfx.scripts.run_executor --executor_class_path ...`).
REPLICA_EXECUTOR = name_utils.get_full_name(diit_trainer.Executor)
RUN_EXECUTOR = ["python", "-m", "tfx.scripts.run_executor"]  # TFX's entry point, in the image's `python`


def split_config(custom_config: Mapping, launcher_keys) -> tuple:
    """`(training config, launcher settings)`: the DIIT trainer's custom_config without / with `launcher_keys`."""
    training = {k: v for k, v in custom_config.items() if k not in launcher_keys}
    return training, {k: custom_config[k] for k in launcher_keys if k in custom_config}


def check_strategy(training: Mapping, replicas: int, role: str) -> None:
    """More than one replica trains one model only under the `"multi_worker"` (or, where the launcher has
    parameter servers, `"parameter_server"`) strategy: a `ValueError` otherwise."""
    strategy = (training.get("strategy") or {}).get("name", "default")
    if replicas > 1 and strategy not in ("multi_worker", "parameter_server"):
        raise ValueError(f"{role}: {replicas} replicas need custom_config strategy.name 'multi_worker' (each replica "
                         f"would otherwise train alone). Received: {strategy!r}")


def launcher_config(exec_properties: Mapping[str, Any], check, launcher_keys, role: str) -> tuple:
    """`(launcher settings, training config)` of a launcher executor's `custom_config`: `check(config)` the settings
    (a `ValueError` names the key), and the training config's keys checked too, before anything is sent."""
    config = json.loads(exec_properties.get("custom_config") or "{}")
    settings = check(config)
    training, _ = split_config(config, launcher_keys)
    diit_trainer.check_config_keys(training, where=role)
    return settings, training


def replica_properties(exec_properties: Mapping[str, Any], training: Mapping) -> Dict[str, Any]:
    """The replicas' exec properties: the launcher's, with the training config alone as `custom_config` (serialized
    as `DIITTrainer` serializes it: sorted keys, the feature spec's order is the backbone's layer order)."""
    return {**exec_properties, "custom_config": json.dumps(dict(training), sort_keys=True)}


def replica_command(input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
                    exec_properties: Mapping[str, Any]) -> List[str]:
    """`python -m tfx.scripts.run_executor --executor_class_path <REPLICA_EXECUTOR> --inputs <JSON> --outputs <JSON>
    --exec-properties <JSON>`: the DIIT trainer's executor on these artifacts, serialized by TFX's
    `artifact_utils.jsonify_artifact_dict` (what `run_executor` parses back), as TFX does for Vertex's replicas."""
    return RUN_EXECUTOR + [
        "--executor_class_path", REPLICA_EXECUTOR,
        "--inputs", artifact_utils.jsonify_artifact_dict(input_dict),
        "--outputs", artifact_utils.jsonify_artifact_dict(output_dict),
        "--exec-properties", json.dumps(dict(exec_properties), sort_keys=True),
    ]


class LaunchedDIITTrainer(diit_trainer.DIITTrainer):
    """`DIITTrainer` whose executor runs the training elsewhere: a subclass sets `EXECUTOR_SPEC`, `EXTRA_CONFIG_KEYS`
    (its launcher keys) and `check_launcher(custom_config)`, which fails when the pipeline is built if the launcher
    settings are incomplete."""

    @staticmethod
    def check_launcher(custom_config: Mapping) -> Any:
        raise NotImplementedError

    def __init__(self, examples: types.BaseChannel, transform_graph: types.BaseChannel,
                 source_models: Mapping[str, types.BaseChannel], custom_config: Mapping,
                 base_model: Optional[types.BaseChannel] = None,
                 hyperparameters: Optional[types.BaseChannel] = None,
                 init_model: Optional[types.BaseChannel] = None):
        self.check_launcher(custom_config)
        super().__init__(examples=examples, transform_graph=transform_graph, source_models=source_models,
                         custom_config=custom_config, base_model=base_model, hyperparameters=hyperparameters,
                         init_model=init_model)
