"""`minstab reproduce adaptive-eos`: Adam's adaptive edge, the frozen control, heavy ball."""

import dataclasses
import json

import numpy as np
import pytest

from minstab import cli
from minstab._io import to_jsonable
from minstab.experiments import adaptive_eos as ae
from minstab.experiments.outcomes import exit_status


@pytest.mark.run_bound
def test_reproduce_adaptive_eos_tiny(tmp_path):
    argv = ["reproduce", "adaptive-eos", "--quick", "--n", "64", "--hidden", "8", "--steps",
            "60", "--log-every", "10", "--adam-etas", "0.004", "--momentum-etas", "0.2",
            "--out", str(tmp_path)]  # fmt: skip
    assert cli.main(argv) == 0
    for name in ("adaptive_eos.png", "adaptive_eos.pdf", "adaptive_eos.json"):
        assert (tmp_path / name).stat().st_size > 0
    res = json.loads((tmp_path / "adaptive_eos.json").read_text())
    assert set(res["checks"]) == {"thresholds_are_companion_edges",
                                  "preconditioner_reproduces_adam_step",
                                  "tracker_matches_cold_lanczos"}  # fmt: skip
    assert all(c["holds"] is True for c in res["checks"].values()), res["checks"]
    assert set(res["verdicts"]) == {"adam_at_adaptive_edge", "adam_plain_sharpness_keeps_rising",
                                    "frozen_at_gd_edge", "frozen_same_eta_leaves",
                                    "momentum_at_edge"}  # fmt: skip
    for v in res["verdicts"].values():  # one seed: too few to judge
        assert v["verdict"] == "inconclusive" and v["seeds_run"] == 1
    fams = [r["family"] for r in res["runs"]]
    assert fams == ["adam", "frozen", "frozen_same_eta", "momentum"]
    adam = res["runs"][0]
    assert adam["threshold"] == pytest.approx(38 / 0.004)
    assert np.all(np.diff(adam["step"]) == 10) and adam["step"][-1] == 60
    frozen = res["runs"][1]
    assert frozen["eta"] == pytest.approx(0.004 * 0.1 / 1.9)
    assert frozen["threshold"] == pytest.approx(adam["threshold"])  # 2/eta_f = 38/eta
    assert frozen["step"][0] == 30  # the freeze: half the budget
    assert res["runs"][3]["threshold"] == pytest.approx(3.8 / 0.2)
    assert (tmp_path / "seeds" / "seed_0.json").stat().st_size > 0


@pytest.mark.run_bound
def test_finished_seeds_resume(tmp_path, monkeypatch):
    """A rerun with the same options reads finished seeds back; other options train again."""
    cfg = ae.Config.quick(n=64, hidden=8, steps=40, log_every=10, seeds=(3,), adam_etas=(4e-3,),
                          momentum_etas=(0.2,), frozen_probe_steps=10)  # fmt: skip
    first = ae.run(cfg, out_dir=tmp_path)

    def no_training(*args, **kw):
        raise AssertionError("a finished seed was trained again")

    with monkeypatch.context() as m:
        m.setattr(ae, "_run_adam", no_training)
        m.setattr(ae, "_run_momentum", no_training)
        again = ae.run(cfg, out_dir=tmp_path)
    assert again.checks_data == first.checks_data
    assert len(again.traces) == len(first.traces) == 4
    for a, b in zip(first.traces, again.traces, strict=True):
        assert a[:4] + (a.diverged,) == b[:4] + (b.diverged,)  # family, seed, eta, threshold
        for k in ("step", "loss", "sharpness", "plain"):
            np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    same = [json.dumps(to_jsonable(ae.outcomes(r)), sort_keys=True) for r in (first, again)]
    assert same[0] == same[1]  # (NaN != NaN in a plain comparison of the records)
    other = ae.run(dataclasses.replace(cfg, steps=60), out_dir=tmp_path)  # another key: trained
    assert other.traces[0].step[-1] == 60


@pytest.mark.parametrize(
    "argv,flag",
    [
        (["--steps", "20", "--log-every", "15"], "--log-every"),
        (["--log-every", "0"], "--log-every"),
        (["--adam-etas", "0"], "--adam-etas"),
        (["--seeds", "0"], "--seeds"),
        (["--n", "70000"], "--n"),
    ],
)
def test_bad_flags_exit_2(argv, flag, capsys, tmp_path):
    try:
        code = cli.main(["reproduce", "adaptive-eos", "--quick", "--out", str(tmp_path), *argv])
    except SystemExit as e:  # argparse's own errors exit from parse_args
        code = e.code
    assert code == 2
    assert flag in capsys.readouterr().err


def _trace(family, eta, thr, values, *, plain=None, loss=None, seed=0, diverged=False):
    n = len(values)
    return ae.Trace(family, seed, eta, thr, np.arange(1, n + 1) * 10,
                    np.ones(n) if loss is None else np.asarray(loss, float),
                    np.asarray(values, float) * thr,
                    np.full(n, np.nan) if plain is None else np.asarray(plain, float),
                    diverged, 0.0)  # fmt: skip


def _result(traces, seeds=(0,), info=None):
    cfg = ae.Config.quick(seeds=seeds, adam_etas=(1e-3,), momentum_etas=(0.1,))
    info = info or [dict(seed=0, eta=1e-3, step_err=1e-8, plain_err=1e-6, pre_err=1e-6)]
    return ae.Result(cfg, traces, {"adam_runs": info}, {}, 0.0)


def test_verdict_measures_on_synthetic_traces():
    rise = np.linspace(0.2, 0.95, 10)
    hover = 1 + 0.05 * np.sin(np.arange(30))
    at_edge = np.concatenate([rise, hover])
    plain = np.linspace(10, 40, 40)
    below = np.linspace(0.2, 0.85, 40)  # never reaches 0.9
    traces = []
    for seed in range(4):
        traces += [
            _trace("adam", 1e-3, 38e3, at_edge, plain=plain, seed=seed),
            _trace("frozen", 1e-3 / 19, 38e3, below, seed=seed),
            _trace("frozen_same_eta", 1e-3, 2e3, [19.0, 30.0], loss=[1.0, 50.0], seed=seed),
            _trace("momentum", 0.1, 38, at_edge if seed else below, seed=seed),
        ]
    res = _result(traces, seeds=(0, 1, 2, 3))
    checks, v = ae.outcomes(res)
    assert exit_status(checks) == 0
    assert v["adam_at_adaptive_edge"].verdict == "reproduced"
    assert v["adam_plain_sharpness_keeps_rising"].verdict == "reproduced"
    assert v["frozen_at_gd_edge"].verdict == "not reproduced"
    assert v["frozen_same_eta_leaves"].verdict == "reproduced"
    assert v["momentum_at_edge"].verdict == "reproduced"  # 3 of 4 seeds: 75 %
    assert v["momentum_at_edge"].seeds_shown == 3
    s = ae.summarize(traces[0], res.config)
    assert s.reached_step == 100 and s.in_band == 1.0
    assert s.plain_final > s.plain_at_reach
    # a flat plain sharpness does not "keep rising"; a run that never reached is not judged
    flat = _trace("adam", 1e-3, 38e3, at_edge, plain=np.full(40, 25.0))
    _, v1 = ae.outcomes(_result([flat]))
    assert v1["adam_plain_sharpness_keeps_rising"].per_seed[0]["shown"] is False
    never = _trace("adam", 1e-3, 38e3, below, plain=plain)
    _, v2 = ae.outcomes(_result([never]))
    assert v2["adam_plain_sharpness_keeps_rising"].per_seed[0]["shown"] is None
    assert v2["adam_at_adaptive_edge"].per_seed[0]["shown"] is False


def test_false_checks_exit_1():
    tr = [_trace("adam", 1e-3, 38e3, np.ones(10), plain=np.ones(10))]
    bad = [dict(seed=0, eta=1e-3, step_err=1e-2, plain_err=1e-6, pre_err=0.5)]
    checks, _ = ae.outcomes(_result(tr, info=bad))
    assert checks["preconditioner_reproduces_adam_step"].holds is False
    assert checks["tracker_matches_cold_lanczos"].holds is False
    assert exit_status(checks) == 1


# ----------------------------------------------------------------------------- momentum-fig3
def _fake_sweep(etas, sharpness, curvature, *, converged=None, kinked=None):
    from types import SimpleNamespace

    etas = np.asarray(etas, float)
    n = etas.size
    conv = np.ones(n, bool) if converged is None else np.asarray(converged)
    lam = np.asarray(sharpness, float)
    lo = lam.copy()
    if kinked is not None:
        lo[np.asarray(kinked)] *= 0.9  # a knot on a data point: a mode interval
    curv = np.asarray(curvature, float)
    return SimpleNamespace(etas=etas, converged=conv, sharpness=lam, lambda_lower=lo,
                           lambda_upper=lam, weighted_curvature=curv, lower_bound=1 + 2 * curv,
                           flattest_sharpness=lam * 0.99)  # fmt: skip


def test_momentum_checks_and_edge_rows():
    from minstab.experiments import momentum_fig3 as mf

    beta = 0.9
    etas = np.array([0.2, 0.4, 0.8, 1.6])
    thr = 3.8 / etas  # 19, 9.5, 4.75, 2.375
    lam = np.array([12.0, 9.4, 4.74, 2.37])  # the first below its threshold, the rest at it
    curv = np.array([1.0, 2.0, 1.5, 0.3])  # budgets 9, 4.25, 1.875, 0.6875
    good = _fake_sweep(etas, lam, curv)
    c = mf.momentum_checks([good], beta)
    assert all(v.holds for v in c.values()), c
    assert c["momentum_bound"].covered == 4
    rows = mf.edge_rows({0: good}, beta, 0.05)
    assert rows[0]["band_runs"] == 3 and rows[0]["shown"] is True
    assert rows[0]["median_edge_dev"] == pytest.approx(np.median(np.abs(lam[1:] / thr[1:] - 1)))
    # a curvature over the momentum budget, a sharpness over the threshold: both checks fail
    bad = _fake_sweep(etas, [12.0, 9.4, 5.5, 2.37], [1.0, 4.3, 1.5, 0.3])
    c = mf.momentum_checks([bad], beta)
    assert c["momentum_bound"].holds is False
    assert c["momentum_stability_necessary"].holds is False
    # kinked minima are not covered; with none twice differentiable the checks say why
    kinked = _fake_sweep(etas, lam, curv, kinked=[0, 1, 2, 3])
    c = mf.momentum_checks([kinked], beta)
    assert c["momentum_bound"].holds is None and c["momentum_bound"].why_none
    # no band (every threshold above the reference sharpness): the seed is not judged
    flat = _fake_sweep(etas, [1.0, 1.0, 1.0, 1.0], curv * 0)
    assert mf.edge_rows({3: flat}, beta, 0.05)[0]["shown"] is None


def test_momentum_fig3_grid_and_flags(capsys, tmp_path):
    from minstab.experiments import momentum_fig3 as mf

    cfg = mf.Config()
    # each heavy-ball run's threshold equals the GD threshold of the main job's grid
    gd = np.geomspace(cfg.eta_lo, cfg.eta_hi, cfg.num_etas)
    np.testing.assert_allclose(3.8 / cfg.step_sizes(), 2 / gd)
    try:
        code = cli.main(["reproduce", "momentum-fig3", "--beta", "1.0", "--out", str(tmp_path)])
    except SystemExit as e:
        code = e.code
    assert code == 2 and "--beta" in capsys.readouterr().err


def test_momentum_checks_nesterov_threshold():
    """optimizer="nesterov": the threshold (2 + 2 beta)/(eta (1 + 2 beta)) and budget half of it
    minus 1/2 (1.357/eta at beta = 0.9); a sharpness just above it fails, just below passes."""
    from minstab.experiments import momentum_fig3 as mf

    beta, etas = 0.9, np.array([0.1, 0.2])
    thr = (2 + 2 * beta) / (etas * (1 + 2 * beta))
    curv = thr / 2 - 0.5 - 1e-9  # at the budget
    ok = _fake_sweep(etas, thr * (1 - 1e-6), curv)
    c = mf.momentum_checks([ok], beta, optimizer="nesterov")
    assert c["momentum_stability_necessary"].holds and c["momentum_bound"].holds
    assert "(2 + 2 beta)/(eta (1 + 2 beta))" in c["momentum_stability_necessary"].detail
    over = _fake_sweep(etas, thr * 1.01, curv + 1e-3)
    c = mf.momentum_checks([over], beta, optimizer="nesterov")
    assert c["momentum_stability_necessary"].holds is False and c["momentum_bound"].holds is False
    # heavy ball's threshold (2 + 2 beta)/eta is larger: the same runs pass as heavy ball
    c = mf.momentum_checks([over], beta)
    assert c["momentum_stability_necessary"].holds and c["momentum_bound"].holds
    rows = mf.edge_rows({0: ok}, beta, 0.05, optimizer="nesterov")
    assert rows[0]["band_runs"] == 1 and rows[0]["shown"] is True
    assert rows[0]["band_ratios"] == pytest.approx([1 - 1e-6], rel=1e-12)
    with pytest.raises(ValueError, match="optimizer"):
        mf.momentum_checks([ok], beta, optimizer="adam")
    # no converged run: the checks say so (not "a knot on a data point")
    none = _fake_sweep(etas, thr, curv, converged=[False, False])
    assert mf.momentum_checks([none], beta)["momentum_bound"].why_none == "no run converged"
