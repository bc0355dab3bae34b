"""Data sets: embedded toy problems (no downloads).

Image data (IDX/MNIST-format reader, two-class subsets) lives in :mod:`minstab.data.images`.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import check_int, check_key, check_memory, check_real
from ..shallow.nets import float_dtype

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
    n = check_int(n, "n", minimum=2)
    noise = check_real(noise, "noise", lo=0.0)
    dtype = float_dtype(dtype)
    check_memory(4.0 * n * jnp.dtype(dtype).itemsize, "n", f"{n} points")
    key = jax.random.key(0) if key is None else check_key(key)
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
      x; comma, tab or whitespace separated; lines starting with ``#`` are comments, and a first
      line with no number in it is a header.

    The inputs must be distinct: an interpolant takes one value at each point, and Theorem 1
    (seed 004) is stated for distinct training points. Every problem raises ``ValueError``
    naming the file (and the line, for text tables).

    Returns
    -------
    x : (n, d) float64 inputs. y : (n,) float64 targets.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"data file {str(p)!r} does not exist")
    x, y = _read_npz(p) if p.suffix == ".npz" else _read_table(p)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"{p}: x must be (n,) or (n, d) and y (n,); got {x.shape} and {y.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"{p}: need at least 2 samples, got {x.shape[0]}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"{p}: x and y must be finite")
    _check_distinct(x, p)
    return x, y


def _read_npz(p: Path) -> tuple[np.ndarray, np.ndarray]:
    import zipfile

    bad = ValueError(f"{p}: not a readable .npz archive of arrays 'x' and 'y'")
    # numpy reads a non-archive as a pickle (refused here) or as a bare .npy array; our own
    # file handle, because np.load leaks its own when the archive is truncated
    with open(p, "rb") as fh:
        try:
            z = np.load(fh, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            raise bad from None
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise bad
        with z:
            try:
                arrays = {k: z[k] for k in z.files if k in ("x", "y")}
            except (OSError, ValueError, EOFError, zipfile.BadZipFile):
                raise bad from None
            found = z.files
    if len(arrays) != 2:
        raise ValueError(f"{p} must contain arrays 'x' and 'y'; found {found}")
    x, y = arrays["x"], arrays["y"]
    if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
        raise ValueError(f"{p}: x and y must be numeric arrays, got {x.dtype} and {y.dtype}")
    return np.asarray(x, np.float64), np.asarray(y, np.float64)


def _read_table(p: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        text = p.read_text()
    except UnicodeDecodeError:
        raise ValueError(f"{p}: not a text table (x_1 .. x_d, y per line)") from None
    rows = [
        (i, ln.replace(",", " ").replace("\t", " ").split())
        for i, ln in enumerate(text.splitlines(), start=1)
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if rows and not any(_is_number(c) for c in rows[0][1]):
        rows = rows[1:]  # header
    if not rows:
        raise ValueError(f"{p}: no data rows (expected x_1 .. x_d, y per line)")
    width = len(rows[0][1])
    table = []
    for lineno, cells in rows:
        bad = [c for c in cells if not _is_number(c)]
        if bad or len(cells) != width:
            what = f"non-numeric cell {bad[0]!r}" if bad else f"{len(cells)} columns"
            raise ValueError(
                f"{p}, line {lineno}: expected {width} numbers (x_1 .. x_d, y), got {what}"
            )
        table.append([float(c) for c in cells])
    table = np.array(table, np.float64)
    if table.shape[1] < 2:
        raise ValueError(f"{p}: need >= 2 columns (x_1 .. x_d, y), got {table.shape[1]}")
    return table[:, :-1], table[:, -1]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _check_distinct(x: np.ndarray, p: Path) -> None:
    _, first, counts = np.unique(x, axis=0, return_index=True, return_counts=True)
    if np.any(counts > 1):
        j = int(first[np.argmax(counts > 1)])
        others = np.flatnonzero(np.all(x == x[j], axis=1))
        raise ValueError(
            f"{p}: inputs must be distinct, but samples {', '.join(map(str, others))} "
            f"(0-based) share x = {x[j].tolist()}"
        )
