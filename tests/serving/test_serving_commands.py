"""`diit serve / predict / loadtest`: help text, scoring a CSV/JSON file, a small load test, SIGTERM shutdown."""
import csv
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from diit_tf.cli import main
from serving.client import GrpcClient
from serving.loadtest import run_loadtest

from serving_fixtures import ROWS


@pytest.mark.parametrize("command,needle", [("serve", "--model-dir"), ("predict", "--input"),
                                            ("loadtest", "--concurrency")])
def test_help(capsys, command, needle):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert needle in capsys.readouterr().out


@pytest.fixture
def rows_files(tmp_path):
    csv_path = tmp_path / "rows.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["user_id", "item_id", "age", "clicked"])
        writer.writeheader()
        writer.writerows({**r, "clicked": 1} for r in ROWS)
    json_path = tmp_path / "rows.json"
    json_path.write_text(json.dumps(ROWS))
    return str(csv_path), str(json_path)


def test_predict_prints_the_served_probabilities(server, rows_files, capsys):
    with GrpcClient(f"127.0.0.1:{server.grpc_port}") as client:
        expected = client.predict_rows(ROWS).ravel()
    csv_path, json_path = rows_files
    runs = [["--target", f"127.0.0.1:{server.grpc_port}", "--input", csv_path],
            ["--target", f"127.0.0.1:{server.rest_port}", "--rest", "--input", json_path],
            ["--target", f"127.0.0.1:{server.grpc_port}", "--input", json_path, "--signature", "serving_default"]]
    for argv in runs:
        assert main(["predict"] + argv) == 0
        printed = [float(x) for x in capsys.readouterr().out.split()]
        np.testing.assert_allclose(printed, expected, atol=1e-6)
    assert main(["predict", "--target", f"127.0.0.1:{server.grpc_port}", "--input", csv_path, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["probabilities"]) == 4


def test_predict_bad_input_names_the_problem(server, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"user_id": "u", "age": 3.0}]))
    assert main(["predict", "--target", f"127.0.0.1:{server.grpc_port}", "--input", str(bad)]) == 1
    assert "item_id" in capsys.readouterr().err
    assert main(["predict", "--target", f"127.0.0.1:{server.grpc_port}", "--input", str(tmp_path / "x.txt")]) == 1
    assert "x.txt" in capsys.readouterr().err


def test_loadtest_reports_percentiles_and_no_errors(server, capsys):
    assert main(["loadtest", "--target", f"127.0.0.1:{server.grpc_port}", "--concurrency", "2", "--batch", "8",
                 "--requests", "60"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["errors"] == 0 and result["completed"] == 60
    assert 0 < result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"]
    assert result["qps"] > 0


def test_loadtest_counts_refused_requests_and_rejects_remote_targets(server):
    result = run_loadtest(f"127.0.0.1:{server.grpc_port}", concurrency=2, batch=65, requests=10)  # > --max-batch 64
    assert result["errors"] == 10 and result["error_codes"] == {"INVALID_ARGUMENT": 10}
    with pytest.raises(ValueError, match="loopback"):
        run_loadtest("10.1.2.3:8500", requests=1)
    with pytest.raises(ValueError, match="--requests"):
        run_loadtest(f"127.0.0.1:{server.grpc_port}", requests=0)


@pytest.mark.slow
def test_serve_shuts_down_cleanly_on_sigterm(model_dir):
    proc = subprocess.Popen([sys.executable, "-m", "diit_tf.cli", "serve", "--model-dir", model_dir, "--port", "0",
                             "--rest-port", "0", "--no-model-server"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        started = json.loads(proc.stdout.readline())
        assert started["version"] == 1
        with GrpcClient(started["grpc"]) as client:
            assert client.predict_rows(ROWS).shape == (4, 1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_execs_tensorflow_model_server_with_equivalent_flags(tmp_path):
    from argparse import Namespace

    from diit_tf.commands.serve import model_server_argv

    args = Namespace(port=8500, rest_port=8501, model_name="diit", model_dir=str(tmp_path), poll_seconds=2.0,
                     max_batch=256)
    argv = model_server_argv("tensorflow_model_server", args)
    assert "--port=8500" in argv and "--rest_api_port=8501" in argv and "--model_name=diit" in argv
    assert f"--model_base_path={os.path.abspath(tmp_path)}" in argv
    batching = [a for a in argv if a.startswith("--batching_parameters_file=")][0].split("=", 1)[1]
    assert "max_batch_size { value: 256 }" in open(batching).read()


def test_serve_passes_batching_to_tensorflow_model_server(tmp_path):
    from argparse import Namespace

    from diit_tf.commands.serve import model_server_argv
    from serving.batching import BatchingParameters

    common = dict(port=8500, rest_port=-1, model_name="diit", model_dir=str(tmp_path), poll_seconds=0, max_batch=0)
    assert not any(a.startswith(("--enable_batching", "--batching")) for a in model_server_argv("tms", Namespace(**common, enable_batching=False)))
    argv = model_server_argv("tms", Namespace(**common, enable_batching=True))
    written = [a for a in argv if a.startswith("--batching_parameters_file=")][0].split("=", 1)[1]
    assert "--enable_batching=true" in argv
    assert BatchingParameters.from_file(written) == BatchingParameters()  # the local server reads the same file
    given = tmp_path / "mine.txt"
    given.write_text("max_batch_size { value: 64 }\n")
    argv = model_server_argv("tms", Namespace(**common, batching_parameters_file=str(given)))
    assert f"--batching_parameters_file={given}" in argv and "--enable_batching=true" in argv


FEATURES = {"user_id": "string", "item_id": "string", "age": "float"}


@pytest.mark.parametrize("value, message", [
    ("nan", "row 0 feature 'age' should be a finite number. Received: 'nan'"),
    (float("inf"), "row 0 feature 'age' should be a finite number. Received: inf"),
    (True, "row 0 feature 'age' should be a number. Received: True"),
    ("abc", "row 0 feature 'age' should be a number. Received: 'abc'"),
])
def test_request_rows_refuse_a_numeric_feature_that_is_not_a_finite_number(value, message):
    from serving.client import columns_from_rows

    with pytest.raises(ValueError) as info:
        columns_from_rows([{"user_id": "u1", "item_id": "7", "age": value}], FEATURES)
    assert str(info.value) == message


def test_request_rows_refuse_a_structured_categorical_value():
    from serving.client import columns_from_rows

    with pytest.raises(ValueError, match=r"row 0 feature 'user_id' should be a string or a number\. Received: \{'a': 1\}"):
        columns_from_rows([{"user_id": {"a": 1}, "item_id": "7", "age": 1.0}], FEATURES)
    assert columns_from_rows([{"user_id": 5, "item_id": 7.0, "age": "2"}], FEATURES) == {
        "user_id": [b"5"], "item_id": [b"7"], "age": [2.0]}


def test_read_rows_names_the_file_of_broken_json_and_a_csv_row_with_extra_fields(tmp_path):
    from serving.client import read_rows

    broken = tmp_path / "rows.json"
    broken.write_text('[{"user_id": "u1"')
    with pytest.raises(ValueError, match=r"--input '.*rows\.json' is not valid JSON: "):
        read_rows(str(broken))
    extra = tmp_path / "rows.csv"
    extra.write_text("user_id,item_id,age\nu1,7,23\nu2,8,4,1\n")
    with pytest.raises(ValueError, match=r"--input '.*rows\.csv' line 3 has 4 fields; its header has 3"):
        read_rows(str(extra))


def test_predict_refuses_a_timeout_that_is_not_positive(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--target", "127.0.0.1:1", "--input", "x.csv", "--timeout", "-1"])
    assert "argument --timeout: expected a positive number, got '-1'" in capsys.readouterr().err


def test_rest_client_names_the_server_it_cannot_reach():
    import socket

    from serving.client import RestClient

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError, match=rf"cannot reach the REST server at http://127\.0\.0\.1:{port}/v1/"):
        RestClient(f"127.0.0.1:{port}", timeout=2).signatures()


@pytest.mark.parametrize("flag, value, message", [
    ("--port", "-5", "argument --port: expected a port in 0..65535 (0 picks a free one), got '-5'"),
    ("--port", "70000", "argument --port: expected a port in 0..65535 (0 picks a free one), got '70000'"),
    ("--rest-port", "-7", "argument --rest-port: expected a port in 0..65535 (0 picks a free one) or -1 (no REST)"),
    ("--grpc-threads", "0", "argument --grpc-threads: expected a positive number of threads, got '0'"),
])
def test_serve_refuses_a_port_or_thread_count_out_of_range(tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit) as info:
        main(["serve", "--model-dir", str(tmp_path), flag, value])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def _no_server(monkeypatch):
    """`diit serve` without starting anything: the built-in server and the exec of tensorflow_model_server are
    recorded instead."""
    import os

    import serving.server

    started = []
    monkeypatch.setattr(serving.server, "run_local", lambda args: started.append("built-in") or 0)
    monkeypatch.setattr(os, "execv", lambda binary, argv: started.append(binary))
    return started


@pytest.mark.parametrize("model_server", [None, "/opt/bin/tensorflow_model_server"])
def test_serve_refuses_a_model_dir_without_a_numbered_version_when_it_does_not_poll(tmp_path, capsys, monkeypatch,
                                                                                   model_server):
    """With --poll-seconds 0 nothing would ever be served ("version null" forever): refused at start, before either
    server, naming the directory. A non-numeric subdirectory is no version."""
    import shutil

    started = _no_server(monkeypatch)
    monkeypatch.setattr(shutil, "which", lambda name: model_server)
    (tmp_path / "latest").mkdir()
    assert main(["serve", "--model-dir", str(tmp_path), "--poll-seconds", "0"]) == 1
    assert capsys.readouterr().err == (
        f"diit serve: error: --model-dir {str(tmp_path)!r} holds no numbered version (a subdirectory such as 1/ "
        f"holding a SavedModel), and --poll-seconds 0 never looks again: push a version there first, or give "
        f"--poll-seconds > 0 to wait for one\n")
    assert started == []
    (tmp_path / "1").mkdir()  # a numbered version: the server starts
    assert main(["serve", "--model-dir", str(tmp_path), "--poll-seconds", "0"]) == 0
    assert started[0] == (model_server or "built-in")  # (the stub exec returns, so the built-in server follows)


def test_serve_logs_that_it_waits_for_a_version_when_it_polls(tmp_path, monkeypatch, caplog):
    started = _no_server(monkeypatch)
    with caplog.at_level("WARNING", logger="diit.serving"):
        assert main(["serve", "--model-dir", str(tmp_path), "--poll-seconds", "2.5", "--no-model-server"]) == 0
    assert started == ["built-in"]
    assert caplog.messages == [f"--model-dir {str(tmp_path)!r} holds no numbered version yet: waiting for one "
                               f"(looking every 2.5 s); requests fail with UNAVAILABLE until then"]


def test_python_m_serving_server_refuses_it_too(tmp_path, monkeypatch):
    import serving.server

    started = _no_server(monkeypatch)
    with pytest.raises(FileNotFoundError, match=r"holds no numbered version .* --poll-seconds 0 never looks again"):
        serving.server.main(["--model-dir", str(tmp_path), "--poll-seconds", "0"])
    assert started == []


POLL_ERROR = "error: argument --poll-seconds: expected a number of seconds >= 0 (0: load once, never poll), got {!r}"


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
@pytest.mark.parametrize("model_server", [None, "/opt/bin/tensorflow_model_server"])
def test_diit_serve_refuses_a_poll_interval_that_is_not_a_finite_number_of_seconds(tmp_path, capsys, monkeypatch,
                                                                                    model_server, value):
    """-1 was passed to tensorflow_model_server as 1 s, and refused by the built-in server only after logging that it
    waits "looking every -1 s": now refused when the flags are read, as by `python -m serving.server` (below)."""
    import shutil

    started = _no_server(monkeypatch)
    monkeypatch.setattr(shutil, "which", lambda name: model_server)
    with pytest.raises(SystemExit) as info:
        main(["serve", "--model-dir", str(tmp_path), "--poll-seconds", value])
    assert info.value.code == 2 and started == []
    assert capsys.readouterr().err.splitlines()[-1] == "diit serve: " + POLL_ERROR.format(value)


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_python_m_serving_server_refuses_it_alike(tmp_path, capsys, monkeypatch, value):
    """The same flag, the same words (a negative value was a ValueError traceback)."""
    import serving.server

    started = _no_server(monkeypatch)
    with pytest.raises(SystemExit) as info:
        serving.server.main(["--model-dir", str(tmp_path), "--poll-seconds", value])
    assert info.value.code == 2 and started == []
    assert capsys.readouterr().err.splitlines()[-1].endswith(": " + POLL_ERROR.format(value))
