"""Exact mean-square stability threshold of SGD at interpolating minima (THEORY §6).

Mulayoff & Michaeli (COLT 2024). Linearized SGD at a minimum, e <- (I - eta H_hat) e with
H_hat = (1/B) sum_{i in batch} H_i, has second moment Sigma <- E[(I - eta H_hat) Sigma (I - eta H_hat)]
= Sigma - eta (H Sigma + Sigma H) + eta^2 E[H_hat Sigma H_hat], and
E[H_hat (x) H_hat] = (1 - p) H (x) H + p (1/n) sum_i H_i (x) H_i with
p = (n - B) / (B (n - 1)) for batches drawn without replacement (P(i, j in batch) =
B(B-1)/(n(n-1))) and p = 1/B for B i.i.d. uniform indices (with replacement). Mean-square
stable iff eta <= eta* = 2 / lambda_max(C^+ D), C = (H (x) I + I (x) H)/2.

At an interpolating minimum H_i = g_i g_i^T (g_i = grad f(x_i)) and everything lives in
span(Phi): Sigma = Phi S Phi^T with S symmetric n x n. With the Gram G = Phi^T Phi,
C(S) = (G S + S G) / (2n) and D(S) = (1 - p) G S G / n^2 + (p / n) Diag(diag(G S G)).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._validate import check_choice
from .curvature import gauss_newton_gram
from .nets import validate

__all__ = ["SGDThreshold", "sgd_stability_threshold", "batch_noise_p"]


class SGDThreshold(NamedTuple):
    """eta_star = 2 / lambda_max (C^+ D); residual of the eigenpair; method; batch size."""

    eta_star: jax.Array
    lambda_max: jax.Array
    residual: jax.Array
    converged: jax.Array
    method: str
    batch_size: int
    replacement: bool


def batch_noise_p(n: int, batch_size: int, replacement: bool = False) -> float:
    """P of THEORY §6: (n - B)/(B (n - 1)) without replacement, 1/B with replacement."""
    if replacement:
        return 1.0 / batch_size
    return 0.0 if n == 1 else (n - batch_size) / (batch_size * (n - 1))


def _ops(g, n, p):
    lam, u = jnp.linalg.eigh(g)

    def c_inv(r):  # solve (G S + S G)/(2n) = R in G's eigenbasis
        rt = u.T @ r @ u
        return u @ (2 * n * rt / (lam[:, None] + lam[None, :])) @ u.T

    def d(s):
        gsg = g @ s @ g
        return (1 - p) * gsg / n**2 + (p / n) * jnp.diag(jnp.diag(gsg))

    return c_inv, d


def sgd_stability_threshold(
    params, x, y, batch_size: int, *, replacement: bool = False, method: str = "dense",
    num_iters: int = 5000, tol: float = 1e-12,
) -> SGDThreshold:  # fmt: skip
    """Largest eta for which linearized SGD is mean-square stable (THEORY §6, M&M 2024).

    ``method="dense"`` builds the n^2 x n^2 matrix of S -> C^{-1} D(S); ``"power"`` runs
    power iteration on the n x n operator from S = I (the operator maps PSD to PSD, so the
    Perron root, i.e. lambda_max, is reached). Assumes G = Phi^T Phi is nonsingular.
    """
    check_choice(method, "method", ("dense", "power"))
    x, y = validate(params, x, y)
    n = x.shape[0]
    if not 1 <= int(batch_size) <= n and not replacement:
        raise ValueError(f"batch_size must be in [1, n={n}], got {batch_size}")
    p = batch_noise_p(n, int(batch_size), replacement)
    g = gauss_newton_gram(params, x) * n
    c_inv, d = _ops(g, n, p)
    op = lambda s: c_inv(d(s))  # noqa: E731
    if method == "dense":
        eye = jnp.eye(n * n, dtype=g.dtype).reshape(n * n, n, n)
        m = jax.vmap(lambda e: op(e).reshape(-1))(eye).T
        ev, vecs = jnp.linalg.eig(m)
        i = jnp.argmax(ev.real)
        lmax = ev.real[i]
        v = vecs[:, i].real
        res = jnp.linalg.norm(m @ v - lmax * v) / jnp.linalg.norm(v)
        conv = res <= 1e-8 * lmax
    else:
        s = jnp.eye(n, dtype=g.dtype)

        def body(state):
            i, s, _, _ = state
            t = op(s)
            lam = jnp.vdot(s, t) / jnp.vdot(s, s)
            r = jnp.linalg.norm(t - lam * s) / jnp.linalg.norm(s)
            return i + 1, t / jnp.linalg.norm(t), lam, r

        def cond(state):
            i, _, lam, r = state
            return (i < num_iters) & (r > tol * jnp.abs(lam))

        _, _, lmax, res = jax.lax.while_loop(
            cond, body, (0, s, jnp.array(1.0, g.dtype), jnp.array(jnp.inf, g.dtype))
        )
        conv = res <= tol * jnp.abs(lmax)
    return SGDThreshold(2 / lmax, lmax, res, conv, method, int(batch_size), replacement)


def non_uniformity(params, x, y) -> jax.Array:
    """Wu-Ma-E non-uniformity s = lambda_max((1/n) sum_i H_i^2 - H^2)^{1/2} at a minimum.

    At an interpolating minimum H_i = g_i g_i^T; in span(Phi) with G = Phi^T Phi this is the
    top eigenvalue of the symmetric n x n matrix G^{1/2} (Diag(diag G)/n - G/n^2) G^{1/2}.
    """
    x, y = validate(params, x, y)
    n = x.shape[0]
    g = gauss_newton_gram(params, x) * n
    lam, u = jnp.linalg.eigh(g)
    half = u @ jnp.diag(jnp.sqrt(jnp.maximum(lam, 0))) @ u.T
    m = half @ (jnp.diag(jnp.diag(g)) / n - g / n**2) @ half
    return jnp.sqrt(jnp.maximum(jnp.linalg.eigvalsh(m)[-1], 0))


__all__ += ["non_uniformity", "simulate_linear_sgd"]


def simulate_linear_sgd(params, x, y, eta, batch_size, keys, *, steps: int = 200):
    """Mean-square ||e_T||^2 of linearized SGD e <- (I - eta H_hat) e, vmapped over ``keys``."""
    x, y = validate(params, x, y)
    j = jax.vmap(lambda xi: _sample_grad(params, xi))(x)
    return _sim(j, jnp.asarray(eta), keys, int(batch_size), steps)


def _sample_grad(params, xi):
    from .nets import flatten, forward, unflatten

    k, d = params.w1.shape
    return jax.grad(lambda t: forward(unflatten(t, k, d), xi[None, :])[0])(flatten(params))


def _sim(j, eta, keys, b, steps):
    n = j.shape[0]

    def one(key):
        e0 = j.T @ jax.random.normal(jax.random.fold_in(key, 0), (n,), j.dtype)
        e0 = e0 / jnp.linalg.norm(e0)

        def step(e, k):
            idx = jax.random.choice(k, n, (b,), replace=False)
            jb = j[idx]
            return e - eta * jb.T @ (jb @ e) / b, None

        e, _ = jax.lax.scan(step, e0, jax.random.split(key, steps))
        return jnp.sum(e * e)

    return jnp.mean(jax.vmap(one)(keys))
