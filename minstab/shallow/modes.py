"""Non-differentiable minima: knots on data points and the mode Hessians (seed 004 §2.2, §4.2).

When neuron i's pre-activation z_ji = w1_i . x_j + b1_i is exactly zero at a training point, the
loss is not twice differentiable there. Fixing each such (point, neuron) pair to "active" or
"inactive" gives a smooth loss psi_m per mode m (2^p modes for p toggling pairs) with Hessian
H_m. Lemma 3 (GD): if ``max_m lambda_max(H_m) <= 2/eta`` the minimum is strongly stable (eq. 16-17).
Lemma 2: if the H_m share an approximate top eigenvector q, ``||H_m q - lambda_m q|| <= delta``,
then ``min_m lambda_m > 2/eta + delta`` (plus a gradient term, zero at these minima) rules
stability out (eqs. 14-15). :func:`mode_hessians` computes lambda_upper, the per-mode
lambda_max, q, lambda_m = q^T H_m q and delta.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import check_int, check_real
from .nets import ShallowParams, check_slope, flatten, preactivations, unflatten, validate

__all__ = ["ModeAnalysis", "toggling_pairs", "mode_hessians"]


class ModeAnalysis(NamedTuple):
    """Mode Hessians at a (possibly) non-differentiable point.

    Attributes
    ----------
    toggling : (n, k) bool, pairs (point j, neuron i) with |z_ji| <= atol (1 + |b1_i| + ||w1_i|| |x_j|).
    num_toggling : p, the number of such pairs.
    num_modes : modes evaluated (2^p, or ``max_modes`` random ones when that is smaller).
    truncated : True when not every mode was evaluated (then lambda_upper is a lower estimate).
    lambda_max : (num_modes,) top eigenvalue of each H_m.
    lambda_upper : max over modes (Lemma 3's lambda^upper_max, eq. 16).
    q : top eigenvector of the worst mode (flat, eq. 20 order).
    lambda_q : (num_modes,) Rayleigh quotients q^T H_m q (Lemma 2's lambda_m).
    lambda_lower : min_m lambda_q (eq. 14).
    delta : max_m ||H_m q - lambda_m q|| (Lemma 2's delta).
    """

    toggling: np.ndarray
    num_toggling: int
    num_modes: int
    truncated: bool
    lambda_max: np.ndarray
    lambda_upper: float
    q: np.ndarray
    lambda_q: np.ndarray
    lambda_lower: float
    delta: float


def toggling_pairs(params: ShallowParams, x: jax.Array, *, atol: float = 1e-9) -> np.ndarray:
    """(n, k) mask of (point, neuron) pairs whose pre-activation is zero up to ``atol`` (relative)."""
    atol = check_real(atol, "atol", lo=0.0)
    x2, _ = validate(params, x)
    z = np.asarray(preactivations(params, x2))
    scale = (
        1
        + np.abs(np.asarray(params.b1))[None, :]
        + np.abs(np.asarray(x2)) @ np.abs(np.asarray(params.w1)).T
    )
    return np.abs(z) <= atol * scale


def _mode_hessian(theta, x, y, act, width, in_dim):
    """Hessian of psi_m: the quadratic loss with the activation pattern ``act`` (n, k) frozen."""

    def loss(t):
        p = unflatten(t, width, in_dim)
        z = preactivations(p, x)
        f = (act * z) @ p.w2 + p.b2
        return 0.5 * jnp.mean((f - y) ** 2)

    return jax.hessian(loss)(theta)


def mode_hessians(
    params: ShallowParams,
    x: jax.Array,
    y: jax.Array,
    *,
    atol: float = 1e-9,
    max_modes: int = 256,
    negative_slope: float = 0.0,
    seed: int = 0,
) -> ModeAnalysis:
    """Enumerate the modes at a point and return Lemma 3's lambda_upper and Lemma 2's delta.

    Parameters
    ----------
    params, x, y : network and data.
    atol : relative tolerance for "pre-activation is zero at a data point".
    max_modes : cap on the modes evaluated; with 2^p larger, ``max_modes`` random modes are
        drawn (always including all-active and all-inactive) and ``truncated`` is set.
    negative_slope : leaky-ReLU slope (the inactive side of a mode has slope s).

    Dense Hessians (P x P per mode): meant for the small networks of the papers' experiments.
    """
    atol = check_real(atol, "atol", lo=0.0)
    max_modes = check_int(max_modes, "max_modes", minimum=2)
    negative_slope = check_slope(negative_slope)
    seed = check_int(seed, "seed", minimum=0)
    x2, y = validate(params, x, y)
    k, d = params.w1.shape
    tog = toggling_pairs(params, x2, atol=atol)
    p = int(tog.sum())
    z = np.asarray(preactivations(params, x2))
    base = np.where(z > 0, 1.0, negative_slope)
    idx = np.argwhere(tog)
    if p == 0:
        patterns = np.zeros((1, 0), bool)
    elif 2**p <= max_modes:
        patterns = np.array(list(itertools.product([False, True], repeat=p)), bool)
    else:
        rng = np.random.default_rng(seed)
        rand = rng.random((max_modes - 2, p)) < 0.5
        patterns = np.concatenate([np.zeros((1, p), bool), np.ones((1, p), bool), rand])
    acts = np.repeat(base[None], len(patterns), axis=0)
    for m, pat in enumerate(patterns):
        acts[m, idx[:, 0], idx[:, 1]] = np.where(pat, 1.0, negative_slope)
    theta = flatten(params)
    dtype = theta.dtype
    hs = jax.jit(jax.vmap(_mode_hessian, in_axes=(None, None, None, 0, None, None)),
                 static_argnums=(4, 5))(theta, x2, y, jnp.asarray(acts, dtype), k, d)  # fmt: skip
    evals, evecs = jnp.linalg.eigh(hs)
    lam = np.asarray(evals[:, -1])
    worst = int(np.argmax(lam))
    q = evecs[worst, :, -1]
    hq = hs @ q
    lq = np.asarray(hq @ q)
    delta = float(np.max(np.asarray(jnp.linalg.norm(hq - lq[:, None] * q[None, :], axis=1))))
    return ModeAnalysis(
        tog, p, len(patterns), bool(2**p > len(patterns)), lam, float(lam[worst]),
        np.asarray(q), lq, float(lq.min()), delta,
    )  # fmt: skip


class ModeInterval(NamedTuple):
    """Lemma 2/3's range of curvatures at an interpolating minimum with knots on data points.

    Attributes
    ----------
    lambda_lower : Lemma 2's min_m q^T H_m q, with q the top eigenvector of the worst mode found
        (eq. 14); minimized exactly over every mode, point by point.
    lambda_upper : Lemma 3's max_m lambda_max(H_m) (eq. 16); exact when ``exhaustive``, otherwise
        the best of an alternating search over (q, mode), a lower estimate.
    delta : Lemma 2's max_m ||H_m q - lambda_m q|| for that q (eq. 14): the minimum is not
        stable if lambda_lower > 2/eta + delta. Exact when ``exhaustive``, otherwise the maximum
        over the modes visited (a lower estimate, so a check built on it can only be stricter).
    num_toggling : number of (point, neuron) pairs with the knot on the point, p.
    exhaustive : True when every one of the 2^p modes was evaluated: the numbers are exact.

    At a twice-differentiable minimum (p = 0) both ends equal the sharpness and delta = 0.
    """

    lambda_lower: float
    lambda_upper: float
    delta: float
    num_toggling: int
    exhaustive: bool


def _mode_rows(params, x2, tog):
    """Base Jacobian (every toggling pair inactive) and each pair's row increment when active.

    At z_ji = 0, sigma(z_ji) = 0 in every mode, so activating pair (j, i) only adds
    w2_i [x_j; 1] to the (w1_i, b1_i) entries of row j of Phi^T (eq. 26 with sigma' = 1).
    """
    from .curvature import jacobian

    j0 = np.array(jacobian(params, x2))  # sigma'(0) = 0: the all-inactive mode
    k, d = params.w1.shape
    w2 = np.asarray(params.w2)
    z = np.asarray(preactivations(params, x2))
    pairs = np.argwhere(tog)  # (p, 2): point j, neuron i
    inc = np.zeros((len(pairs), j0.shape[1]))
    for r, (j, i) in enumerate(pairs):
        inc[r, i * d : (i + 1) * d] = w2[i] * np.asarray(x2[j])
        inc[r, k * d + i] = w2[i]
        if z[j, i] > 0:  # within atol of the knot but on its active side: make it inactive
            j0[j] -= inc[r]
    return j0, pairs, inc


def _top(j):
    """lambda_max(J^T J / n) and its unit eigenvector in parameter space, via the n x n Gram."""
    n = j.shape[0]
    w, u = np.linalg.eigh(j @ j.T / n)
    q = j.T @ u[:, -1]
    return float(w[-1]), q / max(np.linalg.norm(q), 1e-300)


def _jac_of(j0, pairs, inc, active):
    j = j0.copy()
    np.add.at(j, pairs[active, 0], inc[active])
    return j


def _misalignment(j, q):
    """||H_m q - (q^T H_m q) q|| with H_m = J^T J / n (Lemma 2's delta for one mode)."""
    hq = j.T @ (j @ q) / j.shape[0]
    return float(np.linalg.norm(hq - (q @ hq) * q))


def _best_pattern(j0, pairs, inc, q, *, largest):
    """Per point, the subset of its toggling pairs that makes (grad f_m(x_j) . q)^2 extreme.

    q^T H_m q = (1/n) sum_j (grad f_m(x_j) . q)^2 and row j depends only on point j's pairs,
    so the extreme over all 2^p modes splits into one small problem per point. Returns the
    pattern and whether each point's problem was solved exactly.
    """
    c = j0 @ q
    dq = inc @ q
    active = np.zeros(len(pairs), bool)
    exact = True
    for j in np.unique(pairs[:, 0]):
        rows = np.flatnonzero(pairs[:, 0] == j)
        dj = dq[rows]
        if largest:  # |c + sum_S d| is largest with all positive or all negative increments
            pos, neg = c[j] + dj[dj > 0].sum(), c[j] + dj[dj < 0].sum()
            active[rows] = dj > 0 if abs(pos) >= abs(neg) else dj < 0
            continue
        if len(rows) <= 16:  # subset sum closest to -c_j, by enumeration
            subsets = ((np.arange(2 ** len(rows))[:, None] >> np.arange(len(rows))) & 1).astype(
                bool
            )
            best = int(np.argmin(np.abs(c[j] + subsets @ dj)))
            active[rows] = subsets[best]
        else:  # greedy: add the increment that brings the sum closest to zero, while it helps
            exact = False
            s, chosen = c[j], np.zeros(len(rows), bool)
            while True:
                cand = np.where(chosen, np.inf, np.abs(s + dj))
                r = int(np.argmin(cand))
                if not cand[r] < abs(s):
                    break
                chosen[r], s = True, s + dj[r]
            active[rows] = chosen
    return active, exact


def mode_interval(
    params: ShallowParams,
    x: jax.Array,
    y: jax.Array | None = None,
    *,
    atol: float = 1e-9,
    max_exhaustive: int = 12,
    max_rounds: int = 50,
) -> ModeInterval:
    """[lambda_lower, lambda_upper] of the mode Hessians at an interpolating minimum (seed 004 §2.2).

    At an interpolating minimum every mode's Hessian is its Gauss-Newton matrix,
    H_m = Phi_m Phi_m^T / n (eq. 27 with r = 0), so each lambda_max(H_m) is an n x n
    eigenproblem and the modes differ only in the rows of Phi^T at points with a knot
    (:func:`toggling_pairs`). With p <= ``max_exhaustive`` toggling pairs every mode is
    evaluated; otherwise lambda_upper comes from alternating maximization over q and the mode
    (for fixed q the best mode is found point by point), started from the all-inactive and
    all-active modes. lambda_lower = min_m q^T H_m q for the worst mode's top eigenvector q is
    minimized exactly point by point (Lemma 2, eq. 14). Unlike :func:`mode_hessians`, no P x P
    matrix is formed: cost O(2^p n^3) or O(rounds (n^3 + n P)).

    Parameters
    ----------
    params, x : the network (ReLU) and its training inputs; ``y`` is accepted for symmetry with
        :func:`mode_hessians` and not used (the Hessians are evaluated at interpolation).
    atol : relative tolerance for "the knot is on a data point" (:func:`toggling_pairs`).
    max_exhaustive : largest p for which all 2^p modes are enumerated.
    max_rounds : cap on the alternating search's rounds.

    Examples
    --------
    >>> import jax.numpy as jnp, minstab as ms
    >>> from minstab.shallow.modes import mode_interval
    >>> x = jnp.array([-1.0, 0.0, 1.0])
    >>> p = ms.ShallowParams(jnp.array([[1.0]]), jnp.array([0.0]), jnp.array([1.0]), jnp.array(0.0))
    >>> m = mode_interval(p, x)  # the knot sits on x = 0: two modes
    >>> m.num_toggling, m.exhaustive, bool(m.lambda_lower <= m.lambda_upper)
    (1, True, True)
    """
    atol = check_real(atol, "atol", lo=0.0)
    max_exhaustive = check_int(max_exhaustive, "max_exhaustive", minimum=0, maximum=20)
    max_rounds = check_int(max_rounds, "max_rounds", minimum=1)
    x2, _ = validate(params, x, y) if y is not None else validate(params, x)
    tog = toggling_pairs(params, x2, atol=atol)
    j0, pairs, inc = _mode_rows(params, np.asarray(x2), tog)
    p = len(pairs)
    if p == 0:
        lam, _ = _top(j0)
        return ModeInterval(lam, lam, 0.0, 0, True)
    if p <= max_exhaustive:
        patterns = list(((np.arange(2**p)[:, None] >> np.arange(p)) & 1).astype(bool))
        tops = [_top(_jac_of(j0, pairs, inc, a)) for a in patterns]
        upper, q = max(tops, key=lambda t: t[0])
        exhaustive = True
    else:
        upper, q, patterns = -np.inf, None, []
        for start in (np.zeros(p, bool), np.ones(p, bool)):
            active = start
            for _ in range(int(max_rounds)):
                patterns.append(active)
                lam, qa = _top(_jac_of(j0, pairs, inc, active))
                nxt, _ = _best_pattern(j0, pairs, inc, qa, largest=True)
                if np.array_equal(nxt, active):
                    break
                active = nxt
            if lam > upper:
                upper, q = lam, qa
        exhaustive = False
    low_pattern, exact = _best_pattern(j0, pairs, inc, q, largest=False)
    lower = float(np.sum((_jac_of(j0, pairs, inc, low_pattern) @ q) ** 2) / j0.shape[0])
    delta = max(_misalignment(_jac_of(j0, pairs, inc, a), q) for a in [*patterns, low_pattern])
    return ModeInterval(lower, float(upper), delta, p, bool(exhaustive and exact))
