"""Training engine: GD, SGD and optax optimizers as ``lax.scan`` loops with in-loop logging.

Seed 004 §2: GD is ``theta <- theta - eta grad L(theta)`` on the quadratic loss (eq. 19); SGD
uses uniform mini-batches of size B. Every function here is a pure function of arrays whose
step size ``eta`` is a *traced* argument, so ``vmap`` over step sizes (see :mod:`minstab.sweep`)
compiles one program for every value. Optax optimizers go through ``optax.inject_hyperparams``
for the same reason (a learning rate baked into an optax optimizer is a constant). The options
are one static :class:`minstab.config.TrainConfig`; the model and loss one static
:class:`minstab.engine.Objective` (the shallow ReLU net by default, or any ``model``).

Per run, inside the loop:

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

from ._validate import check_positive
from .config import LOG_SHARPNESS_METHODS, OPTIMIZERS, TrainConfig, train_config
from .engine import Objective

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
    step: jax.Array
    loss: jax.Array
    converged: jax.Array
    diverged: jax.Array
    diverged_at: jax.Array
    converged_at: jax.Array
    steps_run: jax.Array
    boosted: jax.Array
    below: jax.Array  # consecutive steps with loss < tol
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


def _where(mask, new, old):
    return jax.tree_util.tree_map(lambda a, b: jnp.where(mask, a, b), new, old)


def _optimizer(cfg: TrainConfig, eta):
    if cfg.plain_gd:
        return None
    import optax

    return optax.inject_hyperparams(cfg.optimizer_factory())(learning_rate=eta)


def _eta(lp: _Loop, state: _State):
    if lp.cfg.boost_factor == 1.0:
        return lp.eta
    return jnp.where(state.boosted, lp.eta * lp.cfg.boost_factor, lp.eta)


def _gradient(lp: _Loop, state: _State):
    """Full-batch loss and the (mini-batch) gradient at the current parameters."""
    cfg, n = lp.cfg, lp.x.shape[0]
    if cfg.batch_size is None or cfg.batch_size >= n and not cfg.replace:
        return lp.obj.value_and_grad(state.params, lp.x, lp.y)
    k = jax.random.fold_in(state.key, state.step)
    if cfg.replace:
        idx = jax.random.randint(k, (cfg.batch_size,), 0, n)
    else:
        idx = jax.random.permutation(k, n)[: cfg.batch_size]
    _, g = lp.obj.value_and_grad(state.params, lp.x[idx], lp.y[idx])
    return lp.obj.value(state.params, lp.x, lp.y), g


def _update(lp: _Loop, state: _State, g, e):
    """New parameters and optimizer state (plain GD, or optax with the step size injected)."""
    if lp.opt is None:
        return jax.tree_util.tree_map(lambda p, gi: p - e * gi, state.params, g), state.opt_state
    import optax

    ostate = state.opt_state
    ostate.hyperparams["learning_rate"] = e
    # optax mixes its int32 step count with float params (adam's bias correction), which strict
    # dtype promotion rejects; the promotion is harmless here.
    with jax.numpy_dtype_promotion("standard"):
        upd, new_opt = lp.opt.update(g, ostate, state.params)
    return optax.apply_updates(state.params, upd), new_opt


def _step(lp: _Loop, state: _State, _):
    """One iteration with the convergence / divergence bookkeeping of the module docstring."""
    cfg = lp.cfg
    active = ~(state.converged | state.diverged)
    e = _eta(lp, state)
    loss, g = _gradient(lp, state)
    bad = ~jnp.isfinite(loss) | (loss > cfg.diverge_above)
    small = jnp.isfinite(loss) & (loss < cfg.tol)
    below = jnp.where(small, state.below + 1, 0)
    # converged once the loss has stayed below tol for `patience` further steps: a minimum
    # sharper than 2/eta is left within a few hundred steps from rounding errors alone, so it
    # is not mistaken for a stable one (Lemma 1)
    conv = small & (below > cfg.patience)
    newly_div = active & bad
    newly_conv = active & conv & ~bad
    move = active & ~bad & ~conv
    new_params, new_opt = _update(lp, state, g, e)
    boosted = state.boosted
    if cfg.boost_factor != 1.0:
        boosted = boosted | (active & (loss < cfg.boost_below))
    state = state._replace(
        params=_where(move, new_params, state.params),
        opt_state=_where(move, new_opt, state.opt_state),
        step=state.step + 1,
        loss=jnp.where(active, loss, state.loss),
        converged=state.converged | newly_conv,
        diverged=state.diverged | newly_div,
        diverged_at=jnp.where(newly_div, state.step, state.diverged_at),
        converged_at=jnp.where(newly_conv, state.step - cfg.patience, state.converged_at),
        below=jnp.where(active, below, state.below),
        steps_run=state.steps_run + move.astype(jnp.int32),
        boosted=boosted,
    )
    return state, None


def _run_steps(lp: _Loop, state: _State, m: int) -> _State:
    if m == 0:
        return state
    return jax.lax.scan(functools.partial(_step, lp), state, None, length=m)[0]


def _record(lp: _Loop, state: _State):
    """The log entry at the current state (and the next Lanczos warm start)."""
    cfg, x, y = lp.cfg, lp.x, lp.y
    dtype = state.loss.dtype
    nan = jnp.array(jnp.nan, dtype)
    loss = lp.obj.value(state.params, x, y)
    method = lp.obj.log_method(cfg)
    vec, s = state.vec, nan
    if method != "none":
        tol = float(np.finfo(dtype).eps) ** 0.5 * 1e-2
        value, vector, _ = lp.obj.sharpness(
            state.params, x, y, state.vec, method=method, num_iters=cfg.lanczos_iters, tol=tol
        )
        ok = jnp.all(jnp.isfinite(vector)) & jnp.isfinite(value)
        s = jnp.where(state.diverged, nan, value)
        vec = jnp.where(ok, vector, state.vec)  # warm start for the next log point
    c = nan
    if cfg.log_curvature:
        from .bounds import weighted_curvature

        c = jnp.where(state.diverged, nan, weighted_curvature(state.params, x))
    return state._replace(vec=vec), TrainLog(state.step, loss, s, c, _eta(lp, state))


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
        return (i < num_logs) & ~(state.converged | state.diverged)

    def body(carry):
        state, i, log = carry
        state, entry = _record(lp, _run_steps(lp, state, cfg.log_every))
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
    return _run_steps(lp, state, cfg.steps - num_logs * cfg.log_every), log


def _init_state(lp: _Loop, params, key) -> _State:
    opt_state = ()
    if lp.opt is not None:
        with jax.numpy_dtype_promotion("standard"):
            opt_state = lp.opt.init(params)
    i32 = functools.partial(jnp.full, (), dtype=jnp.int32)
    return _State(
        params=params,
        opt_state=opt_state,
        step=i32(0),
        loss=lp.obj.value(params, lp.x, lp.y),
        converged=jnp.zeros((), bool),
        diverged=jnp.zeros((), bool),
        diverged_at=i32(-1),
        converged_at=i32(-1),
        steps_run=i32(0),
        boosted=jnp.zeros((), bool),
        below=i32(0),
        vec=lp.obj.start_vector(params),
        key=key,
    )


def _finish(lp: _Loop, state: _State, log: TrainLog) -> TrainResult:
    # the stored loss is the one at the frozen/final parameters
    final_loss = lp.obj.value(state.params, lp.x, lp.y)
    final_loss = jnp.where(state.diverged, state.loss, final_loss)
    # with patience, a run still inside its window at the end is not (yet) certified converged
    conv = state.converged | (~state.diverged & (final_loss < lp.cfg.tol) & (lp.cfg.patience == 0))
    conv_at = jnp.where(
        state.converged, state.converged_at, jnp.where(conv, state.step - state.below + 1, -1)
    )
    return TrainResult(
        state.params, final_loss, conv, state.diverged, state.diverged_at,
        conv_at.astype(jnp.int32), state.steps_run, log,
    )  # fmt: skip


_SHALLOW = Objective()


def train_run(
    params, x, y, eta, key, *, config: TrainConfig, objective: Objective = _SHALLOW
) -> TrainResult:
    """One run, traceable (``jit``/``vmap`` over ``eta``, ``key``, ``params``); no input checks.

    The kernel behind :func:`train` and :func:`minstab.sweep`: ``x`` as (n, d) for the shallow
    net, ``eta`` a scalar of the params dtype.
    """
    eta = jnp.asarray(eta, jnp.result_type(jax.tree_util.tree_leaves(params)[0]))
    lp = _Loop(objective, config, _optimizer(config, eta), x, y, eta)
    state = _init_state(lp, params, key)
    if config.log_every > 0:
        state, log = _logged_loop(lp, state)
    else:
        state = _run_steps(lp, state, config.steps)
        empty = jnp.zeros((0,), eta.dtype)
        log = TrainLog(jnp.zeros((0,), jnp.int32), empty, empty, empty, empty)
    return _finish(lp, state, log)


_train_jit = jax.jit(train_run, static_argnames=("config", "objective"))


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
    are optax factories with ``eta`` injected (:class:`minstab.config.TrainConfig`).

    Parameters
    ----------
    params : initial parameters: a :class:`minstab.ShallowParams` (``model=None``) or any
        pytree of floating arrays that ``model`` takes.
    x, y : training data (for the shallow net x of shape (n,) or (n, d)).
    eta : step size (a traced scalar: new values never recompile).
    model : ``apply(params, x) -> predictions`` (pure); None for the shallow ReLU net, whose
        closed-form gradient is then used.
    loss : ``loss(pred, y) -> scalar``; None for the quadratic loss (1/2n) sum r^2.
    config : a :class:`minstab.config.TrainConfig`; keyword ``options`` (``steps=...``,
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
    key = jax.random.key(0) if key is None else key
    return _train_jit(params, x, y, jnp.asarray(eta, dtype), key, config=cfg, objective=obj)
