"""Which processes serve and which train with `strategy.name` "parameter_server" (`training.serves_parameter_server_task`,
read from TF_CONFIG), and the strategy's refusal without a cluster; by hand, without starting a server."""
import json

import pytest

from components import training


@pytest.mark.parametrize("block, task", [
    (None, {"type": "worker", "index": 0}),                                  # no strategy block: trains
    ({"name": "multi_worker"}, {"type": "worker", "index": 1}),              # another strategy: trains
    ({"name": "parameter_server"}, {"type": "chief", "index": 0}),          # the chief runs the loop
    ({"name": "parameter_server"}, None),                                    # no TF_CONFIG task
])
def test_only_worker_and_ps_tasks_of_a_parameter_server_cluster_serve(monkeypatch, block, task):
    if task is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["localhost:1"], "worker": ["localhost:2"],
                                                                "ps": ["localhost:3"]}, "task": task}))
    assert training.serves_parameter_server_task(block, "source trainer") is False


def test_a_parameter_server_strategy_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError) as err:
        training.make_strategy("parameter_server")
    assert str(err.value) == ("`strategy.name` 'parameter_server' needs TF_CONFIG (a cluster with \"worker\" and \"ps\" "
                              "tasks and this task, the chief), as set by Vertex AI or Kubeflow's TFJob")


def test_an_unknown_strategy_lists_parameter_server():
    with pytest.raises(ValueError) as err:
        training.make_strategy("tpu")
    assert str(err.value) == ("`strategy.name` should be one of ['default', 'mirrored', 'one_device', 'multi_worker', "
                              "'parameter_server']. Received: 'tpu'")
