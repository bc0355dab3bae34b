"""`minstab sweep`: the main job (reduced with MINSTAB_QUICK=1), its checks and verdicts, flags,
TOML, kill-and-resume."""

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import minstab as ms
from minstab import cli
from minstab.engine.sweep import load_sweep
from minstab.experiments import base, sweep_1d

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    assert os.environ.get("MINSTAB_QUICK") == "1"
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        rc = cli.main(["sweep", "--out", str(out), "--quiet"])
    assert rc == 0, text.getvalue()  # every check holds; verdicts never change the exit
    (out / "stdout.txt").write_text(text.getvalue())
    return out


def test_main_job_writes_table_results_and_figures(quick_run):
    out = quick_run
    for name in ("results.json", "summary.json"):
        assert (out / name).exists()
    for fig in ("fig3a_interpolants", "fig3b_curvature", "fig3c_sharpness", "fig3d_seeds"):
        assert (out / f"{fig}.png").stat().st_size > 10_000
        assert (out / f"{fig}.pdf").exists()
    q = sweep_1d.Config.quick()
    seeds = q.seed_list()
    for seed in seeds:
        assert load_sweep(out / f"seed_{seed}").num_runs == q.num_etas
    data = json.loads((out / "results.json").read_text())
    runs = data["runs"]
    assert len(runs) == q.seeds * q.num_etas and sorted({r["seed"] for r in runs}) == seeds
    need = {"seed", "eta", "status", "sharpness", "lambda_lower", "lambda_upper",
            "twice_differentiable", "weighted_curvature", "edge_dev"}  # fmt: skip
    assert need <= set(runs[0])
    # the Fig. 3 protocol: one shared random initialization per seed, no warm-up
    assert data["config"]["from_minimum"] is False
    # plain GD: its threshold is 2/eta, edge_ratio = eta lambda / 2 (issue 33's columns)
    assert data["config"]["optimizer"] == "gd"
    for r in runs:
        assert r["threshold"] == pytest.approx(2 / r["eta"], rel=1e-14)
        assert r["edge_ratio"] == pytest.approx(
            r["eta"] * r["sharpness"] / 2, rel=1e-14, nan_ok=True
        )
    text = (out / "stdout.txt").read_text()
    assert "verdicts (the papers' empirical claims" in text and "per seed:" in text
    m = re.search(r"wall time ([0-9.]+) s, of which compilation ([0-9.]+) s \((\d+) programs",
                  text)  # fmt: skip
    assert m, text
    assert 0 <= float(m.group(2)) <= float(m.group(1)) and int(m.group(3)) >= 0


def test_quick_verdicts_and_checks_from_results_json(quick_run):
    """Per seed, the verdict criteria recomputed from results.json with scipy; the grid is
    relative to each seed's initial sharpness."""
    from scipy.stats import spearmanr

    summary = json.loads((quick_run / "summary.json").read_text())
    runs = json.loads((quick_run / "results.json").read_text())["runs"]
    assert set(summary) >= {"checks", "verdicts"} and "claims" not in summary
    assert set(summary["verdicts"]) == {"edge", "smoother"}
    per_seed = {p["seed"]: p for p in summary["per_seed"]}
    for seed, p in per_seed.items():
        rs = [r for r in runs if r["seed"] == seed]
        eta = np.array([r["eta"] for r in rs])
        conv = np.array([r["status"] == "converged" for r in rs])
        sharp = np.array([r["sharpness"] for r in rs])
        curv = np.array([r["weighted_curvature"] for r in rs])
        rel = eta * p["init_sharpness"] / 2
        np.testing.assert_allclose(rel, np.geomspace(0.6, 2.5, 12), rtol=1e-12)
        assert p["converged"] == conv.sum()
        if conv.sum() < 5:
            assert p["edge"] is None and p["smoother"] is None
            continue
        ref = sharp[conv][np.argmin(eta[conv])]
        band = conv & (2 / eta < ref)
        dev = np.abs(eta[band] * sharp[band] / 2 - 1)  # plain: no mode interval
        assert p["edge"] == bool(band.sum() >= 5 and np.median(dev) <= 0.05)
        rho = spearmanr(eta[conv], curv[conv]).statistic
        assert p["smoother"] == bool(rho <= -0.5)
    judged = [p for p in per_seed.values() if p["edge"] is not None]
    assert summary["verdicts"]["edge"]["seeds"] == len(judged)
    assert summary["verdicts"]["edge"]["seeds_shown"] == sum(p["edge"] for p in judged)
    for c in summary["checks"].values():  # a check over no run says why
        assert c["holds"] is not False and (c["covered"] > 0 or c["why_none"])


def test_other_seeds_and_offset(tmp_path):
    """--seeds 2 --seed-offset 100: seeds 100 and 101, their own data, exit 0."""
    out = tmp_path / "s"
    args = ["sweep", "--quiet", "--seeds", "2", "--seed-offset", "100", "--etas", "0.1,0.2",
            "--steps", "2000", "--out", str(out)]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(args) == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [r["seed"] for r in runs] == [100, 100, 101, 101]
    a, b = load_sweep(out / "seed_100"), load_sweep(out / "seed_101")
    assert not np.allclose(a.x, b.x)
    x, _ = ms.data.toy_1d(n=sweep_1d.Config().n, key=jax.random.key(101))
    np.testing.assert_allclose(b.x, x)


def test_mode_intervals_match_dense_mode_hessians(quick_run):
    """lambda_lower/upper of two converged runs against jax.hessian of every mode's loss."""
    from minstab.shallow.modes import mode_hessians

    runs = json.loads((quick_run / "results.json").read_text())["runs"]
    conv = [(r["seed"], i % 12) for i, r in enumerate(runs) if r["status"] == "converged"]
    assert conv
    for seed, i in conv[-2:]:
        r = load_sweep(quick_run / f"seed_{seed}")
        row = runs[[j for j, v in enumerate(runs) if v["seed"] == seed][i]]
        m = mode_hessians(r.params_at(i), r.x, r.y, atol=1e-6)
        np.testing.assert_allclose(row["lambda_lower"], m.lambda_lower, rtol=1e-6)
        np.testing.assert_allclose(row["lambda_upper"], m.lambda_upper, rtol=1e-6)
        np.testing.assert_allclose(row["mode_delta"], m.delta, rtol=1e-6, atol=1e-9)


def test_help_and_config(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    text = capsys.readouterr().out
    for flag in ("--out", "--etas", "--steps", "--width", "--seeds", "--seed-offset", "--dtype",
                 "--config", "--quiet", "--from-minimum"):  # fmt: skip
        assert flag in text
    toml = tmp_path / "c.toml"
    toml.write_text('steps = 123\nwidth = 7\netas = [0.1, 0.2]\ndtype = "float32"\nseeds = 3\n')
    args = cli.build_parser().parse_args(["sweep", "--config", str(toml), "--width", "9"])
    cfg = base.config_from_args(sweep_1d, args)
    assert cfg.steps == 123 and cfg.width == 9 and cfg.etas == (0.1, 0.2) and cfg.seeds == 3
    assert cfg.dtype == "float32"  # a config value is used unless a flag overrides it
    assert cfg.tolerance() == sweep_1d.TOL["float32"]
    args = cli.build_parser().parse_args(["sweep", "--config", str(toml), "--dtype", "float64"])
    assert base.config_from_args(sweep_1d, args).dtype == "float64"
    assert not cfg.from_minimum and cfg.warmup_steps == 0
    args = cli.build_parser().parse_args(["sweep", "--etas", "0.01:0.1:5", "--from-minimum"])
    cfg = base.config_from_args(sweep_1d, args)
    np.testing.assert_allclose(cfg.etas, np.geomspace(0.01, 0.1, 5))
    assert cfg.from_minimum and cfg.warmup_steps == 20_000  # seed 004 Fig. 1's protocol


@pytest.mark.parametrize(
    "toml, key",
    [
        ("etas = []", "etas"),
        ("etas = [0.1, -1]", "etas"),
        ("etas = 0.1", "etas"),
        ('dtype = "float16"', "dtype"),
        ("width = 2.5", "width"),
        ("width = 0", "width"),
        ("steps = true", "steps"),
        ('steps = "10"', "steps"),
        ("tol = nan", "tol"),
        ("noise = -1", "noise"),
        ("from_minimum = 1", "from_minimum"),
        ("stepz = 1", "stepz"),
        ("steps = 1e9", "steps"),
        ("width = 100000", "width"),
        ("seeds = 5000\nsteps = 10000000", "GiB"),
        ("eta_rel_lo = 3.0", "eta_rel_lo"),
        ("steps = [", "TOML"),
    ],
)
def test_bad_toml_exits_2_naming_the_key(tmp_path, capsys, toml, key):
    """Bad types and values, empty lists, unknown keys and sizes beyond the bounds: exit 2 with
    one line naming the key (no traceback, nothing computed)."""
    f = tmp_path / "c.toml"
    f.write_text(toml + "\n")
    assert cli.main(["sweep", "--quiet", "--config", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0] and "Traceback" not in err[0], err


def test_kill_and_resume(tmp_path):
    """SIGKILL after the first chunk is on disk; the rerun loads it and computes only the rest."""
    chunks = tmp_path / "ck"
    args = ["--chunks-dir", str(chunks), "--chunk", "1", "--steps", "400000",
            "--etas", "[0.01, 0.02, 0.03, 0.04]", "--tol", "1e-300"]  # fmt: skip
    cmd = [sys.executable, str(HERE / "_sweep_worker.py"), str(tmp_path / "a"), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = chunks / "chunks" / "chunk_0000.npz"
    deadline = time.monotonic() + 200
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first.exists()
    done = sorted(p.name for p in (chunks / "chunks").glob("chunk_*.npz"))
    assert not (chunks / "chunks" / "chunk_0003.npz").exists(), "finished before the kill"
    stamp = {n: (chunks / "chunks" / n).stat().st_mtime_ns for n in done}
    rc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rc.returncode == 0, rc.stdout + rc.stderr
    info = json.loads((tmp_path / "a" / "worker.json").read_text())
    assert 0 not in info["computed"] and info["computed"] == list(range(len(done), 4))
    for n, t in stamp.items():
        assert (chunks / "chunks" / n).stat().st_mtime_ns == t  # not rewritten
    r = load_sweep(tmp_path / "a")
    assert r.num_runs == 4 and np.all(np.isfinite(r.loss))
