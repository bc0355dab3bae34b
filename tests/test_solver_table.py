"""The solver tables: eigen.SOLVERS / solve / materialize, and curvature.SHARPNESS_SOLVERS.

A method registered as one table entry must reach the public ``sharpness`` with no other
change; references are eigvalsh of Hessians written out here with ``jax.hessian``.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import minstab as ms
from minstab.engine import eigen, spectrum
from minstab.shallow import curvature


def _toy_run(matvec, v0, *args, k, num_iters, tol, dense):
    """Toy solver: eigh of the matrix built from products with I (ignores ``dense``)."""
    dim = v0.shape[0]
    rows = jnp.stack([matvec(e, *args) for e in jnp.eye(dim, dtype=v0.dtype)])
    evals, evecs = jnp.linalg.eigh((rows + rows.T) / 2)
    value, vector = evals[-1], evecs[:, -1]
    res = jnp.linalg.norm(matvec(vector, *args) - value * vector)
    return ms.EigResult(value, vector, res, jnp.array(dim), jnp.array(True))


TOY = eigen.Solver(_toy_run, dense=True)


def _shallow_loss_reference(params, x, y):
    """Quadratic loss (1/2n) sum_j (f(x_j) - y_j)^2 of the shallow net, written out."""
    theta, unravel = ravel_pytree(params)

    def loss(t):
        p = unravel(t)
        f = jnp.maximum(x @ p.w1.T + p.b1[None, :], 0) @ p.w2 + p.b2
        return 0.5 * jnp.mean((f - y) ** 2)

    return jax.hessian(loss)(theta)


def test_materialize_rebuilds_a_known_symmetric_matrix():
    a = jnp.array([[2.0, 1.0, 0.0], [1.0, -3.0, 0.5], [0.0, 0.5, 4.0]])
    m = eigen.materialize(lambda v, a: a @ v, 3, a.dtype, a)
    np.testing.assert_array_equal(np.asarray(m), np.asarray(a))


@pytest.mark.parametrize("method", ["dense", "lanczos", "power"])
def test_solve_dispatches_every_entry_to_the_top_eigenvalue(method):
    evals = jnp.array([5.0, 2.0, 1.0, -1.0, 0.5])
    q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(0), (5, 5), jnp.float64))
    a = (q * evals[None, :]) @ q.T
    r = eigen.solve(method, lambda v, a: a @ v, jnp.ones(5), a)
    assert bool(r.converged)
    np.testing.assert_allclose(float(r.value), 5.0, rtol=1e-8)


def test_solve_budgets_override_the_table_default():
    a = jnp.diag(jnp.array([1.0, 0.99, 0.5]))  # slow for power iteration
    r = eigen.solve("power", lambda v, a: a @ v, jnp.ones(3), a, budgets={"power": 3})
    assert int(r.num_matvecs) == 3 and not bool(r.converged)


def test_solve_rejects_an_unknown_method_naming_the_choices():
    with pytest.raises(ValueError, match="method must be one of 'dense', 'lanczos', 'power'"):
        eigen.solve("qr", lambda v: v, jnp.ones(3))


def test_a_registered_method_reaches_public_sharpness(monkeypatch):
    monkeypatch.setitem(curvature.SHARPNESS_SOLVERS, "toy", curvature.hessian_method(TOY))
    x, y = ms.data.toy_1d(n=6, key=jax.random.key(0))
    p = ms.init_shallow(jax.random.key(1), in_dim=1, width=5)
    ref = np.linalg.eigvalsh(np.asarray(_shallow_loss_reference(p, x[:, None], y)))[-1]
    r = ms.sharpness(p, x, y, method="toy", full_output=True)
    assert r.method_name == "toy" and bool(r.converged)
    np.testing.assert_allclose(float(r.value), ref, rtol=1e-10)
    assert float(ms.sharpness(p, x, y, method="toy")) == pytest.approx(ref, rel=1e-10)

    def apply(q, x):  # any model: a tanh net as a dict of arrays
        return jnp.tanh(x @ q["w"]) @ q["v"]

    q = {"w": jax.random.normal(jax.random.key(2), (1, 4)), "v": jnp.ones(4) / 4}
    theta, unravel = ravel_pytree(q)
    h = jax.hessian(lambda t: 0.5 * jnp.mean((apply(unravel(t), x[:, None]) - y) ** 2))(theta)
    lam = ms.sharpness(q, x[:, None], y, model=apply, method="toy", full_output=True)
    assert lam.method_name == "toy"
    np.testing.assert_allclose(float(lam.value), np.linalg.eigvalsh(np.asarray(h))[-1], rtol=1e-10)


def test_method_choices_come_from_the_table(monkeypatch):
    x, y = ms.data.toy_1d(n=4, key=jax.random.key(0))
    p = ms.init_shallow(jax.random.key(1), in_dim=1, width=3)
    with pytest.raises(
        ValueError,
        match="method must be one of 'auto', 'dense', 'lanczos', 'gram', 'power'; got 'toy'",
    ):
        ms.sharpness(p, x, y, method="toy")
    monkeypatch.setitem(curvature.SHARPNESS_SOLVERS, "toy", curvature.hessian_method(TOY))
    assert "toy" in ms.SHARPNESS_METHODS and ms.SHARPNESS_METHODS.index("toy") == 4
    with pytest.raises(ValueError, match="'power', 'toy'; got 'qr'"):
        ms.sharpness(p, x, y, method="qr")


def _exact_trace(products, key, num_samples, size, dtype):
    """Toy estimator: the exact trace from the products with the identity's rows."""
    diag = jnp.diagonal(products(jnp.eye(size, dtype=dtype)))
    return spectrum.TraceEstimate(jnp.sum(diag), jnp.zeros((), dtype), jnp.array(size), diag)


def test_a_registered_trace_estimator_reaches_public_hessian_trace(monkeypatch):
    x, y = ms.data.toy_1d(n=6, key=jax.random.key(0))
    p = ms.init_shallow(jax.random.key(1), in_dim=1, width=5)
    with pytest.raises(
        ValueError, match=re.escape("one of 'hutch++', 'hutchinson', 'xtrace'; got 'exact'")
    ):
        ms.hessian_trace(p, x, y, key=jax.random.key(2), num_samples=4, method="exact")
    monkeypatch.setitem(spectrum.TRACE_ESTIMATORS, "exact", spectrum.TraceMethod(_exact_trace, 1))
    r = ms.hessian_trace(p, x, y, key=jax.random.key(2), num_samples=1, method="exact")
    ref = np.trace(np.asarray(_shallow_loss_reference(p, x[:, None], y)))
    np.testing.assert_allclose(float(r.value), ref, rtol=1e-10)
    assert float(r.stderr) == 0.0
