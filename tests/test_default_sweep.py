"""The main job's default sweep at full size (40 step sizes, ~40 s): the issue's claims on it."""

import numpy as np
import pytest

from minstab.experiments import sweep_1d
from minstab.modes import toggling_pairs
from minstab.predict import check_against_sweep


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    cfg = sweep_1d.Config(out=str(tmp_path_factory.mktemp("default")), quiet=True)
    res = sweep_1d.run(cfg)
    return res, sweep_1d.check_claims(res)


def test_defaults_span_small_to_divergent_steps_and_every_other_run_interpolates(default):
    res, claims = default
    s = res.sweep
    c, d = np.asarray(s.converged), np.asarray(s.diverged)
    assert s.num_runs >= 32
    assert np.all(c | d), s.table()  # every non-diverged run reaches interpolation
    assert np.all(s.loss[c] < s.config["tol"])
    assert d.any() and c.sum() >= 30, s.table()  # beyond the largest stable step size
    assert claims["every_non_diverged_run_interpolates"]


def test_stability_lemma4_and_theorem1_on_every_converged_run(default):
    res, claims = default
    s = res.sweep
    c = np.asarray(s.converged)
    e = np.asarray(s.etas)
    # Lemma 1 where the minimum is twice differentiable; Lemma 2 where a knot sits on a point
    smooth = [i for i in np.flatnonzero(c) if not toggling_pairs(s.params_at(i), s.x).any()]
    assert np.all(s.sharpness[smooth] <= (2 / e[smooth]) * (1 + 1e-3))
    assert claims["stability_necessary_condition"]
    fl = s.flattest_sharpness[c]
    assert np.all(s.lower_bound[c] <= fl * (1 + 1e-6)), s.table()
    assert np.all(fl <= s.sharpness[c] * (1 + 1e-6)), s.table()
    far = c & (res.curves.knot_gap > 1e-6)  # runs without knots on data points
    assert np.all(s.weighted_curvature[far] <= 1 / e[far] - 0.5)
    assert np.all(s.weighted_curvature[c] <= 1 / e[c] - 0.5)  # and, here, all of them


def test_prediction_before_training_agrees_with_every_run(default):
    res, _ = default
    chk = check_against_sweep(res.prediction, res.sweep)
    assert chk["all_agree"] and len(chk["agrees"]) == res.sweep.num_runs
    assert res.prediction.eta_max > chk["largest_converged_eta"]
