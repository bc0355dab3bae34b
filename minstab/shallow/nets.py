"""Shallow ReLU networks: parameters, initialization, forward pass, symmetries, knots.

The network of seed 004 eq. (18), for inputs in R^d:

    f(x) = sum_i w2_i * sigma(w1_i . x + b1_i) + b2,   sigma(z) = max(z, s*z)

with ``s = negative_slope`` (0 for ReLU, in (0, 1) for leaky ReLU). The flat parameter
vector is ordered as in eq. (20): ``[w1 (row-major, k*d), b1 (k), w2 (k), b2 (1)]``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .._validate import (
    ArgumentTypeError,
    as_inputs,
    check_choice,
    check_finite,
    check_int,
    check_interval,
    check_key,
    check_memory,
    check_params,
    check_permutation,
    check_real,
    check_real_values,
    is_concrete,
)

__all__ = [
    "ShallowParams",
    "Hyperplanes",
    "Knots",
    "init_shallow",
    "forward",
    "preactivations",
    "activation",
    "activation_derivative",
    "flatten",
    "unflatten",
    "num_params",
    "rescale",
    "permute",
    "knots",
    "hyperplanes",
]


class ShallowParams(NamedTuple):
    """Parameters of ``f(x) = sum_i w2_i sigma(w1_i . x + b1_i) + b2``.

    Attributes
    ----------
    w1 : (k, d) first-layer weights (one row per neuron).
    b1 : (k,) first-layer biases.
    w2 : (k,) output weights.
    b2 : () output bias.
    """

    w1: jax.Array
    b1: jax.Array
    w2: jax.Array
    b2: jax.Array

    @property
    def width(self) -> int:
        """Number of neurons k."""
        return self.w1.shape[-2]

    @property
    def in_dim(self) -> int:
        """Input dimension d."""
        return self.w1.shape[-1]


class Knots(NamedTuple):
    """Knots of a univariate network: f'' = sum_i mass_i * delta(x - position_i) (seed 004 §3).

    ``active`` is False for neurons with w1_i = 0, which have no knot (their position and
    mass are set to 0).
    """

    position: jax.Array
    mass: jax.Array
    active: jax.Array


class Hyperplanes(NamedTuple):
    """Hyperplanes of a multivariate network (THEORY §4).

    Neuron i is active where ``normal_i . x > offset_i``; it puts Laplacian mass
    ``mass_i = w2_i * ||w1_i||`` on that hyperplane. ``active`` is False when w1_i = 0.
    """

    normal: jax.Array
    offset: jax.Array
    mass: jax.Array
    active: jax.Array


def init_shallow(
    key: jax.Array,
    in_dim: int,
    width: int,
    *,
    scheme: str = "he",
    output_scale: float | None = None,
    knot_range: tuple[float, float] | None = None,
    dtype=None,
) -> ShallowParams:
    """Random shallow network.

    Parameters
    ----------
    key : PRNG key.
    in_dim, width : input dimension d and number of neurons k.
    scheme : ``"he"`` (w1 ~ N(0, 2/d), w2 ~ N(0, 2/k)), ``"lecun"`` (w1 ~ N(0, 1/d),
        w2 ~ N(0, 1/k)), ``"ntk"`` (all N(0, 1), output weights scaled by 1/sqrt(k)), or
        ``"uniform"`` (PyTorch's default: U(+-1/sqrt(fan_in)) for each layer).
    output_scale : multiplies the output weights (default 1). Small values give the
        "rich" regime, large ones the lazy regime.
    knot_range : for d = 1, place the knots -b1/w1 uniformly in this interval instead of
        drawing b1 from the scheme (so that every neuron bends inside the data).
    dtype : floating dtype (default: JAX's default float).

    Examples
    --------
    >>> import jax, minstab as ms
    >>> p = ms.init_shallow(jax.random.key(0), in_dim=1, width=8)
    >>> p.w1.shape, p.b1.shape, p.w2.shape, p.b2.shape
    ((8, 1), (8,), (8,), ())
    """
    check_key(key)
    d = check_int(in_dim, "in_dim", minimum=1)
    k = check_int(width, "width", minimum=1)
    check_choice(scheme, "scheme", ("he", "lecun", "ntk", "uniform"))
    output_scale = check_real(output_scale, "output_scale", none=True)
    if knot_range is not None:
        knot_range = check_interval(knot_range, "knot_range")
    dtype = float_dtype(dtype)
    size = num_params(k, d) * jnp.dtype(dtype).itemsize
    check_memory(3 * size, "width", f"a net of {num_params(k, d):.3g} parameters (x3 to draw)")
    k1, k2, k3 = jax.random.split(key, 3)
    if scheme == "he":
        s1, s2, sb = np.sqrt(2.0 / d), np.sqrt(2.0 / k), 0.0
    elif scheme == "lecun":
        s1, s2, sb = np.sqrt(1.0 / d), np.sqrt(1.0 / k), 0.0
    elif scheme == "ntk":
        s1, s2, sb = 1.0, 1.0 / np.sqrt(k), 1.0
    elif scheme == "uniform":
        s1, s2, sb = None, None, None
    else:
        raise ValueError(f"scheme must be one of 'he', 'lecun', 'ntk', 'uniform', got {scheme!r}")
    if scheme == "uniform":
        a1, a2 = 1.0 / np.sqrt(d), 1.0 / np.sqrt(k)
        w1 = jax.random.uniform(k1, (k, d), dtype, -a1, a1)
        b1 = jax.random.uniform(k2, (k,), dtype, -a1, a1)
        w2 = jax.random.uniform(k3, (k,), dtype, -a2, a2)
    else:
        w1 = s1 * jax.random.normal(k1, (k, d), dtype)
        b1 = sb * jax.random.normal(k2, (k,), dtype)
        w2 = s2 * jax.random.normal(k3, (k,), dtype)
    if knot_range is not None:
        if d != 1:
            raise ValueError(f"knot_range needs in_dim == 1, got in_dim={d}")
        lo, hi = knot_range
        t = jax.random.uniform(k2, (k,), dtype, lo, hi)
        b1 = -w1[:, 0] * t
    if output_scale is not None:
        w2 = w2 * output_scale
    return ShallowParams(w1, b1, w2, jnp.zeros((), dtype))


def float_dtype(dtype=None):
    """A floating dtype (default: JAX's default float); else a TypeError naming ``dtype``."""
    try:
        dt = jnp.dtype(dtype) if dtype is not None else jnp.zeros(()).dtype
    except TypeError:
        raise ArgumentTypeError(
            f"dtype must be a floating dtype such as jnp.float64, got {dtype!r}"
        ) from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise ArgumentTypeError(f"dtype must be a floating dtype such as jnp.float64, got {dt}")
    return dt


def check_slope(negative_slope) -> float:
    """The leaky-ReLU slope: a finite number in [0, 1) (0: ReLU)."""
    if not is_concrete(negative_slope):
        return negative_slope
    return check_real(negative_slope, "negative_slope", lo=0.0, hi=1.0, hi_open=True)


def activation(z: jax.Array, negative_slope: float = 0.0) -> jax.Array:
    """sigma(z) = max(z, s z): ReLU for s = 0, leaky ReLU for 0 < s < 1."""
    if negative_slope == 0.0:
        return jnp.maximum(z, 0)
    return jnp.where(z > 0, z, negative_slope * z)


def activation_derivative(z: jax.Array, negative_slope: float = 0.0) -> jax.Array:
    """sigma'(z) with the convention sigma'(0) = s (the neuron counts as inactive at its knot)."""
    return jnp.where(z > 0, jnp.ones_like(z), negative_slope * jnp.ones_like(z))


def preactivations(params: ShallowParams, x: jax.Array) -> jax.Array:
    """Z with Z[j, i] = w1_i . x_j + b1_i, shape (n, k). ``x`` is (n, d) or (n,)."""
    x = x[:, None] if x.ndim == 1 else x
    return x @ params.w1.T + params.b1[None, :]


def forward(params: ShallowParams, x: jax.Array, *, negative_slope: float = 0.0) -> jax.Array:
    """Network output f(x) for ``x`` of shape (n, d), or (n,) meaning d = 1; returns (n,).

    Examples
    --------
    >>> import jax.numpy as jnp, minstab as ms
    >>> p = ms.ShallowParams(jnp.array([[1.0]]), jnp.array([0.0]), jnp.array([2.0]), jnp.array(0.5))
    >>> ms.forward(p, jnp.array([-1.0, 3.0]))
    Array([0.5, 6.5], dtype=float32)
    """
    negative_slope = check_slope(negative_slope)
    if jnp.ndim(params.w1) == 2:  # a single net (stacked nets are the vmapped caller's)
        check_params(params, finite=False)
        x = as_inputs(x, params.w1.shape[-1])
        check_finite(x, "x")
    return activation(preactivations(params, x), negative_slope) @ params.w2 + params.b2


def num_params(width: int, in_dim: int) -> int:
    """P = k (d + 2) + 1 (eq. 20 for d = 1: 3k + 1)."""
    width = check_int(width, "width", minimum=1)
    return width * (check_int(in_dim, "in_dim", minimum=1) + 2) + 1


def flatten(params: ShallowParams) -> jax.Array:
    """Flat vector [w1 row-major, b1, w2, b2] of seed 004 eq. (20) (``ravel_pytree``'s order)."""
    return ravel_pytree(params)[0]


def unflatten(theta: jax.Array, width: int, in_dim: int) -> ShallowParams:
    """Inverse of :func:`flatten` for a network with ``width`` neurons and input dimension ``in_dim``."""
    k, d = check_int(width, "width", minimum=1), check_int(in_dim, "in_dim", minimum=1)
    theta = jnp.asarray(theta)
    if theta.shape != (num_params(k, d),):
        raise ValueError(
            f"theta must have shape ({num_params(k, d)},) for width={k}, in_dim={d}, "
            f"got {theta.shape}"
        )
    zeros = functools.partial(jnp.zeros, dtype=theta.dtype)
    like = ShallowParams(zeros((k, d)), zeros((k,)), zeros((k,)), zeros(()))
    return ravel_pytree(like)[1](theta)


def rescale(params: ShallowParams, alpha: jax.Array) -> ShallowParams:
    """Function-preserving rescaling (w1_i, b1_i, w2_i) -> (a_i w1_i, a_i b1_i, w2_i / a_i), a_i > 0.

    ReLU is positively homogeneous, so f is unchanged for any positive ``alpha`` (shape (k,)).
    """
    check_params(params, finite=False)
    alpha = jnp.asarray(alpha)
    if alpha.shape != (params.w1.shape[0],):
        raise ValueError(f"alpha must have shape (k,) = ({params.w1.shape[0]},), got {alpha.shape}")
    check_real_values(alpha, "alpha", lo=0.0, lo_open=True)
    return ShallowParams(
        params.w1 * alpha[:, None], params.b1 * alpha, params.w2 / alpha, params.b2
    )


def permute(params: ShallowParams, perm: jax.Array) -> ShallowParams:
    """Reorder the neurons (another function-preserving symmetry); ``perm`` permutes 0..k-1."""
    check_params(params, finite=False)
    check_permutation(perm, params.w1.shape[0], "perm")
    return ShallowParams(params.w1[perm], params.b1[perm], params.w2[perm], params.b2)


def knots(params: ShallowParams) -> Knots:
    """Knots t_i = -b1_i / w1_i and second-derivative masses w2_i |w1_i| of a univariate net.

    f'' (in the weak sense) = sum_i w2_i |w1_i| delta(x - t_i) (seed 004 §3). Neurons with
    w1_i = 0 are constant and have no knot (``active`` False, mass 0).
    """
    check_params(params, finite=False)
    if params.w1.shape[-1] != 1:
        raise ValueError(
            f"knots needs a univariate network (w1 of shape (k, 1)), got {params.w1.shape}"
        )
    w = params.w1[:, 0]
    active = w != 0
    safe = jnp.where(active, w, 1)
    position = jnp.where(active, -params.b1 / safe, 0)
    mass = jnp.where(active, params.w2 * jnp.abs(w), 0)
    return Knots(position, mass, active)


def hyperplanes(params: ShallowParams) -> Hyperplanes:
    """Unit normals v_i = w1_i/||w1_i||, offsets b_i = -b1_i/||w1_i|| and masses w2_i ||w1_i||.

    Neuron i is active on {x : v_i . x > b_i}; Delta sigma(w.x + b) is ||w|| times the surface
    measure of its hyperplane, so the Laplacian of f carries mass w2_i ||w1_i|| there (THEORY §4).
    """
    check_params(params, finite=False)
    norm = jnp.linalg.norm(params.w1, axis=-1)
    active = norm > 0
    safe = jnp.where(active, norm, 1)
    normal = jnp.where(active[:, None], params.w1 / safe[:, None], 0)
    offset = jnp.where(active, -params.b1 / safe, 0)
    mass = jnp.where(active, params.w2 * norm, 0)
    return Hyperplanes(normal, offset, mass, active)


def validate(params, x, y=None, *, name_x: str = "x", name_y: str = "y"):
    """Check shapes (always) and finiteness (when concrete) of user inputs; return x as (n, d).

    Raises ``ValueError`` naming the offending argument. Used by every public entry point
    before any tracing.
    """
    check_params(params)
    x2 = as_inputs(x, params.w1.shape[-1], name=name_x)
    check_finite(x2, name_x)
    if y is not None:
        y = jnp.asarray(y)
        if y.shape != (x2.shape[0],):
            raise ValueError(
                f"{name_y} must have shape (n,) = ({x2.shape[0]},) to match {name_x}, got {y.shape}"
            )
        check_finite(y, name_y)
    return x2, y
