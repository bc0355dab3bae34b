"""Training engine: GD/SGD/optax loops against plain Python loops, freezing, logging, schedules."""

import functools

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import minstab as ms
from minstab.engine.train import train


def _problem(n=6, k=12, seed=0):
    x, y = ms.data.toy_1d(n=n, key=jax.random.key(seed), dtype=jnp.float64)
    p = ms.init_shallow(
        jax.random.key(seed + 1), 1, k, knot_range=(float(x.min()), float(x.max())),
        dtype=jnp.float64,
    )  # fmt: skip
    return p, x, y


def _grad(p, x, y):
    return jax.grad(lambda q: ms.quadratic_loss(q, x, y))(p)


def test_gd_matches_python_loop():
    p, x, y = _problem()
    eta, steps = 0.05, 40
    r = train(p, x, y, eta, steps=steps, tol=1e-300)
    q = p
    for _ in range(steps):
        q = jax.tree_util.tree_map(lambda a, g: a - eta * g, q, _grad(q, x, y))
    for a, b in zip(r.params, q, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(r.loss, ms.quadratic_loss(q, x, y), rtol=1e-12)
    assert int(r.steps_run) == steps and not bool(r.converged) and not bool(r.diverged)


def test_log_matches_reference_sharpness():
    p, x, y = _problem()
    r = train(p, x, y, 0.05, steps=30, log_every=10, tol=1e-300, log_sharpness="lanczos")
    assert r.log.loss.shape == (3,) and list(np.asarray(r.log.step)) == [10, 20, 30]
    q = p
    for i in range(30):
        q = jax.tree_util.tree_map(lambda a, g: a - 0.05 * g, q, _grad(q, x, y))
        if (i + 1) % 10 == 0:
            j = (i + 1) // 10 - 1
            dense = float(jnp.linalg.eigvalsh(ms.hessian(q, x, y))[-1])
            np.testing.assert_allclose(r.log.sharpness[j], dense, rtol=1e-8)
            np.testing.assert_allclose(r.log.loss[j], ms.quadratic_loss(q, x, y), rtol=1e-12)


def _two_blocks(p, x):
    """Outputs that share no parameter: the loss Hessian is block diagonal (40 + 40 | 2)."""
    return x[:, 0] * jnp.sum(p["u"] * p["v"]) + x[:, 1] * (p["w"][0] * p["w"][1])


def test_tracker_follows_the_top_eigenvalue_into_another_block():
    """The top eigenvalue moves from the (u, v) block to the w block while GD fits y_2 = 4.

    Warm-started from the previous top eigenvector alone, the Krylov space stayed in the
    (u, v) block and the tracker logged that block's top (2.48 at the end, where lambda_max is
    4.00) as converged.
    """
    ku, kv = jax.random.split(jax.random.key(0))
    p = {"u": 0.25 * jax.random.normal(ku, (40,), jnp.float64),
         "v": 0.25 * jax.random.normal(kv, (40,), jnp.float64),
         "w": jnp.array([0.1, 0.2])}  # fmt: skip
    x, y = jnp.eye(2), jnp.array([1.0, 4.0])
    eta, steps, every = 0.05, 600, 20
    theta, unravel = jax.flatten_util.ravel_pytree(p)
    loss = lambda t: 0.5 * jnp.sum((_two_blocks(unravel(t), x) - y) ** 2) / 2  # noqa: E731
    step = jax.jit(lambda t: t - eta * jax.grad(loss)(t))
    dense = []
    for i in range(steps):
        theta = step(theta)
        if (i + 1) % every == 0:
            dense.append(float(jnp.linalg.eigvalsh(jax.hessian(loss)(theta))[-1]))
    dense = np.array(dense)
    # the regime: lambda_max moves to the w block (the w block's top alone is ~4 at the end)
    assert dense[0] < 3.0 and dense[-1] > 3.9
    for method, rtol in (("lanczos", 1e-8), ("power", 1e-4)):
        r = train(p, x, y, eta, model=_two_blocks, steps=steps, log_every=every, tol=1e-300,
                  log_sharpness=method)  # fmt: skip
        logged = np.asarray(r.log.sharpness)
        assert np.all(logged <= dense * (1 + 1e-10)), method  # Rayleigh quotients
        late = slice(len(dense) // 2, None)  # after the switch, once power iteration caught up
        np.testing.assert_allclose(logged[late], dense[late], rtol=rtol, err_msg=method)
        if method == "lanczos":
            np.testing.assert_allclose(logged, dense, rtol=rtol)


def test_divergence_is_flagged_and_frozen():
    p, x, y = _problem()
    lam = float(ms.sharpness(p, x, y))
    r = train(p, x, y, 50.0 / lam, steps=200, diverge_above=1e4)
    assert bool(r.diverged) and not bool(r.converged)
    at = int(r.diverged_at)
    assert 0 < at < 200 and int(r.steps_run) == at
    # frozen at the iterate where the loss first exceeded the threshold: replay `at` steps
    q = p
    for _ in range(at):
        q = jax.tree_util.tree_map(lambda a, g: a - (50.0 / lam) * g, q, _grad(q, x, y))
    for a, b in zip(r.params, q, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    assert float(ms.quadratic_loss(q, x, y)) > 1e4


def test_patience_delays_convergence():
    p, x, y = _problem()
    y2 = ms.forward(p, x)
    r = train(p, x, y2, 0.05, steps=50, tol=1e-20, patience=10)
    # it keeps stepping (at a zero gradient) during the 10-step window, then stops
    assert bool(r.converged) and int(r.converged_at) == 0 and int(r.steps_run) == 10
    r = train(p, x, y2, 0.05, steps=5, tol=1e-20, patience=10)
    assert not bool(r.converged)  # still inside the window: not certified


def test_convergence_freezes_run():
    p, x, y = _problem()
    y2 = ms.forward(p, x)  # p interpolates y2 exactly: converged at step 0, never moves
    r = train(p, x, y2, 0.05, steps=50, tol=1e-20)
    assert bool(r.converged) and int(r.converged_at) == 0 and int(r.steps_run) == 0
    for a, b in zip(r.params, p, strict=True):
        np.testing.assert_array_equal(a, b)
    # with logging, the loop exits early and the log repeats the frozen state
    r = train(p, x, y2, 0.05, steps=50, tol=1e-20, log_every=10)
    assert list(np.asarray(r.log.step)) == [10, 20, 30, 40, 50]
    np.testing.assert_array_equal(r.log.loss, np.full(5, float(r.loss)))
    assert np.all(np.asarray(r.log.sharpness) == r.log.sharpness[0])


@pytest.mark.parametrize("replace", [True, False])
def test_sgd_matches_python_loop(replace):
    p, x, y = _problem(n=8)
    eta, steps, B = 0.05, 15, 3
    key = jax.random.key(7)
    r = train(p, x, y, eta, steps=steps, batch_size=B, replace=replace, key=key, tol=1e-300)
    q = p
    for t in range(steps):
        k = jax.random.fold_in(key, t)
        if replace:
            idx = jax.random.randint(k, (B,), 0, 8)
        else:
            idx = jax.random.permutation(k, 8)[:B]
            assert len(set(np.asarray(idx).tolist())) == B
        q = jax.tree_util.tree_map(lambda a, g: a - eta * g, q, _grad(q, x[idx], y[idx]))
    for a, b in zip(r.params, q, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_momentum_matches_optax_loop_and_vmaps():
    p, x, y = _problem()
    steps = 20
    etas = jnp.array([0.01, 0.03])
    from minstab.engine.train import TrainConfig, train_run

    cfg = TrainConfig(steps=steps, optimizer="momentum", momentum=0.9, tol=1e-300)
    x2 = x[:, None]  # the kernel takes (n, d) inputs (train() validates and reshapes)
    batched = jax.jit(
        jax.vmap(lambda e: train_run(p, x2, y, e, jax.random.key(0), config=cfg).params)
    )(etas)
    for i, eta in enumerate([0.01, 0.03]):
        opt = optax.sgd(eta, momentum=0.9)
        q, s = p, opt.init(p)
        for _ in range(steps):
            u, s = opt.update(_grad(q, x, y), s, q)
            q = optax.apply_updates(q, u)
        for a, b in zip(batched, q, strict=True):
            np.testing.assert_allclose(a[i], b, rtol=1e-11, atol=1e-13)


def test_adam_matches_optax_loop():
    p, x, y = _problem()
    r = train(p, x, y, 0.01, steps=15, optimizer="adam", tol=1e-300)
    opt = optax.adam(0.01)
    q, s = p, opt.init(p)
    with jax.numpy_dtype_promotion("standard"):  # optax's int step count under strict promotion
        for _ in range(15):
            u, s = opt.update(_grad(q, x, y), s, q)
            q = optax.apply_updates(q, u)
    for a, b in zip(r.params, q, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_boost_schedule():
    p, x, y = _problem()
    plain = train(p, x, y, 0.02, steps=400, log_every=20, tol=1e-300)
    thr = float(plain.log.loss[4])  # reached after ~100 steps
    r = train(p, x, y, 0.02, steps=400, log_every=20, boost_factor=3.0, boost_below=thr, tol=1e-300)
    e = np.asarray(r.log.eta)
    assert np.all((e == 0.02) | np.isclose(e, 0.06))
    first = int(np.argmax(np.isclose(e, 0.06)))
    assert 3 <= first <= 5 and np.isclose(e[-1], 0.06)
    assert np.all(np.isclose(e[first:], 0.06))  # sticky
    np.testing.assert_allclose(r.log.loss[:first], plain.log.loss[:first], rtol=1e-12)


def test_validation_errors():
    p, x, y = _problem()
    with pytest.raises(ValueError, match="eta"):
        train(p, x, y, -1.0, steps=3)
    with pytest.raises(ValueError, match="steps"):
        train(p, x, y, 0.1, steps=0)
    with pytest.raises(ValueError, match="optimizer"):
        train(p, x, y, 0.1, steps=3, optimizer="lbfgs")
    with pytest.raises(ValueError, match="log_every"):
        train(p, x, y, 0.1, steps=3, log_every=5)


def _reference_run(p, x, y, eta, steps, tol, patience, diverge_above):
    """The per-step rule written out: (params where the run stopped, status, step, steps run)."""
    below = 0
    for t in range(steps):
        loss = float(ms.quadratic_loss(p, x, y))
        if not np.isfinite(loss) or loss > diverge_above:
            return p, "diverged", t, t
        below = below + 1 if loss < tol else 0
        if loss < tol and below > patience:
            return p, "converged", t - patience, t
        p = jax.tree_util.tree_map(lambda a, g: a - eta * g, p, _grad(p, x, y))
    return p, "running", -1, steps


@functools.cache
def _block_size_cases():
    """Problem and per-step reference runs shared by every block size (the reference is a slow
    Python loop; computing it once instead of once per block size saves ~40 s of the suite)."""
    p, x, y = _problem()
    y2 = (
        ms.forward(p, x) + 1e-2 * y
    )  # reachable: GD converges to loss < 1e-8 in a few hundred steps
    lam = float(ms.sharpness(p, x, y2))
    etas = ((1.5 / lam, "converged"), (2.5 / lam, "converged"), (50 / lam, "diverged"))
    refs = [(eta, status, _reference_run(p, x, y2, eta, 700, 3e-7, 7, 1e4)) for eta, status in etas]
    return p, x, y2, refs


@pytest.mark.parametrize("check_every", [1, 3, 64, 1000])
def test_flags_and_frozen_params_exact_for_every_block_size(check_every):
    """Flags are checked once per block of check_every steps; a stop inside a block replays to
    the exact step: converged_at, diverged_at, steps_run and the frozen params are the per-step
    rule's at every block size."""
    p, x, y2, refs = _block_size_cases()
    for eta, status, (q, st, at, run) in refs:
        assert st == status
        r = train(p, x, y2, eta, steps=700, tol=3e-7, patience=7, diverge_above=1e4,
                  check_every=check_every, log_sharpness="none")  # fmt: skip
        assert bool(r.converged) == (st == "converged") and bool(r.diverged) == (st == "diverged")
        assert int(r.converged_at if st == "converged" else r.diverged_at) == at
        assert int(r.steps_run) == run
        for a, b in zip(r.params, q, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
