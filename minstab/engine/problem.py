"""The one problem object: a model, a loss and how the data are passed, static under ``jit``.

A :class:`Problem` is ``L(params, x, y) = loss(model(params, x), y)`` (seed 004 eq. 19 for
the default quadratic loss (1/2n) sum_j ||f(x_j) - y_j||^2) together with the static choices
every compiled kernel needs: the shallow net's leaky-ReLU slope (``model=None``: the shallow
ReLU net of eq. 18) and the data batching (``data_batch_size``: every loss, gradient and
curvature product a sum over batches, :mod:`minstab.engine.batching`). It is a frozen dataclass
(hashable), so a kernel takes one static ``problem`` argument instead of (model, loss, batch,
...) tuples: one compiled program per problem, new parameters or data never recompile.

:meth:`Problem.resolve` is the one place where the arguments of a public function become a
problem (``ValueError`` naming the argument, before tracing); :meth:`Problem.validate` checks
the arrays. :meth:`Problem.operator` is the curvature operator ``(theta, matvec)`` on the flat
parameters (``ravel_pytree`` order) of H (eq. 27) or the GGN, optionally preconditioned. The
shallow net on the quadratic loss (:attr:`Problem.closed_form`) has closed forms (gradient,
structured HVP, Gram matrix with its certificate): :class:`minstab.engine.objective.Objective` and
:mod:`minstab.shallow.curvature` dispatch on that static field once.

The engine is model-agnostic: ``model=None`` means the :class:`BuiltinModel` given to
:func:`register_builtin`, one registration point (like a pytree registration) that
:mod:`minstab.shallow` fills when ``minstab`` is imported (the shallow ReLU net,
:mod:`minstab.shallow.builtin`). The engine imports nothing from the shallow layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
from jax.flatten_util import ravel_pytree

from .._validate import check_bool, check_callable
from .batching import (
    DataBatches,
    batch_mean,
    batch_plan,
    check_data_batch_size,
    check_mean_loss,
    curvature_operator,
    resolve_data,
)
from .losses import softmax_cross_entropy, squared_error
from .operators import (
    CURVATURES,
    check_hashable,
    check_model,
    default_start,
    resolve_loss,
)

__all__ = [
    "BuiltinModel",
    "register_builtin",
    "builtin",
    "Problem",
    "ModelLoss",
    "model_loss",
    "resolve_call",
]


@dataclasses.dataclass(frozen=True)
class BuiltinModel:
    """What the engine asks of the built-in model (``model=None``), as plain functions.

    Attributes
    ----------
    params_type : the class of its parameters (a NamedTuple: its fields name the npz leaves).
    check_slope : ``negative_slope -> float``, ``ValueError`` unless it is a valid slope.
    apply : ``negative_slope -> apply(params, x)``, one object per slope (a static argument).
    validate : ``(params, x, y) -> (x, y)``, its own input checks before tracing.
    loss_and_grad : ``(params, x, y, negative_slope) -> (loss, grads)`` on the quadratic loss,
        traceable (the closed-form gradient).
    hvp : ``(v, params, x, y, negative_slope) -> H v`` on the quadratic loss, flat v
        (``ravel_pytree`` order), traceable (the closed-form structured HVP).
    hessian : ``(params, x, y, *, negative_slope) -> (P, P)`` dense Hessian of the quadratic loss.
    gram_sharpness : ``(params, x, y, v0, *, num_iters, tol, negative_slope, with_vector) ->
        EigResult``, the closed-form Gram eigenpair (eq. 28) with its certified error bound in
        ``residual``, traceable (the ``"gram"`` entry of
        :data:`minstab.engine.curvature.SHARPNESS_SOLVERS`).
    diagnostics : ``(problem, params, x, y, *, flattest) -> dict`` of the end-of-run quantities
        of a sweep run (``sharpness``, ``sharpness_residual``, ``lower_bound``,
        ``flattest_sharpness``, ``weighted_curvature``), traceable.
    curvature : ``(params, x) -> scalar``, the weighted curvature of ``log_curvature``.
    mode_interval : ``(params, x, *, atol)`` -> an object with ``lambda_lower``,
        ``lambda_upper`` and ``delta`` (host, for converged runs).
    """

    params_type: type
    check_slope: Callable
    apply: Callable
    validate: Callable
    loss_and_grad: Callable
    hvp: Callable
    hessian: Callable
    gram_sharpness: Callable
    diagnostics: Callable
    curvature: Callable
    mode_interval: Callable


_BUILTIN: dict[str, BuiltinModel] = {}


def register_builtin(model: BuiltinModel) -> None:
    """Make ``model`` the meaning of ``model=None`` (:mod:`minstab.shallow` calls it on import)."""
    if not isinstance(model, BuiltinModel):
        raise ValueError(f"model must be a BuiltinModel, got {type(model).__name__}")
    _BUILTIN["model"] = model


def builtin() -> BuiltinModel:
    """The registered built-in model; ``RuntimeError`` if none was registered."""
    try:
        return _BUILTIN["model"]
    except KeyError:
        raise RuntimeError(
            "no built-in model is registered (model=None): import minstab (its shallow layer "
            "registers the shallow ReLU net), or pass model=apply"
        ) from None


@dataclasses.dataclass(frozen=True)
class Problem:
    """A model, a loss and the data batching, as every kernel sees them (static under ``jit``).

    Attributes
    ----------
    model : ``apply(params, x) -> predictions``, or None for the shallow ReLU net.
    loss : ``loss(pred, y) -> scalar``, or None for the quadratic loss (1/2n) sum r^2.
    negative_slope : leaky-ReLU slope of the shallow net (must be 0 with a user model).
    data_batch_size : loss, gradient and curvature products as sums over batches of this many
        samples (:func:`minstab.engine.batching.batch_mean`); None: all samples at once.
    progress : with ``data_batch_size``, every batch of every product is reported to the open
        :func:`minstab.engine.batching.pass_progress` bar.

    Calling it, ``problem(params, x, y)``, is the loss.
    """

    model: Callable | None = None
    loss: Callable | None = None
    negative_slope: float = 0.0
    data_batch_size: int | None = None
    progress: bool = False

    @classmethod
    def resolve(
        cls, model=None, loss=None, *, negative_slope=0.0, data_batch_size=None, progress=False
    ) -> Problem:
        """The problem of a public call; ``ValueError`` naming the bad argument.

        ``model`` and ``loss``: None or hashable callables; ``negative_slope`` in [0, 1), and
        only for the shallow net; ``data_batch_size`` None or a positive integer; ``progress``
        a bool.
        """
        for fn, name in ((model, "model"), (loss, "loss")):
            check_callable(fn, name, none=True)
            if fn is not None:
                check_hashable(fn, name)
        negative_slope = builtin().check_slope(negative_slope)
        if model is not None and negative_slope != 0.0:
            raise ValueError(
                "negative_slope applies to the shallow net (model=None); a model sets its own "
                f"activation, got negative_slope={negative_slope}"
            )
        check_bool(progress, "progress")
        size = check_data_batch_size(data_batch_size)
        return cls(model, loss, float(negative_slope), size, bool(progress and size is not None))

    # ------------------------------------------------------------------ static facts

    @property
    def closed_form(self) -> bool:
        """The shallow net on the quadratic loss: closed-form gradient, Gram and certificate."""
        return self.model is None and self.loss is None and self.data_batch_size is None

    @property
    def shallow(self) -> bool:
        """Parameters are :class:`minstab.ShallowParams` (``model=None``)."""
        return self.model is None

    @property
    def net(self) -> Callable:
        """The model as ``apply(params, x)`` (the shallow net's forward for ``model=None``)."""
        if self.model is None:
            return builtin().apply(float(self.negative_slope))
        return self.model

    @property
    def loss_fn(self) -> Callable:
        """The loss as ``loss(pred, y)`` (:func:`minstab.squared_error` for ``loss=None``)."""
        return resolve_loss(self.loss)

    @property
    def batches(self) -> int | DataBatches | None:
        """The static batch argument of the batched operators (with the progress flag)."""
        return batch_plan(self.data_batch_size, self.progress)

    def replace(self, **changes) -> Problem:
        """A copy with some fields changed (e.g. ``model=`` for a block of parameters)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ checks (before tracing)

    def validate(self, params, x, y=None):
        """Validate arrays before tracing (:func:`minstab.engine.operators.check_model`); ``(x, y)``.

        With ``data_batch_size``, a user ``loss`` must also be a mean over samples
        (:func:`minstab.engine.batching.check_mean_loss`) and the batch is capped at n.
        """
        x, y = check_model(params, x, y, model=self.net, loss=self.loss)
        if self.data_batch_size is not None and y is not None:
            if self.loss_fn not in (squared_error, softmax_cross_entropy):
                check_mean_loss(params, x, y, model=self.net, loss=self.loss_fn)
        return x, y

    # ------------------------------------------------------------------ traceable pieces

    def apply(self, params, x):
        """Predictions f(x)."""
        return self.net(params, x)

    def _value(self, params, x, y):
        return self.loss_fn(self.net(params, x), y)

    def _batched(self, fn, x, y):
        return batch_mean(fn, x, y, batch_size=self.data_batch_size)

    def value(self, params, x, y):
        """The loss at ``params`` (a sum over batches with ``data_batch_size``)."""
        if self.data_batch_size is not None:
            return self._batched(lambda xb, yb: self._value(params, xb, yb), x, y)
        return self._value(params, x, y)

    __call__ = value

    def value_and_grad(self, params, x, y):
        """Loss and gradient by ``jax.value_and_grad`` (batch by batch with batches)."""
        if self.data_batch_size is not None:
            vg = jax.value_and_grad(self._value)
            return self._batched(lambda xb, yb: vg(params, xb, yb), x, y)
        return jax.value_and_grad(self._value)(params, x, y)

    def start_vector(self, params) -> jax.Array:
        """A fixed, dense start vector in ``ravel_pytree`` order (overlaps every eigenvector)."""
        return default_start(params)

    def hvp_flat(self, v, params, x, y):
        """H v of the loss for a flat v (``ravel_pytree`` order), forward-over-reverse."""
        theta, unravel = ravel_pytree(params)

        def one(xb, yb):
            grad = jax.grad(lambda t: self._value(unravel(t), xb, yb))
            return jax.jvp(grad, (theta,), (v,))[1]

        if self.data_batch_size is not None:
            return self._batched(one, x, y)
        return one(x, y)

    def operator(self, params, x, y, *, curvature: str = "hessian", precond=None):
        """``(theta, matvec)``: flat params and v -> A v for A = H (eq. 27) or the GGN.

        ``curvature``: one of :data:`minstab.engine.operators.CURVATURES` (``"hessian"``, ``"ggn"``).
        Without batches the gradient (or the model) is linearized once
        (:func:`minstab.engine.operators.curvature_operator`); with ``data_batch_size`` each product
        is a sum over batches (:func:`minstab.engine.batching.curvature_operator`). ``precond``: the
        flat ``D^{-1/2}`` of a diagonal preconditioner (:func:`minstab.engine.optimizers.check_precond`),
        giving ``D^{-1/2} A D^{-1/2}`` (one elementwise product each side).
        """
        if curvature not in CURVATURES:
            raise ValueError(f"curvature must be one of {CURVATURES}, got {curvature!r}")
        theta, matvec = curvature_operator(
            params, x, y, model=self.net, loss=self.loss_fn, curvature=curvature,
            batch_size=self.batches,
        )  # fmt: skip
        if precond is None:
            return theta, matvec
        return theta, lambda v: precond * matvec(precond * v)


def resolve_call(
    params, x, y, *, model=None, loss=None, negative_slope=0.0, data_batch_size=None,
    progress=False, shallow_checks=False, targets=True,
):  # fmt: skip
    """``(problem, x, y)`` of a public call on data, validated before tracing.

    ``x`` may be a sequence of ``(x_b, y_b)`` batches with ``y=None``
    (:func:`minstab.engine.batching.resolve_data`; ``data_batch_size`` then defaults to the first
    batch's size); the batch size is capped at n. The arrays are checked by
    :meth:`Problem.validate`, or, with ``shallow_checks`` and a closed-form problem, by the
    shallow net's own checks (:func:`minstab.shallow.nets.validate`: x of shape (n, d) or (n,), y of
    shape (n,)). ``targets=False``: a call without ``y`` (a Jacobian, a Gram matrix).
    """
    if data_batch_size is not None or (targets and y is None):
        x, y, data_batch_size = resolve_data(x, y, data_batch_size, progress=progress)
        if y is None:
            raise ValueError(
                "y must be an array of targets (or x a sequence of (x_b, y_b) batches)"
            )
    problem = Problem.resolve(
        model, loss, negative_slope=negative_slope, data_batch_size=data_batch_size,
        progress=progress,
    )  # fmt: skip
    if shallow_checks and problem.closed_form:
        x, y = builtin().validate(params, x, y)
    else:
        x, y = problem.validate(params, x, y)
    if problem.data_batch_size is not None and problem.data_batch_size > x.shape[0]:
        problem = problem.replace(data_batch_size=x.shape[0])
    return problem, x, y


ModelLoss = Problem
"""Former name of the ``(model, loss)`` callable: the same class (``ModelLoss(apply, loss)``)."""


def model_loss(model: Callable | None = None, loss: Callable | None = None) -> Problem:
    """``loss(model(params, x), y)`` as a function of ``(params, x, y)`` (hashable).

    ``model=None`` is the shallow ReLU net (:func:`minstab.forward`), ``loss=None`` the
    quadratic loss (1/2n) sum_j ||f(x_j) - y_j||^2. The result is a :class:`Problem`.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, minstab as ms
    >>> def apply(p, x):
    ...     return jnp.tanh(x @ p["w"]) @ p["v"]
    >>> p = {"w": jnp.ones((2, 3)), "v": jnp.ones(3)}
    >>> x, y = jnp.zeros((4, 2)), jnp.ones(4)
    >>> float(ms.model_loss(apply)(p, x, y))
    0.5
    >>> hv = ms.hvp(ms.model_loss(apply), p, p, x, y)  # H v with v = p, as a pytree
    >>> sorted(hv)
    ['v', 'w']
    """
    check_callable(model, "model", none=True)
    check_callable(loss, "loss", none=True)
    return Problem(model, loss)
