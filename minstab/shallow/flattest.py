"""The flattest implementation of a shallow ReLU network's function (THEORY §3).

Per-neuron rescalings (w1_i, b1_i, w2_i) -> (a_i w1_i, a_i b1_i, w2_i / a_i), a_i > 0, leave f
unchanged. At an interpolating minimum the Hessian is Phi Phi^T / n (seed 004 eq. 27), whose
non-zero eigenvalues are those of K(beta) / n with beta = a^2 and, over the data,

    K(beta) = sum_i [ (w2_i^2 / beta_i) M_i + beta_i N_i ] + 1 1^T,
    M_i = (a_i a_i^T) o (X X^T + 1),   N_i = s_i s_i^T   (a = sigma'(z), s = sigma(z)).

Each term is Loewner-convex in beta, so lambda_max(K(beta)) is convex: the flattest rescaling
is a convex problem with a global optimum. Its dual gives certificates: for any U >= 0 with
tr U = 1,

    D(U) = (1/n) [ 1^T U 1 + 2 sum_i |w2_i| sqrt(<M_i, U> <N_i, U>) ] <= min_beta lambda_max / n,

with equality at the optimum (U = u u^T for a simple top eigenvalue). For fixed U the best beta
is beta_i = |w2_i| sqrt(<M_i, U> / <N_i, U>). We iterate that dual step on a smoothed U (a
soft-max mixture of the top eigenvectors of K), damped in log beta, keep the best primal value
(achieved) and the best dual value (certified), and report their gap. Lemma 4 is D(u u^T) for
one particular u, so the result is never below :func:`minstab.sharpness_lower_bound`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._validate import check_data_dtype, check_int, check_real, check_tol
from ..engine.eigen import default_tol
from ..engine.problem import Problem
from .curvature import SharpnessOptions, residual_bound_kernel, sharpness_kernel
from .nets import (
    ShallowParams,
    activation,
    activation_derivative,
    check_slope,
    preactivations,
    rescale,
    validate,
)

__all__ = ["FlattestResult", "flattest_implementation"]

_TOP = 4  # eigenvectors mixed into the smoothed dual matrix U
_LOG_BETA_MAX = 40.0  # |log beta| cap: alpha in [e^-20, e^20]


class FlattestResult(NamedTuple):
    """Flattest rescaling of a network and its certificate.

    Attributes
    ----------
    params : the rescaled network (same function).
    sharpness : lambda_max of the Hessian of the rescaled network (the achieved value; at an
        interpolating minimum this is the Gauss-Newton value, else the full Hessian's).
    dual_bound : certified lower bound on min over rescalings of lambda_max(Phi Phi^T / n).
    gap : ``gn_sharpness - dual_bound`` (>= 0): how far from optimal the result can be.
    alpha : (k,) per-neuron scales applied.
    converged : ``gap <= tol * gn_sharpness``.
    at_minimum : the residual term of the Hessian is negligible (``||R||_2 <= tol * value``).
        When False, the result minimizes the Gauss-Newton part only and ``sharpness`` is an
        upper bound on the flattest implementation's sharpness, not its value.
    num_iters : iterations used.
    initial_sharpness : lambda_max of the Hessian of the input network.
    gn_sharpness : lambda_max(K(beta)) / n at the returned beta (the primal value).
    trace : (num_iters, 2) primal and dual value per iteration.
    """

    params: ShallowParams
    sharpness: jax.Array
    dual_bound: jax.Array
    gap: jax.Array
    alpha: jax.Array
    converged: jax.Array
    at_minimum: jax.Array
    num_iters: jax.Array
    initial_sharpness: jax.Array
    gn_sharpness: jax.Array
    trace: jax.Array


def _pieces(params, x, negative_slope):
    z = preactivations(params, x)
    a = activation_derivative(z, negative_slope)  # (n, k)
    s = activation(z, negative_slope)  # (n, k)
    gx = x @ x.T + 1  # (n, n)
    return a, s, gx


def _k_matrix(log_beta, params, a, s, gx):
    beta = jnp.exp(log_beta)
    aw = a * (params.w2**2 / beta)[None, :]
    return (aw @ a.T) * gx + (s * beta[None, :]) @ s.T + 1


def _quad_forms(u, a, s, gx):
    """u^T M_i u and u^T N_i u for every neuron i and each column u of ``u`` (n, r) -> (r, k)."""
    au = a[None, :, :] * u.T[:, :, None]  # (r, n, k)
    m = jnp.einsum("rnk,nl,rlk->rk", au, gx, au)
    q = (u.T @ s) ** 2
    return m, q


def _search(params, x, *, num_iters, negative_slope, damping, smoothing):
    """The primal-dual iterations over the rescalings: ``(best_lb, primal, dual, trace)``.

    ``best_lb`` is log beta of the smallest primal value (lambda_max of the rescaled Gram
    matrix), ``dual`` the best certificate below it, ``trace`` (num_iters, 2) both per step.
    """
    n = x.shape[0]
    a, s, gx = _pieces(params, x, negative_slope)
    w2abs = jnp.abs(params.w2)
    r = min(_TOP, n)
    eps = jnp.finfo(x.dtype).eps

    def eig(lb):
        lam, vec = jnp.linalg.eigh(_k_matrix(lb, params, a, s, gx))
        return lam[::-1][:r], vec[:, ::-1][:, :r]

    def step(carry, it):
        lb, best_lb, best_primal, best_dual = carry
        lam, vec = eig(lb)
        primal = lam[0] / n
        # smoothed dual matrix U = sum_j p_j u_j u_j^T over the top eigenvectors; the width
        # shrinks over the iterations so that U becomes rank one near the optimum
        width = smoothing * (1e-6 / smoothing) ** (it / max(num_iters - 1, 1))
        p = jax.nn.softmax(-(lam[0] - lam) / (width * jnp.abs(lam[0]) + eps))
        m, q = _quad_forms(vec, a, s, gx)  # (r, k)
        mu, qu = p @ m, p @ q
        ones = (vec.T @ jnp.ones(n)) ** 2
        dual = (p @ ones + 2 * jnp.sum(w2abs * jnp.sqrt(jnp.maximum(mu * qu, 0)))) / n
        # rank-one certificate with the top eigenvector alone (often the tightest)
        dual1 = (ones[0] + 2 * jnp.sum(w2abs * jnp.sqrt(jnp.maximum(m[0] * q[0], 0)))) / n
        dual = jnp.maximum(dual, dual1)
        better = primal < best_primal
        best_lb = jnp.where(better, lb, best_lb)
        best_primal = jnp.minimum(primal, best_primal)
        best_dual = jnp.maximum(dual, best_dual)
        # dual step: beta_i = |w2_i| sqrt(<M_i,U> / <N_i,U>), damped in log space. Neurons that
        # are silent on the data (mu = qu = 0) keep their scale; w2_i = 0 or mu = 0 push beta
        # to its lower cap, qu = 0 to its upper cap (their term then vanishes).
        live = (mu > 0) | (qu > 0)
        target = 0.5 * (jnp.log(mu + 1e-300) - jnp.log(qu + 1e-300)) + jnp.log(w2abs + 1e-300)
        target = jnp.clip(target, -_LOG_BETA_MAX, _LOG_BETA_MAX)
        lb = jnp.where(live, (1 - damping) * lb + damping * target, lb)
        return (lb, best_lb, best_primal, best_dual), jnp.stack([primal, dual])

    lb0 = jnp.zeros(params.w1.shape[0], x.dtype)
    init = (lb0, lb0, jnp.asarray(jnp.inf, x.dtype), jnp.asarray(-jnp.inf, x.dtype))
    (_, best_lb, best_primal, best_dual), trace = jax.lax.scan(step, init, jnp.arange(num_iters))
    return best_lb, best_primal, best_dual, trace


def _lanczos_sharpness(params, x, y, *, tol, negative_slope):
    """lambda_max of the full Hessian by Lanczos on the structured HVP (fixed start)."""
    # Lanczos, not the dense Hessian, even for small nets: with method="dense" here (P = 49)
    # the main job's sweep hung at 0 % CPU inside its 2-device shard_map (twice, 2026-12-06;
    # jaxlib 0.10.2), while plain vmapped eigh of that size under the same mesh does not
    size = params.w1.size + 2 * params.b1.size + 1
    v0 = jax.random.normal(jax.random.key(0), (size,), x.dtype)
    problem, opts = Problem(negative_slope=negative_slope), SharpnessOptions("lanczos", None, tol)
    return sharpness_kernel(params, x, y, v0, problem=problem, opts=opts).value


def _flattest_impl(params, x, y, *, num_iters, tol, negative_slope, damping, smoothing):
    best_lb, best_primal, best_dual, trace = _search(
        params, x, num_iters=num_iters, negative_slope=negative_slope, damping=damping,
        smoothing=smoothing,
    )  # fmt: skip
    alpha = jnp.exp(0.5 * best_lb)
    new = rescale(params, alpha)
    gap = jnp.maximum(best_primal - best_dual, 0)
    # true sharpness of the rescaled net (Gram form at a minimum, with its exact error bound;
    # otherwise Lanczos on the full Hessian), and of the input
    at_min = residual_bound_kernel(new, x, y, negative_slope) <= tol * best_primal
    kw = dict(tol=tol, negative_slope=negative_slope)
    value = jnp.where(at_min, best_primal, _lanczos_sharpness(new, x, y, **kw))
    old = jnp.where(residual_bound_kernel(params, x, y, negative_slope) <= tol * best_primal,
                    trace[0, 0], _lanczos_sharpness(params, x, y, **kw))  # fmt: skip
    return FlattestResult(
        new, value, best_dual, gap, alpha, gap <= tol * best_primal, at_min,
        jnp.asarray(num_iters), old, best_primal, trace,
    )  # fmt: skip


_flattest_jit = jax.jit(
    _flattest_impl,
    static_argnames=("num_iters", "tol", "negative_slope", "damping", "smoothing"),
)


def flattest_implementation(
    params: ShallowParams,
    x: jax.Array,
    y: jax.Array,
    *,
    num_iters: int = 400,
    tol: float | None = None,
    damping: float = 0.5,
    smoothing: float = 1e-2,
    negative_slope: float = 0.0,
) -> FlattestResult:
    """Rescale each neuron to minimize the sharpness of the same function (THEORY §3).

    Solves min over beta = alpha^2 > 0 of lambda_max(K(beta)) (convex) by damped dual ascent, and
    returns the rescaled network with a dual certificate: ``dual_bound <= flattest <=
    gn_sharpness``, ``gap = gn_sharpness - dual_bound``. The function is unchanged (ReLU is
    positively homogeneous); the returned sharpness never exceeds the input's (iteration 0 is
    the input); and it is never below Lemma 4's ``1 + 2 int |f''| g`` (seed 004 eq. 30), which is
    one particular dual certificate. Pure and static-shaped: ``jax.vmap`` it over a batch of
    networks (a whole sweep in one call).

    Parameters
    ----------
    params, x, y : network and data (x of shape (n, d) or (n,)).
    num_iters : dual-ascent iterations (each one eigen-decomposition of an n x n matrix).
    tol : relative tolerance for ``converged`` (gap) and ``at_minimum`` (default 1e-10 in
        float64, 1e-5 in float32).
    damping : step in log beta towards the dual-optimal beta (1 = undamped fixed point).
    smoothing : initial relative width of the soft-max that mixes near-top eigenvectors into U.
    negative_slope : leaky-ReLU slope (the rescaling symmetry holds for it too).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, minstab as ms
    >>> x = jnp.array([-1.0, -0.3, 0.4, 1.0]); y = jnp.array([0.5, -0.2, 0.1, 0.7])
    >>> p = ms.init_shallow(jax.random.key(0), 1, 6, knot_range=(-0.9, 0.9))
    >>> r = ms.flattest_implementation(p, x, y)
    >>> bool(r.sharpness <= r.initial_sharpness * (1 + 1e-4))
    True
    """
    num_iters = check_int(num_iters, "num_iters", minimum=1)
    tol = check_tol(tol)
    damping = check_real(damping, "damping", lo=0.0, hi=1.0, lo_open=True)
    smoothing = check_real(smoothing, "smoothing", lo=0.0)
    negative_slope = check_slope(negative_slope)
    x2, y = validate(params, x, y)
    check_data_dtype(x2, y, params.w1.dtype)
    tol = default_tol(x2.dtype) if tol is None else float(tol)
    return _flattest_jit(
        params, x2, y, num_iters=int(num_iters), tol=tol, negative_slope=float(negative_slope),
        damping=float(damping), smoothing=float(smoothing),
    )  # fmt: skip
