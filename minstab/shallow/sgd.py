"""SGD at interpolating minima: exact mean-square stability threshold, non-uniformity (THEORY §6).

Per-sample losses l_i(theta) = (f(x_i) - y_i)^2 / 2 have Hessians
H_i = g_i g_i^T + r_i grad^2 f(x_i) (g_i = grad f(x_i), r_i = f(x_i) - y_i), and the full-batch
Hessian of :func:`minstab.quadratic_loss` is H = (1/n) sum_i H_i. At an interpolating minimum
(r = 0) H_i = g_i g_i^T, the Gauss-Newton term.

Mulayoff & Michaeli (COLT 2024). Linearized SGD at a minimum, e <- (I - eta H_hat) e with
H_hat = (1/B) sum_{i in batch} H_i, has second moment
Sigma <- E[(I - eta H_hat) Sigma (I - eta H_hat)] = Sigma - 2 eta C(Sigma) + eta^2 D(Sigma), with
C = (H (x) I + I (x) H)/2 and D = E[H_hat (x) H_hat] = (1 - p) H (x) H + p (1/n) sum_i H_i (x) H_i,
p = (n - B)/(B (n - 1)) for a batch of B distinct indices (P(i, j in batch) = B(B-1)/(n(n-1)))
and p = 1/B for B i.i.d. uniform indices (with replacement). Mean-square stable iff
eta <= eta* = 2 / lambda_max(C^+ D).

Everything lives in span(Phi), Phi = [g_1 ... g_n]. With the Gram G = Phi^T Phi = U Lam U^T,
Q = Phi U Lam^{-1/2} has orthonormal columns and H = Q (Lam/n) Q^T, H_i = Q b_i b_i^T Q^T with
b_i = Lam^{1/2} U^T e_i. In the isometric coordinates Sigma = Q M Q^T (M symmetric n x n):

    C(M) = (lam_k + lam_l)/(2n) * M                     (entrywise: C is diagonal here)
    D(M) = (1 - p) Lam M Lam / n^2 + (p/n) sum_i (b_i^T M b_i) b_i b_i^T

Both are self-adjoint in the Frobenius inner product, so lambda_max(C^+ D) is the top eigenvalue
of the symmetric n^2 x n^2 operator K = C^{-1/2} D C^{-1/2}: a dense ``eigh`` or Lanczos on n x n
matrices, never a P^2 x P^2 matrix. The one-step map T = I - 2 eta C + eta^2 D is symmetric too;
its spectral radius is the per-step growth factor of E||e||^2 (<= 1 iff eta <= eta*).
"""

from __future__ import annotations

import functools
import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import (
    check_bool,
    check_choice,
    check_data_dtype,
    check_int,
    check_memory,
    check_positive,
    check_tol,
)
from ..engine.eigen import SOLVERS, EigResult, default_tol, dense_eigenpairs, materialize, solve
from ..engine.loop import block_steps, new_status
from .curvature import hvp, jacobian
from .nets import ShallowParams, check_slope, flatten, forward, unflatten, validate

__all__ = [
    "SGDThreshold",
    "sgd_stability_threshold",
    "batch_noise_p",
    "mean_square_rate",
    "mean_square_trajectory",
    "NonUniformity",
    "non_uniformity",
    "SGDSimulation",
    "simulate_linear_sgd",
    "simulate_sgd",
    "SIMULATION_INITS",
    "THRESHOLD_METHODS",
    "NON_UNIFORMITY_METHODS",
]

THRESHOLD_METHODS = tuple(SOLVERS)  # ("dense", "lanczos", "power")


# ----------------------------------------------------------------------------- validation


def _check_batch_size(batch_size, n: int) -> int:
    try:
        b = operator.index(batch_size)
    except TypeError:
        b = None
    if b is None or isinstance(batch_size, bool) or not 1 <= b <= n:
        raise ValueError(f"batch_size must be an integer in 1..n = 1..{n}, got {batch_size!r}")
    return int(b)


def _check_eta(eta, name: str = "eta"):
    if jnp.ndim(eta) != 0:
        raise ValueError(f"{name} must be a scalar, got shape {jnp.shape(eta)}")
    check_positive(eta, name)


def _check_steps(steps, per_step: int = 1) -> int:
    """A positive number of steps whose ``per_step``-float history fits in memory."""
    try:
        s = operator.index(steps)
    except TypeError:
        s = None
    if s is None or isinstance(steps, bool) or s < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    nbytes = 8.0 * s * per_step
    check_memory(nbytes, "steps", f"a history of {s} steps x {per_step} values")
    return int(s)


def _check_replacement(replacement) -> bool:
    """A bool (``"no"`` would mean True)."""
    check_bool(replacement, "replacement")
    return bool(replacement)


def _check_solver(num_iters, tol, negative_slope):
    return (check_int(num_iters, "num_iters", minimum=1, none=True), check_tol(tol),
            check_slope(negative_slope))  # fmt: skip


def _check_keys(keys):
    if not (
        isinstance(keys, jax.Array)
        and jnp.issubdtype(keys.dtype, jax.dtypes.prng_key)
        and keys.ndim == 1
        and keys.shape[0] >= 1
    ):
        raise ValueError(
            "keys must be a 1-D array of typed PRNG keys, one per seed, e.g. "
            f"jax.random.split(jax.random.key(0), 64); got {getattr(keys, 'shape', keys)!r}"
        )


def _inputs(params, x, y):
    x, y = validate(params, x, y)
    check_data_dtype(x, y, params.w1.dtype)
    return x, y


# ----------------------------------------------------------------------------- threshold


class SGDThreshold(NamedTuple):
    """Exact mean-square stability threshold of SGD at an interpolating minimum.

    Attributes
    ----------
    eta_star : 2 / lambda_max(C^+ D): linearized SGD is mean-square stable iff eta <= eta_star.
    lambda_max : lambda_max(C^+ D) (= sharpness at B = n).
    residual : ||K v - lambda v|| of the computed eigenpair of the symmetric reduced operator.
    converged : the eigen-solver met its tolerance.
    fit_residual : max_i |f(x_i) - y_i|; the formula assumes it is ~0 (interpolation).
    method : ``"dense"``, ``"lanczos"`` or ``"power"``.
    batch_size : B.
    replacement : whether batches are drawn with replacement.
    """

    eta_star: jax.Array
    lambda_max: jax.Array
    residual: jax.Array
    converged: jax.Array
    fit_residual: jax.Array
    method: str
    batch_size: int
    replacement: bool


def batch_noise_p(n: int, batch_size: int, replacement: bool = False) -> float:
    """The p of THEORY §6: (n - B)/(B (n - 1)) without replacement, 1/B with replacement.

    It is 0 at B = n without replacement (full-batch GD) and 1 at B = 1.
    """
    n = check_int(n, "n", minimum=1)
    b = _check_batch_size(batch_size, n)
    if _check_replacement(replacement):
        return 1.0 / b
    return 0.0 if n == 1 else (n - b) / (b * (n - 1))


class _Reduced(NamedTuple):
    lam: jax.Array  # eigenvalues of G (0 beyond the numerical rank)
    u: jax.Array  # eigenvectors of G
    b: jax.Array  # columns b_i = Lam^{1/2} U^T e_i
    c: jax.Array  # C, entrywise
    w: jax.Array  # C^{-1/2}, entrywise (0 off the span)
    both: jax.Array  # mask of span (x) span


def _reduced(j):
    """Isometric coordinates of span(Phi): eigenvalues lam of G, columns b_i, masks (see top)."""
    n = j.shape[0]
    lam, u = jnp.linalg.eigh(j @ j.T)
    # numerical rank of G: C^+ acts only on span(Phi) (x) span(Phi)
    keep = lam > n * jnp.finfo(j.dtype).eps * jnp.maximum(lam[-1], jnp.finfo(j.dtype).tiny)
    lam = jnp.where(keep, lam, 0)
    b = jnp.sqrt(lam)[:, None] * u.T  # column i is b_i
    both = keep[:, None] & keep[None, :]
    c = (lam[:, None] + lam[None, :]) / (2 * n)  # C in these coordinates (entrywise)
    w = jnp.where(both, 1 / jnp.sqrt(jnp.where(both, c, 1)), 0)  # C^{-1/2} on the span
    return _Reduced(lam, u, b, c, w, both)


def _apply_d(m, lam, b, p):
    n = lam.shape[0]
    bmb = jnp.einsum("ki,kl,li->i", b, m, b)  # b_i^T M b_i
    return (1 - p) * lam[:, None] * m * lam[None, :] / n**2 + (p / n) * (b * bmb[None, :]) @ b.T


def _t_apply(m, r, p, eta):
    """One step of the second moment, M -> M - 2 eta C(M) + eta^2 D(M), on span (x) span."""
    m = jnp.where(r.both, (m + m.T) / 2, 0)
    return jnp.where(r.both, m - 2 * eta * r.c * m + eta**2 * _apply_d(m, r.lam, r.b, p), 0)


def _k_matvec(v, lam, b, w, p):
    """K = C^{-1/2} D C^{-1/2} on symmetric n x n matrices (antisymmetric parts are mapped to 0)."""
    n = lam.shape[0]
    m = v.reshape(n, n)
    m = w * (m + m.T) / 2
    return (w * _apply_d(m, lam, b, p)).reshape(-1)


@functools.partial(jax.jit, static_argnames=("method", "num_iters", "tol"))
def _threshold_impl(j, p, *, method, num_iters, tol):
    lam, _, b, _, w, both = _reduced(j)
    n = j.shape[0]
    # the Perron eigenvector is PSD, so the identity (on the span) overlaps it
    v0 = jnp.where(both, jnp.eye(n, dtype=j.dtype), 0).reshape(-1)
    # the operator is PSD, so power iteration's dominant eigenvalue is the largest one
    r = solve(method, _k_matvec, v0, lam, b, w, p, num_iters=num_iters, tol=tol,
              budgets={"power": 20000})  # fmt: skip
    return 2 / r.value, r.value, r.residual, r.converged


def sgd_stability_threshold(
    params: ShallowParams,
    x: jax.Array,
    y: jax.Array,
    batch_size: int,
    *,
    replacement: bool = False,
    method: str = "dense",
    num_iters: int | None = None,
    tol: float | None = None,
    negative_slope: float = 0.0,
) -> SGDThreshold:
    """Largest eta for which linearized SGD is mean-square stable (Mulayoff & Michaeli 2024).

    eta* = 2 / lambda_max(C^+ D) at an interpolating minimum (THEORY §6), computed on n x n
    matrices in the span of the tangent features (module docstring). eta* = 2/sharpness at
    ``batch_size = n`` without replacement and is non-decreasing in B.

    Parameters
    ----------
    params, x, y : an (approximately) interpolating network and its data.
    batch_size : B in 1..n.
    replacement : batches of B i.i.d. uniform indices (True) or B distinct ones (False).
    method : ``"dense"`` (``eigh`` of the n^2 x n^2 reduced operator), ``"lanczos"`` (matrix-free
        on n x n matrices) or ``"power"``.
    num_iters, tol : iteration budget and relative residual tolerance of the iterative methods.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, minstab as ms
    >>> p = ms.ShallowParams(jnp.array([[1.0], [1.0]]), jnp.array([0.0, -1.0]),
    ...                      jnp.array([1.0, 1.0]), jnp.array(0.0))
    >>> x = jnp.array([0.5, 2.0]); y = ms.forward(p, x)
    >>> r = ms.sgd_stability_threshold(p, x, y, 2)
    >>> bool(jnp.isclose(r.eta_star, 2 / ms.sharpness(p, x, y, method="gram")))
    True
    """
    check_choice(method, "method", tuple(SOLVERS))
    num_iters, tol, negative_slope = _check_solver(num_iters, tol, negative_slope)
    x, y = _inputs(params, x, y)
    n = x.shape[0]
    b = _check_batch_size(batch_size, n)
    p = batch_noise_p(n, b, _check_replacement(replacement))
    j = jacobian(params, x, negative_slope=negative_slope)
    tol = default_tol(j.dtype) if tol is None else float(tol)
    es, lm, res, conv = _threshold_impl(
        j, jnp.asarray(p, j.dtype), method=method, num_iters=num_iters, tol=tol
    )
    fit = jnp.max(jnp.abs(forward(params, x, negative_slope=negative_slope) - y))
    return SGDThreshold(es, lm, res, conv, fit, method, b, _check_replacement(replacement))


def threshold_kernel(params, x, p, negative_slope=0.0):
    """eta* of a (batched, traced) network for a traced p; dense method (for vmapped sweeps)."""
    j = jacobian(params, x, negative_slope=negative_slope)
    return _threshold_impl(j, p, method="dense", num_iters=None, tol=default_tol(j.dtype))[0]


@jax.jit
def _rate_impl(j, p, eta):
    r = _reduced(j)
    n = j.shape[0]
    t = lambda v: _t_apply(v.reshape(n, n), r, p, eta).reshape(-1)  # noqa: E731
    ev = jnp.linalg.eigvalsh(materialize(t, n * n, j.dtype))
    return jnp.maximum(jnp.abs(ev[0]), jnp.abs(ev[-1]))


def mean_square_rate(
    params: ShallowParams,
    x: jax.Array,
    y: jax.Array,
    eta,
    batch_size: int,
    *,
    replacement: bool = False,
    negative_slope: float = 0.0,
) -> jax.Array:
    """Per-step growth factor rho of E||e||^2 for linearized SGD at an interpolating minimum.

    rho is the spectral radius of Sigma -> Sigma - 2 eta C(Sigma) + eta^2 D(Sigma) on span(Phi)
    (THEORY §6), so E||e_t||^2 ~ rho^t: rho <= 1 iff eta <= eta*. At B = n (GD) it is
    max_i (1 - eta a_i)^2 over the non-zero Hessian eigenvalues a_i.
    """
    negative_slope = check_slope(negative_slope)
    x, y = _inputs(params, x, y)
    _check_eta(eta)
    n = x.shape[0]
    p = batch_noise_p(n, _check_batch_size(batch_size, n), _check_replacement(replacement))
    j = jacobian(params, x, negative_slope=negative_slope)
    return _rate_impl(j, jnp.asarray(p, j.dtype), jnp.asarray(eta, j.dtype))


# ----------------------------------------------------------------------------- non-uniformity


class NonUniformity(NamedTuple):
    """Wu-Ma-E non-uniformity s = lambda_max((1/n) sum_i H_i^2 - H^2)^{1/2}.

    Attributes
    ----------
    value : s.
    variance : lambda_max((1/n) sum_i H_i^2 - H^2) = s^2 (the matrix is PSD: it is the
        variance (1/n) sum_i (H_i - H)^2 of the per-sample Hessians).
    residual : ||A v - lambda v|| of the computed eigenpair.
    converged : the eigen-solver met its tolerance.
    num_matvecs : products with A = (1/n) sum_i H_i^2 - H^2 (each costs 3n per-sample HVPs).
    method : ``"lanczos"``, ``"power"`` or ``"gram"``.
    """

    value: jax.Array
    variance: jax.Array
    residual: jax.Array
    converged: jax.Array
    num_matvecs: jax.Array
    method: str


def _sample_loss(theta, xi, yi, k, d, negative_slope):
    """l_i = (f(x_i) - y_i)^2 / 2 for one sample, as a function of the flat parameters."""
    r = forward(unflatten(theta, k, d), xi[None, :], negative_slope=negative_slope)[0] - yi
    return 0.5 * r * r


def _variance_matvec(v, theta, x, y, k, d, negative_slope):
    """The product (1/n) sum_i H_i (H_i v) - H (H v), by vmapped per-sample HVPs (never P x P)."""
    loss = functools.partial(_sample_loss, k=k, d=d, negative_slope=negative_slope)

    def h(u, xi, yi):  # H_i u, forward-over-reverse
        return hvp(loss, theta, u, xi, yi)

    hv = jax.vmap(h, in_axes=(None, 0, 0))(v, x, y)  # rows H_i v
    h2v = jnp.mean(jax.vmap(h)(hv, x, y), axis=0)  # (1/n) sum_i H_i^2 v
    hhv = jnp.mean(jax.vmap(h, in_axes=(None, 0, 0))(jnp.mean(hv, axis=0), x, y), axis=0)
    return h2v - hhv


def _variance_gram(theta, x, y, *, method, num_iters, tol, k, d, negative_slope) -> EigResult:
    """Closed form at interpolation, H_i = g_i g_i^T (module docstring), on n x n matrices."""
    params = unflatten(theta, k, d)
    j = jacobian(params, x, negative_slope=negative_slope)
    n = x.shape[0]
    lam, _, b, _, _, _ = _reduced(j)
    a = (b * jnp.sum(b * b, axis=0)[None, :]) @ b.T / n - jnp.diag(lam**2) / n**2
    return dense_eigenpairs((a + a.T) / 2)


def _variance_solve(theta, x, y, *, method, num_iters, tol, k, d, negative_slope) -> EigResult:
    """Matrix-free: an eigen-solver of :data:`minstab.engine.eigen.SOLVERS` on :func:`_variance_matvec`."""
    mv = functools.partial(_variance_matvec, k=k, d=d, negative_slope=negative_slope)
    v0 = jax.random.normal(jax.random.key(0), theta.shape, theta.dtype)
    # A is PSD, so power iteration's dominant eigenvalue is the largest one
    return solve(method, mv, v0, theta, x, y, num_iters=num_iters, tol=tol,
                 budgets={"power": 5000})  # fmt: skip


_VARIANCE = {"lanczos": _variance_solve, "power": _variance_solve, "gram": _variance_gram}
NON_UNIFORMITY_METHODS = tuple(_VARIANCE)


@functools.partial(
    jax.jit, static_argnames=("method", "num_iters", "tol", "k", "d", "negative_slope")
)
def _non_uniformity_impl(theta, x, y, *, method, num_iters, tol, k, d, negative_slope):
    r = _VARIANCE[method](
        theta, x, y, method=method, num_iters=num_iters, tol=tol, k=k, d=d,
        negative_slope=negative_slope,
    )  # fmt: skip
    return r.value, r.residual, r.converged, r.num_matvecs


def non_uniformity(
    params: ShallowParams,
    x: jax.Array,
    y: jax.Array,
    *,
    method: str = "lanczos",
    num_iters: int | None = None,
    tol: float | None = None,
    negative_slope: float = 0.0,
) -> NonUniformity:
    """Wu, Ma & E (2018) non-uniformity s = lambda_max((1/n) sum_i H_i^2 - H^2)^{1/2}.

    H_i is the Hessian of the per-sample loss (f(x_i) - y_i)^2 / 2 and H = (1/n) sum_i H_i the
    Hessian of :func:`minstab.quadratic_loss` (module docstring; at an interpolating minimum
    H_i = g_i g_i^T). SGD with batch size B and step eta is linearly stable only if
    sharpness <= 2/eta and, roughly, s <= sqrt(B)/eta (THEORY §6).

    ``method="lanczos"`` (default) and ``"power"`` are matrix-free: each product applies
    v -> (1/n) sum_i H_i (H_i v) - H (H v) with vmapped per-sample HVPs, valid at any point.
    ``"gram"`` is the closed form on n x n matrices, exact only at interpolating minima.
    """
    check_choice(method, "method", tuple(_VARIANCE))
    num_iters, tol, negative_slope = _check_solver(num_iters, tol, negative_slope)
    x, y = _inputs(params, x, y)
    k, d = params.w1.shape
    tol = default_tol(x.dtype) if tol is None else float(tol)
    var, res, conv, nmv = _non_uniformity_impl(
        flatten(params), x, y, method=method, num_iters=num_iters, tol=tol, k=int(k), d=int(d),
        negative_slope=float(negative_slope),
    )  # fmt: skip
    return NonUniformity(jnp.sqrt(jnp.maximum(var, 0)), var, res, conv, nmv, method)


# ----------------------------------------------------------------------------- simulations


class SGDSimulation(NamedTuple):
    """Mean-square distance to the minimum after ``steps`` SGD steps, over seeds.

    With array-valued ``eta``/``batch_size``/``replacement``/``steps`` every field gets a
    leading axis of configurations.

    Attributes
    ----------
    ratio : mean_s ||theta_T - theta*||^2 / mean_s ||theta_0 - theta*||^2 over the seeds s.
        The verdict rule used throughout minstab: ``ratio < 1`` is "bounded" (stable),
        ``ratio > 1`` is "grows" (unstable).
    median : median over seeds of ||theta_T - theta*||^2 / mean_s ||theta_0 - theta*||^2.
    predicted : the same ratio for linearized SGD computed exactly from the second-moment
        recursion Sigma <- Sigma - 2 eta C(Sigma) + eta^2 D(Sigma) (THEORY §6), no sampling.
    final : (S,) per-seed ||theta_T - theta*||^2 / mean_s ||theta_0 - theta*||^2.
    diverged : (S,) runs stopped by the divergence guard (real SGD only; else all False).
    """

    ratio: jax.Array
    median: jax.Array
    predicted: jax.Array
    final: jax.Array
    diverged: jax.Array

    @property
    def verdict(self):
        """``"bounded"`` where ``ratio < 1``, else ``"grows"`` (a str, or an array of them)."""
        v = np.where(np.asarray(self.ratio) < 1, "bounded", "grows")
        return str(v) if v.ndim == 0 else v


SIMULATION_INITS = ("critical", "span")


def _initial(j, p, init):
    """Factor F (P x n) of the initial covariance: e_0 = F z, z ~ N(0, I_n).

    E[e_0 e_0^T] = Q M_0 Q^T with tr M_0 = 1 (so E||e_0||^2 = 1). ``"critical"``: M_0 is the
    Perron eigenmatrix of C^+ D, the mode that decides mean-square stability. From it
    E||e_1||^2 - 1 = -eta (2 - 2 eta / eta*) tr C(M_0), which has the sign of eta - eta*, so a
    short horizon shows the threshold without waiting for slower modes to die out.
    ``"span"``: M_0 proportional to Phi^T Phi, i.e. e_0 = Phi c / sqrt(tr G), c ~ N(0, I).
    """
    r = _reduced(j)
    n = j.shape[0]
    if init == "critical":
        _, vec = jnp.linalg.eigh(materialize(_k_matvec, n * n, j.dtype, r.lam, r.b, r.w, p))
        m0 = r.w * vec[:, -1].reshape(n, n)  # C^{-1/2} u is an eigenmatrix of C^+ D
        m0 = (m0 + m0.T) / 2
    else:
        m0 = jnp.diag(r.lam)
    m0 = m0 / jnp.trace(m0)  # also fixes the eigenvector's sign (it is PSD)
    ev, vv = jnp.linalg.eigh(m0)
    half = (vv * jnp.sqrt(jnp.maximum(ev, 0))[None, :]) @ vv.T
    keep = r.lam > 0
    inv = jnp.where(keep, 1 / jnp.sqrt(jnp.where(keep, r.lam, 1)), 0)
    q = j.T @ (r.u * inv[None, :])  # orthonormal basis Q of span(Phi), P x n
    return q @ half, m0, r


def _predicted(m0, r, p, eta, steps):
    return jnp.trace(jax.lax.fori_loop(0, steps, lambda _, m: _t_apply(m, r, p, eta), m0))


@functools.partial(jax.jit, static_argnames=("steps", "init"))
def _trajectory_impl(j, p, eta, *, steps, init):
    _, m0, r = _initial(j, p, init)

    def step(m, _):
        m = _t_apply(m, r, p, eta)
        return m, jnp.trace(m)

    return jax.lax.scan(step, m0, None, length=steps)[1]


def mean_square_trajectory(
    params: ShallowParams,
    x: jax.Array,
    y: jax.Array,
    eta,
    batch_size: int,
    *,
    steps: int,
    replacement: bool = False,
    init: str = "critical",
    negative_slope: float = 0.0,
) -> jax.Array:
    """Exact E||e_t||^2, t = 1..steps, of linearized SGD at an interpolating minimum.

    Iterates the second-moment recursion Sigma <- Sigma - 2 eta C(Sigma) + eta^2 D(Sigma)
    (THEORY §6) from the initial covariance of :func:`simulate_linear_sgd` (E||e_0||^2 = 1).
    No sampling: this is what the simulations estimate.
    """
    check_choice(init, "init", SIMULATION_INITS)
    negative_slope = check_slope(negative_slope)
    x, y = _inputs(params, x, y)
    _check_eta(eta)
    n = x.shape[0]
    p = batch_noise_p(n, _check_batch_size(batch_size, n), _check_replacement(replacement))
    j = jacobian(params, x, negative_slope=negative_slope)
    return _trajectory_impl(
        j, jnp.asarray(p, j.dtype), jnp.asarray(eta, j.dtype), steps=_check_steps(steps), init=init
    )


def _batch_weights(key, n, b, replacement, dtype):
    """Weights w with H_hat = sum_i w_i H_i for a uniform batch of traced size b <= n.

    The batch is the one :func:`minstab.engine.train.train` draws from the same key: the first b
    entries of ``permutation(key, n)`` (distinct indices) or of ``randint(key, ., 0, n)`` (with
    replacement). ``b`` and ``replacement`` are traced, so one program serves every batch size.
    """
    first = (jnp.arange(n, dtype=jnp.int32) < b).astype(dtype)
    idx = jax.random.randint(key, (n,), 0, n)
    with_repl = jnp.zeros(n, dtype).at[idx].add(first)
    rank = (
        jnp.zeros(n, jnp.int32)
        .at[jax.random.permutation(key, n)]
        .set(jnp.arange(n, dtype=jnp.int32))
    )
    distinct = (rank < b).astype(dtype)
    return jnp.where(replacement, with_repl, distinct) / b.astype(dtype)


def _noise_p_traced(n, b, replacement, dtype):
    """batch_noise_p for a traced batch size and replacement flag."""
    bf = b.astype(dtype)
    without = (n - bf) / (bf * (n - 1)) if n > 1 else 0 * bf
    return jnp.where(replacement, 1 / bf, without)


def _summary(s0, st, predicted, diverged):
    ref = jnp.mean(s0)
    return SGDSimulation(jnp.mean(st) / ref, jnp.median(st) / ref, predicted, st / ref, diverged)


class _SimStatic(NamedTuple):
    """The static options of a simulation program (hashable: one compiled program per value)."""

    init: str
    k: int
    d: int
    negative_slope: float


def _sim_one_config(theta, x, y, eta, b, repl, steps, keys, radius, opts: _SimStatic):
    """All seeds of one (eta, B, replacement, steps) configuration, linearized and real SGD.

    Both runs of a seed share e_0 and the batches (drawn from the same key at each step t).
    """
    n, dt = x.shape[0], x.dtype
    j = jacobian(unflatten(theta, opts.k, opts.d), x, negative_slope=opts.negative_slope)
    p = _noise_p_traced(n, b, repl, dt)
    fac, m0, r = _initial(j, p, opts.init)
    uniform = jnp.full(n, 1 / n, dt)

    def batch_loss(th, w):
        # the mini-batch loss (1/2B) sum_{i in batch} r_i^2 written as sum_i w_i l_i
        li = jax.vmap(lambda xi, yi: _sample_loss(th, xi, yi, opts.k, opts.d,
                                                  opts.negative_slope))(x, y)  # fmt: skip
        return jnp.dot(w, li)

    def one(key):
        e0 = fac @ jax.random.normal(jax.random.fold_in(key, 0), (n,), dt)  # E||e_0||^2 = 1
        batch_key = jax.random.fold_in(key, 1)

        def weights(t):
            return _batch_weights(jax.random.fold_in(batch_key, t), n, b, repl, dt)

        def linear(t, e):  # e <- (I - eta H_hat) e
            return e - eta * j.T @ (weights(t) * (j @ e))

        def real(th, t):
            # theta <- theta - eta grad L_batch; the full-batch loss before the update is the
            # skeleton's divergence test (minstab.engine.loop, train's guard: frozen and flagged)
            w = weights(t)
            return th - eta * jax.grad(batch_loss)(th, w), batch_loss(th, uniform)

        e = jax.lax.fori_loop(0, steps, linear, e0)
        th, status = block_steps(real, theta + radius * e0, new_status(dt), steps)
        er = th - theta
        s0 = jnp.sum(e0 * e0)
        return s0, jnp.sum(e * e), radius**2 * s0, jnp.sum(er * er), status.diverged

    s0, st, r0, rt, dead = jax.vmap(one)(keys)
    pred = _predicted(m0, r, p, eta, steps)
    return _summary(s0, st, pred, jnp.zeros(st.shape, bool)), _summary(r0, rt, pred, dead)


@functools.partial(jax.jit, static_argnames=("opts",))
def _simulate_impl(theta, x, y, etas, bs, repls, steps, keys, radius, opts):
    f = functools.partial(_sim_one_config, opts=opts)
    axes = (None, None, None, 0, 0, 0, 0, None, None)
    return jax.vmap(f, in_axes=axes)(theta, x, y, etas, bs, repls, steps, keys, radius)


def _configs(eta, batch_size, replacement, steps, n):
    """Broadcast scalar-or-1-D eta, batch_size, replacement, steps to C configurations."""
    eta_a = jnp.asarray(eta)
    if eta_a.ndim > 1:
        raise ValueError(f"eta must be a scalar or a 1-D array, got shape {eta_a.shape}")
    check_positive(eta_a, "eta")
    lists, sizes = {}, {eta_a.shape[0]} if eta_a.ndim else set()
    for name, v in (("batch_size", batch_size), ("replacement", replacement), ("steps", steps)):
        if np.ndim(v) > 1:
            raise ValueError(f"{name} must be a scalar or 1-D, got shape {np.shape(v)}")
        lists[name] = list(np.asarray(v, dtype=object).reshape(-1)) if np.ndim(v) else [v]
        if np.ndim(v):
            sizes.add(len(lists[name]))
    if len(sizes - {1}) > 1:
        raise ValueError(
            "eta, batch_size, replacement and steps must be scalars or 1-D with one common "
            f"length, got lengths {sorted(sizes)}"
        )
    c = max(sizes, default=1)
    b = [_check_batch_size(v, n) for v in lists["batch_size"]]
    s = [_check_steps(v) for v in lists["steps"]]
    r = [_check_replacement(v) for v in lists["replacement"]]
    cast = lambda v, dt: jnp.asarray(np.broadcast_to(np.asarray(v, dt), (c,)))  # noqa: E731
    etas = jnp.broadcast_to(eta_a, (c,))
    return etas, cast(b, np.int32), cast(r, bool), cast(s, np.int32), not sizes


class SimulationOptions(NamedTuple):
    """Options of :func:`simulate_kernel` (each of ``steps`` and ``replacement`` a scalar or 1-D).

    Attributes
    ----------
    steps : SGD steps per configuration.
    replacement : batches drawn with replacement, per configuration.
    init : ``"critical"`` or ``"span"`` (:data:`SIMULATION_INITS`).
    radius : the real runs start at theta* + radius * e_0.
    negative_slope : leaky-ReLU slope of the shallow net.
    """

    steps: object = 20
    replacement: object = False
    init: str = "critical"
    radius: float = 1.0
    negative_slope: float = 0.0


def simulate_kernel(params, x, y, eta, batch_size, keys, options=None, **fields):
    """Linearized and real SGD for every configuration (see simulate_linear_sgd/simulate_sgd).

    ``options`` is a :class:`SimulationOptions`, or its ``fields`` are given as keywords.
    """
    o = SimulationOptions(**fields) if options is None else options._replace(**fields)
    check_choice(o.init, "init", SIMULATION_INITS)
    negative_slope = check_slope(o.negative_slope)
    x, y = _inputs(params, x, y)
    etas, bs, rs, st, scalar = _configs(eta, batch_size, o.replacement, o.steps, x.shape[0])
    _check_keys(keys)
    horizon = int(np.max(np.asarray(st)))
    nbytes = 8.0 * horizon * keys.shape[0] * int(etas.shape[0]) * 2
    what = f"{int(etas.shape[0])} configurations x {keys.shape[0]} seeds x {horizon} steps"
    check_memory(nbytes, "steps", what)
    _check_eta(o.radius, "radius")
    k, d = params.w1.shape
    dt = x.dtype
    out = _simulate_impl(
        flatten(params), x, y, etas.astype(dt), bs, rs, st, keys, jnp.asarray(o.radius, dt),
        _SimStatic(o.init, int(k), int(d), float(negative_slope)),
    )  # fmt: skip
    return jax.tree_util.tree_map(lambda a: a[0], out) if scalar else out


def simulate_linear_sgd(
    params: ShallowParams,
    x: jax.Array,
    y: jax.Array,
    eta,
    batch_size,
    keys: jax.Array,
    *,
    steps=20,
    replacement=False,
    init: str = "critical",
    negative_slope: float = 0.0,
) -> SGDSimulation:
    """Linearized SGD e <- (I - eta H_hat) e at an interpolating minimum, one run per key.

    H_hat = (1/B) sum_{i in batch} g_i g_i^T. e_0 is Gaussian in span(Phi) with
    E||e_0||^2 = 1 and covariance the critical mode of C^+ D (``init="critical"``) or
    proportional to Phi Phi^T (``init="span"``). Runs are vmapped over ``keys``; ``eta``,
    ``batch_size``, ``replacement`` and ``steps`` may be 1-D (one configuration each, all in
    one compiled program; new values do not recompile: the step counts are traced).
    :func:`simulate_sgd` runs in the same program (linearized and real SGD are computed
    together, from the same e_0 and batches).

    The mean over seeds estimates E||e_T||^2, whose exact value is ``predicted``. For B < n the
    per-seed values are heavy-tailed (a typical run can shrink while the mean grows), so the
    sample mean is reliable only over short horizons (tens of steps) or with many seeds.
    """
    opts = SimulationOptions(steps, replacement, init, 1.0, negative_slope)
    return simulate_kernel(params, x, y, eta, batch_size, keys, opts)[0]


def simulate_sgd(
    params: ShallowParams,
    x: jax.Array,
    y: jax.Array,
    eta,
    batch_size,
    keys: jax.Array,
    *,
    steps=20,
    replacement=False,
    radius: float = 1e-4,
    init: str = "critical",
    negative_slope: float = 0.0,
) -> SGDSimulation:
    """Real (nonlinear) SGD started near an interpolating minimum theta*, one run per key.

    Each run starts at theta* + radius * e_0, e_0 drawn as in :func:`simulate_linear_sgd`
    (directions outside span(Phi) are flat to first order), and takes ``steps`` SGD steps
    theta <- theta - eta grad (1/2B) sum_{i in batch} r_i^2 with the batches and update of
    :func:`minstab.engine.train.train` (same key, same batches; it is tested to match ``train``).
    The loop is local only so that B can be a traced array: ``train`` takes B as a static
    option and would compile once per batch size. A small ``radius`` keeps the runs in the
    linear regime until an instability has grown, so ``ratio`` should follow ``predicted``.
    Runs whose loss is non-finite or exceeds :data:`minstab.engine.loop.DIVERGE_ABOVE` (``train``'s
    default guard, the training skeleton :mod:`minstab.engine.loop`) are frozen and flagged.
    ``eta``, ``batch_size``, ``replacement`` and ``steps`` may be 1-D, as in
    :func:`simulate_linear_sgd`.
    """
    opts = SimulationOptions(steps, replacement, init, radius, negative_slope)
    return simulate_kernel(params, x, y, eta, batch_size, keys, opts)[1]
