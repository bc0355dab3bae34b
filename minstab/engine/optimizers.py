"""Stability beyond plain GD: momentum, Nesterov, Adam and RMSProp (issue 33, THEORY §7).

On a quadratic ``L(theta) = (1/2) lambda theta^2`` every one of these optimizers is a *linear*
recurrence in its state (parameter, momentum buffer), ``s_{t+1} = A(eta lambda) s_t``; the
minimum is linearly stable iff the spectral radius of the companion matrix A is <= 1. For a
quadratic ``(1/2) theta^T H theta`` the recurrence decouples along H's eigenvectors, so the
condition on the sharpness lambda_max(H) is the 1-D one. With ``a = eta lambda``:

* GD, ``theta' = theta - eta g``: ``z = 1 - a``, stable iff ``a <= 2``: **lambda <= 2/eta**
  (seed 004 Lemma 1).
* Heavy ball (Polyak), optax's ``sgd(momentum=beta)``: ``t' = g + beta t``,
  ``theta' = theta - eta t'``. Eliminating t, ``theta_{k+1} = (1 + beta - a) theta_k - beta
  theta_{k-1}``, characteristic polynomial ``p(z) = z^2 - (1 + beta - a) z + beta``. Jury's
  criterion for ``z^2 + c_1 z + c_0``: both roots in the closed unit disk iff ``|c_0| <= 1`` and
  ``|c_1| <= 1 + c_0``; here ``|1 + beta - a| <= 1 + beta``, i.e. ``0 <= a <= 2 + 2 beta``:
  **lambda <= (2 + 2 beta)/eta** (3.8/eta at beta = 0.9). The boundary is the root z = -1,
  ``p(-1) = 2 + 2 beta - a = 0``.
* Nesterov, optax's ``sgd(momentum=beta, nesterov=True)``: ``t' = g + beta t``, ``theta' =
  theta - eta (g + beta t')`` with g taken at theta (the PyTorch/optax form). On the quadratic,
  ``theta' = (1 - a(1 + beta)) theta - eta beta^2 t`` and ``t' = lambda theta + beta t``, whose
  characteristic polynomial is ``z^2 - (1 + beta)(1 - a) z + beta (1 - a)``: the same as the
  look-ahead form ``y = theta + beta (theta - theta_prev)``, ``theta' = y - eta grad(y)`` of
  THEORY §7 (optax's form is that one in the variable y). Jury: ``|beta(1 - a)| <= 1`` holds for
  ``a <= 1 + 1/beta``, and ``|(1 + beta)(1 - a)| <= 1 + beta(1 - a)`` gives, for ``a > 1``,
  ``(a - 1)(1 + 2 beta) <= 1``: **lambda <= (2 + 2 beta)/(eta (1 + 2 beta))** (1.357/eta at beta =
  0.9; the boundary root is again z = -1). The issue's formula is the recurrence optax runs.
* Adam (Kingma & Ba; optax ``adam``/``adamw``), with the denominator frozen at
  ``D = sqrt(v_hat) + eps`` and the first-moment bias correction at its limit 1: ``m' = b1 m +
  (1 - b1) g``, ``theta' = theta - eta D^{-1} m'``. Along an eigenvector of ``D^{-1/2} H
  D^{-1/2}`` (in the variable ``D^{1/2} theta``) with eigenvalue mu this is heavy ball with step
  ``eta (1 - b1)`` (put ``u = -eta m``: ``u' = b1 u - eta (1 - b1) g``), so it is stable iff
  ``eta (1 - b1) mu <= 2 + 2 b1``: **lambda_max(D^{-1} H) <= (2 + 2 b1)/(eta (1 - b1))** (38/eta
  at b1 = 0.9; Cohen et al., "Adaptive gradient methods at the edge of stability", 2022).
  ``D^{-1} H`` and ``D^{-1/2} H D^{-1/2}`` are similar, so they share eigenvalues.
* RMSProp (optax ``rmsprop``), frozen denominator ``D``: without momentum ``theta' = theta -
  eta D^{-1} g``, GD on the preconditioned problem: **lambda_max(D^{-1} H) <= 2/eta**. optax's
  ``momentum=beta`` is a heavy-ball trace ``t' = D^{-1} g + beta t`` (a sum, not an EMA), so
  the threshold is **(2 + 2 beta)/eta**.

The thresholds of Adam and RMSProp hold for a *frozen* D. Adam changes D every step; Cohen et
al. observed that it nonetheless trains at the "adaptive edge of stability", where the
preconditioned sharpness at the current D hovers at the threshold:
:func:`preconditioned_sharpness` measures it, :func:`adam_preconditioner` reads D from an
optax state.

Lemma 4 (``lambda_max >= 1 + 2 int |f''| g`` at an interpolating minimum of the shallow net)
with the heavy-ball threshold gives ``int |f''| g <= (1 + beta)/eta - 1/2`` at a stable
twice-differentiable interpolating minimum: Theorem 1's argument with the new threshold
(THEORY §7; not in any paper we know of). :func:`momentum_budget` computes it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .._validate import check_positive, is_concrete

__all__ = [
    "THRESHOLD_OPTIMIZERS",
    "FixedPreconditionerState",
    "stability_threshold",
    "threshold_for",
    "optimizer_spec",
    "momentum_budget",
    "preconditioned_sharpness",
    "adam_preconditioner",
    "preconditioner_kernel",
    "check_precond",
    "inverse_sqrt_scale",
    "preconditioned_matvec",
    "preconditioned_spec",
    "preconditioned_gd",
]

THRESHOLD_OPTIMIZERS = ("gd", "momentum", "nesterov", "adam", "rmsprop")

# hyperparameters each optimizer name takes: canonical name -> accepted spellings, and names
# accepted but irrelevant to the threshold (so an optimizer's own keywords can be passed along)
_HYPER = {
    "gd": ({}, ()),
    "momentum": ({"beta": ("beta", "momentum")}, ()),
    "nesterov": ({"beta": ("beta", "momentum")}, ()),
    "adam": ({"b1": ("b1", "beta1")}, ("b2", "beta2", "eps", "eps_root", "weight_decay")),
    "rmsprop": ({"beta": ("momentum", "beta")}, ("decay", "eps", "initial_scale", "centered")),
}
_DEFAULTS = {"momentum": {"beta": 0.9}, "nesterov": {"beta": 0.9}, "adam": {"b1": 0.9},
             "rmsprop": {"beta": 0.0}}  # fmt: skip


def _hyper(optimizer: str, hyper: dict) -> dict:
    names, ignored = _HYPER[optimizer]
    out = dict(_DEFAULTS.get(optimizer, {}))
    given = {}
    for key, value in hyper.items():
        canon = next((c for c, spell in names.items() if key in spell), None)
        if canon is None:
            if key in ignored:
                continue
            valid = sorted({s for spell in names.values() for s in spell} | set(ignored))
            raise ValueError(
                f"{key} is not a hyperparameter of optimizer {optimizer!r}; valid: "
                f"{', '.join(valid) or 'none'}"
            )
        if canon in given:
            raise ValueError(f"{key} and {given[canon]} both set {canon} of {optimizer!r}")
        given[canon] = key
        if value is None:  # optax's momentum=None: no momentum
            value = 0.0
        if not is_concrete(value) or np.ndim(value) != 0:
            raise ValueError(f"{key} must be a number (a concrete scalar), got {value!r}")
        v = float(value)
        if not 0.0 <= v < 1.0:
            raise ValueError(f"{key} must be in [0, 1) for {optimizer!r}, got {value!r}")
        out[canon] = v
    return out


def stability_threshold(optimizer: str, eta, **hyper):
    """The largest sharpness at which ``optimizer`` with step size ``eta`` is linearly stable.

    On a quadratic with Hessian H each optimizer is a linear recurrence; its minimum is stable
    iff the companion matrix's spectral radius is <= 1 along every eigenvector of H (module
    docstring: the characteristic polynomials and Jury's criterion). The condition is on
    lambda_max(H) for GD and momentum, and on the *preconditioned* sharpness
    lambda_max(D^{-1} H), D = diag(sqrt(v_hat) + eps) frozen, for Adam and RMSProp
    (:func:`preconditioned_sharpness`).

    ===============  ====================================  ==========================
    optimizer        threshold                             hyperparameters (default)
    ===============  ====================================  ==========================
    ``"gd"``         2 / eta                               none
    ``"momentum"``   (2 + 2 beta) / eta                    ``beta`` (0.9)
    ``"nesterov"``   (2 + 2 beta) / (eta (1 + 2 beta))     ``beta`` (0.9)
    ``"adam"``       (2 + 2 b1) / (eta (1 - b1))           ``b1`` (0.9)
    ``"rmsprop"``    (2 + 2 beta) / eta                    ``momentum`` (0: 2/eta)
    ===============  ====================================  ==========================

    "momentum" and "nesterov" are optax's ``sgd(momentum=beta[, nesterov=True])`` (also spelled
    ``momentum=``); "adam" is optax's ``adam``/``adamw`` (``b1``, also ``beta1``; ``b2``,
    ``eps``, ... are accepted and do not matter); "rmsprop" is optax's ``rmsprop`` whose
    ``momentum`` is a heavy-ball trace.

    Parameters
    ----------
    optimizer : one of ``"gd"``, ``"momentum"``, ``"nesterov"``, ``"adam"``, ``"rmsprop"``.
    eta : step size (positive; a scalar or an array of step sizes).
    **hyper : the optimizer's momentum parameter, in [0, 1).

    Returns
    -------
    The threshold, with the shape of ``eta`` (a float for a Python number).

    Examples
    --------
    >>> import minstab as ms
    >>> ms.stability_threshold("gd", 0.25), ms.stability_threshold("momentum", 0.25, beta=0.5)
    (8.0, 12.0)
    >>> round(ms.stability_threshold("adam", 1e-3), 6)  # 38 / eta at b1 = 0.9
    38000.0
    """
    if not isinstance(optimizer, str) or optimizer not in THRESHOLD_OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {', '.join(map(repr, THRESHOLD_OPTIMIZERS))}; got "
            f"{optimizer!r}"
        )
    check_positive(eta, "eta")
    h = _hyper(optimizer, hyper)
    factor = _factor(optimizer, h)
    if isinstance(eta, int | float) and not isinstance(eta, bool):
        return factor / float(eta)
    eta = jnp.asarray(eta) if not isinstance(eta, np.ndarray) else eta
    return factor / eta


def _factor(optimizer: str, h: dict) -> float:
    """The threshold times eta (module docstring)."""
    if optimizer == "gd":
        return 2.0
    if optimizer in ("momentum", "rmsprop"):
        return 2.0 + 2.0 * h["beta"]
    if optimizer == "nesterov":
        return (2.0 + 2.0 * h["beta"]) / (1.0 + 2.0 * h["beta"])
    return (2.0 + 2.0 * h["b1"]) / (1.0 - h["b1"])  # adam


def momentum_budget(eta, beta: float = 0.9):
    """(1 + beta)/eta - 1/2: the heavy-ball analogue of Theorem 1's budget on int |f''| g.

    A twice-differentiable interpolating minimum that heavy ball reaches stably has lambda_max
    <= (2 + 2 beta)/eta (:func:`stability_threshold`) and, by Lemma 4, lambda_max >= 1 + 2 int
    |f''| g; together ``int |f''| g <= (1 + beta)/eta - 1/2``. ``beta = 0`` is Theorem 1.
    """
    return stability_threshold("momentum", eta, beta=beta) / 2 - 0.5


# ----------------------------------------------------------------------------- optimizer specs
def _factory_name(factory) -> str | None:
    target = factory.func if isinstance(factory, functools.partial) else factory
    return getattr(target, "__name__", None)


def _bound_args(factory) -> dict:
    """The factory's keyword values: its defaults, overridden by a partial's arguments."""
    target = factory.func if isinstance(factory, functools.partial) else factory
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return {}
    out = {k: p.default for k, p in sig.parameters.items() if p.default is not p.empty}
    if isinstance(factory, functools.partial):
        names = list(sig.parameters)
        out.update(dict(zip(names, factory.args, strict=False)))
        out.update(factory.keywords)
    return out


def optimizer_spec(optimizer, *, momentum: float = 0.9) -> tuple[str, dict]:
    """``(name, hyper)`` for :func:`stability_threshold` from a training optimizer.

    ``optimizer`` is what :class:`minstab.TrainConfig` takes: a name (``"gd"``,
    ``"momentum"``, ``"nesterov"``, ``"adam"``; ``momentum`` is the config's momentum) or an
    optax factory (``optax.sgd``, ``optax.adam``, ``optax.adamw``, ``optax.rmsprop``, or a
    ``functools.partial`` of one, whose arguments are read), or :func:`preconditioned_gd`.
    Other factories raise ``ValueError`` (their threshold is not derived here).
    """
    if isinstance(optimizer, str):
        if optimizer not in ("gd", "momentum", "nesterov", "adam"):
            raise ValueError(
                f"optimizer must be 'gd', 'momentum', 'nesterov', 'adam' or an optax factory, "
                f"got {optimizer!r}"
            )
        return optimizer, ({"beta": float(momentum)} if optimizer in ("momentum", "nesterov")
                           else {})  # fmt: skip
    name = _factory_name(optimizer)
    args = _bound_args(optimizer)
    if name == "sgd":
        beta = args.get("momentum")
        if not beta:
            return "gd", {}
        return ("nesterov" if args.get("nesterov") else "momentum"), {"beta": float(beta)}
    if name in ("adam", "adamw"):
        if args.get("nesterov"):
            raise ValueError("optimizer: the threshold of Adam with nesterov=True is not derived")
        return "adam", {"b1": float(args.get("b1", 0.9))}
    if name == "rmsprop":
        if args.get("nesterov"):
            raise ValueError(
                "optimizer: the threshold of RMSProp with nesterov=True is not derived"
            )
        return "rmsprop", {"beta": float(args.get("momentum") or 0.0)}
    if name == "preconditioned_gd":
        return "gd", {}
    raise ValueError(
        f"optimizer: no stability threshold is derived for {name or optimizer!r}; use "
        "'gd', 'momentum', 'nesterov', 'adam', optax.sgd, optax.adam, optax.adamw or optax.rmsprop"
    )


def threshold_for(optimizer, eta, *, momentum: float = 0.9):
    """The stability threshold of a training optimizer (see :func:`optimizer_spec`) at ``eta``.

    A :class:`minstab.TrainConfig` may be passed as ``optimizer`` (its optimizer and momentum
    are used). For Adam, RMSProp and :func:`preconditioned_gd` it bounds the preconditioned
    sharpness, for the others the plain one.
    """
    if hasattr(optimizer, "optimizer") and hasattr(optimizer, "momentum"):  # a TrainConfig
        optimizer, momentum = optimizer.optimizer, optimizer.momentum
    name, hyper = optimizer_spec(optimizer, momentum=momentum)
    return stability_threshold(name, eta, **hyper)


def preconditioned_spec(optimizer) -> bool:
    """Whether the optimizer's threshold bounds the preconditioned sharpness (Adam, RMSProp)."""
    if isinstance(optimizer, str):
        return optimizer == "adam"
    return _factory_name(optimizer) in ("adam", "adamw", "rmsprop", "preconditioned_gd")


# ----------------------------------------------------------------------------- preconditioners
class FixedPreconditionerState(NamedTuple):
    """State of :func:`preconditioned_gd`: the fixed diagonal preconditioner D (like params)."""

    precond: object


def preconditioned_gd(learning_rate, precond):
    """Preconditioned GD with a fixed diagonal D as an optax transformation: ``-eta D^{-1} g``.

    The frozen-preconditioner control of Cohen et al. (2022): Adam's denominator frozen at a
    step, without momentum. It is GD in the variable ``D^{1/2} theta``, stable iff
    ``lambda_max(D^{-1} H) <= 2/eta``. D lives in the optimizer state
    (:class:`FixedPreconditionerState`), where :func:`adam_preconditioner` finds it.
    """
    import optax

    def init(params):
        del params
        return FixedPreconditionerState(precond)

    def update(updates, state, params=None):
        del params
        lr = learning_rate(0) if callable(learning_rate) else learning_rate
        upd = jax.tree_util.tree_map(lambda g, d: -lr * g / d, updates, state.precond)
        return upd, state

    return optax.GradientTransformation(init, update)


def _find_states(state, names: tuple[str, ...]) -> list:
    """Every sub-state of an optax state whose class name is in ``names`` (depth first)."""
    found = []
    if type(state).__name__ in names:
        return [state]
    if hasattr(state, "inner_state"):  # inject_hyperparams
        return _find_states(state.inner_state, names)
    if isinstance(state, tuple | list):
        for s in state:
            found += _find_states(s, names)
    return found


def _injected(state, key: str):
    """A hyperparameter of an ``optax.inject_hyperparams`` state, or None."""
    hp = getattr(state, "hyperparams", None)
    return None if hp is None else hp.get(key)


_SECOND_MOMENT = ("ScaleByAdamState", "ScaleByRmsState", "ScaleByRmsWithCountState",
                  "ScaleByRStdDevState", "ScaleByRStdDevWithCountState",
                  "FixedPreconditionerState")  # fmt: skip


def preconditioner_kernel(opt_state, *, eps=None, b2=None, bias_correction=True,
                          eps_in_sqrt=None, eps_root=None):  # fmt: skip
    """Traceable core of :func:`adam_preconditioner` (no validation): D as a pytree, or None."""
    found = _find_states(opt_state, _SECOND_MOMENT)
    if not found:
        return None
    s = found[0]
    kind = type(s).__name__
    if kind == "FixedPreconditionerState":
        return s.precond
    adam = kind == "ScaleByAdamState"
    if eps is None:
        eps = _injected(opt_state, "eps")
        eps = 1e-8 if eps is None else eps
    if eps_root is None:
        eps_root = _injected(opt_state, "eps_root") if adam else None
        eps_root = 0.0 if eps_root is None else eps_root
    if eps_in_sqrt is None:  # optax: adam adds eps outside the root, rmsprop inside
        eps_in_sqrt = not adam
    nu = s.nu
    if kind.startswith("ScaleByRStdDev"):  # centered RMSProp: variance nu - mu^2
        nu = jax.tree_util.tree_map(lambda v, m: v - m * m, s.nu, s.mu)
    count = s.count if "count" in s._fields else None  # (tuple.count is a method)
    if bias_correction and count is not None:
        if b2 is None:
            b2 = _injected(opt_state, "b2" if adam else "decay")
            b2 = (0.999 if adam else 0.9) if b2 is None else b2
        leaf = jax.tree_util.tree_leaves(nu)[0]
        # optax's bias_correction: nu / (1 - b2^count), count = steps taken (>= 1 after one)
        c = jnp.maximum(jnp.asarray(count), 1).astype(leaf.dtype)
        corr = 1 - jnp.asarray(b2, leaf.dtype) ** c
        nu = jax.tree_util.tree_map(lambda v: v / corr.astype(v.dtype), nu)

    def denom(v):
        e = jnp.asarray(eps, v.dtype)
        if eps_in_sqrt:
            return jnp.sqrt(v + e)
        return jnp.sqrt(v + jnp.asarray(eps_root, v.dtype)) + e

    return jax.tree_util.tree_map(denom, nu)


def adam_preconditioner(opt_state, *, eps=None, bias_correction: bool = True, b2=None,
                        eps_in_sqrt: bool | None = None, eps_root=None):  # fmt: skip
    """Adam's diagonal preconditioner ``D = sqrt(v_hat) + eps`` from an optax state.

    Adam's step is ``-eta m_hat / D`` (optax ``adam``/``adamw``: ``D = sqrt(v_hat + eps_root) +
    eps`` with ``v_hat = nu / (1 - b2^count)``); RMSProp's is ``-eta g / D`` with ``D = sqrt(nu +
    eps)`` (optax's default ``eps_in_sqrt=True``; ``sqrt(nu) + eps`` otherwise; centered:
    ``nu - mu^2`` in place of ``nu``). The state may be the optimizer's own or wrapped by
    ``optax.inject_hyperparams`` / ``optax.chain``; the first second-moment state found is used.
    A :func:`preconditioned_gd` state gives its fixed D.

    Parameters
    ----------
    opt_state : an optax state holding ``ScaleByAdamState`` or ``ScaleByRmsState`` (or their
        counted / centered variants).
    eps : the optimizer's eps (default: the injected hyperparameter, else optax's 1e-8).
    bias_correction : divide nu by ``1 - b2^count`` where the state counts steps (Adam; RMSProp
        only with ``bias_correction=True`` in optax, whose state then counts).
    b2 : the second-moment decay (Adam's b2, RMSProp's decay); default: the injected
        hyperparameter, else optax's default (0.999 for Adam, 0.9 for RMSProp).
    eps_in_sqrt : ``sqrt(nu + eps)`` instead of ``sqrt(nu) + eps`` (default as optax: False
        for Adam, True for RMSProp).
    eps_root : Adam's eps_root (default: the injected one, else 0).

    Returns
    -------
    D, a pytree like the parameters (positive entries).

    Examples
    --------
    >>> import jax.numpy as jnp, optax, minstab as ms
    >>> p = {"w": jnp.array([1.0, -2.0])}
    >>> opt = optax.adam(0.1)
    >>> s = opt.init(p)
    >>> g = {"w": jnp.array([0.5, 3.0])}
    >>> _, s = opt.update(g, s)
    >>> d = ms.adam_preconditioner(s)  # |g| + eps after one step (v_hat = g^2)
    >>> bool(jnp.allclose(d["w"], jnp.abs(g["w"]), rtol=1e-4))
    True
    """
    if not isinstance(bias_correction, bool):
        raise ValueError(f"bias_correction must be True or False, got {bias_correction!r}")
    if eps is not None:
        check_positive(eps, "eps")
    if b2 is not None and not (is_concrete(b2) and 0 <= float(b2) < 1):
        raise ValueError(f"b2 must be in [0, 1), got {b2!r}")
    d = preconditioner_kernel(opt_state, eps=eps, b2=b2, bias_correction=bias_correction,
                              eps_in_sqrt=eps_in_sqrt, eps_root=eps_root)  # fmt: skip
    if d is None:
        raise ValueError(
            "opt_state must be an optax Adam/AdamW/RMSProp state (holding a ScaleByAdamState or "
            f"ScaleByRmsState), got {type(opt_state).__name__}"
        )
    return d


# ----------------------------------------------------------------------------- preconditioned sharpness
def check_precond(precond, params) -> jax.Array:
    """Validate ``precond`` against ``params``; returns the flat ``D^{-1/2}`` (P,).

    Raises ``ValueError`` naming ``precond`` unless it has the pytree structure and leaf shapes
    of ``params``, their floating dtype, and finite, positive entries (checked when concrete).
    """
    pt, ps = jax.tree_util.tree_structure(params), jax.tree_util.tree_structure(precond)
    if pt != ps:
        raise ValueError(f"precond must be a pytree like params ({pt}), got {ps}")
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(precond),
                    strict=True):  # fmt: skip
        if jnp.shape(a) != jnp.shape(b):
            raise ValueError(
                f"precond leaves must have the shapes of params' leaves, got {jnp.shape(b)} "
                f"for a leaf of shape {jnp.shape(a)}"
            )
        if getattr(b, "dtype", None) != dtype:
            raise ValueError(
                f"precond must have the params dtype {dtype}, got {getattr(b, 'dtype', type(b))}"
            )
        if is_concrete(b):
            v = np.asarray(b)
            if not np.all(np.isfinite(v)) or not np.all(v > 0):
                raise ValueError("precond must have finite, positive entries (a diagonal D > 0)")
    return inverse_sqrt_scale(precond)


def inverse_sqrt_scale(precond) -> jax.Array:
    """Flat ``D^{-1/2}`` in ``ravel_pytree`` order (traceable)."""
    return jax.lax.rsqrt(ravel_pytree(precond)[0])


def preconditioned_matvec(matvec: Callable, scale: jax.Array) -> Callable:
    """``v -> S H S v`` for ``S = diag(scale)``: two elementwise products around one HVP."""
    return lambda v: scale * matvec(scale * v)


def preconditioned_sharpness(
    params,
    x,
    y,
    *,
    precond,
    model: Callable | None = None,
    loss: Callable | None = None,
    curvature: str = "hessian",
    v0: jax.Array | None = None,
    num_iters: int | None = None,
    tol: float | None = None,
    full_output: bool = False,
):
    """lambda_max(D^{-1/2} H D^{-1/2}) = lambda_max(D^{-1} H): the preconditioned sharpness.

    The quantity Adam's and RMSProp's stability depends on (:func:`stability_threshold`), at a
    diagonal preconditioner ``D`` (e.g. :func:`adam_preconditioner` of the optimizer's state).
    Lanczos with full reorthogonalization on ``v -> D^{-1/2} H (D^{-1/2} v)``: Hessian-vector
    products only, each with two elementwise scalings, on the operator of
    :func:`minstab.hessian_eigenvalues` (the gradient linearized once). Largest *algebraic*
    eigenvalue.

    Parameters
    ----------
    params, x, y, model, loss : the problem, as in :func:`minstab.sharpness` (``model=None``:
        the shallow ReLU net, by automatic differentiation).
    precond : D, a pytree like ``params`` with finite, positive entries of its dtype.
    curvature : ``"hessian"`` or ``"ggn"`` (the Gauss-Newton matrix in place of H).
    v0, num_iters, tol : Lanczos start (flat, P), Krylov dimension cap and relative residual
        tolerance, as in :func:`minstab.hessian_eigenvalues`.
    full_output : return the :class:`minstab.Eigenpairs` (k = 1) instead of the value; its
        vector is the eigenvector of ``D^{-1/2} H D^{-1/2}`` (that of ``D^{-1} H`` is
        ``D^{-1/2}`` times it).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, minstab as ms
    >>> def apply(p, x):
    ...     return jnp.tanh(x @ p["w"]) @ p["v"]
    >>> kx, ky, kw = jax.random.split(jax.random.key(0), 3)
    >>> x, y = jax.random.normal(kx, (20, 3)), jax.random.normal(ky, (20,))
    >>> p = {"w": jax.random.normal(kw, (3, 4)), "v": jnp.ones(4) / 4}
    >>> d = {"w": jnp.full((3, 4), 2.0), "v": jnp.full(4, 0.5)}
    >>> lam = ms.preconditioned_sharpness(p, x, y, precond=d, model=apply)
    >>> s = jax.flatten_util.ravel_pytree(d)[0] ** -0.5
    >>> ref = jnp.linalg.eigvalsh(s[:, None] * ms.hessian(p, x, y, model=apply) * s)[-1]
    >>> bool(abs(lam - ref) < 1e-4 * abs(ref))  # 1e-8 in float64
    True
    """
    from .spectrum import hessian_eigenvalues

    if not isinstance(full_output, bool):
        raise ValueError(f"full_output must be True or False, got {full_output!r}")
    r = hessian_eigenvalues(params, x, y, k=1, model=model, loss=loss, curvature=curvature,
                            v0=v0, num_iters=num_iters, tol=tol, precond=precond)  # fmt: skip
    return r if full_output else r.values[0]
