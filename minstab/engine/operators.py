"""The model-agnostic core: curvature operators of ``loss(model(params, x), y)`` for any model.

``model`` is a pure function ``apply(params, x) -> predictions`` over any params pytree whose
leaves share one floating dtype, returning one row of predictions per row of ``x``.
``loss(pred, y)`` defaults to :func:`minstab.squared_error`, the quadratic loss of the papers
L = (1/2n) sum_j ||f(x_j) - y_j||^2 (seed 004 eq. 19). Flat vectors are in
``jax.flatten_util.ravel_pytree`` order. With J = d pred / d theta, of shape (n c) x P, and
l(pred) = loss(pred, y):

    H = J^T (d^2 l / d pred^2) J + sum_j (d l / d pred_j) . grad^2_theta f(x_j)      (eq. 27)
    G = J^T (d^2 l / d pred^2) J                          (generalized Gauss-Newton, GGN)

For the quadratic loss d^2 l / d pred^2 = I / n, so G = J^T J / n shares its non-zero
eigenvalues with the (n c) x (n c) Gram matrix K = J J^T / n, and at an interpolating minimum
(pred = y) the second term of H vanishes: H = G (eq. 28).

The ``*_operator`` functions are traceable kernels (call them inside ``jit``; no validation).
They linearize once: the gradient (or the model) and its linearization are evaluated when the
operator is built, so every product afterwards is one linear tangent pass instead of a full
forward-over-reverse evaluation. Compiled callers pass the data as arguments and ``model`` and
``loss`` as static (hashable) arguments, so a new lambda per call compiles a new program.
:func:`check_model` is the validation every public entry point runs before tracing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .._validate import check_finite
from .losses import squared_error

__all__ = [
    "CURVATURES",
    "GramOperator",
    "check_hashable",
    "resolve_loss",
    "check_model",
    "hessian_operator",
    "ggn_operator",
    "curvature_operator",
    "gram_operator",
    "default_start",
    "hvp_flat",
    "dense_hessian",
    "flat_jacobian",
]

CURVATURES = ("hessian", "ggn")


def resolve_loss(loss: Callable | None) -> Callable:
    """``loss``, or :func:`minstab.squared_error` when it is None."""
    return squared_error if loss is None else loss


def check_hashable(fn, name: str) -> None:
    """``ValueError`` naming ``name`` unless ``fn`` is hashable (a static ``jit`` argument)."""
    try:
        hash(fn)
    except TypeError as e:
        raise ValueError(
            f"{name} must be hashable: it is a static argument of the compiled kernels ({e})"
        ) from None


def _check_params_tree(params) -> jnp.dtype:
    leaves = jax.tree_util.tree_leaves_with_path(params)
    if not leaves:
        raise ValueError(f"params must be a pytree of arrays, got {type(params).__name__}")
    dtypes = set()
    for path, leaf in leaves:
        dt = getattr(leaf, "dtype", None)
        if dt is None or not jnp.issubdtype(dt, jnp.floating):
            raise ValueError(
                f"params must be a pytree of floating arrays; params{jax.tree_util.keystr(path)} "
                f"is {type(leaf).__name__} with dtype {dt}"
            )
        dtypes.add(jnp.dtype(dt))
    if len(dtypes) > 1:
        raise ValueError(
            f"params leaves must share one floating dtype, got {sorted(map(str, dtypes))}"
        )
    for path, leaf in leaves:
        check_finite(leaf, f"params{jax.tree_util.keystr(path)}")
    return dtypes.pop()


def _check_data(a, name: str, dtype, *, floating: bool):
    a = jnp.asarray(a)
    if jnp.issubdtype(a.dtype, jnp.floating) and a.dtype != dtype:
        raise ValueError(
            f"{name} and params must share a floating dtype, got {name} {a.dtype}, params {dtype}"
        )
    if floating and not jnp.issubdtype(a.dtype, jnp.floating):
        raise ValueError(f"{name} must be a floating array for the quadratic loss, got {a.dtype}")
    check_finite(a, name)
    return a


def check_model(params, x, y=None, *, model: Callable, loss: Callable | None = None):
    """Validate a model problem before tracing; returns ``(x, y)`` as arrays.

    Raises ``ValueError`` naming the argument: ``model`` (or ``loss``) not callable or not
    hashable; ``params`` not a pytree of finite floating arrays of one dtype; ``x``, ``y`` of
    another floating dtype or not finite; the model's output (found by ``jax.eval_shape``,
    nothing is computed) not one array with one row per row of ``x``; ``y`` without a leading
    axis of one row per row of ``x``, not of the output's shape (default loss) or
    ``loss(pred, y)`` not a scalar.
    """
    if not callable(model):
        raise ValueError(
            f"model must be a callable apply(params, x) -> predictions, got {type(model).__name__}"
        )
    check_hashable(model, "model")
    if loss is not None:
        if not callable(loss):
            raise ValueError(f"loss must be a callable loss(pred, y), got {type(loss).__name__}")
        check_hashable(loss, "loss")
    dtype = _check_params_tree(params)
    x = _check_data(x, "x", dtype, floating=False)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"x must have a leading axis of at least one sample, got shape {x.shape}")
    out = jax.eval_shape(model, params, x)
    if not isinstance(out, jax.ShapeDtypeStruct) or out.ndim == 0 or out.shape[0] != x.shape[0]:
        got = getattr(out, "shape", type(out).__name__)
        raise ValueError(
            f"model(params, x) must return one array with one row per sample of x "
            f"({x.shape[0]} rows), got {got}"
        )
    if out.dtype != dtype:
        raise ValueError(f"model(params, x) must return params' dtype {dtype}, got {out.dtype}")
    if y is None:
        return x, None
    y = _check_data(y, "y", dtype, floating=loss is None)
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(
            f"y must have a leading axis of n = {x.shape[0]} samples to match x, got shape {y.shape}"
        )
    if loss is None and y.shape != out.shape:
        raise ValueError(f"y must have the shape of the model's output {out.shape}, got {y.shape}")
    if loss is not None:
        val = jax.eval_shape(loss, out, y)
        if not isinstance(val, jax.ShapeDtypeStruct) or val.shape != ():
            got = getattr(val, "shape", type(val).__name__)
            raise ValueError(f"loss(pred, y) must return a scalar, got {got}")
    return x, y


def _flat_loss(params, x, y, model, loss):
    theta, unravel = ravel_pytree(params)
    return theta, lambda t: loss(model(unravel(t), x), y)


def hessian_operator(params, x, y, *, model: Callable, loss: Callable):
    """``(theta, matvec)``: flat params and v -> H v (eq. 27), linearized once.

    ``jax.linearize`` of the gradient costs one forward-over-reverse pass (and keeps its
    intermediates); each product after that is the tangent part alone.
    """
    theta, f = _flat_loss(params, x, y, model, loss)
    _, matvec = jax.linearize(jax.grad(f), theta)
    return theta, matvec


def ggn_operator(params, x, y, *, model: Callable, loss: Callable):
    """``(theta, matvec)``: v -> G v = J^T (d^2 l / d pred^2) (J v), the GGN.

    The model is linearized once (J v is a tangent pass, J^T u its transpose) and the loss's
    Hessian in the predictions is applied by a linearized gradient (I / n for the quadratic
    loss, block diagonal for cross-entropy).
    """
    theta, unravel = ravel_pytree(params)
    pred, jvp = jax.linearize(lambda t: model(unravel(t), x), theta)
    vjp = jax.linear_transpose(jvp, theta)
    _, loss_hvp = jax.linearize(jax.grad(lambda p: loss(p, y)), pred)
    return theta, lambda v: vjp(loss_hvp(jvp(v)))[0]


def curvature_operator(params, x, y, *, model: Callable, loss: Callable, curvature: str):
    """:func:`hessian_operator` (``curvature="hessian"``) or :func:`ggn_operator` (``"ggn"``).

    Examples
    --------
    >>> import jax.numpy as jnp, minstab as ms
    >>> from minstab.engine.operators import curvature_operator
    >>> def apply(p, x):
    ...     return x @ p["w"]
    >>> x, y = jnp.array([[1.0, 0.0], [0.0, 2.0]]), jnp.zeros(2)
    >>> theta, matvec = curvature_operator({"w": jnp.ones(2)}, x, y, model=apply,
    ...                                    loss=ms.squared_error, curvature="ggn")
    >>> matvec(jnp.ones(2))  # X^T X v / n for a linear model
    Array([0.5, 2. ], dtype=float32)
    """
    op = hessian_operator if curvature == "hessian" else ggn_operator
    return op(params, x, y, model=model, loss=loss)


class GramOperator(NamedTuple):
    """The Gram side of the quadratic loss's Gauss-Newton matrix (eq. 28).

    Attributes
    ----------
    pred : model output f(x), shape (n, ...).
    matvec : u -> K u with K = J J^T / n, u flat of size N = pred.size (sample-major).
    transpose : u -> J^T u, flat (P,) in ``ravel_pytree`` order: maps an eigenvector u of K
        to one of J^T J / n with the same eigenvalue.
    jvp : v -> J v, flat (N,), for a flat v (P,).
    """

    pred: jax.Array
    matvec: Callable
    transpose: Callable
    jvp: Callable


def gram_operator(params, x, *, model: Callable) -> GramOperator:
    """K = J J^T / n as an operator, from one linearization of the model (vjp then jvp)."""
    theta, unravel = ravel_pytree(params)
    pred, jvp = jax.linearize(lambda t: model(unravel(t), x), theta)
    vjp = jax.linear_transpose(jvp, theta)
    n = pred.shape[0]

    def transpose(u):
        return vjp(u.reshape(pred.shape))[0]

    def matvec(u):
        return jvp(transpose(u)).reshape(-1) / n

    return GramOperator(pred, matvec, transpose, lambda v: jvp(v).reshape(-1))


def default_start(params) -> jax.Array:
    """The fixed start vector of the iterative eigen-solvers: N(0, I) of size P, key 0.

    Dense and non-symmetric, it overlaps every eigenvector with probability one; for
    :class:`minstab.ShallowParams` it is the shallow kernels' historical start vector.
    """
    leaves = jax.tree_util.tree_leaves(params)
    size = sum(int(jnp.size(a)) for a in leaves)
    return jax.random.normal(jax.random.key(0), (size,), leaves[0].dtype)


def hvp_flat(params, x, y, v, *, model: Callable, loss: Callable):
    """One product H v (flat v) by forward-over-reverse, without keeping a linearization."""
    theta, f = _flat_loss(params, x, y, model, loss)
    return jax.jvp(jax.grad(f), (theta,), (v,))[1]


def dense_hessian(params, x, y, *, model: Callable, loss: Callable):
    """Dense (P, P) Hessian in ``ravel_pytree`` order (``jax.hessian``: P HVPs, O(P^2) memory)."""
    theta, f = _flat_loss(params, x, y, model, loss)
    return jax.hessian(f)(theta)


def flat_jacobian(params, x, *, model: Callable):
    """J = d f(x) / d theta, shape (N, P) with N = f(x).size (sample-major), by reverse mode."""
    theta, unravel = ravel_pytree(params)
    return jax.jacrev(lambda t: model(unravel(t), x).reshape(-1))(theta)
