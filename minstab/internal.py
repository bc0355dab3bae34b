"""Traceable kernels shared by minstab's own layers (train, sweep, flattest), as lineax.internal.

They do no validation (callers check inputs first, outside ``jit``) and take their static
configuration as keyword arguments. Users call the public functions instead
(:func:`minstab.sharpness`, :func:`minstab.hessian_eigenvalues`, ...).

Shallow net (x of shape (n, d)):
    ``sharpness_kernel(params, x, y, v0, *, method, num_iters, tol, negative_slope,
    with_vector=True) -> SharpnessResult``; ``residual_bound_kernel(params, x, y,
    negative_slope)`` (max_i ||c_i||, the Gram shortcut's exact error bound);
    ``default_start(params)`` (the fixed start vector, for any params pytree).
Any model (``model``, ``loss`` resolved callables, e.g. ``resolve_loss(None)``):
    ``model_sharpness_kernel(params, x, y, v0, *, model, loss, method, num_iters, tol)``,
    ``model_auto_kernel(params, x, y, v0, *, model, loss, num_iters, tol)``, the operators
    ``hessian_operator``, ``ggn_operator``, ``gram_operator``, ``curvature_operator`` and the
    validation ``check_model``.
"""

from .curvature import model_auto_kernel as model_auto_kernel
from .curvature import model_sharpness_kernel as model_sharpness_kernel
from .curvature import residual_bound_kernel as residual_bound_kernel
from .curvature import sharpness_kernel as sharpness_kernel
from .operators import check_model as check_model
from .operators import curvature_operator as curvature_operator
from .operators import default_start as default_start
from .operators import ggn_operator as ggn_operator
from .operators import gram_operator as gram_operator
from .operators import hessian_operator as hessian_operator
from .operators import resolve_loss as resolve_loss
from .operators import shallow_model as shallow_model
