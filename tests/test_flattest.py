import jax
import jax.numpy as jnp
import numpy as np
import pytest

import minstab as ms
from minstab.engine.train import train
from minstab.shallow.flattest import flattest_implementation
from tests.helpers import interpolating_net


def trained_net(seed):
    x, y = ms.data.toy_1d(n=8, key=jax.random.key(seed))
    p = ms.init_shallow(jax.random.key(seed + 100), 1, 40, knot_range=(-1.6, 1.6), output_scale=0.3)
    r = train(p, x, y, 0.02, steps=60_000, tol=1e-26)
    assert float(r.loss) < 1e-8
    # polish to exact interpolation: refit the output layer on GD's first layer
    q = r.params
    f = np.asarray(jax.nn.relu(x[:, None] @ q.w1.T + q.b1[None, :]))
    sol = np.linalg.lstsq(np.c_[f, np.ones(8)], np.asarray(y), rcond=None)[0]
    return q._replace(w2=jnp.asarray(sol[:-1]), b2=jnp.asarray(sol[-1])), x, y


def check_guarantees(p, x, y):
    r = flattest_implementation(p, x, y)
    dense = float(jnp.linalg.eigvalsh(ms.hessian(r.params, x, y))[-1])
    dense0 = float(jnp.linalg.eigvalsh(ms.hessian(p, x, y))[-1])
    # 1. the same function
    np.testing.assert_allclose(ms.forward(r.params, x), ms.forward(p, x), rtol=1e-10, atol=1e-12)
    grid = jnp.linspace(-3.0, 3.0, 50)[:, None] * jnp.ones((1, x.shape[1]))
    np.testing.assert_allclose(
        ms.forward(r.params, grid), ms.forward(p, grid), rtol=1e-10, atol=1e-10
    )
    # 2. never sharper than the input; the reported values are the true ones
    assert dense <= dense0 * (1 + 1e-9)
    np.testing.assert_allclose(r.sharpness, dense, rtol=1e-8)
    np.testing.assert_allclose(r.initial_sharpness, dense0, rtol=1e-8)
    # 3. never below Lemma 4, and certified optimal
    assert float(ms.sharpness_lower_bound(p, x)) <= float(r.dual_bound) * (1 + 1e-10)
    assert float(r.dual_bound) <= dense * (1 + 1e-10)
    assert bool(r.converged) and bool(r.at_minimum)
    assert float(r.gap) <= 1e-8 * dense
    return r


@pytest.mark.parametrize("d", [1, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_exact_interpolants(seed, d):
    p, x, y = interpolating_net(jax.random.key(seed), n=10, d=d, k=24)
    r = check_guarantees(p, x, y)
    assert float(r.sharpness) < float(r.initial_sharpness)


def test_trained_networks():
    for seed in (0, 1):
        p, x, y = trained_net(seed)
        check_guarantees(p, x[:, None], y)


def gram_pieces(p, x):
    """numpy: lambda_max(Phi Phi^T / n) of the rescaled net as a function of log beta.

    Rescaling neuron j by alpha_j = sqrt(beta_j) multiplies its (w1, b1) gradient rows by
    1/alpha_j and its w2 row by alpha_j (ReLU is 1-homogeneous), so the Gram matrix is
    (sum_j M_j / beta_j + beta_j N_j + 1 1^T) / n with M_j, N_j from the unscaled net: an
    independent reference (plain numpy, no minstab Gram code), cheap enough for Nelder-Mead.
    """
    w1, b1, w2 = (np.asarray(a) for a in (p.w1, p.b1, p.w2))
    x = np.asarray(x).reshape(len(x), -1)
    n = x.shape[0]
    z = x @ w1.T + b1[None, :]  # (n, k)
    on = (z > 0).astype(float)
    a = (w2[None, :] * on)[:, :, None] * np.c_[x, np.ones(n)][:, None, :]  # (n, k, d+1)
    m = np.einsum("ikd,jkd->kij", a, a)  # (k, n, n): d f / d(w1_j, b1_j)
    r = np.maximum(z, 0)
    nn = np.einsum("ik,jk->kij", r, r)  # d f / d w2_j
    pieces = np.concatenate([m, nn]).reshape(2 * len(w2), n * n) / n

    def lam(lb):
        beta = np.exp(np.asarray(lb))
        g = (np.concatenate([1 / beta, beta]) @ pieces).reshape(n, n) + 1.0 / n
        return float(np.linalg.eigvalsh(g)[-1])

    return lam


def test_certificate_matches_brute_force_rescaling():
    """Random rescalings never beat the optimum; the optimum matches scipy on log beta.

    A flattest implementation sharper than Nelder-Mead's, or a dual bound above any achievable
    sharpness, would mean the optimizer or its certificate is wrong.
    """
    from scipy.optimize import minimize

    p, x, y = interpolating_net(jax.random.key(5), n=6, d=1, k=8)
    r = flattest_implementation(p, x, y)
    lam = gram_pieces(p, x)
    # the numpy reference is the Gram form minstab evaluates (at beta = 1, to rounding)
    ref0 = float(jnp.linalg.eigvalsh(ms.gauss_newton_gram(p, x))[-1])
    np.testing.assert_allclose(lam(np.zeros(8)), ref0, rtol=1e-12)
    res = minimize(lam, np.zeros(8), method="Nelder-Mead",
                   options={"maxiter": 20000, "xatol": 1e-10, "fatol": 1e-12})  # fmt: skip
    assert float(r.sharpness) <= res.fun * (1 + 1e-9)
    assert float(r.dual_bound) <= res.fun * (1 + 1e-10)
    rng = np.random.default_rng(0)
    for _ in range(200):
        assert lam(rng.standard_normal(8)) >= float(r.dual_bound) * (1 - 1e-12)


def test_vmap_over_networks():
    nets = [interpolating_net(jax.random.key(s), n=8, d=2, k=12) for s in range(3)]
    x, y = nets[0][1], nets[0][2]
    ps = []
    for s in range(3):  # other first layers, least-squares output layer on the same data
        q = ms.init_shallow(jax.random.key(10 + s), 2, 12, scheme="ntk", dtype=jnp.float64)
        f = np.asarray(jax.nn.relu(x @ q.w1.T + q.b1[None, :]))
        sol = np.linalg.lstsq(np.c_[f, np.ones(8)], np.asarray(y), rcond=None)[0]
        ps.append(q._replace(w2=jnp.asarray(sol[:-1]), b2=jnp.asarray(sol[-1])))
    batch = jax.tree.map(lambda *a: jnp.stack(a), *ps)
    got = jax.vmap(lambda q: flattest_implementation(q, x, y))(batch)
    for i, q in enumerate(ps):
        one = flattest_implementation(q, x, y)
        np.testing.assert_allclose(got.sharpness[i], one.sharpness, rtol=1e-10)
        np.testing.assert_allclose(got.dual_bound[i], one.dual_bound, rtol=1e-10)


def test_away_from_minimum_is_flagged():
    p = ms.init_shallow(jax.random.key(0), 2, 10, scheme="ntk", dtype=jnp.float64)
    x = jax.random.normal(jax.random.key(1), (8, 2), jnp.float64)
    y = jax.random.normal(jax.random.key(2), (8,), jnp.float64)
    r = flattest_implementation(p, x, y)
    assert not bool(r.at_minimum)
    dense = float(jnp.linalg.eigvalsh(ms.hessian(r.params, x, y))[-1])
    np.testing.assert_allclose(r.sharpness, dense, rtol=1e-8)  # an upper bound on the flattest


def test_bad_input():
    p, x, y = interpolating_net(jax.random.key(0), n=6, d=1, k=8)
    with pytest.raises(ValueError, match="y must have shape"):
        flattest_implementation(p, x, y[:-1])
    with pytest.raises(ValueError, match="damping"):
        flattest_implementation(p, x, y, damping=0.0)
    with pytest.raises(ValueError, match="num_iters"):
        flattest_implementation(p, x, y, num_iters=0)
