"""Data sets: embedded toy problems (no downloads).

Image data (IDX/MNIST-format reader, two-class subsets) lives in :mod:`minstab.images`.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["toy_1d", "load_xy"]


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


def load_xy(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a regression data set from a text table or an ``.npz`` archive (no pickle).

    * ``.npz``: arrays ``x`` of shape (n,) or (n, d) and ``y`` of shape (n,).
    * ``.csv`` / ``.tsv`` / ``.txt``: one row per sample, the last column is y and the others are
      x; comma, tab or whitespace separated; a first line that is not numeric is a header.

    Returns
    -------
    x : (n, d) float64 inputs. y : (n,) float64 targets.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"data file {str(p)!r} does not exist")
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            if "x" not in z.files or "y" not in z.files:
                raise ValueError(f"{p} must contain arrays 'x' and 'y'; found {z.files}")
            x, y = np.asarray(z["x"], np.float64), np.asarray(z["y"], np.float64)
    else:
        lines = [ln for ln in p.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        rows = [ln.replace(",", " ").replace("\t", " ").split() for ln in lines]
        try:
            [float(v) for v in rows[0]]
        except (ValueError, IndexError):
            rows = rows[1:]  # header
        try:
            table = np.array([[float(v) for v in r] for r in rows], np.float64)
        except ValueError as e:
            raise ValueError(f"{p}: every row must hold numbers x_1 .. x_d, y ({e})") from None
        if table.ndim != 2 or table.shape[1] < 2 or table.shape[0] < 2:
            raise ValueError(
                f"{p}: need at least 2 rows of >= 2 columns (x..., y), got {table.shape}"
            )
        x, y = table[:, :-1], table[:, -1]
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"{p}: x must be (n,) or (n, d) and y (n,); got {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"{p}: x and y must be finite")
    return x, y
