import minstab as ms
from minstab import cli


def test_info(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "backend" in out and "jax" in out
    assert ms.__version__ in out


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_reproduce_lists_experiments(capsys):
    assert cli.main(["reproduce"]) == 2
