"""One call for every stability quantity of a network at a step size, with verdicts.

:func:`stability_report` gathers seed 004's chain of results for a trained shallow net:
is it a minimum (loss and gradient residuals), is it twice differentiable (no knot on a data
point), Lemma 1 (sharpness <= 2/eta), Lemma 3/2 at non-differentiable minima (mode Hessians),
Lemma 4 (1 + 2 int |f''| g <= flattest sharpness), and the function-space budget of Theorem 1
(twice differentiable) or Theorem 2 (with its slack Delta).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._validate import check_int, check_positive, check_real
from .bounds import sharpness_lower_bound, theorem2_delta, weighted_curvature
from .curvature import hessian
from .flattest import flattest_implementation
from .losses import quadratic_loss
from .modes import mode_hessians
from .nets import ShallowParams, flatten, unflatten, validate

__all__ = ["StabilityReport", "stability_report"]


class StabilityReport(NamedTuple):
    """Everything :func:`stability_report` computes (plain Python floats and bools)."""

    eta: float
    loss: float
    grad_norm: float
    is_minimum: bool
    twice_differentiable: bool
    num_toggling: int
    sharpness: float  # lambda_max of the Hessian (ReLU'(0) = 0 convention)
    two_over_eta: float
    lemma1_ok: bool  # sharpness <= 2/eta: necessary for (linear) stability
    lambda_upper: float  # max over modes (Lemma 3); = sharpness when differentiable
    lemma3_strongly_stable: bool  # lambda_upper <= 2/eta: sufficient for GD
    lemma2_delta: float
    lemma2_unstable: bool  # min_m lambda_m > 2/eta + delta: not strongly stable
    modes_truncated: bool
    weighted_curvature: float  # int |f''| g (d = 1) or the weighted Laplacian norm (d > 1)
    lower_bound: float  # Lemma 4: 1 + 2 weighted_curvature
    flattest_sharpness: float
    flattest_certified: float  # dual lower bound on the flattest sharpness
    theorem: str  # "theorem1" or "theorem2"
    budget: float  # 1/eta - 1/2 (+ Delta for Theorem 2)
    theorem2_delta: float
    necessary_condition_met: bool  # weighted_curvature <= budget
    slack: float  # budget - weighted_curvature

    def summary(self) -> str:
        """A readable multi-line verdict."""
        ok = {True: "yes", False: "NO"}
        lines = [
            f"step size eta = {self.eta:g}   (2/eta = {self.two_over_eta:.6g})",
            f"minimum?                 {ok[self.is_minimum]}  (loss {self.loss:.2e}, "
            f"|grad| {self.grad_norm:.2e})",
            f"twice differentiable?    {ok[self.twice_differentiable]}  "
            f"({self.num_toggling} knot(s) on data points)",
            f"sharpness                {self.sharpness:.6g}   Lemma 1 (<= 2/eta): "
            f"{ok[self.lemma1_ok]}",
            f"max over modes           {self.lambda_upper:.6g}   Lemma 3 strongly stable: "
            f"{ok[self.lemma3_strongly_stable]}"
            + ("  (modes sampled)" if self.modes_truncated else ""),
            f"flattest implementation  {self.flattest_sharpness:.6g}   (certified >= "
            f"{self.flattest_certified:.6g})",
            f"Lemma 4 lower bound      {self.lower_bound:.6g}",
            f"weighted curvature       {self.weighted_curvature:.6g}   budget ({self.theorem}) "
            f"{self.budget:.6g}   slack {self.slack:.4g}   "
            f"met: {ok[self.necessary_condition_met]}",
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def stability_report(
    params: ShallowParams,
    x: jax.Array,
    y: jax.Array,
    eta,
    *,
    loss_tol: float = 1e-10,
    atol: float = 1e-9,
    max_modes: int = 256,
    threshold=None,
) -> StabilityReport:
    """Stability verdicts for a network at step size ``eta`` (seed 004 Lemmas 1-4, Theorems 1-2).

    A point is called a minimum when its loss is below ``loss_tol``. Knots within ``atol``
    (relative) of a data point make it non-differentiable: then the mode Hessians are enumerated
    (at most ``max_modes``) and Theorem 2's budget ``1/eta - 1/2 + Delta`` applies instead of
    Theorem 1's ``1/eta - 1/2``. Meant for the small networks of the papers (dense Hessians).

    ``threshold``: the optimizer's stability threshold on the sharpness in place of GD's 2/eta
    (:func:`minstab.stability_threshold`, e.g. ``(2 + 2 beta)/eta`` for heavy ball). Every
    verdict then uses it (``two_over_eta`` holds it) and the budgets are those of GD with the
    step 2/threshold, which has the same threshold: threshold/2 - 1/2 (+ Delta; issue 33).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, minstab as ms
    >>> x = jnp.array([-1.0, 0.0, 1.0]); y = jnp.array([1.0, 0.0, 1.0])
    >>> p = ms.ShallowParams(jnp.array([[1.0], [-1.0]]), jnp.array([-0.5, -0.5]),
    ...                      jnp.array([2.0, 2.0]), jnp.array(0.0))
    >>> r = ms.stability_report(p, x, y, eta=0.05)
    >>> r.is_minimum, r.twice_differentiable, r.theorem
    (True, True, 'theorem1')
    """
    if threshold is not None:  # GD with step 2/threshold has this threshold (issue 33)
        check_positive(eta, "eta")
        check_positive(threshold, "threshold")
        gd = stability_report(params, x, y, 2.0 / float(threshold), loss_tol=loss_tol,
                              atol=atol, max_modes=max_modes)  # fmt: skip
        return gd._replace(eta=float(eta))
    check_positive(eta, "eta")
    if jnp.ndim(eta) != 0:
        raise ValueError(f"eta must be a scalar, got shape {jnp.shape(eta)}")
    loss_tol = check_real(loss_tol, "loss_tol", lo=0.0)
    atol = check_real(atol, "atol", lo=0.0)
    max_modes = check_int(max_modes, "max_modes", minimum=2)
    x2, y = validate(params, x, y)
    eta = float(eta)
    k, d = params.w1.shape
    theta = flatten(params)
    loss = float(quadratic_loss(params, x2, y))
    grad = jax.grad(lambda t: quadratic_loss(unflatten(t, k, d), x2, y))(theta)
    sharp = float(jnp.linalg.eigvalsh(hessian(params, x2, y))[-1])
    modes = mode_hessians(params, x2, y, atol=atol, max_modes=max_modes)
    diff = modes.num_toggling == 0
    wc = float(weighted_curvature(params, x2))
    flat = flattest_implementation(params, x2, y)
    if diff or d > 1:
        theorem, delta = "theorem1", 0.0
    else:
        theorem, delta = "theorem2", float(theorem2_delta(params, x2, eta).delta)
    budget = 1 / eta - 0.5 + delta
    lam_upper = max(modes.lambda_upper, sharp) if not diff else sharp
    return StabilityReport(
        eta=eta, loss=loss, grad_norm=float(jnp.linalg.norm(grad)),
        is_minimum=loss <= loss_tol, twice_differentiable=bool(diff),
        num_toggling=modes.num_toggling, sharpness=sharp, two_over_eta=2 / eta,
        lemma1_ok=sharp <= 2 / eta * (1 + 1e-9), lambda_upper=float(lam_upper),
        lemma3_strongly_stable=lam_upper <= 2 / eta * (1 + 1e-9),
        lemma2_delta=modes.delta, lemma2_unstable=modes.lambda_lower > 2 / eta + modes.delta,
        modes_truncated=modes.truncated, weighted_curvature=wc,
        lower_bound=float(sharpness_lower_bound(params, x2)),
        flattest_sharpness=float(flat.sharpness), flattest_certified=float(flat.dual_bound),
        theorem=theorem, budget=float(budget), theorem2_delta=delta,
        necessary_condition_met=wc <= budget, slack=float(budget - wc),
    )  # fmt: skip
