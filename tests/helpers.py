"""Fixtures shared by the tests: exactly interpolating networks and random data."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

import minstab as ms


def xla_env(*flags: str, **env: str) -> dict:
    """``os.environ`` for a subprocess with ``flags`` added to the suite's ``XLA_FLAGS``.

    Replacing ``XLA_FLAGS`` would drop the suite's compile flags (``tests/conftest.py``), and
    the subprocess would compute the same things with other compiled code (other rounding).
    """
    kept = os.environ.get("XLA_FLAGS", "").split()
    return {**os.environ, **env, "XLA_FLAGS": " ".join([*kept, *flags])}


def default_xla_env(**env: str) -> dict:
    """``os.environ`` for a subprocess that compiles with XLA's defaults, as users' runs do.

    For subprocesses that run longer than they compile, and for float32 checks at minima with
    a ReLU knot on a data point, where the sharpness jumps with the rounding of a
    pre-activation that is 0 in exact arithmetic: a float32 sweep compiled at the suite's
    level 0 reported a sharpness 5e-4 from every float64 value the activation patterns allow
    (tests/test_sweep_float32_resume.py).
    """
    from tests.conftest import FAST_XLA_FLAGS

    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if f not in FAST_XLA_FLAGS]
    return {
        **os.environ,
        **env,
        "JAX_DISABLE_MOST_OPTIMIZATIONS": "0",
        "XLA_FLAGS": " ".join(flags),
    }


def interpolating_net(key, n=10, d=1, k=24, *, knot_range=None):
    """Random first layer + least-squares output layer: an exact interpolant when k >= n.

    Returns (params, x, y). Residuals are ~1e-13 in float64 (the THEORY fixture; very sharp).
    """
    kx, ky, kp = jax.random.split(key, 3)
    x = jax.random.normal(kx, (n, d), jnp.float64)
    y = jax.random.normal(ky, (n,), jnp.float64)
    if d == 1:  # a knot between every pair of neighbouring points: features of full rank
        p = ms.init_shallow(kp, d, k, dtype=jnp.float64)
        xs = jnp.sort(x[:, 0])
        lo, hi = knot_range or (float(xs[0]), float(xs[-1]))
        extra = jax.random.uniform(jax.random.fold_in(kp, 1), (k - (n - 1),), jnp.float64, lo, hi)
        t = jnp.concatenate([(xs[1:] + xs[:-1]) / 2, extra])
        p = p._replace(b1=-p.w1[:, 0] * t)
    else:  # random biases
        p = ms.init_shallow(kp, d, k, dtype=jnp.float64, scheme="ntk")
    s = np.asarray(jax.nn.relu(x @ p.w1.T + p.b1[None, :]))
    a = np.concatenate([s, np.ones((n, 1))], axis=1)
    sol = np.linalg.lstsq(a, np.asarray(y), rcond=None)[0]
    p = ms.ShallowParams(p.w1, p.b1, jnp.asarray(sol[:-1]), jnp.asarray(sol[-1]))
    return p, x, y


def computed_chunks(result) -> list[int]:
    """The chunks a ``sweep`` call trained rather than loaded (from ``SweepResult.computed``)."""
    cs = int(result.config["chunk_size"])
    return sorted({int(i) // cs for i in np.flatnonzero(result.computed)})
