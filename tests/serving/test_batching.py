"""Server-side batching: the BatchingParameters file, merging and splitting by hand, error isolation, a full queue,
and the local server with batching on (same predictions as without)."""
import os
import threading
import time

import numpy as np
import pytest

from serving.batching import Batcher, BatchingParameters, QueueFullError
from serving.client import GrpcClient, RestClient, ServingClientError

from serving_fixtures import ROWS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Doubler:
    """execute(version, signature, inputs): y = 2x per row; refuses negative x; records each call's row count."""

    def __init__(self, gate=None):
        self.calls = []
        self.gate = gate
        self.started = threading.Event()

    def __call__(self, version, signature, inputs):
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        x = inputs["x"]
        self.calls.append(len(x))
        if np.any(x < 0):
            raise ValueError("negative x")
        return {"y": 2 * x}


def _submit_all(batcher, requests):
    """Submit each {"x": array} from its own thread at once; return [(outputs or exception)] in request order."""
    results = [None] * len(requests)

    def one(i):
        try:
            results[i] = batcher.submit("v1", "predict", requests[i], len(requests[i]["x"]))
        except Exception as err:  # noqa: BLE001
            results[i] = err

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_shipped_parameters_file_parses():
    params = BatchingParameters.from_file(os.path.join(ROOT, "serving", "configs", "batching_parameters.txt"))
    assert params == BatchingParameters(max_batch_size=1024, batch_timeout_micros=1000, max_enqueued_batches=100,
                                        num_batch_threads=2)


@pytest.mark.parametrize("text, needle", [
    ("max_batch_size { value: 64 }\nallowed_batch_sizes: 32\n", "'allowed_batch_sizes' is not supported"),
    ("max_batch_size { value: lots }\n", "max_batch_size should be an integer"),
    ("max_batch_size { value: 0 }\n", "max_batch_size should be an integer >= 1"),
    ("pad_variable_length_inputs: true\n", "pad_variable_length_inputs is not supported"),
    ("max_batch_size { value: 64 }\n}}} what\n", "cannot parse"),
])
def test_bad_parameters_file_names_file_and_field(tmp_path, text, needle):
    path = tmp_path / "batching.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=needle) as err:
        BatchingParameters.from_file(str(path))
    assert str(path) in str(err.value)


def test_missing_parameters_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read the batching parameters file .*nope.txt"):
        BatchingParameters.from_file(str(tmp_path / "nope.txt"))


def test_concurrent_requests_merge_into_one_call_and_split_back():
    execute = Doubler()
    batcher = Batcher(BatchingParameters(max_batch_size=100, batch_timeout_micros=500_000, num_batch_threads=1),
                      execute)
    try:
        requests = [{"x": np.arange(3) + 10 * i} for i in range(4)]  # 4 requests x 3 rows, arriving within 0.5 s
        results = _submit_all(batcher, requests)
    finally:
        batcher.stop()
    assert execute.calls == [12]
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result["y"], 2 * (np.arange(3) + 10 * i))
    assert (batcher.batches_run, batcher.requests_run) == (1, 4)


def test_batches_never_exceed_max_batch_size():
    execute = Doubler()
    batcher = Batcher(BatchingParameters(max_batch_size=100, batch_timeout_micros=300_000, num_batch_threads=1),
                      execute)
    try:
        results = _submit_all(batcher, [{"x": np.full(40, i)} for i in range(3)])
    finally:
        batcher.stop()
    assert sorted(execute.calls) == [40, 80]  # two fit in 100 rows, the third runs on its own
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result["y"], np.full(40, 2 * i))
    with pytest.raises(ValueError, match="larger than the batching max_batch_size 100"):
        Batcher(BatchingParameters(max_batch_size=100), execute).submit("v1", "predict", {"x": np.zeros(101)}, 101)


def test_a_bad_request_in_a_merged_batch_fails_alone():
    execute = Doubler()
    batcher = Batcher(BatchingParameters(batch_timeout_micros=500_000, num_batch_threads=1), execute)
    try:
        results = _submit_all(batcher, [{"x": np.array([1, 2])}, {"x": np.array([-1])}, {"x": np.array([5])}])
    finally:
        batcher.stop()
    assert isinstance(results[1], ValueError) and "negative x" in str(results[1])
    np.testing.assert_array_equal(results[0]["y"], [2, 4])
    np.testing.assert_array_equal(results[2]["y"], [10])
    assert execute.calls[0] == 4 and sorted(execute.calls[1:]) == [1, 1, 2]  # merged try, then one by one


def test_full_queue_refuses_and_keeps_what_is_queued():
    gate = threading.Event()
    execute = Doubler(gate)
    batcher = Batcher(BatchingParameters(max_batch_size=10, batch_timeout_micros=0, max_enqueued_batches=1,
                                         num_batch_threads=1), execute)
    first = threading.Thread(target=batcher.submit, args=("v1", "predict", {"x": np.ones(5)}, 5))
    first.start()
    assert execute.started.wait(10)  # the batch thread holds the first request inside execute
    queued = []
    second = threading.Thread(target=lambda: queued.append(batcher.submit("v1", "predict", {"x": np.ones(10)}, 10)))
    second.start()
    deadline = time.monotonic() + 10
    while batcher._queued_rows < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(QueueFullError, match="queue is full"):
        batcher.submit("v1", "predict", {"x": np.ones(1)}, 1)
    gate.set()
    first.join(10)
    second.join(10)
    batcher.stop()
    np.testing.assert_array_equal(queued[0]["y"], np.full(10, 2.0))


@pytest.mark.slow
def test_server_with_batching_answers_like_the_savedmodel(model_dir):
    import tensorflow as tf

    from serving.server import ModelServer

    loaded = tf.saved_model.load(f"{model_dir}/1")
    expected = loaded.signatures["predict"](
        user_id=tf.constant([r["user_id"] for r in ROWS]), item_id=tf.constant([r["item_id"] for r in ROWS]),
        age=tf.constant([r["age"] for r in ROWS], tf.float32))["probabilities"].numpy()
    server = ModelServer(model_dir, grpc_port=0, rest_port=0, poll_seconds=0,
                         batching=BatchingParameters(max_batch_size=8, batch_timeout_micros=200_000)).start()
    try:
        with GrpcClient(f"127.0.0.1:{server.grpc_port}") as client:
            got = [None] * 6

            def one(i):
                got[i] = client.predict_rows(ROWS) if i % 2 else RestClient(
                    f"127.0.0.1:{server.rest_port}").predict_rows(ROWS)

            threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            for value in got:
                np.testing.assert_allclose(value, expected, atol=1e-6)
            assert server.service.batcher.batches_run < server.service.batcher.requests_run  # some were merged
            with pytest.raises(ServingClientError, match="larger than the batching max_batch_size 8"):
                client.predict_rows(ROWS * 3)
            np.testing.assert_allclose(client.predict_rows(ROWS), expected, atol=1e-6)
    finally:
        server.stop()
