"""Seed 001 (stable rank, margins) and seed 002 (minimum-norm gap): minstab.implicit_bias."""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as so

from minstab import cli
from minstab import implicit_bias as ib
from minstab import rank_margins as rm

# ------------------------------------------------------------------------------ stable rank


def test_stable_rank_closed_forms(getkey):
    u = jax.random.normal(getkey(), (7,))
    v = jax.random.normal(getkey(), (5,))
    assert float(ib.stable_rank(jnp.outer(u, v))) == pytest.approx(1.0, rel=1e-12)
    q, _ = jnp.linalg.qr(jax.random.normal(getkey(), (9, 4)))
    assert float(ib.stable_rank(q)) == pytest.approx(4.0, rel=1e-12)  # orthonormal columns
    # singular values (3, 1): (9 + 1) / 9
    w = jnp.diag(jnp.array([3.0, 1.0]))
    assert float(ib.stable_rank(w)) == pytest.approx(10.0 / 9.0, rel=1e-12)
    assert np.isnan(float(ib.stable_rank(jnp.zeros((3, 2)))))


def test_gram_stable_rank_matches_svd(getkey):
    for shape in [(6, 40), (20, 9)]:
        w = jax.random.normal(getkey(), shape)
        w = w.at[0].mul(5.0)
        ref = float(ib.stable_rank(w))
        assert float(rm._stable_rank_gram(w @ w.T)) == pytest.approx(ref, rel=1e-9)
    g = jnp.diag(jnp.array([2.0, 2.0, 1.0]))  # degenerate top eigenvalue
    assert float(rm._top_eig_psd(g)) == pytest.approx(2.0, rel=1e-12)


def test_validation_errors(getkey):
    x = jax.random.normal(getkey(), (4, 6))
    with pytest.raises(ValueError, match="2-d"):
        ib.stable_rank(jnp.ones(3))
    with pytest.raises(ValueError, match="finite"):
        ib.stable_rank(jnp.array([[1.0, jnp.nan]]))
    with pytest.raises(ValueError, match=">= 0"):
        ib.min_norm_interpolant(x, jnp.array([1.0, -1.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="shape"):
        ib.min_norm_interpolant(x, jnp.ones(3))
    with pytest.raises(ValueError, match="positive"):
        ib.gd_single_neuron(x, jnp.ones(4), 0.0)
    w0 = ib.init_two_layer(getkey(), 3, 6)
    with pytest.raises(ValueError, match="-1 or"):
        ib.train_two_layer(w0, x, jnp.ones(4) * 2, 1.0)
    with pytest.raises(ValueError, match="positive"):
        ib.train_two_layer(w0, x, jnp.ones(4), -1.0)
    with pytest.raises(ValueError, match="negative_slope"):
        ib.train_two_layer(w0, x, jnp.ones(4), 1.0, negative_slope=1.5)
    with pytest.raises(ValueError, match="even"):
        ib.two_layer_forward(jnp.ones((3, 6)), x)


def test_near_orthogonal_constant(getkey):
    data = ib.near_orthogonal_data(getkey(), 8, 6000)
    x = np.asarray(data.x)
    g = x @ x.T
    ref = min(g[i, i] / (8 * max(abs(g[i, k]) for k in range(8) if k != i)) for i in range(8))
    assert float(data.constant) == pytest.approx(ref, rel=1e-12)
    assert float(data.constant) > 1
    assert float(np.sum(data.y)) == 0.0
    assert float(ib.near_orthogonality_constant(jnp.eye(3))) == np.inf


# ------------------------------------------------------------------------------ seed 001 GD


def test_coefficient_gd_is_gd_on_w(getkey):
    data = ib.near_orthogonal_data(getkey(), 6, 50)
    w = w0 = ib.init_two_layer(getkey(), 4, 50, scale=0.5)
    res = ib.train_two_layer(w0, data.x, data.y, 3.0, steps=40, negative_slope=0.2,
                             num_logs=5, spacing="linear")  # fmt: skip
    grad = jax.grad(lambda w: ib.two_layer_loss(w, data.x, data.y, negative_slope=0.2))
    step = jax.jit(lambda w: w - 3.0 * grad(w))
    for _ in range(40):
        w = step(w)
    np.testing.assert_allclose(res.w, w, atol=1e-12)
    assert float(res.log.stable_rank[-1]) == pytest.approx(float(ib.stable_rank(w)), rel=1e-9)
    m = ib.normalized_margins(w, data.x, data.y, negative_slope=0.2)
    np.testing.assert_allclose(res.log.margins[-1], m.values, atol=1e-12)
    assert float(res.loss) == pytest.approx(
        float(ib.two_layer_loss(w, data.x, data.y, negative_slope=0.2))
    )


@pytest.fixture(scope="module")
def seed001_runs():
    data = ib.near_orthogonal_data(jax.random.key(3), 10, 2000)
    keys = jax.random.split(jax.random.key(4), 2)
    out = {}
    for slope in (0.0, 0.1):
        out[slope] = ib.sweep_two_layer(keys, data.x, data.y, jnp.array([5.0, 20.0]), width=10,
                                        init_scale=1e-2, steps=3000, negative_slope=slope,
                                        num_logs=12)  # fmt: skip
    return data, out


def test_sweep_shapes_and_loss(seed001_runs):
    data, out = seed001_runs
    r = out[0.1]
    assert r.w.shape == (2, 2, 20, 2000)
    assert r.log.margins.shape == (2, 2, 12, 10)
    assert not bool(jnp.any(r.diverged))
    assert bool(jnp.all(r.loss < 0.02))
    assert bool(jnp.all(r.log.loss[..., -1] < r.log.loss[..., 0]))


def test_leaky_relu_stable_rank_goes_to_one(seed001_runs):
    _, out = seed001_runs
    log = out[0.1].log
    blk = jnp.maximum(log.stable_rank_pos, log.stable_rank_neg)
    # seed 001: the sign blocks W_{+1}, W_{-1} go to rank one; at init a Gaussian 10 x 2000 block
    # has stable rank ~ 10 / (1 + sqrt(10/2000))^2 ~ 8.7 (Marchenko-Pastur), so > 5
    assert bool(jnp.all(blk[..., 0] > 5))
    assert bool(jnp.all(blk[..., -1] < 1.01))  # fails if a block keeps a second direction
    # whole W: two rank-one blocks u = P - g N, v = N - g P => 2(1+g^2)/(1+g)^2 = 1.669 for g = .1;
    # 0.05 allows the O(sqrt(n/d)) cross-talk of nearly-orthogonal data (n/d = 1/200)
    from minstab.experiments.stable_rank import whole_layer_limit

    assert bool(jnp.all(jnp.abs(log.stable_rank[..., -1] - whole_layer_limit(0.1)) < 0.05))


def test_relu_stable_rank_bounded_but_not_one(seed001_runs):
    _, out = seed001_runs
    log = out[0.0].log
    blk = jnp.maximum(log.stable_rank_pos, log.stable_rank_neg)
    # bounded: over the second half of training the whole W stays far below its random-init
    # value (~17 here), which is what grows with the width; a failure means it drifts back up
    half = log.stable_rank.shape[-1] // 2
    assert bool(jnp.all(log.stable_rank[..., half:] < log.stable_rank[..., :1] / 4))
    # ReLU is not rank one: each neuron keeps the points it was active on at init, so a block
    # spans several directions; a failure would mean ReLU behaves like leaky ReLU here
    assert bool(jnp.all(blk[..., -1] > 1.1))


def test_margins_equalize(seed001_runs):
    _, out = seed001_runs
    # seed 001: all normalized margins become equal (spread -> 0, min/max -> 1); at a small init
    # the margins have mixed signs (spread > 1). A failure means they stopped approaching each
    # other; the factor 10 is a sensitivity choice, the direction (spread shrinking) is the claim.
    for slope in (0.1, 0.0):
        mg = ib.margin_summary(out[slope].log.margins)
        assert bool(jnp.all(mg.spread[..., 0] > 1)), slope
        assert bool(jnp.all(mg.spread[..., -1] < mg.spread[..., 0] / 10)), slope
        assert bool(jnp.all(mg.ratio[..., -1] > 0)), slope  # every point classified correctly


# ------------------------------------------------------------------------------ seed 002 QP


def _brute_force(x, y):
    """Exact QP (5) by enumerating which zero-label constraints bind (tiny n)."""
    e, z = np.flatnonzero(y > 0), np.flatnonzero(y <= 0)
    best = None
    for k in range(len(z) + 1):
        for s in itertools.combinations(z, k):
            rows = np.concatenate([e, np.asarray(s, int)])
            w = np.linalg.pinv(x[rows]) @ y[rows] if rows.size else np.zeros(x.shape[1])
            ok = np.allclose(x[e] @ w, y[e], atol=1e-9) and np.all(x[z] @ w <= 1e-9)
            if ok and (best is None or w @ w < best @ best - 1e-12):
                best = w
    return best


def _slsqp(x, y):
    cons = [{"type": "eq", "fun": lambda w: x[y > 0] @ w - y[y > 0]},
            {"type": "ineq", "fun": lambda w: -(x[y <= 0] @ w)}]  # fmt: skip
    r = so.minimize(lambda w: 0.5 * w @ w, np.zeros(x.shape[1]), jac=lambda w: w,
                    constraints=cons, method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})  # fmt: skip
    assert r.success
    return r.x


@pytest.mark.parametrize("case", range(6))
def test_min_norm_matches_independent_solvers(case):
    rng = np.random.default_rng(case)
    n, d = [(5, 8), (6, 6), (7, 12), (4, 20), (6, 9), (8, 10)][case]
    x = rng.standard_normal((n, d))
    y = np.maximum(x @ rng.standard_normal(d), 0)
    y[0], y[1] = 0.0, max(y[1], 0.5)  # at least one label of each kind
    r = ib.min_norm_interpolant(jnp.asarray(x), jnp.asarray(y))
    assert bool(r.converged)
    np.testing.assert_allclose(r.w, _brute_force(x, y), atol=1e-8)
    np.testing.assert_allclose(r.w, _slsqp(x, y), atol=1e-5)
    # constraints and KKT, checked directly
    pred = x @ np.asarray(r.w)
    assert np.max(np.abs(pred[y > 0] - y[y > 0])) < 1e-10
    assert np.max(pred[y <= 0]) < 1e-10
    a = np.asarray(r.alpha)
    assert np.all(a[y <= 0] <= 1e-12)
    assert np.max(np.abs(a[y <= 0] * pred[y <= 0])) < 1e-10
    np.testing.assert_allclose(r.w, x.T @ a, atol=1e-12)
    assert float(r.kkt_residual) < 1e-10


def test_min_norm_binding_set_matters():
    # a zero-label point the E-only interpolant would activate: its constraint must bind
    x = jnp.array([[1.0, 0.0], [1.0, 1.0]])
    r = ib.min_norm_interpolant(x, jnp.array([1.0, 0.0]))
    np.testing.assert_allclose(r.w, [1.0, -1.0], atol=1e-12)
    assert bool(r.binding[1]) and float(r.alpha[1]) < 0


def test_min_norm_vmaps(getkey):
    xs = jax.random.normal(getkey(), (3, 6, 15))
    ys = jnp.maximum(xs @ jnp.ones(15), 0)
    rs = jax.vmap(lambda x, y: ib.min_norm_interpolant(x, y))(xs, ys)
    assert bool(jnp.all(rs.converged))
    for i in range(3):
        np.testing.assert_allclose(rs.w[i], ib.min_norm_interpolant(xs[i], ys[i]).w, atol=1e-12)


def test_neuron_gd_is_gd_on_w(getkey):
    data = ib.teacher_data(getkey(), 8, 40)
    w0 = 0.1 * jax.random.normal(getkey(), (40,))
    eta = 3.0
    res = ib.gd_single_neuron(data.x, data.y, eta, w0=w0, steps=60, num_logs=3)
    w = w0
    for _ in range(60):
        z = data.x @ w
        w = w - eta / 8 * data.x.T @ jnp.where(z >= 0, jnp.maximum(z, 0) - data.y, 0)
    np.testing.assert_allclose(res.w, w, atol=1e-12)


def test_gd_reaches_min_norm_on_orthogonal_data():
    # exactly orthogonal data: GD from 0 is the minimum-norm solution (Boursier et al. 2022)
    x = jnp.eye(6, 10) * jnp.arange(1.0, 7.0)[:, None]
    y = jnp.array([1.0, 0.0, 2.0, 0.0, 0.5, 3.0])
    mn = ib.min_norm_interpolant(x, y)
    gd = ib.gd_single_neuron(x, y, 0.1, steps=20000)
    assert bool(gd.interpolated)
    assert float(ib.relative_gap(gd.w, mn.w)) < 1e-8


# ------------------------------------------------------------------------------ commands


def test_reproduce_stable_rank_quick(tmp_path):
    assert cli.main(["reproduce", "stable-rank", "--quick", "--out", str(tmp_path)]) == 0
    for name in ("stable_rank.png", "stable_rank.pdf", "stable_rank.json"):
        assert (tmp_path / name).stat().st_size > 0
    js = json.loads((tmp_path / "stable_rank.json").read_text())
    # the five seed-001 claims, each over every synthetic run (none left unchecked)
    assert len(js["claims"]) == 5 and all(js["claims"].values()), js["claim_details"]
    assert not js["not_checked"]


def test_reproduce_stable_rank_fails_without_training(tmp_path):
    # one GD step from the small initialization: the loss is still ~log 2 and the leaky blocks
    # are still random, so "loss -> 0" and "block stable rank -> 1" must be false: exit 1.
    rc = cli.main(["reproduce", "stable-rank", "--quick", "--steps", "1", "--out", str(tmp_path)])
    assert rc == 1
    claims = json.loads((tmp_path / "stable_rank.json").read_text())["claims"]
    assert not claims["loss_to_zero"] and not claims["leaky_block_stable_rank_to_one"]


def test_whole_layer_limit_is_the_stable_rank_of_two_blocks(getkey):
    # independent reference (SVD of an explicit W): two blocks of equal norm along
    # u+ - g u- and u- - g u+, u+ orthogonal to u-, have stable rank 2 (1 + g^2) / (1 + g)^2
    from minstab.experiments.stable_rank import whole_layer_limit

    q, _ = jnp.linalg.qr(jax.random.normal(getkey(), (50, 2)))
    up, um = q[:, 0], q[:, 1]
    for g in (0.0, 0.1, 0.5):
        w = jnp.concatenate(
            [jnp.outer(jnp.ones(4), up - g * um), jnp.outer(jnp.ones(4), um - g * up)]
        )
        assert float(ib.stable_rank(w)) == pytest.approx(whole_layer_limit(g), rel=1e-10)
    assert whole_layer_limit(0.1) == pytest.approx(1.6694, abs=1e-4)


def test_gd_gap_matches_explicit_gd_and_qp(getkey):
    # Gram-space gap against GD on w and the QP on x (independent code paths)
    from minstab import min_norm as mn

    data = ib.teacher_data(getkey(), 10, 300)
    eta = 1.25 * 10 / float(jnp.mean(jnp.sum(data.x**2, axis=1)))
    r = mn.gd_gap(data.x @ data.x.T, data.y, eta, steps=3000)
    gd = ib.gd_single_neuron(data.x, data.y, eta, steps=3000)
    qp = ib.min_norm_interpolant(data.x, data.y)
    assert bool(r.certified) and bool(qp.converged)
    np.testing.assert_allclose(float(r.gap), float(ib.relative_gap(gd.w, qp.w)), rtol=1e-6)
    assert float(r.loss) == pytest.approx(float(gd.loss), abs=1e-14)


def test_gap_is_zero_without_released_points():
    # the KKT argument of gd_gap: if GD switches off no zero-label point it pushed down, its
    # limit satisfies (5)'s KKT conditions, so it is w_mn; a gap above rounding would mean the
    # argument (or the QP or the GD) is wrong.
    import minstab.experiments.min_norm as ex
    from minstab import min_norm as mn

    k, y, _, _ = ex.cell_data(np.random.default_rng(0), 12, 12 * 64, 24)
    rs = jax.vmap(lambda k, y: mn.gd_gap(k, y, 0.5 * 12 / jnp.mean(jnp.diag(k))))(
        jnp.asarray(k), jnp.asarray(y)
    )
    quiet = np.asarray(rs.released) == 0
    assert quiet.any() and np.all(np.asarray(rs.reached))
    assert np.all(np.asarray(rs.gap)[quiet] < 1e-8), np.asarray(rs.gap)[quiet]


def test_fit_median_slope_recovers_known_exponents():
    # synthetic gaps with a known exponent and multiplicative noise: the interval must hold it
    import minstab.experiments.min_norm as ex

    rng = np.random.default_rng(3)
    var = 1 / np.array([16.0, 64, 256, 1024])
    for p in (0.5, 1.0):
        gaps = [v**p * np.exp(0.3 * rng.standard_normal(40)) for v in var]
        f = ex.fit_median_slope(var, gaps, boot=500)
        assert f.lo <= p <= f.hi and f.hi - f.lo < 0.3, (p, f)
    assert ex.verdict(ex.Fit(0.5, 0.4, 0.6, 0, 4, 96)) == "consistent with 1/2, excludes 1"
    assert ex.verdict(ex.Fit(0.7, 0.4, 1.1, 0, 4, 96)) == "cannot separate 1/2 from 1"
    assert ex.verdict(ex.Fit(0.9, 0.8, 1.1, 0, 4, 96)) == "excludes 1/2 (consistent with 1)"


def test_reproduce_min_norm_quick(tmp_path):
    assert cli.main(["reproduce", "min-norm", "--quick", "--out", str(tmp_path)]) == 0
    for name in ("min_norm_gap.png", "min_norm_gap.pdf", "min_norm.json"):
        assert (tmp_path / name).stat().st_size > 0
    js = json.loads((tmp_path / "min_norm.json").read_text())
    assert len(js["claims"]) >= 5 and all(js["claims"].values()), js["claim_details"]
    rows = [r for r in js["rows"] if r["case"] == "isotropic" and r["eta_rel"] == 1.25]
    assert sum(len(r["gaps"]) for r in rows) == 96  # every run is counted
    ratios = sorted(r["d"] / r["n"] for r in rows)
    assert ratios[-1] / ratios[0] >= 10  # the fit spans at least a decade of n/d


def test_reproduce_min_norm_fails_below_the_overshoot_step(tmp_path):
    # eta_rel = 0.5: GD mostly lands on w_mn exactly (module docstring), the median gap falls
    # much faster than sqrt(n/d) and the exponent claim must fail: exit status 1.
    rc = cli.main(["reproduce", "min-norm", "--quick", "--eta-rels", "0.5", "--cases", "isotropic",
                   "--out", str(tmp_path)])  # fmt: skip
    assert rc == 1
    js = json.loads((tmp_path / "min_norm.json").read_text())
    assert js["claims"]["gap_exponent_consistent_with_half"] is False


def test_min_norm_bad_flags_exit_2(tmp_path):
    import subprocess
    import sys

    for flags, name in ((["--eta-rels", "2.5"], "--eta-rels"), (["--cases", "nope"], "--cases"),
                        (["--seeds", "1"], "--seeds")):  # fmt: skip
        out = subprocess.run(
            [sys.executable, "-m", "minstab", "reproduce", "min-norm", "--quick", *flags,
             "--out", str(tmp_path)], capture_output=True, text=True,
        )  # fmt: skip
        assert out.returncode == 2, out.stderr
        assert out.stderr.count("\n") == 1 and name in out.stderr and "Traceback" not in out.stderr
