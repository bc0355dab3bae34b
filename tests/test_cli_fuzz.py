"""A fuzz test over the flags of every command (issue 30): malformed command lines exit 2.

Every malformed line (flags, sizes, ``--out``, ``--config`` TOML files) must exit with status 2
and one stderr line naming the flag or key, without a traceback and before anything is
computed: every experiment's ``run`` (and ``predict``'s W*) is replaced by a function that
fails the test. In process (``cli.main``), so the whole table costs seconds; three lines also
run as a user runs them (a subprocess with ``JAX_LOG_COMPILES=1``, where one stderr line also
proves that nothing was compiled). Valid controls still run.
"""

import os
import subprocess
import sys

import pytest

from minstab import cli, experiments

TOML = {
    "empty_etas.toml": "etas = []\n",
    "unknown.toml": "stepz = 3\n",
    "float_steps.toml": "steps = 2.5\n",
    "str_steps.toml": 'steps = "10"\n',
    "no_bool.toml": 'quiet = "no"\n',
    "neg_seed.toml": "seed = -1\n",
    "huge_width.toml": "width = 100000000\n",
    "table.toml": "[steps]\nvalue = 3\n",
    "syntax.toml": "steps = = 3\n",
    "dtype_int.toml": "dtype = 32\n",
    "nan_tol.toml": "tol = nan\n",
    "huge_steps.toml": "steps = 100000000000\n",
}

# (argv, what the one stderr line must name); F/ is the fixture directory
BAD = [
    # top level and info
    (["--no-such-flag"], "--no-such-flag"),
    (["no-such-command"], "no-such-command"),
    (["info", "--bogus"], "--bogus"),
    (["info", "extra"], "extra"),
    (["reproduce", "no-such-experiment"], "no-such-experiment"),
    # sweep: sizes with their cost, numbers, paths
    (["sweep", "--etas", "0.1:0.2:1000000000"], "--etas"),
    (["sweep", "--etas", "0.1:0.2:0"], "--etas"),
    (["sweep", "--etas", ""], "--etas"),
    (["sweep", "--etas", "0.1,nan"], "--etas"),
    (["sweep", "--steps", "1e11"], "--steps"),
    (["sweep", "--steps", "100000000000"], "--steps"),
    (["sweep", "--steps", "0"], "--steps"),
    (["sweep", "--width", "100000000"], "--width"),
    (["sweep", "--width", "2.5"], "--width"),
    (["sweep", "--n", "1"], "--n"),
    (["sweep", "--n", "10000000"], "--n"),
    (["sweep", "--seed", str(2**70)], "--seed"),
    (["sweep", "--seed", "2**70"], "--seed"),
    (["sweep", "--seed", "-1"], "--seed"),
    (["sweep", "--tol", "nan"], "--tol"),
    (["sweep", "--tol", "-1"], "--tol"),
    (["sweep", "--chunk-size", "0"], "--chunk-size"),
    (["sweep", "--dtype", "float16"], "--dtype"),
    (["sweep", "--out", "F/a_file"], "--out"),
    (["sweep", "--out", "F/a_file/sub"], "--out"),
    (["sweep", "--config", "F/missing.toml"], "--config"),
    (["sweep", "--config", "F"], "--config"),
    *[(["sweep", "--config", f"F/{name}"], "--config") for name in sorted(TOML)],
    # predict
    (["predict", "--n", "1"], "--n"),
    (["predict", "--n", "100000000"], "--n"),
    (["predict", "--grid", "0"], "--grid"),
    (["predict", "--refine", "1000"], "--refine"),
    (["predict", "--directions", "1e9"], "--directions"),
    (["predict", "--seed", "-5"], "--seed"),
    (["predict", "--noise", "nan"], "--noise"),
    (["predict", "--out", "F/a_file"], "--out"),
    # reproduce: every experiment's flags (converted by helpers H2a/H2b)
    (["reproduce", "fig1", "--eta", "-1"], "--eta"),
    (["reproduce", "fig1", "--factor", "0"], "--factor"),
    (["reproduce", "fig1", "--width", "0"], "--width"),
    (["reproduce", "fig1", "--steps", "249"], "--steps"),
    (["reproduce", "fig1", "--out", "F/a_file"], "--out"),
    (["reproduce", "fig2", "--n", "0"], "--n"),
    (["reproduce", "fig3", "--seeds", "0"], "--seeds"),
    (["reproduce", "fig3", "--seeds", "100000000"], "--seeds"),
    (["reproduce", "mnist", "--classes", "0,12"], "--classes"),
    (["reproduce", "mnist", "--classes", "3,3"], "--classes"),
    (["reproduce", "stable-rank", "--leaky-slope", "2"], "--leaky-slope"),
    (["reproduce", "stable-rank", "--seeds", "0"], "--seeds"),
    (["reproduce", "min-norm", "--steps", "-1"], "--steps"),
    (["reproduce", "sgd-threshold", "--width", "0"], "--width"),
    (["reproduce", "eos", "--etas", "0"], "--etas"),
    (["reproduce", "depth-separation", "--dim", "0"], "--dim"),
    (["reproduce", "depth-separation", "--accuracies", "-1"], "--accuracies"),
    (["reproduce", "fig1", "--width", "100000000"], "--width"),
    (["reproduce", "fig2", "--seed", str(2**70)], "--seed"),
    (["reproduce", "eos", "--hidden", "10000000"], "--hidden"),
    (["reproduce", "mnist", "--n-per-class", "0"], "--n-per-class"),
    (["reproduce", "min-norm", "--eta-rels", "nan"], "--eta-rels"),
    (["reproduce", "sgd-threshold", "--seeds", "0"], "--seeds"),
    (["reproduce", "sgd-threshold", "--sweep-batch-sizes", "0"], "--sweep-batch-sizes"),
    (["reproduce", "adaptive-eos", "--seeds", "0"], "--seeds"),
    (["reproduce", "adaptive-eos", "--adam-etas", "-1"], "--adam-etas"),
    (["reproduce", "adaptive-eos", "--hidden", "10000000"], "--hidden"),
    (["reproduce", "momentum-fig3", "--beta", "1.5"], "--beta"),
    (["reproduce", "momentum-fig3", "--seeds", "0"], "--seeds"),
    (["reproduce", "momentum-fig3", "--out", "F/a_file"], "--out"),
    (["reproduce", "central-flow", "--parts", "z"], "--parts"),
    (["reproduce", "central-flow", "--seeds", "0"], "--seeds"),
    (["reproduce", "central-flow", "--steps", "-3"], "--steps"),
]


def _id(argv):
    return " ".join(a.replace("F/", "") for a in argv)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    (d / "a_file").write_text("")
    for name, text in TOML.items():
        (d / name).write_text(text)
    return d


def _argv(argv, files):
    return [a.replace("F/", f"{files}/").replace("F", str(files)) if a.startswith("F") else a
            for a in argv]  # fmt: skip


@pytest.fixture
def nothing_computed(monkeypatch):
    """Every experiment's ``run`` (and predict's W*) fails the test when called."""
    import minstab.data.toy
    from minstab.experiments import predict, sweep_1d

    def computed(*a, **k):
        raise AssertionError("computed before rejecting the command line")

    for mod_name, _ in experiments.available().values():
        mod = __import__(mod_name, fromlist=["run"])
        if hasattr(mod, "run"):
            monkeypatch.setattr(mod, "run", computed)
    monkeypatch.setattr(sweep_1d, "run", computed)
    monkeypatch.setattr(predict, "predict_data", computed)
    monkeypatch.setattr(minstab.data.toy, "toy_1d", computed)


def _main(argv, capsys):
    try:
        rc = cli.main(argv)
    except SystemExit as e:  # argparse's own errors exit from parse_args
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize(("argv", "names"), [pytest.param(a, n, id=_id(a)) for a, n in BAD])
def test_malformed_command_line_exits_2(argv, names, files, capsys, nothing_computed):
    rc, out, err = _main(_argv(argv, files), capsys)
    lines = err.strip().splitlines()
    assert rc == 2, (rc, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("minstab") and names in lines[0], lines[0]
    assert "Traceback" not in out + err


def test_the_table_covers_every_command():
    """At least 35 lines, over sweep, info, predict, the top level and every experiment."""
    assert len(BAD) >= 35
    covered = {a[1] if a[0] == "reproduce" else a[0] for a, _ in BAD}
    assert {"sweep", "info", "predict", *experiments.available()} <= covered
    assert sum("--config" in a for a, _ in BAD) >= 10


def test_size_errors_carry_their_cost(files, capsys, nothing_computed):
    """Sizes above the bound say what they would cost (memory, time)."""
    _, _, err = _main(["sweep", "--etas", "0.1:0.2:1000000000"], capsys)
    assert "GB" in err and "years" in err
    _, _, err = _main(["sweep", "--steps", "100000000000"], capsys)
    assert "days per run" in err
    _, _, err = _main(["sweep", "--width", "100000000"], capsys)
    assert "TB" in err


def _run(argv, files):
    env = dict(os.environ, JAX_LOG_COMPILES="1")
    return subprocess.run([sys.executable, "-m", "minstab", *_argv(argv, files)],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [["sweep", "--etas", "0.1:0.2:1000000000"], ["sweep", "--config", "F/empty_etas.toml"],
     ["predict", "--refine", "1000"]],
    ids=_id,
)  # fmt: skip
def test_as_a_user_runs_it(argv, files):
    """One stderr line with JAX_LOG_COMPILES=1: nothing compiled, no traceback."""
    proc = _run(argv, files)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


# ----------------------------------------------------------------------------- controls


def test_version(capsys):
    from importlib.metadata import version

    rc, out, _ = _main(["--version"], capsys)
    assert rc == 0 and out.strip() == f"minstab {version('minstab')}"


def test_info_still_runs(capsys):
    rc, out, err = _main(["info"], capsys)
    assert rc == 0 and "jax" in out and not err.strip()


def test_valid_config_is_read(tmp_path, capsys, monkeypatch):
    """A valid TOML file passes the checks and reaches the command with its values."""
    from minstab.experiments import sweep_1d

    cfg = tmp_path / "ok.toml"
    cfg.write_text("n = 5\nwidth = 6\nsteps = 300\netas = [0.05, 0.1]\nchunk_size = 2\n")
    seen = {}

    def fake_run(c, **kw):
        seen["cfg"] = c
        raise SystemExit(0)

    monkeypatch.setattr(sweep_1d, "run", fake_run)
    rc, _, err = _main(["sweep", "--config", str(cfg), "--out", str(tmp_path / "o")], capsys)
    assert rc == 0, err
    c = seen["cfg"]
    assert (c.n, c.width, c.steps, tuple(c.etas), c.chunk_size) == (5, 6, 300, (0.05, 0.1), 2)
