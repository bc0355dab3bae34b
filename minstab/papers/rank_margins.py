"""Seed 001: stable rank and normalized margins of a two-layer (leaky) ReLU net trained by GD.

**Seed 001** (Kou, Chen, Gu 2023). A two-layer net with a fixed second layer and a trained
first layer ``W`` in R^{2m x d}: rows ``0..m-1`` carry output weight +1/m, rows ``m..2m-1``
carry -1/m,

    f(W, x) = (1/m) sum_{r<m} sigma(w_r . x) - (1/m) sum_{r>=m} sigma(w_r . x),         (1)

with ``sigma(z) = max(z, gamma z)`` (ReLU for gamma = 0, leaky ReLU for 0 < gamma < 1), logistic
loss ``L(W) = (1/n) sum_i log(1 + exp(-y_i f(W, x_i)))``, small Gaussian initialization and GD.
On nearly-orthogonal data, ``||x_i||^2 >= C n max_{k != i} |<x_i, x_k>|`` (2), the paper shows
that the loss goes to 0, that the stable rank

    srank(W) = ||W||_F^2 / ||W||_2^2                                                        (3)

goes to 1 for leaky ReLU and stays bounded for ReLU, and that the normalized margins
``y_i f(W, x_i) / ||W||_F`` (4) of all training points become equal.

GD on (1) never leaves ``W_0 + span`` of the data rows: ``W_t = W_0 + C_t X`` with a coefficient
matrix ``C_t`` in R^{2m x n}. :func:`train_two_layer` runs GD on ``C`` with the Gram matrix
``K = X X^T``, so one step costs O(m n^2) whatever d is, and it is *exactly* GD on ``W`` (the
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import (
    as_labelled_data,
    as_matrix,
    check_count,
    check_finite,
    check_key,
    check_memory,
    check_positive,
    check_real,
)
from ..engine.loop import run_blocks
from ..shallow.nets import float_dtype

__all__ = [
    "stable_rank",
    "Margins",
    "normalized_margins",
    "margin_summary",
    "NearOrthogonalData",
    "near_orthogonal_data",
    "near_orthogonality_constant",
    "two_layer_output_weights",
    "init_two_layer",
    "two_layer_forward",
    "two_layer_loss",
    "TwoLayerLog",
    "TwoLayerResult",
    "log_steps",
    "train_two_layer",
    "sweep_two_layer",
]


# --------------------------------------------------------------------------------------------
# validation helpers


def _check_slope(negative_slope) -> float:
    return check_real(negative_slope, "negative_slope", lo=0.0, hi=1.0, hi_open=True)


# --------------------------------------------------------------------------------------------
# stable rank and margins (seed 001)


def stable_rank(w) -> jax.Array:
    """Stable rank ``||W||_F^2 / ||W||_2^2`` of a matrix (seed 001, eq. 3 of this module).

    Between 1 (rank one) and ``rank(W)`` (all non-zero singular values equal). Computed from
    the singular values; NaN for the zero matrix. Works under ``jit``/``vmap``.

    Parameters
    ----------
    w : (p, q) matrix.

    Returns
    -------
    Scalar array.

    Examples
    --------
    >>> import jax.numpy as jnp, minstab.papers.implicit_bias as ib
    >>> float(ib.stable_rank(jnp.eye(3)))
    3.0
    >>> round(float(ib.stable_rank(jnp.outer(jnp.arange(1.0, 4.0), jnp.ones(5)))), 5)
    1.0
    """
    w = as_matrix(w, "w")
    s = jnp.linalg.svd(w, compute_uv=False)
    top = s[0] * s[0]
    return jnp.where(top > 0, jnp.sum(s * s) / jnp.where(top > 0, top, 1), jnp.nan)


def _top_eig_psd(g: jax.Array, squarings: int = 12) -> jax.Array:
    # lambda_max of a PSD matrix by repeated squaring: B <- B^2 / tr(B^2) converges to the
    # projector on the top eigenspace (components with lambda_i / lambda_1 = r shrink like
    # r^(2^squarings)); the Rayleigh quotient of its largest column is then lambda_max up to
    # a quadratic error, even for (near-)degenerate top eigenvalues. Matmuls only: a LAPACK
    # eigensolver inside the vmapped scan deadlocked XLA:CPU on this machine.
    def sq(_, b):
        b = b @ b
        return b / jnp.trace(b)

    b = jax.lax.fori_loop(0, squarings, sq, g / jnp.trace(g))
    v = b[:, jnp.argmax(jnp.sum(b * b, axis=0))]
    return (v @ g @ v) / (v @ v)


def _stable_rank_gram(g: jax.Array) -> jax.Array:
    # srank = tr(G) / lambda_max(G) with G = W W^T: eq. (3) from a (2m x 2m) Gram matrix, so
    # logging inside the scan never touches the d-dimensional rows.
    return jnp.trace(g) / _top_eig_psd(g)


class Margins(NamedTuple):
    """Normalized margins ``y_i f(W, x_i) / ||W||_F`` (seed 001, eq. 4) and their spread.

    Attributes
    ----------
    values : (n,) normalized margins.
    min, max, mean : their minimum, maximum and mean.
    spread : relative spread ``(max - min) / mean_i |values_i|`` (0 when all margins are equal;
        well defined at a small initialization, where the margins have mixed signs).
    ratio : ``min / max`` (-> 1 when the margins become equal; negative while a point is
        misclassified).
    """

    values: jax.Array
    min: jax.Array
    max: jax.Array
    mean: jax.Array
    spread: jax.Array
    ratio: jax.Array


def margin_summary(values) -> Margins:
    """:class:`Margins` of given normalized margins ``values`` (shape (..., n), reduced on the last axis)."""
    values = jnp.asarray(values)
    if values.ndim == 0 or values.shape[-1] == 0:
        raise ValueError(f"values must have a non-empty last axis, got shape {values.shape}")
    check_finite(values, "values")
    lo, hi = jnp.min(values, axis=-1), jnp.max(values, axis=-1)
    spread = (hi - lo) / jnp.mean(jnp.abs(values), axis=-1)
    return Margins(values, lo, hi, jnp.mean(values, axis=-1), spread, lo / hi)


def two_layer_output_weights(width: int, dtype=None) -> jax.Array:
    """The fixed second layer of eq. (1): ``+1/m`` for the first m rows, ``-1/m`` for the last m."""
    m = check_count(width, "width")
    dtype = float_dtype(dtype)
    return jnp.concatenate([jnp.full((m,), 1.0 / m, dtype), jnp.full((m,), -1.0 / m, dtype)])


def _act(z, s):
    return jnp.where(z > 0, z, s * z)


def _dact(z, s):
    return jnp.where(z > 0, jnp.ones_like(z), s * jnp.ones_like(z))


def _check_w(w, name: str = "w") -> jax.Array:
    w = as_matrix(w, name)
    if w.shape[0] % 2:
        raise ValueError(
            f"{name} (W) must have an even number of rows 2m (m positive, m negative), got {w.shape}"
        )
    return w


def two_layer_forward(w, x, *, negative_slope: float = 0.0) -> jax.Array:
    """Output of the seed-001 network, eq. (1), for inputs ``x`` (n, d); returns (n,).

    Examples
    --------
    >>> import jax.numpy as jnp, minstab.papers.implicit_bias as ib
    >>> w = jnp.array([[1.0, 0.0], [0.0, 1.0]])  # m = 1: one positive and one negative neuron
    >>> ib.two_layer_forward(w, jnp.array([[2.0, 1.0]]))
    Array([1.], dtype=float32)
    """
    w, s = _check_w(w), _check_slope(negative_slope)
    x = as_matrix(x, "x")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x must have shape (n, {w.shape[1]}) to match W {w.shape}, got {x.shape}")
    a = two_layer_output_weights(w.shape[0] // 2, w.dtype)
    return _act(x @ w.T, s) @ a


def two_layer_loss(w, x, y, *, negative_slope: float = 0.0) -> jax.Array:
    """Logistic loss ``(1/n) sum_i log(1 + exp(-y_i f(W, x_i)))`` of the seed-001 network."""
    x, y = as_labelled_data(x, y, labels="pm1")
    return jnp.mean(jax.nn.softplus(-y * two_layer_forward(w, x, negative_slope=negative_slope)))


def normalized_margins(w, x, y, *, negative_slope: float = 0.0) -> Margins:
    """Normalized margins ``y_i f(W, x_i) / ||W||_F`` of the seed-001 network (eq. 4).

    Seed 001 shows that GD makes them asymptotically equal: ``spread -> 0``, ``ratio -> 1``.
    """
    x, y = as_labelled_data(x, y, labels="pm1")
    f = two_layer_forward(w, x, negative_slope=negative_slope)
    return margin_summary(y * f / jnp.linalg.norm(w))


def init_two_layer(key, width: int, in_dim: int, *, scale: float = 1e-3, dtype=None) -> jax.Array:
    """Small Gaussian initialization of ``W`` (2m, d): i.i.d. ``N(0, scale^2 / d)`` entries.

    With ``||x_i|| ~ 1`` every initial pre-activation is ``O(scale)``, far below the O(1) values
    GD builds, which is the "small initialization" regime of seed 001.
    """
    check_key(key)
    m, d = check_count(width, "width"), check_count(in_dim, "in_dim")
    check_positive(scale, "scale")
    dtype = float_dtype(dtype)
    check_memory(2.0 * 2 * m * d * jnp.dtype(dtype).itemsize, "width", f"a {2 * m} x {d} W")
    return (scale / np.sqrt(d)) * jax.random.normal(key, (2 * m, d), dtype)


# --------------------------------------------------------------------------------------------
# nearly-orthogonal data


def near_orthogonality_constant(x) -> jax.Array:
    """The largest C with ``||x_i||^2 >= C n max_{k != i} |<x_i, x_k>|`` for all i (eq. 2).

    Seed 001 needs C larger than an absolute constant. ``inf`` when the rows are exactly
    orthogonal.
    """
    x = as_matrix(x, "x")
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"x needs at least two rows to define C, got shape {x.shape}")
    g = x @ x.T
    off = jnp.abs(g - jnp.diag(jnp.diag(g)))
    worst = jnp.max(off, axis=1)
    return jnp.min(jnp.diag(g) / (n * worst))


class NearOrthogonalData(NamedTuple):
    """Gaussian data in d >> n with labels +-1 (seed 001's nearly-orthogonal regime).

    Attributes
    ----------
    x : (n, d) inputs, rows ``x_i = y_i mu + xi_i`` with ``xi_i ~ N(0, I_d / d)``.
    y : (n,) labels, half +1 and half -1 (the first ceil(n/2) are +1).
    constant : C actually achieved in eq. (2) (:func:`near_orthogonality_constant`).
    """

    x: jax.Array
    y: jax.Array
    constant: jax.Array


def near_orthogonal_data(
    key, n: int, d: int, *, signal: float = 0.0, dtype=None
) -> NearOrthogonalData:
    """Nearly-orthogonal Gaussian data, eq. (2), with the constant C it achieves.

    Rows are ``x_i = y_i mu + xi_i`` with ``xi_i ~ N(0, I_d / d)`` (so ``||x_i|| ~ 1``) and
    ``mu = signal * e_1``; with ``signal = 0`` the labels are pure noise (the regime where any
    labels can be fitted). ``|<x_i, x_k>| ~ sqrt(2 log n^2 / d)`` at worst, so C grows like
    ``sqrt(d) / (n sqrt(log n))``: take d of order ``10 n^2`` or more for C > 1.

    Examples
    --------
    >>> import jax, minstab.papers.implicit_bias as ib
    >>> data = ib.near_orthogonal_data(jax.random.key(0), n=10, d=4000)
    >>> data.x.shape, bool(data.constant > 1)
    ((10, 4000), True)
    """
    check_key(key)
    n, d = check_count(n, "n", 2), check_count(d, "d")
    signal = check_real(signal, "signal", lo=0.0)
    dtype = float_dtype(dtype)
    check_memory(3.0 * n * d * jnp.dtype(dtype).itemsize, "d", f"{n} x {d} inputs")
    y = jnp.where(jnp.arange(n) < (n + 1) // 2, 1.0, -1.0).astype(dtype)
    xi = jax.random.normal(key, (n, d), dtype) / np.sqrt(d)
    x = xi.at[:, 0].add(signal * y)
    return NearOrthogonalData(x, y, near_orthogonality_constant(x))


# --------------------------------------------------------------------------------------------
# GD on the seed-001 network, in the coefficient space of the data


class TwoLayerLog(NamedTuple):
    """Quantities logged inside the scan (leading axis: log entries, at ``step``).

    Attributes
    ----------
    step : GD steps taken when the entry was recorded.
    loss : logistic loss.
    stable_rank : eq. (3) for the whole ``W`` (2m x d).
    stable_rank_pos, stable_rank_neg : eq. (3) for the m rows with output weight +1/m and for
        the m rows with -1/m.
    frobenius : ``||W||_F``.
    margins : (..., n) normalized margins, eq. (4).
    """

    step: jax.Array
    loss: jax.Array
    stable_rank: jax.Array
    stable_rank_pos: jax.Array
    stable_rank_neg: jax.Array
    frobenius: jax.Array
    margins: jax.Array


class TwoLayerResult(NamedTuple):
    """Outcome of GD on the seed-001 network.

    Attributes
    ----------
    w : final first layer (2m, d).
    loss : final logistic loss.
    diverged : the loss became non-finite or exceeded :data:`minstab.engine.loop.DIVERGE_ABOVE` (the
        run is then frozen at that iterate, :mod:`minstab.engine.loop`).
    log : :class:`TwoLayerLog` (entry 0 is the initialization).
    """

    w: jax.Array
    loss: jax.Array
    diverged: jax.Array
    log: TwoLayerLog


def log_steps(steps: int, num_logs: int, *, spacing: str = "geometric") -> np.ndarray:
    """Steps at which :func:`train_two_layer` logs: 0, then ``num_logs - 1`` distinct steps up to ``steps``.

    ``"geometric"`` spaces them evenly in log t (the stable rank and margins move like 1/log t);
    ``"linear"`` evenly in t.
    """
    steps, num_logs = check_count(steps, "steps"), check_count(num_logs, "num_logs", 2)
    if spacing == "geometric":
        pts = np.unique(np.round(np.geomspace(1, steps, num_logs - 1)).astype(int))
    elif spacing == "linear":
        pts = np.unique(np.round(np.linspace(1, steps, num_logs - 1)).astype(int))
    else:
        raise ValueError(f"spacing must be 'geometric' or 'linear', got {spacing!r}")
    return np.concatenate([[0], pts])


def _two_layer_loop(k, p0, g0, y, eta, *, s, chunks):
    # GD in the coefficients C of W = W0 + C X. Only n x n, n x 2m and 2m x 2m arrays enter
    # the loop: K = X X^T, P0 = X W0^T and G0 = W0 W0^T are formed once, outside.
    n, m2 = p0.shape
    m = m2 // 2
    a = jnp.concatenate([jnp.full((m,), 1.0 / m, p0.dtype), jnp.full((m,), -1.0 / m, p0.dtype)])

    def preact(c):  # Z = X W^T = X W0^T + K C^T
        return p0 + k @ c.T

    def measures(c):
        z = preact(c)
        f = _act(z, s) @ a
        loss = jnp.mean(jax.nn.softplus(-y * f))
        cp = c @ p0  # C X W0^T  (2m, 2m)
        g = g0 + cp + cp.T + c @ k @ c.T  # W W^T
        fro = jnp.sqrt(jnp.trace(g))
        sr = _stable_rank_gram(g)
        srp = _stable_rank_gram(g[:m, :m])
        srn = _stable_rank_gram(g[m:, m:])
        return loss, sr, srp, srn, fro, y * f / fro

    def step(c, _):
        z = preact(c)
        f = _act(z, s) @ a
        # dL/dW = D^T X with D_ir = (1/n) l'(y_i f_i) y_i a_r sigma'(z_ir), l' = -sigmoid(-y f)
        lp = -jax.nn.sigmoid(-y * f) * y / n
        dmat = lp[:, None] * _dact(z, s) * a[None, :]
        return c - eta * dmat.T, jnp.mean(jax.nn.softplus(-y * f))

    # the skeleton (minstab.engine.loop): blocks between log steps, frozen at a non-finite or huge loss
    c0 = jnp.zeros((m2, n), p0.dtype)
    r = run_blocks(step, c0, chunks, record=measures)
    logs = jax.tree.map(lambda u, v: jnp.concatenate([u[None], v]), measures(c0), r.log)
    return r.carry, logs[0][-1], r.status.diverged, logs


@jax.jit
def _prepare(w0s, x):
    # (S, 2m, d) initializations -> Gram blocks of the reduced problem.
    return x @ x.T, jnp.einsum("nd,smd->snm", x, w0s), jnp.einsum("sid,sjd->sij", w0s, w0s)


@jax.jit
def _finish(w0s, cs, x):
    return w0s[:, None] + jnp.einsum("sern,nd->serd", cs, x)


@functools.partial(jax.jit, static_argnames=("width", "in_dim", "scale", "dtype"))
def _init_many(keys, *, width, in_dim, scale, dtype):
    return jax.vmap(
        lambda k: (scale / np.sqrt(in_dim)) * jax.random.normal(k, (2 * width, in_dim), dtype)
    )(keys)


@functools.partial(jax.jit, static_argnames=("s", "steps_at"))
def _sweep_jit(k, p0s, g0s, y, etas, *, s, steps_at):
    chunks = jnp.asarray(np.diff(np.asarray(steps_at)), jnp.int32)

    def one(p0, g0, eta):
        return _two_layer_loop(k, p0, g0, y, eta, s=s, chunks=chunks)

    # seeds x step sizes: one compiled program (jit(vmap(vmap(scan)))). The d-dimensional
    # products live in _prepare/_finish: with them inside this program, XLA:CPU deadlocked
    # here (2 cores, d = 2e4, 0% CPU); the loop itself only needs n- and m-sized arrays.
    return jax.vmap(lambda p0, g0: jax.vmap(lambda e: one(p0, g0, e))(etas))(p0s, g0s)


def _run_many(w0s, x, y, etas, s, at):
    k, p0s, g0s = _prepare(w0s, x)
    cs, loss, diverged, logs = _sweep_jit(k, p0s, g0s, y, etas, s=s, steps_at=at)
    return _finish(w0s, cs, x), loss, diverged, logs


def _pack(w, loss, diverged, logs, steps_at) -> TwoLayerResult:
    step = jnp.broadcast_to(jnp.asarray(steps_at), logs[0].shape)
    return TwoLayerResult(w, loss, diverged, TwoLayerLog(step, *logs))


def train_two_layer(
    w0,
    x,
    y,
    eta,
    *,
    steps: int = 10_000,
    negative_slope: float = 0.0,
    num_logs: int = 60,
    spacing: str = "geometric",
) -> TwoLayerResult:
    """GD on the logistic loss of the seed-001 network (eq. 1) with stable rank and margins logged.

    ``W_{t+1} = W_t - eta grad L(W_t)``, run exactly in the coefficients ``C`` of
    ``W = W_0 + C X`` (module docstring), inside one ``lax.scan``; ``eta`` is traced, so
    ``jax.vmap`` over step sizes and initializations compiles once.

    Parameters
    ----------
    w0 : (2m, d) initial first layer (:func:`init_two_layer`).
    x, y : (n, d) inputs and (n,) labels in {-1, +1}.
    eta : step size (> 0).
    steps : GD steps.
    negative_slope : gamma of ``sigma(z) = max(z, gamma z)``; 0 is ReLU.
    num_logs, spacing : see :func:`log_steps`.

    Returns
    -------
    :class:`TwoLayerResult`.
    """
    w0 = _check_w(w0)
    x, y = as_labelled_data(x, y, labels="pm1")
    if x.shape[1] != w0.shape[1]:
        raise ValueError(
            f"x must have shape (n, {w0.shape[1]}) to match w0 {w0.shape}, got {x.shape}"
        )
    check_positive(eta, "eta")
    s = _check_slope(negative_slope)
    at = tuple(int(t) for t in log_steps(steps, num_logs, spacing=spacing))
    w0, x, y = (jnp.asarray(a, w0.dtype) for a in (w0, x, y))
    eta = jnp.reshape(jnp.asarray(eta, w0.dtype), (1,))
    out = _run_many(w0[None], x, y, eta, s, at)
    return _pack(*jax.tree.map(lambda v: v[0, 0], out), at)


def sweep_two_layer(
    keys,
    x,
    y,
    etas,
    *,
    width: int,
    init_scale: float = 1e-3,
    steps: int = 10_000,
    negative_slope: float = 0.0,
    num_logs: int = 60,
    spacing: str = "geometric",
) -> TwoLayerResult:
    """:func:`train_two_layer` for every (initialization seed, step size) pair in one program.

    ``keys`` (S,) PRNG keys give the initializations (:func:`init_two_layer` with
    ``init_scale``), ``etas`` (E,) the step sizes; every field of the result gets leading axes
    (S, E). The whole grid is ``jit(vmap(vmap(scan)))``; new ``etas`` values do not recompile.
    """
    x, y = as_labelled_data(x, y, labels="pm1")
    m = check_count(width, "width")
    check_positive(init_scale, "init_scale")
    etas = jnp.atleast_1d(jnp.asarray(etas, x.dtype))
    if etas.ndim != 1:
        raise ValueError(f"etas must be a 1-d array of step sizes, got shape {etas.shape}")
    check_positive(etas, "etas")
    s = _check_slope(negative_slope)
    keys = check_key(keys, "keys")
    at = tuple(int(t) for t in log_steps(steps, num_logs, spacing=spacing))
    w0s = _init_many(keys, width=m, in_dim=x.shape[1], scale=float(init_scale), dtype=x.dtype)
    out = _run_many(w0s, x, y, etas, s, at)
    return _pack(*out, at)
