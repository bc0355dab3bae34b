r"""Central flows: the time-averaged path of gradient descent at the edge of stability.

Cohen, Damian, Talwalkar, Kolter & Lee, "Understanding Optimization in Deep Learning with
Central Flows" (ICLR 2025, arXiv:2410.24206), §3 (gradient descent). Time t is measured in GD
steps: GD is w_{t+1} = w_t - eta grad L(w_t).

Derivation (THEORY §8; symbols of the paper, unit Hessian eigenvectors u_i here)
--------------------------------------------------------------------------------
1. Gradient flow. Below the edge of stability GD tracks dw/dt = -eta grad L(w) ("stable flow";
   the paper's gradient-flow baseline).
2. Time averaging (§3.1, one unstable direction). At the edge GD oscillates along the top
   eigenvector u of H = grad^2 L: w_t = wbar_t + x_t u with E[x_t] = 0, E[x_t^2] = sigma^2. A
   Taylor expansion of the gradient to second order, averaged over the oscillation, gives
       E[grad L(w)] = grad L(wbar) + 1/2 sigma^2 grad S(wbar),   grad S = grad (u^T H u)
   (the third-derivative term D^3 L[u, u, .]), hence the central flow
       dw/dt = -eta [grad L(w) + 1/2 sigma^2 grad S(w)]                           (paper §3.1)
   with sigma^2 the unique value keeping the sharpness S(w) at 2/eta while the oscillation is
   active: dS/dt = <grad S, dw/dt> = 0, i.e. sigma^2 = max(0, -2 <grad L, grad S> / ||grad S||^2)
   (zero when gradient flow itself would not raise S above 2/eta).
3. Several unstable directions (§3.2). With the oscillation covariance Sigma (P x P, PSD,
   supported on the top eigenvectors u_1..u_k, Sigma = eta U X U^T here),
       dw/dt = -eta [grad L(w) + 1/2 grad <Sigma, H(w)>]                          (paper §3.2)
   and Sigma is fixed by three conditions: Sigma >= 0 (a covariance), the effective Hessian
   eta U^T H U stays <= 2 I (no direction beyond the edge: "stability"), and Sigma is zero on
   the directions strictly below the edge (complementarity). In the continuous-time limit
   these are a semidefinite complementarity problem (SDCP) for X.
4. Discretization (substeps of dt = 1/``substeps`` GD steps; the authors' research code does
   the same). At w with top-k eigenpairs (lambda_i, u_i) of H, mu_i = eta lambda_i, let
   D_ij = D^3 L(w)[u_i, u_j, .] in R^P (a JVP of an HVP: d/de H(w + e u_i) u_j). Then
       grad <Sigma, H> = eta sum_ij X_ij D_ij,  dw/dt = -eta g - (eta^2/2) sum_ij X_ij D_ij,
   and to first order the effective projected Hessian after the substep is
       M(X) = diag(mu) + dt eta D . dw/dt                       (M_ij = eta u_i^T H u_j)
   The constraint matrix is 2 I - M(X) = A + B[X] with
       A = 2 I - diag(mu) + dt eta^2 [D_ij . g]_ij,
       B[X]_ij = (dt eta^3 / 2) sum_kl (D_ij . D_kl) X_kl        (a PSD Gram operator),
   and X solves SDCP(A, B): X >= 0, A + B[X] >= 0, <X, A + B[X]> = 0
   (:mod:`minstab.engine.complementarity`). X = 0 when A >= 0: then the substep is gradient flow.
   The Euler substep is w <- w + dt dw/dt, and the eigenvectors of the next substep are
   LOBPCG iterations warm-started at these.
5. Prediction of GD's time-averaged loss (paper §3, "E[L(w_t)] ~ L(wbar) + 1/2 <Sigma, H>"):
       predicted_loss = L(w) + 1/2 <Sigma, H(w)> = L(w) + 1/2 sum_i mu_i X_ii,
   which is L + tr X when every active mu_i = 2.

Equation numbers: the paper's displayed equations are cited by section here (§3.1 one
unstable eigenvalue, §3.2 the SDCP); this module was written offline from the paper's
statement and its authors' public JAX code's structure (no code copied), and the numbering of
arXiv v1/v2 could not be checked.

Cost per substep: one gradient, the LOBPCG products (k (4 i + 1) HVPs for i iterations, the
count of ``jax.experimental.sparse.linalg.lobpcg_standard``), and k(k+1)/2 third-derivative
products (each one forward-over-forward-over-reverse pass; the k diagonal ones also return
H u_i, which gives the eigen-residuals for free). No dense P x P or P^3 object is formed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.sparse.linalg import lobpcg_standard
from jax.flatten_util import ravel_pytree

from .complementarity import smat, solve_sdcp, svec
from .objective import Objective

__all__ = [
    "FlowResult",
    "central_flow",
    "stable_flow",
    "GDResult",
    "gd_trajectory",
    "third_derivative_products",
    "flow_arrays",
]


class FlowResult(NamedTuple):
    """The central (or stable) flow at t = 0, 1, ..., steps - 1 GD steps, and its end point.

    Attributes
    ----------
    params : parameters at t = ``steps`` (same pytree as the input).
    time : (steps,) t = 0, ..., steps - 1.
    loss : (steps,) the flow's own loss L(w(t)).
    predicted_loss : (steps,) L(w(t)) + 1/2 sum_i mu_i X_ii, the predicted time average of GD's
        loss (equal to ``loss`` for the stable flow).
    eigenvalues : (steps, k) top-k Hessian eigenvalues lambda_i at w(t), descending.
    sharpness : (steps,) lambda_1.
    X : (steps, k, k) the SDCP solution in the eigenbasis (Sigma = eta U X U^T), averaged over
        the substeps of each step (zeros for the stable flow).
    eig_residual : (steps,) max_i ||H u_i - lambda_i u_i|| / |lambda_1| at t.
    sdcp_converged : (steps,) every substep's SDCP solve converged (True for the stable flow).
    sdcp_complementarity : (steps,) max over substeps of |<X, A + B[X]>| / ||A||.
    sdcp_min_eig : (steps,) min over substeps of the smallest eigenvalue of X and of A + B[X],
        divided by ||A|| (>= 0 up to rounding).
    hvp_count : (steps,) Hessian-vector products used in each step.
    third_count : (steps,) third-derivative products used in each step.
    grad_count : (steps,) gradients used in each step.
    eta : the step size.
    """

    params: object
    time: np.ndarray
    loss: np.ndarray
    predicted_loss: np.ndarray
    eigenvalues: np.ndarray
    sharpness: np.ndarray
    X: np.ndarray
    eig_residual: np.ndarray
    sdcp_converged: np.ndarray
    sdcp_complementarity: np.ndarray
    sdcp_min_eig: np.ndarray
    hvp_count: np.ndarray
    third_count: np.ndarray
    grad_count: np.ndarray
    eta: float

    @property
    def effective_eigenvalues(self) -> np.ndarray:
        """Eta * lambda_i, (steps, k)."""
        return self.eta * self.eigenvalues


@dataclasses.dataclass(frozen=True)
class _Spec:
    """Static description of one compiled flow (hashable)."""

    objective: Objective
    treedef: object
    leaves: tuple  # ((shape, dtype name), ...) of the params leaves
    k: int
    substeps: int
    eig_iters: int
    eig_tol: float
    sdcp_iters: int
    central: bool
    max_dt_mu: float


def _pairs(k: int):
    i, j = np.triu_indices(k)
    return jnp.asarray(i), jnp.asarray(j)


def _unravel(spec: _Spec) -> Callable:
    zeros = [jnp.zeros(shape, dtype) for shape, dtype in spec.leaves]
    return ravel_pytree(jax.tree_util.tree_unflatten(spec.treedef, zeros))[1]


def _flat_fns(spec: _Spec, x, y):
    obj, unravel = spec.objective, _unravel(spec)

    def loss(w):
        return obj.value(unravel(w), x, y)

    def hvp(w, v):
        return jax.jvp(jax.grad(loss), (w,), (v,))[1]

    return loss, hvp


def third_derivative_products(loss: Callable, w, u, *, pairs=None):
    """D^3 L(w)[u_a, u_b, .] for pairs (a, b) of columns of u, and H u_b (no dense tensors).

    Each product is a JVP of a Hessian-vector product: d/de [H(w + e u_a) u_b] at e = 0.

    Parameters
    ----------
    loss : scalar function of a flat vector w.
    w : (P,) point.
    u : (P, k) vectors.
    pairs : (a, b) index arrays (default: the upper triangle a <= b, k(k+1)/2 pairs).

    Returns
    -------
    (third, hu): third (m, P) with rows D^3 L[u_a, u_b, .]; hu (m, P) with rows H u_b.
    """
    a, b = _pairs(u.shape[1]) if pairs is None else pairs

    def hvp(w, v):
        return jax.jvp(jax.grad(loss), (w,), (v,))[1]

    def one(ua, ub):
        hu, d3 = jax.jvp(lambda w: hvp(w, ub), (w,), (ua,))
        return d3, hu

    return jax.vmap(one)(u.T[a], u.T[b])


def _eigs(spec: _Spec, hvp, w, u0):
    """Top-k eigenpairs of H(w) by LOBPCG warm-started at u0 (P, k); (values, vectors, hvps)."""
    p = w.shape[0]
    op = jax.vmap(lambda v: hvp(w, v), in_axes=1, out_axes=1)
    # lobpcg's test is r < tol * 10 P (|Av| + theta); pass a relative tolerance through
    tol = spec.eig_tol / (10 * p)
    theta, u, iters = lobpcg_standard(op, u0, m=spec.eig_iters, tol=tol)
    order = jnp.argsort(-theta)
    return theta[order], u[:, order], spec.k * (4 * iters + 1)


def _central_substep(spec: _Spec, loss, hvp, eta, dt, w, u0):
    """One Euler substep of the central flow (module docstring, item 4)."""
    k = spec.k
    lval, g = jax.value_and_grad(loss)(w)
    lam, u, n_hvp = _eigs(spec, hvp, w, u0)
    ia, ib = _pairs(k)
    d3, hu = third_derivative_products(loss, w, u, pairs=(ia, ib))  # (m, P) each
    diag = ia == ib
    resid = jnp.max(jnp.where(diag, jnp.linalg.norm(hu - lam[ib][:, None] * u.T[ib], axis=1), 0))
    w_off = jnp.where(diag, 1.0, math.sqrt(2.0)).astype(w.dtype)
    ds = d3 * w_off[:, None]  # svec-scaled rows: sum_ij X_ij D_ij = ds^T svec(X)
    mu = eta * lam
    a_mat = 2 * jnp.eye(k, dtype=w.dtype) - jnp.diag(mu) + dt * eta**2 * smat(ds @ g, k)
    b_mat = (dt * eta**3 / 2) * (ds @ ds.T)
    sol = solve_sdcp(a_mat, b_mat, max_iters=spec.sdcp_iters)
    xv = svec(sol.X)
    dw = -eta * g - (eta**2 / 2) * (ds.T @ xv)
    scale = jnp.maximum(jnp.linalg.norm(a_mat), jnp.finfo(w.dtype).tiny)
    info = dict(
        loss=lval,
        lam=lam,
        X=sol.X,
        resid=resid / jnp.maximum(jnp.abs(lam[0]), jnp.finfo(w.dtype).tiny),
        conv=sol.converged,
        comp=jnp.abs(sol.complementarity) / scale,
        mineig=jnp.minimum(sol.min_eig_X * (jnp.linalg.norm(b_mat, 2) / scale), sol.min_eig_S)
        / scale,
        hvp=n_hvp,
        third=jnp.asarray(ia.shape[0]),
    )
    return w + dt * dw, u, info


def _central_step(spec, loss, hvp, eta, carry):
    w, u = carry
    dt = 1.0 / spec.substeps

    def body(c, _):
        w, u = c
        w, u, info = _central_substep(spec, loss, hvp, eta, dt, w, u)
        return (w, u), info

    (w, u), infos = jax.lax.scan(body, (w, u), None, length=spec.substeps)
    first = jax.tree.map(lambda a: a[0], infos)
    rec = dict(
        loss=first["loss"],
        lam=first["lam"],
        X=jnp.mean(infos["X"], axis=0),
        resid=first["resid"],
        conv=jnp.all(infos["conv"]),
        comp=jnp.max(infos["comp"]),
        mineig=jnp.min(infos["mineig"]),
        hvp=jnp.sum(infos["hvp"]),
        third=jnp.sum(infos["third"]),
        grad=jnp.asarray(spec.substeps),
    )
    return (w, u), rec


def _stable_step(spec, loss, hvp, eta, carry):
    """One GD step's worth of gradient flow: eigenpairs at w, then n Euler substeps.

    n = max(substeps, ceil(eta lambda_1 / max_dt_mu)) so that dt * eta * lambda_1 stays small
    (gradient flow leaves the edge; a fixed dt would make Euler itself oscillate).
    """
    w, u = carry
    lval = loss(w)
    lam, u, n_hvp = _eigs(spec, hvp, w, u)
    hu = jax.vmap(lambda v: hvp(w, v))(u.T)
    resid = jnp.max(jnp.linalg.norm(hu - lam[:, None] * u.T, axis=1))
    n = jnp.maximum(spec.substeps, jnp.ceil(eta * lam[0] / spec.max_dt_mu)).astype(jnp.int32)
    dt = 1.0 / n.astype(w.dtype)
    w = jax.lax.fori_loop(0, n, lambda _, w: w - dt * eta * jax.grad(loss)(w), w)
    k = spec.k
    rec = dict(
        loss=lval,
        lam=lam,
        X=jnp.zeros((k, k), w.dtype),
        resid=resid / jnp.maximum(jnp.abs(lam[0]), jnp.finfo(w.dtype).tiny),
        conv=jnp.asarray(True),
        comp=jnp.asarray(0.0, w.dtype),
        mineig=jnp.asarray(0.0, w.dtype),
        hvp=n_hvp + k,
        third=jnp.asarray(0),
        grad=n + 1,
    )
    return (w, u), rec


@jax.jit(static_argnames=("spec", "steps"))
def flow_arrays(spec: _Spec, steps: int, w0, u0, x, y, eta):
    """The whole integration as one ``lax.scan`` over GD steps (traceable core)."""
    loss, hvp = _flat_fns(spec, x, y)
    step = _central_step if spec.central else _stable_step
    (w, u), rec = jax.lax.scan(
        lambda c, _: step(spec, loss, hvp, eta, c), (w0, u0), None, length=steps
    )
    pred = rec["loss"] + 0.5 * jnp.einsum("ti,tii->t", eta * rec["lam"], rec["X"])
    return w, u, rec, pred


class GDResult(NamedTuple):
    """Gradient descent itself, for comparison with the flows.

    Attributes
    ----------
    params : parameters after ``steps`` steps.
    loss : (steps,) L(w_t), t = 0, ..., steps - 1.
    eig_time : (L,) the steps t at which the eigenvalues were computed (every ``every``).
    eigenvalues : (L, k) top-k Hessian eigenvalues at w_t (LOBPCG warm-started along the run).
    eta : the step size.
    """

    params: object
    loss: np.ndarray
    eig_time: np.ndarray
    eigenvalues: np.ndarray
    eta: float


@jax.jit(static_argnames=("spec", "steps", "every", "midpoint"))
def _gd_arrays(spec: _Spec, steps: int, every: int, midpoint: bool, w0, u0, x, y, eta):
    loss, hvp = _flat_fns(spec, x, y)

    def one(w, _):
        lval, g = jax.value_and_grad(loss)(w)
        return w - eta * g, lval

    def block(c, _):
        w, u = c
        # the midpoint (w_t + w_{t+1}) / 2 = w_t - eta g / 2 cancels the period-2 oscillation
        w_eig = w - 0.5 * eta * jax.grad(loss)(w) if midpoint else w
        lam, u, _ = _eigs(spec, hvp, w_eig, u)
        w, ls = jax.lax.scan(one, w, None, length=every)
        return (w, u), (ls, lam)

    (w, _), (ls, lam) = jax.lax.scan(block, (w0, u0), None, length=steps // every)
    return w, ls.reshape(-1), lam


def gd_trajectory(
    params,
    x,
    y,
    *,
    eta: float,
    steps: int,
    model: Callable | None = None,
    loss: Callable | None = None,
    k: int = 5,
    every: int = 5,
    eig_iters: int = 30,
    eig_tol: float = 1e-5,
    u0=None,
    eig_at: str = "iterate",
) -> GDResult:
    """Full-batch GD w <- w - eta grad L with its top-k Hessian eigenvalues every ``every`` steps.

    ``steps`` must be a multiple of ``every``. ``eig_at`` says where the eigenvalues of step t
    are taken: ``"iterate"`` at w_t, ``"midpoint"`` at (w_t + w_{t+1}) / 2, where GD's
    period-2 oscillation along the top eigenvectors cancels (the authors' research code,
    ``Flow.discrete(..., midpoint=True)``; one extra gradient per eigensolve). The loss is
    always L(w_t). Other parameters as in :func:`central_flow`.
    """
    opts = _Options(True, k, 1, eig_iters, eig_tol, 1, 0.5)
    spec, unravel, w0, u0, x, y, eta, steps = _setup(
        params, x, y, model=model, loss=loss, eta=eta, steps=steps, u0=u0, opts=opts
    )
    every = _check_int(every, "every")
    if steps % every:
        raise ValueError(f"steps must be a multiple of every = {every}, got {steps}")
    if eig_at not in ("iterate", "midpoint"):
        raise ValueError(f"eig_at must be 'iterate' or 'midpoint', got {eig_at!r}")
    w, ls, lam = _gd_arrays(spec, steps, every, eig_at == "midpoint", w0, u0, x, y,
                            jnp.asarray(eta, w0.dtype))  # fmt: skip
    return GDResult(unravel(w), np.asarray(ls), np.arange(0, steps, every), np.asarray(lam), eta)


class _Options(NamedTuple):
    """The flow's settings as the public functions pass them (checked by :func:`_setup`)."""

    central: bool
    k: int
    substeps: int
    eig_iters: int
    eig_tol: float
    sdcp_iters: int
    max_dt_mu: float


def _check_int(v, name, lo=1):
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


def _check_problem(params, x, y, model, loss, eta):
    """``(objective, x, y, eta)``: the problem and the step size, checked before tracing."""
    if model is not None and not callable(model):
        raise ValueError(f"model must be a callable apply(params, x), got {model!r}")
    if loss is not None and not callable(loss):
        raise ValueError(f"loss must be a callable loss(pred, y), got {loss!r}")
    obj = Objective(model, loss)
    x, y, _ = obj.check(params, x, y)
    try:
        eta_f = float(eta)
    except (TypeError, ValueError):
        raise ValueError(f"eta must be a positive finite number, got {eta!r}") from None
    if not (math.isfinite(eta_f) and eta_f > 0):
        raise ValueError(f"eta must be a positive finite number, got {eta!r}")
    return obj, x, y, eta_f


def _check_options(opts: _Options, size: int) -> _Options:
    """``opts`` with ints as ints; ``ValueError`` naming the bad one (P = ``size``)."""
    k = _check_int(opts.k, "k")
    ints = {name: _check_int(getattr(opts, name), name)
            for name in ("substeps", "eig_iters", "sdcp_iters")}  # fmt: skip
    if not (isinstance(opts.eig_tol, float | int) and 0 < opts.eig_tol < 1):
        raise ValueError(f"eig_tol must be a number in (0, 1), got {opts.eig_tol!r}")
    if 5 * k >= size:
        raise ValueError(f"k must satisfy 5 k < P = {size} parameters (LOBPCG), got k = {k}")
    if not (isinstance(opts.max_dt_mu, float | int) and 0 < opts.max_dt_mu <= 1):
        raise ValueError(f"max_dt_mu must be a number in (0, 1], got {opts.max_dt_mu!r}")
    return opts._replace(k=k, eig_tol=float(opts.eig_tol), max_dt_mu=float(opts.max_dt_mu),
                         **ints)  # fmt: skip


def _start(u0, w0, k: int):
    """The (P, k) start vectors of the first eigensolve: ``u0`` checked, or fixed Gaussian."""
    if u0 is None:
        return jax.random.normal(jax.random.key(0), (w0.shape[0], k), w0.dtype)
    u0 = jnp.asarray(u0)
    if u0.shape != (w0.shape[0], k) or u0.dtype != w0.dtype:
        raise ValueError(
            f"u0 must be a ({w0.shape[0]}, {k}) array of dtype {w0.dtype}, got "
            f"{u0.shape} {u0.dtype}"
        )
    return u0


def _setup(params, x, y, *, model, loss, eta, steps, u0, opts: _Options):
    """Checked inputs of a flow: ``(spec, unravel, w0, u0, x, y, eta, steps)``."""
    obj, x, y, eta = _check_problem(params, x, y, model, loss, eta)
    steps = _check_int(steps, "steps")
    w0, unravel = ravel_pytree(params)
    opts = _check_options(opts, w0.shape[0])
    u0 = _start(u0, w0, opts.k)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    leaves = tuple((tuple(jnp.shape(a)), str(jnp.result_type(a))) for a in leaves)
    spec = _Spec(obj, treedef, leaves, opts.k, opts.substeps, opts.eig_iters, opts.eig_tol,
                 opts.sdcp_iters, opts.central, opts.max_dt_mu)  # fmt: skip
    return spec, unravel, w0, u0, x, y, eta, steps


def _run(params, x, y, *, model, loss, eta, steps, u0, opts: _Options) -> FlowResult:
    spec, unravel, w0, u0, x, y, eta, steps = _setup(
        params, x, y, model=model, loss=loss, eta=eta, steps=steps, u0=u0, opts=opts
    )
    w, _, rec, pred = flow_arrays(spec, steps, w0, u0, x, y, jnp.asarray(eta, w0.dtype))
    rec = jax.device_get(rec)
    return FlowResult(
        params=unravel(w),
        time=np.arange(steps),
        loss=np.asarray(rec["loss"]),
        predicted_loss=np.asarray(pred),
        eigenvalues=np.asarray(rec["lam"]),
        sharpness=np.asarray(rec["lam"][:, 0]),
        X=np.asarray(rec["X"]),
        eig_residual=np.asarray(rec["resid"]),
        sdcp_converged=np.asarray(rec["conv"]),
        sdcp_complementarity=np.asarray(rec["comp"]),
        sdcp_min_eig=np.asarray(rec["mineig"]),
        hvp_count=np.asarray(rec["hvp"]),
        third_count=np.asarray(rec["third"]),
        grad_count=np.asarray(rec["grad"]),
        eta=eta,
    )


def central_flow(
    params,
    x,
    y,
    *,
    eta: float,
    steps: int,
    model: Callable | None = None,
    loss: Callable | None = None,
    k: int = 5,
    substeps: int = 4,
    eig_iters: int = 30,
    eig_tol: float = 1e-3,
    sdcp_iters: int = 80,
    u0=None,
) -> FlowResult:
    """Integrate the central flow of gradient descent with step size ``eta`` for ``steps`` steps.

    The ODE dw/dt = -eta [grad L + 1/2 grad <Sigma, H>] of Cohen et al. (ICLR 2025, §3), with
    the oscillation covariance Sigma = eta U X U^T on the top-k Hessian eigenvectors U and X
    from a semidefinite complementarity problem at every substep (derivation in the module
    docstring). Time is in GD steps; the whole integration is one compiled ``lax.scan``.

    Parameters
    ----------
    params : initial parameters (:class:`minstab.ShallowParams` when ``model`` is None, else
        any pytree of one floating dtype).
    x, y : training data, as for :func:`minstab.train`.
    eta : GD step size (> 0).
    steps : number of GD steps to cover (the flow runs to t = steps).
    model, loss : the engine's interface: ``model(params, x) -> predictions`` (None: the
        shallow ReLU net) and ``loss(pred, y) -> scalar`` (None: (1/2n) sum r^2).
    k : number of top eigenvectors tracked (5 k < P). The flow is exact only while no more than
        k eigenvalues reach the edge; watch ``effective_eigenvalues[:, -1]``.
    substeps : Euler substeps per GD step (dt = 1 / substeps).
    eig_iters, eig_tol : LOBPCG iterations at most per substep, and its relative residual
        tolerance (warm-started at the previous substep's eigenvectors).
    sdcp_iters : interior-point iterations at most per SDCP.
    u0 : (P, k) start vectors of the first eigensolve (default: fixed Gaussian).

    Returns
    -------
    FlowResult

    Examples
    --------
    >>> import jax, jax.numpy as jnp, minstab as ms
    >>> x, y = ms.data.toy_1d(n=8, key=jax.random.key(0))
    >>> p = ms.init_shallow(jax.random.key(1), 1, 16)
    >>> r = ms.central_flow(p, x, y, eta=0.05, steps=3, k=2)
    >>> r.loss.shape, r.eigenvalues.shape, r.X.shape
    ((3,), (3, 2), (3, 2, 2))
    """
    opts = _Options(True, k, substeps, eig_iters, eig_tol, sdcp_iters, 0.5)
    return _run(params, x, y, model=model, loss=loss, eta=eta, steps=steps, u0=u0, opts=opts)


def stable_flow(
    params,
    x,
    y,
    *,
    eta: float,
    steps: int,
    model: Callable | None = None,
    loss: Callable | None = None,
    k: int = 5,
    substeps: int = 4,
    max_dt_mu: float = 0.5,
    eig_iters: int = 30,
    eig_tol: float = 1e-3,
    u0=None,
) -> FlowResult:
    """Gradient flow dw/dt = -eta grad L, with the same eigen-tracking as :func:`central_flow`.

    Each GD step is covered by n = max(substeps, ceil(eta lambda_1 / max_dt_mu)) Euler substeps
    (gradient flow sharpens past 2/eta, where a fixed dt would itself oscillate). The top-k
    eigenvalues are recorded at every step; ``X`` is zero and ``predicted_loss`` = ``loss``.
    Parameters as in :func:`central_flow`.

    Examples
    --------
    >>> import jax, minstab as ms
    >>> x, y = ms.data.toy_1d(n=8, key=jax.random.key(0))
    >>> p = ms.init_shallow(jax.random.key(1), 1, 16)
    >>> r = ms.stable_flow(p, x, y, eta=0.05, steps=3, k=2)
    >>> bool((r.predicted_loss == r.loss).all())
    True
    """
    opts = _Options(False, k, substeps, eig_iters, eig_tol, 1, max_dt_mu)
    return _run(params, x, y, model=model, loss=loss, eta=eta, steps=steps, u0=u0, opts=opts)
