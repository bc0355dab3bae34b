"""`minstab sweep`: the main job (reduced with MINSTAB_QUICK=1), its claims, flags, kill-and-resume."""

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

import numpy as np
import pytest

from minstab import cli
from minstab.experiments import sweep_1d
from minstab.sweep import load_sweep

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    assert os.environ.get("MINSTAB_QUICK") == "1"
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        rc = cli.main(["sweep", "--out", str(out), "--quiet"])
    assert rc == 0, text.getvalue()  # every claim of the quick main job holds
    (out / "stdout.txt").write_text(text.getvalue())
    return out


def test_main_job_writes_table_results_and_figures(quick_run):
    out = quick_run
    for name in ("results.npz", "results.json", "summary.json"):
        assert (out / name).exists()
    for fig in ("fig3a_interpolants", "fig3b_curvature", "fig3c_sharpness"):
        assert (out / f"{fig}.png").stat().st_size > 10_000
        assert (out / f"{fig}.pdf").exists()
    r = load_sweep(out)
    assert r.num_runs == sweep_1d.Config.quick_config().num_etas
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert {"lambda_lower", "lambda_upper", "mode_delta"} <= set(runs[0])
    # the Fig. 3 protocol: one shared random initialization, no warm-up
    cfg = json.loads((out / "results.json").read_text())["config"]
    assert cfg["from_minimum"] is False and cfg["warmup_steps_run"] == 0
    # the timing line: compilation is part of the whole job's wall time, never more
    m = re.search(r"whole job ([0-9.]+) s, of which compilation ([0-9.]+) s \((\d+) programs",
                  (out / "stdout.txt").read_text())  # fmt: skip
    assert m, (out / "stdout.txt").read_text()
    assert 0 <= float(m.group(2)) <= float(m.group(1)) and int(m.group(3)) >= 0


def test_quick_main_job_claims_from_its_own_output(quick_run):
    """The claims in summary.json, recomputed here from results.json with scipy."""
    from scipy.stats import spearmanr

    summary = json.loads((quick_run / "summary.json").read_text())
    runs = json.loads((quick_run / "results.json").read_text())["runs"]
    eta = np.array([r["eta"] for r in runs])
    conv = np.array([r["status"] == "converged" for r in runs])
    sharp = np.array([r["sharpness"] for r in runs])
    lo = np.array([r["lambda_lower"] for r in runs])
    hi = np.array([r["lambda_upper"] for r in runs])
    curv = np.array([r["weighted_curvature"] for r in runs])
    q = sweep_1d.Config.quick_config()
    assert conv.sum() >= q.min_converged
    # edge band: converged runs whose 2/eta is below the sharpness at the smallest converged eta
    ref = sharp[conv][np.argmin(eta[conv])]
    band = conv & (2 / eta < ref)
    assert band.sum() >= q.band_min_runs and eta[band].max() / eta[band].min() >= 2.0
    lam = np.clip(2 / eta, lo, hi)  # the point of the mode interval nearest to 2/eta
    assert np.median(np.abs(eta[band] * lam[band] / 2 - 1)) <= 0.05
    assert spearmanr(eta[conv], curv[conv]).statistic <= -0.7  # smoother at larger steps
    assert all(summary["claims"].values()), summary["claims"]
    assert summary["claims"]["edge_band_at_edge"] and summary["num_converged"] == conv.sum()
    # a check that covered no run is reported as such, not as a pass
    for name, why in summary["not_checked"].items():
        assert name not in summary["claims"] and why.startswith("0 of")


def test_a_false_claim_exits_1(quick_run, tmp_path, capsys):
    """An impossible edge tolerance: same sweep (chunks reused), the claim fails, exit 1."""
    toml = tmp_path / "strict.toml"
    toml.write_text("edge_tol = 1e-12\nmax_spearman = -1.5\n")
    rc = cli.main(["sweep", "--quick", "--quiet", "--out", str(quick_run), "--config", str(toml)])
    assert rc == 1
    text = capsys.readouterr().out
    assert "FAIL  edge_band_at_edge" in text and "FAIL  smoother_at_larger_eta" in text
    summary = json.loads((quick_run / "summary.json").read_text())
    assert summary["claims"]["edge_band_at_edge"] is False
    assert summary["claims"]["smoother_at_larger_eta"] is False
    assert summary["claims"]["enough_runs_converge"] is True


def test_mode_intervals_match_dense_mode_hessians(quick_run):
    """lambda_lower/upper of two band runs against jax.hessian of every mode's loss."""
    from minstab.modes import mode_hessians

    r = load_sweep(quick_run)
    runs = json.loads((quick_run / "results.json").read_text())["runs"]
    band = [i for i, v in enumerate(runs) if v["status"] == "converged"][-2:]
    for i in band:
        m = mode_hessians(r.params_at(i), r.x, r.y, atol=1e-6)
        np.testing.assert_allclose(runs[i]["lambda_lower"], m.lambda_lower, rtol=1e-6)
        np.testing.assert_allclose(runs[i]["lambda_upper"], m.lambda_upper, rtol=1e-6)
        np.testing.assert_allclose(runs[i]["mode_delta"], m.delta, rtol=1e-6, atol=1e-9)


def test_help_and_config(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    text = capsys.readouterr().out
    for flag in ("--out", "--etas", "--steps", "--width", "--seed", "--dtype", "--config",
                 "--quiet", "--from-minimum"):  # fmt: skip
        assert flag in text
    toml = tmp_path / "c.toml"
    toml.write_text("steps = 123\nwidth = 7\netas = [0.1, 0.2]\n")
    args = cli.build_parser().parse_args(["sweep", "--config", str(toml), "--width", "9"])
    cfg = sweep_1d.config_from_args(args)
    assert cfg.steps == 123 and cfg.width == 9 and cfg.etas == (0.1, 0.2)
    assert not cfg.from_minimum and cfg.warmup_steps == 0
    args = cli.build_parser().parse_args(["sweep", "--etas", "0.01:0.1:5", "--from-minimum"])
    cfg = sweep_1d.config_from_args(args)
    np.testing.assert_allclose(cfg.etas, np.geomspace(0.01, 0.1, 5))
    assert cfg.from_minimum and cfg.warmup_steps == 20_000  # seed 004 Fig. 1's protocol
    toml.write_text("stepz = 1\n")
    assert cli.main(["sweep", "--config", str(toml)]) == 2
    assert "stepz" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, names",
    [
        (["--etas", "0.01:0.1:0"], "--etas"),
        (["--etas", "nan:0.1:3"], "--etas"),
        (["--etas", "0.1,-2"], "--etas"),
        (["--width", "0"], "--width"),
        (["--steps", "ten"], "--steps"),
        (["--warmup-steps", "10"], "--warmup-steps"),
        (["--config", "/nonexistent/c.toml"], "--config"),
    ],
)
def test_bad_command_lines_exit_2_with_one_line(flags, names):
    """Bad flags: exit 2 before any compilation, one stderr line naming the flag, no traceback."""
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "minstab", "sweep", "--quiet", *flags],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0] and "Traceback" not in out.stderr, out.stderr
    assert time.monotonic() - t0 < 20


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
