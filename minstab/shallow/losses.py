"""Losses of the shallow net's parameters: quadratic (seed 004 eq. 19), logistic and exponential.

``loss(params, x, y)`` for :class:`~minstab.shallow.nets.ShallowParams`; the same losses of
predictions, for any model, are in :mod:`minstab.engine.losses`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .nets import ShallowParams, forward, validate

__all__ = ["quadratic_loss", "logistic_loss", "exponential_loss", "residuals"]


def residuals(params: ShallowParams, x: jax.Array, y: jax.Array, **kw) -> jax.Array:
    """r_j = f(x_j) - y_j, shape (n,)."""
    return forward(params, x, **kw) - y


def quadratic_loss(params: ShallowParams, x: jax.Array, y: jax.Array, **kw) -> jax.Array:
    """L = (1/2n) sum_j (f(x_j) - y_j)^2 (seed 004 eq. 19).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, minstab as ms
    >>> p = ms.init_shallow(jax.random.key(0), 1, 4)
    >>> float(ms.quadratic_loss(p, jnp.zeros(3), ms.forward(p, jnp.zeros(3))))
    0.0
    """
    validate(params, x, y)
    r = residuals(params, x, y, **kw)
    return 0.5 * jnp.mean(r * r)


def logistic_loss(params: ShallowParams, x: jax.Array, y: jax.Array, **kw) -> jax.Array:
    """L = (1/n) sum_j log(1 + exp(-y_j f(x_j))) for labels y_j in {-1, +1}."""
    validate(params, x, y)
    return jnp.mean(jax.nn.softplus(-y * forward(params, x, **kw)))


def exponential_loss(params: ShallowParams, x: jax.Array, y: jax.Array, **kw) -> jax.Array:
    """L = (1/n) sum_j exp(-y_j f(x_j)) for labels y_j in {-1, +1}."""
    validate(params, x, y)
    return jnp.mean(jnp.exp(-y * forward(params, x, **kw)))
