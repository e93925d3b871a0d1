"""`diit --help` lists every subcommand that exists, and each has its own --help."""
import pkgutil
import subprocess
import sys

import pytest

from diit_tf import cli, commands

COMMAND_MODULES = sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))


def _subcommands():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices


def test_every_command_module_is_listed():
    assert COMMAND_MODULES, "no subcommands found"
    choices = _subcommands()
    help_text = cli.build_parser().format_help()
    for name in choices:
        assert name in help_text
    assert len(choices) >= len(COMMAND_MODULES)


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_subcommand_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([name, "--help"])
    assert exit_info.value.code == 0
    assert "usage: diit " + name in capsys.readouterr().out


@pytest.mark.slow
def test_console_script_runs_quietly():
    out = subprocess.run([sys.executable, "-m", "diit_tf.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    assert "<command>" in out.stdout
    assert "FutureWarning" not in out.stderr and "oneDNN" not in out.stderr


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "usage: diit" in capsys.readouterr().out


@pytest.mark.parametrize("argv, flag", [
    (["predict", "--target", "127.0.0.1:1", "--input", "x.csv", "--timeout"], "--timeout"),
    (["simulate", "--out", "o", "--learning-rate"], "--learning-rate"),
    (["simulate", "--out", "o", "--train-share"], "--train-share"),
])
@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "abc"])
def test_positive_number_flags_share_one_check_and_one_message(argv, flag, value, capsys):
    """diit_tf/commands/_argtypes.positive_float: predict's --timeout said "a positive number of seconds", simulate's
    rates quoted the parsed value (inf) instead of what was given ('inf')."""
    from diit_tf.commands import _argtypes

    sub = _subcommands()[argv[0]]
    assert next(a for a in sub._actions if flag in a.option_strings).type is _argtypes.positive_float
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv + [value])
    assert exit_info.value.code == 2
    assert f"argument {flag}: expected a positive number, got {value!r}\n" in capsys.readouterr().err
    assert _argtypes.positive_float("0.25") == 0.25 and _argtypes.positive_float("3") == 3.0
