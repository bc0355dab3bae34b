"""Loss curvature of shallow ReLU networks: dense Hessians, HVPs, Gauss-Newton Gram, sharpness.

Formulas (THEORY §2, seed 004 eqs. 26-28), with r_j = f(x_j) - y_j and Phi = [grad f(x_1) ...]:

    H = Phi Phi^T / n + (1/n) sum_j r_j grad^2 f(x_j)                         (eq. 27)

At an interpolating minimum (r = 0) the second term vanishes and
lambda_max(H) = lambda_max(Phi^T Phi / n), an n x n problem (eq. 28), whose Gram matrix has the
closed form (z_ji = w1_i . x_j + b1_i, a = sigma'(z), s = sigma(z))

    (Phi^T Phi)_jl = sum_i [ w2_i^2 a_ji a_li (x_j . x_l + 1) + s_ji s_li ] + 1.

The residual term R = (1/n) sum_j r_j grad^2 f(x_j) only couples (w1_i, b1_i) with w2_i of the
same neuron: block i is [[0, c_i], [c_i^T, 0]] with c_i = (1/n) sum_j r_j a_ji [x_j; 1], whose
eigenvalues are +-||c_i||. Hence ||R||_2 = max_i ||c_i|| exactly, and by Weyl's inequality
|lambda_max(H) - lambda_max(Phi Phi^T / n)| <= max_i ||c_i||: a computable certificate of how far
the Gram shortcut can be from the true sharpness away from exact interpolation.

Any model: ``hessian``, ``sharpness``, ``jacobian``, ``gauss_newton_gram`` and
``gauss_newton_matvec`` take keyword-only ``model`` (a pure ``apply(params, x)`` over any params
pytree) and, where a loss enters, ``loss(pred, y)`` (default: the quadratic loss above). Omitted,
both mean the shallow ReLU net and its closed forms. The generic operators live in
:mod:`minstab.engine.operators`; flat vectors are in ``jax.flatten_util.ravel_pytree`` order, which for
:class:`ShallowParams` is the order of eq. (20).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._validate import (
    all_finite,
    check_bool,
    check_callable,
    check_choice,
    check_data_dtype,
    check_int,
    check_memory,
    check_tol,
    itemsize,
    num_flat,
)
from ..engine.batching import pass_progress
from ..engine.eigen import (
    SOLVERS,
    EigResult,
    Solver,
    default_tol,
    dense_eigenpairs,
    lanczos,
    materialize,
)
from ..engine.losses import squared_error
from ..engine.operators import (
    default_start,
    dense_hessian,
    flat_jacobian,
    gram_operator,
    hvp_flat,
)
from ..engine.problem import Problem, resolve_call
from .losses import quadratic_loss
from .nets import (
    ShallowParams,
    activation,
    activation_derivative,
    check_slope,
    flatten,
    preactivations,
    unflatten,
    validate,
)

__all__ = [
    "hessian",
    "sharpness_kernel",
    "residual_bound_kernel",
    "SharpnessOptions",
    "hvp",
    "shallow_hvp",
    "gauss_newton_matvec",
    "jacobian",
    "gauss_newton_gram",
    "residual_curvature_bound",
    "sharpness",
    "SharpnessResult",
    "SHARPNESS_METHODS",
    "SHARPNESS_SOLVERS",
    "SharpnessMethod",
    "hessian_method",
]


class _Names(Sequence):
    """The keys of a table as a read-only sequence that follows the table (``index``, ``in``).

    ``Sequence`` supplies ``index``, ``in``, iteration and ``count`` from the two methods.
    """

    def __init__(self, table: dict):
        self._table = table

    def __getitem__(self, i):
        return tuple(self._table)[i]

    def __len__(self) -> int:
        return len(self._table)

    def __eq__(self, other) -> bool:
        return tuple(self._table) == (tuple(other) if isinstance(other, Sequence) else other)

    def __hash__(self) -> int:
        return hash(tuple(self._table))

    def __repr__(self) -> str:
        return repr(tuple(self._table))


_AUTO_DENSE_MAX_PARAMS = 400
_GRAM_DENSE_MAX_N = 32  # larger Gram matrices: Lanczos (dense syevd is O(n^3) and multithreaded)


def _as_2d(x: jax.Array) -> jax.Array:
    return x[:, None] if x.ndim == 1 else x


def _flat_quadratic_loss(theta, x, y, width, in_dim, negative_slope):
    p = unflatten(theta, width, in_dim)
    return quadratic_loss(p, x, y, negative_slope=negative_slope)


@functools.partial(jax.jit, static_argnames=("negative_slope",))
def _hessian(params, x, y, *, negative_slope=0.0):
    k, d = params.w1.shape
    return jax.hessian(_flat_quadratic_loss)(flatten(params), x, y, k, d, negative_slope)


_model_hessian = jax.jit(dense_hessian, static_argnames=("model", "loss"))


def hessian(
    params,
    x: jax.Array,
    y: jax.Array,
    *,
    model: Callable | None = None,
    loss: Callable | None = None,
    negative_slope: float = 0.0,
) -> jax.Array:
    """Dense Hessian of the loss w.r.t. the flat parameters, shape (P, P).

    Without ``model`` and ``loss``: the quadratic loss of the shallow net in the flat order of
    eq. (20). With ``model`` (any ``apply(params, x)``; see :mod:`minstab.engine.operators`): the
    Hessian of ``loss(model(params, x), y)`` (default (1/2n) sum_j ||f(x_j) - y_j||^2) in
    ``jax.flatten_util.ravel_pytree`` order.

    Uses ``jax.hessian`` (forward-over-reverse); costs P HVPs and O(P^2) memory, so it is the
    reference for small networks. For large ones use :func:`sharpness` or
    :func:`minstab.hessian_eigenvalues`.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, minstab as ms
    >>> def apply(p, x):
    ...     return jnp.tanh(x @ p["w"]) @ p["v"]
    >>> p = {"w": jnp.full((2, 3), 0.5), "v": jnp.ones(3)}
    >>> x, y = jnp.ones((4, 2)), jnp.zeros(4)
    >>> ms.hessian(p, x, y, model=apply).shape
    (9, 9)
    """
    problem, x, y = resolve_call(
        params, x, y, model=model, loss=loss, negative_slope=negative_slope, shallow_checks=True
    )
    check_dense_memory(params)
    if problem.closed_form:
        return _hessian(params, x, y, negative_slope=problem.negative_slope)
    return _model_hessian(params, x, y, model=problem.net, loss=problem.loss_fn)


def check_dense_memory(params, dtype=None) -> None:
    """Refuse a dense P x P Hessian (and its eigendecomposition) that cannot fit in memory."""
    p = num_flat(params)
    size = 3.0 * p * p * itemsize(dtype or jax.tree_util.tree_leaves(params)[0].dtype)
    check_memory(size, "params", f"a dense {p} x {p} Hessian and its eigenvectors")


def _check_iterative(num_iters, tol):
    """(num_iters, tol) of the iterative solvers: ``None`` or an integer >= 1; ``None`` or > 0."""
    return check_int(num_iters, "num_iters", minimum=1, none=True), check_tol(tol)


def hvp(loss_fn: Callable, params, v, *args):
    """Hessian-vector product of ``loss_fn(params, *args)`` as forward-over-reverse (jvp of grad).

    Works for any params pytree; ``v`` has the same structure. The data are passed in ``args``
    (never closed over), so one compiled program serves new data and ``vmap`` over ``v``.
    For any model and loss, pass :func:`minstab.model_loss` as ``loss_fn``:
    ``hvp(ms.model_loss(apply, loss), params, v, x, y)``.

    Examples
    --------
    >>> import jax.numpy as jnp, minstab as ms
    >>> def apply(p, x):
    ...     return x @ p["w"]
    >>> x = jnp.array([[1.0, 0.0], [0.0, 2.0]])
    >>> p = {"w": jnp.zeros(2)}
    >>> ms.hvp(ms.model_loss(apply), p, {"w": jnp.ones(2)}, x, jnp.zeros(2))["w"]  # X^T X v / n
    Array([0.5, 2. ], dtype=float32)
    """
    check_callable(loss_fn, "loss_fn")
    pt, vt = jax.tree_util.tree_structure(params), jax.tree_util.tree_structure(v)
    shapes = [jnp.shape(a) for a in jax.tree_util.tree_leaves(params)]
    if pt != vt or shapes != [jnp.shape(a) for a in jax.tree_util.tree_leaves(v)]:
        raise ValueError(f"v must have the structure and shapes of params ({pt}), got {vt}")
    return jax.jvp(lambda p: jax.grad(loss_fn)(p, *args), (params,), (v,))[1]


def _features(params, x, negative_slope):
    z = preactivations(params, x)
    return activation_derivative(z, negative_slope), activation(z, negative_slope)


def _phi_t(params, x, a, s, v: ShallowParams):
    """Phi^T v: directional derivative of f(x_j) along v for every j (n,)."""
    inner = x @ v.w1.T + v.b1[None, :]  # (n, k)
    return (a * inner) @ params.w2 + s @ v.w2 + v.b2


def _phi(params, x, a, s, c):
    """Phi c = sum_j c_j grad f(x_j) as ShallowParams."""
    ac = a * c[:, None]  # (n, k)
    return ShallowParams(
        params.w2[:, None] * (ac.T @ x), params.w2 * jnp.sum(ac, axis=0), s.T @ c, jnp.sum(c)
    )


@functools.partial(jax.jit, static_argnames=("model",))
def _model_gn_matvec(theta_v, params, x, *, model):
    g = gram_operator(params, x, model=model)
    return g.transpose(g.jvp(theta_v)) / g.pred.shape[0]


def _check_flat(v, params, name):
    size = sum(int(jnp.size(a)) for a in jax.tree_util.tree_leaves(params))
    if jnp.shape(v) != (size,):
        raise ValueError(f"{name} must have shape ({size},) (flat params), got {jnp.shape(v)}")


def _check_theta(theta_v, k: int, d: int) -> None:
    if jnp.shape(theta_v) != (k * (d + 2) + 1,):
        raise ValueError(
            f"theta_v must be a flat vector of shape ({k * (d + 2) + 1},) (eq. 20), "
            f"got {jnp.shape(theta_v)}"
        )


def gauss_newton_matvec(
    theta_v: jax.Array,
    params,
    x: jax.Array,
    *,
    model: Callable | None = None,
    negative_slope: float = 0.0,
):
    """(Phi Phi^T / n) v for a flat v: closed form for the shallow net (O(n k d), no autodiff).

    With ``model``: J^T (J v) / n (one jvp and its transpose), v in ``ravel_pytree`` order.
    """
    problem, x, _ = resolve_call(
        params, x, None, model=model, negative_slope=negative_slope, shallow_checks=True,
        targets=False,
    )  # fmt: skip
    if not problem.closed_form:
        _check_flat(theta_v, params, "theta_v")
        return _model_gn_matvec(theta_v, params, x, model=problem.net)
    k, d = params.w1.shape
    _check_theta(theta_v, k, d)
    a, s = _features(params, x, problem.negative_slope)
    v = unflatten(theta_v, k, d)
    return flatten(_phi(params, x, a, s, _phi_t(params, x, a, s, v))) / x.shape[0]


def shallow_hvp(
    theta_v: jax.Array,
    params: ShallowParams,
    x: jax.Array,
    y: jax.Array,
    *,
    negative_slope: float = 0.0,
) -> jax.Array:
    """H v for the quadratic loss of a shallow net, structured as Gauss-Newton + residual part.

    Closed form of eq. (27): (Phi Phi^T v)/n + R v, with R v for neuron i given by
    (w1_i, b1_i) <- c_i v_w2_i and w2_i <- c_i . (v_w1_i, v_b1_i), c_i = (1/n) sum_j r_j a_ji [x_j; 1].
    Costs two passes over the data, O(n k d), and no autodiff. ``theta_v`` is flat (eq. 20).
    """
    negative_slope = check_slope(negative_slope)
    x, y = validate(params, x, y)
    n = x.shape[0]
    k, d = params.w1.shape
    _check_theta(theta_v, k, d)
    a, s = _features(params, x, negative_slope)
    v = unflatten(theta_v, k, d)
    r = s @ params.w2 + params.b2 - y
    gn = _phi(params, x, a, s, _phi_t(params, x, a, s, v))
    ar = a * (r / n)[:, None]  # (n, k)
    cw = ar.T @ x  # (k, d): w1-part of c_i
    cb = jnp.sum(ar, axis=0)  # (k,): b1-part of c_i
    res = ShallowParams(
        cw * v.w2[:, None], cb * v.w2, jnp.sum(cw * v.w1, axis=1) + cb * v.b1, jnp.zeros_like(v.b2)
    )
    return flatten(gn) / n + flatten(res)


_model_jacobian = jax.jit(flat_jacobian, static_argnames=("model",))


def jacobian(
    params, x: jax.Array, *, model: Callable | None = None, negative_slope: float = 0.0
) -> jax.Array:
    """Phi^T: row j is grad_theta f(x_j) in the flat order of eq. (20); shape (n, P).

    With ``model``: J of shape (N, P), N = model(params, x).size (sample-major rows), by
    reverse mode (N backward passes; for small problems).
    """
    problem, x, _ = resolve_call(
        params, x, None, model=model, negative_slope=negative_slope, shallow_checks=True,
        targets=False,
    )  # fmt: skip
    if not problem.closed_form:
        return _model_jacobian(params, x, model=problem.net)
    a, s = _features(params, x, problem.negative_slope)
    w1 = (a * params.w2[None, :])[:, :, None] * x[:, None, :]
    n = x.shape[0]
    return jnp.concatenate(
        [w1.reshape(n, -1), a * params.w2[None, :], s, jnp.ones((n, 1), x.dtype)], axis=1
    )


@functools.partial(jax.jit, static_argnames=("model",))
def _model_gram(params, x, *, model):
    g = gram_operator(params, x, model=model)
    return materialize(g.matvec, g.pred.size, g.pred.dtype)


def gauss_newton_gram(
    params, x: jax.Array, *, model: Callable | None = None, negative_slope: float = 0.0
) -> jax.Array:
    """Closed-form n x n Gram Phi^T Phi / n of the tangent features (THEORY §2, eq. 28).

    ``(Phi^T Phi)_jl = sum_i [w2_i^2 a_ji a_li (x_j . x_l + 1) + s_ji s_li] + 1``. Its non-zero
    eigenvalues are those of the Gauss-Newton matrix Phi Phi^T / n, which equals the loss
    Hessian at an interpolating minimum; cost O(n^2 (k + d)), independent of P's square.

    With ``model``: K = J J^T / n of shape (N, N), N = model(params, x).size (sample-major),
    column by column from one linearization of the model (N products of a vjp and a jvp).
    """
    problem, x, _ = resolve_call(
        params, x, None, model=model, negative_slope=negative_slope, shallow_checks=True,
        targets=False,
    )  # fmt: skip
    if not problem.closed_form:
        return _model_gram(params, x, model=problem.net)
    return _gram(params, x, problem.negative_slope)


def _gram(params, x, negative_slope):
    a, s = _features(params, x, negative_slope)
    return _gram_from(params, x, a, s)


def _gram_blocks(n: int) -> int:
    """Row blocks of the n x n Gram matrix.

    Measured on 2 CPU cores (d = 784): below ~800 rows one block is fastest; at n = 1 000 three
    blocks take a third off the products (0.030 -> 0.019 s in float64, k = 256), at n = 2 000
    four blocks (0.25 -> 0.17 s, k = 1 024).
    """
    return 1 if n < 768 else min(4, 2 + n // 1000)


def _gram_from(params, x, a, s):
    """(a diag(w2^2) a^T) ⊙ (X X^T + 1) + S S^T + 1, over n (eq. 28 at a minimum).

    Three products of the form B B^T, 2 n^2 (2k + d) FLOPs; in row blocks only the lower
    triangle of blocks is computed and mirrored (the matrix comes out exactly symmetric), which
    saves up to (nb - 1) / (2 nb) of them.
    """
    n = x.shape[0]
    aw = a * jnp.abs(params.w2)[None, :]

    def block(i, j):
        return (aw[i] @ aw[j].T) * (x[i] @ x[j].T + 1) + s[i] @ s[j].T + 1

    nb = _gram_blocks(n)
    if nb == 1:
        return block(slice(None), slice(None)) / n
    size = -(-n // nb)
    rows = [slice(b * size, min(n, (b + 1) * size)) for b in range(nb)]
    low = {(i, j): block(rows[i], rows[j]) for i in range(nb) for j in range(i + 1)}
    g = jnp.concatenate(
        [jnp.concatenate([low[i, j] if j <= i else low[j, i].T for j in range(nb)], axis=1)
         for i in range(nb)], axis=0,
    )  # fmt: skip
    return g / n


def residual_curvature_bound(
    params: ShallowParams, x: jax.Array, y: jax.Array, *, negative_slope: float = 0.0
) -> jax.Array:
    """||H - Phi Phi^T / n||_2 = max_i ||c_i|| exactly (module docstring).

    Bounds how far the Gram shortcut can be from the true sharpness (Weyl's inequality).
    """
    negative_slope = check_slope(negative_slope)
    x, y = validate(params, x, y)
    return residual_bound_kernel(params, x, y, negative_slope)


def residual_bound_kernel(params, x, y, negative_slope):
    """Traceable :func:`residual_curvature_bound` (no validation; x of shape (n, d))."""
    a, s = _features(params, x, negative_slope)
    return _residual_bound_from(params, x, y, a, s)


def _residual_bound_from(params, x, y, a, s):
    n = x.shape[0]
    r = s @ params.w2 + params.b2 - y
    ar = a * (r / n)[:, None]
    c2 = jnp.sum((ar.T @ x) ** 2, axis=1) + jnp.sum(ar, axis=0) ** 2
    return jnp.sqrt(jnp.max(c2))


def _residual_bound_cheap(params, x, y, a, s):
    """max_i (1/n) sum_j |r_j| |a_ji| ||[x_j; 1]|| >= max_i ||c_i|| (triangle inequality), O(n k)."""
    n = x.shape[0]
    r = s @ params.w2 + params.b2 - y
    xn = jnp.sqrt(jnp.sum(x * x, axis=1) + 1)
    return jnp.max((jnp.abs(r) * xn) @ jnp.abs(a)) / n


class SharpnessResult(NamedTuple):
    """Sharpness with diagnostics.

    Attributes
    ----------
    value : lambda_max of the loss Hessian (largest algebraic eigenvalue).
    vector : its eigenvector, flat (P,) in the order of eq. (20) (for warm starts).
    residual : ``||H v - value v||`` for the matrix-free and dense methods; for ``"gram"``, a
        bound on ``||H - Phi Phi^T/n||_2`` (the Gram shortcut's error) plus the Gram
        eigen-residual. The bound is exact (``max_i ||c_i||``) unless the O(n k)
        triangle-inequality bound ``max_i (1/n) sum_j |r_j| a_ji ||[x_j; 1]||`` already certifies.
    num_matvecs : products with H (or with the Gram matrix) used.
    converged : whether the solver met its tolerance (and, for ``"gram"``, whether the
        shortcut's error bound is below it).
    method : index into ``SHARPNESS_METHODS`` of the method that produced ``value``.
    """

    value: jax.Array
    vector: jax.Array
    residual: jax.Array
    num_matvecs: jax.Array
    converged: jax.Array
    method: jax.Array

    @property
    def method_name(self) -> str:
        """Name of the method used (concrete results only)."""
        return SHARPNESS_METHODS[int(self.method)]


def _shallow_matvec(v, params, x, y, negative_slope):
    return shallow_hvp(v, params, x, y, negative_slope=negative_slope)


class SharpnessMethod(NamedTuple):
    """One entry of :data:`SHARPNESS_SOLVERS`: how a method finds lambda_max of the Hessian.

    Attributes
    ----------
    shallow : ``shallow(params, x, y, v0, *, num_iters, tol, negative_slope, with_vector)
        -> EigResult`` for the shallow net (traceable; ``v0`` may be ``None``).
    model : ``model(params, x, y, v0, *, problem, num_iters, tol) -> EigResult`` for any
        :class:`minstab.Problem` (traceable; batched when the problem has data batches).
    dense : the method forms a P x P matrix (its memory is checked first).
    quadratic_only : exact only for the quadratic loss (another ``loss`` is refused).
    """

    shallow: Callable
    model: Callable
    dense: bool = False
    quadratic_only: bool = False


def hessian_method(solver: Solver) -> SharpnessMethod:
    """A sharpness method running an eigen-solver (:data:`minstab.engine.eigen.SOLVERS`) on H.

    The shallow net's operator is the closed-form :func:`shallow_hvp` (dense matrix:
    ``jax.hessian``); any problem's is :meth:`minstab.Problem.operator`, linearized once or
    summed over data batches (dense matrix: :func:`minstab.engine.operators.dense_hessian`). ``v0=None``: the default start,
    drawn inside the program (and dropped by XLA when unused).
    """

    def shallow(params, x, y, v0, *, num_iters, tol, negative_slope, with_vector):
        v0 = default_start(params) if v0 is None else v0
        dense = functools.partial(_hessian, params, x, y, negative_slope=negative_slope)
        return _run(solver, _shallow_matvec, v0, params, x, y, negative_slope,
                    num_iters=num_iters, tol=tol, dense=dense)  # fmt: skip

    def model_(params, x, y, v0, *, problem, num_iters, tol):
        # the operator closes over traced intermediates of this program, not over user data
        _, matvec = problem.operator(params, x, y)
        v0 = default_start(params) if v0 is None else v0
        dense = functools.partial(
            dense_hessian, params, x, y, model=problem.net, loss=problem.loss_fn
        )
        return _run(solver, matvec, v0, num_iters=num_iters, tol=tol, dense=dense)

    return SharpnessMethod(shallow, model_, dense=solver.dense)


def _run(solver: Solver, matvec, v0, *args, num_iters, tol, dense) -> EigResult:
    num_iters = solver.num_iters if num_iters is None else num_iters
    return solver.run(matvec, v0, *args, k=1, num_iters=num_iters, tol=tol, dense=dense)


def _gram_shallow(params, x, y, v0, *, num_iters, tol, negative_slope, with_vector):
    """Closed-form Gram eigenpair (eq. 28) with its certified error bound ``max_i ||c_i||``.

    ``with_vector=False`` skips mapping the Gram eigenvector to the Hessian one (an O(n k d)
    product) and returns zeros instead.
    """
    n = x.shape[0]
    k, d = params.w1.shape
    # the activations are computed once and shared by the Gram matrix, the certificate and
    # the Hessian eigenvector
    a, s = _features(params, x, negative_slope)
    g = _gram_from(params, x, a, s)
    if n <= _GRAM_DENSE_MAX_N:
        eg = dense_eigenpairs(g)
    else:
        u0 = jnp.ones(n, x.dtype) + 0.1 * jnp.sin(jnp.arange(n, dtype=x.dtype))
        eg = lanczos(lambda u, g: g @ u, u0, g, num_iters=num_iters, tol=tol)
    scale = jnp.maximum(jnp.abs(eg.value), jnp.finfo(x.dtype).tiny)
    # the O(n k) triangle-inequality bound certifies at an interpolating minimum; the exact
    # max_i ||c_i|| (O(n k d)) is computed only when it does not
    cheap = _residual_bound_cheap(params, x, y, a, s)
    bound = jax.lax.cond(
        cheap <= tol * scale,
        lambda: cheap,
        lambda: _residual_bound_from(params, x, y, a, s),
    )
    ok = eg.converged & (bound <= tol * scale)
    if with_vector:
        v = flatten(_phi(params, x, a, s, eg.vector))
        vec = v / jnp.linalg.norm(v)
    else:
        vec = jnp.zeros((k * (d + 2) + 1,), x.dtype)
    return EigResult(eg.value, vec, eg.residual + bound, eg.num_matvecs, ok)


class SharpnessOptions(NamedTuple):
    """Static options of :func:`sharpness_kernel` (hashable).

    Attributes
    ----------
    method : an entry of :data:`SHARPNESS_SOLVERS`, or ``"auto"``.
    num_iters : iteration cap of the iterative methods (None: the solver's default).
    tol : relative residual tolerance.
    with_vector : False: the shallow net's ``"gram"`` method skips mapping the Gram
        eigenvector to the Hessian one (an O(n k d) product) and returns zeros instead.
    """

    method: str
    num_iters: int | None
    tol: float
    with_vector: bool = True


def sharpness_kernel(params, x, y, v0, *, problem: Problem, opts: SharpnessOptions):
    """Sharpness of ``problem`` by ``opts.method``, traceable (no validation).

    The shallow net on the quadratic loss (:attr:`minstab.Problem.closed_form`; x of shape
    (n, d)) takes each method's closed form, any other problem its operator. ``v0=None``: the
    default start, drawn inside the program.
    """
    if opts.method == "auto":
        return _auto(params, x, y, v0, problem=problem, opts=opts)
    entry = SHARPNESS_SOLVERS[opts.method]
    if problem.closed_form:
        r = entry.shallow(
            params, x, y, v0, num_iters=opts.num_iters, tol=opts.tol,
            negative_slope=problem.negative_slope, with_vector=opts.with_vector,
        )  # fmt: skip
    else:
        r = entry.model(params, x, y, v0, problem=problem, num_iters=opts.num_iters, tol=opts.tol)
    code = jnp.array(SHARPNESS_METHODS.index(opts.method), jnp.int32)
    ok = r.converged & all_finite(params, x, y, r.value, r.residual)  # never on a NaN
    return SharpnessResult(r.value, r.vector, r.residual, r.num_matvecs, ok, code)


_sharpness_jit = jax.jit(sharpness_kernel, static_argnames=("problem", "opts"))


def _auto(params, x, y, v0, *, problem: Problem, opts: SharpnessOptions):
    """The certified Gram answer if there is one; else dense (small P) or Lanczos.

    The Gram form is certified when its error bound is negligible (shallow net: the
    closed-form bound ``max_i ||c_i||``; any model on the quadratic loss: an interpolating
    minimum confirmed by one Hessian product). ``lax.cond`` runs only the taken branch
    (outside ``vmap``), so a certified Gram answer costs the Gram method alone; the fallback
    draws its start vector only when it runs. Another loss, or data batches: Lanczos alone.
    """
    if problem.closed_form:
        k, d = params.w1.shape
        other = "dense" if k * (d + 2) + 1 <= _AUTO_DENSE_MAX_PARAMS else "lanczos"
    else:
        other = "lanczos"
    fallback = opts._replace(method=other)
    if problem.loss_fn is not squared_error or problem.data_batch_size is not None:
        return sharpness_kernel(params, x, y, v0, problem=problem, opts=fallback)
    gram = sharpness_kernel(params, x, y, None, problem=problem, opts=opts._replace(method="gram"))
    return jax.lax.cond(
        gram.converged,
        lambda: gram,
        lambda: sharpness_kernel(params, x, y, v0, problem=problem, opts=fallback),
    )


def _model_gram_eig(params, x, y, v0, *, problem, num_iters, tol) -> EigResult:
    """Top eigenpair of K = J J^T / n mapped to the Hessian, with its certificate.

    The Gram eigenvector u gives v = J^T u / ||J^T u||, an eigenvector of J^T J / n with the
    same eigenvalue (eq. 28). The answer is certified (``converged``) when the Gram solve
    converged, the data residuals vanish to ``tol`` (an interpolating minimum, where
    H = J^T J / n exactly, eq. 27) and one Hessian product confirms ``||H v - value v|| <=
    tol |value|``; ``residual`` is that Hessian residual.
    """
    g = gram_operator(params, x, model=problem.net)
    size, dtype = g.pred.size, g.pred.dtype
    if size <= _GRAM_DENSE_MAX_N:
        eg = dense_eigenpairs(materialize(g.matvec, size, dtype))
    else:
        u0 = jnp.ones(size, dtype) + 0.1 * jnp.sin(jnp.arange(size, dtype=dtype))
        eg = lanczos(g.matvec, u0, num_iters=num_iters, tol=tol)
    v = g.transpose(eg.vector)
    v = v / jnp.linalg.norm(v)
    hv = hvp_flat(params, x, y, v, model=problem.net, loss=squared_error)
    res = jnp.linalg.norm(hv - eg.value * v)
    tiny = jnp.finfo(dtype).tiny
    scale = jnp.maximum(jnp.abs(eg.value), tiny)
    interpolates = jnp.max(jnp.abs(g.pred - y)) <= tol * jnp.maximum(jnp.max(jnp.abs(y)), tiny)
    ok = eg.converged & interpolates & (res <= tol * scale)
    return EigResult(eg.value, v, res, eg.num_matvecs + 1, ok)


SHARPNESS_SOLVERS: dict[str, SharpnessMethod] = {
    "dense": hessian_method(SOLVERS["dense"]),
    "lanczos": hessian_method(SOLVERS["lanczos"]),
    "gram": SharpnessMethod(_gram_shallow, _model_gram_eig, quadratic_only=True),
    "power": hessian_method(SOLVERS["power"]),
}
"""The sharpness methods by name: adding one is one entry (e.g. ``hessian_method(solver)``).

``method=`` choices and the codes of :attr:`SharpnessResult.method` come from its keys.
"""
SHARPNESS_METHODS = _Names(SHARPNESS_SOLVERS)  # ("dense", "lanczos", "gram", "power")


_BATCHED_METHODS = ("auto", "lanczos", "power")


def _check_method(problem: Problem, method: str, params) -> str:
    """The method to run (``"auto"`` with batches is Lanczos); ``ValueError`` if it cannot."""
    if problem.data_batch_size is not None:
        if method not in _BATCHED_METHODS:
            raise ValueError(
                f"method must be one of {', '.join(map(repr, _BATCHED_METHODS))} with "
                f"data_batch_size ('dense' and 'gram' need all samples at once), got {method!r}"
            )
        return "lanczos" if method == "auto" else method
    entry = SHARPNESS_SOLVERS.get(method)  # None for "auto" (dense only for small P)
    if entry is not None and entry.quadratic_only and problem.loss_fn is not squared_error:
        raise ValueError(
            f"method={method!r} is exact only for the quadratic loss at an interpolating minimum; "
            "loss must be None (or minstab.squared_error) for it. For another loss use "
            "'lanczos', or minstab.hessian_eigenvalues(..., curvature='ggn') for its "
            "Gauss-Newton matrix"
        )
    if entry is not None and entry.dense:
        check_dense_memory(params)
    return method


def sharpness(
    params,
    x: jax.Array,
    y: jax.Array,
    *,
    model: Callable | None = None,
    loss: Callable | None = None,
    method: str = "auto",
    v0: jax.Array | None = None,
    num_iters: int | None = None,
    tol: float | None = None,
    negative_slope: float = 0.0,
    full_output: bool = False,
    data_batch_size: int | None = None,
    progress: bool = False,
):
    """Largest (algebraic) eigenvalue of the loss Hessian, lambda_max(grad^2 L).

    Seed 004 Lemma 1: a minimum that GD with step size eta can stably reach has
    ``sharpness <= 2 / eta``.

    Parameters
    ----------
    params, x, y : network and data. Shallow net (``model=None``): :class:`ShallowParams`, x of
        shape (n, d) or (n,). Any model: a params pytree of floating arrays, x with one row per
        sample, y of the model output's shape (default loss).
    model : ``apply(params, x) -> predictions``, pure and hashable (a static argument of the
        compiled kernels: define it once, not as a new lambda per call). Default: the shallow
        ReLU net with its closed forms.
    loss : ``loss(pred, y) -> scalar``; default the quadratic loss (1/2n) sum_j ||f(x_j)-y_j||^2.
    method : ``"dense"`` (``eigh`` of :func:`hessian`; exact, O(P^3)), ``"lanczos"`` (HVP,
        full reorthogonalization), ``"gram"`` (top eigenvalue of the Gram matrix J J^T / n;
        exact at interpolating minima of the quadratic loss), ``"power"`` (power iteration, for
        comparison; largest magnitude) or ``"auto"``. Shallow net: ``"gram"`` uses the closed
        form :func:`gauss_newton_gram` and its ``residual`` bounds the error elsewhere;
        ``"auto"`` takes the Gram form when that bound is below ``tol * value``, else dense when
        P <= 400, else Lanczos. Any model: ``"gram"`` runs Lanczos on u -> J (J^T u) / n
        (one linearization of the model, vectors of size n c) and is certified (``converged``)
        only at an interpolating minimum, checked by one Hessian product (its ``residual`` is
        ``||H v - value v||``); a non-default ``loss`` is refused (ValueError: use
        ``"lanczos"``, or ``hessian_eigenvalues(curvature="ggn")`` for the Gauss-Newton matrix);
        ``"auto"`` takes the certified Gram answer, else Lanczos on the Hessian.
        ``full_output=True`` says which method produced the value.
    v0 : start vector (P,) for the iterative methods (warm start); default a fixed random one.
    num_iters : iteration cap for the iterative methods.
    tol : relative residual tolerance (default 1e-10 in float64, 1e-5 in float32).
    negative_slope : leaky-ReLU slope of the shallow net (0 for ReLU; shallow net only).
    full_output : return a :class:`SharpnessResult` instead of the value alone; its ``vector``
        is flat in ``ravel_pytree`` order (eq. 20 for the shallow net).
    data_batch_size : samples per batch: every Hessian-vector product is a sum over batches
        in one compiled loop (memory O(batch), :mod:`minstab.engine.batching`); the loss must be a
        mean over samples. Methods ``"auto"`` (= ``"lanczos"``), ``"lanczos"``, ``"power"``.
        ``x`` may then also be a sequence of ``(x_b, y_b)`` batches with ``y=None``. (Not
        ``batch_size``: in minstab that is the SGD minibatch of ``train`` and the probes per
        product of ``hessian_trace``.)
    progress : with ``data_batch_size``, a bar on stderr counting the batches of every
        product (:func:`minstab.engine.batching.pass_progress`). Default off.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, minstab as ms
    >>> x, y = ms.data.toy_1d(n=8, key=jax.random.key(0))
    >>> p = ms.init_shallow(jax.random.key(1), in_dim=1, width=16)
    >>> s = ms.sharpness(p, x, y)
    >>> r = ms.sharpness(p, x, y, method="lanczos", full_output=True)
    >>> bool(abs(r.value - s) < 1e-4 * s), r.method_name
    (True, 'lanczos')
    >>> def apply(q, x):  # any model: a two-layer tanh net as a dict of arrays
    ...     return jnp.tanh(x @ q["w"]) @ q["v"]
    >>> q = {"w": jax.random.normal(jax.random.key(2), (1, 8)), "v": jnp.ones(8) / 8}
    >>> lam = ms.sharpness(q, x[:, None], y, model=apply, method="lanczos")
    >>> ref = jnp.linalg.eigvalsh(ms.hessian(q, x[:, None], y, model=apply))[-1]
    >>> bool(abs(lam - ref) < 1e-4 * ref)
    True
    """
    check_choice(method, "method", ("auto", *SHARPNESS_SOLVERS))
    check_bool(full_output, "full_output")
    check_bool(progress, "progress")
    num_iters, tol = _check_iterative(num_iters, tol)
    problem, x, y = resolve_call(
        params, x, y, model=model, loss=loss, negative_slope=negative_slope,
        data_batch_size=data_batch_size, progress=progress, shallow_checks=True,
    )  # fmt: skip
    method = _check_method(problem, method, params)
    if problem.closed_form:
        check_data_dtype(x, y, params.w1.dtype)
    if v0 is not None:
        _check_flat(v0, params, "v0")
    tol = default_tol(jax.tree_util.tree_leaves(params)[0].dtype) if tol is None else float(tol)
    opts = SharpnessOptions(method, num_iters, tol, with_vector=full_output)
    with pass_progress("sharpness", enabled=problem.progress):
        r = _sharpness_jit(params, x, y, v0, problem=problem, opts=opts)
    return r if full_output else r.value
