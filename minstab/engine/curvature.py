"""The sharpness kernel of any :class:`~minstab.engine.problem.Problem` and its solver table.

lambda_max of the loss Hessian H (eq. 27) by a method of :data:`SHARPNESS_SOLVERS` (dense,
Lanczos, the Gram form of eq. 28 with its certificate, power iteration; adding one is one entry,
e.g. ``hessian_method(solver)``). Each entry runs on the problem's operator
(:meth:`Problem.operator`) for any model; for a :attr:`Problem.closed_form` problem (the
built-in model on the quadratic loss) it runs the built-in model's closed forms (its HVP, dense
Hessian and Gram eigenpair, :class:`minstab.engine.problem.BuiltinModel`, registered by
:mod:`minstab.shallow`). :func:`sharpness_kernel` is traceable (no validation); the public
``minstab.sharpness`` (:mod:`minstab.shallow.curvature`) validates and compiles it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._validate import all_finite, check_memory, itemsize, num_flat
from .eigen import SOLVERS, EigResult, Solver, dense_eigenpairs, lanczos, materialize
from .losses import squared_error
from .operators import default_start, dense_hessian, gram_operator, hvp_flat
from .problem import Problem, builtin

__all__ = [
    "SharpnessResult",
    "SharpnessMethod",
    "SharpnessOptions",
    "hessian_method",
    "sharpness_kernel",
    "SHARPNESS_SOLVERS",
    "SHARPNESS_METHODS",
    "check_method",
    "check_dense_memory",
    "GRAM_DENSE_MAX_N",
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
GRAM_DENSE_MAX_N = 32  # larger Gram matrices: Lanczos (dense syevd is O(n^3) and multithreaded)


def check_dense_memory(params, dtype=None) -> None:
    """Refuse a dense P x P Hessian (and its eigendecomposition) that cannot fit in memory."""
    p = num_flat(params)
    size = 3.0 * p * p * itemsize(dtype or jax.tree_util.tree_leaves(params)[0].dtype)
    check_memory(size, "params", f"a dense {p} x {p} Hessian and its eigenvectors")


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


class SharpnessMethod(NamedTuple):
    """One entry of :data:`SHARPNESS_SOLVERS`: how a method finds lambda_max of the Hessian.

    Attributes
    ----------
    closed_form : ``closed_form(params, x, y, v0, *, num_iters, tol, negative_slope,
        with_vector) -> EigResult`` for a :attr:`minstab.Problem.closed_form` problem, the
        built-in model's closed forms (traceable; ``v0`` may be ``None``).
    model : ``model(params, x, y, v0, *, problem, num_iters, tol) -> EigResult`` for any
        :class:`minstab.Problem` (traceable; batched when the problem has data batches).
    dense : the method forms a P x P matrix (its memory is checked first).
    quadratic_only : exact only for the quadratic loss (another ``loss`` is refused).
    """

    closed_form: Callable
    model: Callable
    dense: bool = False
    quadratic_only: bool = False


def hessian_method(solver: Solver) -> SharpnessMethod:
    """A sharpness method running an eigen-solver (:data:`minstab.engine.eigen.SOLVERS`) on H.

    The built-in model's operator is its closed-form HVP (:attr:`BuiltinModel.hvp
    <minstab.engine.problem.BuiltinModel>`, dense matrix: its ``hessian``); any problem's is :meth:`minstab.Problem.operator`, linearized once or
    summed over data batches (dense matrix: :func:`minstab.engine.operators.dense_hessian`). ``v0=None``: the default start,
    drawn inside the program (and dropped by XLA when unused).
    """

    def closed_form(params, x, y, v0, *, num_iters, tol, negative_slope, with_vector):
        model = builtin()
        v0 = default_start(params) if v0 is None else v0
        dense = functools.partial(model.hessian, params, x, y, negative_slope=negative_slope)
        return _run(solver, model.hvp, v0, params, x, y, negative_slope,
                    num_iters=num_iters, tol=tol, dense=dense)  # fmt: skip

    def model_(params, x, y, v0, *, problem, num_iters, tol):
        # the operator closes over traced intermediates of this program, not over user data
        _, matvec = problem.operator(params, x, y)
        v0 = default_start(params) if v0 is None else v0
        dense = functools.partial(
            dense_hessian, params, x, y, model=problem.net, loss=problem.loss_fn
        )
        return _run(solver, matvec, v0, num_iters=num_iters, tol=tol, dense=dense)

    return SharpnessMethod(closed_form, model_, dense=solver.dense)


def _run(solver: Solver, matvec, v0, *args, num_iters, tol, dense) -> EigResult:
    num_iters = solver.num_iters if num_iters is None else num_iters
    return solver.run(matvec, v0, *args, k=1, num_iters=num_iters, tol=tol, dense=dense)


class SharpnessOptions(NamedTuple):
    """Static options of :func:`sharpness_kernel` (hashable).

    Attributes
    ----------
    method : an entry of :data:`SHARPNESS_SOLVERS`, or ``"auto"``.
    num_iters : iteration cap of the iterative methods (None: the solver's default).
    tol : relative residual tolerance.
    with_vector : False: the built-in model's ``"gram"`` method skips mapping the Gram
        eigenvector to the Hessian one (an O(n k d) product) and returns zeros instead.
    """

    method: str
    num_iters: int | None
    tol: float
    with_vector: bool = True


def sharpness_kernel(params, x, y, v0, *, problem: Problem, opts: SharpnessOptions):
    """Sharpness of ``problem`` by ``opts.method``, traceable (no validation).

    The built-in model on the quadratic loss (:attr:`minstab.Problem.closed_form`; x of shape
    (n, d)) takes each method's closed form, any other problem its operator. ``v0=None``: the
    default start, drawn inside the program.
    """
    if opts.method == "auto":
        return _auto(params, x, y, v0, problem=problem, opts=opts)
    entry = SHARPNESS_SOLVERS[opts.method]
    if problem.closed_form:
        r = entry.closed_form(
            params, x, y, v0, num_iters=opts.num_iters, tol=opts.tol,
            negative_slope=problem.negative_slope, with_vector=opts.with_vector,
        )  # fmt: skip
    else:
        r = entry.model(params, x, y, v0, problem=problem, num_iters=opts.num_iters, tol=opts.tol)
    code = jnp.array(SHARPNESS_METHODS.index(opts.method), jnp.int32)
    ok = r.converged & all_finite(params, x, y, r.value, r.residual)  # never on a NaN
    return SharpnessResult(r.value, r.vector, r.residual, r.num_matvecs, ok, code)


def _auto(params, x, y, v0, *, problem: Problem, opts: SharpnessOptions):
    """The certified Gram answer if there is one; else dense (small P) or Lanczos.

    The Gram form is certified when its error bound is negligible (built-in model: the
    closed-form bound ``max_i ||c_i||``; any model on the quadratic loss: an interpolating
    minimum confirmed by one Hessian product). ``lax.cond`` runs only the taken branch
    (outside ``vmap``), so a certified Gram answer costs the Gram method alone; the fallback
    draws its start vector only when it runs. Another loss, or data batches: Lanczos alone.
    """
    if problem.closed_form:
        other = "dense" if num_flat(params) <= _AUTO_DENSE_MAX_PARAMS else "lanczos"
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
    if size <= GRAM_DENSE_MAX_N:
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


def _gram_closed_form(params, x, y, v0, *, num_iters, tol, negative_slope, with_vector):
    """The built-in model's closed-form Gram eigenpair (eq. 28) with its certificate."""
    return builtin().gram_sharpness(
        params, x, y, v0, num_iters=num_iters, tol=tol, negative_slope=negative_slope,
        with_vector=with_vector,
    )  # fmt: skip


SHARPNESS_SOLVERS: dict[str, SharpnessMethod] = {
    "dense": hessian_method(SOLVERS["dense"]),
    "lanczos": hessian_method(SOLVERS["lanczos"]),
    "gram": SharpnessMethod(_gram_closed_form, _model_gram_eig, quadratic_only=True),
    "power": hessian_method(SOLVERS["power"]),
}
"""The sharpness methods by name: adding one is one entry (e.g. ``hessian_method(solver)``).

``method=`` choices and the codes of :attr:`SharpnessResult.method` come from its keys.
"""
SHARPNESS_METHODS = _Names(SHARPNESS_SOLVERS)  # ("dense", "lanczos", "gram", "power")


_BATCHED_METHODS = ("auto", "lanczos", "power")


def check_method(problem: Problem, method: str, params) -> str:
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
