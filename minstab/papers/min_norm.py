"""Seed 002: GD on a ReLU neuron against the minimum-norm global minimum.

**Seed 002** (Lai, Wang, Tao, Muthukumar 2026), read as a single ReLU neuron ``x -> sigma(w.x)``
with square loss ``L(w) = (1/2n) sum_i (sigma(w.x_i) - y_i)^2`` and labels ``y_i >= 0``. Its
global minima are ``{w : w.x_i = y_i (y_i > 0), w.x_i <= 0 (y_i = 0)}`` and the minimum-norm one
solves the convex QP

    min_w 1/2 ||w||^2  s.t.  w.x_i = y_i (i in E = {y_i > 0}),  w.x_i <= 0 (i in Z = {y_i = 0}).  (5)

Its dual is a bound-constrained QP in n variables: with ``w = X^T alpha``,

    min_alpha 1/2 alpha^T K alpha - y^T alpha   s.t.  alpha_i <= 0 (i in Z),                 (6)

solved by :func:`min_norm_interpolant` (projected gradient warm start + primal-dual active set,
exact up to rounding). GD on the neuron also stays in ``w_0 + span``; :func:`gd_single_neuron`
runs it on ``alpha``. The seed claims ``||w_GD - w_mn|| / ||w_mn|| = Theta(sqrt(n / d))``
(``sqrt(n / tr Sigma)`` for anisotropic data).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import (
    as_labelled_data,
    check_count,
    check_finite,
    check_key,
    check_memory,
    check_positive,
    check_real,
)
from ..engine.loop import block_steps, new_status, run_blocks
from ..shallow.nets import float_dtype
from .rank_margins import log_steps

__all__ = [
    "MinNormResult",
    "min_norm_interpolant",
    "NeuronGDResult",
    "gd_single_neuron",
    "relative_gap",
    "TeacherData",
    "teacher_data",
    "GapResult",
    "gd_gap",
]


# --------------------------------------------------------------------------------------------
# minimum-norm interpolant of a single ReLU neuron (seed 002)


class MinNormResult(NamedTuple):
    """Solution of the QP (5) through its dual (6).

    Attributes
    ----------
    w : (d,) the minimum-norm global minimizer, ``w = X^T alpha``.
    alpha : (n,) dual coefficients; ``alpha_i <= 0`` on Z, ``alpha_i`` free on E.
    residuals : (n,) constraint residuals: ``w.x_i - y_i`` on E, ``max(w.x_i, 0)`` on Z.
    kkt_residual : max of the primal residuals, the dual infeasibility ``max(alpha_i, 0)`` on Z
        and the complementarity ``|alpha_i w.x_i|`` on Z, relative to ``max(1, max y)``.
    binding : (n,) bool, zero-label constraints with ``alpha_i < 0`` (``w.x_i = 0`` binding).
    converged : ``kkt_residual <= tol``.
    iterations : active-set iterations taken.
    """

    w: jax.Array
    alpha: jax.Array
    residuals: jax.Array
    kkt_residual: jax.Array
    binding: jax.Array
    converged: jax.Array
    iterations: jax.Array


def _kkt(k, y, alpha, zero):
    pred = k @ alpha
    scale = jnp.maximum(1.0, jnp.max(jnp.abs(y)))
    res = jnp.where(zero, jnp.maximum(pred, 0), pred - y)
    dual = jnp.where(zero, jnp.maximum(alpha, 0), 0)
    comp = jnp.where(zero, jnp.abs(alpha * pred), 0)
    kkt = jnp.max(jnp.concatenate([jnp.abs(res), dual, comp])) / scale
    return res, kkt


def _min_norm_dual(k, y, *, pg_iters, max_iter, tol):
    n = y.shape[0]
    zero = y <= 0
    eye = jnp.eye(n, dtype=k.dtype)
    # Warm start: projected gradient on (6), step 1/lambda_max(K). K is well conditioned for
    # nearly-orthogonal data, so a few dozen steps already find the binding set.
    lip = jnp.linalg.eigvalsh(k)[-1]

    def pg(i, alpha):
        a = alpha - (k @ alpha - y) / lip
        return jnp.where(zero, jnp.minimum(a, 0), a)

    alpha = jax.lax.fori_loop(0, pg_iters, pg, jnp.zeros(n, k.dtype))

    def solve(free):
        # alpha = 0 on the bound-active set A, K_FF alpha_F = y_F on the free set F: a fixed-
        # shape system (identity rows/columns on A) so the loop runs under jit/vmap.
        both = free[:, None] & free[None, :]
        mat = jnp.where(both, k, eye)
        rhs = jnp.where(free, y, 0)
        return jnp.where(free, jnp.linalg.solve(mat, rhs), 0)

    def active_of(alpha):
        # Primal-dual active set (Hintermueller-Ito-Kunisch) for alpha_Z <= 0 with multiplier
        # nu = -(K alpha - y) >= 0: the bound is active where nu_i + alpha_i > 0.
        nu = y - k @ alpha
        return zero & (nu + alpha > 0)

    # Unrolled (max_iter is static and small): LAPACK solves inside a vmapped while loop can
    # deadlock XLA:CPU on this machine, straight-line code cannot. Once the active set repeats
    # the iterate is a fixed point and later iterations leave it unchanged.
    act = active_of(alpha)
    iters = jnp.zeros((), jnp.int32)
    done = jnp.zeros((), bool)
    for _ in range(max_iter):
        alpha = jnp.where(done, alpha, solve(~act))
        new = active_of(alpha)
        iters = iters + (~done).astype(jnp.int32)
        done = done | jnp.all(new == act)
        act = new
    res, kkt = _kkt(k, y, alpha, zero)
    return alpha, res, kkt, zero & (alpha < 0), kkt <= tol, iters


@functools.partial(jax.jit, static_argnames=("pg_iters", "max_iter"))
def _min_norm_jit(x, y, tol, *, pg_iters, max_iter):
    k = x @ x.T
    alpha, res, kkt, binding, conv, iters = _min_norm_dual(
        k, y, pg_iters=pg_iters, max_iter=max_iter, tol=tol
    )
    return MinNormResult(x.T @ alpha, alpha, res, kkt, binding, conv, iters)


def min_norm_interpolant(
    x, y, *, tol: float | None = None, pg_iters: int = 50, max_iter: int = 12
) -> MinNormResult:
    """Minimum-norm global minimizer of a single ReLU neuron on ``(x, y)``, the QP (5).

    Solved through the dual (6): a projected-gradient warm start, then a primal-dual active-set
    method that solves ``K_FF alpha_F = y_F`` on the free set until the active set repeats
    (finitely many steps; exact up to rounding). The problem is feasible whenever the rows of
    ``x`` are linearly independent (d >= n in general position); otherwise ``converged`` is
    False and the residuals say which constraints fail.

    Parameters
    ----------
    x : (n, d) inputs.
    y : (n,) labels ``>= 0`` (``y_i > 0``: equality ``w.x_i = y_i``; ``y_i = 0``: ``w.x_i <= 0``).
    tol : KKT tolerance for ``converged`` (default ``1e-8`` in float64, ``1e-4`` in float32).
    pg_iters, max_iter : projected-gradient warm-start steps and active-set iterations.

    Examples
    --------
    >>> import jax.numpy as jnp, minstab.papers.implicit_bias as ib
    >>> x = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    >>> r = ib.min_norm_interpolant(x, jnp.array([2.0, 0.0, 1.0]))
    >>> bool(r.converged), r.w.round(3).tolist()
    (True, [2.0, -0.5, -0.5])
    """
    x, y = as_labelled_data(x, y, labels="nonneg")
    pg_iters = check_count(pg_iters, "pg_iters", 0)
    max_iter = check_count(max_iter, "max_iter")
    if tol is None:
        tol = 1e-8 if x.dtype == jnp.float64 else 1e-4
    check_positive(tol, "tol")
    return _min_norm_jit(x, y, jnp.asarray(tol, x.dtype), pg_iters=pg_iters, max_iter=max_iter)


class NeuronGDResult(NamedTuple):
    """GD on a single ReLU neuron with square loss.

    Attributes
    ----------
    w : (d,) final weights, ``w_0 + X^T alpha``.
    alpha : (n,) data-span coefficients.
    loss : final loss ``(1/2n) sum_i (sigma(w.x_i) - y_i)^2``.
    active : (n,) bool, ``w.x_i > 0`` at the end (the final activation pattern).
    loss_log : (num_logs,) loss at ``log_step``.
    log_step : (num_logs,) steps of the log entries.
    interpolated : ``loss <= tol``: GD reached a global minimum (a positive-label point that
        is inactive early can stay inactive forever; then it did not).
    """

    w: jax.Array
    alpha: jax.Array
    loss: jax.Array
    active: jax.Array
    loss_log: jax.Array
    log_step: jax.Array
    interpolated: jax.Array


def _neuron_step(k, p0, y, eta):
    """The GD update step on the data-span coefficients, ``step(alpha, t) -> (alpha', L(alpha))``.

    ``w = w_0 + X^T alpha``, ``z = X w = p0 + K alpha`` with ``p0 = X w_0``. grad_w L =
    (1/n) sum_i (sigma(z_i) - y_i) sigma'(z_i) x_i, so alpha moves by -(eta/n) r_i sigma'(z_i).
    sigma'(0) = 1 lets GD start from w_0 = 0 (the limit of a vanishing initialization): the
    first step is then (eta/n) X^T y.
    """
    n = y.shape[0]

    def step(alpha, _):
        z = p0 + k @ alpha
        r = jnp.maximum(z, 0) - y
        return alpha - (eta / n) * jnp.where(z >= 0, r, 0), 0.5 * jnp.mean(r * r)

    return step


def _neuron_loss(k, p0, y, alpha):
    r = jnp.maximum(p0 + k @ alpha, 0) - y
    return 0.5 * jnp.mean(r * r)


def _neuron_gd(k, p0, y, eta, *, chunks, tol):
    # the skeleton (minstab.engine.loop): blocks between log steps, frozen at a non-finite or huge loss
    step = _neuron_step(k, p0, y, eta)
    r = run_blocks(step, jnp.zeros(y.shape[0], k.dtype), chunks,
                 record=functools.partial(_neuron_loss, k, p0, y))  # fmt: skip
    loss = _neuron_loss(k, p0, y, r.carry)
    return r.carry, loss, p0 + k @ r.carry > 0, r.log, loss <= tol


@functools.partial(jax.jit, static_argnames=("steps_at",))
def _neuron_jit(x, y, w0, eta, tol, *, steps_at):
    chunks = jnp.asarray(np.diff(np.asarray(steps_at)), jnp.int32)
    alpha, loss, active, losses, ok = _neuron_gd(x @ x.T, x @ w0, y, eta, chunks=chunks, tol=tol)
    step = jnp.asarray(steps_at[1:])
    return NeuronGDResult(w0 + x.T @ alpha, alpha, loss, active, losses, step, ok)


def gd_single_neuron(
    x,
    y,
    eta,
    *,
    w0=None,
    steps: int = 5000,
    num_logs: int = 30,
    tol: float | None = None,
) -> NeuronGDResult:
    """GD on ``L(w) = (1/2n) sum_i (sigma(w.x_i) - y_i)^2`` for one ReLU neuron (seed 002).

    Runs exactly in the data-span coefficients (``w = w_0 + X^T alpha``), O(n^2) per step.
    ``sigma'(0) = 1``, so the default ``w0 = 0`` (the vanishing-initialization limit) starts
    with the step ``(eta/n) X^T y``; a random ``w0`` fixes an initial activation pattern
    instead, and positive-label points inactive under it never receive gradient.

    Parameters
    ----------
    x, y : (n, d) inputs and (n,) labels ``>= 0``.
    eta : step size (> 0). Per-point curvature is ``||x_i||^2 / n``; ``eta > n / ||x_i||^2``
        overshoots each point's own residual.
    w0 : (d,) initial weights (default 0).
    steps, num_logs : GD steps and the number of (geometrically spaced) loss log entries.
    tol : loss level counted as a global minimum (default ``1e-12`` float64, ``1e-6`` float32).

    The steps run in the training skeleton (:mod:`minstab.engine.loop`): a run whose loss becomes
    non-finite or exceeds :data:`minstab.engine.loop.DIVERGE_ABOVE` is frozen at that iterate.
    """
    x, y = as_labelled_data(x, y, labels="nonneg")
    check_positive(eta, "eta")
    w0 = jnp.zeros(x.shape[1], x.dtype) if w0 is None else jnp.asarray(w0, x.dtype)
    if w0.shape != (x.shape[1],):
        raise ValueError(f"w0 must have shape (d,) = ({x.shape[1]},), got {w0.shape}")
    check_finite(w0, "w0")
    steps = check_count(steps, "steps")
    num_logs = check_count(num_logs, "num_logs")
    if tol is None:
        tol = 1e-12 if x.dtype == jnp.float64 else 1e-6
    check_positive(tol, "tol")
    at = tuple(int(t) for t in log_steps(steps, num_logs + 1))
    eta = jnp.asarray(eta, x.dtype)
    return _neuron_jit(x, y, w0, eta, jnp.asarray(tol, x.dtype), steps_at=at)


def relative_gap(w, w_ref) -> jax.Array:
    """``||w - w_ref|| / ||w_ref||`` (seed 002's gap between GD and the minimum-norm solution)."""
    w, w_ref = jnp.asarray(w), jnp.asarray(w_ref)
    check_finite(w, "w")
    check_finite(w_ref, "w_ref")
    if w.shape != w_ref.shape:
        raise ValueError(f"w and w_ref must have the same shape, got {w.shape} and {w_ref.shape}")
    return jnp.linalg.norm(w - w_ref) / jnp.linalg.norm(w_ref)


class TeacherData(NamedTuple):
    """Gaussian inputs with covariance ``diag(spectrum)`` and teacher labels ``sigma(w*.x)``.

    Attributes
    ----------
    x : (n, d) inputs, rows ``x_i ~ N(0, Sigma)`` with ``Sigma = diag(spectrum)``.
    y : (n,) labels ``max(w*.x_i, 0)``.
    w_star : (d,) teacher.
    trace : ``tr Sigma`` of the input covariance.
    """

    x: jax.Array
    y: jax.Array
    w_star: jax.Array
    trace: jax.Array


def teacher_data(key, n: int, d: int, *, decay: float = 0.0, dtype=None) -> TeacherData:
    """Seed-002 data: ``x_i ~ N(0, Sigma)``, ``Sigma = diag(k^-decay)`` (top eigenvalue 1), teacher labels.

    ``decay = 0`` is isotropic (``tr Sigma = d``). The teacher is ``w* ~ N(0, I_d / tr Sigma)``,
    so the labels ``y_i = max(w*.x_i, 0)`` are O(1) whatever the spectrum. About half of the
    labels are 0, which makes the inequality constraints of (5) matter.
    """
    check_key(key)
    n, d = check_count(n, "n"), check_count(d, "d")
    decay = check_real(decay, "decay", lo=0.0)
    dtype = float_dtype(dtype)
    check_memory(2.0 * n * d * jnp.dtype(dtype).itemsize, "n", f"{n} x {d} inputs")
    spec = jnp.arange(1, d + 1, dtype=dtype) ** (-decay)
    kx, kw = jax.random.split(key)
    x = jax.random.normal(kx, (n, d), dtype) * jnp.sqrt(spec)[None, :]
    tr = jnp.sum(spec)
    w_star = jax.random.normal(kw, (d,), dtype) / jnp.sqrt(tr)
    return TeacherData(x, jnp.maximum(x @ w_star, 0), w_star, tr)


class GapResult(NamedTuple):
    """GD from ``w_0 = 0`` on one ReLU neuron against the minimum-norm global minimum (eq. 5).

    Attributes
    ----------
    gap : ``||w_GD - w_mn|| / ||w_mn||`` (seed 002's quantity).
    loss : final GD loss.
    reached : ``loss <= tol``: GD is at a global minimum.
    kkt_residual : of the minimum-norm solution (:class:`MinNormResult`).
    certified : ``kkt_residual <= tol_kkt``: ``w_mn`` is the QP optimum up to rounding.
    stability : ``eta * lambda_max(H) / 2`` with ``H = X_A^T X_A / n`` the loss Hessian on the
        final active set A (points with ``w.x_i > 0`` or ``y_i > 0``); below 1 the minimum GD
        reached is linearly stable (Lemma 1 of seed 004, for this model).
    released : zero-label points that GD pushed down (``alpha_i < 0``) and then switched off
        (``w.x_i < 0``): they break complementarity in (6), the only way GD from 0 can end away
        from ``w_mn`` at a global minimum (see :func:`gd_gap`).
    """

    gap: jax.Array
    loss: jax.Array
    reached: jax.Array
    kkt_residual: jax.Array
    certified: jax.Array
    stability: jax.Array
    released: jax.Array


def gd_gap_kernel(k, y, eta, *, steps, tol, tol_kkt):
    """Traceable core of :func:`gd_gap` (no input checks; the experiment vmaps it over runs)."""
    n = y.shape[0]
    dt = k.dtype

    # GD on w = X^T alpha from w_0 = 0 (p0 = 0), sigma'(0) = 1, in the skeleton (minstab.engine.loop)
    zero = jnp.zeros(n, dt)
    alpha = block_steps(_neuron_step(k, zero, y, eta), zero, new_status(dt), steps)[0]
    z = k @ alpha
    loss = _neuron_loss(k, zero, y, alpha)
    a_mn, _, kkt, _, certified, _ = _min_norm_dual(k, y, pg_iters=50, max_iter=16, tol=tol_kkt)
    # ||X^T delta||^2 = delta^T K delta: the gap never needs the d-dimensional vectors
    delta = alpha - a_mn
    gap = jnp.sqrt(jnp.maximum(delta @ k @ delta, 0) / (a_mn @ k @ a_mn))
    active = (z > 0) | (y > 0)
    k_a = jnp.where(active[:, None] & active[None, :], k, 0)
    stability = eta * jnp.linalg.eigvalsh(k_a)[-1] / (2 * n)
    released = jnp.sum((y <= 0) & (alpha < 0) & (z < 0))
    return GapResult(gap, loss, loss <= tol, kkt, certified, stability, released)


@functools.partial(jax.jit, static_argnames=("steps",))
def _gd_gap_jit(k, y, eta, tol, tol_kkt, *, steps):
    return gd_gap_kernel(k, y, eta, steps=steps, tol=tol, tol_kkt=tol_kkt)


def gd_gap(k, y, eta, *, steps: int = 4000, tol: float | None = None) -> GapResult:
    """GD from 0 on a ReLU neuron and its gap to the minimum-norm global minimum, from the Gram matrix.

    Everything lives in the data span: GD from ``w_0 = 0`` keeps ``w = X^T alpha`` (module
    docstring), the minimum-norm solution is ``X^T alpha_mn`` (dual (6)), and
    ``||X^T delta||^2 = delta^T K delta``; so only ``K = X X^T`` (n x n) is needed, and new
    data of any dimension d reuse the compiled program. Pure and static-shaped: ``jax.vmap``
    over stacks of ``K``, ``y`` and ``eta``.

    Why the gap is not zero. If the activation of no zero-label point flips from on to off, GD's
    limit satisfies the KKT conditions of (5) exactly (``alpha_i <= 0`` on Z because GD only
    pushes active zero-label points down; ``alpha_i = 0`` on the points it never touched), so it
    *is* ``w_mn`` and the gap is zero up to rounding. A gap needs released points
    (:attr:`GapResult.released`).

    Parameters
    ----------
    k : (n, n) Gram matrix ``X X^T``. y : (n,) labels ``>= 0``.
    eta : step size (> 0).
    steps : GD steps (in the skeleton :mod:`minstab.engine.loop`: a run whose loss becomes non-finite
        or exceeds :data:`minstab.engine.loop.DIVERGE_ABOVE` is frozen at that iterate).
    tol : loss level counted as a global minimum, also the KKT tolerance of ``w_mn`` (default
        ``1e-12`` and ``1e-8`` in float64, ``1e-6`` and ``1e-4`` in float32).

    Examples
    --------
    >>> import jax.numpy as jnp, minstab.papers.min_norm as mn
    >>> x = jnp.eye(4, 6) * jnp.arange(1.0, 5.0)[:, None]  # orthogonal data: GD is min-norm
    >>> r = mn.gd_gap(x @ x.T, jnp.array([1.0, 0.0, 2.0, 0.5]), 0.1)
    >>> bool(r.reached), bool(r.gap < 1e-6), int(r.released)
    (True, True, 0)
    """
    k = jnp.asarray(k)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"k must be a square (n, n) Gram matrix, got shape {k.shape}")
    k = k.astype(jnp.zeros(()).dtype) if not jnp.issubdtype(k.dtype, jnp.floating) else k
    check_finite(k, "k")
    y = jnp.asarray(y, k.dtype)
    if y.shape != (k.shape[0],):
        raise ValueError(f"y must have shape ({k.shape[0]},) to match k {k.shape}, got {y.shape}")
    check_finite(y, "y")
    check_positive(eta, "eta")
    steps = check_count(steps, "steps")
    f64 = k.dtype == jnp.float64
    tol_kkt = 1e-8 if f64 else 1e-4
    if tol is None:
        tol = 1e-12 if f64 else 1e-6
    eta = jnp.asarray(eta, k.dtype)
    return _gd_gap_jit(k, y, eta, jnp.asarray(tol, k.dtype), jnp.asarray(tol_kkt, k.dtype),
                       steps=steps)  # fmt: skip
