"""Central flow: third-derivative products, one substep against a dense computation, the
gradient-flow limit, the edge bound, and input validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import minstab as ms
from minstab.engine.central_flow import gd_trajectory, third_derivative_products


def _apply(params, x):
    (w1, b1), (w2, b2) = params
    return (jnp.tanh(x @ w1 + b1[None, :]) @ w2 + b2[None, :])[:, 0]


def _problem(seed=0, n=12, d=3, h=4):
    k1, k2, k3, k4 = jax.random.split(jax.random.key(seed), 4)
    x = jax.random.normal(k1, (n, d))
    y = jax.random.normal(k2, (n,))
    params = [
        (jax.random.normal(k3, (d, h)) / np.sqrt(d), jnp.zeros(h)),
        (jax.random.normal(k4, (h, 1)) / np.sqrt(h), jnp.zeros(1)),
    ]
    return params, x, y


def _flat_loss(params, x, y):
    w0, unravel = ravel_pytree(params)
    return w0, lambda w: ms.model_loss(_apply)(unravel(w), x, y)


def test_third_derivative_products_match_dense_tensor():
    params, x, y = _problem()
    w0, loss = _flat_loss(params, x, y)
    t3 = jax.jacfwd(jax.hessian(loss))(w0)  # (P, P, P), dense reference
    u = jax.random.normal(jax.random.key(9), (w0.shape[0], 3))
    third, hu = third_derivative_products(loss, w0, u)
    i, j = np.triu_indices(3)
    for p, (a, b) in enumerate(zip(i, j, strict=True)):
        # d/de H(w + e u_a) u_b = sum_rs T[., r, s] u_a[r] u_b[s]  (T symmetric)
        ref = jnp.einsum("prs,r,s->p", t3, u[:, a], u[:, b])
        np.testing.assert_allclose(third[p], ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(hu[p], jax.hessian(loss)(w0) @ u[:, b], rtol=1e-10, atol=1e-12)


def test_one_substep_matches_dense_single_direction_formula():
    """k = 1, one Euler substep, against the closed form X = max(0, -A/B) from dense algebra."""
    for seed in range(1, 20):  # the first problem where gradient flow sharpens (grad S . g < 0)
        params, x, y = _problem(seed=seed, n=16, h=5)
        w0, loss = _flat_loss(params, x, y)
        g = jax.grad(loss)(w0)
        # grad S = D^3 L[u, u, .] for the top eigenvector u, by differentiating the eigenvalue
        grad_s = jax.grad(lambda w, loss=loss: jnp.linalg.eigvalsh(jax.hessian(loss)(w))[-1])(w0)
        if grad_s @ g < 0:
            break
    lam1 = jnp.linalg.eigvalsh(jax.hessian(loss)(w0))[-1]
    eta = 2.05 / float(lam1)  # just past the edge: A < 0, X > 0
    a = 2 - eta * lam1 + eta**2 * grad_s @ g  # dt = 1
    b = eta**3 / 2 * grad_s @ grad_s
    x_expected = max(0.0, float(-a / b))
    w_expected = w0 - eta * g - eta**2 / 2 * x_expected * grad_s
    r = ms.central_flow(params, x, y, eta=eta, steps=1, model=_apply, k=1, substeps=1,
                        eig_tol=1e-10, eig_iters=200)  # fmt: skip
    assert x_expected > 0
    np.testing.assert_allclose(r.X[0, 0, 0], x_expected, rtol=1e-6)
    np.testing.assert_allclose(ravel_pytree(r.params)[0], w_expected, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(r.sharpness[0], lam1, rtol=1e-9)
    # predicted loss L + 1/2 mu X
    np.testing.assert_allclose(
        r.predicted_loss[0], loss(w0) + 0.5 * eta * lam1 * x_expected, rtol=1e-6
    )


def test_without_unstable_direction_it_is_gradient_flow():
    params, x, y = _problem(seed=2)
    w0, loss = _flat_loss(params, x, y)
    lam1 = float(jnp.linalg.eigvalsh(jax.hessian(loss)(w0))[-1])
    eta, steps, sub = 0.3 / lam1, 20, 4  # eta lambda stays far below 2
    r = ms.central_flow(params, x, y, eta=eta, steps=steps, model=_apply, k=2, substeps=sub)
    assert np.all(r.X == 0) and np.all(r.predicted_loss == r.loss)
    # explicit Euler written out independently
    w, losses = w0, []
    grad = jax.jit(jax.grad(loss))
    for _ in range(steps):
        losses.append(float(loss(w)))
        for _ in range(sub):
            w = w - (eta / sub) * grad(w)
    np.testing.assert_allclose(r.loss, losses, rtol=1e-12)
    np.testing.assert_allclose(ravel_pytree(r.params)[0], w, rtol=1e-11, atol=1e-13)
    s = ms.stable_flow(params, x, y, eta=eta, steps=steps, model=_apply, k=2, substeps=sub)
    np.testing.assert_allclose(s.loss, r.loss, rtol=1e-12)
    # and the ODE itself (scipy, tight tolerance): Euler's O(dt eta lambda) error only
    from scipy.integrate import solve_ivp

    sol = solve_ivp(lambda t, w: -eta * np.asarray(grad(jnp.asarray(w))), (0, steps),
                    np.asarray(w0), rtol=1e-10, atol=1e-12)  # fmt: skip
    err4 = np.abs(ravel_pytree(r.params)[0] - sol.y[:, -1]).max()
    r16 = ms.central_flow(params, x, y, eta=eta, steps=steps, model=_apply, k=2, substeps=16)
    err16 = np.abs(ravel_pytree(r16.params)[0] - sol.y[:, -1]).max()
    assert 0.15 <= err16 / err4 <= 0.4, (err4, err16)  # first order: 4x the substeps, err / 4


def test_flow_holds_the_edge_and_eigenvalues_are_the_hessians():
    params, x, y = _problem(seed=3, n=16, h=5)
    w0, loss = _flat_loss(params, x, y)
    lam1 = float(jnp.linalg.eigvalsh(jax.hessian(loss)(w0))[-1])
    eta = 2.3 / lam1  # starts beyond the edge: the flow must bring eta lambda_1 to <= 2
    r = ms.central_flow(params, x, y, eta=eta, steps=30, model=_apply, k=2)
    mu = eta * r.sharpness
    assert np.all(r.sdcp_converged)
    assert np.max(r.sdcp_complementarity) <= 1e-8 and np.min(r.sdcp_min_eig) >= -1e-8
    assert np.max(mu[5:]) <= 2.0 + 1e-3, mu
    dense = np.linalg.eigvalsh(np.asarray(jax.hessian(loss)(ravel_pytree(r.params)[0])))
    assert eta * dense[-1] <= 2.0 + 1e-3
    g = gd_trajectory(params, x, y, eta=eta, steps=10, model=_apply, k=2, every=5)
    np.testing.assert_allclose(g.eigenvalues[0], np.sort(dense0 := np.linalg.eigvalsh(
        np.asarray(jax.hessian(loss)(w0))))[::-1][:2], rtol=1e-6)  # fmt: skip
    assert dense0.shape == (w0.shape[0],)


def test_gd_eigenvalues_at_the_midpoint_are_the_dense_hessians():
    """eig_at="midpoint": eigenvalues of H((w_t + w_t+1) / 2) (a Python GD loop, dense eigvalsh)."""
    params, x, y = _problem(seed=1, n=16, h=5)
    w, loss = _flat_loss(params, x, y)
    eta, steps = 0.3, 4
    g = gd_trajectory(params, x, y, eta=eta, steps=steps, model=_apply, k=2, every=1,
                      eig_at="midpoint")  # fmt: skip
    for t in range(steps):
        step = eta * jax.grad(loss)(w)
        np.testing.assert_allclose(g.loss[t], loss(w), rtol=1e-12)  # the loss stays at w_t
        dense = np.linalg.eigvalsh(np.asarray(jax.hessian(loss)(w - 0.5 * step)))[::-1][:2]
        np.testing.assert_allclose(g.eigenvalues[t], dense, rtol=1e-6)
        at_iterate = np.linalg.eigvalsh(np.asarray(jax.hessian(loss)(w)))[::-1][:2]
        assert np.abs(dense - at_iterate).max() > 1e-4  # the two points differ measurably
        w = w - step
    with pytest.raises(ValueError, match="eig_at"):
        gd_trajectory(params, x, y, eta=eta, steps=2, model=_apply, k=2, every=1, eig_at="mid")


def test_shallow_default_model_runs():
    x, y = ms.data.toy_1d(n=8, key=jax.random.key(0))
    p = ms.init_shallow(jax.random.key(1), 1, 8)
    r = ms.central_flow(p, x, y, eta=0.05, steps=3, k=2)
    assert isinstance(r.params, ms.ShallowParams)
    assert r.eigenvalues.shape == (3, 2) and r.X.shape == (3, 2, 2)
    assert np.all(r.third_count == 4 * 3) and np.all(r.hvp_count > 0)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(eta=-0.1), "eta"),
        (dict(eta=float("nan")), "eta"),
        (dict(steps=0), "steps"),
        (dict(k=0), "k must"),
        (dict(k=20), "5 k < P"),
        (dict(substeps=1.5), "substeps"),
        (dict(model=3), "model"),
        (dict(eig_tol=2.0), "eig_tol"),
    ],
)
def test_bad_input_names_the_argument(kw, match):
    params, x, y = _problem()
    args = dict(eta=0.1, steps=2, model=_apply, k=2)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        ms.central_flow(params, x, y, **args)


def test_bad_params_and_data():
    params, x, y = _problem()
    with pytest.raises(ValueError, match="y"):
        ms.central_flow(params, x, y[:3], eta=0.1, steps=2, model=_apply, k=2)
    with pytest.raises(ValueError, match="ShallowParams"):
        ms.stable_flow(params, x, y, eta=0.1, steps=2, k=2)
    with pytest.raises(ValueError, match="every"):
        gd_trajectory(params, x, y, eta=0.1, steps=7, model=_apply, k=2, every=5)
