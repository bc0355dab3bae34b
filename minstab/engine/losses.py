"""Losses of predictions, ``loss(pred, y)``: the form every model-agnostic function accepts.

:func:`squared_error` (seed 004 eq. 19 for any output shape, the default) and
:func:`softmax_cross_entropy` (``minstab.hessian(..., model=apply, loss=...)``). The losses of
the shallow net's parameters (``quadratic_loss`` and its kin) are in :mod:`minstab.shallow.losses`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["squared_error", "softmax_cross_entropy"]


def squared_error(pred: jax.Array, y: jax.Array) -> jax.Array:
    """L = (1/2n) sum_j ||pred_j - y_j||^2 over the n rows of ``pred`` (seed 004 eq. 19).

    The default ``loss(pred, y)`` of the model-agnostic functions; for predictions of shape
    (n,) it is :func:`minstab.shallow.losses.quadratic_loss`. Its Hessian in ``pred`` is I / n,
    so the Gauss-Newton matrix is J^T J / n (THEORY §2, eq. 28).

    Examples
    --------
    >>> import jax.numpy as jnp, minstab as ms
    >>> float(ms.squared_error(jnp.array([1.0, 3.0]), jnp.array([0.0, 1.0])))
    1.25
    """
    _same_shape(pred, y, "pred")
    r = pred - y
    return 0.5 * jnp.sum(r * r) / pred.shape[0]


def _same_shape(pred, y, name: str) -> None:
    """``y`` must have ``pred``'s shape: broadcasting (n, 1) against (n,) would sum n^2 terms."""
    if jnp.ndim(pred) == 0 or jnp.shape(pred) != jnp.shape(y):
        raise ValueError(
            f"y must have the shape of {name} {jnp.shape(pred)} (one row per sample), "
            f"got {jnp.shape(y)}"
        )


def softmax_cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
    """L = -(1/n) sum_j y_j . log softmax(logits_j) for logits (n, c) and one-hot or soft y (n, c).

    Its Hessian in the logits is block diagonal, (1/n)(diag p_j - p_j p_j^T) with p_j the
    softmax, positive semi-definite: the Gauss-Newton matrix of a classifier.

    Examples
    --------
    >>> import jax.numpy as jnp, minstab as ms
    >>> round(float(ms.softmax_cross_entropy(jnp.zeros((1, 4)), jnp.eye(4)[:1])), 6)
    1.386294
    """
    if jnp.ndim(logits) != 2:
        raise ValueError(f"logits must have shape (n, c), got {jnp.shape(logits)}")
    _same_shape(logits, y, "logits")
    return -jnp.sum(y * jax.nn.log_softmax(logits, axis=-1)) / logits.shape[0]
