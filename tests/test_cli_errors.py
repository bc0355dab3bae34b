"""A bad command line exits 2 with one stderr line naming the flag or file, before compiling.

Run as a user runs it: ``python -m minstab`` and the installed ``minstab`` script, in
subprocesses with ``JAX_LOG_COMPILES=1``. jax then logs every compilation on stderr, so "exactly
one stderr line" also proves that nothing was compiled (or computed) before the error.
"""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from minstab import cli
from minstab._cli_args import (
    eta_list,
    existing_dir,
    existing_file,
    int_at_least,
    nonnegative_float,
    positive_float,
    positive_int,
    require_extra,
)

SCRIPT = Path(sysconfig.get_path("scripts")) / "minstab"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "dup.csv").write_text("x,y\n0.5,1\n0.25,2\n0.5,3\n")
    (d / "text.csv").write_text("x,y\n0.5,1\n0.25,two\n")
    (d / "ragged.csv").write_text("0,1\n1\n")
    (d / "empty.csv").write_text("# nothing\n")
    (d / "notnpz.npz").write_text("not an archive")
    np.savez(d / "noy.npz", x=np.arange(3.0))
    np.savez(d / "whole.npz", x=np.arange(3.0), y=np.ones(3))
    (d / "truncated.npz").write_bytes((d / "whole.npz").read_bytes()[:100])
    with open(d / "bare.npz", "wb") as fh:  # an .npy array under an .npz name
        np.save(fh, np.ones(3))
    (d / "not_a_sweep").mkdir()
    (d / "a_file").write_text("")
    return d


def run(argv, *, script=False, cwd=None):
    cmd = [str(SCRIPT)] if script else [sys.executable, "-m", "minstab"]
    env = dict(os.environ, JAX_LOG_COMPILES="1")
    # a hang guard, not a timing assertion: an error must come long before this
    return subprocess.run(
        [*cmd, *argv], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


# (argv, what stderr must name); FILES is replaced by the fixture directory
BAD = [
    (["predict", "--data", "FILES/missing.csv"], "--data"),
    (["predict", "--data", "FILES"], "--data"),
    (["predict", "--data", "FILES/dup.csv"], "dup.csv"),
    (["predict", "--data", "FILES/text.csv"], "text.csv, line 3"),
    (["predict", "--data", "FILES/ragged.csv"], "ragged.csv, line 2"),
    (["predict", "--data", "FILES/empty.csv"], "empty.csv"),
    (["predict", "--data", "FILES/notnpz.npz"], "notnpz.npz"),
    (["predict", "--data", "FILES/noy.npz"], "'y'"),
    (["predict", "--n", "1"], "--n"),
    (["predict", "--n", "ten"], "--n"),
    (["predict", "--noise", "nan"], "--noise"),
    (["predict", "--grid", "0"], "--grid"),
    (["predict", "--refine", "-1"], "--refine"),
    (["predict", "--directions", "1.5"], "--directions"),
    (["predict", "--sweep", "FILES/missing"], "--sweep"),
    (["predict", "--sweep", "FILES/not_a_sweep"], "--sweep"),
    (["predict", "--out", "FILES/a_file"], "--out"),
    (["predict", "--no-such-flag"], "--no-such-flag"),
    (["no-such-command"], "no-such-command"),
    (["reproduce", "no-such-experiment"], "no-such-experiment"),
    (["predict", "--data", "FILES/truncated.npz"], "truncated.npz"),
    (["predict", "--data", "FILES/bare.npz"], "bare.npz"),
]


def _argv(argv, files):
    return [a.replace("FILES", str(files)) for a in argv]


def _assert_clean_usage_error(proc, names):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    # one line: no traceback, and no "Compiling ..." line from JAX_LOG_COMPILES
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("minstab") and names in lines[0], lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(("argv", "names"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_command_line(argv, names, files, capsys, monkeypatch):
    """In process (fast): exit 2, one line, and neither the toy data nor W* is computed."""
    import minstab.data.toy
    from minstab.experiments import predict

    def computed(*a, **k):
        raise AssertionError("computed before rejecting the command line")

    monkeypatch.setattr(minstab.data.toy, "toy_1d", computed)
    monkeypatch.setattr(predict, "predict_data", computed)
    try:
        rc = cli.main(_argv(argv, files))
    except SystemExit as e:  # argparse's own errors exit from parse_args
        rc = e.code
    out = capsys.readouterr()
    _assert_clean_usage_error(subprocess.CompletedProcess(argv, rc, out.out, out.err), names)


# one of each kind of error, as a user meets it: an argparse type, a bad file read by the
# command, a directory that is not a sweep, an unknown command
SUBPROCESS = [BAD[0], BAD[2], BAD[15], BAD[18]]


@pytest.mark.parametrize(("argv", "names"), SUBPROCESS, ids=["type", "file", "dir", "command"])
def test_bad_command_line_python_m(argv, names, files):
    _assert_clean_usage_error(run(_argv(argv, files)), names)


def test_bad_command_line_installed_script(files):
    """The console script installed by pip behaves the same (entry point minstab.cli:main)."""
    if not SCRIPT.exists():
        pytest.skip(f"no installed console script at {SCRIPT} (pip install . installs it)")
    argv, names = BAD[3]
    _assert_clean_usage_error(run(_argv(argv, files), script=True), names)


def test_missing_optional_dependency_names_the_extra(capsys, monkeypatch):
    """A command that hits a missing optional module: exit 2 and the extra to install."""

    def needs_sklearn(args):
        raise ModuleNotFoundError("No module named 'sklearn'", name="sklearn")

    monkeypatch.setattr(cli, "_cmd_info", needs_sklearn)
    assert cli.main(["info"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        'minstab info: needs scikit-learn, which is not installed; pip install "minstab[data]"'
    ]


def test_an_unexpected_missing_module_is_not_hidden(monkeypatch):
    """Only known optional dependencies become usage errors; a broken install still raises."""

    def broken(args):
        raise ModuleNotFoundError("No module named 'minstab.nothing'", name="minstab.nothing")

    monkeypatch.setattr(cli, "_cmd_info", broken)
    with pytest.raises(ModuleNotFoundError):
        cli.main(["info"])


def test_require_extra(monkeypatch):
    import importlib.util
    import json

    assert require_extra("json") is json
    with pytest.raises(cli.UsageError, match="needs no_such_module_xyz.*pip install no_such"):
        require_extra("no_such_module_xyz")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a)
    )
    with pytest.raises(cli.UsageError) as e:
        require_extra("sklearn", flag="--dataset digits")
    assert str(e.value) == (
        '--dataset digits: needs scikit-learn, which is not installed; pip install "minstab[data]"'
    )


# ----------------------------------------------------------------------------- argument types


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.01,0.02", (0.01, 0.02)),
        (" 0.5 ", (0.5,)),
        ("0.1:10:3", tuple(np.geomspace(0.1, 10, 3))),
        ("0.01:0.1:1", (0.01,)),
    ],
)
def test_eta_list_accepts(text, expected):
    got = eta_list(text)
    assert isinstance(got, tuple) and all(isinstance(v, float) for v in got)
    np.testing.assert_allclose(got, expected, rtol=1e-15)


@pytest.mark.parametrize(
    "text",
    [
        "0.01:0.1:0",  # NUM < 1 (used to run the default sweep silently)
        "nan:0.1:3",
        "0.01:inf:3",
        "0.1:0.01:3",  # LO > HI
        "0:0.1:3",
        "-1:0.1:3",
        "0.01:0.1:2.5",
        "0.01:0.1",
        "0.01:0.1:3:4",
        "",
        "0.1,,0.2",
        "0.1,-0.2",
        "0.1,nan",
        "abc",
    ],
)
def test_eta_list_rejects(text):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="expected"):
        eta_list(text)


def test_number_types():
    import argparse

    assert positive_int("3") == 3 and positive_float("1e-3") == 1e-3
    assert int_at_least(2)("2") == 2 and nonnegative_float("0") == 0.0
    for f, text in [
        (positive_int, "0"),
        (positive_int, "-3"),
        (positive_int, "2.0"),
        (positive_float, "0"),
        (positive_float, "inf"),
        (positive_float, "nan"),
        (int_at_least(2), "1"),
        (nonnegative_float, "-1e-9"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match=f"got '{text}'"):
            f(text)


def test_path_types(tmp_path):
    import argparse

    f = tmp_path / "f.csv"
    f.write_text("1,2\n")
    assert existing_file(str(f)) == f and existing_dir(str(tmp_path)) == tmp_path
    with pytest.raises(argparse.ArgumentTypeError, match="no such file"):
        existing_file(str(tmp_path / "missing"))
    with pytest.raises(argparse.ArgumentTypeError, match="a directory"):
        existing_file(str(tmp_path))
    with pytest.raises(argparse.ArgumentTypeError, match="no such directory"):
        existing_dir(str(tmp_path / "missing"))
    with pytest.raises(argparse.ArgumentTypeError, match="a file"):
        existing_dir(str(f))
