"""An atomic, idempotent Pusher executor: the student's SavedModel into `<base_directory>/<version>/`.

The stock Pusher copies file by file into the final version directory, so TF Serving (which polls the model base
path) can see a half-copied version, and a run killed after the copy but before ML Metadata recorded it pushes the
same model again under a new version on restart. This executor:

- pushes only when the Evaluator blessed the model (the stock `CheckBlessing`);
- copies only `<model_uri>/Format-Serving` (the student alone: teachers, gate, mapper and discriminator were never
  exported; the Keras backbone kept under `keras/` for warm start is not pushed);
- writes into a hidden temporary sibling `.<version>.tmp-<id>` and renames it into place (a rename within one
  filesystem is atomic), after removing temporary leftovers of killed pushes;
- recognises a model that is already being served (same SavedModel fingerprint) and records that version instead
  of pushing again, so a re-run after a crash pushes once;
- numbers versions by Unix time, strictly above every existing version.
"""
from __future__ import annotations

import hashlib
import os
import time
import uuid
from typing import Any, Dict, List, Optional

from absl import logging
from tfx import types
from tfx.components.pusher import component as pusher_component
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

TMP_MARK = ".tmp-"


def model_fingerprint(saved_model_dir: str) -> str:
    """A digest identifying a SavedModel: its `fingerprint.pb` (TF >= 2.12) or else its `saved_model.pb`."""
    for name in ("fingerprint.pb", "saved_model.pb"):
        path = os.path.join(saved_model_dir, name)
        if fileio.exists(path):
            with fileio.open(path, "rb") as f:
                return hashlib.sha256(f.read()).hexdigest()
    raise FileNotFoundError(f"{saved_model_dir!r} is not a SavedModel (no saved_model.pb)")


def versions(base_directory: str) -> List[int]:
    """The integer version directories under `base_directory` (what TF Serving loads), ascending."""
    if not fileio.exists(base_directory):
        return []
    out = []
    for name in fileio.listdir(base_directory):
        name = name.rstrip("/")
        if name.isdigit() and fileio.isdir(os.path.join(base_directory, name)):
            out.append(int(name))
    return sorted(out)


def push_atomically(model_dir: str, base_directory: str, now: Optional[float] = None) -> tuple:
    """Push SavedModel `model_dir` under `base_directory`. Returns (version, pushed_now: bool)."""
    fileio.makedirs(base_directory)
    for name in fileio.listdir(base_directory):
        if TMP_MARK in name:
            logging.info("pusher: removing leftover %s of an interrupted push", name)
            fileio.rmtree(os.path.join(base_directory, name.rstrip("/")))
    fingerprint = model_fingerprint(model_dir)
    existing = versions(base_directory)
    for version in reversed(existing):
        try:
            if model_fingerprint(os.path.join(base_directory, str(version))) == fingerprint:
                logging.info("pusher: this model is already served as version %d; not pushing it again", version)
                return version, False
        except FileNotFoundError:
            continue
    version = max([int(now if now is not None else time.time())] + [v + 1 for v in existing])
    tmp = os.path.join(base_directory, f".{version}{TMP_MARK}{uuid.uuid4().hex[:8]}")
    try:
        io_utils.copy_dir(model_dir, tmp)
        fileio.rename(tmp, os.path.join(base_directory, str(version)))
    finally:
        if fileio.exists(tmp):
            fileio.rmtree(tmp)
    return version, True


class Executor(pusher_executor.Executor):
    """Pusher executor with an atomic, idempotent filesystem push (see the module docstring)."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            logging.info("pusher: the student was not blessed; nothing pushed")
            self._MarkNotPushed(model_push)
            return
        model_dir = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError("the DIIT pusher pushes to a filesystem destination only")
        base_directory = destination.filesystem.base_directory
        version, pushed_now = push_atomically(model_dir, base_directory)
        serving_path = os.path.join(base_directory, str(version))
        logging.info("pusher: student %s as %s", "pushed" if pushed_now else "already served", serving_path)
        io_utils.copy_dir(model_dir, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=str(version))


class AtomicPusher(pusher_component.Pusher):
    """The stock `Pusher` interface with the atomic, idempotent executor above."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
