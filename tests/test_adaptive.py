"""Stability thresholds of momentum / Nesterov / Adam / RMSProp and the preconditioned sharpness.

References are independent of the library: companion matrices written out by hand with their
spectral radius bisected numerically, the optax optimizers themselves run on 1-D quadratics,
dense ``eigvalsh`` of ``D^{-1/2} H D^{-1/2}`` built from ``jax.hessian``, and optax's own update
for the Adam preconditioner.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

import minstab as ms


# ----------------------------------------------------------------------------- companion matrices
def _companion(kind: str, a: float, beta: float) -> np.ndarray:
    """One step of the optimizer on L = lambda theta^2 / 2 as a matrix on its state, a = eta lambda.

    Written from each optimizer's update rule (optax's conventions), not from the library.
    """
    if kind == "gd":
        return np.array([[1 - a]])
    if kind in ("momentum", "rmsprop"):
        # t' = g + beta t = lambda theta + beta t;  theta' = theta - eta t'   (state (theta, eta t))
        return np.array([[1 - a, -beta], [a, beta]])
    if kind == "nesterov":
        # t' = g + beta t;  theta' = theta - eta (g + beta t')   (state (theta, eta t))
        return np.array([[1 - a - beta * a, -beta * beta], [a, beta]])
    if kind == "adam":
        # m' = b1 m + (1 - b1) g;  theta' = theta - eta m'   (state (theta, eta m), D = 1)
        return np.array([[1 - (1 - beta) * a, -beta], [(1 - beta) * a, beta]])
    raise AssertionError(kind)


def _radius(kind, a, beta) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(_companion(kind, a, beta)))))


def _bisect_threshold(kind: str, eta: float, beta: float) -> float:
    """The largest lambda with spectral radius <= 1, by bisection (radius < 1 at small lambda)."""
    lo, hi = 1e-9, 1.0
    while _radius(kind, eta * hi, beta) <= 1 + 1e-12:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _radius(kind, eta * mid, beta) <= 1 + 1e-12 else (lo, mid)
    return 0.5 * (lo + hi)


_HYPER = {"gd": {}, "momentum": "beta", "nesterov": "beta", "adam": "b1", "rmsprop": "momentum"}


def _threshold(kind, eta, beta):
    name = _HYPER[kind]
    return ms.stability_threshold(kind, eta, **({} if kind == "gd" else {name: beta}))


@pytest.mark.parametrize("kind", ["gd", "momentum", "nesterov", "adam", "rmsprop"])
@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99])
def test_threshold_is_companion_matrix_edge(kind, beta):
    eta = 0.37
    ref = _bisect_threshold(kind, eta, beta)
    np.testing.assert_allclose(_threshold(kind, eta, beta), ref, rtol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["momentum", "nesterov", "adam"]),
    beta=st.floats(0.0, 0.98),
    eta=st.floats(1e-3, 10.0),
)
def test_threshold_property(kind, beta, eta):
    np.testing.assert_allclose(_threshold(kind, eta, beta), _bisect_threshold(kind, eta, beta),
                               rtol=1e-8)  # fmt: skip


def test_threshold_closed_forms():
    assert ms.stability_threshold("gd", 0.1) == pytest.approx(20.0)
    assert ms.stability_threshold("momentum", 0.1, beta=0.9) == pytest.approx(38.0)
    assert ms.stability_threshold("nesterov", 1.0, momentum=0.9) == pytest.approx(3.8 / 2.8)
    assert ms.stability_threshold("adam", 1.0) == pytest.approx(38.0)  # b1 = 0.9 default
    assert ms.stability_threshold("rmsprop", 1.0) == pytest.approx(2.0)
    assert ms.stability_threshold("adam", 1.0, b1=0.9, b2=0.99, eps=1e-6) == pytest.approx(38.0)
    etas = np.array([0.1, 0.2])
    np.testing.assert_allclose(ms.stability_threshold("momentum", etas, beta=0.5), 3 / etas)
    np.testing.assert_allclose(ms.momentum_budget(0.1, beta=0.9), 19 - 0.5)
    np.testing.assert_allclose(ms.momentum_budget(0.1, beta=0.0), ms.theorem1_budget(0.1))


# ----------------------------------------------------------------------------- optax's own recurrences
def _run_optax(opt, lam, steps, theta0=1.0):
    """(|theta_T|, max_t |theta_t|) / |theta_0| of ``opt`` on L = lam theta^2 / 2, float64."""
    theta = jnp.array([theta0])
    state = opt.init(theta)

    def step(carry, _):
        theta, state = carry
        upd, state = opt.update(lam * theta, state, theta)
        theta = theta + upd
        return (theta, state), jnp.abs(theta[0])

    with jax.numpy_dtype_promotion("standard"):
        (theta, _), path = jax.lax.scan(step, (theta, state), None, length=steps)
    return float(jnp.abs(theta[0]) / theta0), float(jnp.max(path) / theta0)


@pytest.mark.parametrize(
    "make,kind,hyper",
    [
        (lambda eta: optax.sgd(eta), "gd", {}),
        (lambda eta: optax.sgd(eta, momentum=0.9), "momentum", {"beta": 0.9}),
        (lambda eta: optax.sgd(eta, momentum=0.9, nesterov=True), "nesterov", {"beta": 0.9}),
        (lambda eta: optax.sgd(eta, momentum=0.5, nesterov=True), "nesterov", {"beta": 0.5}),
        (lambda eta: optax.rmsprop(eta, eps=1.0), "rmsprop", {}),
        (lambda eta: optax.rmsprop(eta, eps=1.0, momentum=0.9), "rmsprop", {"momentum": 0.9}),
        (lambda eta: optax.adam(eta, eps=1.0), "adam", {}),
        (lambda eta: optax.adam(eta, b1=0.5, eps=1.0), "adam", {"b1": 0.5}),
    ],
)
def test_optax_recurrence_changes_stability_at_threshold(make, kind, hyper):
    """The optax optimizer itself decays just below the threshold and grows just above it.

    Every run starts at theta = 1e-100 with eps = 1 for Adam and RMSProp: their denominator
    sqrt(v_hat) + eps (sqrt(v + eps) for RMSProp) is then 1 to rounding while the iterate stays
    tiny (checked), frozen as in the derivation. (Adam's bias-corrected first steps amplify the
    iterate ~1e10-fold before the asymptotic rate takes over; an iterate that grew large would
    raise D and settle: the adaptive edge, not the linear recurrence.)
    """
    eta, theta0 = 0.1, 1e-100
    thr = ms.stability_threshold(kind, eta, **hyper)
    below, below_max = _run_optax(make(eta), 0.99 * thr, 4000, theta0)
    above, above_max = _run_optax(make(eta), 1.01 * thr, 500, theta0)
    assert max(below_max, above_max) * theta0 * thr < 1e-20  # linear regime: D frozen at 1
    assert below < 1e-2, (kind, below)
    assert above > 1e3, (kind, above)


def test_optimizer_spec_reads_factories():
    spec = ms.engine.optimizers.optimizer_spec
    assert spec(optax.sgd) == ("gd", {})
    assert spec(functools.partial(optax.sgd, momentum=0.8)) == ("momentum", {"beta": 0.8})
    assert spec(functools.partial(optax.sgd, momentum=0.8, nesterov=True)) == (
        "nesterov", {"beta": 0.8})  # fmt: skip
    assert spec(optax.adam) == ("adam", {"b1": 0.9})
    assert spec(functools.partial(optax.adamw, b1=0.5)) == ("adam", {"b1": 0.5})
    assert spec(optax.rmsprop) == ("rmsprop", {"beta": 0.0})
    assert spec("momentum", momentum=0.7) == ("momentum", {"beta": 0.7})
    cfg = ms.TrainConfig(steps=10, optimizer="nesterov", momentum=0.5)
    assert ms.threshold_for(cfg, 1.0) == pytest.approx(3.0 / 2.0)
    with pytest.raises(ValueError, match="optimizer"):
        spec(optax.lion)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: ms.stability_threshold("sgd", 0.1), "optimizer must be one of"),
        (lambda: ms.stability_threshold("gd", 0.0), "eta must be positive"),
        (lambda: ms.stability_threshold("gd", -1.0), "eta must be positive"),
        (lambda: ms.stability_threshold("momentum", 0.1, beta=1.0), r"beta must be in \[0, 1\)"),
        (lambda: ms.stability_threshold("momentum", 0.1, b1=0.9), "b1 is not a hyperparameter"),
        (lambda: ms.stability_threshold("adam", 0.1, b1=-0.1), r"b1 must be in \[0, 1\)"),
        (lambda: ms.stability_threshold("gd", 0.1, beta=0.9), "beta is not a hyperparameter"),
        (lambda: ms.stability_threshold("momentum", 0.1, beta=0.5, momentum=0.5), "both set"),
    ],
)
def test_threshold_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------- preconditioned sharpness
def _mlp(params, x):
    for w, b in params[:-1]:
        x = jnp.tanh(x @ w + b[None, :])
    w, b = params[-1]
    return x @ w + b[None, :]


def _mlp_problem():
    ks = jax.random.split(jax.random.key(3), 5)
    sizes = [3, 6, 5, 2]
    params = [(jax.random.normal(k, (m, n)) / np.sqrt(m), 0.1 * jax.random.normal(k, (n,)))
              for k, m, n in zip(ks, sizes[:-1], sizes[1:], strict=False)]  # fmt: skip
    x = jax.random.normal(ks[3], (12, 3))
    y = jax.random.normal(ks[4], (12, 2))
    return params, x, y


def _shallow_problem():
    x, y = ms.data.toy_1d(n=10, key=jax.random.key(0))
    p = ms.init_shallow(jax.random.key(1), 1, 12, knot_range=(-1.5, 1.5))
    return p, x, y


def _random_precond(params, key):
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree_util.tree_unflatten(
        treedef, [jnp.exp(jax.random.normal(k, a.shape)) for k, a in zip(keys, leaves, strict=True)]
    )


def _dense_reference(params, x, y, precond, model):
    h = ms.hessian(params, x, y, model=model)
    s = ravel_pytree(precond)[0] ** -0.5
    return np.linalg.eigvalsh(np.asarray(s[:, None] * h * s[None, :]))[::-1]


@pytest.mark.parametrize("which", ["shallow", "mlp"])
def test_preconditioned_sharpness_matches_dense(which):
    params, x, y = _shallow_problem() if which == "shallow" else _mlp_problem()
    model = None if which == "shallow" else _mlp
    d = _random_precond(params, jax.random.key(7))
    ref = _dense_reference(params, x, y, d, model)
    lam = ms.preconditioned_sharpness(params, x, y, precond=d, model=model)
    np.testing.assert_allclose(float(lam), ref[0], rtol=1e-8)
    top = ms.hessian_eigenvalues(params, x, y, k=3, model=model, precond=d)
    np.testing.assert_allclose(np.asarray(top.values), ref[:3], rtol=1e-8)
    assert bool(top.converged.all())
    # D = 1 gives the plain sharpness; D = c scales it by 1/c
    ones = jax.tree_util.tree_map(jnp.ones_like, params)
    plain = ms.sharpness(params, x, y, model=model, method="dense")
    np.testing.assert_allclose(ms.preconditioned_sharpness(params, x, y, precond=ones, model=model),
                               plain, rtol=1e-8)  # fmt: skip
    fours = jax.tree_util.tree_map(lambda a: 4 * a, ones)
    np.testing.assert_allclose(ms.preconditioned_sharpness(params, x, y, precond=fours,
                                                           model=model), plain / 4, rtol=1e-8)  # fmt: skip


def test_preconditioned_eigenvector_and_ggn():
    params, x, y = _mlp_problem()
    d = _random_precond(params, jax.random.key(2))
    r = ms.preconditioned_sharpness(params, x, y, precond=d, model=_mlp, full_output=True)
    s = ravel_pytree(d)[0] ** -0.5
    h = ms.hessian(params, x, y, model=_mlp)
    v = r.vectors[0]
    np.testing.assert_allclose(s * (h @ (s * v)), r.values[0] * v, atol=1e-7 * float(r.values[0]))
    # Gauss-Newton: J^T J / n for the quadratic loss
    j = jax.jacrev(lambda t: _mlp(ravel_pytree(params)[1](t), x).reshape(-1))(
        ravel_pytree(params)[0]
    )
    g = j.T @ j / x.shape[0]
    ref = np.linalg.eigvalsh(np.asarray(s[:, None] * g * s[None, :]))[-1]
    lam = ms.preconditioned_sharpness(params, x, y, precond=d, model=_mlp, curvature="ggn")
    np.testing.assert_allclose(float(lam), ref, rtol=1e-8)


def test_precond_validation():
    params, x, y = _mlp_problem()
    d = _random_precond(params, jax.random.key(2))
    bad_sign = jax.tree_util.tree_map(lambda a: -a, d)
    with pytest.raises(ValueError, match="precond must have finite, positive"):
        ms.preconditioned_sharpness(params, x, y, precond=bad_sign, model=_mlp)
    zero = jax.tree_util.tree_map(jnp.zeros_like, d)
    with pytest.raises(ValueError, match="precond must have finite, positive"):
        ms.preconditioned_sharpness(params, x, y, precond=zero, model=_mlp)
    with pytest.raises(ValueError, match="precond must be a pytree like params"):
        ms.preconditioned_sharpness(params, x, y, precond=d[:2], model=_mlp)
    wrong = [(w.T, b) for w, b in d]
    with pytest.raises(ValueError, match="precond leaves must have the shapes"):
        ms.preconditioned_sharpness(params, x, y, precond=wrong, model=_mlp)
    f32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), d)
    with pytest.raises(ValueError, match="precond must have the params dtype"):
        ms.preconditioned_sharpness(params, x, y, precond=f32, model=_mlp)
    nan = jax.tree_util.tree_map(lambda a: a * jnp.nan, d)
    with pytest.raises(ValueError, match="precond"):
        ms.hessian_eigenvalues(params, x, y, k=2, model=_mlp, precond=nan)


# ----------------------------------------------------------------------------- Adam's preconditioner
def _steps(opt, params, grads):
    state = opt.init(params)
    upd = None
    with jax.numpy_dtype_promotion("standard"):
        for g in grads:
            upd, state = opt.update(g, state, params)
    return upd, state


@pytest.mark.parametrize("wrap", [False, True])
@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop", "rmsprop_sqrt_out", "rmsprop_c"])
def test_adam_preconditioner_reproduces_optax_update(name, wrap):
    """optax's own step equals -eta m_hat / D (Adam) or -eta g / D (RMSProp) with our D."""
    params = {"a": jnp.array([0.3, -1.2, 2.0]), "b": jnp.array(0.7)}
    keys = jax.random.split(jax.random.key(0), 5)
    grads = [jax.tree_util.tree_map(lambda a, k=k: jax.random.normal(k, jnp.shape(a)), params)
             for k in keys]  # fmt: skip
    eta = 0.05
    make = {
        "adam": functools.partial(optax.adam, b1=0.8, b2=0.95, eps=1e-3),
        "adamw": functools.partial(optax.adamw, b2=0.9, eps=1e-4, weight_decay=0.0),
        "rmsprop": functools.partial(optax.rmsprop, decay=0.8, eps=1e-3),
        "rmsprop_sqrt_out": functools.partial(optax.rmsprop, eps=1e-3, eps_in_sqrt=False),
        "rmsprop_c": functools.partial(optax.rmsprop, eps=1e-3, centered=True),
    }[name]
    opt = optax.inject_hyperparams(make)(learning_rate=eta) if wrap else make(eta)
    upd, state = _steps(opt, params, grads)
    kw = make.keywords
    if not wrap:  # the hyperparameters are not in a plain state: pass them
        kw2 = {"eps": kw["eps"], "b2": kw.get("b2", kw.get("decay"))}
        if name == "rmsprop_sqrt_out":
            kw2["eps_in_sqrt"] = False
        d = ms.adam_preconditioner(state, **{k: v for k, v in kw2.items() if v is not None})
    else:
        d = ms.adam_preconditioner(state, eps_in_sqrt=False if name == "rmsprop_sqrt_out" else None)
    if name.startswith("adam"):
        b1 = kw.get("b1", 0.9)
        inner = state.inner_state if wrap else state
        mu = inner[0].mu
        t = len(grads)
        expect = jax.tree_util.tree_map(lambda m, dd: -eta * m / (1 - b1**t) / dd, mu, d)
    else:
        expect = jax.tree_util.tree_map(lambda g, dd: -eta * g / dd, grads[-1], d)
    for a, b in zip(jax.tree_util.tree_leaves(upd), jax.tree_util.tree_leaves(expect),
                    strict=True):  # fmt: skip
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_adam_preconditioner_validation():
    params = {"a": jnp.ones(2)}
    with pytest.raises(ValueError, match="opt_state must be an optax Adam"):
        ms.adam_preconditioner(optax.sgd(0.1, momentum=0.9).init(params))
    state = optax.adam(0.1).init(params)
    with pytest.raises(ValueError, match="bias_correction must be True or False"):
        ms.adam_preconditioner(state, bias_correction="yes")
    with pytest.raises(ValueError, match="eps must be positive"):
        ms.adam_preconditioner(state, eps=-1.0)
    with pytest.raises(ValueError, match=r"b2 must be in \[0, 1\)"):
        ms.adam_preconditioner(state, b2=1.5)


# ----------------------------------------------------------------------------- training hooks
def test_train_logs_preconditioned_sharpness_at_adams_d():
    """The in-loop log equals the preconditioned sharpness at the D of a hand-written Adam loop."""
    params, x, y = _mlp_problem()
    eta, steps = 0.01, 120
    r = ms.train(params, x, y, eta, model=_mlp, steps=steps, log_every=60, optimizer=optax.adam,
                 log_sharpness="preconditioned", tol=1e-30)  # fmt: skip
    opt = optax.adam(eta)
    lossf = ms.model_loss(_mlp)

    def step(carry, _):
        p, state = carry
        with jax.numpy_dtype_promotion("standard"):
            upd, state = opt.update(jax.grad(lossf)(p, x, y), state, p)
        return (optax.apply_updates(p, upd), state), None

    with jax.numpy_dtype_promotion("standard"):
        state0 = opt.init(params)
    (p, state), _ = jax.lax.scan(step, (params, state0), None, length=steps)
    ref = _dense_reference(p, x, y, ms.adam_preconditioner(state), _mlp)[0]
    np.testing.assert_allclose(float(r.log.sharpness[-1]), ref, rtol=1e-6)
    assert ms.threshold_for(optax.adam, eta) == pytest.approx(38 / eta)


def test_train_preconditioned_gd_and_validation():
    params, x, y = _mlp_problem()
    d = _random_precond(params, jax.random.key(5))
    opt = functools.partial(ms.preconditioned_gd, precond=d)
    r = ms.train(params, x, y, 0.02, model=_mlp, steps=40, log_every=20, optimizer=opt,
                 log_sharpness="preconditioned", tol=1e-30)  # fmt: skip
    # by hand: theta <- theta - eta D^{-1} g
    p = params
    for _ in range(40):
        g = jax.grad(ms.model_loss(_mlp))(p, x, y)
        p = jax.tree_util.tree_map(lambda a, gg, dd: a - 0.02 * gg / dd, p, g, d)
    for a, b in zip(jax.tree_util.tree_leaves(r.params), jax.tree_util.tree_leaves(p),
                    strict=True):  # fmt: skip
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    ref = _dense_reference(p, x, y, d, _mlp)[0]
    np.testing.assert_allclose(float(r.log.sharpness[-1]), ref, rtol=1e-6)
    assert ms.threshold_for(opt, 0.02) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="log_sharpness='preconditioned' needs an optimizer"):
        ms.train(params, x, y, 0.02, model=_mlp, steps=4, log_every=2, optimizer="momentum",
                 log_sharpness="preconditioned")  # fmt: skip
    with pytest.raises(ValueError, match="log_sharpness='preconditioned' needs an optimizer"):
        ms.train(params, x, y, 0.02, model=_mlp, steps=4, log_every=2,
                 log_sharpness="preconditioned")  # fmt: skip


# ----------------------------------------------------------------------------- sweep, report, budget
def test_sweep_reports_the_optimizers_threshold():
    x, y = ms.data.toy_1d(n=6, key=jax.random.key(0))
    p = ms.init_shallow(jax.random.key(1), 1, 8, knot_range=(-1.5, 1.5))
    etas = np.array([0.01, 0.02])
    hb = ms.sweep(p, x, y, etas, steps=20, optimizer="momentum", momentum=0.5, progress=False,
                  flattest=False)  # fmt: skip
    np.testing.assert_allclose(hb.threshold, 3.0 / etas)
    np.testing.assert_allclose(hb.edge_ratio, hb.sharpness * etas / 3.0)
    params, xm, ym = _mlp_problem()
    ad = ms.sweep(params, xm, ym, etas, model=_mlp, steps=20, log_every=10, optimizer=optax.adam,
                  log_sharpness="preconditioned", progress=False, diagnostics=False)  # fmt: skip
    np.testing.assert_allclose(ad.threshold, 38 / etas)
    np.testing.assert_allclose(ad.edge_ratio, ad.log.sharpness[:, -1] * etas / 38)
    # what a sweep stores: eta x threshold, None where no threshold is derived
    from minstab.engine.sweep import _threshold_config

    assert _threshold_config(ms.TrainConfig(steps=1)) == {
        "threshold_factor": 2.0, "threshold_on": "sharpness"}  # fmt: skip
    assert _threshold_config(ms.TrainConfig(steps=1, optimizer=optax.lion))[
        "threshold_factor"] is None  # fmt: skip


def test_report_and_budget_take_a_threshold():
    x = jnp.array([-1.0, 0.0, 1.0])
    y = jnp.array([1.0, 0.0, 1.0])
    p = ms.ShallowParams(jnp.array([[1.0], [-1.0]]), jnp.array([-0.5, -0.5]),
                         jnp.array([2.0, 2.0]), jnp.array(0.0))  # fmt: skip
    eta, beta = 0.05, 0.9
    thr = ms.stability_threshold("momentum", eta, beta=beta)
    r = ms.stability_report(p, x, y, eta, threshold=thr)
    assert r.eta == eta and r.two_over_eta == pytest.approx(thr)
    assert r.budget == pytest.approx(float(ms.momentum_budget(eta, beta=beta)))
    assert r.lemma1_ok == (r.sharpness <= thr)
    np.testing.assert_allclose(ms.theorem1_budget(eta, threshold=thr), ms.momentum_budget(eta))
    with pytest.raises(ValueError, match="threshold must be positive"):
        ms.stability_report(p, x, y, eta, threshold=-1.0)
    with pytest.raises(ValueError, match="threshold must be positive"):
        ms.theorem1_budget(eta, threshold=0.0)
