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

from .nets import ShallowParams, flatten, preactivations, unflatten, validate

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
    x2, y = validate(params, x, y)
    if int(max_modes) < 2:
        raise ValueError(f"max_modes must be at least 2, got {max_modes}")
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
