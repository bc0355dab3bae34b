"""smoothest_interpolant: W* = min weighted curvature over interpolants, eta_max, and the CLI."""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import minstab as ms
from minstab import cli
from minstab.shallow.predict import _candidates_1d

from .helpers import interpolating_net


def _toy(n, seed):
    return ms.data.toy_1d(n=n, key=jax.random.key(seed), noise=0.5)


def _lstsq_interpolant(key, x, k):
    """Random knots inside the data + least-squares output layer: an exact interpolant."""
    kt, kw, km = jax.random.split(key, 3)
    xs = jnp.sort(x)  # one knot in every gap (at a random place) makes the features full rank
    mid = xs[:-1] + jax.random.uniform(km, (len(x) - 1,), jnp.float64, 0.05, 0.95) * jnp.diff(xs)
    t = jnp.concatenate([mid, jax.random.uniform(kt, (k - len(mid),), jnp.float64, xs[0], xs[-1])])
    w1 = jnp.where(jax.random.bernoulli(kw, 0.5, (k,)), 1.0, -1.0)
    p = ms.ShallowParams(w1[:, None], -w1 * t, jnp.zeros(k), jnp.zeros(()))
    s = np.asarray(jax.nn.relu(x[:, None] @ p.w1.T + p.b1[None, :]))
    a = np.concatenate([s, np.ones((len(x), 1))], axis=1)
    return a, p


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_optimal_interpolant_interpolates_and_attains_w_star(seed):
    x, y = _toy(9, seed)
    r = ms.smoothest_interpolant(x, y)
    assert not r.is_upper_bound
    assert r.interpolation_error < 1e-10
    np.testing.assert_allclose(np.asarray(ms.forward(r.params, x)), np.asarray(y), atol=1e-10)
    wc = float(ms.weighted_curvature(r.params, x))
    np.testing.assert_allclose(wc, r.w_star, rtol=1e-5)  # knots moved 1e-7 off the data points
    np.testing.assert_allclose(r.params_curvature, wc, rtol=1e-9)
    assert r.eta_max == pytest.approx(1 / (r.w_star + 0.5), rel=1e-14)
    assert r.refinement_error <= 1e-9 * r.w_star
    # every knot of the returned (twice-differentiable) network is off the data
    assert np.min(np.abs(r.knots[:, None] - np.asarray(x)[None, :])) > 0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_w_star_below_every_interpolant_we_can_build(seed):
    x, y = _toy(8, seed)
    w_star = ms.smoothest_interpolant(x, y).w_star
    for j, k in enumerate((8, 20, 60)):
        a, p = _lstsq_interpolant(jax.random.key(100 * seed + j), x, k)
        sol = np.linalg.lstsq(a, np.asarray(y), rcond=None)[0]
        q = p._replace(w2=jnp.asarray(sol[:-1]), b2=jnp.asarray(sol[-1]))
        assert float(jnp.max(jnp.abs(ms.forward(q, x) - y))) < 1e-9
        assert w_star <= float(ms.weighted_curvature(q, x)) * (1 + 1e-9)
    # the THEORY fixture: random first layer, exact least-squares output layer
    p, xf, yf = interpolating_net(jax.random.key(seed), n=8, k=24)
    assert ms.smoothest_interpolant(xf, yf).w_star <= float(ms.weighted_curvature(p, xf))


def test_w_star_below_a_trained_network():
    x, y = _toy(6, 0)
    p0 = ms.init_shallow(jax.random.key(1), 1, 40, knot_range=(-1.6, 1.6), output_scale=0.3)
    run = ms.train(p0, x, y, 0.05, steps=40_000, tol=1e-14)
    assert float(run.loss) < 1e-12
    w_trained = float(ms.weighted_curvature(run.params, x))
    w_star = ms.smoothest_interpolant(x, y).w_star
    assert w_star <= w_trained
    assert w_star < 0.99 * w_trained  # GD does not find the smoothest interpolant here


def _brute_force(x, y, t):
    """Vertex enumeration: an optimal basic solution uses at most n - 2 knots (2 for a, b)."""
    x, y = np.asarray(x), np.asarray(y)
    g = np.asarray(ms.weight_1d(jnp.asarray(t), jnp.asarray(x)))
    base = np.stack([np.ones_like(x), x], axis=1)
    best = np.inf
    for m in range(len(x) - 1):
        for s in itertools.combinations(range(len(t)), m):
            a = np.concatenate([base, np.maximum(x[:, None] - t[None, list(s)], 0)], axis=1)
            sol, *_ = np.linalg.lstsq(a, y, rcond=None)
            if np.max(np.abs(a @ sol - y)) < 1e-9:
                best = min(best, float(np.sum(g[list(s)] * np.abs(sol[2:]))))
    return best


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_brute_force_on_tiny_data(seed):
    x, y = _toy(5, seed)
    r = ms.smoothest_interpolant(x, y, grid=3, refine=0)
    bf = _brute_force(x, y, _candidates_1d(np.sort(np.asarray(x)), 3))
    np.testing.assert_allclose(r.w_star, bf, rtol=1e-9)


def test_three_point_closed_form():
    # A single kink of mass -2 at 0: W* = 2 g(0) with g(0) = (1/3)^2 * 1 * sqrt(1 + 1) (eq. 23).
    r = ms.smoothest_interpolant(jnp.array([-1.0, 0.0, 1.0]), jnp.array([0.0, 1.0, 0.0]))
    np.testing.assert_allclose(r.w_star, 2 * np.sqrt(2) / 9, rtol=1e-12)
    # collinear data: the linear interpolant has no curvature at all
    r = ms.smoothest_interpolant(jnp.array([0.0, 1.0, 3.0]), jnp.array([1.0, 3.0, 7.0]))
    assert abs(r.w_star) < 1e-12 and r.eta_max == pytest.approx(2.0)


def test_multivariate_upper_bound_tightens_with_the_dictionary():
    p, x, y = interpolating_net(jax.random.key(0), n=10, d=3, k=30)
    r16 = ms.smoothest_interpolant(x, y, num_directions=16)
    r48 = ms.smoothest_interpolant(x, y, num_directions=48)
    assert r16.is_upper_bound and r48.is_upper_bound
    assert r48.w_star <= r16.w_star * (1 + 1e-9)  # nested dictionaries (same seed)
    for r in (r16, r48):
        assert r.interpolation_error < 1e-10
        np.testing.assert_allclose(float(ms.weighted_curvature(r.params, x)), r.w_star, rtol=1e-5)


def test_bad_input():
    x = jnp.array([0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="distinct"):
        ms.smoothest_interpolant(jnp.array([0.0, 1.0, 1.0]), x)
    with pytest.raises(ValueError, match="y"):
        ms.smoothest_interpolant(x, jnp.zeros(4))
    with pytest.raises(ValueError, match="x"):
        ms.smoothest_interpolant(jnp.array([0.0, jnp.nan, 1.0]), x)


def _fake_sweep(x, etas, converged, knot_at_data):
    """A SweepResult-like record of two-unit networks with knots on or off the data."""
    from types import SimpleNamespace

    r = len(etas)
    t = np.where(np.asarray(knot_at_data)[:, None], x[1], (x[1] + x[2]) / 2) * np.ones((r, 2))
    params = ms.ShallowParams(np.ones((r, 2, 1)), -t, np.ones((r, 2)), np.zeros(r))
    return SimpleNamespace(
        x=x, params=params, etas=np.asarray(etas), converged=np.asarray(converged)
    )


def test_check_against_sweep():
    x, y = _toy(6, 0)
    pred = ms.smoothest_interpolant(x, y)
    xs = np.asarray(x)
    e = pred.eta_max
    ok = _fake_sweep(xs, [0.5 * e, 2 * e, 2 * e], [True, False, True], [False, False, True])
    check = ms.check_against_sweep(pred, ok)
    assert check["all_agree"] and check["twice_differentiable"] == [True, True, False]
    assert check["largest_converged_eta"] == pytest.approx(2 * e)
    bad = _fake_sweep(xs, [0.5 * e, 2 * e], [True, True], [False, False])
    assert ms.check_against_sweep(pred, bad)["agrees"] == [True, False]


def test_load_xy(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("x1,x2,y\n0,1,2\n1,0,3\n# comment\n2,2,1\n")
    x, y = ms.data.load_xy(csv)
    assert x.shape == (3, 2) and y.tolist() == [2.0, 3.0, 1.0]
    npz = tmp_path / "d.npz"
    np.savez(npz, x=np.arange(4.0), y=np.ones(4))
    x, y = ms.data.load_xy(npz)
    assert x.shape == (4, 1)
    (tmp_path / "bad.csv").write_text("1,2\n3,oops\n")
    with pytest.raises(ValueError, match="numbers"):
        ms.data.load_xy(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="does not exist"):
        ms.data.load_xy(tmp_path / "missing.csv")
    np.savez(tmp_path / "noy.npz", x=np.arange(4.0))
    with pytest.raises(ValueError, match="'y'"):
        ms.data.load_xy(tmp_path / "noy.npz")


def test_cli_predict_on_a_file(tmp_path, capsys):
    x, y = _toy(7, 3)
    data = tmp_path / "data.csv"
    data.write_text(
        "x,y\n" + "\n".join(f"{a!r},{b!r}" for a, b in zip(x.tolist(), y.tolist(), strict=True))
    )
    assert cli.main(["predict", "--data", str(data), "--out", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert "eta_max" in text and "flattest" in text
    out = json.loads((tmp_path / "o" / "predict.json").read_text())
    ref = ms.smoothest_interpolant(x, y)
    assert out["w_star"] == pytest.approx(ref.w_star, rel=1e-12)
    # Lemma 4 on the optimal interpolant: 1 + 2 W* <= flattest sharpness <= sharpness as built
    assert out["lemma4_bound"] <= out["sharpness_flattest"] * (1 + 1e-9)
    assert out["sharpness_flattest"] <= out["sharpness_as_built"] * (1 + 1e-9)
    assert (tmp_path / "o" / "smoothest_interpolant.png").stat().st_size > 10_000
    assert out["checks"]["lemma4_order"]["holds"] is True and out["verdicts"] == {}


def test_predict_checks_theorem1_on_a_sweep_and_lemma4_on_the_interpolant():
    """The checks of ``minstab predict``: a converged twice-differentiable run beyond eta_max
    fails Theorem 1's check (exit 1); a kinked or unconverged one is not eligible."""
    from minstab.experiments import predict
    from minstab.experiments.outcomes import exit_status

    x, y = _toy(6, 0)
    xs, ys = np.asarray(x)[:, None], np.asarray(y)
    r = predict.predict_data(xs, ys)
    pred = r.pop("prediction")
    e = pred.eta_max

    def outcome(etas, converged, kinked):
        s = _fake_sweep(np.asarray(x), etas, converged, kinked)
        c = ms.check_against_sweep(pred, s)
        res = predict.Result(predict.Config(), xs, ys, pred, r, c, np.asarray(converged))
        return predict.outcomes(res)

    checks, verdicts = outcome([0.5 * e, 2 * e, 2 * e], [True, False, True], [False, False, True])
    assert verdicts == {} and checks["lemma4_order"].holds is True
    assert checks["theorem1_sweep"].holds is True and checks["theorem1_sweep"].covered == 1
    checks, _ = outcome([0.5 * e, 2 * e], [True, True], [False, False])
    assert checks["theorem1_sweep"].holds is False and checks["theorem1_sweep"].covered == 2
    assert exit_status(checks) == 1
    checks, _ = outcome([2 * e], [False], [False])  # nothing converged: nothing to check
    assert (
        checks["theorem1_sweep"].holds is None and "converged" in checks["theorem1_sweep"].why_none
    )
