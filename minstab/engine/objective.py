"""What the training loops need from a model: loss, gradient, Hessian products, sharpness.

Every loop in :mod:`minstab.engine.train` and :mod:`minstab.engine.sweep` talks to an :class:`Objective`,
the :class:`minstab.engine.problem.Problem` of a training run, which covers two kinds of model with
one interface:

- ``model=None, loss=None``: the shallow ReLU net of seed 004 eq. (18) on the quadratic loss
  (eq. 19). The gradient is written in closed form (one forward pass, backprop by hand) and the
  sharpness uses the closed-form Gram / structured HVP (:mod:`minstab.engine.curvature`'s kernel
  on the closed forms of :mod:`minstab.shallow.curvature`): the automatic fast path (the static
  field :attr:`~minstab.engine.problem.Problem.closed_form`), reached through the registered
  built-in model (:class:`~minstab.engine.problem.BuiltinModel`, :mod:`minstab.shallow.builtin`).
- any pure ``model(params, x) -> predictions`` over any params pytree, with ``loss(pred, y)``
  (default the quadratic loss (1/2n) sum r^2 over every output entry, n = ``x.shape[0]``):
  the problem's ``jax.value_and_grad``, forward-over-reverse Hessian-vector products on the
  ``ravel_pytree`` flat vector, and an eigen-solver of :data:`minstab.engine.eigen.SOLVERS` for the
  sharpness. The built-in net with a custom ``loss`` takes this path too.

An :class:`Objective` is a frozen dataclass (hashable), so it is a static argument of ``jit``:
one compiled program per (model, loss), and new parameters, data or step sizes never recompile.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from .._validate import check_common_float_dtype
from .config import TrainConfig, describe
from .curvature import SharpnessOptions, sharpness_kernel
from .eigen import solve
from .problem import Problem, builtin

__all__ = ["Objective"]


@dataclasses.dataclass(frozen=True)
class Objective(Problem):
    """The :class:`minstab.engine.problem.Problem` of a training loop (static under ``jit``).

    The same fields and traceable pieces as :class:`~minstab.engine.problem.Problem`; for the shallow
    net on the quadratic loss (:attr:`closed_form`) the gradient is the closed form of
    :func:`minstab.shallow.builtin.shallow_loss_and_grad` and the sharpness the closed-form Gram / structured HVP of
    :mod:`minstab.shallow.curvature`. Adds the checks of a ``train``/``sweep`` configuration.
    """

    @classmethod
    def of(cls, model, loss, config: TrainConfig) -> Objective:
        """The objective of a ``train``/``sweep`` call; bad combinations raise ``ValueError``."""
        if model is not None and not callable(model):
            raise ValueError(f"model must be a callable apply(params, x), got {model!r}")
        if loss is not None and not callable(loss):
            raise ValueError(f"loss must be a callable loss(pred, y), got {loss!r}")
        if model is not None and config.negative_slope != 0.0:
            raise ValueError("negative_slope applies to the built-in shallow net, not to a model")
        obj = cls(model, loss, config.negative_slope, config.data_batch_size)
        if config.log_sharpness == "gram" and not obj.closed_form:
            raise ValueError(
                "log_sharpness='gram' needs the shallow net on the quadratic loss (its Gram "
                "matrix is closed-form); use 'lanczos' or 'auto' with a model or a loss"
            )
        if config.log_sharpness == "preconditioned":
            from .optimizers import preconditioned_spec

            if config.plain_gd or not preconditioned_spec(config.optimizer):
                raise ValueError(
                    "log_sharpness='preconditioned' needs an optimizer with a diagonal "
                    "preconditioner: 'adam', optax.adam/adamw/rmsprop or "
                    "minstab.preconditioned_gd (the plain sharpness is 'lanczos')"
                )
        if config.log_curvature and model is not None:
            raise ValueError("log_curvature needs the shallow ReLU net (model=None)")
        return obj

    def describe(self) -> dict:
        """JSON-ready names of the model and loss (stable across processes)."""
        return {
            "model": "shallow" if self.shallow else describe(self.model),
            "loss": "quadratic" if self.loss is None else describe(self.loss),
        }

    # ------------------------------------------------------------------ checks (before tracing)

    def check(self, params, x, y):
        """Validate user inputs; returns ``(x, y, dtype)`` with x as (n, d) for the shallow net.

        The shallow net: its own checks (:func:`minstab.shallow.nets.validate`, one dtype for
        params, x and y). A model, or the shallow net with a ``loss``:
        :meth:`~minstab.engine.problem.Problem.validate`, the check of every public function
        (:func:`minstab.engine.operators.check_model`).
        """
        if self.shallow:
            kind = builtin().params_type
            if not isinstance(params, kind):
                raise ValueError(
                    f"params must be a {kind.__name__}{kind._fields} when model is None (pass "
                    f"model=apply for other networks), got {type(params).__name__}"
                )
            x, y = builtin().validate(params, x, y)
            check_common_float_dtype(params, x, y)  # x, y and every field share one dtype
            dtype = params.w1.dtype
            if self.loss is not None:  # the loss's output (and mean over samples with batches)
                self.validate(params, x, y)
            return x, y, dtype
        x, y = self.validate(params, x, y)
        return x, y, np.dtype(jax.tree_util.tree_leaves(params)[0].dtype)

    # ------------------------------------------------------------------ closed forms

    def value_and_grad(self, params, x, y):
        """Loss and gradient (closed form for the shallow net on the quadratic loss)."""
        if self.closed_form:
            return builtin().loss_and_grad(params, x, y, self.negative_slope)
        return super().value_and_grad(params, x, y)

    def sharpness(self, params, x, y, v0, *, method: str, num_iters, tol):
        """(value, vector, residual) of lambda_max of the loss Hessian, warm-started at ``v0``.

        ``v0=None`` with ``"gram"``: the Hessian eigenvector is not formed (zeros returned).

        ``method``: ``"gram"`` (closed-form Gram of eq. 28 and its certified error bound,
        shallow net on the quadratic loss only) or ``"lanczos"`` (structured HVP for the
        shallow net, forward-over-reverse HVP otherwise); another model takes any entry of
        :data:`minstab.engine.eigen.SOLVERS` on its HVP.
        """
        if self.closed_form:
            opts = SharpnessOptions(method, num_iters, tol, with_vector=v0 is not None)
            r = sharpness_kernel(params, x, y, v0, problem=self, opts=opts)
            return r.value, r.vector, r.residual
        # any eigen-solver of the table on this objective's HVP (train and sweep ask "lanczos")
        r = solve(method, self.hvp_flat, v0, params, x, y, num_iters=num_iters, tol=tol)
        return r.value, r.vector, r.residual

    def log_method(self, config: TrainConfig) -> str:
        """The sharpness method of the in-loop log (``"auto"`` resolved)."""
        if config.log_sharpness != "auto":
            return config.log_sharpness
        return "gram" if self.closed_form else "lanczos"
