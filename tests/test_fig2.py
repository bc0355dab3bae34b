"""`minstab reproduce fig2`: checks against independent references, the n^-1/2 rate as a verdict."""

import json

import numpy as np

from minstab import cli
from minstab.experiments import fig2
from minstab.experiments.outcomes import NOT_REPRODUCED, PARTLY, REPRODUCED


def test_reproduce_fig2_quick(tmp_path):
    assert cli.main(["reproduce", "fig2", "--quick", "--out", str(tmp_path)]) == 0
    for name in ("fig2_weights.png", "fig2_weights.pdf", "fig2.json"):
        assert (tmp_path / name).stat().st_size > 0
    js = json.loads((tmp_path / "fig2.json").read_text())
    assert len(js["checks"]) == 3 and all(c["holds"] for c in js["checks"].values()), js["checks"]
    v = js["verdicts"]["sqrt_n_rate"]
    assert v["seeds_run"] == 8 and v["verdict"] in (REPRODUCED, PARTLY, NOT_REPRODUCED)
    d = js["sup_distance_per_seed"]
    assert all(np.asarray(d[law]).shape == (8, 3) for law in fig2.DISTRIBUTIONS)


def test_reproduce_fig2_fails_without_standardization(tmp_path):
    # raw samples converge to the weight of a differently scaled law, not to the population
    # curve of the standardized one: the convergence check must be false, exit status 1
    rc = cli.main(["reproduce", "fig2", "--quick", "--no-standardize", "--out", str(tmp_path)])
    assert rc == 1
    js = json.loads((tmp_path / "fig2.json").read_text())
    assert js["checks"]["empirical_approaches_population"]["holds"] is False


def _result(dist, *, population=None, direct=0.0, sizes=(20, 2000)):
    t = np.linspace(-3, 3, 61)
    pop = {law: np.zeros_like(t) for law in fig2.DISTRIBUTIONS}
    pop["uniform"] = fig2.uniform_closed_form(t) if population is None else population
    cfg = fig2.Config(sizes=sizes, seeds=len(dist), grid=61)
    d = {law: np.asarray(dist, float) for law in fig2.DISTRIBUTIONS}
    return fig2.Result(t, {}, {}, pop, {}, cfg, d, direct)


def test_fig2_verdict_every_outcome():
    fast, slow = [0.1, 0.01], [0.1, 0.05]  # allowed: 3 sqrt(20/2000) = 0.3 of d(20)
    assert fig2.verdicts(_result([fast] * 8))["sqrt_n_rate"].verdict == REPRODUCED
    assert fig2.verdicts(_result([fast] * 4 + [slow] * 4))["sqrt_n_rate"].verdict == PARTLY
    v = fig2.verdicts(_result([fast] + [slow] * 7))["sqrt_n_rate"]
    assert (v.verdict, v.seeds_shown, v.seeds) == (NOT_REPRODUCED, 1, 8)
    assert fig2.verdicts(_result([fast] * 3))["sqrt_n_rate"].verdict == "inconclusive"


def test_fig2_checks_hold_and_each_can_fail():
    assert all(c.holds for c in fig2.checks(_result([[0.1, 0.01]] * 4)).values())
    t = np.linspace(-3, 3, 61)
    wrong = fig2.uniform_closed_form(1.1 * t)  # the closed form of a differently scaled law
    assert not fig2.checks(_result([[0.1, 0.01]], population=wrong))[
        "population_uniform_matches_closed_form"].holds  # fmt: skip
    assert not fig2.checks(_result([[0.1, 0.01]], direct=1e-6))[
        "empirical_matches_direct_evaluation"].holds  # fmt: skip
    assert not fig2.checks(_result([[0.1, 0.06]] * 4))["empirical_approaches_population"].holds
    one = fig2.checks(_result([[0.1]], sizes=(20,)))["empirical_approaches_population"]
    assert one.holds is None and one.why_none


def test_closed_form_and_direct_weight_are_independent_references():
    from minstab.shallow.bounds import population_weight_1d, weight_1d

    t = np.linspace(-2, 2, 41)
    np.testing.assert_allclose(population_weight_1d(t, "uniform"), fig2.uniform_closed_form(t),
                               atol=1e-6)  # fmt: skip
    x = np.random.default_rng(0).standard_normal(15)
    np.testing.assert_allclose(weight_1d(t, x), fig2.weight_direct(t, x), atol=1e-14)
