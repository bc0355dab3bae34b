"""Semidefinite complementarity problems (SDCP), solved by an interior-point method in JAX.

The central flow (:mod:`minstab.engine.central_flow`) needs, at every substep, the k x k matrix X of

    X >= 0,    S := A + B[X] >= 0,    <X, S> = 0                                    (SDCP)

(``>=`` in the Loewner order), with A symmetric and B a positive semidefinite linear operator
on symmetric matrices. Because B is PSD this is the KKT system of the convex program
min_{X >= 0} 1/2 <X, B[X]> + <A, X> (S is the gradient of the objective, so it is the
multiplier of the cone constraint), so a solution exists whenever that program is bounded
below (for instance B positive definite) and then S is unique.

Representation. Symmetric k x k matrices are vectors of m = k(k+1)/2 entries with the
off-diagonal ones scaled by sqrt(2) (``svec``), so that <X, Y> = svec(X) . svec(Y); B is an
m x m PSD matrix acting on svec(X).

Method. An infeasible primal-dual path-following method with the HKM search direction and
Mehrotra's predictor-corrector centering (Todd, Toh & Tuetuencue, SIAM J. Optim. 8, 1998;
Helmberg, Rendl, Vanderbei & Wolkowicz 1996; Kojima, Shindoh & Hara 1997; Monteiro 1997).
Starting from X = S = I, each iteration linearizes S = A + B[X], X S = mu I:

    dS = B[dX] + r,                  r = A + B[X] - S            (primal residual)
    dX + sym(X dS S^-1) = mu S^-1 - X                             (HKM linearization of XS = mu I)

i.e. the m x m system (I + K B) dX = svec(mu S^-1 - X) - K r with K Z = svec(sym(X Z S^-1)),
and steps to 0.98 of the boundary of the cone. Every iterate stays strictly inside both cones,
so X >= 0 holds exactly and S, recomputed as A + B[X] at the end, is >= 0 up to the final
residual. A and B are rescaled to unit norm first (the solution scales back exactly).

Scope. The method needs a strictly feasible point (X > 0 with A + B[X] > 0), which exists when
B is positive definite: in the central flow B is the Gram matrix of k(k+1)/2 third-derivative
vectors in R^P with P >> k^2, so generically it is. With a singular B and no interior (measured
on random instances with rank-1 B and a planted non-strictly-complementary solution) the
iterations can stall: the result then says ``converged=False``; nothing is raised inside jit.
Measured on random instances with B > 0: 10-40 iterations for k = 2-10, <X, S> <= 1e-12.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "SDCPResult",
    "svec",
    "smat",
    "operator_matrix",
    "solve_sdcp",
    "sdcp",
]


class SDCPResult(NamedTuple):
    """Solution of SDCP(A, B) and how well it satisfies the conditions.

    Attributes
    ----------
    X : (k, k) the solution, symmetric.
    S : (k, k) A + B[X], symmetric.
    min_eig_X, min_eig_S : smallest eigenvalues (>= 0 up to rounding at a solution).
    complementarity : <X, S> (0 at a solution).
    iterations : interior-point iterations taken (0 when A >= 0 gave X = 0 directly).
    converged : the scaled gap and residual reached ``tol``.
    """

    X: jax.Array
    S: jax.Array
    min_eig_X: jax.Array
    min_eig_S: jax.Array
    complementarity: jax.Array
    iterations: jax.Array
    converged: jax.Array


def _pairs(k: int):
    i, j = np.triu_indices(k)
    return i, j, np.where(i == j, 1.0, np.sqrt(2.0))


def svec(a: jax.Array) -> jax.Array:
    """Upper triangle of a symmetric (..., k, k) array, off-diagonals times sqrt(2)."""
    i, j, w = _pairs(a.shape[-1])
    return a[..., i, j] * jnp.asarray(w, a.dtype)


def smat(v: jax.Array, k: int) -> jax.Array:
    """Inverse of :func:`svec` for one vector of k(k+1)/2 entries."""
    i, j, w = _pairs(k)
    vals = v / jnp.asarray(w, v.dtype)
    m = jnp.zeros((k, k), v.dtype).at[i, j].set(vals)
    return m.at[j, i].set(vals)


def operator_matrix(b: jax.Array) -> jax.Array:
    """The m x m matrix of B[X]_ij = sum_kl b[i, j, k, l] X_kl in svec coordinates."""
    k = b.shape[0]
    i, j, w = _pairs(k)
    w = jnp.asarray(w, b.dtype)
    # svec(B[X])_p = w_p sum_q (b[p, q] + b[p, q^T]) / ... : sum over k, l of X_kl with X
    # symmetric folds (k, l) and (l, k) into the pair q, and svec(X)_q = w_q X_kl.
    bb = b[i, j]  # (m, k, k)
    folded = bb[:, i, j] + jnp.where(i == j, 0.0, 1.0)[None, :] * bb[:, j, i]  # (m, m)
    return w[:, None] * folded / w[None, :]


def _min_eig(a):
    return jnp.linalg.eigvalsh(a)[0]


def _max_step(x, dx):
    """Largest alpha in (0, inf] with x + alpha dx >= 0 for x > 0 (inf if dx >= 0)."""
    c = jnp.linalg.cholesky(x)
    ci = jax.scipy.linalg.solve_triangular(c, jnp.eye(x.shape[0], dtype=x.dtype), lower=True)
    lam = _min_eig(ci @ dx @ ci.T)
    return jnp.where(lam < 0, -1.0 / jnp.where(lam < 0, lam, -1.0), jnp.inf)


def _ip_solve(a, bm, *, tol, max_iters):
    """Interior-point iterations on the scaled problem; returns (X, iterations, converged)."""
    k = a.shape[0]
    m = bm.shape[0]
    eye_k = jnp.eye(k, dtype=a.dtype)
    eye_m = jnp.eye(m, dtype=a.dtype)
    basis = jax.vmap(lambda e: smat(e, k))(eye_m)  # (m, k, k)
    av = svec(a)

    def direction(x, s, r, mu, corr):
        si = jnp.linalg.inv(s)
        si = 0.5 * (si + si.T)
        # K Z = svec(sym(X Z S^-1)) as an m x m matrix (columns: basis elements)
        kz = jax.vmap(lambda z: svec(0.5 * (x @ z @ si + si @ z @ x)))(basis).T
        rhs_mat = mu * si - x - corr
        rhs = svec(0.5 * (rhs_mat + rhs_mat.T)) - kz @ svec(r)
        dxv = jnp.linalg.solve(eye_m + kz @ bm, rhs)
        dsv = bm @ dxv + svec(r)
        return smat(dxv, k), smat(dsv, k), si

    def gap_res(x, s):
        r = smat(av + bm @ svec(x), k) - s
        return jnp.sum(x * s) / k, jnp.linalg.norm(r), r

    def cond(state):
        it, x, s, done = state
        return (it < max_iters) & ~done

    def body(state):
        it, x, s, _ = state
        mu, _, r = gap_res(x, s)
        # predictor (mu = 0)
        dxa, dsa, si = direction(x, s, r, 0.0, jnp.zeros_like(x))
        aa = jnp.minimum(1.0, jnp.minimum(_max_step(x, dxa), _max_step(s, dsa)))
        mu_aff = jnp.sum((x + aa * dxa) * (s + aa * dsa)) / k
        sigma = jnp.clip((mu_aff / jnp.maximum(mu, 1e-300)) ** 3, 0.0, 1.0)
        # corrector: second-order term dX dS S^-1 of the HKM linearization
        corr = dxa @ dsa @ si
        dx, ds, _ = direction(x, s, r, sigma * mu, 0.5 * (corr + corr.T))
        step = jnp.minimum(1.0, 0.98 * jnp.minimum(_max_step(x, dx), _max_step(s, ds)))
        x = x + step * dx
        s = s + step * ds
        x, s = 0.5 * (x + x.T), 0.5 * (s + s.T)
        g, res, _ = gap_res(x, s)
        done = (g <= tol) & (res <= tol)
        return it + 1, x, s, done

    state = (jnp.asarray(0), eye_k, eye_k, jnp.asarray(False))
    it, x, s, done = jax.lax.while_loop(cond, body, state)
    return x, it, done


def solve_sdcp(a, bm, *, tol: float | None = None, max_iters: int = 80) -> SDCPResult:
    """Solve SDCP(A, B) (traceable; no input checks: see :func:`sdcp`).

    Parameters
    ----------
    a : (k, k) symmetric A.
    bm : (m, m) PSD matrix of B in svec coordinates, m = k(k+1)/2 (see :func:`operator_matrix`).
    tol : stopping tolerance on the mean complementarity <X, S>/k and the residual
        ||A + B[X] - S|| of the problem scaled to ||A|| = ||B|| = 1 (default 1000 machine
        epsilons of the dtype: 2.2e-13 in float64, 1.2e-4 in float32).
    max_iters : interior-point iterations at most. Static.

    Returns
    -------
    SDCPResult. When A >= 0 the solution is X = 0 (S = A) and no iteration runs.
    """
    k = a.shape[0]
    tol = float(1e3 * jnp.finfo(a.dtype).eps) if tol is None else float(tol)
    a = 0.5 * (a + a.T)
    bm = 0.5 * (bm + bm.T)
    tiny = jnp.finfo(a.dtype).tiny
    sa = jnp.maximum(jnp.linalg.norm(a), tiny)
    sb = jnp.maximum(jnp.linalg.norm(bm, 2), tiny)
    stable = _min_eig(a) >= 0

    def skip():  # A >= 0: X = 0 solves it (S = A); no iteration runs
        return jnp.zeros_like(a), jnp.asarray(0), jnp.asarray(True)

    def iterate():
        x, it, done = _ip_solve(a / sa, bm / sb, tol=tol, max_iters=max_iters)
        return x * (sa / sb), it, done

    x, it, done = jax.lax.cond(stable, skip, iterate)
    # the last iterate is inside the cone up to rounding in near-singular directions; the
    # projection onto it moves S by B[dX] of the same (tiny) size
    lam, vec = jnp.linalg.eigh(0.5 * (x + x.T))
    x = (vec * jnp.maximum(lam, 0.0)[None, :]) @ vec.T
    s = a + smat(bm @ svec(x), k)
    s = 0.5 * (s + s.T)
    return SDCPResult(
        x,
        s,
        _min_eig(x),
        _min_eig(s),
        jnp.sum(x * s),
        it,
        done,
    )


def sdcp(a, b, *, tol: float | None = None, max_iters: int = 80) -> SDCPResult:
    """Solve X >= 0, A + B[X] >= 0, <X, A + B[X]> = 0 (checked input).

    Parameters
    ----------
    a : (k, k) symmetric matrix A.
    b : the PSD operator B, either a (k, k, k, k) array with B[X]_ij = sum_kl b_ijkl X_kl or
        its (m, m) matrix in svec coordinates (m = k(k+1)/2).
    tol, max_iters : see :func:`solve_sdcp`.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from minstab.engine.complementarity import sdcp
    >>> r = sdcp(jnp.array([[-1.0]]), jnp.array([[2.0]]))  # k = 1: X = max(0, -a/b)
    >>> round(float(r.X[0, 0]), 4), bool(r.converged)
    (0.5, True)
    """
    a = jnp.asarray(a)
    b = jnp.asarray(b)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 1:
        raise ValueError(f"a must be a square (k, k) matrix with k >= 1, got shape {a.shape}")
    if not jnp.issubdtype(a.dtype, jnp.floating):
        raise ValueError(f"a must be a floating array, got {a.dtype}")
    k = a.shape[0]
    m = k * (k + 1) // 2
    if b.shape == (k, k, k, k):
        b = operator_matrix(b)
    elif b.shape != (m, m):
        raise ValueError(f"b must have shape {(k, k, k, k)} or {(m, m)} for k = {k}, got {b.shape}")
    if b.dtype != a.dtype:
        raise ValueError(f"a and b must share a dtype, got {a.dtype} and {b.dtype}")
    if not bool(jnp.all(jnp.isfinite(a))) or not bool(jnp.all(jnp.isfinite(b))):
        raise ValueError("a and b must be finite")
    if not isinstance(max_iters, int) or max_iters < 1:
        raise ValueError(f"max_iters must be a positive int, got {max_iters!r}")
    if tol is not None and not (isinstance(tol, float | int) and tol > 0):
        raise ValueError(f"tol must be a number > 0, got {tol!r}")
    return _solve_jit(a, b, tol=None if tol is None else float(tol), max_iters=max_iters)


_solve_jit = jax.jit(solve_sdcp, static_argnames=("tol", "max_iters"))
