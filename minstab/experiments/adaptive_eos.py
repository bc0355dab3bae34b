"""The adaptive edge of stability: full-batch Adam, a frozen preconditioner, and heavy ball (issue 33).

Cohen et al., "Adaptive Gradient Methods at the Edge of Stability" (2022): trained full-batch,
Adam's *preconditioned* sharpness lambda_max(D^{-1} H), D = diag(sqrt(v_hat) + eps) at the
current step, rises to the stability threshold of Adam with a frozen D, (2 + 2 b1)/(eta (1 - b1))
= 38/eta at b1 = 0.9 (:func:`minstab.stability_threshold`), and hovers there while the plain
sharpness lambda_max(H) keeps rising. The same mechanism as GD's edge (``minstab reproduce
eos``), with the threshold of the optimizer that runs.

Protocol, on the ``reproduce eos`` problem (:mod:`minstab.experiments.eos`: a tanh MLP 784-h-h-10,
weights N(0, 1/fan_in), the quadratic loss on one-hot targets, the first ``n`` Fashion-MNIST
training images; one initialization per seed, shared by every run of that seed):

* **Adam** (optax ``adam``, b1 = 0.9, b2 = 0.999, eps = 1e-8) at each of ``adam_etas``, for
  ``steps`` steps; every ``log_every`` steps the loss, the plain sharpness (Lanczos on H) and the
  preconditioned sharpness at the current D (Lanczos on D^{-1/2} H D^{-1/2},
  :func:`minstab.engine.optimizers.preconditioner_kernel`), both warm-started from their previous
  eigenvector. Threshold 38/eta.
* **Frozen preconditioner**: at step ``steps // 2`` of each Adam run, D and the parameters are
  frozen and training continues for ``steps // 2`` steps with preconditioned GD
  ``theta <- theta - eta_f D^{-1} grad L`` (:func:`minstab.preconditioned_gd` through
  :func:`minstab.train`, ``log_sharpness="preconditioned"``), whose threshold is 2/eta_f on the
  same preconditioned sharpness. ``eta_f = eta (1 - b1)/(1 + b1)``: the step whose GD threshold
  equals Adam's at the freeze (2/eta_f = 38/eta). Protocol note: at Adam's own eta the
  preconditioned sharpness at the freeze is ~19 x 2/eta and preconditioned GD diverges at once
  (measured on the quick problem, freezing at step 10 and at step 100: loss 2e6 then NaN); the
  ``frozen_same_eta`` runs record that prediction of the threshold for every Adam run
  (``frozen_probe_steps`` steps at eta itself).
* **Heavy ball** (optax ``sgd(momentum=0.9)``) at each of ``momentum_etas``, plain sharpness by
  warm-started Lanczos (:func:`minstab.train`, ``log_sharpness="lanczos"``); threshold
  (2 + 2 beta)/eta = 3.8/eta.

Verdicts (per seed; reproduced when shown on >= 75 % of at least ``min_seeds`` seeds), with the
criteria of the issue, fixed before any run: a run *reaches* its threshold when a logged value is
>= ``reach`` (0.9) x threshold; it *hovers* when, from the first reach on, >= ``min_in_band``
(70 %) of the logged values lie in ``band`` ([0.9, 1.1]) x threshold. A seed shows a family's
statement when every run of the family reaches and hovers.

* ``adam_at_adaptive_edge``: Adam's preconditioned sharpness rises to 38/eta and hovers;
* ``adam_plain_sharpness_keeps_rising``: in every Adam run that reached, the median plain
  sharpness of the last tenth of the log exceeds ``rise_factor`` (1.1) x its value at the
  first reach (not judged on a seed where no run reached);
* ``frozen_at_gd_edge``: preconditioned GD with D frozen hovers at 2/eta_f;
* ``frozen_same_eta_leaves``: at Adam's own eta, preconditioned GD with the frozen D diverges or
  its loss rises above 10 x the loss at the freeze within ``frozen_probe_steps`` steps;
* ``momentum_at_edge``: heavy ball's sharpness rises to 3.8/eta and hovers.

Checks (must hold on every run if the code is right; a false one exits 1):

* ``thresholds_are_companion_edges``: for each optimizer of the protocol, the spectral radius of
  its companion matrix on a 1-D quadratic, written out here, is <= 1 at 0.999 x the threshold
  and > 1 at 1.001 x (numpy ``eigvals``, independent of :func:`minstab.stability_threshold`);
* ``preconditioner_reproduces_adam_step``: at the freeze of every Adam run, optax's Adam update
  equals -eta m_hat / D with D = :func:`minstab.adam_preconditioner` of the state (relative
  error <= ``step_rtol``);
* ``tracker_matches_cold_lanczos``: the last logged plain and preconditioned sharpness of every
  Adam run equal a cold-start :func:`minstab.sharpness` / :func:`minstab.preconditioned_sharpness`
  at the final parameters and D (relative difference <= ``tracker_rtol``).

Outputs: ``adaptive_eos.json`` (config, per-run traces and summaries, checks, verdicts),
``adaptive_eos.png``/``.pdf`` (sharpness / threshold vs step for the three families) and
``seeds/seed_<s>.json``, each seed's traces as soon as it finishes: a rerun with the same
options (``--out`` the same directory) reads finished seeds back and trains only the others
(the default size takes about 36 min per seed on a 2-core CPU).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._cli_args import eta_list
from .base import option, seed_count, seed_tuple
from .outcomes import check, verdict

__all__ = ["Config", "Trace", "Result", "run", "run_seed", "outcomes", "summarize", "table", "plot",
           "to_json"]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Config:
    """Options of ``minstab reproduce adaptive-eos`` (defaults: the ``reproduce eos`` MLP)."""

    n: int = option(5000, "Fashion-MNIST training images")
    hidden: int = option(200, "width of both hidden layers")
    steps: int = option(3000, "steps per run (Adam, heavy ball)")
    log_every: int = option(20, "steps between sharpness logs")
    seeds: tuple[int, ...] = option(
        (0, 1, 2, 3), "the seeds, given as their number N (seeds 0..N-1)"
    )
    dtype: str = option("float32", "floating precision", choices=("float32", "float64"))
    adam_etas: tuple[float, ...] = option((1e-3, 2e-3, 4e-3), "Adam step sizes, comma-separated",
                                          type=eta_list)  # fmt: skip
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    momentum_etas: tuple[float, ...] = option((0.1, 0.2, 0.3), "heavy-ball step sizes",
                                              type=eta_list)  # fmt: skip
    beta: float = 0.9
    frozen_probe_steps: int = 100
    lanczos_iters: int | None = None
    # verdict criteria (issue 33), in units of each run's threshold
    reach: float = 0.9
    band: tuple[float, float] = (0.9, 1.1)
    min_in_band: float = 0.7
    rise_factor: float = 1.1
    min_seeds: int = 4
    # check tolerances
    step_rtol: float = 1e-4
    tracker_rtol: float = 2e-3

    def __post_init__(self):
        object.__setattr__(self, "seeds", seed_tuple(self.seeds))
        if self.log_every < 1:  # a sharpness log every 0 steps is no log: nothing to judge
            raise ValueError(f"log_every: expected a positive integer, got {self.log_every}")
        if self.log_every > self.steps // 2:
            raise ValueError(f"log_every: expected at most half of steps ({self.steps}), "
                             f"got {self.log_every}")  # fmt: skip
        if self.n > 60000:
            raise ValueError(f"n: expected at most 60000 (the training split), got {self.n}")

    @classmethod
    def quick(cls, **kw) -> Config:
        """256 images, width 32, 400 steps, one seed, two step sizes per family (CI)."""
        base = dict(n=256, hidden=32, steps=400, log_every=10, seeds=(0,),
                    adam_etas=(2e-3, 4e-3), momentum_etas=(0.2, 0.3), frozen_probe_steps=50)  # fmt: skip
        base.update(kw)
        return cls(**base)

    @property
    def freeze_at(self) -> int:
        """The step at which D is frozen: half the budget, on a log point."""
        return max(1, (self.steps // 2) // self.log_every) * self.log_every

    def frozen_eta(self, eta: float) -> float:
        """eta (1 - b1)/(1 + b1): preconditioned GD's threshold 2/eta_f equals Adam's at eta."""
        return eta * (1 - self.b1) / (1 + self.b1)


NAME = "adaptive_eos"
CONFIG_TYPES = {"seeds": seed_count(), "adam_etas": eta_list, "momentum_etas": eta_list}


def progress_total(config: Config) -> int:
    """One tick per (seed, Adam step size) and per (seed, heavy-ball step size)."""
    return len(config.seeds) * (len(config.adam_etas) + len(config.momentum_etas))


class Trace(NamedTuple):
    """One run's log. ``sharpness`` is the quantity compared with ``threshold``."""

    family: str  # "adam", "frozen", "frozen_same_eta" or "momentum"
    seed: int
    eta: float
    threshold: float
    step: np.ndarray
    loss: np.ndarray
    sharpness: np.ndarray  # preconditioned (adam, frozen) or plain (momentum)
    plain: np.ndarray  # plain sharpness (adam; NaN otherwise)
    diverged: bool
    wall_s: float


class Result(NamedTuple):
    config: Config
    traces: list
    checks_data: dict  # per Adam run: step error, tracker errors
    data_info: dict
    wall_s: float


# --------------------------------------------------------------------------- Adam with both trackers
class _AdamOptions(NamedTuple):
    """The static settings of :func:`_adam_kernel` (hashable: one compilation per setting)."""

    b1: float
    b2: float
    eps: float
    steps: int
    every: int  # log every ``every`` steps
    freeze: int  # the step whose state is returned (the freeze)
    iters: int | None  # Lanczos iterations (None: the default)


def _recorder(x, y, start, iters, tol):
    """``(params, adam_state, vp, vq) -> (loss, plain, preconditioned)``, warm-started Lanczos."""
    from ..engine.eigen import lanczos
    from ..engine.losses import squared_error
    from ..engine.operators import hessian_operator
    from ..engine.optimizers import inverse_sqrt_scale, preconditioned_matvec, preconditioner_kernel
    from .eos import mlp

    def record(p, st, vp, vq):
        _, mv = hessian_operator(p, x, y, model=mlp, loss=squared_error)
        # warm starts with 1e-3 of a fixed dense vector mixed in (minstab.engine.train._warm_start)
        r1 = lanczos(mv, vp + 1e-3 * start, num_iters=iters, tol=tol)
        scale = inverse_sqrt_scale(preconditioner_kernel(st))
        r2 = lanczos(preconditioned_matvec(mv, scale), vq + 1e-3 * start, num_iters=iters, tol=tol)
        return squared_error(mlp(p, x), y), r1, r2

    return record


def _step_error(opt, grad_fn, params, state, eta, b1):
    """Relative error of -eta m_hat / D (D of the updated state) against optax's next step."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    from ..engine.optimizers import preconditioner_kernel

    with jax.numpy_dtype_promotion("standard"):
        u, s_next = opt.update(grad_fn(params), state, params)
    inner = s_next.inner_state[0]
    count = inner.count.astype(eta.dtype)
    d = preconditioner_kernel(s_next)
    expect = jax.tree_util.tree_map(lambda m, dd: -eta * m / (1 - b1**count) / dd, inner.mu, d)
    num = ravel_pytree(jax.tree_util.tree_map(jnp.subtract, u, expect))[0]
    return jnp.linalg.norm(num) / jnp.linalg.norm(ravel_pytree(u)[0])


def _adam_kernel(params, x, y, eta, opts: _AdamOptions):
    """Adam for ``opts.steps`` steps; both sharpnesses every ``opts.every``; the freeze state."""
    import jax
    import jax.numpy as jnp
    import optax

    from ..engine.losses import squared_error
    from ..engine.operators import default_start
    from ..engine.optimizers import preconditioner_kernel
    from .eos import mlp

    opt = optax.inject_hyperparams(optax.adam)(learning_rate=eta, b1=opts.b1, b2=opts.b2,
                                               eps=opts.eps)  # fmt: skip
    tol = float(np.finfo(eta.dtype).eps) ** 0.5 * 1e-2  # the stop of minstab.engine.train's tracker
    start = default_start(params)
    start = start / jnp.linalg.norm(start)
    grad_fn = jax.grad(lambda p: squared_error(mlp(p, x), y))
    record = _recorder(x, y, start, opts.iters, tol)

    def step(_, carry):
        p, st = carry
        with jax.numpy_dtype_promotion("standard"):
            u, st = opt.update(grad_fn(p), st, p)
        return optax.apply_updates(p, u), st

    def interval(carry, i):
        p, st, vp, vq, frozen = carry
        p, st = jax.lax.fori_loop(0, opts.every, step, (p, st))
        loss, r1, r2 = record(p, st, vp, vq)
        at = (i + 1) * opts.every == opts.freeze
        frozen = jax.tree_util.tree_map(lambda a, b: jnp.where(at, a, b), (p, st), frozen)
        vp = jnp.where(jnp.all(jnp.isfinite(r1.vector)), r1.vector, vp)
        vq = jnp.where(jnp.all(jnp.isfinite(r2.vector)), r2.vector, vq)
        return (p, st, vp, vq, frozen), (loss, r1.value, r2.value)

    with jax.numpy_dtype_promotion("standard"):
        st0 = opt.init(params)
    carry0 = (params, st0, start, start, (params, st0))
    (p, st, _, _, (pf, sf)), (loss, plain, pre) = jax.lax.scan(
        interval, carry0, jnp.arange(opts.steps // opts.every)
    )
    # the freeze step's next update, to check -eta m_hat / D (and D itself)
    step_err = _step_error(opt, grad_fn, pf, sf, eta, opts.b1)
    return dict(params=p, precond=preconditioner_kernel(st), loss=loss, plain=plain,
                preconditioned=pre, freeze_params=pf, freeze_precond=preconditioner_kernel(sf),
                step_err=step_err)  # fmt: skip


@functools.cache
def _adam_jit():
    import jax

    return jax.jit(_adam_kernel, static_argnames=("opts",))


# --------------------------------------------------------------------------- running
def _data(config: Config):
    import jax.numpy as jnp

    from . import eos

    x, y = eos.load_data(eos.Config(n=config.n, dtype=config.dtype))
    return jnp.asarray(x), jnp.asarray(y)


def _init(config: Config, seed: int, dtype):
    import jax

    from .eos import init_mlp

    return init_mlp(jax.random.key(seed), [784, config.hidden, config.hidden, 10], dtype)


def _run_adam(config, params, x, y, eta, seed):
    import jax
    import jax.numpy as jnp

    import minstab as ms

    from .eos import mlp

    t0 = time.perf_counter()
    opts = _AdamOptions(config.b1, config.b2, config.eps, config.steps, config.log_every,
                        config.freeze_at, config.lanczos_iters)  # fmt: skip
    out = _adam_jit()(params, x, y, jnp.asarray(eta, x.dtype), opts)
    out = jax.device_get(out)
    wall = time.perf_counter() - t0
    step = (np.arange(len(out["loss"])) + 1) * config.log_every
    thr = float(ms.stability_threshold("adam", eta, b1=config.b1))
    loss = np.asarray(out["loss"], float)
    trace = Trace("adam", seed, float(eta), thr, step, loss, np.asarray(out["preconditioned"],
                  float), np.asarray(out["plain"], float), bool(not np.isfinite(loss[-1])), wall)  # fmt: skip
    # cold-start references at the final point (the tracker check)
    p, d = out["params"], out["precond"]
    if np.all(np.isfinite(loss)):
        cold_plain = float(ms.sharpness(p, x, y, model=mlp, method="lanczos"))
        cold_pre = float(ms.preconditioned_sharpness(p, x, y, precond=d, model=mlp))
    else:
        cold_plain = cold_pre = float("nan")
    info = dict(
        seed=seed, eta=float(eta), step_err=float(out["step_err"]),
        plain_err=abs(trace.plain[-1] - cold_plain) / abs(cold_plain),
        pre_err=abs(trace.sharpness[-1] - cold_pre) / abs(cold_pre),
    )  # fmt: skip
    return trace, info, (out["freeze_params"], out["freeze_precond"])


def _run_frozen(config, params, precond, x, y, eta, seed, *, family, steps):
    import minstab as ms

    from .eos import mlp

    t0 = time.perf_counter()
    opt = functools.partial(ms.preconditioned_gd, precond=precond)
    r = ms.train(params, x, y, eta, model=mlp, steps=steps, log_every=config.log_every,
                 optimizer=opt, log_sharpness="preconditioned", tol=1e-30,
                 lanczos_iters=config.lanczos_iters)  # fmt: skip
    # the log starts at the freeze: its loss and preconditioned sharpness
    l0 = float(ms.model_loss(mlp)(params, x, y))
    s0 = float(ms.preconditioned_sharpness(params, x, y, precond=precond, model=mlp))
    step = config.freeze_at + np.concatenate([[0], np.asarray(r.log.step)])
    loss = np.concatenate([[l0], np.asarray(r.log.loss, float)])
    sharp = np.concatenate([[s0], np.asarray(r.log.sharpness, float)])
    return Trace(family, seed, float(eta), float(ms.stability_threshold("gd", eta)), step, loss,
                 sharp, np.full(step.shape, np.nan), bool(r.diverged),
                 time.perf_counter() - t0)  # fmt: skip


def _run_momentum(config, params, x, y, eta, seed):
    import minstab as ms

    from .eos import mlp

    t0 = time.perf_counter()
    r = ms.train(params, x, y, eta, model=mlp, steps=config.steps, log_every=config.log_every,
                 optimizer="momentum", momentum=config.beta, log_sharpness="lanczos", tol=1e-30,
                 lanczos_iters=config.lanczos_iters)  # fmt: skip
    step = np.asarray(r.log.step)
    return Trace("momentum", seed, float(eta),
                 float(ms.stability_threshold("momentum", eta, beta=config.beta)), step,
                 np.asarray(r.log.loss, float), np.asarray(r.log.sharpness, float),
                 np.full(step.shape, np.nan), bool(r.diverged), time.perf_counter() - t0)  # fmt: skip


def run_seed(config: Config, seed: int, x, y, *, progress=None) -> tuple[list, list]:
    """One seed's traces (every family and step size) and its Adam runs' check data."""
    p0 = _init(config, seed, x.dtype)
    traces, info = [], []
    for eta in config.adam_etas:
        tr, inf, (pf, df) = _run_adam(config, p0, x, y, eta, seed)
        traces.append(tr)
        info.append(inf)
        rest = config.steps - config.freeze_at
        traces.append(_run_frozen(config, pf, df, x, y, config.frozen_eta(eta), seed,
                                  family="frozen", steps=rest))  # fmt: skip
        probe = min(config.frozen_probe_steps, rest)
        traces.append(_run_frozen(config, pf, df, x, y, eta, seed, family="frozen_same_eta",
                                  steps=probe))  # fmt: skip
        if progress is not None:
            progress.update(1, f"seed {seed} adam {eta:g}")
    for eta in config.momentum_etas:
        traces.append(_run_momentum(config, p0, x, y, eta, seed))
        if progress is not None:
            progress.update(1, f"seed {seed} momentum {eta:g}")
    return traces, info


_TRACE_ARRAYS = ("step", "loss", "sharpness", "plain")


def _seed_json(record) -> dict:
    traces, info = record
    return {"traces": [t._asdict() for t in traces], "adam_runs": info}


def _seed_from_json(d: dict) -> tuple[list, list]:
    """The record :func:`_seed_json` wrote (JSON null, a NaN written by another tool, -> NaN)."""

    def trace(t):
        arrays = {k: np.asarray([np.nan if v is None else v for v in t[k]], float)
                  for k in _TRACE_ARRAYS}  # fmt: skip
        arrays["step"] = arrays["step"].astype(int)
        return Trace(**{**t, **arrays})

    return [trace(t) for t in d["traces"]], list(d["adam_runs"])


def run(config: Config, *, out_dir=None, progress=None) -> Result:
    """Every family, step size and seed (see the module docstring).

    Each seed is written to ``out_dir/seeds/seed_<s>.json`` when it finishes; a rerun with the
    same options reads the finished seeds back instead of training them again.
    """
    import jax

    from .base import resume_seeds, stored_key

    t0 = time.perf_counter()
    if config.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    x, y = _data(config)

    def resumed(seed):
        if progress is not None:
            progress.update(len(config.adam_etas) + len(config.momentum_etas),
                            f"seed {seed} (resumed)")  # fmt: skip

    records = resume_seeds(
        config.seeds, out_dir, lambda seed: run_seed(config, seed, x, y, progress=progress),
        key=lambda seed: stored_key(config, seed), encode=_seed_json, decode=_seed_from_json,
        resumed=resumed,
    )  # fmt: skip
    traces = [t for tr, _ in records for t in tr]
    info = [i for _, inf in records for i in inf]
    p0 = _init(config, config.seeds[0], x.dtype)
    num_params = sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(p0))
    data = dict(n=int(x.shape[0]), d=int(x.shape[1]), classes=10, num_params=num_params,
                dtype=str(x.dtype), dataset="fashion-mnist")  # fmt: skip
    return Result(config, traces, {"adam_runs": info}, data, time.perf_counter() - t0)


# --------------------------------------------------------------------------- measures
class RunSummary(NamedTuple):
    family: str
    seed: int
    eta: float
    threshold: float
    reached_step: int  # first logged step with value >= reach x threshold (-1: never)
    in_band: float  # fraction of logged values in band x threshold from the first reach on
    final_ratio: float  # median of the last tenth of the log / threshold
    plain_at_reach: float  # Adam: plain sharpness at the first reach
    plain_final: float  # Adam: median plain sharpness over the last tenth
    max_loss_ratio: float  # max logged loss / first logged loss (the frozen probes)
    diverged: bool


def summarize(t: Trace, config: Config) -> RunSummary:
    """Plain measures of one trace (no clipping)."""
    v = t.sharpness / t.threshold
    tail = slice(-max(1, len(v) // 10), None)
    hit = np.flatnonzero(v >= config.reach)
    i = int(hit[0]) if hit.size else -1
    lo, hi = config.band
    after = v[i:] if i >= 0 else np.empty(0)
    in_band = float(np.mean((after >= lo) & (after <= hi))) if i >= 0 else float("nan")
    plain_reach = float(t.plain[i]) if i >= 0 else float("nan")
    loss = np.where(np.isfinite(t.loss), t.loss, np.inf)
    return RunSummary(
        t.family, t.seed, t.eta, t.threshold, int(t.step[i]) if i >= 0 else -1, in_band,
        float(np.median(v[tail])), plain_reach, float(np.median(t.plain[tail])),
        float(np.max(loss) / loss[0]) if loss.size else float("nan"), t.diverged,
    )  # fmt: skip


def _hovers(s: RunSummary, config: Config) -> bool:
    return (not s.diverged) and s.reached_step >= 0 and s.in_band >= config.min_in_band


def _family_rows(summaries, family, config, judge):
    rows = []
    for seed in config.seeds:
        runs = [s for s in summaries if s.family == family and s.seed == seed]
        shown = judge(runs)
        rows.append({
            "seed": seed, "shown": shown,
            "runs": [{"eta": s.eta, "reached_step": s.reached_step, "in_band": s.in_band,
                      "final_ratio": s.final_ratio, "diverged": s.diverged,
                      "plain_at_reach": s.plain_at_reach, "plain_final": s.plain_final,
                      "max_loss_ratio": s.max_loss_ratio} for s in runs],
        })  # fmt: skip
    return rows


def _companion(kind: str, a: float, beta: float) -> np.ndarray:
    """One step on L = lambda theta^2 / 2 as a matrix on the optimizer's state (a = eta lambda)."""
    if kind == "gd":
        return np.array([[1 - a]])
    if kind == "momentum":  # t' = g + beta t; theta' = theta - eta t'
        return np.array([[1 - a, -beta], [a, beta]])
    # adam, D frozen at 1: m' = b1 m + (1 - b1) g; theta' = theta - eta m'
    return np.array([[1 - (1 - beta) * a, -beta], [(1 - beta) * a, beta]])


def _threshold_check(c: Config):
    """Each optimizer's threshold against the companion matrices written out above (eta = 1)."""
    import minstab as ms

    rows = []
    for kind, beta, thr in (
        ("gd", 0.0, ms.stability_threshold("gd", 1.0)),
        ("momentum", c.beta, ms.stability_threshold("momentum", 1.0, beta=c.beta)),
        ("adam", c.b1, ms.stability_threshold("adam", 1.0, b1=c.b1)),
    ):
        below = np.max(np.abs(np.linalg.eigvals(_companion(kind, 0.999 * thr, beta))))
        above = np.max(np.abs(np.linalg.eigvals(_companion(kind, 1.001 * thr, beta))))
        rows.append((kind, thr, below, above))
    ok = all(b <= 1 + 1e-12 < a for _, _, b, a in rows)
    return check(
        ok, "; ".join(f"{k}: eta x threshold {t:.4g}, radius {b:.5f} / {a:.5f} at 0.999x / 1.001x"
                      for k, t, b, a in rows), covered=len(rows),
    )  # fmt: skip


def checks(result: Result) -> dict:
    """The three checks of the module docstring."""
    c, info = result.config, result.checks_data["adam_runs"]
    errs = [r["step_err"] for r in info]
    finite = [r for r in info if np.isfinite(r["plain_err"]) and np.isfinite(r["pre_err"])]
    worst = max((max(r["plain_err"], r["pre_err"]) for r in finite), default=float("nan"))
    return {
        "thresholds_are_companion_edges": _threshold_check(c),
        "preconditioner_reproduces_adam_step": check(
            all(e <= c.step_rtol for e in errs),
            f"max relative error of -eta m_hat / D against optax's step {max(errs):.2g} (<= "
            f"{c.step_rtol:g}) over the freeze steps of the Adam runs", covered=len(errs),
        ),
        "tracker_matches_cold_lanczos": check(
            all(max(r["plain_err"], r["pre_err"]) <= c.tracker_rtol for r in finite),
            f"largest relative difference {worst:.2g} (<= {c.tracker_rtol:g}) of the last logged "
            "plain / preconditioned sharpness from a cold-start Lanczos",
            covered=len(finite), eligible=len(info),
            why_none="every Adam run diverged: no final point to compare",
        ),
    }  # fmt: skip


def _judges(c: Config) -> dict:
    """Per family, whether a seed's runs show the statement (None: not judged)."""

    def all_hover(runs):
        return all(_hovers(s, c) for s in runs) if runs else None

    def rises(runs):
        reached = [s for s in runs if s.reached_step >= 0 and not s.diverged]
        if not reached:
            return None
        return all(s.plain_final > c.rise_factor * s.plain_at_reach for s in reached)

    def leaves(runs):
        return all(s.diverged or s.max_loss_ratio > 10 for s in runs) if runs else None

    return {"hover": all_hover, "rises": rises, "leaves": leaves}


def verdicts(result: Result) -> dict:
    """The five verdicts of the module docstring, one row per seed."""
    import minstab as ms

    c = result.config
    summ = [summarize(t, c) for t in result.traces]
    judge = _judges(c)
    crit = (f">= {c.reach} x threshold reached, then >= {c.min_in_band:.0%} of logged values in "
            f"[{c.band[0]}, {c.band[1]}] x threshold, on every step size")  # fmt: skip
    thr_adam = ms.stability_threshold("adam", 1.0, b1=c.b1)
    thr_mom = ms.stability_threshold("momentum", 1.0, beta=c.beta)

    def of(family, how, **kw):
        return verdict(_family_rows(summ, family, c, judge[how]), min_seeds=c.min_seeds, **kw)

    return {
        "adam_at_adaptive_edge": of("adam", "hover", threshold=crit, statement=f"Adam's "
                                    f"preconditioned sharpness rises to {thr_adam:.3g}/eta and "
                                    "hovers there"),
        "adam_plain_sharpness_keeps_rising": of(
            "adam", "rises",
            threshold=f"median plain sharpness of the last tenth > {c.rise_factor} x its value at "
            "the first reach, in every Adam run that reached",
            statement="while Adam hovers at the adaptive edge, the plain sharpness keeps rising",
        ),
        "frozen_at_gd_edge": of(
            "frozen", "hover",
            threshold=crit + " (threshold 2/eta_f, eta_f = eta (1 - b1)/(1 + b1))",
            statement="with D frozen, preconditioned GD hovers at its own threshold 2/eta_f",
        ),
        "frozen_same_eta_leaves": of(
            "frozen_same_eta", "leaves",
            threshold=f"diverged, or loss > 10 x its value at the freeze within "
            f"{c.frozen_probe_steps} steps, for every Adam step size",
            statement="preconditioned GD at Adam's eta with the frozen D (sharpness ~ 38/eta > "
            "2/eta) is unstable",
        ),
        "momentum_at_edge": of("momentum", "hover", threshold=crit, statement=f"heavy ball's "
                               f"sharpness rises to {thr_mom:.3g}/eta and hovers there"),
    }  # fmt: skip


def outcomes(result: Result) -> tuple[dict, dict]:
    """(checks, verdicts) of the module docstring."""
    return checks(result), verdicts(result)


# --------------------------------------------------------------------------- reporting
def table(result: Result) -> str:
    """The run header, then one line per run: family, seed, eta, threshold, reach, band, ratio."""
    c, info = result.config, result.data_info
    lines = [f"wall {result.wall_s:.1f} s; {info['n']} images, P = {info['num_params']}, "
             f"{info['dtype']}, {c.steps} steps, sharpness every {c.log_every}, seeds "
             f"{list(c.seeds)}",
             f"{'family':<16}{'seed':>5}{'eta':>9}{'threshold':>11}{'reached':>9}{'in band':>9}"
             f"{'final/thr':>10}{'plain@reach':>12}{'plain end':>10}  status"]  # fmt: skip
    for s in (summarize(t, result.config) for t in result.traces):
        reach = f"{s.reached_step:9d}" if s.reached_step >= 0 else "    never"
        lines.append(
            f"{s.family:<16}{s.seed:>5}{s.eta:>9.3g}{s.threshold:>11.4g}{reach}{s.in_band:>9.2f}"
            f"{s.final_ratio:>10.3f}{s.plain_at_reach:>12.4g}{s.plain_final:>10.4g}  "
            + ("diverged" if s.diverged else "ok")
        )
    return "\n".join(lines)


def to_json(result: Result) -> dict:
    """Config, data, per-run summaries and traces, and the Adam runs' check measures."""
    return {
        "config": dataclasses.asdict(result.config),
        "wall_s": result.wall_s,
        "data": result.data_info,
        "summary": [summarize(t, result.config)._asdict() for t in result.traces],
        "adam_runs": result.checks_data["adam_runs"],
        "runs": [t._asdict() for t in result.traces],
    }


def plot(result: Result, out_dir) -> list[Path]:
    """Sharpness / threshold vs step: Adam (preconditioned and plain), frozen, heavy ball."""
    import matplotlib.pyplot as plt

    from minstab import plotting

    fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True)
    seed = result.config.seeds[0]
    for ax, fam, title in zip(axes, ("adam", "frozen", "momentum"),
                              ("Adam: preconditioned / 38/eta (solid), plain (dotted, right)",
                               "frozen D, preconditioned GD at eta_f", "heavy ball, beta = 0.9"),
                              strict=True):  # fmt: skip
        runs = [t for t in result.traces if t.family == fam and t.seed == seed]
        # the plain sharpness is ~1e-3 of Adam's threshold: its own axis, in its own units
        plain_ax = ax.twinx() if fam == "adam" and runs else None
        for k, t in enumerate(runs):
            ax.plot(t.step, t.sharpness / t.threshold, color=f"C{k}", lw=1,
                    label=f"eta = {t.eta:.3g}")  # fmt: skip
            if plain_ax is not None:
                plain_ax.plot(t.step, t.plain, color=f"C{k}", lw=1, ls=":")
        if plain_ax is not None:
            plain_ax.set_ylabel("plain sharpness lambda_max(H) (dotted)", fontsize=8)
            plain_ax.set_ylim(bottom=0)
        ax.axhline(1.0, color="k", ls="--", lw=0.8)
        for b in result.config.band:
            ax.axhline(b, color="0.6", ls=":", lw=0.6)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("sharpness / threshold")
    axes[0].set_ylim(0, 1.6)
    info = result.data_info
    fig.suptitle(f"adaptive edge of stability, MLP 784-{result.config.hidden}-"
                 f"{result.config.hidden}-10 (P = {info['num_params']}), {info['n']} images, "
                 f"seed {seed}", fontsize=10)  # fmt: skip
    fig.tight_layout()
    return plotting.save(fig, out_dir, "adaptive_eos")
