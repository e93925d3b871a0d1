"""`diit data ...` through the real CLI entry point."""
import pytest

from diit_tf import cli
from diit_tf.data import list_spans, load_spec


@pytest.mark.slow
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


def test_recbole_command_on_atomic_fixture(tmp_path, capsys):
    (tmp_path / "x.inter").write_text("uid:token\tiid:token\tclick:float\tday:float\n"
                                      "a\t1\t1\t20240101\nb\t2\t0\t20240101\na\t2\t0\t20240102\nc\t1\t7\t20240102\n")
    (tmp_path / "x.user").write_text("uid:token\ttab:token\na\tfeed\nb\tsearch\nc\tfeed\n")
    out = tmp_path / "ds"
    assert cli.main(["data", "recbole", "--inter", str(tmp_path / "x.inter"), "--user", str(tmp_path / "x.user"),
                     "--user-field", "uid", "--item-field", "iid", "--domain-field", "tab", "--label", "click",
                     "--period-field", "day", "--period-mode", "value", "--periods", "0", "--out", str(out)]) == 0
    spec = load_spec(out)
    assert spec.target == "search" and set(spec.domains) == {"feed", "search"}
    assert list(spec.categorical) == ["uid", "iid"] and spec.numeric == ()
    assert list_spans(out) == [1, 2]
    assert "click not 0/1 (x atomic files): 1" in capsys.readouterr().out  # the row with click=7



@pytest.mark.slow
def test_kuairand_and_taobao_commands(tmp_path, capsys):
    import test_kuairand
    import test_taobao

    raw = test_kuairand.write_fixture(tmp_path / "kr_raw")
    assert cli.main(["data", "kuairand", "--raw-dir", str(raw), "--out", str(tmp_path / "kr"),
                     "--max-domains", "2"]) == 0
    printed = capsys.readouterr().out
    assert "is_click not 0/1 (log_standard): 1" in printed and "excluded rows (by option)" in printed
    assert load_spec(tmp_path / "kr").domains == ("tab_1", "tab_0")
    raw = test_taobao.write_fixture(tmp_path / "tb_raw")
    assert cli.main(["data", "taobao", "--raw-dir", str(raw), "--out", str(tmp_path / "tb")]) == 0
    assert "wrote taobao" in capsys.readouterr().out
    assert list_spans(tmp_path / "tb") == [1, 2, 3]
    assert cli.main(["data", "taobao", "--raw-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 1
    assert "Taobao raw directory" in capsys.readouterr().err
