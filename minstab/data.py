"""Data sets: embedded toy problems (no downloads).

Image data (IDX/MNIST-format reader, two-class subsets) lives in :mod:`minstab.images`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["toy_1d"]


def toy_1d(
    n: int = 20,
    key: jax.Array | None = None,
    *,
    noise: float = 0.3,
    dtype=None,
) -> tuple[jax.Array, jax.Array]:
    """Univariate regression set in the spirit of seed 004 Fig. 3.

    Inputs are a jittered uniform grid on [-1, 1] (so they are distinct, as Theorem 1 needs),
    normalized to mean 0 and standard deviation 1; targets are ``sin(pi x / 2)`` plus
    ``noise`` times Gaussian noise, so that interpolants must bend.

    Returns
    -------
    x : (n,) sorted inputs.
    y : (n,) targets.

    Examples
    --------
    >>> import jax, minstab as ms
    >>> x, y = ms.data.toy_1d(n=5, key=jax.random.key(0))
    >>> x.shape, y.shape
    ((5,), (5,))
    """
    if int(n) < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    dtype = jnp.dtype(dtype) if dtype is not None else jnp.zeros(()).dtype
    key = jax.random.key(0) if key is None else key
    k1, k2 = jax.random.split(key)
    grid = jnp.linspace(-1, 1, n, dtype=dtype)
    x = grid + 0.3 * (2.0 / (n - 1)) * jax.random.uniform(k1, (n,), dtype, -1, 1)
    x = (x - x.mean()) / x.std()
    y = jnp.sin(jnp.pi * x / 2) + noise * jax.random.normal(k2, (n,), dtype)
    return x, y
