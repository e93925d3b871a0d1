"""Fixtures: a tiny exported student under `<tmp>/diit/1` and a local server on free loopback ports."""
import pytest

from serving_fixtures import export_version


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("serving") / "diit")
    export_version(d, 1)
    return d


@pytest.fixture(scope="module")
def server(model_dir):
    from serving.server import ModelServer

    srv = ModelServer(model_dir, grpc_port=0, rest_port=0, poll_seconds=0, max_batch=64).start()
    yield srv
    srv.stop()
