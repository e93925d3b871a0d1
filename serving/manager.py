"""The version manager: which version of the model is served, and hot reload (TF Serving's `latest` policy).

`ModelManager` keeps the highest good numeric version under `model_dir` loaded and polls for newer ones. A new
version replaces the served one only once it has loaded and passed its smoke test (`serving/smoke.py`): a corrupt
or half-written version never replaces the one being served, and is retried only when its directory changes.
When the served version's directory is removed, the highest remaining good version takes over.

The served version is one reference (`current`), replaced in a single assignment; the `LoadedVersion` it points
to never changes, so request threads read it without a lock. Polls (the poller thread, `start`) hold `_lock`.

Example:
    manager = ModelManager("serving_dir/diit", poll_seconds=2.0)
    manager.start(); version = manager.resolve("diit"); ...; manager.stop()
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Optional

import grpc

from serving.codec import ServingError, not_found
from serving.flags import MODEL_NAME, numbered_versions
from serving.servable import LoadedVersion

log = logging.getLogger("diit.serving")


def dir_fingerprint(path: str) -> tuple:
    """Changes whenever a file under `path` is added, removed, resized or touched (to retry a failed version)."""
    items = []
    for root, _, files in os.walk(path):
        for name in files:
            try:
                st = os.stat(os.path.join(root, name))
            except OSError:
                continue
            items.append((os.path.relpath(os.path.join(root, name), path), st.st_size, st.st_mtime_ns))
    return tuple(sorted(items))


class ModelManager:
    """Keeps the highest good numeric version under `model_dir` loaded; polls for newer ones.

    Args:
      model_dir: the model base path (numeric version subdirectories, each a SavedModel).
      model_name: the name clients address.
      poll_seconds: seconds between polls (0: load once at `start`).
      proto_path, flat_call: how versions are called (see `LoadedVersion`).
    """

    def __init__(self, model_dir: str, model_name: str = MODEL_NAME, poll_seconds: float = 2.0,
                 proto_path: bool = True, flat_call: bool = True):
        if not os.path.isdir(model_dir):
            raise FileNotFoundError(f"--model-dir {model_dir!r} is not a directory (expected <dir>/<version>/saved_model.pb)")
        self.model_dir = model_dir
        self.model_name = model_name
        self.poll_seconds = poll_seconds
        self.proto_path = proto_path
        self.flat_call = flat_call
        self.current: Optional[LoadedVersion] = None
        self.failed = {}  # version -> (fingerprint, error message); changed under _lock
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    def versions(self) -> list:
        return numbered_versions(self.model_dir)

    def poll_once(self) -> bool:
        """Load the newest version that is newer than the served one and passes the smoke test. True if switched."""
        with self._lock:
            served = self.current.version if self.current else -1
            # Rollback: when the served version's directory is removed, the highest remaining good version takes
            # over (as with TF Serving's `latest` policy); until one loads, the removed version keeps serving.
            floor = served if self.current is None or os.path.isdir(self.current.path) else -1
            for version in self.versions():
                if version <= floor or version == served:
                    break
                path = os.path.join(self.model_dir, str(version))
                fingerprint = dir_fingerprint(path)
                if version in self.failed and self.failed[version][0] == fingerprint:
                    continue
                try:
                    candidate = LoadedVersion(version, path, proto_path=self.proto_path, flat_call=self.flat_call)
                except Exception as err:  # noqa: BLE001 -- any failure keeps the served version
                    message = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                    self.failed[version] = (fingerprint, message)
                    log.warning("model %s version %d not loaded (keeping version %s): %s",
                                self.model_name, version, served if served >= 0 else "none", message)
                    continue
                self.current = candidate
                self.failed.pop(version, None)
                log.warning("serving model %s version %d from %s", self.model_name, version, path)
                return True
        return False

    def start(self) -> None:
        self.poll_once()
        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._loop, name="diit-version-poller", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 -- the poller must survive e.g. a vanished directory
                log.exception("version poll failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def resolve(self, name: str, version: Optional[int] = None, label: str = "") -> LoadedVersion:
        """The served version for a request naming model `name` (and optionally a version or label)."""
        if name != self.model_name:
            raise not_found(f"Servable not found for request: unknown model {name!r}; "
                            f"this server serves {self.model_name!r}")
        current = self.current
        if current is None:
            raise ServingError(grpc.StatusCode.UNAVAILABLE,
                               f"model {name!r} has no servable version under {self.model_dir} yet")
        if label:
            raise not_found(f"version label {label!r} of model {name!r} is not defined")
        if version is not None and version != current.version:
            raise not_found(f"version {version} of model {name!r} is not available; "
                            f"serving version {current.version}")
        return current
