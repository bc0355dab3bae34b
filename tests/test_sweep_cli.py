"""`minstab sweep`: the main job (reduced with MINSTAB_QUICK=1), its claims, flags, kill-and-resume."""

import json
import os
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
    rc = cli.main(["sweep", "--out", str(out), "--quiet"])
    assert rc == 0
    return out


def test_main_job_writes_table_results_and_figures(quick_run, capsys):
    out = quick_run
    for name in ("results.npz", "results.json", "summary.json"):
        assert (out / name).exists()
    for fig in ("fig3a_interpolants", "fig3b_curvature", "fig3c_sharpness"):
        assert (out / f"{fig}.png").stat().st_size > 10_000
        assert (out / f"{fig}.pdf").exists()
    r = load_sweep(out)
    q = sweep_1d.Config.quick_config()
    assert r.num_runs == q.num_etas + q.num_beyond
    assert "status" in r.table() and "2/eta" in r.table()


def test_default_sweep_claims(quick_run):
    """Lemma 1, Lemma 4 and Theorem 1 on the converged runs of the (reduced) default sweep."""
    from minstab.bounds import weight_1d

    r = load_sweep(quick_run)
    summary = json.loads((quick_run / "summary.json").read_text())
    c = np.asarray(r.converged)
    e = np.asarray(r.etas)
    assert c.sum() >= 3 and np.any(r.diverged), r.table()
    assert np.all(c | r.diverged), r.table()  # the defaults skip the stall band
    assert np.all(r.loss[c] < r.config["tol"])
    # Lemma 1 (and Lemma 2 at the non-differentiable minima GD often picks, see check_claims)
    assert summary["claims"]["stability_necessary_condition"], r.table()
    from minstab.modes import toggling_pairs

    smooth_min = [i for i in np.flatnonzero(c) if not toggling_pairs(r.params_at(i), r.x).any()]
    assert np.all(r.sharpness[smooth_min] <= (2 / e[smooth_min]) * (1 + 1e-3)), r.table()
    assert np.all(r.lower_bound[c] <= r.sharpness[c] * (1 + 1e-9))
    fl = r.flattest_sharpness[c]
    if np.all(np.isfinite(fl)):
        assert np.all(r.lower_bound[c] <= fl * (1 + 1e-6)) and np.all(
            fl <= r.sharpness[c] * (1 + 1e-6)
        )
    gap = np.asarray(summary["knot_gap"])
    smooth = c & (gap > 1e-6)
    assert np.all(r.weighted_curvature[smooth] <= 1 / e[smooth] - 0.5)
    # knots usually end within ~1e-10 of a data point, so also check every converged run
    assert np.all(r.weighted_curvature[c] <= 1 / e[c] - 0.5)
    assert all(v for v in summary["claims"].values() if isinstance(v, bool))
    pred = summary["prediction"]  # Theorem 1 before training, run by run
    assert len(pred["agrees"]) == r.num_runs and pred["all_agree"]
    assert pred["eta_max"] > pred["largest_converged_eta"] > 0
    # weighted curvature recomputed from the knots with an independent g evaluation
    from minstab.bounds import merged_knots

    i = int(np.flatnonzero(c)[0])
    mk = merged_knots(r.params_at(i))
    ref = float(np.sum(np.abs(np.asarray(mk.mass)) * np.asarray(weight_1d(mk.position, r.x))))
    np.testing.assert_allclose(r.weighted_curvature[i], ref, rtol=1e-10)


def test_help_and_config(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    text = capsys.readouterr().out
    for flag in (
        "--out",
        "--etas",
        "--steps",
        "--width",
        "--seed",
        "--dtype",
        "--config",
        "--quiet",
    ):
        assert flag in text
    toml = tmp_path / "c.toml"
    toml.write_text("steps = 123\nwidth = 7\netas = [0.1, 0.2]\n")
    args = cli.build_parser().parse_args(["sweep", "--config", str(toml), "--width", "9"])
    cfg = sweep_1d.config_from_args(args)
    assert cfg.steps == 123 and cfg.width == 9 and cfg.etas == (0.1, 0.2)
    args = cli.build_parser().parse_args(["sweep", "--etas", "0.01:0.1:5"])
    cfg = sweep_1d.config_from_args(args)
    np.testing.assert_allclose(cfg.etas, np.geomspace(0.01, 0.1, 5))
    toml.write_text("stepz = 1\n")
    args = cli.build_parser().parse_args(["sweep", "--config", str(toml)])
    assert cli.main(["sweep", "--config", str(toml)]) == 2
    assert "stepz" in capsys.readouterr().out


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
