"""Training engine: GD, SGD and optax optimizers as ``lax.scan`` loops with in-loop logging.

Seed 004 §2: GD is ``theta <- theta - eta grad L(theta)`` on the quadratic loss (eq. 19); SGD
uses uniform mini-batches of size B. Every function here is a pure function of arrays whose
step size ``eta`` is a *traced* argument, so ``vmap`` over step sizes (see :mod:`minstab.engine.sweep`)
compiles one program for every value. Optax optimizers go through ``optax.inject_hyperparams``
for the same reason (a learning rate baked into an optax optimizer is a constant). The options
are one static :class:`minstab.engine.config.TrainConfig`; the model and loss one static
:class:`minstab.engine.objective.Objective` (the shallow ReLU net by default, or any ``model``).

The update step runs in the package's one training skeleton, :mod:`minstab.engine.loop` (blocks,
divergence flag, freeze, early exit); per run, inside the loop:

- convergence: the full-batch loss has stayed below ``tol`` for ``patience`` further steps; the
  run then stops changing;
- divergence: the loss is non-finite or above ``diverge_above``; the run is frozen at the last
  parameters and flagged with the step it diverged at;
- logging every ``log_every`` steps into fixed-size arrays: loss, sharpness (closed-form Gram
  form of eq. 28, or warm-started Lanczos on the exact Hessian, eq. 27), optionally the weighted
  curvature of seed 004 eq. (21);
- schedule: seed 004 Fig. 1's "multiply eta by ``boost_factor`` once the loss is below
  ``boost_below``" (sticky).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .._validate import check_key, check_memory, check_positive
from .config import LOG_SHARPNESS_METHODS, OPTIMIZERS, TrainConfig, train_config
from .loop import Status, StopRule, block_steps, in_blocks, new_status
from .objective import Objective
from .problem import builtin

__all__ = [
    "TrainLog",
    "TrainResult",
    "TrainConfig",
    "train",
    "train_run",
    "OPTIMIZERS",
    "LOG_SHARPNESS_METHODS",
]


class TrainLog(NamedTuple):
    """Traces recorded every ``log_every`` steps (fixed length ``steps // log_every``).

    Attributes
    ----------
    step : number of steps taken when the entry was recorded.
    loss : full-batch loss (eq. 19 for the quadratic loss).
    sharpness : lambda_max of the Hessian (NaN when not logged).
    curvature : weighted curvature int |f''| g (eq. 21; NaN when not logged).
    eta : effective step size at that point (after schedules).
    """

    step: jax.Array
    loss: jax.Array
    sharpness: jax.Array
    curvature: jax.Array
    eta: jax.Array


class TrainResult(NamedTuple):
    """Outcome of one run.

    Attributes
    ----------
    params : final (or frozen) parameters (the same pytree as the input).
    loss : final full-batch loss.
    converged : loss stayed below ``tol`` for ``patience`` steps (the run stopped there).
    diverged : loss became non-finite or exceeded ``diverge_above`` (frozen there).
    diverged_at : step at which divergence was detected (-1 if never).
    converged_at : first step of the below-``tol`` streak that converged (-1 if never).
    steps_run : number of parameter updates actually applied.
    log : :class:`TrainLog`.
    """

    params: object
    loss: jax.Array
    converged: jax.Array
    diverged: jax.Array
    diverged_at: jax.Array
    converged_at: jax.Array
    steps_run: jax.Array
    log: TrainLog


class _State(NamedTuple):
    params: object
    opt_state: object
    status: Status  # steps taken, last loss, below-tol streak, stop step, diverged
    boosted: jax.Array
    vec: jax.Array  # warm-start vector for Lanczos
    key: jax.Array


class _Loop(NamedTuple):
    """Everything a step needs besides the state (closed over by the loop bodies)."""

    obj: Objective
    cfg: TrainConfig
    opt: object  # optax GradientTransformation (None: plain GD)
    x: jax.Array
    y: jax.Array
    eta: jax.Array
    sequential: bool  # one run per program (not vmapped): flat carry, unrolled steps
    start: jax.Array  # fixed dense unit start vector of the trackers (empty without one)


def _optimizer(cfg: TrainConfig, eta):
    if cfg.plain_gd:
        return None
    import optax

    return optax.inject_hyperparams(cfg.optimizer_factory())(learning_rate=eta)


def _eta(lp: _Loop, state: _State):
    if lp.cfg.boost_factor == 1.0:
        return lp.eta
    return jnp.where(state.boosted, lp.eta * lp.cfg.boost_factor, lp.eta)


def _gradient(lp: _Loop, params, key, step):
    """Full-batch loss and the (mini-batch) gradient at ``params``."""
    cfg, n = lp.cfg, lp.x.shape[0]
    if cfg.batch_size is None or cfg.batch_size >= n and not cfg.replace:
        return lp.obj.value_and_grad(params, lp.x, lp.y)
    k = jax.random.fold_in(key, step)
    if cfg.replace:
        idx = jax.random.randint(k, (cfg.batch_size,), 0, n)
    else:
        idx = jax.random.permutation(k, n)[: cfg.batch_size]
    _, g = lp.obj.value_and_grad(params, lp.x[idx], lp.y[idx])
    return lp.obj.value(params, lp.x, lp.y), g


def _update(lp: _Loop, params, opt_state, g, e):
    """New parameters and optimizer state (plain GD, or optax with the step size injected)."""
    if lp.opt is None:
        return jax.tree_util.tree_map(lambda p, gi: p - e * gi, params, g), opt_state
    import optax

    opt_state.hyperparams["learning_rate"] = e
    # optax mixes its int32 step count with float params (adam's bias correction), which strict
    # dtype promotion rejects; the promotion is harmless here.
    with jax.numpy_dtype_promotion("standard"):
        upd, new_opt = lp.opt.update(g, opt_state, params)
    return optax.apply_updates(params, upd), new_opt


def _rule(cfg: TrainConfig) -> StopRule:
    """Diverged above ``diverge_above``; converged below ``tol`` for ``patience`` more steps."""
    return StopRule(cfg.diverge_above, cfg.tol, cfg.patience)


def _block(lp: _Loop, state: _State, m: int) -> _State:
    """Run ``m`` steps through the skeleton (:func:`minstab.engine.loop.block_steps`): exact freeze at a stop.

    A stopped run has step size 0 in the block (and is restored by the skeleton), so a
    non-finite gradient cannot leak into its frozen parameters; ``converged_at``,
    ``diverged_at`` and ``steps_run`` are exact for every block size.
    """
    active = state.status.running
    e = jnp.where(active, _eta(lp, state), 0)
    advance, carry0, unpack = _stepper(lp, state, e)
    # a run alone in its program: two steps per loop iteration halve the loop's overhead
    carry, status = block_steps(
        advance, carry0, state.status, m, _rule(lp.cfg), unroll=2 if lp.sequential else 1
    )
    params, opt_state = unpack(carry)
    boosted = state.boosted
    if lp.cfg.boost_factor != 1.0:  # blocks of one step (see _block_size): status.loss is loss 0
        boosted = boosted | (active & (status.loss < lp.cfg.boost_below))
    return state._replace(params=params, opt_state=opt_state, status=status, boosted=boosted)


def _stepper(lp: _Loop, state: _State, e):
    """``advance(carry, step) -> (carry, loss)`` for the step loop, its start and its unpacking.

    Plain GD in a run's own program carries the flat parameter vector (``ravel_pytree``):
    the update is then one fused pass over one buffer, where a pytree carry makes XLA copy
    every leaf at each step (the update of w1 reads the old w2 and vice versa). Measured on
    n = 20, k = 100 (and n = 8, k = 16): 1.2x (1.3x) the steps per second, 1.4x (1.7x) with
    the 2-step unrolling of :func:`_block`. Under ``vmap`` both carries are alike.
    """
    if lp.sequential and lp.opt is None:
        theta0, unravel = ravel_pytree(state.params)

        def advance_flat(theta, step):
            loss, g = _gradient(lp, unravel(theta), state.key, step)
            return theta - e * ravel_pytree(g)[0], loss

        return advance_flat, theta0, lambda theta: (unravel(theta), state.opt_state)

    def advance(carry, step):
        loss, g = _gradient(lp, carry[0], state.key, step)
        return _update(lp, *carry, g, e), loss

    return advance, (state.params, state.opt_state), lambda carry: carry


def _block_size(cfg: TrainConfig, count: int) -> int:
    """Steps per block for ``count`` steps (>= 1).

    ``check_every``, else the largest divisor of ``count`` in [16, 64] (one block program, no
    remainder block to compile), else 64.
    """
    # the boost schedule changes eta at the step where the loss first falls below a level,
    # which a block of more than one step would only see at its end
    if cfg.boost_factor != 1.0:
        return 1
    if cfg.check_every:
        return max(1, min(count, cfg.check_every))
    divisors = [m for m in range(_CHECK_EVERY, 15, -1) if count % m == 0]
    return min(count, divisors[0] if divisors else _CHECK_EVERY)


_CHECK_EVERY = 64


def _advance(lp: _Loop, state: _State, count: int) -> _State:
    """``count`` steps as blocks; a stopped run (a batch whose runs all stopped) exits early."""
    return in_blocks(
        functools.partial(_block, lp), state, count, _block_size(lp.cfg, count),
        lambda s: s.status.running,
    )  # fmt: skip


def _record(lp: _Loop, state: _State):
    """The log entry at the current state (and the next Lanczos warm start)."""
    cfg, x, y = lp.cfg, lp.x, lp.y
    dtype, diverged = state.status.loss.dtype, state.status.diverged
    nan = jnp.array(jnp.nan, dtype)
    loss = lp.obj.value(state.params, x, y)
    s, vec = _TRACKERS.get(_log_method(lp), _track_solver)(lp, state)
    c = nan
    if cfg.log_curvature:
        c = jnp.where(diverged, nan, builtin().curvature(state.params, x))
    return state._replace(vec=vec), TrainLog(state.status.step, loss, s, c, _eta(lp, state))


def _track_none(lp: _Loop, state: _State):
    """No sharpness logged (NaN), the warm start kept."""
    return jnp.array(jnp.nan, state.status.loss.dtype), state.vec


def _track_power(lp: _Loop, state: _State):
    """One HVP per log point: power iteration continued across log points.

    On the slowly changing Hessian; the Rayleigh quotient v^T H v of a unit v is <= lambda_max
    always.
    """
    nan = jnp.array(jnp.nan, state.status.loss.dtype)
    v = _warm_start(lp, state, mix=1e-4)
    v = v / jnp.linalg.norm(v)
    w = lp.obj.hvp_flat(v, state.params, lp.x, lp.y)
    norm = jnp.linalg.norm(w)
    s = jnp.where(state.status.diverged, nan, jnp.vdot(v, w))
    ok = jnp.isfinite(norm) & (norm > 0)
    return s, jnp.where(ok, w / jnp.where(ok, norm, 1), state.vec)


def _track_solver(lp: _Loop, state: _State):
    """The objective's sharpness by a solver of the sharpness table (gram, lanczos, ...).

    Stops on the residual: residual <= tol lambda puts the Ritz value within tol lambda of an
    eigenvalue. Not on the estimated eigenvalue error r^2 / (Ritz gap) (``value_tol``): at the
    edge of stability several eigenvalues cluster near 2/eta, a few Krylov steps from the
    previous top eigenvector do not resolve the cluster, the Ritz gap is then too large and
    Lanczos stopped on a lower eigenvalue: on the full `reproduce eos` run (eta 0.15, 5 000
    images) 6 of 151 log points came out up to 4.3 % low (2026-12-06).
    """
    method, dtype = _log_method(lp), state.status.loss.dtype
    tol = float(np.finfo(dtype).eps) ** 0.5 * 1e-2
    v0 = None if method == "gram" else _warm_start(lp, state, mix=1e-3)
    value, vector, _ = lp.obj.sharpness(state.params, lp.x, lp.y, v0, method=method,
                                        num_iters=lp.cfg.lanczos_iters, tol=tol)  # fmt: skip
    s = jnp.where(state.status.diverged, jnp.array(jnp.nan, dtype), value)
    if method != "lanczos":
        return s, state.vec
    ok = jnp.all(jnp.isfinite(vector)) & jnp.isfinite(value)  # warm-starts the next log point
    return s, jnp.where(ok, vector, state.vec)


def _preconditioned_sharpness(lp: _Loop, state: _State):
    """lambda_max(D^{-1/2} H D^{-1/2}) at the optimizer's current D, and the next warm start.

    D is read from the optax state (:func:`minstab.engine.optimizers.preconditioner_kernel`: Adam's
    sqrt(v_hat) + eps, RMSProp's, or a fixed one); each Lanczos product is one HVP between two
    elementwise scalings by D^{-1/2}, with the stopping rule of the plain tracker.
    """
    from .eigen import lanczos
    from .optimizers import inverse_sqrt_scale, preconditioned_matvec, preconditioner_kernel

    dtype = state.status.loss.dtype
    scale = inverse_sqrt_scale(preconditioner_kernel(state.opt_state))

    def matvec(v, params, x, y, scale):
        return preconditioned_matvec(lambda u: lp.obj.hvp_flat(u, params, x, y), scale)(v)

    tol = float(np.finfo(dtype).eps) ** 0.5 * 1e-2
    r = lanczos(matvec, _warm_start(lp, state, mix=1e-3), state.params, lp.x, lp.y, scale,
                num_iters=lp.cfg.lanczos_iters, tol=tol)  # fmt: skip
    ok = jnp.all(jnp.isfinite(r.vector)) & jnp.isfinite(r.value)
    s = jnp.where(state.status.diverged, jnp.array(jnp.nan, dtype), r.value)
    return s, jnp.where(ok, r.vector, state.vec)


#: the in-loop sharpness trackers by log method; every other method is a solver of the
#: sharpness table (:func:`_track_solver`)
_TRACKERS = {
    "none": _track_none, "preconditioned": _preconditioned_sharpness, "power": _track_power,
}  # fmt: skip


def _warm_start(lp: _Loop, state: _State, *, mix: float) -> jax.Array:
    """The previous top eigenvector with ``mix`` of the fixed dense start mixed in (not unit).

    From the previous eigenvector alone, Lanczos (and power iteration) explores only the
    invariant subspaces that vector lies in: when the Hessian is (nearly) block diagonal and
    another block's top eigenvalue overtakes, the Krylov space never reaches it and the residual
    stop accepts the old block's top, a lower eigenvalue, as converged (tests/test_train.py:
    2.48 logged where lambda_max is 4.00). Lanczos gets ``mix=1e-3`` of a vector that overlaps
    every eigenvector: its residual stays far above the stop (<= 1e-2 sqrt(eps) lambda) until
    the top is found, at no measurable cost. Power iteration, whose value is the Rayleigh
    quotient of the mixed vector itself, gets 1e-4: the mix lowers that value by ~mix^2
    relative at every log point (1e-6 with 1e-3, seen in tests/test_engine.py).
    """
    return state.vec + mix * lp.start


def _start(obj: Objective, cfg: TrainConfig, params) -> jax.Array:
    """The trackers' fixed start vector (unit norm), or an empty one when nothing is tracked."""
    if _tracker(obj, cfg) not in ("lanczos", "power", "preconditioned"):
        return jnp.zeros(0)
    v = obj.start_vector(params)
    return v / jnp.linalg.norm(v)


def _tracker(obj: Objective, cfg: TrainConfig) -> str:
    return obj.log_method(cfg) if cfg.log_every > 0 else "none"


def _log_method(lp: _Loop) -> str:
    return _tracker(lp.obj, lp.cfg)


def _logged_loop(lp: _Loop, state: _State):
    """Log intervals in a while loop that exits once the run is frozen (converged or diverged).

    Under ``vmap`` it exits when every run of the batch is. The log entries after the exit
    repeat the frozen state's values.
    """
    cfg = lp.cfg
    num_logs = cfg.steps // cfg.log_every
    _, proto = jax.eval_shape(functools.partial(_record, lp), state)
    log0 = jax.tree_util.tree_map(lambda a: jnp.zeros((num_logs,) + a.shape, a.dtype), proto)

    def cond(carry):
        state, i, _ = carry
        return (i < num_logs) & state.status.running

    def body(carry):
        state, i, log = carry
        state, entry = _record(lp, _advance(lp, state, cfg.log_every))
        log = jax.tree_util.tree_map(lambda a, e: a.at[i].set(e), log, entry)
        return state, i + 1, log

    state, done, log = jax.lax.while_loop(cond, body, (state, jnp.zeros((), jnp.int32), log0))
    state, last = _record(lp, state)
    j = jnp.arange(num_logs, dtype=jnp.int32)
    fill = j >= done
    log = jax.tree_util.tree_map(
        lambda a, e: jnp.where(fill, jnp.broadcast_to(e, a.shape), a), log, last
    )
    log = log._replace(step=jnp.where(fill, (j + 1) * cfg.log_every, log.step).astype(jnp.int32))
    return _advance(lp, state, cfg.steps - num_logs * cfg.log_every), log


def _init_state(lp: _Loop, params, key) -> _State:
    opt_state = ()
    if lp.opt is not None:
        with jax.numpy_dtype_promotion("standard"):
            opt_state = lp.opt.init(params)
    return _State(
        params=params,
        opt_state=opt_state,
        status=new_status(lp.eta.dtype),  # its loss is set by the first block
        boosted=jnp.zeros((), bool),
        # Lanczos's warm start (the log of a closed-form Gram needs none)
        vec=lp.start,
        key=key,
    )


def _finish(lp: _Loop, state: _State, log: TrainLog) -> TrainResult:
    cfg, st = lp.cfg, state.status
    stopped = ~st.running
    converged = stopped & ~st.diverged
    # the stored loss is the one at the frozen/final parameters
    final_loss = lp.obj.value(state.params, lp.x, lp.y)
    final_loss = jnp.where(st.diverged, st.loss, final_loss)
    # with patience, a run still inside its window at the end is not (yet) certified converged
    conv = converged | (~st.diverged & (final_loss < cfg.tol) & (cfg.patience == 0))
    conv_at = jnp.where(
        converged, st.stop_at - cfg.patience, jnp.where(conv, st.step - st.below + 1, -1)
    )
    return TrainResult(
        state.params, final_loss, conv, st.diverged,
        jnp.where(st.diverged, st.stop_at, -1).astype(jnp.int32), conv_at.astype(jnp.int32),
        jnp.where(stopped, st.stop_at, st.step).astype(jnp.int32), log,
    )  # fmt: skip


_SHALLOW = Objective()


def train_run(
    params,
    x,
    y,
    eta,
    key,
    *,
    config: TrainConfig,
    objective: Objective = _SHALLOW,
    sequential: bool = False,
) -> TrainResult:
    """One run, traceable (``jit``/``vmap`` over ``eta``, ``key``, ``params``); no input checks.

    The kernel behind :func:`train` and :func:`minstab.sweep`: ``x`` as (n, d) for the shallow
    net, ``eta`` a scalar of the params dtype. ``sequential=True`` says the run has its program
    (or ``lax.map`` iteration) to itself, not a ``vmap`` batch: the step loop then carries a
    flat parameter vector and takes two steps per iteration (same arithmetic, faster on CPU).
    """
    eta = jnp.asarray(eta, jnp.result_type(jax.tree_util.tree_leaves(params)[0]))
    start = _start(objective, config, params)  # computed once, not at every log point
    lp = _Loop(objective, config, _optimizer(config, eta), x, y, eta, sequential, start)
    state = _init_state(lp, params, key)
    if config.log_every > 0:
        state, log = _logged_loop(lp, state)
    else:
        state = _advance(lp, state, config.steps)
        empty = jnp.zeros((0,), eta.dtype)
        log = TrainLog(jnp.zeros((0,), jnp.int32), empty, empty, empty, empty)
    return _finish(lp, state, log)


_train_jit = jax.jit(
    functools.partial(train_run, sequential=True), static_argnames=("config", "objective")
)


def check_run_size(cfg: TrainConfig, n: int, dtype, runs: int = 1) -> None:
    """Refuse a log that cannot fit in memory, or a mini-batch larger than the data."""
    if cfg.batch_size is not None and cfg.batch_size > n and not cfg.replace:
        raise ValueError(
            f"batch_size must be at most n = {n} without replacement, got {cfg.batch_size}"
        )
    points = cfg.steps // cfg.log_every if cfg.log_every else 0
    nbytes = float(runs) * points * 8 * jnp.dtype(dtype).itemsize  # ~8 logged fields per point
    if points:
        check_memory(nbytes, "log_every", f"{runs} x {points} log points (steps // log_every)")


def train(
    params,
    x: jax.Array,
    y: jax.Array,
    eta,
    *,
    model: Callable | None = None,
    loss: Callable | None = None,
    config: TrainConfig | None = None,
    key: jax.Array | None = None,
    **options,
) -> TrainResult:
    """Train a model from ``params`` with step size ``eta``; GD on the quadratic loss by default.

    GD (``optimizer="gd"``, ``batch_size=None``): ``theta <- theta - eta grad L(theta)``, the
    iteration whose stable minima satisfy ``sharpness <= 2/eta`` (seed 004 Lemma 1). With
    ``batch_size=B`` the gradient is that of a uniform mini-batch, drawn inside the loop from
    ``fold_in(key, step)``, with or without replacement (SGD of seed 004 §2). Other optimizers
    are optax factories with ``eta`` injected (:class:`minstab.engine.config.TrainConfig`).

    Parameters
    ----------
    params : initial parameters: a :class:`minstab.ShallowParams` (``model=None``) or any
        pytree of floating arrays that ``model`` takes.
    x, y : training data (for the shallow net x of shape (n,) or (n, d)).
    eta : step size (a traced scalar: new values never recompile).
    model : ``apply(params, x) -> predictions`` (pure); None for the shallow ReLU net, whose
        closed-form gradient is then used.
    loss : ``loss(pred, y) -> scalar``; None for the quadratic loss (1/2n) sum r^2.
    config : a :class:`minstab.engine.config.TrainConfig`; keyword ``options`` (``steps=...``,
        ``tol=...``, ``log_every=...``, ``optimizer=...``, ``batch_size=...``, ...: its fields)
        build one or replace its fields.
    key : PRNG key for SGD batches (default ``key(0)``).

    Returns
    -------
    TrainResult

    Examples
    --------
    >>> import jax, jax.numpy as jnp, minstab as ms
    >>> x, y = ms.data.toy_1d(n=6, key=jax.random.key(0))
    >>> p = ms.init_shallow(jax.random.key(1), 1, 16, knot_range=(-1.5, 1.5))
    >>> r = ms.train(p, x, y, 0.05, steps=100, log_every=50)
    >>> r.log.loss.shape
    (2,)
    """
    cfg = train_config(config, **options)
    obj = Objective.of(model, loss, cfg)
    x, y, dtype = obj.check(params, x, y)
    check_positive(eta, "eta")
    if jnp.ndim(eta) != 0:
        raise ValueError(f"eta must be a scalar, got shape {jnp.shape(eta)}")
    check_run_size(cfg, x.shape[0], dtype)
    key = jax.random.key(0) if key is None else check_key(key)
    return _train_jit(params, x, y, jnp.asarray(eta, dtype), key, config=cfg, objective=obj)
