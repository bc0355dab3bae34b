"""Predict before training: the smoothest interpolant of a data set and the largest stable step.

Theorem 1 (seed 004) bounds every stable, twice-differentiable interpolating solution of GD with
step size eta by ``int |f''| g <= 1/eta - 1/2``. Hence with

    W* = inf over interpolants f of int |f''| g,     eta_max = 1 / (W* + 1/2),

no GD run with eta > eta_max can converge to a twice-differentiable interpolating minimum: it must
diverge, stall, or land on a knot at a data point (the non-differentiable case of Theorem 2).

d = 1: interpolants f(x) = a + b x + sum_t c_t sigma(x - t) with knots t from a candidate set
(every interior data point plus ``grid`` points in each gap, refined until W* stops changing)
make ``min sum_t g(t) |c_t|`` a linear program (c = c+ - c-), solved exactly with HiGHS
(``scipy.optimize.linprog``; scipy ships with jax). Knots at or outside the extreme points only
add linear functions on the data, so they are left out (a, b are free). The optimum usually puts
knots on data points; W* is then an infimum that twice-differentiable interpolants approach by
moving each knot off its data point (g is continuous there), so eta_max is still the threshold.

d > 1: the same LP over a dictionary of hyperplanes (random unit directions x offsets through the
data points) with weights g(v, b) gives an upper bound on W* that tightens as the dictionary
grows (``is_upper_bound`` is True).

Accuracy instead of interpolation (seed 000, depth separation): :func:`minimal_budget` solves

    B(eps) = min sum_j g(v_j, b_j) |c_j|   s.t.   max_i |f(x_i) - y_i| <= eps,
    f(x) = a + u.x + sum_j c_j sigma(v_j.x - b_j),

over a dictionary of hyperplanes (evenly spaced directions x evenly spaced offsets across the
data), an LP solved exactly by HiGHS. It is an upper bound on the minimum over all shallow ReLU
networks that decreases as the dictionary grows. A stable solution of GD with step eta whose error
is at most eps exists only if B(eps) <= 1/eta - 1/2 (the multivariate Theorem 1).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from .._validate import (
    ArgumentTypeError,
    check_finite,
    check_int,
    check_memory,
    check_real,
)
from .bounds import weight, weight_1d
from .nets import ShallowParams

__all__ = ["Prediction", "smoothest_interpolant", "check_against_sweep", "Budget", "minimal_budget"]


class Prediction(NamedTuple):
    """Result of :func:`smoothest_interpolant`.

    Attributes
    ----------
    w_star : smallest weighted curvature of an interpolant (d > 1: an upper bound on it).
    eta_max : 1 / (w_star + 1/2): the largest step size that admits a stable,
        twice-differentiable interpolating minimum (Theorem 1).
    params : the optimal interpolant as a shallow ReLU network (its weighted curvature is w_star).
    knots : (m,) positions (d = 1) or offsets (d > 1) of the used knots/hyperplanes.
    coefficients : (m,) their f''-masses.
    refinement_error : |change of w_star| at the last refinement (d = 1), NaN for d > 1.
    is_upper_bound : True for d > 1 (dictionary-restricted problem).
    interpolation_error : max_j |f(x_j) - y_j| of the returned network.
    params_curvature : weighted curvature of ``params`` (d = 1: W* up to O(1e-7) relative, since
        knots on data points are moved just off them to keep ``params`` twice differentiable).
    """

    w_star: float
    eta_max: float
    params: ShallowParams
    knots: np.ndarray
    coefficients: np.ndarray
    refinement_error: float
    is_upper_bound: bool
    interpolation_error: float
    params_curvature: float


def _lp(base, feats, w, y):
    from scipy.optimize import linprog

    # A zero-weight unit is zero or linear on the data (its plane leaves every point on one side),
    # so the free linear part already spans it; dropping it keeps the LP well posed for HiGHS.
    used = w > 0
    c = np.zeros(len(w))
    val, lin, c[used] = _lp_solve(linprog, base, feats[:, used], w[used], y)
    return val, lin, c


def _lp_solve(linprog, base, feats, w, y):
    nb, m = base.shape[1], feats.shape[1]
    cost = np.concatenate([np.zeros(2 * nb), w, w])
    a_eq = np.concatenate([base, -base, feats, -feats], axis=1)
    res = linprog(cost, A_eq=a_eq, b_eq=y, bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"the interpolation LP failed: {res.message}")
    z = res.x
    lin = z[:nb] - z[nb : 2 * nb]
    c = z[2 * nb : 2 * nb + m] - z[2 * nb + m :]
    return float(res.fun), lin, c


def _candidates_1d(xs, grid):
    gaps = [np.linspace(a, b, grid + 2)[1:-1] for a, b in zip(xs[:-1], xs[1:], strict=True)]
    return np.unique(np.concatenate([xs[1:-1], *gaps]))


def _network_1d(lin, t, c, xs, dtype):
    """Network a + b x + sum c_t sigma(x - t) (the linear part as a cancelling pair of units)."""
    a, b = lin
    anchor = xs[0] - 1e-3 * (
        xs[-1] - xs[0]
    )  # b (x - L) = b sigma(x - L) - b sigma(L - x): zero net f''-mass
    w1 = np.concatenate([[1.0, -1.0], np.ones_like(t)])[:, None]
    b1 = np.concatenate([[-anchor, anchor], -t])
    w2 = np.concatenate([[b, -b], c])
    return ShallowParams(*(jnp.asarray(v, dtype) for v in (w1, b1, w2, np.asarray(a + b * anchor))))


def smoothest_interpolant(
    x,
    y,
    *,
    grid: int = 8,
    refine: int = 6,
    rtol: float = 1e-9,
    num_directions: int = 64,
    seed: int = 0,
    drop_below: float = 1e-12,
) -> Prediction:
    """W* = min over interpolants of the weighted curvature, eta_max and the optimal interpolant.

    Parameters
    ----------
    x : (n,) or (n, d) distinct inputs. y : (n,) targets.
    grid : initial candidate knots per gap between neighbouring points (d = 1); doubled up to
        ``refine`` times until W* changes by less than ``rtol`` (relative).
    num_directions : random unit directions of the hyperplane dictionary (d > 1).
    drop_below : knots with |c| below this fraction of max |c| are dropped from the network.

    Examples
    --------
    >>> import jax.numpy as jnp, minstab as ms
    >>> r = ms.smoothest_interpolant(jnp.array([-1.0, 0.0, 1.0]), jnp.array([0.0, 1.0, 0.0]))
    >>> round(r.w_star, 5), round(r.eta_max, 4)  # a kink of mass -2 at 0, g(0) = sqrt(2)/9
    (0.31427, 1.2281)
    """
    grid = check_int(grid, "grid", minimum=1)
    refine = check_int(refine, "refine", minimum=0, maximum=40)
    rtol = check_real(rtol, "rtol", lo=0.0)
    num_directions = check_int(num_directions, "num_directions", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    drop_below = check_real(drop_below, "drop_below", lo=0.0, hi=1.0, hi_open=True)
    x = _as_float_array(x, "x")
    y = _as_float_array(y, "y")
    x2 = x[:, None] if x.ndim == 1 else x
    if x2.ndim != 2 or y.shape != (x2.shape[0],):
        raise ValueError(
            f"x must be (n,) or (n, d) and y (n,) with the same n; got {x.shape}, {y.shape}"
        )
    if x2.shape[0] < 2:
        raise ValueError(f"x needs at least 2 points, got {x2.shape[0]}")
    check_finite(x2, "x")
    check_finite(y, "y")
    if len(np.unique(x2, axis=0)) != x2.shape[0]:
        raise ValueError("x must contain distinct points (interpolation is otherwise ill-posed)")
    n = x2.shape[0]
    cols = (n - 1) * grid * 2**refine if x2.shape[1] == 1 else n * num_directions
    name = "refine" if x2.shape[1] == 1 else "num_directions"
    nbytes = 4.0 * n * cols * 8  # the LP's constraint matrix (n rows) and HiGHS's copies
    check_memory(nbytes, name, f"an interpolation LP with {cols:.3g} candidate knots")
    if x2.shape[1] == 1:
        return _smoothest_1d(x2[:, 0], y, grid, refine, rtol, drop_below)
    return _smoothest_nd(x2, y, num_directions, seed, drop_below)


def _as_float_array(a, name: str) -> np.ndarray:
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArgumentTypeError(
            f"{name} must be an array of numbers, got {type(a).__name__}"
        ) from None


def _continuous_side(t_data, x, delta):
    """Move knots on data points by delta to the side where g is continuous (eqs. 22-23).

    g+ is right-continuous and g- left-continuous, each dropping at a data point, so
    g(x_j) = min(g(x_j-), g(x_j+)): the side with the smaller g approaches g(x_j).
    """
    left = np.asarray(weight_1d(jnp.asarray(t_data - delta), jnp.asarray(x)))
    right = np.asarray(weight_1d(jnp.asarray(t_data + delta), jnp.asarray(x)))
    return np.where(left <= right, t_data - delta, t_data + delta)


def _solve_1d(x, y, t):
    base = np.stack([np.ones_like(x), x], axis=1)
    g = np.asarray(weight_1d(jnp.asarray(t), jnp.asarray(x)))
    feats = np.maximum(x[:, None] - t[None, :], 0)
    return _lp(base, feats, g, y)


def _smoothest_1d(x, y, grid, refine, rtol, drop_below):
    xs = np.sort(x)
    prev, err = None, float("nan")
    for level in range(refine + 1):
        t = _candidates_1d(xs, grid * 2**level)
        w = _solve_1d(x, y, t)[0]
        if prev is not None:
            err = abs(w - prev)
            if err <= rtol * max(abs(w), 1e-300):
                break
        prev = w
    # The infimum W* is approached, not attained, by twice-differentiable interpolants when
    # knots sit on data points: realize it with those knots moved off by delta (relative 1e-7).
    delta = 1e-7 * float(np.min(np.diff(xs)))
    on_data = np.isin(t, xs)
    t_smooth = np.sort(
        np.where(on_data, 0.0, t) + np.where(on_data, _continuous_side(t, x, delta), 0.0)
    )
    w_net, lin, c = _solve_1d(x, y, t_smooth)
    keep = np.abs(c) > drop_below * max(np.abs(c).max(), 1e-300)
    dtype = jnp.float64 if _x64() else jnp.float32
    params = _network_1d(lin, t_smooth[keep], c[keep], xs, dtype)
    f = _forward_np(params, x[:, None])
    return Prediction(w, 1 / (w + 0.5), params, t_smooth[keep], c[keep], float(err), False,
                      float(np.max(np.abs(f - y))), w_net)  # fmt: skip


def _smoothest_nd(x, y, num_directions, seed, drop_below):
    n, d = x.shape
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((num_directions, d))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    proj = x @ v.T  # (n, D)
    vv = np.repeat(v, n, axis=0)
    bb = proj.T.reshape(-1)  # hyperplanes through every data point, in every direction
    base = np.concatenate([np.ones((n, 1)), x], axis=1)

    def solve(vv, bb):
        g = np.asarray(weight(jnp.asarray(vv), jnp.asarray(bb), jnp.asarray(x)))
        return _lp(base, np.maximum(x @ vv.T - bb[None, :], 0), g, y)

    w = solve(vv, bb)[0]
    # As in d = 1, g(v, b) at a data point is its one-sided limit from the side where it is
    # smaller: realize W* with the used planes moved just off their points to that side.
    delta = 1e-7 * np.repeat(np.ptp(proj, axis=0), n)
    w_lo = np.asarray(weight(jnp.asarray(vv), jnp.asarray(bb - delta), jnp.asarray(x)))
    w_hi = np.asarray(weight(jnp.asarray(vv), jnp.asarray(bb + delta), jnp.asarray(x)))
    bb = np.where(w_lo <= w_hi, bb - delta, bb + delta)
    w_net, lin, c = solve(vv, bb)
    keep = np.abs(c) > drop_below * max(np.abs(c).max(), 1e-300)
    # linear part a + u.x: a cancelling pair per coordinate direction (zero Laplacian mass)
    u, a = lin[1:], lin[0]
    anchor = np.min(x, axis=0) - 1.0  # planes outside the data, one per axis
    w1 = np.concatenate([np.eye(d), -np.eye(d), vv[keep]])
    b1 = np.concatenate([-anchor, anchor, -bb[keep]])
    w2 = np.concatenate([u, -u, c[keep]])
    b2 = a + float(u @ anchor)
    dt = jnp.float64 if _x64() else jnp.float32
    params = ShallowParams(*(jnp.asarray(t, dt) for t in (w1, b1, w2, np.asarray(b2))))
    f = _forward_np(params, x)
    return Prediction(w, 1 / (w + 0.5), params, bb[keep], c[keep], float("nan"), True,
                      float(np.max(np.abs(f - y))), w_net)  # fmt: skip


def _x64() -> bool:
    import jax

    return bool(jax.config.jax_enable_x64)


def _forward_np(p, x):
    z = x @ np.asarray(p.w1, np.float64).T + np.asarray(p.b1, np.float64)[None, :]
    return np.maximum(z, 0) @ np.asarray(p.w2, np.float64) + float(p.b2)


def check_against_sweep(prediction: Prediction, sweep_result, *, knot_tol: float = 1e-6) -> dict:
    """Check each run of a sweep against the prediction.

    A run disagrees when it converged, is twice differentiable (no knot within ``knot_tol`` of a
    data point, relative to the data range) and its step size exceeds ``eta_max``. Returns
    ``{"eta_max", "largest_converged_eta", "twice_differentiable", "agrees", "all_agree"}``.
    """
    if not isinstance(prediction, Prediction):
        raise ArgumentTypeError(f"prediction must be a Prediction, got {type(prediction).__name__}")
    knot_tol = check_real(knot_tol, "knot_tol", lo=0.0)
    s = sweep_result
    if not getattr(s, "shallow", True) or np.shape(getattr(s.params, "w1", None))[-1:] != (1,):
        raise ValueError("sweep_result must be a sweep of the univariate shallow ReLU net")
    x = np.asarray(s.x).reshape(len(s.x), -1)[:, 0]
    span = float(x.max() - x.min())
    w1 = np.asarray(s.params.w1)[..., 0]
    b1 = np.asarray(s.params.b1)
    w2 = np.asarray(s.params.w2)
    live = (w1 != 0) & (w2 != 0)
    t = np.where(live, -b1 / np.where(w1 != 0, w1, 1), np.inf)
    gap = np.min(np.abs(t[:, :, None] - x[None, None, :]), axis=(1, 2))
    smooth = gap > knot_tol * span
    conv = np.asarray(s.converged)
    etas = np.asarray(s.etas)
    agrees = ~(conv & smooth & (etas > prediction.eta_max))
    return {
        "eta_max": prediction.eta_max,
        "w_star": prediction.w_star,
        "largest_converged_eta": float(etas[conv].max()) if conv.any() else None,
        "twice_differentiable": smooth.tolist(),
        "agrees": agrees.tolist(),
        "all_agree": bool(agrees.all()),
    }


class Budget(NamedTuple):
    """Result of :func:`minimal_budget`.

    Attributes
    ----------
    budget : B(eps), the smallest weighted Laplacian norm sum |c| g (a weighted Radon-domain norm)
        of a shallow ReLU network over the dictionary within ``accuracy`` of every target.
    eta_max : 1 / (budget + 1/2): the largest step size at which GD can have a stable solution
        this accurate (Theorem 1, multivariate).
    params : the optimal network (linear part as cancelling pairs of units outside the data).
    max_error : max_i |f(x_i) - y_i| of ``params`` (<= accuracy up to the LP tolerance).
    num_hyperplanes, num_used : dictionary size (planes with g > 0), planes with c != 0.
    """

    budget: float
    eta_max: float
    params: ShallowParams
    max_error: float
    num_hyperplanes: int
    num_used: int


def _directions(d, num, seed):
    if d == 2:  # evenly spaced on the half circle: (v, b) and (-v, -b) differ by a linear function
        t = np.pi * (np.arange(num) + 0.5) / num
        return np.stack([np.cos(t), np.sin(t)], axis=1)
    v = np.random.default_rng(seed).standard_normal((num, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _budget_lp(x, y, feats, g, accuracy):
    from scipy import sparse
    from scipy.optimize import linprog

    n, d = x.shape
    m = feats.shape[1]
    base = np.concatenate([np.ones((n, 1)), x], axis=1)
    f = sparse.csr_matrix(feats)
    # f(x_i) - y_i = s_i with |s_i| <= accuracy; c = c+ - c- with cost g (c+ + c-)
    a = sparse.hstack([sparse.csr_matrix(base), f, -f, -sparse.eye(n)]).tocsc()
    cost = np.concatenate([np.zeros(d + 1), g, g, np.zeros(n)])
    bounds = [(None, None)] * (d + 1) + [(0, None)] * (2 * m) + [(-accuracy, accuracy)] * n
    res = linprog(cost, A_eq=a, b_eq=y, bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(
            f"the accuracy LP failed ({res.message}); with accuracy {accuracy:g} the dictionary "
            "may be too coarse to reach the targets: increase num_directions / num_offsets"
        )
    z = res.x
    return float(res.fun), z[: d + 1], z[d + 1 : d + 1 + m] - z[d + 1 + m : d + 1 + 2 * m]


def minimal_budget(
    x,
    y,
    *,
    accuracy: float,
    num_directions: int = 48,
    num_offsets: int = 48,
    seed: int = 0,
) -> Budget:
    """Smallest weighted Laplacian norm of a shallow ReLU net within ``accuracy`` of the data.

    The accuracy-constrained LP of the module docstring over ``num_directions`` directions (d = 2:
    evenly spaced angles; d > 2: random unit vectors from ``seed``) times ``num_offsets`` offsets
    evenly spaced strictly inside the range of the data's projections (planes outside it have
    g = 0 and are linear on the data, which the free linear part already covers).

    Parameters
    ----------
    x : (n, d) inputs, d >= 2. y : (n,) targets.
    accuracy : eps >= 0 in max_i |f(x_i) - y_i| <= eps (0: interpolation).

    Examples
    --------
    >>> import numpy as np, minstab as ms
    >>> g = np.linspace(-1, 1, 5); x = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    >>> flat = ms.shallow.predict.minimal_budget(x, 0.3 * x[:, 0] - 1, accuracy=0.01)
    >>> round(flat.budget, 12), flat.num_used  # a linear target costs nothing
    (0.0, 0)
    >>> tent = np.maximum(1 - np.abs(x).sum(1), 0)
    >>> b = [ms.shallow.predict.minimal_budget(x, tent, accuracy=e).budget for e in (0.2, 0.1, 0.0)]
    >>> b[0] <= b[1] <= b[2]  # a tighter accuracy never costs less
    True
    """
    accuracy = check_real(accuracy, "accuracy", lo=0.0)
    num_directions = check_int(num_directions, "num_directions", minimum=1)
    num_offsets = check_int(num_offsets, "num_offsets", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    x = _as_float_array(x, "x")
    y = _as_float_array(y, "y")
    if x.ndim != 2 or x.shape[1] < 2 or y.shape != (x.shape[0],):
        raise ValueError(f"x must be (n, d) with d >= 2 and y (n,); got {x.shape}, {y.shape}")
    check_finite(x, "x")
    check_finite(y, "y")
    if not np.isfinite(accuracy) or accuracy < 0:
        raise ValueError(f"accuracy must be finite and >= 0, got {accuracy}")
    if int(num_directions) < 1 or int(num_offsets) < 1:
        raise ValueError(
            f"num_directions and num_offsets must be positive, got {num_directions}, {num_offsets}"
        )
    v = _directions(x.shape[1], int(num_directions), seed)
    proj = x @ v.T
    lo, hi = proj.min(axis=0), proj.max(axis=0)
    frac = (np.arange(int(num_offsets)) + 0.5) / int(num_offsets)
    vv = np.repeat(v, int(num_offsets), axis=0)
    bb = (lo[:, None] + (hi - lo)[:, None] * frac[None, :]).reshape(-1)
    g = np.asarray(weight(jnp.asarray(vv), jnp.asarray(bb), jnp.asarray(x)))
    live = g > 0
    vv, bb, g = vv[live], bb[live], g[live]
    val, lin, c = _budget_lp(x, y, np.maximum(x @ vv.T - bb[None, :], 0), g, float(accuracy))
    keep = np.abs(c) > 1e-12 * max(np.abs(c).max(initial=0.0), 1e-300)
    d = x.shape[1]
    u, a0 = lin[1:], lin[0]
    anchor = np.min(x, axis=0) - 1.0  # a + u.x as cancelling pairs outside the data (no mass)
    w1 = np.concatenate([np.eye(d), -np.eye(d), vv[keep]])
    b1 = np.concatenate([-anchor, anchor, -bb[keep]])
    w2 = np.concatenate([u, -u, c[keep]])
    dt = jnp.float64 if _x64() else jnp.float32
    params = ShallowParams(*(jnp.asarray(t, dt) for t in (w1, b1, w2, np.asarray(a0 + u @ anchor))))
    err = float(np.max(np.abs(_forward_np(params, x) - y)))
    return Budget(val, 1 / (val + 0.5), params, err, int(g.size), int(keep.sum()))
