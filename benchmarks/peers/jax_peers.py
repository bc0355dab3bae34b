"""JAX peers: scipy eigsh on a JAX HVP, matfree Lanczos, jax.hessian + eigvalsh, GD loops."""

from __future__ import annotations

import functools

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from minstab.shallow.losses import quadratic_loss
from minstab.shallow.nets import flatten, unflatten


def _flat_loss(theta, x, y, k, d):
    return quadratic_loss(unflatten(theta, k, d), x, y)


@functools.partial(jax.jit, static_argnames=("k", "d"))
def autodiff_hvp(theta, v, x, y, *, k, d):
    """Generic forward-over-reverse HVP (what edge-of-stability code writes by hand)."""
    g = lambda t: jax.grad(_flat_loss)(t, x, y, k, d)  # noqa: E731
    return jax.jvp(g, (theta,), (v,))[1]


def scipy_eigsh(params, x, y, *, tol):
    """scipy.sparse.linalg.eigsh(k=1, which='LA') on a LinearOperator wrapping a jitted JAX HVP."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    k, d = params.w1.shape
    theta = flatten(params)
    P = theta.shape[0]
    count = [0]
    dt = np.dtype(theta.dtype)

    def mv(v):
        count[0] += 1
        out = autodiff_hvp(theta, jnp.asarray(np.ravel(v), dt), x, y, k=k, d=d)
        return np.asarray(out)

    op = LinearOperator((P, P), matvec=mv, dtype=dt)
    v0 = np.asarray(jax.random.normal(jax.random.key(0), (P,), dt))
    val = eigsh(op, k=1, which="LA", tol=tol, v0=v0, return_eigenvectors=False)
    return float(val[0]), count[0]


@functools.partial(jax.jit, static_argnames=("k", "d", "depth"))
def _matfree(theta, v0, x, y, *, k, d, depth):
    from matfree import decomp, eig

    solver = eig.eigh_partial(decomp.tridiag_sym(depth))
    mv = lambda v, t, x, y: autodiff_hvp(t, v, x, y, k=k, d=d)  # noqa: E731
    vals, _ = solver(mv, v0, theta, x, y)
    return jnp.max(vals)


def matfree_lanczos(params, x, y, *, depth):
    """matfree eig.eigh_partial(decomp.tridiag_sym(depth)) (full reorthogonalization)."""
    k, d = params.w1.shape
    theta = flatten(params)
    v0 = jax.random.normal(jax.random.key(0), theta.shape, theta.dtype)
    return float(_matfree(theta, v0, x, y, k=k, d=d, depth=depth)), depth


@functools.partial(jax.jit, static_argnames=("k", "d"))
def _dense(theta, x, y, *, k, d):
    return jnp.linalg.eigvalsh(jax.hessian(_flat_loss)(theta, x, y, k, d))[-1]


def hessian_eigvalsh(params, x, y):
    """jax.hessian of the flat loss + jnp.linalg.eigvalsh."""
    k, d = params.w1.shape
    return float(_dense(flatten(params), x, y, k=k, d=d)), 0


@jax.jit
def gd_step(params, x, y, eta):
    """One jitted GD step with jax.grad (the building block of a 'JAX loop')."""
    g = jax.grad(quadratic_loss)(params, x, y)
    return jax.tree.map(lambda p, gi: p - eta * gi, params, g)


def jax_loop_sweep(params, x, y, etas, *, steps):
    """Python loop of jitted steps, one run after another."""
    out = []
    for eta in np.asarray(etas):
        p = params
        e = jnp.asarray(eta, x.dtype)
        for _ in range(steps):
            p = gd_step(p, x, y, e)
        out.append(quadratic_loss(p, x, y))
    return np.asarray(jax.block_until_ready(jnp.stack(out)))


def _scan(params, x, y, eta, steps):
    def body(p, _):
        g = jax.grad(quadratic_loss)(p, x, y)
        return jax.tree.map(lambda a, b: a - eta * b, p, g), None

    p, _ = jax.lax.scan(body, params, None, length=steps)
    return quadratic_loss(p, x, y)


scan_run = jax.jit(_scan, static_argnames=("steps",))


def scan_sweep(params, x, y, etas, *, steps):
    """One jit(lax.scan) per step size, run one after another."""
    out = [scan_run(params, x, y, jnp.asarray(e, x.dtype), steps) for e in np.asarray(etas)]
    return np.asarray(jax.block_until_ready(jnp.stack(out)))


vmap_scan = jax.jit(
    jax.vmap(_scan, in_axes=(None, None, None, 0, None)), static_argnames=("steps",)
)


def vmap_scan_sweep(params, x, y, etas, *, steps):
    """Plain jit(vmap(scan)) over step sizes with jax.grad (no minstab fusion)."""
    return np.asarray(jax.block_until_ready(vmap_scan(params, x, y, jnp.asarray(etas), steps)))


# --------------------------------------------------------------------------- any model (spectrum)
def make_flat_hvp(apply, params):
    """(theta, hvp): flat params and a jitted forward-over-reverse HVP ``hvp(theta, v, x, y)`` of
    the quadratic loss (1/2n) sum ||f(x_j) - y_j||^2, as edge-of-stability code writes it."""
    theta, unravel = jax.flatten_util.ravel_pytree(params)

    def loss(t, x, y):
        r = apply(unravel(t), x) - y
        return 0.5 * jnp.sum(r * r) / x.shape[0]

    @jax.jit
    def hvp(t, v, x, y):
        return jax.jvp(lambda s: jax.grad(loss)(s, x, y), (t,), (v,))[1]

    return theta, hvp


def scipy_eigsh_top(theta, hvp, x, y, *, k, tol):
    """scipy eigsh(k, which='LA') on a LinearOperator wrapping the jitted HVP; values descending."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    count = [0]
    dt = np.dtype(theta.dtype)

    def mv(v):
        count[0] += 1
        return np.asarray(hvp(theta, jnp.asarray(np.ravel(v), dt), x, y))

    P = theta.shape[0]
    op = LinearOperator((P, P), matvec=mv, dtype=dt)
    v0 = np.asarray(jax.random.normal(jax.random.key(0), (P,), dt))
    vals = eigsh(op, k=k, which="LA", tol=tol, v0=v0, return_eigenvectors=False)
    return np.sort(vals)[::-1], count[0]


@functools.cache
def _matfree_top(hvp, depth, k):
    from matfree import decomp, eig

    solver = eig.eigh_partial(decomp.tridiag_sym(depth))

    @jax.jit
    def top(theta, v0, x, y):
        vals, _ = solver(lambda v, t, x, y: hvp(t, v, x, y), v0, theta, x, y)
        return jnp.sort(vals)[::-1][:k]

    return top


def matfree_top(theta, hvp, x, y, *, k, depth):
    """matfree eig.eigh_partial(decomp.tridiag_sym(depth)) (full reorthogonalization): top k."""
    v0 = jax.random.normal(jax.random.key(0), theta.shape, theta.dtype)
    return np.asarray(_matfree_top(hvp, depth, k)(theta, v0, x, y)), depth


@functools.cache
def _matfree_hutchinson(hvp, num, size, dtype):
    from matfree import stochtrace

    est = stochtrace.estimator_monte_carlo_mean_and_sem(
        stochtrace.monte_carlo_trace(),
        stochtrace.sampler_signs(jnp.zeros(size, dtype), num=num),
    )
    return jax.jit(
        lambda key, theta, x, y: est(lambda v, t, x, y: hvp(t, v, x, y), key, theta, x, y)
    )


def matfree_hutchinson(theta, hvp, x, y, *, num_samples, batch=10, seed=0):
    """matfree's Monte-Carlo trace estimator (Rademacher, mean and sem) in batches of probes.

    matfree vmaps all probes at once; batches of ``batch`` keep its memory bounded (the batch
    means and sems are combined exactly: equal-size batches).
    """
    est = _matfree_hutchinson(hvp, batch, theta.shape[0], jnp.dtype(theta.dtype))
    means, sems = [], []
    for i in range(num_samples // batch):
        m, s = est(jax.random.key(seed + i), theta, x, y)
        means.append(float(m))
        sems.append(float(s))
    b = len(means)
    # pooled: the mean of b equal batches; its sem from the batch sems (sem_i^2 = var_i / batch)
    return float(np.mean(means)), float(np.sqrt(np.sum(np.square(sems))) / b), b * batch


@functools.cache
def _matfree_slq(hvp, depth, reortho="full"):
    from matfree import decomp

    tri = decomp.tridiag_sym(depth, reortho=reortho)

    @jax.jit
    def rule(v0, theta, x, y):
        _, h, *_ = tri(lambda v, t, x, y: hvp(t, v, x, y), v0, theta, x, y)
        nodes, vecs = jnp.linalg.eigh(h)
        return nodes, vecs[0] ** 2

    return rule


def matfree_slq(theta, hvp, x, y, *, num_probes, depth, seed=0, reortho="full"):
    """SLQ with matfree's tridiag_sym(depth, reortho=...) per Rademacher probe."""
    rule = _matfree_slq(hvp, depth, reortho)
    out = []
    for i in range(num_probes):
        v0 = jax.random.rademacher(jax.random.key(seed + i), theta.shape, theta.dtype)
        out.append(rule(v0, theta, x, y))
    nodes = np.stack([np.asarray(o[0]) for o in out])
    weights = np.stack([np.asarray(o[1]) for o in out])
    return nodes, weights
