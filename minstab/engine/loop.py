"""One training skeleton: an update step run in blocks under ``lax``, with divergence and freeze.

Every iterative method of minstab (``train``, :func:`minstab.shallow.deep.deep_gd`, the seed-001 GD of
:mod:`minstab.papers.rank_margins`, the seed-002 GD of :mod:`minstab.papers.min_norm`, the real SGD of
:func:`minstab.simulate_sgd`) is an update step

    step(carry, t) -> (carry', loss_t),

``loss_t`` the loss at ``carry`` (the iterate *before* update t). This module runs such a step:

- in **blocks** of a static or traced number of steps (:func:`block_steps`), with a log entry
  ``record(carry)`` after each block (:func:`run_blocks`), or as many blocks as a step count
  needs with an early exit once the run (every run of a ``vmap`` batch) stopped
  (:func:`in_blocks`, the schedule of :func:`minstab.train`);
- with the **divergence flag**: step t is bad when ``loss_t`` is non-finite or above
  :data:`DIVERGE_ABOVE` (one constant for the whole package);
- optionally with **convergence**: ``loss_t < tol`` at t and at the ``patience`` evaluated steps
  before it (a minimum sharper than 2/eta is left within a few hundred steps from rounding
  alone, seed 004 Lemma 1, so it is not mistaken for a stable one);
- with **freeze**: a run that stops at step t keeps the iterate t (the one whose loss stopped it)
  for good, so a diverging step size never spoils its neighbours in a ``vmap`` batch.

The flags are tracked as scalars while the block runs; the carry itself is not touched by a
select at every step. A run that stopped inside a block replays its first updates from the
block's start up to the stop, which gives exactly the iterate the per-step rule freezes, for
every block size. Everything is a pure function of arrays: ``jit``/``vmap``-able, no Python side
effects inside.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "DIVERGE_ABOVE",
    "DIVERGE_ONLY",
    "StopRule",
    "Status",
    "BlockRun",
    "bad_loss",
    "new_status",
    "block_steps",
    "in_blocks",
    "run_blocks",
]

DIVERGE_ABOVE = 1e6  # a loss above this (or a non-finite one) marks a run diverged


class StopRule(NamedTuple):
    """When a run stops (static, hashable).

    Attributes
    ----------
    diverge_above : a loss above this, or a non-finite one, marks the run diverged.
    tol : convergence level of the loss (None: a run never converges, only diverges).
    patience : converged once the loss stayed below ``tol`` for this many further steps.
    """

    diverge_above: float = DIVERGE_ABOVE
    tol: float | None = None
    patience: int = 0


DIVERGE_ONLY = StopRule()  # the default rule: stop on divergence only


class Status(NamedTuple):
    """The per-run flags of the skeleton (a pytree of scalars; batched under ``vmap``).

    Attributes
    ----------
    step : steps taken (a stopped run counts on: the same for every run of a batch).
    loss : loss at the last evaluated iterate (for a stopped run: the iterate it stopped at).
    below : evaluated iterates in a row with loss < ``tol``, up to the last one.
    stop_at : step at which the run converged or diverged (-1 while it runs).
    diverged : the run stopped on a bad loss.
    """

    step: jax.Array
    loss: jax.Array
    below: jax.Array
    stop_at: jax.Array
    diverged: jax.Array

    @property
    def running(self) -> jax.Array:
        """The run has not stopped."""
        return self.stop_at < 0


class BlockRun(NamedTuple):
    """Outcome of :func:`run_blocks`: the final (or frozen) carry, its :class:`Status`, the log."""

    carry: object
    status: Status
    log: object


def bad_loss(loss, diverge_above: float = DIVERGE_ABOVE) -> jax.Array:
    """The divergence test: ``loss`` non-finite or above ``diverge_above``."""
    return ~jnp.isfinite(loss) | (loss > diverge_above)


def new_status(dtype, step=0) -> Status:
    """The :class:`Status` of a fresh run at ``step`` whose losses have dtype ``dtype``."""
    i32 = jnp.int32
    return Status(
        jnp.asarray(step, i32), jnp.full((), jnp.inf, dtype), jnp.zeros((), i32),
        jnp.full((), -1, i32), jnp.zeros((), bool),
    )  # fmt: skip


def _observe(s: Status, loss, t, rule: StopRule) -> Status:
    """Fold the loss of step t into the flags of a run (no change once it has stopped)."""
    loss = jnp.asarray(loss, s.loss.dtype)  # the loop carry keeps one dtype
    bad = bad_loss(loss, rule.diverge_above)
    if rule.tol is None:
        below, stop = s.below, bad
    else:
        small = jnp.isfinite(loss) & (loss < rule.tol)
        below = jnp.where(small, s.below + 1, 0)
        stop = bad | (small & (below > rule.patience))
    on = s.running
    return Status(
        s.step, jnp.where(on, loss, s.loss), jnp.where(on, below, s.below),
        jnp.where(on & stop, t, s.stop_at), s.diverged | (on & bad),
    )  # fmt: skip


def _where(mask, new, old):
    return jax.tree_util.tree_map(lambda a, b: jnp.where(mask, a, b), new, old)


def block_steps(
    step: Callable, carry, status: Status, length, rule: StopRule = DIVERGE_ONLY, *, unroll: int = 1
):
    """``length`` steps of ``step(carry, t) -> (carry, loss)`` from ``status.step``, frozen at a stop.

    Parameters
    ----------
    step : the update step; ``loss`` is the loss at the incoming ``carry``.
    carry, status : the state of the run.
    length : number of steps: a Python int (a ``lax.scan``, unrolled ``unroll`` times) or a
        traced integer (a ``fori_loop``).
    rule : :class:`StopRule`.

    Returns
    -------
    (carry, status) after the block. A run stopped before the block comes out unchanged but for
    ``status.step``; one that stops at step t inside it comes out at the iterate t (replayed).
    """
    t0, active = status.step, status.running

    def body(c, t):
        carry, s = c
        carry, loss = step(carry, t)
        return (carry, _observe(s, loss, t, rule)), None

    if isinstance(length, int):
        steps = t0 + jnp.arange(length, dtype=jnp.int32)
        (new, s), _ = jax.lax.scan(body, (carry, status), steps, unroll=unroll)
    else:
        length = jnp.asarray(length, jnp.int32)
        new, s = jax.lax.fori_loop(0, length, lambda i, c: body(c, t0 + i)[0], (carry, status))
    stop_now = active & ~s.running
    replay = jnp.where(stop_now, s.stop_at - t0, 0)

    def replay_body(c):
        return c[0] + 1, step(c[1], t0 + c[0])[0]

    _, at_stop = jax.lax.while_loop(
        lambda c: c[0] < replay, replay_body, (jnp.zeros((), jnp.int32), carry)
    )
    carry = _where(stop_now, at_stop, _where(active, new, carry))
    return carry, s._replace(step=t0 + length)


def in_blocks(block: Callable, state, count: int, size: int, running: Callable):
    """``count`` steps as blocks of ``size`` (and one shorter block for the rest), exiting early.

    ``block(state, m) -> state`` runs ``m`` steps (a wrapper of :func:`block_steps`); the blocks
    run in a ``while_loop`` that stops once ``running(state)`` is False, under ``vmap`` once it
    is False for every run. ``count`` and ``size`` are static.
    """
    if count == 0:
        return state
    q, r = divmod(count, size)
    if q:

        def body(c):
            return c[0] + 1, block(c[1], size)

        _, state = jax.lax.while_loop(
            lambda c: (c[0] < q) & running(c[1]), body, (jnp.zeros((), jnp.int32), state)
        )
    return block(state, r) if r else state


def run_blocks(
    step: Callable,
    carry,
    lengths,
    *,
    record: Callable | None = None,
    rule: StopRule = DIVERGE_ONLY,
) -> BlockRun:
    """Blocks of ``lengths[i]`` steps (a 1-D integer array, traced), ``record(carry)`` after each.

    The plain schedule of the papers' loops (logs at fixed, possibly geometric, steps). ``log``
    stacks the records along a leading axis (None without ``record``); the records of a frozen
    run repeat its frozen iterate.

    Examples
    --------
    GD on L(x) = 2 x^2 (curvature a = 4): x_t = (1 - 4 eta)^t x_0, stable iff eta < 2/a.

    >>> import jax.numpy as jnp
    >>> from minstab.engine.loop import run_blocks
    >>> def gd(eta):
    ...     return lambda x, t: (x - eta * 4 * x, 2 * x * x)  # (next iterate, loss at x)
    >>> r = run_blocks(gd(0.1), jnp.array(1.0), jnp.array([1, 2]), record=lambda x: x)
    >>> [round(float(v), 6) for v in r.log]  # 0.6, 0.6^3
    [0.6, 0.216]
    >>> r = run_blocks(gd(0.6), jnp.array(1.0), jnp.array([50]))  # |1 - 4 eta| = 1.4
    >>> bool(r.status.diverged), int(r.status.stop_at)  # frozen where 2 x^2 first tops 1e6
    (True, 20)
    """
    dtype = jax.eval_shape(step, carry, jnp.zeros((), jnp.int32))[1].dtype

    def body(c, length):
        c = block_steps(step, *c, length, rule)
        return c, None if record is None else record(c[0])

    lengths = jnp.asarray(lengths, jnp.int32)
    (carry, status), log = jax.lax.scan(body, (carry, new_status(dtype)), lengths)
    return BlockRun(carry, status, log)
