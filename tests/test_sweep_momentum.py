"""`minstab sweep --optimizer momentum`: the main job with heavy ball (issue 33, item 5).

The threshold the job uses is checked against the largest curvature at which the optimizer's
linear recurrence on a 1-D quadratic has spectral radius <= 1 (companion matrices written out
here, bisection), not against the library's formula.
"""

import contextlib
import io
import json

import numpy as np
import pytest

from minstab import cli
from minstab.engine.sweep import load_sweep
from minstab.experiments import base, sweep_1d

BETA = 0.9
# seed 11 of the main job's cell: these three heavy-ball runs converge (two at the edge, one
# twice differentiable), in ~10 s (quick job: 3 of its 12 runs on seed 11, 2026-12-07)
ETAS = (0.2175, 0.2476, 0.2819)


def _companion(optimizer: str, eta: float, lam: float, beta: float) -> np.ndarray:
    """The recurrence matrix of optax's update on L = lam theta^2 / 2, state (theta, trace)."""
    a = eta * lam
    if optimizer == "momentum":  # t' = g + beta t, theta' = theta - eta t'
        return np.array([[1 - a, -eta * beta], [lam, beta]])
    # nesterov: t' = g + beta t, theta' = theta - eta (g + beta t')
    return np.array([[1 - a * (1 + beta), -eta * beta**2], [lam, beta]])


def _stable_edge(optimizer: str, eta: float, beta: float) -> float:
    """The largest lam > 0 with spectral radius <= 1 (bisection; stable at lam -> 0+)."""

    def stable(lam):
        return np.max(np.abs(np.linalg.eigvals(_companion(optimizer, eta, lam, beta)))) <= 1 + 1e-12

    lo, hi = 1e-9 / eta, 1.0 / eta
    while stable(hi):
        lo, hi = hi, 2 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if stable(mid) else (lo, mid)
    return lo


@pytest.fixture(scope="module")
def momentum_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("momentum")
    etas = ",".join(map(str, ETAS))
    args = ["sweep", "--quiet", "--optimizer", "momentum", "--beta", str(BETA), "--seeds", "1",
            "--seed-offset", "11", "--etas", etas, "--steps", "60000", "--out", str(out)]  # fmt: skip
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        rc = cli.main(args)
    assert rc == 0, text.getvalue()
    return out, text.getvalue()


def test_threshold_is_the_companion_matrix_edge(momentum_run):
    """Every run's threshold is where heavy ball's recurrence stops being stable, (2 + 2 beta)
    /eta; edge_ratio = lambda / threshold and edge_dev = |edge_ratio - 1| from the same row."""
    out, _ = momentum_run
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [r["eta"] for r in runs] == list(ETAS)
    for r in runs:
        edge = _stable_edge("momentum", r["eta"], BETA)
        np.testing.assert_allclose(r["threshold"], edge, rtol=1e-9)
        np.testing.assert_allclose(r["edge_ratio"], r["sharpness"] / edge, rtol=1e-9)
        np.testing.assert_allclose(r["edge_dev"], abs(r["sharpness"] / edge - 1), rtol=1e-9)
        assert r["two_over_eta"] == pytest.approx(2 / r["eta"])
    summ = json.loads((out / "summary.json").read_text())
    assert summ["optimizer"] == "momentum" and summ["beta"] == BETA
    assert summ["threshold_times_eta"] == pytest.approx(2 + 2 * BETA)
    s = load_sweep(out / "seed_11")  # the runs were heavy ball with that beta
    assert s.config["optimizer"] == "momentum" and s.config["momentum"] == BETA
    np.testing.assert_allclose(s.threshold, [r["threshold"] for r in runs], rtol=1e-12)


def test_momentum_checks_cover_runs_and_hold(momentum_run):
    """The momentum bound int|f''|g <= threshold/2 - 1/2 recomputed from results.json, and the
    checks of the summary: covering the converged runs, every one holding, no GD lemma."""
    out, text = momentum_run
    runs = json.loads((out / "results.json").read_text())["runs"]
    summ = json.loads((out / "summary.json").read_text())
    checks = summ["checks"]
    assert set(checks) == {"momentum_stability_necessary", "momentum_bound", "lemma4_order",
                           "eta_max"}  # fmt: skip
    conv = [r for r in runs if r["status"] == "converged"]
    smooth = [r for r in conv if r["twice_differentiable"]]
    assert len(conv) == 3 and len(smooth) >= 1
    for r in smooth:
        edge = _stable_edge("momentum", r["eta"], BETA)
        assert r["sharpness"] <= edge * (1 + 1e-3)
        assert r["weighted_curvature"] <= edge / 2 - 0.5
        assert r["eta"] <= r["eta_max"]
    assert checks["momentum_bound"]["covered"] == len(smooth)
    assert checks["lemma4_order"]["covered"] == len(conv)
    assert all(c["holds"] is True for c in checks.values())
    # the band: converged runs whose threshold is below the sharpness at the smallest eta
    ref = conv[int(np.argmin([r["eta"] for r in conv]))]["sharpness"]
    assert [r["in_edge_band"] for r in runs] == [r["threshold"] < ref for r in runs]
    assert "thresh" in text and "lam/thr" in text and "(2 + 2 beta)/eta = 3.8/eta" in text


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov"])
@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99])
def test_config_threshold_factor_against_companion(optimizer, beta):
    cfg = sweep_1d.Config(optimizer=optimizer, beta=beta)
    eta = 0.37
    np.testing.assert_allclose(cfg.threshold_factor() / eta, _stable_edge(optimizer, eta, beta),
                               rtol=1e-9)  # fmt: skip
    assert sweep_1d.Config().threshold_factor() == 2.0  # GD


def test_relative_grid_scales_with_the_threshold():
    """The relative grid is eta lambda_0 / (eta threshold): heavy ball's is GD's times 1 + beta
    (GD's is unchanged)."""
    lam0 = 7.3
    gd = sweep_1d.Config().step_sizes(lam0)
    np.testing.assert_array_equal(gd, np.geomspace(0.35, 2.8, 40) * 2.0 / lam0)
    hb = sweep_1d.Config(optimizer="momentum", beta=0.5).step_sizes(lam0)
    np.testing.assert_allclose(hb, gd * 1.5, rtol=1e-14)
    etas = sweep_1d.Config(optimizer="momentum", etas=(0.1, 0.2)).step_sizes(lam0)
    np.testing.assert_array_equal(etas, [0.1, 0.2])  # absolute step sizes are kept


def test_seed_stats_with_a_threshold():
    """The edge criterion with threshold factor/eta: band, median |eta lambda / factor - 1|."""
    eta = np.linspace(0.1, 0.5, 8)
    factor = 3.8
    sharp = np.r_[37.0, factor / eta[1:] * np.array([1.0, 0.99, 1.01, 0.98, 1.02, 1.0, 0.9])]
    conv = np.ones(8, bool)
    curv = np.linspace(3, 1, 8)
    st = sweep_1d.seed_stats(0, eta, conv, sharp, curv, factor=factor)
    band = factor / eta < 37.0
    assert st["band_runs"] == band.sum() == 7
    dev = np.abs(eta * sharp / factor - 1)[band]
    assert st["band_median_edge_dev"] == pytest.approx(np.median(dev))
    assert st["band_below_edge"] == 1 and st["edge"] is True and st["smoother"] is True
    # the same runs judged against GD's 2/eta are far from its edge
    assert sweep_1d.seed_stats(0, eta, conv, sharp, curv)["edge"] is False


@pytest.mark.parametrize(
    "argv, toml, flag",
    [
        (["--optimizer", "adam"], None, "--optimizer"),
        (["--optimizer", "sgd"], None, "--optimizer"),
        (["--optimizer", "momentum", "--beta", "1"], None, "--beta"),
        (["--optimizer", "momentum", "--beta", "-0.5"], None, "--beta"),
        (["--optimizer", "nesterov", "--beta", "nan"], None, "--beta"),
        (["--beta", "0.5"], None, "--beta"),  # gd has no momentum
        ([], 'optimizer = "adam"', "optimizer"),
        ([], 'optimizer = "momentum"\nbeta = 1.5', "beta"),
        ([], "beta = 0.5", "beta"),
    ],
)
def test_bad_optimizer_flags_exit_2(tmp_path, capsys, argv, toml, flag):
    """One line naming the flag or key, exit 2, nothing computed."""
    if toml is not None:
        (tmp_path / "c.toml").write_text(toml + "\n")
        argv = [*argv, "--config", str(tmp_path / "c.toml")]
    try:
        rc = cli.main(["sweep", "--quiet", "--out", str(tmp_path / "o"), *argv])
    except SystemExit as e:  # argparse refuses a flag's value while reading it
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0] and "Traceback" not in err[0], err
    assert not (tmp_path / "o").exists()


def test_help_names_the_optimizer_flags(capsys):
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    text = capsys.readouterr().out
    assert "--optimizer" in text and "--beta" in text and "nesterov" in text


def test_toml_optimizer_and_beta(tmp_path):
    """optimizer/beta as --config keys; a flag overrides the file."""
    f = tmp_path / "c.toml"
    f.write_text('optimizer = "nesterov"\nbeta = 0.5\n')
    args = cli.build_parser().parse_args(["sweep", "--config", str(f)])
    cfg = base.config_from_args(sweep_1d, args)
    assert cfg.optimizer == "nesterov" and cfg.beta == 0.5
    args = cli.build_parser().parse_args(["sweep", "--config", str(f), "--beta", "0.25"])
    assert base.config_from_args(sweep_1d, args).beta == 0.25
