"""Two-hidden-layer ReLU nets (minstab.shallow.deep) against independent references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from minstab.shallow.deep import (
    DeepParams,
    bump,
    bump_network,
    deep_flatten,
    deep_forward,
    deep_gd,
    deep_hessian,
    deep_num_params,
    deep_quadratic_loss,
    deep_sharpness,
    deep_unflatten,
    init_deep,
)


def _ref_forward(p, x):
    # plain numpy, one point at a time
    out = []
    for xi in np.asarray(x):
        h1 = np.maximum(np.asarray(p.w1) @ xi + np.asarray(p.b1), 0)
        h2 = np.maximum(np.asarray(p.w2) @ h1 + np.asarray(p.b2), 0)
        out.append(np.asarray(p.w3) @ h2 + float(p.b3))
    return np.array(out)


def test_forward_flatten_roundtrip(getkey):
    p = init_deep(getkey(), 3, (5, 4))
    x = jax.random.normal(getkey(), (7, 3))
    np.testing.assert_allclose(deep_forward(p, x), _ref_forward(p, x), rtol=1e-12)
    theta = deep_flatten(p)
    assert theta.shape == (deep_num_params(3, (5, 4)),)
    q = deep_unflatten(theta, 3, (5, 4))
    for a, b in zip(p, q, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(theta[:15], p.w1.reshape(-1))  # W1 first, row-major


def test_bump_network_is_exact(getkey):
    for d in (2, 3, 5):
        p = bump_network(d)
        x = jax.random.uniform(getkey(), (200, d), jnp.float64, -1.5, 1.5)
        ref = np.maximum(1 - np.abs(np.asarray(x)).sum(axis=1), 0)
        np.testing.assert_allclose(deep_forward(p, x), ref, atol=1e-14)
        np.testing.assert_allclose(bump(x), ref, atol=1e-14)
        assert float(deep_quadratic_loss(p, x, bump(x))) == 0.0


def test_hessian_and_sharpness_match_references(getkey):
    p = init_deep(getkey(), 2, (4, 3))
    x = jax.random.normal(getkey(), (9, 2))
    y = jnp.sin(x[:, 0]) + x[:, 1]
    h = deep_hessian(p, x, y)
    P = deep_num_params(2, (4, 3))

    # independent reference: central finite differences of the autodiff gradient
    theta = deep_flatten(p)

    def grad(t):
        return jax.grad(lambda t: deep_quadratic_loss(deep_unflatten(t, 2, (4, 3)), x, y))(t)

    eps = 1e-6
    fd = jax.vmap(lambda e: (grad(theta + eps * e) - grad(theta - eps * e)) / (2 * eps))(jnp.eye(P))
    np.testing.assert_allclose(h, fd, atol=1e-6)
    lam = float(np.linalg.eigvalsh(np.asarray(h))[-1])
    assert float(deep_sharpness(p, x, y, method="dense")) == pytest.approx(lam, rel=1e-12)
    r = deep_sharpness(p, x, y)
    assert bool(r.converged)
    assert float(r.value) == pytest.approx(lam, rel=1e-8)


def test_bump_sharpness_is_gauss_newton(getkey):
    """At an exact fit H = J^T J / n (eq. 28), so lambda_max = ||J||_2^2 / n."""
    d = 2
    p = bump_network(d)
    x = jax.random.uniform(getkey(), (50, d), jnp.float64, -1.5, 1.5)
    y = bump(x)
    theta = deep_flatten(p)
    jac = jax.jacfwd(lambda t: deep_forward(deep_unflatten(t, d, (2 * d, 1)), x))(theta)
    ref = np.linalg.norm(np.asarray(jac), 2) ** 2 / x.shape[0]
    lam = float(deep_sharpness(p, x, y, method="dense"))
    assert lam == pytest.approx(ref, rel=1e-10)
    assert 0 < lam < np.inf


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_bump_minimum_is_stable_exactly_below_2_over_lambda(getkey, factor):
    """Lemma 1 by GD itself: from theta* + delta v (v the top Hessian eigenvector) the distance
    to theta* is multiplied by |1 - eta lambda| per step. At 0.9 * 2/lambda GD must return, at
    1.1 * 2/lambda it must leave; a failure means the sharpness (or the Hessian) is wrong."""
    d = 2
    p = bump_network(d)
    x = jax.random.uniform(getkey(), (50, d), jnp.float64, -1.5, 1.5)
    y = bump(x)
    lam_all, vec = np.linalg.eigh(np.asarray(deep_hessian(p, x, y)))
    lam = float(deep_sharpness(p, x, y, method="dense"))
    theta, delta, steps = deep_flatten(p), 1e-7, 40
    start = deep_unflatten(theta + delta * jnp.asarray(vec[:, -1]), d, (2 * d, 1))
    eta = factor * 2 / lam
    q = deep_gd(start, x, y, eta, steps=steps)
    ratio = float(jnp.linalg.norm(deep_flatten(q) - theta)) / delta
    # independent reference: the linearized map, |1 - eta lambda|^steps (0.8^40 or 1.2^40)
    assert ratio == pytest.approx(abs(1 - eta * lam) ** steps, rel=1e-3)
    assert (ratio < 1) if factor < 1 else (ratio > 1)


def test_validation():
    p = bump_network(2)
    with pytest.raises(ValueError, match="x"):
        deep_forward(p, jnp.zeros((3, 4)))
    with pytest.raises(ValueError, match="y"):
        deep_quadratic_loss(p, jnp.zeros((3, 2)), jnp.zeros(2))
    with pytest.raises(ValueError, match="params.w2"):
        deep_forward(p._replace(w2=jnp.zeros((2, 2))), jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match="method"):
        deep_sharpness(p, jnp.zeros((3, 2)), jnp.zeros(3), method="power")
    with pytest.raises(ValueError, match="in_dim"):
        bump_network(0)
    assert isinstance(p, DeepParams) and p.widths == (4, 1) and p.in_dim == 2
