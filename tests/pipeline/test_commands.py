"""`diit demo` and `diit pipeline`: help, argument errors and the output-directory guard (no pipeline run)."""
import pytest

from diit_tf import cli
from diit_tf.commands import demo


def test_help_of_both_commands(capsys):
    for argv in (["demo", "--help"], ["pipeline", "--help"], ["pipeline", "run", "--help"],
                 ["pipeline", "compile", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--dataset" in out and "--periods" in out and "KubeflowV2DagRunner" in out


def test_demo_refuses_to_replace_a_directory_it_did_not_write(tmp_path, capsys):
    (tmp_path / "precious.txt").write_text("keep me")
    assert cli.main(["demo", "--out", str(tmp_path), "--periods", "1"]) == 1
    assert "not a demo directory" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_demo_replaces_its_own_output(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / demo.MARKER).write_text("")
    (out / "old.txt").write_text("old run")
    demo._prepare(out)
    assert sorted(p.name for p in out.iterdir()) == [demo.MARKER]


def test_bad_period_count(capsys):
    assert cli.main(["demo", "--periods", "0"]) == 1
    assert "--periods" in capsys.readouterr().err


def test_pipeline_run_with_missing_data_is_a_clear_error(tmp_path, capsys):
    config = tmp_path / "c.json"
    config.write_text('{"data_dir": "%s"}' % (tmp_path / "nothing"))
    assert cli.main(["pipeline", "run", "--config", str(config)]) == 1
    assert "holds no dataset" in capsys.readouterr().err
