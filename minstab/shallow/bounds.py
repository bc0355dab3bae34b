"""Function-space consequences of minima stability: weight functions, weighted curvature, theorems.

Univariate (seed 004 §3, eqs. 21-23), X uniform over the training inputs:

    g(t)  = min{g-(t), g+(t)} on [x_min, x_max], 0 elsewhere
    g-(t) = P(X < t)^2 E[t - X | X < t] sqrt(1 + E[X | X < t]^2)
    g+(t) = P(X > t)^2 E[X - t | X > t] sqrt(1 + E[X | X > t]^2)

Multivariate (seed 000; THEORY §4), for a unit normal v and offset b:

    g~(v, b) = P(v.X > b)^2 E[v.X - b | v.X > b] sqrt(1 + ||E[X | v.X > b]||^2)
    g(v, b)  = min{g~(v, b), g~(-v, -b)},

which reduces to g(t) for d = 1 (v = +-1, b = +-t). Lemma 4: the flattest implementation of f
has sharpness >= 1 + 2 int |f''| g (multivariate: 1 + 2 sum_hyperplanes |mass| g), and a stable
solution of GD with step size eta has int |f''| g <= 1/eta - 1/2 (Theorem 1).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import (
    check_choice,
    check_finite,
    check_int,
    check_params,
    check_positive,
    check_real,
    is_concrete,
)
from .nets import ShallowParams, hyperplanes, knots, validate

__all__ = [
    "weight_1d",
    "weight",
    "population_weight_1d",
    "weighted_curvature",
    "sharpness_lower_bound",
    "theorem1_budget",
    "theorem2_delta",
    "Theorem2Terms",
    "merged_knots",
]


def _as_1d_inputs(x_train, name="x_train"):
    x = jnp.asarray(x_train)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n,) or (n, 1) with n >= 1, got {x.shape}")
    check_finite(x, name)
    return x


def weight_1d(t: jax.Array, x_train: jax.Array) -> jax.Array:
    """Weight g(t) of seed 004 Theorem 1 (eqs. 22-23) for the empirical law of ``x_train``.

    Vectorized over ``t`` (any shape) in O((n + m) log n): sort the data once, prefix sums of
    1, x give the counts and conditional means on each side of every t (``searchsorted``), with
    the strict inequalities X < t and X > t of eqs. 22-23. Zero outside [x_min, x_max].

    Examples
    --------
    >>> import jax.numpy as jnp, minstab as ms
    >>> x = jnp.array([-1.0, 0.0, 1.0])
    >>> round(float(ms.weight_1d(jnp.array(0.5), x)), 6)  # min((2/3)^2 sqrt(1.25), (1/3)^2 0.5 sqrt(2))
    0.078567
    """
    x = _as_1d_inputs(x_train)
    check_finite(t, "t")  # g(nan) would be 0: nan is outside [x_min, x_max] for no comparison
    t = jnp.asarray(t, x.dtype)
    return _weight_1d(t, x)


@jax.jit  # one program instead of ~20 eagerly compiled primitives
def _weight_1d(t, x):
    n = x.shape[0]
    xs = jnp.sort(x)
    csum = jnp.concatenate([jnp.zeros(1, x.dtype), jnp.cumsum(xs)])
    total = csum[-1]
    lo = jnp.searchsorted(xs, t, side="left")  # #{X < t}
    hi = jnp.searchsorted(xs, t, side="right")  # #{X <= t}
    c_minus = lo.astype(x.dtype)
    s_minus = csum[lo]
    c_plus = (n - hi).astype(x.dtype)
    s_plus = total - csum[hi]
    safe_m = jnp.where(c_minus > 0, c_minus, 1)
    safe_p = jnp.where(c_plus > 0, c_plus, 1)
    mean_m = s_minus / safe_m
    mean_p = s_plus / safe_p
    # P^2 E[t - X | X < t] = (c/n)^2 (t - mean); likewise on the right.
    g_minus = (c_minus / n) ** 2 * (t - mean_m) * jnp.sqrt(1 + mean_m**2)
    g_plus = (c_plus / n) ** 2 * (mean_p - t) * jnp.sqrt(1 + mean_p**2)
    g = jnp.minimum(jnp.where(c_minus > 0, g_minus, 0), jnp.where(c_plus > 0, g_plus, 0))
    return jnp.where((t >= xs[0]) & (t <= xs[-1]), g, 0)


def weight(
    v: jax.Array, b: jax.Array, x_train: jax.Array, *, chunk_size: int | None = None
) -> jax.Array:
    """Multivariate weight g(v, b) = min{g~(v, b), g~(-v, -b)} (THEORY §4, seed 000).

    g is defined for the hyperplane ``{x : v.x = b}`` with a unit normal ``v``; a non-unit ``v``
    describes the same hyperplane as ``(v, b) / ||v||``, and that is what is evaluated (the
    formula applied to an unnormalized ``v`` would scale g by ``||v||``). A zero row of ``v``
    is no hyperplane and raises ``ValueError`` (NaN under tracing).

    Parameters
    ----------
    v : (m, d) normals (normalized here). b : (m,) offsets. x_train : (n, d) inputs ((n,) means
        d = 1).
    chunk_size : hyperplanes processed at once (memory O(chunk_size * n)); default all at
        once when m * n <= 4e6, else chunks of ``4e6 // n``.

    Returns
    -------
    (m,) weights; for d = 1 equal to :func:`weight_1d` at t = b / v.

    Examples
    --------
    >>> import jax.numpy as jnp, minstab as ms
    >>> x = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> g1 = ms.weight(jnp.array([[1.0, 0.0]]), jnp.array([0.5]), x)
    >>> g2 = ms.weight(jnp.array([[2.0, 0.0]]), jnp.array([1.0]), x)  # the same hyperplane
    >>> bool(jnp.allclose(g1, g2))
    True
    """
    v, b = jnp.asarray(v), jnp.asarray(b)
    if v.ndim != 2:
        raise ValueError(f"v must have shape (m, d), got {v.shape}")
    x = jnp.asarray(x_train)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[1] != v.shape[1]:
        raise ValueError(f"x_train must have shape (n, {v.shape[1]}) to match v, got {x.shape}")
    if b.shape != (v.shape[0],):
        raise ValueError(f"b must have shape ({v.shape[0]},) to match v, got {b.shape}")
    check_finite(x, "x_train")
    check_finite(v, "v")
    check_finite(b, "b")
    if x.shape[0] == 0:
        raise ValueError("x_train must contain at least one sample")
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1, none=True)
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.zeros(()).dtype
    x, v, b = x.astype(dtype), v.astype(dtype), b.astype(dtype)
    norm = jnp.linalg.norm(v, axis=1)
    if is_concrete(norm) and not bool(np.all(np.asarray(norm) > 0)):
        raise ValueError("v must have non-zero rows (the normals of the hyperplanes v.x = b)")
    v, b = v / norm[:, None], b / norm
    m, n = v.shape[0], x.shape[0]
    if chunk_size is None:
        chunk_size = m if m * n <= 4_000_000 else max(1, 4_000_000 // n)
    return _weight_nd(v, b, x, int(chunk_size))


def _gtilde(proj, b, x):
    """g~(v, b) for a chunk: proj = X v^T of shape (n, c), b of shape (c,)."""
    n = x.shape[0]
    above = proj > b[None, :]
    cnt = jnp.sum(above, axis=0).astype(x.dtype)
    safe = jnp.where(cnt > 0, cnt, 1)
    excess = jnp.sum(jnp.where(above, proj - b[None, :], 0), axis=0) / safe
    mean_x = (above.astype(x.dtype).T @ x) / safe[:, None]  # (c, d)
    g = (cnt / n) ** 2 * excess * jnp.sqrt(1 + jnp.sum(mean_x**2, axis=1))
    return jnp.where(cnt > 0, g, 0)


def _weight_nd(v, b, x, chunk):
    m = v.shape[0]
    pad = (-m) % chunk
    vp = jnp.concatenate([v, jnp.zeros((pad, v.shape[1]), v.dtype)])
    bp = jnp.concatenate([b, jnp.zeros(pad, b.dtype)])

    def one(args):
        vc, bc = args
        proj = x @ vc.T
        return jnp.minimum(_gtilde(proj, bc, x), _gtilde(-proj, -bc, x))

    out = jax.lax.map(one, (vp.reshape(-1, chunk, v.shape[1]), bp.reshape(-1, chunk)))
    return out.reshape(-1)[:m]


# ---------------------------------------------------------------------------------------------
# Population weights (seed 004 Fig. 2): standardized laws, numerical integration on a fine grid.


_POP_GRID = 20001


def _pdf(law: str, u: np.ndarray) -> np.ndarray:
    if law == "uniform":  # U(-sqrt3, sqrt3): mean 0, std 1
        a = np.sqrt(3.0)
        return np.where(np.abs(u) <= a, 1 / (2 * a), 0.0)
    if law == "gaussian":
        return np.exp(-(u**2) / 2) / np.sqrt(2 * np.pi)
    s = 1 / np.sqrt(2.0)  # Laplace with std 1
    return np.exp(-np.abs(u) / s) / (2 * s)


def population_weight_1d(t: jax.Array, dist: str) -> jax.Array:
    """Population weight g(t) for a standardized (mean 0, std 1) uniform, Gaussian or Laplace law.

    The expectations in eqs. 22-23 are computed by numerical integration of the density
    (cumulative trapezoid rule on 20001 points over the support, truncated at +-12 std for the
    unbounded laws), then interpolated at ``t``. The support of the uniform law is [-sqrt3, sqrt3];
    g vanishes outside it; the other laws have g > 0 everywhere.
    """
    check_choice(dist, "dist", ("uniform", "gaussian", "laplace"))
    check_finite(t, "t")
    tt = np.asarray(t, dtype=np.float64)
    half = np.sqrt(3.0) if dist == "uniform" else 12.0
    u = np.linspace(-half, half, _POP_GRID)
    p = _pdf(dist, u)

    def cumtrapz(f):
        return np.concatenate([[0.0], np.cumsum((f[1:] + f[:-1]) / 2 * np.diff(u))])

    mass_l, first_l = cumtrapz(p), cumtrapz(u * p)
    mass_r, first_r = mass_l[-1] - mass_l, first_l[-1] - first_l
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_l = np.where(mass_l > 0, first_l / mass_l, 0)
        mean_r = np.where(mass_r > 0, first_r / mass_r, 0)
    g_minus = mass_l**2 * (u - mean_l) * np.sqrt(1 + mean_l**2)
    g_plus = mass_r**2 * (mean_r - u) * np.sqrt(1 + mean_r**2)
    g = np.clip(np.minimum(g_minus, g_plus), 0, None)
    out = np.interp(tt, u, g, left=0.0, right=0.0)
    return jnp.asarray(out)


# ---------------------------------------------------------------------------------------------
# Weighted curvature


class MergedKnots(NamedTuple):
    """Knots of f after merging coincident ones: positions and summed masses (sorted)."""

    position: jax.Array
    mass: jax.Array
    first: jax.Array  # True at the first neuron of each group (one entry per distinct knot)


def merged_knots(params: ShallowParams, *, rtol: float = 1e-9) -> MergedKnots:
    """Sorted knots of a univariate net with masses summed over coincident knots.

    Knots closer than ``rtol * (1 + |t|)`` are one knot: their f''-masses w2_i |w1_i| add before
    taking absolute values (two neurons with the same knot and opposite masses cancel). Static
    shapes (k,), so it works under jit and vmap; ``mass`` is the group total at each group's first
    entry and 0 elsewhere. Dead neurons (w1 = 0) have zero mass.
    """
    check_params(params, finite=False)
    return _merged_knots(params, _rtol(rtol))


def _rtol(rtol) -> float:
    """The merge tolerance of knots/hyperplanes: a finite number in [0, 1)."""
    return check_real(rtol, "rtol", lo=0.0, hi=1.0, hi_open=True)


@functools.partial(jax.jit, static_argnames="rtol")
def _merged_knots(params: ShallowParams, rtol: float) -> MergedKnots:
    kn = knots(params)
    big = jnp.asarray(jnp.finfo(kn.position.dtype).max, kn.position.dtype)
    pos = jnp.where(kn.active, kn.position, big)
    order = jnp.argsort(pos)
    pos, mass = pos[order], kn.mass[order]
    gap = jnp.abs(pos[1:] - pos[:-1]) > rtol * (1 + jnp.abs(pos[1:]))
    first = jnp.concatenate([jnp.ones(1, bool), gap])
    group = jnp.cumsum(first) - 1
    total = jax.ops.segment_sum(mass, group, num_segments=pos.shape[0])
    return MergedKnots(pos, jnp.where(first, total[group], 0), first)


# one compiled program per shape (eagerly, each call compiled ~30 primitives one by one)
@functools.partial(jax.jit, static_argnames="rtol")
def _curvature_1d(params, x, rtol):
    mk = _merged_knots(params, rtol)
    g = _weight_1d(mk.position, x)
    return jnp.sum(jnp.abs(mk.mass) * g)


def _canonical_hyperplanes(params):
    """Unit normal and offset with a sign convention so (v, b) and (-v, -b) coincide.

    The mass w2 ||w1|| keeps its sign under the flip: Delta sigma(z) = ||w||^2 delta(z) is even in
    z (sigma(z) - sigma(-z) = z is linear), so both orientations carry the same Laplacian.
    """
    h = hyperplanes(params)
    # Canonical orientation: first non-zero coordinate of the normal positive.
    d = h.normal.shape[1]
    nz = jnp.abs(h.normal) > 1e-12
    first_idx = jnp.argmax(nz, axis=1)
    sign = jnp.sign(jnp.take_along_axis(h.normal, first_idx[:, None], axis=1)[:, 0])
    sign = jnp.where(sign == 0, 1, sign)
    del d
    return h.normal * sign[:, None], h.offset * sign, h.mass, h.active


@functools.partial(jax.jit, static_argnames="rtol")
def _curvature_nd(params, x, rtol):
    v, b, mass, active = _canonical_hyperplanes(params)
    k = v.shape[0]
    # Pairwise coincidence (static k x k), grouping each neuron with the first identical plane.
    key = jnp.concatenate([v, b[:, None]], axis=1)
    diff = jnp.max(jnp.abs(key[:, None, :] - key[None, :, :]), axis=-1)
    scale = 1 + jnp.maximum(jnp.abs(b)[:, None], jnp.abs(b)[None, :])
    same = (diff <= rtol * scale) & active[:, None] & active[None, :]
    rep = jnp.argmax(same, axis=1)  # first index of each neuron's group
    rep = jnp.where(active, rep, jnp.arange(k))
    first = (rep == jnp.arange(k)) & active
    total = jax.ops.segment_sum(jnp.where(active, mass, 0), rep, num_segments=k)
    g = _weight_nd(v, b, x, k)
    return jnp.sum(jnp.where(first, jnp.abs(total) * g, 0))


def weighted_curvature(params: ShallowParams, x_train: jax.Array, *, rtol: float = 1e-9):
    """Weighted L1 norm of f'' (d = 1) or of the Laplacian (d > 1) of a shallow ReLU net.

    d = 1: ``int |f''| g = sum over distinct knots |sum of masses w2_i |w1_i|| g(t)`` exactly
    (seed 004 eq. 21; f'' is a sum of Diracs). d > 1: ``sum over distinct hyperplanes of
    |sum of masses w2_i ||w1_i||| g(v, b)`` (THEORY §4), where (v, b) and (-v, -b) are the same
    hyperplane: sigma(z) and sigma(-z) differ by a linear function, so both put the same-sign mass
    on it. Knots/hyperplanes within ``rtol`` (relative) are merged. Dead neurons contribute 0.
    Works under jit and vmap (static shapes; the d > 1 merge is O(k^2)).

    Examples
    --------
    >>> import jax.numpy as jnp, minstab as ms
    >>> p = ms.ShallowParams(jnp.array([[1.0], [-1.0]]), jnp.zeros(2), jnp.ones(2), jnp.array(0.0))
    >>> x = jnp.linspace(-1.0, 1.0, 5)   # f(x) = |x|: one knot at 0 with mass 2
    >>> bool(jnp.allclose(ms.weighted_curvature(p, x), 2 * ms.weight_1d(jnp.array(0.0), x)))
    True
    """
    rtol = _rtol(rtol)
    x, _ = validate(params, x_train, name_x="x_train")
    if x.shape[1] == 1:
        return _curvature_1d(params, x[:, 0], rtol)
    return _curvature_nd(params, x, rtol)


def sharpness_lower_bound(params: ShallowParams, x_train: jax.Array) -> jax.Array:
    """1 + 2 weighted_curvature: Lemma 4 (seed 004 eq. 30) and its multivariate form (seed 000).

    No implementation of the same function on these inputs has a smaller lambda_max of the
    Gauss-Newton matrix (checked here for every parameter vector, not only minima).
    """
    return 1 + 2 * weighted_curvature(params, x_train)


def theorem1_budget(eta, *, threshold=None) -> jax.Array:
    """1/eta - 1/2: Theorem 1's bound on int |f''| g for a stable, twice-differentiable solution.

    ``threshold``: the optimizer's stability threshold on the sharpness in place of GD's 2/eta
    (:func:`minstab.stability_threshold`, e.g. (2 + 2 beta)/eta for heavy ball); the budget is
    then threshold/2 - 1/2 (Lemma 4 with lambda_max <= threshold; issue 33).
    """
    check_positive(eta, "eta")
    if threshold is not None:
        check_positive(threshold, "threshold")
        return jnp.asarray(threshold) / 2 - 0.5
    return 1 / jnp.asarray(eta) - 0.5


class Theorem2Terms(NamedTuple):
    """Quantities of seed 004 Theorem 2 (eqs. 24-25)."""

    delta: jax.Array
    budget: jax.Array  # 1/eta - 1/2 + delta
    C: jax.Array
    rho: jax.Array
    M: jax.Array
    num_knots: jax.Array  # L
    width: int  # k
    p: jax.Array  # 1 + k - L


def theorem2_delta(
    params: ShallowParams, x_train: jax.Array, eta, *, num_knots=None, rtol: float = 1e-9
) -> Theorem2Terms:
    """Theorem 2's slack Delta for a (possibly non-differentiable) strongly stable solution.

    ``Delta = (3/2) C^2 p/n + C sqrt((3/4)(p/n)(3 C^2 p/n + 2/eta))`` with rho = ||theta||_inf,
    M = max_j |x_j|, C = max{1, rho (1 + M)}, L the number of distinct knots of f (computed from
    the params unless given) and p = 1 + k - L (seed 004 eqs. 24-25).
    """
    check_params(params)
    x = _as_1d_inputs(x_train)
    if params.w1.shape[1] != 1:
        raise ValueError(
            f"params must be a univariate net (w1 of shape (k, 1)), got {params.w1.shape}"
        )
    check_positive(eta, "eta")
    rtol = _rtol(rtol)
    k = params.w1.shape[0]
    if num_knots is None:
        num_knots = _num_knots(params, rtol)
    elif is_concrete(num_knots):  # p = 1 + k - L >= 0 unused parameters (eq. 25)
        num_knots = check_int(num_knots, "num_knots", minimum=0, maximum=k + 1)
    terms = _theorem2_terms(params, x, jnp.asarray(eta, x.dtype), jnp.asarray(num_knots))
    return terms._replace(width=int(params.w1.shape[0]))


@functools.partial(jax.jit, static_argnames="rtol")
def _num_knots(params: ShallowParams, rtol: float) -> jax.Array:
    """L: the number of distinct knots of f with non-zero mass."""
    mk = _merged_knots(params, rtol)
    return jnp.sum(mk.first & (jnp.abs(mk.mass) > 0))


@jax.jit
def _theorem2_terms(params: ShallowParams, x, eta, L) -> Theorem2Terms:
    """Seed 004 eqs. 24-25 (see :func:`theorem2_delta`)."""
    n, k = x.shape[0], params.w1.shape[0]
    rho = jnp.max(jnp.abs(jnp.concatenate([a.reshape(-1) for a in params])))
    M = jnp.max(jnp.abs(x))
    C = jnp.maximum(1.0, rho * (1 + M))
    p = (1 + k - L).astype(x.dtype)
    q = p / n
    delta = 1.5 * C**2 * q + C * jnp.sqrt(0.75 * q * (3 * C**2 * q + 2 / eta))
    return Theorem2Terms(delta, 1 / eta - 0.5 + delta, C, rho, M, L, k, p)
