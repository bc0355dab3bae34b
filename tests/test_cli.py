"""The command line's own commands print what they claim (bad command lines: test_cli_errors.py)."""

import jax
import pytest

import minstab as ms
from minstab import cli, experiments


def _info_lines(text):
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def test_info_reports_this_process(capsys):
    """Every printed value is the one jax and the package report (not a constant)."""
    assert cli.main(["info"]) == 0
    printed = _info_lines(capsys.readouterr().out)
    assert printed["minstab"] == ms.__version__
    assert printed["jax"] == jax.__version__
    assert printed["backend"] == jax.default_backend()
    assert printed["device_count"] == str(jax.device_count())
    assert printed["process_count"] == str(jax.process_count())
    assert printed["x64_enabled"] == "True"  # info runs in float64 (cli._setup_jax)
    assert printed["default_float"] == "float64"
    assert set(printed) == set(cli.info()), "info() and the printed lines disagree"


def test_no_command_prints_help_listing_every_command(capsys):
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    assert "COMMAND" in out
    for name in ("info", "reproduce", *cli.COMMANDS):
        assert f"    {name}" in out, name


def test_reproduce_lists_every_experiment(capsys):
    assert cli.main(["reproduce"]) == 2
    out = capsys.readouterr().out
    names = list(experiments.available())
    assert names, "no experiment registered"
    for name in names:
        assert f"    {name}" in out, name


@pytest.mark.parametrize("argv", [["--help"], ["predict", "--help"], ["reproduce", "--help"]])
def test_help_exits_zero(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 0
    assert "usage: minstab" in capsys.readouterr().out
