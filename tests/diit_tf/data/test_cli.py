"""`diit data ...` through the real CLI entry point."""
from diit_tf import cli
from diit_tf.data import list_spans, load_spec


def test_synthetic_then_info(tmp_path, capsys):
    out = tmp_path / "syn"
    argv = ["data", "synthetic", "--out", str(out), "--periods", "2", "--rows-target", "50",
            "--rows-source", "100,80,60", "--users", "60", "--items", "40"]
    assert cli.main(argv) == 0
    assert list_spans(out) == [1, 2]
    assert load_spec(out).domains == ("target", "source_a", "source_b", "source_c")
    printed = capsys.readouterr().out
    assert "wrote synthetic" in printed and "290" in printed  # 50 + 100 + 80 + 60 rows per span
    assert cli.main(argv) == 1  # exists, no --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main(argv + ["--overwrite", "--seed", "9"]) == 0
    capsys.readouterr()
    assert cli.main(["data", "info", str(out), "--verify"]) == 0
    printed = capsys.readouterr().out
    assert "target: target" in printed and "verified: 2 span(s)" in printed
    assert cli.main(["data", "info", str(tmp_path / "none")]) == 1
