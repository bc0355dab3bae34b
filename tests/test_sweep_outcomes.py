"""The main job's verdicts and checks on constructed runs (no training): every verdict for each
outcome, every check made false by a run that breaks its theorem, and per-run data sweeps
against one sweep per data set."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import minstab as ms
from minstab.engine.sweep import sweep
from minstab.experiments import fig3, sweep_1d

ETAS = np.geomspace(0.05, 0.4, 40)


def _seed(kind: str, seed: int = 0):
    """One seed's (eta, converged, sharpness, curvature) showing ``kind``.

    ``edge``: 16 band runs at |eta lambda/2 - 1| = 0.01; ``below``: the same runs 20 % below
    2/eta; ``few``: only 4 band runs; ``smoother`` / ``rougher``: the curvature falls / rises
    with eta; ``unjudged``: 3 converged runs.
    """
    conv = np.ones(ETAS.size, bool)
    ref = 2 / ETAS[14]  # the sharpness reached at small eta: runs 15.. are in the band
    sharp = np.full(ETAS.size, ref * 0.95)
    band = 2 / ETAS < ref * 0.95
    sharp[band] = 2 / ETAS[band] * (0.8 if kind == "below" else 0.99)
    if kind == "few":
        conv[np.flatnonzero(band)[4:]] = False
    curv = 1.0 / (1 + ETAS) if kind != "rougher" else 1.0 + ETAS
    if kind == "unjudged":
        conv[3:] = False
    return ETAS, conv, sharp, curv


def _stats(kinds):
    return [sweep_1d.seed_stats(i, *_seed(k, i)) for i, k in enumerate(kinds)]


def test_seed_criteria_on_constructed_runs():
    s = _stats(["edge", "below", "few", "rougher", "unjudged"])
    assert [x["edge"] for x in s] == [True, False, False, True, None]
    assert [x["smoother"] for x in s] == [True, True, True, False, None]
    assert s[0]["band_runs"] >= 5 and abs(s[0]["band_median_edge_dev"] - 0.01) < 1e-12
    # the plain measure: 20 % below 2/eta is 0.2, whatever a mode interval would say
    assert abs(s[1]["band_median_edge_dev"] - 0.2) < 1e-12 and s[1]["band_below_edge"] > 5
    assert s[2]["band_runs"] == 4


@pytest.mark.parametrize(
    "kinds, edge, smoother",
    [
        (["edge"] * 8, "reproduced", "reproduced"),  # 8/8
        (["edge"] * 6 + ["below", "rougher"], "reproduced", "reproduced"),  # 7/8, 7/8
        (["edge"] * 2 + ["below"] * 3 + ["rougher"] * 3, "partly", "partly"),  # 5/8, 5/8
        (["below"] * 6 + ["rougher"] * 2, "partly", "reproduced"),  # 2/8 (25 %), 6/8
        (["below"] * 7 + ["rougher"], "not reproduced", "reproduced"),  # 1/8, 7/8
        (["rougher"] * 8, "reproduced", "not reproduced"),  # edge 8/8, smoother 0/8
        (["few"] * 7 + ["edge"], "not reproduced", "reproduced"),  # edge 1/8
        (["unjudged"] * 5 + ["edge"] * 3, "inconclusive", "inconclusive"),  # 3 judged < 4
    ],
)
def test_every_verdict_outcome(kinds, edge, smoother):
    v = sweep_1d.verdicts(_stats(kinds))
    assert v["edge"].verdict == edge
    assert v["smoother"].verdict == smoother
    assert v["edge"].seeds_run == len(kinds)


def _runs(**over):
    """Columns of four converged runs that satisfy every theorem; ``over`` replaces some."""
    eta = np.array([0.1, 0.2, 0.3, 0.4])
    a = {
        "eta": eta, "converged": np.ones(4, bool),
        "twice_differentiable": np.array([True, True, False, False]),
        "sharpness": 2 / eta * 0.9, "lambda_lower": 2 / eta * 0.9,
        "lambda_upper": 2 / eta * np.array([0.9, 0.9, 0.95, 1.5]),
        "mode_delta": np.array([0.0, 0.0, 0.1, 0.1]),
        "flattest_sharpness": 2 / eta * 0.8, "lower_bound": 2 / eta * 0.5,
        "weighted_curvature": (2 / eta * 0.5 - 1) / 2,
        "theorem2_budget": np.array([np.nan, np.nan, 1 / 0.3, np.nan]),
        "eta_max": np.full(4, 0.25),
    }  # fmt: skip
    for k, v in over.items():
        a[k] = a[k].copy()
        a[k][v[0]] = v[1]
    return a


def test_checks_hold_on_consistent_runs():
    c = sweep_1d.theorem_checks(_runs())
    assert all(x.holds is True for x in c.values()), c
    assert c["lemma1_differentiable"].covered == 2 and c["lemma2_kinked"].covered == 2
    assert c["theorem2_strongly_stable"].covered == 1  # run 3 has lambda_upper > 2/eta


@pytest.mark.parametrize(
    "name, over",
    [
        ("lemma1_differentiable", {"sharpness": (0, 2 / 0.1 * 1.01)}),
        ("lemma2_kinked", {"lambda_lower": (2, 2 / 0.3 + 0.1 + 0.5)}),
        ("lemma4_order", {"lower_bound": (1, 2 / 0.2 * 0.85)}),
        ("lemma4_order", {"flattest_sharpness": (2, 2 / 0.3 * 0.95)}),
        ("theorem1_twice_differentiable", {"weighted_curvature": (1, 1 / 0.2 - 0.5 + 0.01)}),
        ("theorem2_strongly_stable", {"weighted_curvature": (2, 1 / 0.3 + 0.01)}),
        ("theorem1_eta_max", {"eta_max": (1, 0.15)}),
    ],
)
def test_each_check_fails_on_a_run_that_breaks_it(name, over):
    c = sweep_1d.theorem_checks(_runs(**over))
    assert c[name].holds is False, c[name]
    from minstab.experiments.outcomes import exit_status

    assert exit_status(c) == 1


def test_a_check_without_eligible_runs_says_why():
    a = _runs()
    a["twice_differentiable"] = np.zeros(4, bool)
    c = sweep_1d.theorem_checks(a)
    for name in ("lemma1_differentiable", "theorem1_twice_differentiable", "theorem1_eta_max"):
        assert c[name].holds is None and c[name].covered == 0
        assert "knot on a data point" in c[name].why_none
    a["lambda_upper"] = a["lambda_upper"] * 2
    assert "strongly stable" in sweep_1d.theorem_checks(a)["theorem2_strongly_stable"].why_none
    a["converged"] = np.zeros(4, bool)
    assert "no run converged" in sweep_1d.theorem_checks(a)["lemma4_order"].why_none


def test_choose_cell_rule():
    def cell(w, s, n, both):
        return {"width": w, "output_scale": s, "n": n, "both_fraction": both}

    cells = [cell(64, 1, 8, 0.5), cell(16, 4, 16, 0.5), cell(16, 1, 16, 0.5), cell(256, 1, 8, 0.25)]
    assert fig3.choose_cell(cells) == cells[2]  # ties: smaller width, then n, then scale
    cells.append(cell(256, 4, 16, 0.625))
    assert fig3.choose_cell(cells) == cells[-1]


def test_per_run_data_sweep_equals_one_sweep_per_data_set():
    """Two data sets and inits in one program against two shared-data sweeps."""
    etas = np.array([0.05, 0.2])
    probs = []
    for s in (0, 1):
        x, y = ms.data.toy_1d(n=5, key=jax.random.key(s), dtype=jnp.float64)
        p = ms.init_shallow(jax.random.key(s + 7), 1, 6, knot_range=(-1.5, 1.5),
                            dtype=jnp.float64)  # fmt: skip
        probs.append((p, x, y))
    kw = dict(steps=300, log_every=100, tol=1e-30, progress=False, flattest=False)
    one = [sweep(p, x, y, etas, **kw) for p, x, y in probs]
    P = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, a, b, b]), probs[0][0], probs[1][0])
    X = jnp.stack([probs[0][1]] * 2 + [probs[1][1]] * 2)
    Y = jnp.stack([probs[0][2]] * 2 + [probs[1][2]] * 2)
    both = sweep(P, X, Y, np.tile(etas, 2), per_run_data=True, chunk_size=4, **kw)
    for j, r in enumerate(one):
        part = both.select(np.arange(2 * j, 2 * j + 2))
        np.testing.assert_allclose(part.x, r.x)
        for f in ("loss", "sharpness", "weighted_curvature"):
            np.testing.assert_allclose(getattr(part, f), getattr(r, f), rtol=1e-10, err_msg=f)
    with pytest.raises(ValueError, match="different data sets"):
        both.select(np.array([1, 2]))
    with pytest.raises(ValueError, match="leading axis"):
        sweep(P, X[:3], Y, np.tile(etas, 2), per_run_data=True, **kw)
