"""`diit demo` and `diit pipeline`: help, argument errors and the output-directory guard (no pipeline run)."""
import json

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


def test_pipeline_names_the_dataset_flag_as_the_source_of_a_bad_data_dir_before_running(tmp_path, capsys):
    """--dataset's value is reported as coming from --dataset (the config file's own data_dir by the file), and no
    "running" line comes before the error."""
    config = tmp_path / "c.json"
    config.write_text('{"data_dir": "%s"}' % (tmp_path / "nothing"))
    nowhere = str(tmp_path / "nowhere")
    for action in (["run"], ["compile", "--image", "img", "--out", str(tmp_path / "p.json")]):
        assert cli.main(["pipeline", *action, "--config", str(config), "--dataset", nowhere]) == 1
        captured = capsys.readouterr()
        assert f"data_dir {nowhere!r} (from --dataset) holds no dataset" in captured.err
        assert len(captured.err.splitlines()) == 1 and "running" not in captured.out
    assert cli.main(["pipeline", "run", "--config", str(config)]) == 1
    assert f"(from {config}) holds no dataset" in capsys.readouterr().err


def test_demo_start_takes_the_named_dataset_and_its_validated_preset(tmp_path, monkeypatch):
    import argparse

    from diit_tf.data import registry
    from diit_tf.simulation.hparams import Hparams

    monkeypatch.setitem(registry.DATASETS, "tiny", registry.synthetic_dataset(
        "tiny", "test", preset="synthetic", periods=3, rows_target=40, rows_source=(60, 50), users=30, items=20))
    args = argparse.Namespace(dataset="tiny", data_root=str(tmp_path / "data"), out=str(tmp_path / "demo"),
                              periods=2, hparams=None, epochs=None, target_auc_floor=0.5, results=None,
                              mix_batch_size=None, joint_teacher=False, kd_origin=False)
    run = demo._start(args)
    assert run.spans == [1, 2] and run.dataset == "tiny" and run.data_dir == (tmp_path / "data" / "tiny").resolve()
    saved = json.loads((tmp_path / "demo" / "pipeline_config.json").read_text())
    preset = Hparams.load("synthetic")
    assert saved["base_trainer"] == {"enabled": True}
    assert saved["source"]["epochs"] == preset.epochs and saved["student"]["diit"] == preset.diit_config_dict()
    assert "preset 'synthetic'" in demo._describe(run)
    args.epochs = 1
    assert demo._start(args).config["student"]["epochs"] == 1  # --epochs overrides the preset's budget
    assert not run.config["joint_teacher"]["enabled"]
    args.joint_teacher, args.mix_batch_size = True, 64
    joint = demo._start(args)
    assert joint.config["joint_teacher"]["enabled"] and joint.config["student"]["mix_batch_size"] == 64
    assert joint.config["student"]["diit"]["use_gate"] is False and "joint teacher" in demo._describe(joint)
    args.mix_batch_size = 0
    with pytest.raises(ValueError, match="--mix-batch-size should be >= 1"):
        demo._start(args)
    # a hyperparameter file inside the repository is recorded by its repository path, not this machine's
    args.mix_batch_size, args.hparams = None, "docs/results/movielens-1m-age7-kd-joint-transfer/best_hparams.json"
    run = demo._start(args)
    rows = [{"period": 1, "student_eval": 0.6, "base_eval": 0.5, "student_next": 0.6, "base_next": 0.5}]
    demo._report(run, rows, started=0.0, results_file=tmp_path / "summary.json")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["hparams"] == f"file {args.hparams}" and summary["settings"]["joint_teacher"]["enabled"]
    assert summary["settings"]["kd_origin"]["enabled"] is False


def test_demo_kd_origin_flag_routes_the_student_with_kd_origins_beta(tmp_path, monkeypatch):
    import argparse

    from diit_tf.config import DIITConfig
    from diit_tf.data import registry

    monkeypatch.setitem(registry.DATASETS, "tiny", registry.synthetic_dataset(
        "tiny", "test", preset="synthetic", periods=3, rows_target=40, rows_source=(60, 50), users=30, items=20))
    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps({"training": {"learning_rate": 0.02}, "methods": {
        "kd_origin": {"beta": 3.0, "learning_rate": 0.004}, "diit": {"diit_config": {"beta2": 0.25, "tau": 1.5}}}}))
    args = argparse.Namespace(dataset="tiny", data_root=str(tmp_path / "data"), out=str(tmp_path / "demo"),
                              periods=1, hparams=str(hp), epochs=None, target_auc_floor=0.5, results=None,
                              mix_batch_size=None, joint_teacher=False, kd_origin=True)
    run = demo._start(args)
    saved = json.loads((tmp_path / "demo" / "pipeline_config.json").read_text())
    assert saved["kd_origin"] == {"enabled": True, "beta": 3.0, "temperature": 1.5}   # tau: DIIT's, none given
    assert saved["student"]["diit"] == DIITConfig.logit_kd(3.0, 1.5, route_by_origin=True).to_dict()
    assert saved["student"]["learning_rate"] == 0.004
    assert "kd_origin (beta 3.0)" in demo._describe(run) and demo.student_label(run.config) == "student (kd_origin)"
    rows = [{"period": 1, "student_eval": 0.6, "base_eval": 0.5, "student_next": None, "base_next": None}]
    demo._report(run, rows, started=0.0, results_file=tmp_path / "summary.json")
    assert json.loads((tmp_path / "summary.json").read_text())["settings"]["kd_origin"]["enabled"] is True
    args.joint_teacher = True
    with pytest.raises(ValueError, match=r"^`kd_origin.enabled` \(from --kd-origin\) and `joint_teacher.enabled` "
                                         r"\(from --joint-teacher\): routing by origin"):
        demo._start(args)


def test_the_demo_names_what_the_student_learns_from():
    off = {"enabled": False}
    assert demo.student_label({"joint_teacher": {"enabled": True}, "kd_origin": off}) == "student (joint teacher)"
    assert demo.student_label({"joint_teacher": off, "kd_origin": {"enabled": True}}) == "student (kd_origin)"
    assert demo.student_label({"joint_teacher": off, "kd_origin": off}) == "student (DIIT)"


def test_demo_compares_student_and_base_per_view(tmp_path):
    rows = [{"period": 1, "student_eval": 0.60, "base_eval": 0.58, "student_next": 0.59, "base_next": 0.60},
            {"period": 2, "student_eval": 0.62, "base_eval": 0.61, "student_next": 0.63, "base_next": 0.60},
            {"period": 3, "student_eval": 0.64, "base_eval": None, "student_next": None, "base_next": None}]
    c = demo.comparison(rows)
    assert c["eval"] == {"periods": 2, "student_ahead": 2, "mean_difference": pytest.approx(0.015)}
    assert c["next"] == {"periods": 2, "student_ahead": 1, "mean_difference": pytest.approx(0.01)}
    demo._plot(rows, "target", tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_pipeline_joint_teacher_flag_turns_it_on_and_keeps_the_files_settings(tmp_path):
    import argparse

    from diit_tf.commands import pipeline as command

    config = tmp_path / "c.json"
    config.write_text(json.dumps({"joint_teacher": {"beta": 2.0}}))
    args = argparse.Namespace(config=str(config), dataset=None, data_root=None, hparams=None, span=None,
                              joint_teacher=True, kd_origin=False)
    assert command._config(args)["joint_teacher"] == {"enabled": True, "beta": 2.0, "temperature": None,
                                                      "learning_rate": None}
    args.joint_teacher = False
    assert command._config(args)["joint_teacher"]["enabled"] is False


def test_pipeline_kd_origin_flag_turns_it_on_and_keeps_the_files_settings(tmp_path, capsys):
    import argparse

    from diit_tf.commands import pipeline as command

    config = tmp_path / "c.json"
    config.write_text(json.dumps({"kd_origin": {"beta": 2.0}}))
    args = argparse.Namespace(config=str(config), dataset=None, data_root=None, hparams=None, span=None,
                              joint_teacher=False, kd_origin=True)
    assert command._config(args)["kd_origin"] == {"enabled": True, "beta": 2.0, "temperature": None}
    assert command._config(args)["joint_teacher"]["enabled"] is False
    args.kd_origin = False
    assert command._config(args)["kd_origin"]["enabled"] is False
    # both commands take the flag; with --joint-teacher the config refuses the pair, naming both keys and, as both
    # came from flags, the flags instead of the config file
    reason = ("routing by origin distils each mix row from its source, and the joint model is no source (no row has "
              "an origin among its teachers); turn one of them off")
    for action in (["run"], ["compile", "--image", "img", "--out", str(tmp_path / "p.json")]):
        assert cli.main(["pipeline", *action, "--config", str(config), "--kd-origin", "--joint-teacher"]) == 1
        assert capsys.readouterr().err == (
            f"diit pipeline: error: `kd_origin.enabled` (from --kd-origin) and `joint_teacher.enabled` (from "
            f"--joint-teacher): {reason}\n")


def test_pipeline_errors_name_the_flag_that_set_a_setting_and_the_file_for_the_rest(tmp_path, capsys):
    """A config error found once the command-line overrides are in names the flag for each setting a flag set, and
    the config file only for what it set."""
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"joint_teacher": {"enabled": True}}))
    assert cli.main(["pipeline", "run", "--config", str(config), "--kd-origin"]) == 1
    assert capsys.readouterr().err == (
        f"diit pipeline: error: {config}: `kd_origin.enabled` (from --kd-origin) and `joint_teacher.enabled`: routing "
        f"by origin distils each mix row from its source, and the joint model is no source (no row has an origin "
        f"among its teachers); turn one of them off\n")
    config.write_text(json.dumps({"student": {"student_init": "best_source"}}))
    assert cli.main(["pipeline", "run", "--config", str(config), "--joint-teacher"]) == 1
    assert capsys.readouterr().err == (
        f"diit pipeline: error: {config}: `student.student_init` is 'best_source', which starts from a source model; "
        f"with `joint_teacher.enabled` (from --joint-teacher) there is none: set it to null or \"base\"\n")
    config.write_text("{}")
    assert cli.main(["pipeline", "run", "--config", str(config), "--span", "-1"]) == 1
    assert capsys.readouterr().err == ("diit pipeline: error: `span` (from --span) should be null or a span number "
                                       ">= 0. Received: -1\n")


@pytest.mark.parametrize("bad, message", [
    (["--hparams", "no-such-preset"], "--hparams 'no-such-preset': no file "),
    (["--target-auc-floor", "7"], "diit demo: error: `evaluator.target_auc_floor` (from --target-auc-floor) should "
                                  "be in [0, 1]. Received: 7.0\n"),
    (["--kd-origin", "--joint-teacher"], "diit demo: error: `kd_origin.enabled` (from --kd-origin) and "
     "`joint_teacher.enabled` (from --joint-teacher): routing by origin distils each mix row from its source, and "
     "the joint model is no source (no row has an origin among its teachers); turn one of them off\n"),
])
def test_a_bad_setting_leaves_the_previous_demo_in_place(tmp_path, capsys, monkeypatch, bad, message):
    """Refused before the previous demo is replaced, naming the flag that set the bad value (as `diit pipeline`
    names its flags), not the demo's own settings."""
    from diit_tf.data import registry

    monkeypatch.setitem(registry.DATASETS, "tiny", registry.synthetic_dataset(
        "tiny", "test", preset="synthetic", periods=2, rows_target=40, rows_source=(60, 50), users=30, items=20))
    out = tmp_path / "demo"
    out.mkdir()
    (out / demo.MARKER).write_text("")
    (out / "summary.json").write_text('{"old": "run"}')
    argv = ["demo", "--dataset", "tiny", "--data-root", str(tmp_path / "data"), "--out", str(out), *bad]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "diit demo: error: diit demo" not in err and "the demo's settings" not in err
    if message.startswith("diit demo: error: "):  # the whole error line
        assert err.endswith(message) and err.count("error:") == 1
    assert (out / "summary.json").read_text() == '{"old": "run"}'


def test_pipeline_run_of_a_span_the_data_lacks_names_it(tmp_path, capsys):
    from diit_tf.data.synthetic import SyntheticConfig, build_synthetic

    data = tmp_path / "data"
    build_synthetic(data, SyntheticConfig(periods=2, rows_target=20, rows_source=(30, 30), users=10, items=10),
                    log=lambda line: None)
    assert cli.main(["pipeline", "run", "--dataset", str(data), "--span", "9"]) == 1
    assert f"--span 9: {data} has no span-9/ (spans: [1, 2])" in capsys.readouterr().err


def test_pipeline_compile_into_a_missing_directory_is_one_line(tmp_path, capsys):
    out = tmp_path / "nowhere" / "pipeline.json"
    assert cli.main(["pipeline", "compile", "--image", "x", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err == f"diit pipeline: error: --out {str(out)!r}: directory {out.parent} does not exist\n"


def test_a_relative_hparams_flag_is_taken_from_the_current_directory(tmp_path, monkeypatch, capsys):
    """On the command line (unlike in a config file) a relative --hparams is a path from the current directory; a
    missing one is refused naming the flag and the path tried, before any data is read."""
    import argparse

    from diit_tf.commands import pipeline as command

    monkeypatch.chdir(tmp_path)
    (tmp_path / "hp.json").write_text(json.dumps({"training": {"epochs": 2}}))
    config = tmp_path / "c.json"
    config.write_text("{}")
    args = argparse.Namespace(config=str(config), dataset=None, data_root=None, hparams="hp.json", span=None,
                              joint_teacher=False, kd_origin=False)
    assert command._config(args)["hparams"] == str(tmp_path / "hp.json")
    args.hparams = "synthetic"
    assert command._config(args)["hparams"] == "synthetic"
    message = f"--hparams 'nosuch': no file {tmp_path / 'nosuch'} (a relative path is taken from the current directory)"
    for argv in (["demo", "--dataset", str(tmp_path / "nowhere")], ["pipeline", "run", "--config", str(config)]):
        assert cli.main([*argv, "--hparams", "nosuch"]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("image", ["", "  "])
def test_pipeline_compile_refuses_an_empty_image(tmp_path, capsys, image):
    out = tmp_path / "p.json"
    assert cli.main(["pipeline", "compile", "--image", image, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"--image is empty ({image!r}): give the container image" in err and len(err.splitlines()) == 1
    assert not out.exists()
