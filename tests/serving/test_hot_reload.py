"""A newly pushed version is served without restart; corrupt or half-written versions never replace it."""
import os
import shutil
import time

import numpy as np
import pytest

from serving.client import GrpcClient, build_predict_request
from serving.server import ModelServer

from serving_fixtures import ROWS, export_version

pytestmark = pytest.mark.slow  # servers polling for exported versions

FEATURES = {"user_id": "string", "item_id": "string", "age": "float"}


def served_version(client):
    return client.predict(build_predict_request(ROWS, FEATURES)).model_spec.version.value


def wait_for(predicate, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def live(tmp_path):
    model_dir = str(tmp_path / "diit")
    export_version(model_dir, 1)
    server = ModelServer(model_dir, grpc_port=0, rest_port=None, poll_seconds=0.2).start()
    client = GrpcClient(f"127.0.0.1:{server.grpc_port}")
    yield model_dir, server, client
    client.close()
    server.stop()


def test_new_version_is_served_without_restart_and_removal_rolls_back(live):
    model_dir, server, client = live
    before = client.predict_rows(ROWS)
    assert served_version(client) == 1
    export_version(model_dir, 2, seed=5, bias=2.0)
    assert wait_for(lambda: served_version(client) == 2), "version 2 was not picked up"
    after = client.predict_rows(ROWS)
    assert not np.allclose(before, after)
    assert client.predict_rows(ROWS, version=2).shape == (4, 1)
    # rollback: removing the served version brings back the highest remaining one
    shutil.rmtree(os.path.join(model_dir, "2"))
    assert wait_for(lambda: served_version(client) == 1), "did not roll back to version 1"
    np.testing.assert_allclose(client.predict_rows(ROWS), before, atol=1e-6)


def test_corrupt_and_half_written_versions_are_ignored(live):
    model_dir, server, client = live
    before = client.predict_rows(ROWS)
    corrupt = os.path.join(model_dir, "3")
    shutil.copytree(os.path.join(model_dir, "1"), corrupt)
    with open(os.path.join(corrupt, "saved_model.pb"), "wb") as f:
        f.write(b"\x08\x01garbage that is not a SavedModel")
    os.makedirs(os.path.join(model_dir, "4", "variables"))  # half-written: no saved_model.pb yet
    assert wait_for(lambda: {3, 4} <= set(server.manager.failed)), server.manager.failed
    assert served_version(client) == 1
    np.testing.assert_allclose(client.predict_rows(ROWS), before)
    failures_seen = dict(server.manager.failed)
    time.sleep(0.6)  # several polls: an unchanged failed directory is not reloaded again
    assert server.manager.failed == failures_seen
    # finishing the half-written version 4 makes it eligible again
    shutil.rmtree(os.path.join(model_dir, "4"))
    export_version(model_dir, 4, seed=3, bias=-1.0)
    assert wait_for(lambda: served_version(client) == 4), server.manager.failed
    assert 3 in server.manager.failed and 4 not in server.manager.failed


def test_version_with_bad_outputs_fails_its_smoke_test(tmp_path):
    from serving.servable import LoadedVersion

    model_dir = str(tmp_path / "diit")
    export_version(model_dir, 1, bias=float("nan"))
    with pytest.raises(ValueError, match="not finite"):
        LoadedVersion(1, os.path.join(model_dir, "1"))


def test_missing_model_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="--model-dir"):
        ModelServer(str(tmp_path / "nope"), grpc_port=0, rest_port=None)


def test_empty_model_dir_serves_unavailable_until_a_version_arrives(tmp_path):
    model_dir = tmp_path / "diit"
    model_dir.mkdir()
    server = ModelServer(str(model_dir), grpc_port=0, rest_port=None, poll_seconds=0.2).start()
    try:
        with GrpcClient(f"127.0.0.1:{server.grpc_port}") as client:
            with pytest.raises(Exception) as info:
                client.predict_rows(ROWS)
            assert "UNAVAILABLE" in str(info.value)
            export_version(str(model_dir), 1)
            assert wait_for(lambda: server.manager.current is not None)
            assert client.predict_rows(ROWS).shape == (4, 1)
    finally:
        server.stop()
