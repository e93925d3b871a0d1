"""Server-side batching for the local server, as TF Serving's `--enable_batching` does.

Concurrent requests for the same model version and signature are merged into one call of the SavedModel (rows
concatenated, outputs split back per request), which saves the fixed cost of a model call per request. The knobs are
TF Serving's `BatchingParameters`, read from the same text proto file (`serving/configs/batching_parameters.txt`):

- `max_batch_size`: at most this many rows per merged call; a single request with more rows is refused.
- `batch_timeout_micros`: how long the oldest queued request may wait for others before its batch runs anyway.
- `num_batch_threads`: batches run in parallel on this many threads.
- `max_enqueued_batches`: queued rows beyond `max_enqueued_batches * max_batch_size` are refused with UNAVAILABLE.

A merged call that fails (e.g. one request holds an unparsable serialized example) is retried request by request, so
each error reaches only the request that caused it.

Example:
    batcher = Batcher(BatchingParameters.from_file("serving/configs/batching_parameters.txt"), execute)
    outputs = batcher.submit(version, "predict", {"user_id": np.array([b"1", b"2"], dtype=object), ...}, rows=2)
    batcher.stop()
"""
from __future__ import annotations

import collections
import dataclasses
import re
import threading
import time
from typing import Callable, Mapping

import numpy as np

_INT_FIELDS = ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads")
_FIELD = re.compile(r"(\w+)\s*(?:\{\s*value\s*:\s*([^\s}]+)\s*\}|:\s*(\S+))")


class QueueFullError(Exception):
    """More rows are waiting than the queue holds (`max_enqueued_batches * max_batch_size`)."""


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's `BatchingParameters` (the fields the local server honours), with its file's defaults."""

    max_batch_size: int = 1024
    batch_timeout_micros: int = 1000
    max_enqueued_batches: int = 100
    num_batch_threads: int = 2

    def __post_init__(self):
        for name in _INT_FIELDS:
            value = getattr(self, name)
            low = 0 if name == "batch_timeout_micros" else 1
            if not isinstance(value, int) or value < low:
                raise ValueError(f"batching parameter {name} should be an integer >= {low}. Received: {value!r}")

    @classmethod
    def parse(cls, text: str, source: str = "<text>") -> "BatchingParameters":
        """Parse the text proto (`name { value: N }` or `name: value` per field, `#` comments)."""
        body = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
        values = {}
        for match in _FIELD.finditer(body):
            name, raw = match.group(1), match.group(2) or match.group(3)
            if name in _INT_FIELDS:
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise ValueError(f"{source}: {name} should be an integer. Received: {raw!r}") from None
            elif name == "pad_variable_length_inputs":
                if raw.lower() not in ("false", "0"):
                    raise ValueError(f"{source}: pad_variable_length_inputs is not supported by the local server "
                                     "(every input has shape [batch]); set it to false")
            else:
                raise ValueError(f"{source}: batching parameter {name!r} is not supported by the local server; "
                                 f"supported: {list(_INT_FIELDS) + ['pad_variable_length_inputs']}")
        leftover = _FIELD.sub("", body).strip()
        if leftover:
            raise ValueError(f"{source}: cannot parse {leftover.split()[0]!r} (expected `name {{ value: N }}` lines)")
        try:
            return cls(**values)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None

    def to_text(self) -> str:
        """The text proto TF Serving's `--batching_parameters_file` reads (and `parse` reads back)."""
        return "".join(f"{name} {{ value: {getattr(self, name)} }}\n" for name in _INT_FIELDS)

    @classmethod
    def from_file(cls, path: str) -> "BatchingParameters":
        try:
            with open(path) as f:
                text = f.read()
        except OSError as err:
            raise ValueError(f"cannot read the batching parameters file {path!r}: {err.strerror}") from None
        return cls.parse(text, path)


class _Task:
    __slots__ = ("key", "version", "signature", "inputs", "rows", "arrival", "done", "outputs", "error")

    def __init__(self, version, signature: str, inputs: Mapping[str, np.ndarray], rows: int):
        self.key = (id(version), signature, tuple(sorted(inputs)))
        self.version, self.signature, self.inputs, self.rows = version, signature, inputs, rows
        self.arrival = time.monotonic()
        self.done = threading.Event()
        self.outputs = None
        self.error = None


class Batcher:
    """Merges concurrent `submit` calls into batches run by `execute(version, signature, inputs) -> outputs`.

    `execute` takes and returns {name: np.ndarray} with the batch as the first dimension; it raises the server's
    request errors, which are handed to the requests of the failed batch (after a per-request retry).
    """

    def __init__(self, params: BatchingParameters, execute: Callable):
        self.params = params
        self._execute = execute
        self._queue = collections.deque()
        self._queued_rows = 0
        self._cond = threading.Condition()
        self._stopped = False
        self.batches_run = 0  # counters for tests and benchmarks
        self.requests_run = 0
        self._threads = [threading.Thread(target=self._loop, name=f"diit-batch-{i}", daemon=True)
                         for i in range(params.num_batch_threads)]
        for t in self._threads:
            t.start()

    def submit(self, version, signature: str, inputs: Mapping[str, np.ndarray], rows: int) -> dict:
        """Queue one validated request of `rows` rows and block until its batch has run; returns its outputs."""
        if rows > self.params.max_batch_size:
            raise ValueError(f"batch size {rows} is larger than the batching max_batch_size "
                             f"{self.params.max_batch_size}")
        task = _Task(version, signature, inputs, rows)
        with self._cond:
            if self._stopped:
                raise QueueFullError("the server is shutting down")
            if self._queued_rows + rows > self.params.max_enqueued_batches * self.params.max_batch_size:
                raise QueueFullError(f"the batching queue is full ({self._queued_rows} rows waiting; "
                                     f"max_enqueued_batches={self.params.max_enqueued_batches})")
            self._queue.append(task)
            self._queued_rows += rows
            self._cond.notify()
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    def stop(self) -> None:
        """Run what is queued, then end the batch threads."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=10)

    # ------------------------------------------------------------------------------------------------ batch threads
    def _take_batch(self) -> list:
        """Wait for the oldest task's batch to fill up or time out, then remove and return it (empty when stopped)."""
        timeout = self.params.batch_timeout_micros / 1e6
        with self._cond:
            while True:
                while not self._queue and not self._stopped:
                    self._cond.wait()
                if not self._queue:
                    return []
                first = self._queue[0]
                rows = sum(t.rows for t in self._queue if t.key == first.key)
                wait = first.arrival + timeout - time.monotonic()
                if rows >= self.params.max_batch_size or wait <= 0 or self._stopped:
                    break
                self._cond.wait(wait)
            batch, rows, keep = [], 0, collections.deque()
            for task in self._queue:
                if task.key == first.key and rows + task.rows <= self.params.max_batch_size:
                    batch.append(task)
                    rows += task.rows
                else:
                    keep.append(task)
            self._queue = keep
            self._queued_rows -= rows
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                return
            self._run(batch)

    def _run(self, batch: list) -> None:
        if len(batch) > 1:
            try:
                self._run_merged(batch)
                return
            except Exception:  # noqa: BLE001 -- retried one by one below, so each request gets its own error
                pass
        for task in batch:
            try:
                task.outputs = self._execute(task.version, task.signature, task.inputs)
            except Exception as err:  # noqa: BLE001 -- handed to the waiting request thread
                task.error = err
            task.done.set()
        self._count(batches=len(batch), requests=len(batch))

    def _run_merged(self, batch: list) -> None:
        first = batch[0]
        merged = {k: np.concatenate([t.inputs[k] for t in batch]) for k in first.inputs}
        outputs = self._execute(first.version, first.signature, merged)
        total = sum(t.rows for t in batch)
        for name, value in outputs.items():
            if np.ndim(value) == 0 or len(value) != total:
                raise ValueError(f"output {name!r} has no batch dimension; cannot split a merged batch")
        cuts = np.cumsum([t.rows for t in batch])[:-1]
        parts = {name: np.split(value, cuts) for name, value in outputs.items()}
        for i, task in enumerate(batch):
            task.outputs = {name: pieces[i] for name, pieces in parts.items()}
            task.done.set()
        self._count(batches=1, requests=len(batch))

    def _count(self, batches: int, requests: int) -> None:
        with self._cond:  # batch threads run concurrently: `+=` on the counters needs the lock
            self.batches_run += batches
            self.requests_run += requests
