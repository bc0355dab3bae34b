import chex
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

import minstab as ms
from minstab.shallow import curvature
from tests.helpers import interpolating_net


def random_problem(key, n=9, d=2, k=6):
    k1, k2, k3 = jax.random.split(key, 3)
    p = ms.init_shallow(k1, d, k, dtype=jnp.float64, scheme="ntk")
    x = jax.random.normal(k2, (n, d), jnp.float64)
    y = jax.random.normal(k3, (n,), jnp.float64)
    return p, x, y


@pytest.mark.parametrize("d", [1, 3])
def test_hessian_equals_jax_hessian_of_flat_loss(getkey, d):
    p, x, y = random_problem(getkey(), d=d)
    flat, unravel = jax.flatten_util.ravel_pytree(p)
    ref = jax.hessian(lambda t: 0.5 * jnp.mean((ms.forward(unravel(t), x) - y) ** 2))(flat)
    np.testing.assert_allclose(ms.hessian(p, x, y), ref, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("slope", [0.0, 0.2])
def test_structured_hvp_equals_dense(getkey, slope):
    p, x, y = random_problem(getkey(), d=3, k=7)
    h = ms.hessian(p, x, y, negative_slope=slope)
    v = jax.random.normal(getkey(), (h.shape[0],), jnp.float64)
    np.testing.assert_allclose(
        ms.shallow_hvp(v, p, x, y, negative_slope=slope), h @ v, rtol=1e-11, atol=1e-12
    )
    # the generic forward-over-reverse HVP on the pytree agrees too
    vp = ms.unflatten(v, 7, 3)
    hv = ms.hvp(lambda q, x, y: ms.quadratic_loss(q, x, y, negative_slope=slope), p, vp, x, y)
    np.testing.assert_allclose(ms.flatten(hv), h @ v, rtol=1e-11, atol=1e-12)


def test_gauss_newton_pieces(getkey):
    p, x, y = random_problem(getkey(), d=2, k=5)
    j = ms.jacobian(p, x)
    flat, unravel = jax.flatten_util.ravel_pytree(p)
    jref = jax.jacfwd(lambda t: ms.forward(unravel(t), x))(flat)
    np.testing.assert_allclose(j, jref, rtol=1e-13)
    n = x.shape[0]
    np.testing.assert_allclose(ms.gauss_newton_gram(p, x), j @ j.T / n, rtol=1e-12)
    v = jax.random.normal(getkey(), (j.shape[1],), jnp.float64)
    np.testing.assert_allclose(ms.gauss_newton_matvec(v, p, x), j.T @ (j @ v) / n, rtol=1e-11)
    # exact bound on the residual part: ||H - J^T J / n||_2
    r = ms.hessian(p, x, y) - j.T @ j / n
    np.testing.assert_allclose(
        ms.residual_curvature_bound(p, x, y), np.linalg.norm(r, 2), rtol=1e-10
    )


@pytest.mark.parametrize("d", [1, 3])
def test_gram_top_eigenvalue_equals_hessian_at_interpolation(getkey, d):
    p, x, y = interpolating_net(getkey(), n=10, d=d, k=24)
    assert float(ms.quadratic_loss(p, x, y)) < 1e-20
    dense = float(jnp.linalg.eigvalsh(ms.hessian(p, x, y))[-1])
    gram = float(jnp.linalg.eigvalsh(ms.gauss_newton_gram(p, x))[-1])
    assert abs(gram - dense) <= 1e-10 * dense


METHODS = ["dense", "lanczos", "gram", "power", "auto"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["interpolating", "random"])
def test_sharpness_contract(getkey, method, kind):
    if kind == "interpolating":
        p, x, y = interpolating_net(getkey(), n=10, d=2, k=20)
    else:
        p, x, y = random_problem(getkey(), n=10, d=2, k=20)
    evals = jnp.linalg.eigvalsh(ms.hessian(p, x, y))
    ref = float(evals[-1])
    r = ms.sharpness(p, x, y, method=method, full_output=True)
    if method == "gram" and kind == "random":
        # not a minimum: the Gram shortcut is only within its certified bound
        assert not bool(r.converged)
        assert abs(float(r.value) - ref) <= float(r.residual)
        return
    if method == "power":
        # power iteration finds the largest-magnitude eigenvalue (documented); on these two
        # problems it is also the largest, with |lambda_2 / lambda_1| <= 0.4, so 2000 steps
        # converge: a skip here would hide a regression, a failure means power is broken
        ref = float(evals[jnp.argmax(jnp.abs(evals))])
    assert bool(r.converged), r
    assert abs(float(r.value) - ref) <= 1e-10 * abs(ref)
    assert r.vector.shape == (ms.num_params(20, 2),)
    np.testing.assert_allclose(
        ms.hessian(p, x, y) @ r.vector, r.value * r.vector, atol=1e-6 * abs(ref)
    )


def test_auto_picks_gram_at_interpolation_and_lanczos_elsewhere(getkey):
    p, x, y = interpolating_net(getkey(), n=12, d=3, k=120)  # P = 601 > 400
    r = ms.sharpness(p, x, y, full_output=True)
    assert r.method_name == "gram" and bool(r.converged)
    ref = float(jnp.linalg.eigvalsh(ms.hessian(p, x, y))[-1])
    assert abs(float(r.value) - ref) <= 1e-10 * ref
    p2, x2, y2 = random_problem(getkey(), n=12, d=3, k=120)
    r2 = ms.sharpness(p2, x2, y2, full_output=True)
    assert r2.method_name == "lanczos"
    ref2 = float(jnp.linalg.eigvalsh(ms.hessian(p2, x2, y2))[-1])
    assert abs(float(r2.value) - ref2) <= 1e-10 * abs(ref2)


@pytest.mark.parametrize("method", ["dense", "lanczos", "gram"])
def test_sharpness_permutation_invariant(getkey, method):
    p, x, y = interpolating_net(getkey(), n=8, d=2, k=12)
    perm = jax.random.permutation(getkey(), 12)
    a = ms.sharpness(p, x, y, method=method)
    b = ms.sharpness(ms.permute(p, perm), x, y, method=method)
    np.testing.assert_allclose(a, b, rtol=1e-10)


@pytest.mark.parametrize("method", ["lanczos", "gram", "dense"])
def test_sharpness_jit_and_vmap(getkey, method):
    nets = [interpolating_net(getkey(), n=8, d=1, k=16) for _ in range(3)]
    batch = jax.tree.map(lambda *a: jnp.stack(a), *[nets[i][0] for i in range(3)])
    xs = jnp.stack([nets[i][1] for i in range(3)])
    ys = jnp.stack([nets[i][2] for i in range(3)])
    f = jax.vmap(lambda p, x, y: ms.sharpness(p, x, y, method=method))
    vals = jax.jit(f)(batch, xs, ys)
    for i in range(3):
        ref = float(jnp.linalg.eigvalsh(ms.hessian(*nets[i]))[-1])
        np.testing.assert_allclose(vals[i], ref, rtol=1e-10)


def test_sharpness_compiles_once(getkey):
    p, x, y = random_problem(getkey(), n=10, d=2, k=20)
    fn = curvature.sharpness_kernel
    counter = chex.assert_max_traces(n=1)(fn)
    orig = curvature._sharpness_jit
    curvature._sharpness_jit = jax.jit(counter, static_argnames=("problem", "opts"))
    try:
        for i in range(3):
            q, xx, yy = random_problem(jax.random.key(100 + i), n=10, d=2, k=20)
            ms.sharpness(q, xx, yy, method="lanczos")
    finally:
        curvature._sharpness_jit = orig
        chex.clear_trace_counter()


def test_sharpness_float32_reports_residual(getkey):
    p, x, y = interpolating_net(getkey(), n=10, d=2, k=20)
    p32 = jax.tree.map(lambda a: a.astype(jnp.float32), p)
    r = ms.sharpness(
        p32, x.astype(jnp.float32), y.astype(jnp.float32), method="lanczos", full_output=True
    )
    ref = float(jnp.linalg.eigvalsh(ms.hessian(p, x, y))[-1])
    assert r.value.dtype == jnp.float32
    assert abs(float(r.value) - ref) <= 1e-4 * ref


def test_sharpness_bad_input(getkey):
    p, x, y = random_problem(getkey(), n=10, d=2, k=5)
    with pytest.raises(ValueError, match="method must be one of"):
        ms.sharpness(p, x, y, method="arnoldi")
    with pytest.raises(ValueError, match="x must have shape"):
        ms.sharpness(p, x[:, :1], y)
    with pytest.raises(ValueError, match="y must have shape"):
        ms.sharpness(p, x, y[:-1])
    with pytest.raises(ValueError, match="x must be finite"):
        ms.sharpness(p, x.at[0, 0].set(jnp.nan), y)
    with pytest.raises(ValueError, match="v0 must have shape"):
        ms.sharpness(p, x, y, method="lanczos", v0=jnp.ones(3))
    with pytest.raises(ValueError, match="share a floating dtype"):
        ms.sharpness(p, x.astype(jnp.float32), y)


@pytest.mark.parametrize("n", [801, 1001, 2101])
def test_gram_in_row_blocks_matches_the_jacobian(getkey, n):
    # n >= 768: the Gram matrix is assembled from its lower triangle of 2, 3 or 4 row blocks of
    # uneven size; against J J^T / n from jax.jacfwd, and exactly symmetric
    from minstab.shallow.curvature import _gram_blocks

    assert _gram_blocks(n) == {801: 2, 1001: 3, 2101: 4}[n]
    p = ms.init_shallow(getkey(), 2, 3)
    x = jax.random.normal(getkey(), (n, 2), jnp.float64)
    flat, unravel = jax.flatten_util.ravel_pytree(p)
    j = jax.jacfwd(lambda t: ms.forward(unravel(t), x))(flat)
    g = np.asarray(ms.gauss_newton_gram(p, x))
    np.testing.assert_allclose(g, j @ j.T / n, rtol=1e-12, atol=1e-15)
    assert np.array_equal(g, g.T)
