"""The training skeleton (minstab.engine.loop) against closed forms and plain Python loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from minstab.engine.config import TrainConfig
from minstab.engine.loop import (
    DIVERGE_ABOVE,
    StopRule,
    block_steps,
    in_blocks,
    new_status,
    run_blocks,
)

A = jnp.array([1.0, 4.0])  # the quadratic L(x) = (1/2) sum_i a_i x_i^2, lambda_max = 4
X0 = jnp.array([1.0, -0.5])


def gd_step(eta):
    """GD on the quadratic: x <- (1 - eta a) x, with the loss at the incoming x."""

    def step(x, _):
        return x - eta * A * x, 0.5 * jnp.sum(A * x * x)

    return step


def closed_form(eta, t):
    """x_t = (1 - eta a)^t x_0, the iterate of GD on the quadratic (float64 NumPy)."""
    return (1 - eta * np.asarray(A)) ** t * np.asarray(X0)


def test_gd_on_quadratic_matches_closed_form_at_every_log_point():
    eta, lengths = 0.3, [3, 5, 2, 7]
    r = run_blocks(gd_step(eta), X0, jnp.array(lengths), record=lambda x: x)
    at = np.cumsum(lengths)
    want = np.stack([closed_form(eta, t) for t in at])
    np.testing.assert_allclose(r.log, want, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(r.carry, closed_form(eta, at[-1]), rtol=1e-13)
    assert int(r.status.step) == at[-1]
    assert int(r.status.stop_at) == -1 and not bool(r.status.diverged)
    # the loss kept is the one at the last evaluated iterate (before the last update)
    x = closed_form(eta, at[-1] - 1)
    assert float(r.status.loss) == pytest.approx(0.5 * float(np.sum(np.asarray(A) * x * x)))


def first_bad_step(eta, limit):
    """First t with L(x_t) non-finite or > DIVERGE_ABOVE, from the closed form (None if none)."""
    for t in range(limit):
        x = closed_form(eta, t)
        loss = 0.5 * np.sum(np.asarray(A) * x * x)
        if not np.isfinite(loss) or loss > DIVERGE_ABOVE:
            return t
    return None


@pytest.mark.parametrize("lengths", [[40], [7, 7, 7, 7, 7, 5], [1] * 40, [13, 27]])
def test_divergence_above_2_over_a_is_flagged_and_frozen(lengths):
    """eta = 0.6 > 2/4: the a = 4 mode grows like 1.4^t; the run stops at the first step whose
    loss exceeds DIVERGE_ABOVE and keeps that iterate, whatever the blocks are."""
    eta = 0.6
    t_bad = first_bad_step(eta, 40)
    assert t_bad is not None and 0 < t_bad < 40
    r = run_blocks(gd_step(eta), X0, jnp.array(lengths), record=lambda x: x)
    assert bool(r.status.diverged)
    assert int(r.status.stop_at) == t_bad
    np.testing.assert_allclose(r.carry, closed_form(eta, t_bad), rtol=1e-12)
    at = np.cumsum(lengths)
    for i, t in enumerate(at):  # before the stop: the iterate; after: the frozen one
        np.testing.assert_allclose(r.log[i], closed_form(eta, min(t, t_bad)), rtol=1e-12)
    assert float(r.status.loss) > DIVERGE_ABOVE


def test_nonfinite_loss_is_divergence():
    def step(x, t):
        return x + 1.0, jnp.where(t == 5, jnp.nan, 0.0)

    carry, status = block_steps(step, jnp.zeros(()), new_status(jnp.float64), 9)
    assert bool(status.diverged) and int(status.stop_at) == 5
    assert float(carry) == 5.0 and int(status.step) == 9


def test_vmapped_diverging_step_size_does_not_spoil_neighbours():
    etas = jnp.array([0.1, 0.6, 0.45])
    run = jax.jit(jax.vmap(lambda e: run_blocks(gd_step(e), X0, jnp.array([10, 30]))))
    r = run(etas)
    np.testing.assert_array_equal(r.status.diverged, [False, True, False])
    for i in (0, 2):
        np.testing.assert_allclose(r.carry[i], closed_form(float(etas[i]), 40), rtol=1e-12)
    np.testing.assert_allclose(r.carry[1], closed_form(0.6, first_bad_step(0.6, 40)), rtol=1e-12)


def test_convergence_with_patience_stops_where_a_python_loop_does():
    eta, tol, patience = 0.2, 1e-6, 3
    rule = StopRule(tol=tol, patience=patience)
    carry, status = block_steps(gd_step(eta), X0, new_status(jnp.float64), 200, rule)
    # reference: the first t with loss < tol at t and at the `patience` steps before it
    streak, stop = 0, None
    for t in range(200):
        x = closed_form(eta, t)
        streak = streak + 1 if 0.5 * np.sum(np.asarray(A) * x * x) < tol else 0
        if streak > patience:
            stop = t
            break
    assert stop is not None
    assert int(status.stop_at) == stop and not bool(status.diverged)
    assert int(status.below) == patience + 1
    np.testing.assert_allclose(carry, closed_form(eta, stop), rtol=1e-12)


def test_block_log_equals_a_plain_python_loop():
    """A nonlinear step with a step-dependent term: the log of run_blocks is the plain loop's."""

    def step(x, t):
        loss = jnp.sum(jnp.sin(x) ** 2)
        return x - 0.1 * jnp.sin(2 * x) + 1e-3 * t.astype(x.dtype), loss

    lengths = [4, 1, 6, 3]
    r = run_blocks(step, X0, jnp.array(lengths), record=lambda x: (x, jnp.sum(x)))
    x, t, logs = np.asarray(X0), 0, []
    for m in lengths:
        for _ in range(m):
            x = x - 0.1 * np.sin(2 * x) + 1e-3 * t
            t += 1
        logs.append(x)
    np.testing.assert_allclose(r.log[0], np.stack(logs), rtol=1e-13)
    np.testing.assert_allclose(r.log[1], np.stack(logs).sum(axis=1), rtol=1e-13)


def test_static_and_traced_block_lengths_agree():
    eta = 0.6
    a = block_steps(gd_step(eta), X0, new_status(jnp.float64), 30)
    b = jax.jit(lambda n: block_steps(gd_step(eta), X0, new_status(jnp.float64), n))(30)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("eta", [0.3, 0.6])
def test_in_blocks_exits_early_and_equals_one_block(eta):
    """Blocks of 7 over 40 steps (5 and a remainder of 5): the same iterate and flags as one block
    of 40; a diverged run leaves the loop of full blocks after the one it stopped in (the
    remainder block, a no-op for it, still counts its steps)."""
    one = block_steps(gd_step(eta), X0, new_status(jnp.float64), 40)

    def blk(state, m):
        return block_steps(gd_step(eta), *state, m)

    carry, status = in_blocks(blk, (X0, new_status(jnp.float64)), 40, 7, lambda s: s[1].running)
    np.testing.assert_array_equal(carry, one[0])
    assert int(status.stop_at) == int(one[1].stop_at)
    assert bool(status.diverged) == bool(one[1].diverged) == (eta > 0.5)
    t_bad = first_bad_step(eta, 40)
    assert int(status.step) == (40 if t_bad is None else 7 * (t_bad // 7 + 1) + 5)


def test_one_divergence_constant():
    assert TrainConfig(steps=1).diverge_above == DIVERGE_ABOVE
    assert StopRule().diverge_above == DIVERGE_ABOVE
