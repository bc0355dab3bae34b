"""One engine for every model: train/sweep of user models (plain pytrees) against Python loops."""

import functools
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import minstab as ms
from minstab.engine.sweep import load_sweep, sweep
from minstab.engine.train import train

ETAS = [0.02, 0.05, 0.1, 0.2]


def compiled_chunks() -> int:
    """Programs in the jit cache of the per-chunk kernel (a retrace adds one)."""
    return importlib.import_module("minstab.engine.sweep")._chunk._cache_size()


# ----------------------------------------------------------------------------- two user models


def mlp(params, x):
    """3-layer tanh MLP on (n, 2) inputs; params is a list of {"w", "b"} dicts."""
    h = x
    for layer in params[:-1]:
        h = jnp.tanh(h @ layer["w"] + layer["b"][None, :])
    return (h @ params[-1]["w"] + params[-1]["b"][None, :])[:, 0]


def init_mlp(key, sizes=(2, 8, 8, 1)):
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {"w": jax.random.normal(k, (a, b), jnp.float64) / np.sqrt(a), "b": jnp.zeros(b)}
        for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def cnn(params, x):
    """One 3x3 conv (4 channels, tanh), global average pooling, a dense output."""
    z = jax.lax.conv_general_dilated(
        x, params["conv"]["w"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    h = jnp.tanh(z + params["conv"]["b"][None, None, None, :])
    return jnp.mean(h, axis=(1, 2)) @ params["out"]["w"] + params["out"]["b"]


def init_cnn(key):
    k1, k2 = jax.random.split(key)
    return {
        "conv": {"w": jax.random.normal(k1, (3, 3, 1, 4), jnp.float64) / 3.0, "b": jnp.zeros(4)},
        "out": {"w": jax.random.normal(k2, (4,), jnp.float64), "b": jnp.zeros(())},
    }


def mlp_problem():
    x = jax.random.normal(jax.random.key(0), (10, 2), jnp.float64)
    y = jnp.sin(x[:, 0]) + 0.5 * x[:, 1]
    return init_mlp(jax.random.key(1)), x, y


def cnn_problem():
    x = jax.random.normal(jax.random.key(2), (8, 6, 6, 1), jnp.float64)
    y = jnp.sign(jnp.mean(x, axis=(1, 2, 3)))
    return init_cnn(jax.random.key(3)), x, y


PROBLEMS = {"mlp": (mlp, mlp_problem), "cnn": (cnn, cnn_problem)}


def quad(model, p, x, y):
    r = model(p, x) - y
    return 0.5 * jnp.mean(r * r)


def gd_loop(model, p, x, y, eta, steps):
    """The independent reference: a Python loop of GD steps with jax.grad."""
    grad = jax.jit(jax.grad(functools.partial(quad, model)))
    for _ in range(steps):
        p = jax.tree_util.tree_map(lambda a, g: a - eta * g, p, grad(p, x, y))
    return p


def dense_sharpness(model, p, x, y):
    flat, unravel = ravel_pytree(p)
    h = jax.hessian(lambda t: quad(model, unravel(t), x, y))(flat)
    return float(jnp.linalg.eigvalsh(h)[-1])


@pytest.fixture(scope="module", params=sorted(PROBLEMS))
def swept(request):
    model, make = PROBLEMS[request.param]
    p, x, y = make()
    r = sweep(p, x, y, ETAS, model=model, steps=60, tol=1e-300, chunk_size=4, progress=False)
    return model, p, x, y, r


# ----------------------------------------------------------------------------- acceptance


def test_sweep_over_four_step_sizes_equals_python_loop(swept):
    model, p, x, y, r = swept
    assert r.num_runs == 4 and r.config["model"].endswith(model.__name__)
    for i, eta in enumerate(ETAS):
        q = gd_loop(model, p, x, y, eta, 60)
        np.testing.assert_allclose(r.loss[i], quad(model, q, x, y), rtol=1e-8)
        for a, b in zip(jax.tree_util.tree_leaves(r.params_at(i)), jax.tree_util.tree_leaves(q),
                        strict=True):  # fmt: skip
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
        assert int(r.steps_run[i]) == 60 and not r.diverged[i] and not r.converged[i]


def test_a_convolution_runs_one_loop_per_run_on_cpu(swept):
    """``layout="auto"``: a model that convolves runs sequentially on CPU (vmapped per-run
    kernels become one grouped convolution, slow on XLA:CPU), found in nested jaxprs too;
    forcing the batched program gives the same runs."""
    from minstab.engine.objective import Objective
    from minstab.engine.sweep import _choose_layout

    model, p, x, y, r = swept
    expected = "sequential" if model is cnn else "batched"
    assert r.config["layout"] == expected
    cpu = jax.devices("cpu")

    def hidden(params, x):  # the convolution inside a jit and a cond branch
        return jax.jit(lambda q, z: jax.lax.cond(True, model, model, q, z))(params, x)

    assert _choose_layout("auto", Objective(hidden), p, x, cpu) == expected
    other = "batched" if expected == "sequential" else "sequential"
    s = sweep(p, x, y, ETAS, model=model, steps=60, tol=1e-300, chunk_size=4, progress=False,
              layout=other)  # fmt: skip
    assert s.config["layout"] == other
    np.testing.assert_allclose(s.loss, r.loss, rtol=1e-10)
    np.testing.assert_allclose(s.sharpness, r.sharpness, rtol=1e-8)


def test_params_keep_the_user_pytree_with_a_runs_axis(swept):
    model, p, x, y, r = swept
    assert jax.tree_util.tree_structure(r.params) == jax.tree_util.tree_structure(p)
    for a, b in zip(jax.tree_util.tree_leaves(r.params), jax.tree_util.tree_leaves(p),
                    strict=True):  # fmt: skip
        assert np.shape(a) == (4,) + np.shape(b)


def test_final_sharpness_is_lanczos_on_the_exact_hessian(swept):
    model, p, x, y, r = swept
    for i in (0, 3):
        ref = dense_sharpness(model, r.params_at(i), x, y)
        np.testing.assert_allclose(r.sharpness[i], ref, rtol=1e-8)
        assert r.sharpness_residual[i] <= 1e-6 * abs(ref)
    # the shallow-net quantities are NaN for a user model (documented)
    for f in ("lower_bound", "flattest_sharpness", "weighted_curvature"):
        assert np.all(np.isnan(getattr(r, f)))
    assert r.status() == ["not converged"] * 4


def test_train_matches_python_loop_and_logs_lanczos_sharpness():
    p, x, y = mlp_problem()
    r = train(p, x, y, 0.1, model=mlp, steps=30, log_every=10, tol=1e-300)
    q = p
    for j in range(3):
        q = gd_loop(mlp, q, x, y, 0.1, 10)
        np.testing.assert_allclose(r.log.loss[j], quad(mlp, q, x, y), rtol=1e-10)
        np.testing.assert_allclose(r.log.sharpness[j], dense_sharpness(mlp, q, x, y), rtol=1e-8)
    np.testing.assert_allclose(r.loss, quad(mlp, q, x, y), rtol=1e-10)


def test_power_tracking_is_a_rayleigh_quotient_that_converges():
    """log_sharpness="power": one HVP per log point. Every logged value is v^T H v of a unit v,
    so never above the dense lambda_max at that point; with a tiny step (Hessian nearly fixed)
    it converges to lambda_max like power iteration (the top eigenvalue dominates here)."""
    p, x, y = mlp_problem()
    eta, steps = 1e-4, 600
    r = train(p, x, y, eta, model=mlp, steps=steps, log_every=1, log_sharpness="power",
              tol=1e-300)  # fmt: skip
    q, done = p, 0
    for step in (1, 10, 100):  # log entry step - 1 is recorded after `step` GD steps
        q, done = gd_loop(mlp, q, x, y, eta, step - done), step
        assert float(r.log.sharpness[step - 1]) <= dense_sharpness(mlp, q, x, y) * (1 + 1e-12)
    ref = dense_sharpness(mlp, r.params, x, y)
    np.testing.assert_allclose(r.log.sharpness[-1], ref, rtol=1e-6)
    assert abs(float(r.log.sharpness[0]) - ref) > 1e-3 * ref  # it did have to converge


def test_custom_loss_and_optax_factory():
    """A user loss and partial(optax.sgd, momentum=0.9) against an optax loop."""
    p, x, y = mlp_problem()
    labels = jnp.where(y > 0, 1.0, -1.0)

    def logistic(pred, t):
        return jnp.mean(jax.nn.softplus(-t * pred))

    opt = functools.partial(optax.sgd, momentum=0.9)
    r = train(p, x, labels, 0.05, model=mlp, loss=logistic, optimizer=opt, steps=25, tol=1e-300)
    o = optax.sgd(0.05, momentum=0.9)
    q, s = p, o.init(p)
    grad = jax.grad(lambda q: logistic(mlp(q, x), labels))
    for _ in range(25):
        u, s = o.update(grad(q), s, q)
        q = optax.apply_updates(q, u)
    for a, b in zip(jax.tree_util.tree_leaves(r.params), jax.tree_util.tree_leaves(q),
                    strict=True):  # fmt: skip
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_sgd_on_a_model_matches_python_loop():
    p, x, y = mlp_problem()
    key, B, eta = jax.random.key(3), 4, 0.05
    r = train(p, x, y, eta, model=mlp, steps=12, batch_size=B, key=key, tol=1e-300)
    q = p
    grad = jax.grad(functools.partial(quad, mlp))
    for t in range(12):
        idx = jax.random.randint(jax.random.fold_in(key, t), (B,), 0, x.shape[0])
        q = jax.tree_util.tree_map(lambda a, g: a - eta * g, q, grad(q, x[idx], y[idx]))
    np.testing.assert_allclose(r.loss, quad(mlp, q, x, y), rtol=1e-10)


def test_diverging_model_run_is_frozen_and_isolated():
    p, x, y = cnn_problem()
    lam = dense_sharpness(cnn, p, x, y)
    etas = [0.5 / lam, 200.0 / lam]
    r = sweep(p, x, y, etas, model=cnn, steps=80, tol=1e-300, diverge_above=1e3,
              chunk_size=2, progress=False)  # fmt: skip
    assert bool(r.diverged[1]) and not bool(r.diverged[0])
    at = int(r.diverged_at[1])
    assert 0 < at < 80 and int(r.steps_run[1]) == at and np.isnan(r.sharpness[1])
    q = gd_loop(cnn, p, x, y, etas[1], at)  # frozen at the iterate whose loss exceeded 1e3
    np.testing.assert_allclose(r.loss[1], quad(cnn, q, x, y), rtol=1e-8)
    assert np.all(np.isfinite(jax.tree_util.tree_leaves(r.params_at(0))[0]))
    np.testing.assert_allclose(
        r.loss[0], quad(cnn, gd_loop(cnn, p, x, y, etas[0], 80), x, y), rtol=1e-8
    )


def test_model_sweep_compiles_once_and_resumes(tmp_path):
    p, x, y = mlp_problem()
    kw = dict(model=mlp, steps=20, tol=1e-300, chunk_size=2, progress=False)
    a = sweep(p, x, y, [0.01, 0.02, 0.03], out_dir=tmp_path, **kw)
    before = compiled_chunks()
    b = sweep(p, x, y, [0.01, 0.02, 0.03], out_dir=tmp_path, **kw)
    assert not b.computed.any() and compiled_chunks() == before
    np.testing.assert_array_equal(a.loss, b.loss)
    sweep(p, x, y, [0.04, 0.05], **kw)
    assert compiled_chunks() == before  # new step sizes, same program
    a.save(tmp_path / "res")
    back = load_sweep(tmp_path / "res", like=p)
    assert jax.tree_util.tree_structure(back.params) == jax.tree_util.tree_structure(p)
    np.testing.assert_array_equal(back.params[0]["w"], a.params[0]["w"])
    flat = load_sweep(tmp_path / "res")  # without a template: a dict keyed by paths
    np.testing.assert_array_equal(flat.params["[0]['w']"], a.params[0]["w"])


def test_batched_initializations():
    p, x, y = mlp_problem()
    q = init_mlp(jax.random.key(9))
    both = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), p, q)
    r = sweep(both, x, y, [0.05, 0.1], model=mlp, batched=True, steps=20, tol=1e-300,
              progress=False)  # fmt: skip
    for i, (pi, eta) in enumerate([(p, 0.05), (q, 0.1)]):
        np.testing.assert_allclose(r.loss[i], quad(mlp, gd_loop(mlp, pi, x, y, eta, 20), x, y),
                                   rtol=1e-8)  # fmt: skip


# ----------------------------------------------------------------------------- configuration


def test_train_config_is_one_hashable_object():
    a = ms.TrainConfig(steps=10, tol=1e-9)
    b = ms.TrainConfig.from_dict({"steps": 10, "tol": 1e-9})
    assert a == b and hash(a) == hash(b)
    assert a.to_dict()["optimizer"] == "gd"
    c = ms.TrainConfig(steps=5, optimizer=functools.partial(optax.sgd, momentum=0.5))
    assert c.to_dict()["optimizer"] == "optax._src.alias.sgd(momentum=0.5)"
    # keywords and a config build the same run
    p, x, y = mlp_problem()
    r1 = train(p, x, y, 0.1, model=mlp, config=a)
    r2 = train(p, x, y, 0.1, model=mlp, steps=10, tol=1e-9)
    np.testing.assert_array_equal(r1.loss, r2.loss)


@pytest.mark.parametrize(
    "kw, name",
    [
        (dict(steps=0), "steps"),
        (dict(steps=5, log_every=10), "log_every"),
        (dict(steps=5, optimizer="lbfgs"), "optimizer"),
        (dict(steps=5, optimizer=42), "optimizer"),
        (dict(steps=5, optimizer=jnp.tanh), "optimizer"),
        (dict(steps=5, tol=-1.0), "tol"),
        (dict(steps=5, patience=-1), "patience"),
        (dict(steps=5, log_sharpness="exact"), "log_sharpness"),
        (dict(steps=5, stepz=3), "stepz"),
        (dict(tol=1e-3), "steps"),
    ],
)
def test_bad_options_raise_value_error_naming_them(kw, name):
    p, x, y = mlp_problem()
    with pytest.raises(ValueError, match=name):
        train(p, x, y, 0.1, model=mlp, **kw)


def test_bad_model_inputs_raise_before_tracing():
    p, x, y = mlp_problem()
    with pytest.raises(ValueError, match="shape"):  # (n,) predictions vs (n, 1) targets
        train(p, x, y[:, None], 0.1, model=mlp, steps=3)
    with pytest.raises(ValueError, match="y must have a leading axis"):
        train(p, x, y[:5], 0.1, model=mlp, steps=3)
    with pytest.raises(ValueError, match="model"):
        train(p, x, y, 0.1, model="mlp", steps=3)
    with pytest.raises(ValueError, match="ShallowParams"):
        train(p, x, y, 0.1, steps=3)  # a pytree without model=
    with pytest.raises(ValueError, match="gram"):
        train(p, x, y, 0.1, model=mlp, steps=4, log_every=2, log_sharpness="gram")
    with pytest.raises(ValueError, match="flattest"):
        sweep(p, x, y, [0.1], model=mlp, steps=3, flattest=True, progress=False)
    with pytest.raises(ValueError, match="negative_slope"):
        train(p, x, y, 0.1, model=mlp, steps=3, negative_slope=0.1)
    with pytest.raises(ValueError, match="params"):
        train([jnp.ones(2), jnp.ones(2, jnp.float32)], x, y, 0.1, model=mlp, steps=3)
    with pytest.raises(ValueError, match="x must be finite"):
        train(p, x.at[0, 0].set(jnp.nan), y, 0.1, model=mlp, steps=3)


def mean_half_square(pred, y):
    """(1/2n) sum r^2 as a user loss (a module-level function: hashable)."""
    return 0.5 * jnp.mean((pred - y) ** 2)


def mlp_and_copy(params, x):
    """Not one array of predictions: a pair."""
    return mlp(params, x), mlp(params, x)


def _message(call):
    with pytest.raises(ValueError) as e:
        call()
    return str(e.value)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("x float32", "x and params must share a floating dtype"),
        ("y scalar", "y must have a leading axis of n = 10"),
        ("y short, loss", "y must have a leading axis of n = 10"),
        ("y float32, loss", "y and params must share a floating dtype"),
        ("pair of outputs, loss", "one row per sample"),
        ("unhashable model", "model must be hashable"),
    ],
)
def test_training_loops_check_inputs_as_every_public_function(case, expected):
    """train, sweep and central_flow reject bad model inputs with the same ValueError as
    sharpness (one check, operators.check_model), naming the argument, before tracing.

    Before, the loops had their own checks: a float32 x or (with a loss) a float32 y reached jax
    (TypePromotionError under strict promotion, promoted silently otherwise), a pair of outputs a
    TypeError in the loss, an unhashable model jit's TypeError; sharpness met a short y with a
    loss as a broadcasting TypeError and a scalar y under another message.
    """
    p, x, y = mlp_problem()
    model, loss = mlp, None
    if case == "x float32":
        x = x.astype(jnp.float32)
    elif case == "y scalar":
        y = y[0]
    elif case == "pair of outputs, loss":
        model, loss = mlp_and_copy, mean_half_square
    elif case == "unhashable model":
        model = type("Unhashable", (), {"__call__": staticmethod(mlp), "__hash__": None})()
    else:
        loss = mean_half_square
        y = y[:5] if case == "y short, loss" else y.astype(jnp.float32)
    kw = dict(model=model, loss=loss)
    calls = {
        "sharpness": lambda: ms.sharpness(p, x, y, **kw),
        "train": lambda: train(p, x, y, 0.1, steps=3, **kw),
        "sweep": lambda: sweep(p, x, y, [0.1], steps=3, progress=False, **kw),
        "central_flow": lambda: ms.central_flow(p, x, y, eta=0.1, steps=2, **kw),
    }
    messages = {name: _message(call) for name, call in calls.items()}
    assert expected in messages["sharpness"], messages
    assert set(messages.values()) == {messages["sharpness"]}, messages
