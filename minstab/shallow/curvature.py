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

The sharpness kernel over any :class:`minstab.Problem` and its solver table
(``SHARPNESS_SOLVERS``, ``SharpnessOptions``, ``sharpness_kernel``) live in
:mod:`minstab.engine.curvature` (re-exported here); this module holds the shallow net's closed
forms they run on (registered as the engine's built-in model, :mod:`minstab.shallow.builtin`)
and the public functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from .._validate import (
    check_bool,
    check_callable,
    check_choice,
    check_data_dtype,
    check_int,
    check_tol,
)
from ..engine.batching import pass_progress
from ..engine.curvature import (
    GRAM_DENSE_MAX_N,
    SHARPNESS_METHODS,
    SHARPNESS_SOLVERS,
    SharpnessMethod,
    SharpnessOptions,
    SharpnessResult,
    check_dense_memory,
    check_method,
    hessian_method,
    sharpness_kernel,
)
from ..engine.eigen import (
    EigResult,
    default_tol,
    dense_eigenpairs,
    lanczos,
    materialize,
)
from ..engine.operators import (
    dense_hessian,
    flat_jacobian,
    gram_operator,
)
from ..engine.problem import resolve_call
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


def _shallow_matvec(v, params, x, y, negative_slope):
    return shallow_hvp(v, params, x, y, negative_slope=negative_slope)


_sharpness_jit = jax.jit(sharpness_kernel, static_argnames=("problem", "opts"))


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
    if n <= GRAM_DENSE_MAX_N:
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
    method = check_method(problem, method, params)
    if problem.closed_form:
        check_data_dtype(x, y, params.w1.dtype)
    if v0 is not None:
        _check_flat(v0, params, "v0")
    tol = default_tol(jax.tree_util.tree_leaves(params)[0].dtype) if tol is None else float(tol)
    opts = SharpnessOptions(method, num_iters, tol, with_vector=full_output)
    with pass_progress("sharpness", enabled=problem.progress):
        r = _sharpness_jit(params, x, y, v0, problem=problem, opts=opts)
    return r if full_output else r.value
