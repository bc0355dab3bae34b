"""Two-hidden-layer ReLU networks with the curvature tools of the shallow case (seed 000 §depth).

    f(x) = w3 . sigma(W2 sigma(W1 x + b1) + b2) + b3,   sigma(z) = max(z, 0)

Flat parameter order: ``[W1 (row-major, k1*d), b1 (k1), W2 (row-major, k2*k1), b2 (k2),
w3 (k2), b3 (1)]``. The quadratic loss is seed 004 eq. (19), L = (1/2n) sum_j (f(x_j) - y_j)^2;
its sharpness (largest algebraic Hessian eigenvalue, Lemma 1: a stable minimum has
lambda_max <= 2/eta) comes from the generic engine (``minstab.sharpness(model=...)``): Lanczos
on a Hessian-vector product, or a dense Hessian for small nets. :func:`bump_network` realizes
the compactly supported bump sigma(1 - ||x||_1) exactly, the depth-separation example of
seed 000.
"""

from __future__ import annotations

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
    check_key,
    check_memory,
    check_positive,
)
from ..engine.eigen import EigResult
from ..engine.loop import block_steps, new_status
from .curvature import hessian, sharpness
from .nets import float_dtype

__all__ = [
    "DeepParams",
    "init_deep",
    "deep_forward",
    "deep_flatten",
    "deep_unflatten",
    "deep_num_params",
    "deep_quadratic_loss",
    "deep_hessian",
    "deep_sharpness",
    "bump_network",
    "bump",
    "deep_gd",
]


class DeepParams(NamedTuple):
    """Parameters of a two-hidden-layer ReLU net.

    Attributes
    ----------
    w1 : (k1, d); b1 : (k1,); w2 : (k2, k1); b2 : (k2,); w3 : (k2,); b3 : ().
    """

    w1: jax.Array
    b1: jax.Array
    w2: jax.Array
    b2: jax.Array
    w3: jax.Array
    b3: jax.Array

    @property
    def in_dim(self) -> int:
        """Input dimension d."""
        return self.w1.shape[-1]

    @property
    def widths(self) -> tuple[int, int]:
        """Hidden widths (k1, k2)."""
        return self.w1.shape[-2], self.w2.shape[-2]


def _check(params: DeepParams) -> None:
    if not isinstance(params, DeepParams):
        raise ValueError(f"params must be DeepParams, got {type(params).__name__}")
    k1, d = np.shape(params.w1)
    k2 = np.shape(params.w2)[0]
    want = {"b1": (k1,), "w2": (k2, k1), "b2": (k2,), "w3": (k2,), "b3": ()}
    for name, shape in want.items():
        if np.shape(getattr(params, name)) != shape:
            raise ValueError(
                f"params.{name} must have shape {shape}, got {np.shape(getattr(params, name))}"
            )
    for name, a in zip(DeepParams._fields, params, strict=True):
        check_finite(jnp.asarray(a), f"params.{name}")


def _validate(params, x, y=None):
    _check(params)
    x2 = as_inputs(x, params.w1.shape[1], name="x")
    check_finite(x2, "x")
    if y is not None:
        y = jnp.asarray(y)
        if y.shape != (x2.shape[0],):
            raise ValueError(f"y must have shape ({x2.shape[0]},) to match x, got {y.shape}")
        check_finite(y, "y")
    return x2, y


def _widths(widths) -> tuple[int, int]:
    """Two positive integer widths (k1, k2)."""
    try:
        k1, k2 = widths
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"widths must be a pair (k1, k2), got {widths!r}") from None
    return check_int(k1, "widths[0]", minimum=1), check_int(k2, "widths[1]", minimum=1)


def init_deep(key, in_dim: int, widths: tuple[int, int], *, dtype=None) -> DeepParams:
    """He-initialized two-hidden-layer net (weights N(0, 2/fan_in), zero biases)."""
    check_key(key)
    k1, k2 = _widths(widths)
    d = check_int(in_dim, "in_dim", minimum=1)
    dtype = float_dtype(dtype)
    size = deep_num_params(d, (k1, k2))
    check_memory(3.0 * size * jnp.dtype(dtype).itemsize, "widths", f"a net of {size} parameters")
    a, b, c = jax.random.split(key, 3)
    return DeepParams(
        np.sqrt(2.0 / d) * jax.random.normal(a, (k1, d), dtype),
        jnp.zeros(k1, dtype),
        np.sqrt(2.0 / k1) * jax.random.normal(b, (k2, k1), dtype),
        jnp.zeros(k2, dtype),
        np.sqrt(1.0 / k2) * jax.random.normal(c, (k2,), dtype),
        jnp.zeros((), dtype),
    )


def _forward(params: DeepParams, x):
    h1 = jnp.maximum(x @ params.w1.T + params.b1[None, :], 0)
    h2 = jnp.maximum(h1 @ params.w2.T + params.b2[None, :], 0)
    return h2 @ params.w3 + params.b3


def deep_forward(params: DeepParams, x) -> jax.Array:
    """f(x) for x of shape (n, d) (or (n,) when d = 1); returns (n,)."""
    x2, _ = _validate(params, x)
    return _forward(params, x2)


def deep_num_params(in_dim: int, widths: tuple[int, int]) -> int:
    """P = k1 (d + 1) + k2 (k1 + 1) + k2 + 1."""
    k1, k2 = widths
    return k1 * (in_dim + 1) + k2 * (k1 + 1) + k2 + 1


def deep_flatten(params: DeepParams) -> jax.Array:
    """Flat vector in the order [W1, b1, W2, b2, w3, b3] (row-major; ``ravel_pytree``'s order)."""
    return ravel_pytree(params)[0]


def deep_unflatten(theta: jax.Array, in_dim: int, widths: tuple[int, int]) -> DeepParams:
    """Inverse of :func:`deep_flatten` for input dimension ``in_dim`` and ``widths`` (k1, k2)."""
    k1, k2 = _widths(widths)
    in_dim = check_int(in_dim, "in_dim", minimum=1)
    theta = jnp.asarray(theta)
    shapes = [(k1, in_dim), (k1,), (k2, k1), (k2,), (k2,), ()]
    size = sum(int(np.prod(s)) for s in shapes)
    if theta.shape != (size,):
        raise ValueError(f"theta must have shape ({size},), got {theta.shape}")
    like = DeepParams(*(jnp.zeros(s, theta.dtype) for s in shapes))
    return ravel_pytree(like)[1](theta)


def _loss(params, x, y):
    r = _forward(params, x) - y
    return 0.5 * jnp.mean(r * r)


def deep_quadratic_loss(params: DeepParams, x, y) -> jax.Array:
    """L = (1/2n) sum_j (f(x_j) - y_j)^2 (seed 004 eq. 19)."""
    x2, y = _validate(params, x, y)
    return _loss(params, x2, y)


def deep_hessian(params: DeepParams, x, y) -> jax.Array:
    """Dense (P, P) Hessian of the quadratic loss in the flat order (reference for small nets).

    The generic :func:`minstab.hessian` with ``model=`` this net (its ``ravel_pytree`` order is
    the flat order above). ReLU kinks: JAX differentiates sigma with sigma'(0) = 0, the
    one-sided value used for the shallow nets as well.
    """
    x2, y = _validate(params, x, y)
    return hessian(params, x2, y, model=_forward)


def deep_sharpness(
    params: DeepParams, x, y, *, method: str = "lanczos", num_iters: int | None = None, v0=None
) -> EigResult | jax.Array:
    """Sharpness lambda_max(Hessian) of the quadratic loss (Lemma 1 of seed 004).

    A thin call of the generic :func:`minstab.sharpness` with ``model=`` this net:
    ``method="lanczos"`` (default) runs Lanczos on the Hessian-vector product and returns an
    :class:`EigResult`; ``method="dense"`` returns ``eigvalsh(deep_hessian)[-1]`` as an array.
    Largest *algebraic* eigenvalue.
    """
    check_choice(method, "method", _DEEP_RESULTS)
    x2, y = _validate(params, x, y)
    p = deep_num_params(params.w1.shape[1], (params.w1.shape[0], params.w2.shape[0]))
    v0 = jnp.ones(p, x2.dtype) / np.sqrt(p) if v0 is None else jnp.asarray(v0, x2.dtype)
    r = sharpness(
        params, x2, y, model=_forward, method=method, v0=v0, num_iters=num_iters,
        full_output=True,
    )  # fmt: skip
    return _DEEP_RESULTS[method](r)


# what deep_sharpness returns for each method: an EigResult, or (dense) the value alone
_DEEP_RESULTS = {
    "lanczos": lambda r: EigResult(r.value, r.vector, r.residual, r.num_matvecs, r.converged),
    "dense": lambda r: r.value,
}


def bump(x) -> jax.Array:
    """The compactly supported bump sigma(1 - ||x||_1) for x of shape (n, d)."""
    x = jnp.asarray(x)
    return jnp.maximum(1 - jnp.sum(jnp.abs(x), axis=-1), 0)


def bump_network(in_dim: int, *, dtype=None) -> DeepParams:
    """Two-hidden-layer ReLU net with f(x) = sigma(1 - ||x||_1) exactly (seed 000, depth).

    Layer 1 has 2d neurons sigma(x_k), sigma(-x_k), whose sum is ||x||_1; layer 2 has one
    neuron sigma(1 - ||x||_1); the output weight is 1. A shallow net needs infinitely many
    neurons (its Laplacian is not a finite measure on hyperplanes) to represent it.
    """
    d = check_int(in_dim, "in_dim", minimum=1, maximum=100_000)
    dtype = float_dtype(dtype)
    eye = jnp.eye(d, dtype=dtype)
    return DeepParams(
        jnp.concatenate([eye, -eye], axis=0),
        jnp.zeros(2 * d, dtype),
        -jnp.ones((1, 2 * d), dtype),
        jnp.ones(1, dtype),
        jnp.ones(1, dtype),
        jnp.zeros((), dtype),
    )


@jax.jit
def _gd(params, x, y, eta, steps):
    def step(p, _):  # theta <- theta - eta grad L, and L at theta (the skeleton's divergence test)
        loss, g = jax.value_and_grad(_loss)(p, x, y)
        return jax.tree.map(lambda a, b: a - eta * b, p, g), loss

    carry, status = block_steps(step, params, new_status(x.dtype), steps)
    return carry, status.diverged


def deep_gd(params: DeepParams, x, y, eta, *, steps: int) -> DeepParams:
    """``steps`` full-batch GD steps ``theta <- theta - eta grad L`` on the quadratic loss.

    Used to check linear stability directly (Lemma 1): started near a minimum along the top
    Hessian eigenvector, GD returns when ``eta < 2 / lambda_max`` and leaves when ``eta`` is above.
    The steps run in the training skeleton (:func:`minstab.engine.loop.block_steps`): a run whose loss
    becomes non-finite or exceeds :data:`minstab.engine.loop.DIVERGE_ABOVE` is frozen at that iterate.
    """
    x2, y = _validate(params, x, y)
    steps = check_int(steps, "steps", minimum=0)
    check_positive(eta, "eta")
    eta = jnp.asarray(eta, x2.dtype)
    return _gd(params, x2, y, eta, jnp.asarray(steps, jnp.int32))[0]
