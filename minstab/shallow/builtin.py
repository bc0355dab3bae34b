"""The shallow ReLU net as the engine's built-in model (``model=None``).

The engine (:mod:`minstab.engine`) is model-agnostic and imports nothing from this layer; it asks
the registered :class:`minstab.engine.problem.BuiltinModel` for the net's forward pass, its input
checks, the closed-form gradient of the quadratic loss (eq. 19), the closed forms the sharpness
kernel of :mod:`minstab.engine.curvature` runs on (structured HVP, dense Hessian, Gram of eq. 28
with its certificate, :mod:`minstab.shallow.curvature`) and the main job's per-run diagnostics. :data:`SHALLOW_NET` is that object; :mod:`minstab.shallow` registers it
(:func:`minstab.engine.problem.register_builtin`) when ``minstab`` is imported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax.numpy as jnp

from ..engine.curvature import SharpnessOptions, sharpness_kernel
from ..engine.problem import BuiltinModel
from .bounds import weighted_curvature
from .curvature import _gram_shallow, _hessian, _shallow_matvec, residual_bound_kernel
from .flattest import flattest_implementation
from .modes import mode_interval
from .nets import ShallowParams, activation_derivative, check_slope, forward, validate

__all__ = ["SHALLOW_NET", "shallow_model", "shallow_loss_and_grad"]


@functools.cache
def shallow_model(negative_slope: float = 0.0) -> Callable:
    """The shallow net's ``forward`` as a model ``apply(params, x)``; one object per slope."""
    if negative_slope == 0.0:
        return forward
    return functools.partial(forward, negative_slope=negative_slope)


def shallow_loss_and_grad(params, x, y, negative_slope):
    """Quadratic loss (eq. 19) of the shallow net and its gradient in closed form.

    With z = X W1^T + b1, a = sigma'(z) (sigma'(0) = slope, as in :mod:`minstab.shallow.nets`),
    s = sigma(z) = a z and r_n = (f(X) - y) / n, two orders of the same sums:

    - few inputs (d < n): M = (a r_n)^T X (k, d) and A = (a r_n)^T 1 (k,) give
      grad W1 = w2 M, grad b1 = w2 A and grad w2 = sum_d W1 M + b1 A (= s^T r_n), so the
      extra work is O(k d);
    - many inputs (d >= n): with dz = a r_n w2^T (n, k), grad W1 = dz^T X, grad b1 = 1^T dz and
      grad w2 = s^T r_n, so the extra work is O(n k) and the large W1 is read once.

    Both are one forward pass and one n x k x d product back, against the extra passes and
    copies autodiff emits; under ``vmap`` over runs with shared data, X W1^T and the product
    back fold the runs into single matmuls. Measured (2-core CPU, float32): the first order
    is 1.3x ``jax.grad``'s steps per second on n = 20, d = 1, k = 100 per run; the second
    1.15x the first on n = 200, d = 784, k = 64. They agree with ``jax.grad`` to rounding,
    except exactly at a knot (z = 0), where ``jax.grad`` of ``jnp.maximum`` splits the
    derivative in half.
    """
    n, d = x.shape
    z = x @ params.w1.T + params.b1[None, :]
    a = activation_derivative(z, negative_slope)
    s = z * a
    r = s @ params.w2 + params.b2 - y
    rn = r / n
    if d < n:
        ar = a * rn[:, None]  # dL/dz divided by w2, (n, k)
        m = ar.T @ x  # (k, d)
        sa = jnp.sum(ar, axis=0)  # (k,)
        grads = ShallowParams(
            params.w2[:, None] * m,
            params.w2 * sa,
            jnp.sum(params.w1 * m, axis=1) + params.b1 * sa,
            jnp.sum(rn),
        )
    else:
        dz = a * (rn[:, None] * params.w2[None, :])  # dL/dz, (n, k)
        grads = ShallowParams(dz.T @ x, jnp.sum(dz, axis=0), s.T @ rn, jnp.sum(rn))
    return 0.5 * jnp.mean(r * r), grads


def _diagnostics(problem, params, x, y, *, flattest: bool) -> dict:
    """End-of-run quantities of one sweep run of the shallow net on the quadratic loss.

    The sharpness by the closed-form Gram (eq. 28) with its certificate ``max_i ||c_i||``
    (:func:`minstab.shallow.curvature.residual_bound_kernel`), Lemma 4's lower bound
    1 + 2 int |f''| g (eq. 21), and with ``flattest`` the flattest implementation's sharpness.
    """
    opts = SharpnessOptions("gram", None, 1e-8, with_vector=False)
    g = sharpness_kernel(params, x, y, None, problem=problem, opts=opts)
    curv = weighted_curvature(params, x)
    fl = jnp.array(jnp.nan, x.dtype)
    if flattest:
        fl = flattest_implementation(params, x, y).sharpness
    return dict(
        sharpness=g.value,
        sharpness_residual=residual_bound_kernel(params, x, y, problem.negative_slope),
        lower_bound=1 + 2 * curv,
        flattest_sharpness=fl,
        weighted_curvature=curv,
    )


SHALLOW_NET = BuiltinModel(
    params_type=ShallowParams,
    check_slope=check_slope,
    apply=shallow_model,
    validate=validate,
    loss_and_grad=shallow_loss_and_grad,
    hvp=_shallow_matvec,
    hessian=_hessian,
    gram_sharpness=_gram_shallow,
    diagnostics=_diagnostics,
    curvature=weighted_curvature,
    mode_interval=mode_interval,
)
"""The shallow ReLU net of seed 004 eq. (18) as the engine's ``model=None``."""
