"""Curvature spectrum of any model: extreme eigenpairs, trace and spectral density (issue 17).

Every function takes the problem of :func:`minstab.sharpness` (``params``, ``x``, ``y``, keyword
``model=apply`` and ``loss``; both default to the shallow net's quadratic loss) and a
``curvature``: ``"hessian"`` (H, THEORY §2 eq. 27) or ``"ggn"``, the generalized Gauss-Newton
matrix G = J^T (d^2 l / d pred^2) J, which equals H at an interpolating minimum of the quadratic
loss (eq. 28), is positive semi-definite for a convex loss, and costs one linear tangent pass
and its transpose per product instead of a linearized gradient.

The operator is built once per call (:mod:`minstab.engine.operators`: the gradient or the model is
linearized once, so each product is a tangent pass), and the probes of the stochastic methods
are processed in vmapped batches (``batch_size``), so a batch of products is one batched
matrix-matrix pass (on GPU/TPU; on a CPU the trace's default is one probe at a time, which
measured faster there). Everything runs in one compiled program per static configuration, with
the data as arguments (new data or keys do not recompile), in float32 or float64.

References: Lanczos with full reorthogonalization (Parlett 1998); Hutchinson (1989), Hutch++
(Meyer, Musco, Musco & Woodruff 2021) and XTrace (Epperly, Tropp & Webber 2024); stochastic
Lanczos quadrature (Golub & Meurant 2010; Ubaru, Chen & Saad 2017; the spectral densities of
Ghorbani, Krishnan & Xiao 2019 and PyHessian, Yao et al. 2020).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import (
    check_bool,
    check_choice,
    check_int,
    check_key,
    check_memory,
    check_tol,
)
from .batching import pass_progress
from .eigen import default_tol, lanczos, lanczos_tridiagonal
from .operators import CURVATURES, default_start
from .optimizers import check_precond
from .problem import Problem, resolve_call

__all__ = [
    "Eigenpairs",
    "TraceEstimate",
    "SpectralDensity",
    "hessian_eigenvalues",
    "hessian_trace",
    "spectral_density",
    "TRACE_ESTIMATORS",
    "TRACE_METHODS",
]


class Eigenpairs(NamedTuple):
    """Extreme eigenpairs of the curvature matrix.

    Attributes
    ----------
    values : (k,) eigenvalues, most wanted first (largest or smallest *algebraic*).
    vectors : (k, P) unit eigenvectors, flat in ``jax.flatten_util.ravel_pytree`` order.
    residuals : (k,) ``||A v - value v||`` (Lanczos' a-posteriori estimate).
    converged : (k,) per-pair flag: residual <= tol * max|values| (or an invariant Krylov
        space, which makes the pairs exact).
    num_matvecs : products with the curvature matrix.
    """

    values: jax.Array
    vectors: jax.Array
    residuals: jax.Array
    converged: jax.Array
    num_matvecs: jax.Array

    def vector_tree(self, params, i: int | None = None):
        """The eigenvectors as pytrees shaped like ``params`` (``ravel_pytree``'s inverse).

        Each leaf gets a leading axis of length k (``vector_tree(params)["w"][0]`` is the
        top eigenvector's ``w`` part); with ``i``, the i-th eigenvector alone.
        """
        from jax.flatten_util import ravel_pytree

        theta, unravel = ravel_pytree(params)
        if self.vectors.shape[-1] != theta.shape[0]:
            raise ValueError(
                f"params must have {self.vectors.shape[-1]} entries in all (the eigenvectors' "
                f"length), got {theta.shape[0]}"
            )
        if i is not None:
            return unravel(self.vectors[i])
        return jax.vmap(unravel)(self.vectors)


class TraceEstimate(NamedTuple):
    """Stochastic trace estimate.

    Attributes
    ----------
    value : the estimate of tr(A).
    stderr : its standard error: std / sqrt(count) of the samples (for Hutch++, of its
        residual part, conditional on the sketch, whose part is exact).
    num_matvecs : products with A.
    samples : the Hutchinson quadratic forms z^T A z (Hutch++: of the deflated A; XTrace: its
        exchangeable leave-one-out estimates of tr(A)).
    """

    value: jax.Array
    stderr: jax.Array
    num_matvecs: jax.Array
    samples: jax.Array


class SpectralDensity(NamedTuple):
    """Stochastic Lanczos quadrature: one Gauss rule per probe of the spectral measure.

    For a unit probe v, ``v^T g(A) v ~ sum_i weights_i g(nodes_i)``; averaged over Rademacher
    probes this estimates (1/P) sum_l g(lambda_l), the spectral density's integral of g.

    Attributes
    ----------
    nodes : (num_probes, m) eigenvalues of each probe's Lanczos tridiagonal.
    weights : (num_probes, m) squared first components of their eigenvectors (sum to 1).
    num_matvecs : products with A.
    """

    nodes: jax.Array
    weights: jax.Array
    num_matvecs: jax.Array

    def moment(self, order: int) -> jax.Array:
        """(1/P) tr(A^order), estimated: mean over probes of sum_i w_i theta_i^order."""
        return jnp.mean(jnp.sum(self.weights * self.nodes**order, axis=-1))

    def default_sigma(self) -> float:
        """Smoothing width: 1 % of the spread of the nodes (1e-2 when they coincide)."""
        span = float(jnp.max(self.nodes) - jnp.min(self.nodes))
        return 0.01 * span if span > 0 else 1e-2

    def density(self, grid, *, sigma: float | None = None) -> jax.Array:
        """Gaussian-smoothed density on ``grid``: mean_p sum_i w_pi N(t; theta_pi, sigma^2).

        It integrates to one (each probe's weights sum to one).
        """
        sigma = self.default_sigma() if sigma is None else float(sigma)
        t = jnp.asarray(grid, self.nodes.dtype)
        z = (t[:, None, None] - self.nodes[None]) / sigma
        phi = jnp.exp(-0.5 * z * z) / (sigma * float(np.sqrt(2 * np.pi)))
        return jnp.mean(jnp.sum(self.weights[None] * phi, axis=-1), axis=-1)

    def plot(self, ax=None, *, sigma: float | None = None, num_points: int = 1000):
        """Log-density vs eigenvalue, as in PyHessian's figures; returns the matplotlib axes."""
        import matplotlib.pyplot as plt

        sigma = self.default_sigma() if sigma is None else float(sigma)
        lo, hi = float(jnp.min(self.nodes)), float(jnp.max(self.nodes))
        margin = 0.01 * (hi - lo) + 3 * sigma
        grid = np.linspace(lo - margin, hi + margin, num_points)
        dens = np.asarray(self.density(grid, sigma=sigma))
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        ax.semilogy(grid, np.maximum(dens, np.finfo(dens.dtype).tiny))
        ax.set_xlabel("eigenvalue")
        ax.set_ylabel("density (log scale)")
        return ax


# ----------------------------------------------------------------------------- kernels
class EigenOptions(NamedTuple):
    """Static options of :func:`eigenpairs_kernel` (hashable)."""

    curvature: str
    k: int
    which: str
    num_iters: int
    tol: float
    value_tol: float | None = None


class TraceOptions(NamedTuple):
    """Static options of :func:`trace_kernel`: probes per product in ``batch_size``."""

    curvature: str
    method: str
    num_samples: int
    batch_size: int


class DensityOptions(NamedTuple):
    """Static options of :func:`density_kernel`: probes per vmapped batch in ``batch``."""

    curvature: str
    num_probes: int
    num_iters: int
    batch: int
    reorthogonalize: bool


def eigenpairs_kernel(params, x, y, v0, precond_scale, *, problem: Problem, opts: EigenOptions):
    """Extreme eigenpairs of ``problem``'s curvature (traceable; ``v0=None``: default start)."""
    _, matvec = problem.operator(params, x, y, curvature=opts.curvature, precond=precond_scale)
    v0 = default_start(params) if v0 is None else v0
    r = lanczos(matvec, v0, k=opts.k, which=opts.which, num_iters=opts.num_iters, tol=opts.tol,
                value_tol=opts.value_tol)  # fmt: skip
    values = jnp.reshape(r.value, (opts.k,))
    residuals = jnp.reshape(r.residual, (opts.k,))
    scale = jnp.maximum(jnp.max(jnp.abs(values)), jnp.finfo(values.dtype).tiny)
    converged = (residuals <= opts.tol * scale) | r.converged
    return Eigenpairs(values, jnp.reshape(r.vector, (opts.k, -1)), residuals, converged,
                      r.num_matvecs)  # fmt: skip


def _rademacher(key, shape, dtype):
    return jax.random.rademacher(key, shape, dtype)


def trace_kernel(params, x, y, key, *, problem: Problem, opts: TraceOptions) -> TraceEstimate:
    """Stochastic trace of ``problem``'s curvature (traceable): Hutchinson, Hutch++ or XTrace."""
    theta, matvec = problem.operator(params, x, y, curvature=opts.curvature)
    size, dtype = theta.shape[0], theta.dtype
    method, num_samples = opts.method, opts.num_samples

    def products(rows):  # A applied to each row, in vmapped batches
        return jax.lax.map(matvec, rows, batch_size=min(opts.batch_size, rows.shape[0]))

    return TRACE_ESTIMATORS[method].estimate(products, key, num_samples, size, dtype)


def _hutchinson(products, key, num_samples, size, dtype) -> TraceEstimate:
    """Hutchinson: the mean of z^T A z over Rademacher probes z."""
    z = _rademacher(key, (num_samples, size), dtype)
    return _estimate(jnp.zeros((), dtype), jnp.sum(z * products(z), axis=1), num_samples)


def _hutchpp(products, key, num_samples, size, dtype) -> TraceEstimate:
    """Hutch++ (Meyer et al. 2021, Alg. 1): tr(A) = tr(Q^T A Q) + tr((I-QQ^T) A (I-QQ^T)).

    Q is an orthonormal basis of A S; the first term is exact, the second (small when the
    spectrum is dominated by a few eigenvalues) is Hutchinson's on the deflated matrix.
    """
    s = num_samples // 3
    ks, kg = jax.random.split(key)
    q = jnp.linalg.qr(products(_rademacher(ks, (s, size), dtype)).T)[0]  # (P, s)
    exact = jnp.sum(q.T * products(q.T))
    g = _rademacher(kg, (num_samples - 2 * s, size), dtype)
    g = g - (g @ q) @ q.T
    return _estimate(exact, jnp.sum(g * products(g), axis=1), num_samples)


def _estimate(exact, samples, num_samples: int) -> TraceEstimate:
    """The estimate exact + mean(samples) of ``num_samples`` products in all."""
    return TraceEstimate(exact + jnp.mean(samples), _stderr(samples), jnp.array(num_samples),
                         samples)  # fmt: skip


def _stderr(samples):
    """Standard error of the mean of i.i.d. (or exchangeable) samples."""
    return jnp.std(samples, ddof=1) / float(np.sqrt(samples.shape[0]))


def _xtrace(products, key, k, size, dtype) -> TraceEstimate:
    """XTrace (Epperly, Tropp & Webber 2024): Hutch++ with every probe in both roles.

    Y = A W for k Rademacher probes, Q = orth(Y). For each i, Q_i = orth(Y without column i),
    and t_i = tr(Q_i^T A Q_i) + w_i^T P_i A P_i w_i with P_i = I - Q_i Q_i^T is unbiased (w_i
    is independent of Q_i); the estimate is their mean and its standard error theirs (the
    t_i are exchangeable). Q_i Q_i^T = Q (I - s_i s_i^T) Q^T with s_i the i-th column of
    R^-T, normalized (Y = QR), so every t_i comes from the 2k products A W and A Q. If Y is
    rank deficient, Q spans the range of A and tr(Q^T A Q) is tr(A) (returned, with stderr 0).
    """
    w = _rademacher(key, (k, size), dtype)
    y = products(w).T  # (P, k) = A W
    q, r = jnp.linalg.qr(y)
    aq = products(q.T).T  # (P, k) = A Q
    qaq = q.T @ aq
    exact = jnp.trace(qaq)
    diag = jnp.abs(jnp.diagonal(r))
    deficient = jnp.min(diag) <= float(np.finfo(dtype).eps) ** 0.5 * jnp.max(diag)
    r_t_inv = jnp.linalg.inv(jnp.where(deficient, jnp.eye(k, dtype=dtype), r).T)
    s = r_t_inv / jnp.linalg.norm(r_t_inv, axis=0)[None, :]  # column i: s_i
    left_out = exact - jnp.einsum("ji,jk,ki->i", s, qaq, s)  # tr(Q_i^T A Q_i)

    def deflate(v):  # column i: (I - s_i s_i^T) v_i
        return v - s * jnp.sum(s * v, axis=0)[None, :]

    apw = y - aq @ deflate(q.T @ w.T)  # column i: A P_i w_i
    papw = apw - q @ deflate(q.T @ apw)  # column i: P_i A P_i w_i
    samples = left_out + jnp.sum(w.T * papw, axis=0)
    value = jnp.where(deficient, exact, jnp.mean(samples))
    stderr = jnp.where(deficient, 0, _stderr(samples))
    return TraceEstimate(value, stderr.astype(dtype), jnp.array(2 * k), samples)


def _xtrace_estimate(products, key, num_samples, size, dtype) -> TraceEstimate:
    """XTrace on ``num_samples // 2`` probes (each probe costs two products)."""
    return _xtrace(products, key, num_samples // 2, size, dtype)


class TraceMethod(NamedTuple):
    """One stochastic trace estimator: ``estimate(products, key, num_samples, size, dtype)``."""

    estimate: Callable
    min_samples: int  # the fewest products that give a standard error


#: the trace estimators by name: adding one is one entry (``method=`` is checked against it)
TRACE_ESTIMATORS = {
    "hutch++": TraceMethod(_hutchpp, 4),
    "hutchinson": TraceMethod(_hutchinson, 2),
    "xtrace": TraceMethod(_xtrace_estimate, 4),
}
TRACE_METHODS = tuple(TRACE_ESTIMATORS)


def density_kernel(params, x, y, key, *, problem: Problem, opts: DensityOptions):
    """Stochastic Lanczos quadrature of ``problem``'s curvature (traceable)."""
    theta, matvec = problem.operator(params, x, y, curvature=opts.curvature)
    num_probes, num_iters = opts.num_probes, opts.num_iters
    probes = _rademacher(key, (num_probes, theta.shape[0]), theta.dtype)

    def rule(v):  # Gauss quadrature of the spectral measure at v / ||v|| (Golub & Meurant)
        t = lanczos_tridiagonal(
            matvec, v, num_iters=num_iters, reorthogonalize=opts.reorthogonalize
        )
        return t.nodes_and_weights()

    nodes, weights = jax.lax.map(rule, probes, batch_size=opts.batch)
    m = nodes.shape[1]
    return SpectralDensity(nodes, weights, jnp.array(num_probes * m))


_STATIC = ("problem", "opts")
_eigenpairs_jit = jax.jit(eigenpairs_kernel, static_argnames=_STATIC)
_trace_jit = jax.jit(trace_kernel, static_argnames=_STATIC)
_density_jit = jax.jit(density_kernel, static_argnames=_STATIC)


# ----------------------------------------------------------------------------- public API
def setup_problem(params, x, y, model, loss, curvature, data_batch_size=None, progress=False):
    """Validate (before tracing) and resolve: ``(x, y, problem, P, dtype)``.

    :func:`minstab.engine.problem.resolve_call` after checking ``curvature``.
    """
    check_choice(curvature, "curvature", CURVATURES)
    problem, x, y = resolve_call(
        params, x, y, model=model, loss=loss, data_batch_size=data_batch_size, progress=progress
    )
    leaves = jax.tree_util.tree_leaves(params)
    size = sum(int(jnp.size(a)) for a in leaves)
    return x, y, problem, size, leaves[0].dtype


def _check_int(value, name, lo, hi=None):
    return check_int(value, name, minimum=lo, maximum=hi)


def _check_probe_memory(count: int, rows: int, size: int, dtype, name: str) -> None:
    """Refuse ``count`` probes of ``rows`` vectors of P = ``size`` that cannot fit in memory."""
    nbytes = float(count) * rows * size * jnp.dtype(dtype).itemsize
    check_memory(nbytes, name, f"{count} probes x {rows} vectors of {size} parameters")


def hessian_eigenvalues(
    params,
    x,
    y,
    *,
    k: int,
    model: Callable | None = None,
    loss: Callable | None = None,
    which: str = "largest",
    curvature: str = "hessian",
    v0: jax.Array | None = None,
    num_iters: int | None = None,
    tol: float | None = None,
    value_tol: float | None = None,
    precond=None,
    data_batch_size: int | None = None,
    progress: bool = False,
) -> Eigenpairs:
    """Top-k (or bottom-k) eigenpairs of the loss Hessian (or GGN) by Lanczos.

    Lanczos with full reorthogonalization (:func:`minstab.lanczos`) on the operator of
    ``curvature``, stopping when every wanted Ritz pair has ``beta_j |s_ji| <= tol max|theta|``
    (which bounds each value's error by ``tol max|theta|``), or, with ``value_tol``, when every
    wanted value's estimated error ``min(r, r^2 / Ritz gap)`` is below ``value_tol max|theta|``
    (fewer products for the same value accuracy; an estimate, see :func:`minstab.lanczos`).
    "largest" is the largest *algebraic* eigenvalue (the sharpness of seed 004 Lemma 1 is
    ``values[0]``).

    Parameters
    ----------
    params, x, y, model, loss : the problem, as in :func:`minstab.sharpness`.
    k : number of eigenpairs. Static.
    which : ``"largest"`` or ``"smallest"``.
    curvature : ``"hessian"`` or ``"ggn"`` (Gauss-Newton; equals the Hessian at an
        interpolating minimum of the quadratic loss).
    v0 : start vector (P,); default a fixed random one.
    num_iters : Krylov dimension cap (default ``min(P, max(80, 4 k))``). Static.
    tol : relative residual tolerance (default 1e-10 in float64, 1e-5 in float32).
    value_tol : relative tolerance on the estimated eigenvalue error (default: not used).
        ``converged`` is then True also where the estimate met it.
    precond : a diagonal preconditioner D, a pytree like ``params`` with positive entries:
        the eigenpairs of ``D^{-1/2} A D^{-1/2}`` (those of ``D^{-1} A``, with eigenvectors
        ``D^{-1/2}`` times these), e.g. Adam's (:func:`minstab.adam_preconditioner`; see
        :func:`minstab.preconditioned_sharpness`). Default: none.
    data_batch_size : samples per batch: each product is a sum over batches in one compiled
        loop (memory O(batch); :mod:`minstab.engine.batching`); ``x`` may then be a sequence of
        ``(x_b, y_b)`` batches with ``y=None``. Default: all samples at once. Static.
    progress : with ``data_batch_size``, a bar on stderr counting the batches of every
        product (:func:`minstab.engine.batching.pass_progress`). Default off.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, minstab as ms
    >>> def apply(p, x):
    ...     return jnp.tanh(x @ p["w"]) @ p["v"]
    >>> kx, ky, kw = jax.random.split(jax.random.key(0), 3)
    >>> x, y = jax.random.normal(kx, (20, 3)), jax.random.normal(ky, (20,))
    >>> p = {"w": jax.random.normal(kw, (3, 8)), "v": jnp.ones(8) / 8}
    >>> top = ms.hessian_eigenvalues(p, x, y, k=3, model=apply)
    >>> ref = jnp.linalg.eigvalsh(ms.hessian(p, x, y, model=apply))[::-1][:3]
    >>> bool(jnp.allclose(top.values, ref, rtol=1e-4)), top.vectors.shape, bool(top.converged.all())
    (True, (3, 32), True)
    """
    check_bool(progress, "progress")
    x, y, problem, size, dtype = setup_problem(
        params, x, y, model, loss, curvature, data_batch_size, progress
    )
    check_choice(which, "which", ("largest", "smallest"))
    k = _check_int(k, "k", 1, size)
    if num_iters is None:
        num_iters = min(size, max(80, 4 * k))
    num_iters = _check_int(num_iters, "num_iters", k)
    if v0 is not None and jnp.shape(v0) != (size,):
        raise ValueError(f"v0 must have shape ({size},) (flat params), got {jnp.shape(v0)}")
    tol = check_tol(tol)
    tol = default_tol(dtype) if tol is None else tol
    value_tol = check_tol(value_tol, "value_tol")
    precond_scale = None if precond is None else check_precond(precond, params)
    opts = EigenOptions(curvature, k, which, num_iters, tol, value_tol)
    with pass_progress("hessian_eigenvalues", enabled=problem.progress):
        return _eigenpairs_jit(params, x, y, v0, precond_scale, problem=problem, opts=opts)


def hessian_trace(
    params,
    x,
    y,
    *,
    key: jax.Array,
    num_samples: int,
    model: Callable | None = None,
    loss: Callable | None = None,
    method: str = "hutch++",
    curvature: str = "hessian",
    batch_size: int | None = None,
    data_batch_size: int | None = None,
    per_block=False,
    progress: bool = False,
) -> TraceEstimate:
    """Stochastic estimate of tr(H) (or tr(G)) with its standard error, Rademacher probes.

    ``"hutchinson"``: mean of z^T A z over ``num_samples`` probes (unbiased, variance
    2 sum_{i != j} A_ij^2 per probe). ``"hutch++"`` (Meyer et al. 2021): ``num_samples``
    products split in thirds: A S for a sketch S, Q = orth(A S), tr(Q^T A Q) exactly, and
    Hutchinson on (I - QQ^T) A (I - QQ^T); its error falls like 1/num_samples instead of
    1/sqrt(num_samples) when a few eigenvalues dominate, as in trained networks' Hessians.
    ``"xtrace"`` (Epperly, Tropp & Webber 2024): the same two terms, but every one of the
    ``num_samples / 2`` probes serves both in the sketch and, left out of it, as a Hutchinson
    probe (2 products each); on the benchmark CNN its standard error at 40 products matched
    Hutch++'s at about 60.

    Parameters
    ----------
    params, x, y, model, loss : the problem, as in :func:`minstab.sharpness`.
    key : PRNG key of the probes.
    num_samples : products with A (at least 2; 4 for Hutch++ and XTrace, which uses an even
        number: 2 (num_samples // 2), below 2 P). Static.
    method : ``"hutch++"`` (default), ``"hutchinson"`` or ``"xtrace"``.
    curvature : ``"hessian"`` or ``"ggn"``.
    batch_size : probes per vmapped batch of products (memory vs speed; static). Default: 1
        on CPU, 16 on GPU/TPU. On a 2-core CPU batches never paid: per probe, float64, batch
        1 / 4 / 16: a patches-and-matmul CNN (P = 20 490) on 1 000 images 0.44 / 0.80 / 0.81 s
        (and 16 probes of it need 35 GB), on 32 images 8.4 / 14 / 21 ms; the MLP 784-512-512-10
        on 1 000 images 63 / 66 / 73 ms; small MLPs (P = 1 500-23 000) within 0.8-1.3x either
        way.
    data_batch_size : samples per batch of the data (as in :func:`hessian_eigenvalues`).
    per_block : True: the trace of each leaf's diagonal Hessian block, or a ``blocks`` spec
        grouping leaves (:func:`minstab.block_sharpness`); the result's fields are then
        pytrees shaped like ``params`` (dicts by label with ``blocks``), and each block's
        estimate comes from its own probes on that block (exact, from unit vectors, for a
        block of at most ``num_samples`` parameters). See :func:`minstab.engine.blocks.block_trace`.
    progress : with ``data_batch_size``, a bar on stderr counting the batches of every
        product (:func:`minstab.engine.batching.pass_progress`). Default off.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, minstab as ms
    >>> def apply(p, x):
    ...     return x @ p["w"]
    >>> x = jax.random.normal(jax.random.key(0), (50, 6))
    >>> p, y = {"w": jnp.zeros(6)}, jnp.zeros(50)
    >>> est = ms.hessian_trace(p, x, y, key=jax.random.key(1), num_samples=30, model=apply)
    >>> exact = jnp.sum(x * x) / 50  # tr(X^T X / n)
    >>> bool(abs(est.value - exact) < 1e-3 * exact)  # rank 6 <= 30 // 3: Hutch++ is exact
    True
    """
    key = check_key(key)
    check_bool(progress, "progress")
    if per_block is not False:
        from .blocks import block_trace

        return block_trace(
            params, x, y, key=key, num_samples=num_samples, model=model, loss=loss,
            method=method, curvature=curvature, blocks=None if per_block is True else per_block,
            data_batch_size=data_batch_size, progress=progress,
        )  # fmt: skip
    x, y, problem, size, dtype = setup_problem(
        params, x, y, model, loss, curvature, data_batch_size, progress
    )
    check_choice(method, "method", tuple(TRACE_ESTIMATORS))
    num_samples = _check_int(num_samples, "num_samples", TRACE_ESTIMATORS[method].min_samples)
    _check_probe_memory(num_samples, 2, size, dtype, "num_samples")
    if method == "xtrace" and num_samples // 2 >= size:
        raise ValueError(
            f"num_samples must be below 2 x the number of parameters ({size}) for xtrace, "
            f"got {num_samples}"
        )
    if batch_size is None:
        batch_size = 1 if jax.default_backend() == "cpu" else 16
    batch_size = _check_int(batch_size, "batch_size", 1)
    opts = TraceOptions(curvature, method, num_samples, batch_size)
    with pass_progress("hessian_trace", enabled=problem.progress):
        return _trace_jit(params, x, y, key, problem=problem, opts=opts)


def spectral_density(
    params,
    x,
    y,
    *,
    key: jax.Array,
    model: Callable | None = None,
    loss: Callable | None = None,
    num_probes: int = 1,
    num_iters: int = 100,
    curvature: str = "hessian",
    batch_size: int | None = None,
    reorthogonalize: bool = True,
    data_batch_size: int | None = None,
    progress: bool = False,
) -> SpectralDensity:
    """Spectral density of the Hessian (or GGN) by stochastic Lanczos quadrature (SLQ).

    Each Rademacher probe v runs ``num_iters`` Lanczos steps (with full reorthogonalization
    unless ``reorthogonalize=False``) from v / ||v||; the eigenvalues of the tridiagonal T are
    the nodes and the squared first components of its eigenvectors the weights of a Gauss rule
    v^T g(A) v / ||v||^2 ~ sum_i w_i g(theta_i) (Golub & Meurant 2010), so the average over
    probes estimates (1/P) sum_l g(lambda_l). :meth:`SpectralDensity.density` smooths it with
    a Gaussian, :meth:`SpectralDensity.plot` draws the log-density as PyHessian does
    (``density(iter=num_iters, n_v=num_probes)`` has the same budget).

    Parameters
    ----------
    params, x, y, model, loss : the problem, as in :func:`minstab.sharpness`.
    key : PRNG key of the probes.
    num_probes : number of probes (vmapped). Static.
    num_iters : Lanczos steps per probe (at most P). Static.
    curvature : ``"hessian"`` or ``"ggn"``.
    batch_size : probes per vmapped batch (each holds a (num_iters, P) basis); default as many
        as fit in 1 GiB. Static.
    reorthogonalize : False runs the plain three-term recurrence (O(P) memory per probe, no
        basis): the same nodes and weights up to "ghost" copies of converged eigenvalues that
        share their weight (:func:`minstab.lanczos_tridiagonal`). On the MLP 784-512-512-10
        (P = 669 706, 1 000 images, one probe of 100 steps) it took 5.5 s instead of 12.9 s in
        float64 (2.8 / 6.0 s in float32) with the largest node, mean and second moment equal
        to 1e-13 relative (1e-6 in float32). Static.
    data_batch_size : samples per batch of the data (as in :func:`hessian_eigenvalues`).
    progress : with ``data_batch_size``, a bar on stderr counting the batches of every
        product (:func:`minstab.engine.batching.pass_progress`). Default off.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, minstab as ms
    >>> def apply(p, x):
    ...     return x @ p["w"]
    >>> x = jax.random.normal(jax.random.key(0), (40, 5))
    >>> p, y = {"w": jnp.zeros(5)}, jnp.zeros(40)
    >>> sd = ms.spectral_density(p, x, y, key=jax.random.key(1), model=apply, num_iters=5)
    >>> exact = jnp.linalg.eigvalsh(x.T @ x / 40)
    >>> bool(jnp.allclose(jnp.sort(sd.nodes[0]), exact, rtol=1e-4))  # 5 steps span R^5
    True
    """
    key = check_key(key)
    check_bool(progress, "progress")
    x, y, problem, size, dtype = setup_problem(
        params, x, y, model, loss, curvature, data_batch_size, progress
    )
    num_probes = _check_int(num_probes, "num_probes", 1)
    num_iters = _check_int(num_iters, "num_iters", 1, size)
    check_bool(reorthogonalize, "reorthogonalize")
    _check_probe_memory(num_probes, num_iters, 1, dtype, "num_probes")  # nodes and weights
    if batch_size is None:
        rows = num_iters + 9 if reorthogonalize else 10
        per_probe = rows * size * jnp.dtype(dtype).itemsize
        batch_size = max(1, min(num_probes, 2**30 // per_probe))
    batch_size = _check_int(batch_size, "batch_size", 1)
    rows = num_iters + 9 if reorthogonalize else 10
    _check_probe_memory(min(batch_size, num_probes), rows, size, dtype, "batch_size")
    opts = DensityOptions(
        curvature, num_probes, num_iters, min(batch_size, num_probes), reorthogonalize
    )
    with pass_progress("spectral_density", enabled=problem.progress):
        return _density_jit(params, x, y, key, problem=problem, opts=opts)
