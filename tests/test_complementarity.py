"""The SDCP solver against closed forms, scipy on small random instances, and its conditions."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from minstab.engine.complementarity import operator_matrix, sdcp, smat, svec

TOL = 1e-8


def _random_instance(rng, k, *, rank=None):
    """A random A (symmetric) and a PSD B in svec coordinates (positive definite by default)."""
    m = k * (k + 1) // 2
    a = rng.normal(size=(k, k))
    g = rng.normal(size=(m, m + 2 if rank is None else rank))
    return (a + a.T) / 2, g @ g.T


def _conditions(a, bm, x):
    """(min eig X, min eig S, <X, S>) recomputed in numpy from X alone."""
    k = a.shape[0]
    s = a + np.asarray(smat(jnp.asarray(bm @ np.asarray(svec(jnp.asarray(x)))), k))
    return np.linalg.eigvalsh(x)[0], np.linalg.eigvalsh(s)[0], float(np.sum(x * s))


def _scipy_reference(a, bm):
    """min_{X >= 0} 1/2 <X, B[X]> + <A, X> with X = L L^T (Burer-Monteiro, full rank L), BFGS."""
    k = a.shape[0]
    iu = np.tril_indices(k)

    def parts(z):
        low = np.zeros((k, k))
        low[iu] = z
        x = low @ low.T
        xv = np.asarray(svec(jnp.asarray(x)))
        return low, x, xv

    def fun(z):
        low, x, xv = parts(z)
        val = 0.5 * xv @ bm @ xv + np.sum(a * x)
        s = a + np.asarray(smat(jnp.asarray(bm @ xv), k))  # gradient in X
        grad = 2 * s @ low
        return val, grad[iu]

    best = None
    rng = np.random.default_rng(1)
    for _ in range(5):
        z0 = rng.normal(size=iu[0].size)
        r = scipy.optimize.minimize(fun, z0, jac=True, method="BFGS", options={"gtol": 1e-12})
        if best is None or r.fun < best.fun:
            best = r
    return parts(best.x)[1], best.fun


@pytest.mark.parametrize("k", [1, 2, 4])
def test_matches_scipy_on_random_instances(k):
    rng = np.random.default_rng(k)
    for _ in range(4):
        a, bm = _random_instance(rng, k)
        r = sdcp(jnp.asarray(a), jnp.asarray(bm))
        assert bool(r.converged)
        x = np.asarray(r.X)
        x_ref, f_ref = _scipy_reference(a, bm)
        xv = np.asarray(svec(jnp.asarray(x)))
        f = 0.5 * xv @ bm @ xv + np.sum(a * x)
        assert f <= f_ref + 1e-9 * max(1.0, abs(f_ref))  # never worse than the generic solver
        np.testing.assert_allclose(x, x_ref, atol=1e-5 * max(1.0, np.abs(x_ref).max()))


@pytest.mark.parametrize("k", [2, 4, 10])
def test_conditions_to_1e_8(k):
    rng = np.random.default_rng(100 + k)
    for _ in range(5):
        a, bm = _random_instance(rng, k)
        r = sdcp(jnp.asarray(a), jnp.asarray(bm))
        assert bool(r.converged)
        ex, es, comp = _conditions(a, bm, np.asarray(r.X))
        assert ex >= -TOL and es >= -TOL and abs(comp) <= TOL, (ex, es, comp)


def test_no_unstable_direction_gives_zero():
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    a = (q * rng.uniform(0.1, 2.0, 4)) @ q.T  # A > 0
    _, bm = _random_instance(rng, 4)
    r = sdcp(jnp.asarray(a), jnp.asarray(bm))
    assert bool(r.converged) and int(r.iterations) == 0
    assert np.all(np.asarray(r.X) == 0.0)
    np.testing.assert_array_equal(np.asarray(r.S), (a + a.T) / 2)


@pytest.mark.parametrize(("a", "b"), [(-1.0, 2.0), (-3.0, 0.5), (0.7, 1.0), (-1e-3, 1e3)])
def test_one_direction_closed_form(a, b):
    r = sdcp(jnp.array([[a]]), jnp.array([[b]]))
    assert float(r.X[0, 0]) == pytest.approx(max(0.0, -a / b), rel=1e-12, abs=1e-15)


def test_one_unstable_direction_of_several_closed_form():
    # A = diag(-a, s2, s3) with B acting diagonally on the (1,1) entry only and positive
    # elsewhere: X = (a / b11) e1 e1^T, S = diag(0, s2, s3)
    k = 3
    a = np.diag([-0.4, 0.3, 0.9])
    b = np.zeros((k, k, k, k))
    for i in range(k):
        for j in range(k):
            b[i, j, i, j] = 1.0 + i + j
    r = sdcp(jnp.asarray(a), jnp.asarray(b))
    expected = np.zeros((k, k))
    expected[0, 0] = 0.4
    np.testing.assert_allclose(np.asarray(r.X), expected, atol=1e-10)
    np.testing.assert_allclose(np.asarray(r.S), np.diag([0.0, 0.3, 0.9]), atol=1e-10)


def test_operator_matrix_matches_tensor():
    rng = np.random.default_rng(5)
    k = 3
    t = rng.normal(size=(k, k, 7))
    t = t + t.transpose(1, 0, 2)
    b = np.einsum("ijp,klp->ijkl", t, t)  # a PSD Gram operator on symmetric matrices
    x = rng.normal(size=(k, k))
    x = x + x.T
    direct = np.einsum("ijkl,kl->ij", b, x)
    via = np.asarray(smat(operator_matrix(jnp.asarray(b)) @ svec(jnp.asarray(x)), k))
    np.testing.assert_allclose(via, direct, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(a=np.ones((2, 3)), b=np.eye(3)), "a must be a square"),
        (dict(a=np.eye(2), b=np.eye(4)), "b must have shape"),
        (dict(a=np.eye(2), b=np.eye(3), max_iters=0), "max_iters"),
        (dict(a=np.full((1, 1), np.nan), b=np.eye(1)), "finite"),
    ],
)
def test_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        sdcp(**{k: jnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()})
