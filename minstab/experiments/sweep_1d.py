"""minstab sweep: seed 004 Fig. 3 as the paper ran it, over many seeds, on embedded toy data.

Protocol (seed 004 §5: "We train a single-hidden-layer ReLU network using GD with varying step
sizes, all initialized at the same point"): for every seed ``s`` of ``seed_offset ..
seed_offset + seeds - 1`` draw ``n`` points of :func:`minstab.data.toy.toy_1d` (key ``s``) and ONE
random network (key ``s + 1``: knots uniform over the data, first layer ``init_scale`` N(0, 1),
output layer ``output_scale`` N(0, 1/width)); run full-batch GD from that point with every step
size of the seed's grid until the loss has stayed below ``tol`` for ``patience`` steps
(converged), blows up (diverged) or ``steps`` run out. The grid is ``num_etas`` geometric values
of eta in [``eta_rel_lo``, ``eta_rel_hi``] x 2/lambda_0, lambda_0 the sharpness at the seed's
initialization (``--etas`` gives absolute step sizes instead, the same for every seed). Every
run of every seed is one compiled ``jit(vmap(scan))`` program (chunks of ``chunk_size`` runs,
each seed its own data and initialization). ``--from-minimum`` instead starts every run of a
seed from a point near a minimum reached by small-step GD: seed 004 Fig. 1's protocol.

The default cell (width, output scale, n) is the cell of the phase diagram (``minstab
reproduce fig3``, seeds 0-7) with the highest fraction of seeds showing both phenomena below
(ties: smaller width, then smaller n); it is judged here on other seeds, 8-15.

Per run: the sharpness at GD's final parameters and, at minima with knots on data points, the
mode interval [lambda_lower, lambda_upper] of Lemma 2/3; the flattest implementation and the
Lemma 4 bound; the weighted curvature int |f''| g. Two kinds of outcome (``summary.json``):

* checks (must hold on every eligible run; a false one exits 1): Lemma 1 on differentiable
  converged minima, Lemma 2 (lambda_lower <= 2/eta + delta) on kinked ones, Lemma 4's order
  bound <= flattest <= sharpness, Theorem 1 on twice-differentiable runs, Theorem 2 on strongly
  stable kinked runs (Lemma 3), and no twice-differentiable run beyond eta_max = 1/(W* + 1/2).
* verdicts (per seed, fixed by issue 29; any result exits 0): *edge* shows on a seed when at
  least 5 converged runs have 2/eta below the sharpness reached at the smallest converged eta
  and their median plain edge distance |eta lambda / 2 - 1| (lambda the sharpness at GD's final
  parameters) is at most 0.05; *smoother* shows when Spearman(eta, int|f''|g) over the converged
  runs is at most -0.5. A seed with fewer than 5 converged runs is not judged.

Figures: fig3a_interpolants, fig3b_curvature, fig3c_sharpness (the first seed) and
fig3d_seeds (every seed's weighted curvature against eta). Finished chunks are saved under
OUT/chunks; rerunning resumes from them.

Momentum (``--optimizer momentum --beta B``, heavy ball, optax ``sgd(momentum=B)``; or
``nesterov``): the same job with that optimizer in place of GD (issue 33, item 5). Its stability
threshold replaces 2/eta everywhere (:func:`minstab.stability_threshold`: (2 + 2 beta)/eta for
heavy ball, (2 + 2 beta)/(eta (1 + 2 beta)) for Nesterov): the relative grid is ``eta
lambda_0 / (eta threshold)`` (heavy ball: the GD grid times 1 + beta, as ``minstab reproduce
momentum-fig3``), the band, the edge distance |lambda / threshold - 1| and ``edge_ratio`` =
lambda / threshold (= eta lambda / (eta threshold)) use it. Checks: those of
:func:`minstab.experiments.momentum_fig3.momentum_checks` (sharpness <= threshold and the
momentum bound int |f''| g <= threshold/2 - 1/2 = (1 + beta)/eta - 1/2 on every
twice-differentiable converged run, Lemma 4's order on every converged run) and eta_max with the
threshold (no twice-differentiable converged run where threshold/2 - 1/2 < W*). Lemma 2 and
Theorem 2 (kinked minima) are GD's and are not checked. The verdicts keep their per-seed
criteria with the threshold in place of 2/eta. Adam is refused (exit 2): its threshold bounds
the preconditioned sharpness, which Lemma 4 does not bound (``minstab reproduce adaptive-eos``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._cli_args import (
    LIMITS,
    choice,
    eta_list,
    int_in_range,
    momentum_beta,
    nonnegative_float,
    positive_float,
)
from .base import option
from .outcomes import Check, Verdict, check, verdict
from .outcomes import to_json as outcomes_json

__all__ = [
    "Config",
    "Result",
    "SeedRun",
    "Curves",
    "NAME",
    "run",
    "runs_table",
    "seed_stats",
    "theorem_checks",
    "edge_verdict",
    "smoother_verdict",
    "outcomes",
    "summary",
    "table",
    "plot",
    "save",
    "to_json",
    "describe",
    "check_size",
    "EDGE_MIN_RUNS",
    "EDGE_MAX_DEV",
    "SMOOTHER_MAX_SPEARMAN",
    "MIN_CONVERGED_JUDGED",
]

# Per-seed criteria of issue 29 (fixed before looking; they do not move)
EDGE_MIN_RUNS = 5  # converged runs with 2/eta below the sharpness at the smallest eta
EDGE_MAX_DEV = 0.05  # their median plain |eta lambda / 2 - 1|
SMOOTHER_MAX_SPEARMAN = -0.5  # Spearman(eta, int|f''|g) over converged runs
MIN_CONVERGED_JUDGED = 5  # a seed with fewer converged runs is not judged (neither criterion
# can be evaluated on fewer: the edge needs 5 band runs, a rank correlation of < 5 points is
# one of a handful of values)
# slack of the stability checks: the iterate stops within ~1e-3 (relative) of the minimum
STABILITY_RTOL = 1e-3
ORDER_RTOL = 1e-6
# default stopping tolerance on the loss, by precision: float64 reaches 1e-11 comfortably; in
# float32, GD's updates drown in rounding before the loss gets there (0 of 40 runs converged at
# 1e-11, issue 30); 1e-9 is a loss float32 runs reach (3 of 3 in
# tests/test_sweep_float32_resume.py; the quick job at width 16, output scale 4: 8 of 48 runs
# converged in float32, 4 of 48 in float64, within its 60 000 steps, 2026-12-07)
TOL = {"float64": 1e-11, "float32": 1e-9}
# sizes a command line may ask for (issue 30): refused with an estimate beyond these
MAX_RUNS = 20_000
MAX_STEPS = 10_000_000
MAX_WIDTH = 4096
MAX_N = 4096
MAX_BYTES = 4 * 2**30
NET_STEPS_PER_S = 2e5  # measured order of magnitude on a 2-core CPU, for the time estimate


# ----------------------------------------------------------------------------- option types

#: optimizers of ``--optimizer``; "adam" is read, then refused with the reason (exit 2)
OPTIMIZERS = ("gd", "momentum", "nesterov")
_REFUSED = {
    "adam": "adam is not supported by the main job: its threshold (2 + 2 b1)/(eta (1 - b1)) "
    "bounds the preconditioned sharpness, which Lemma 4 does not bound (see minstab reproduce "
    "adaptive-eos)"
}
DEFAULT_BETA = 0.9  # momentum of --optimizer momentum/nesterov when --beta is not given


def optimizer_choice(value) -> str:
    """``--optimizer``/TOML ``optimizer``: one of :data:`OPTIMIZERS` (adam says why not)."""
    import argparse

    if isinstance(value, str) and value.strip() in _REFUSED:
        raise argparse.ArgumentTypeError(_REFUSED[value.strip()])
    return choice(*OPTIMIZERS)(value)


def step_sizes(value) -> tuple[float, ...]:
    """``--etas`` text (:func:`minstab._cli_args.eta_list`) or a TOML list (not one number)."""
    import argparse

    if not isinstance(value, (str, list, tuple)):
        raise argparse.ArgumentTypeError(f"expected a list of positive step sizes, got {value!r}")
    return eta_list(value)


def bounded_int(minimum: int, maximum: int, name: str | None = None):
    """Integers in ``[minimum, maximum]``; a value above says its cost (``_cli_args.LIMITS``)."""
    lim = LIMITS.get(name)
    return int_in_range(minimum, maximum, estimate=lim.estimate if lim else None)


@dataclasses.dataclass(frozen=True)
class Config:
    """Options of the main job (every field is a ``--config`` TOML key; the common ones are flags).

    The cell (``width``, ``output_scale``, ``init_scale``, ``n``) is the one chosen from the
    phase diagram of ``minstab reproduce fig3`` on seeds 0-7 by the rule of issue 29; the job
    runs it on seeds 8-15 (``seed_offset = 8``).
    """

    # data: minstab.data.toy.toy_1d(n, key(seed), noise), one set per seed
    n: int = option(8, "training points", type=bounded_int(2, MAX_N, "n"))
    noise: float = 0.3
    seeds: int = option(8, "number of seeds; each its own data and initialization",
                        type=bounded_int(1, MAX_RUNS, "seeds"))  # fmt: skip
    seed_offset: int = option(8, "first seed (the cell was chosen on seeds 0-7)",
                              type=bounded_int(0, 2**31 - 2))  # fmt: skip
    # one shared random initialization per seed
    width: int = option(16, "neurons k", type=bounded_int(1, MAX_WIDTH, "width"))
    init_scale: float = 1.0
    output_scale: float = 0.25
    # seed 004 Fig. 1's protocol instead of Fig. 3's (explicit opt-in)
    from_minimum: bool = option(
        False, "seed 004 Fig. 1's protocol: start every run from a point near a minimum reached "
        "by small-step GD (off: Fig. 3's shared random initialization, no warm-up)",
    )  # fmt: skip
    warmup_steps: int | None = option(
        None, "small-step GD steps of --from-minimum (with it: 20000 unless given)",
        type=bounded_int(0, MAX_STEPS, "warmup_steps"),
    )  # fmt: skip
    warmup_tol: float = 1e-8
    # step sizes: explicit (absolute, every seed), or num_etas geometric values of
    # eta * lambda_0 / 2 in [eta_rel_lo, eta_rel_hi] (lambda_0: the seed's initial sharpness)
    etas: tuple[float, ...] | None = option(
        None, "absolute step sizes for every seed: comma list '0.01,0.02' or geometric "
        "'LO:HI:NUM' (None: num_etas values of eta lambda_0/2 from eta_rel_lo to eta_rel_hi "
        "per seed)", type=step_sizes,
    )  # fmt: skip
    num_etas: int = 40
    eta_rel_lo: float = 0.35
    eta_rel_hi: float = 2.8
    # optimizer: "gd" (seed 004), or heavy ball / Nesterov with momentum beta (issue 33)
    optimizer: str = option(
        "gd", "gd, momentum (heavy ball, optax sgd(momentum=beta)) or nesterov; the outcomes use "
        "its stability threshold, e.g. (2 + 2 beta)/eta for heavy ball (adam is refused: its "
        "threshold bounds the preconditioned sharpness)", type=optimizer_choice,
    )  # fmt: skip
    beta: float | None = option(
        None, f"momentum of --optimizer momentum/nesterov, in [0, 1) (None: {DEFAULT_BETA})",
        type=momentum_beta,
    )  # fmt: skip
    # GD
    steps: int = option(100_000, "GD steps per run", type=bounded_int(1, MAX_STEPS, "steps"))
    tol: float | None = option(
        None, f"convergence tolerance on the loss (None: {TOL['float64']:g} in float64, "
        f"{TOL['float32']:g} in float32)", type=positive_float,
    )  # fmt: skip
    patience: int = 5000
    log_every: int = 1000
    chunk_size: int = option(40, "runs per compiled chunk",
                             type=bounded_int(1, MAX_RUNS, "chunk_size"))  # fmt: skip
    dtype: str = option("float64", "floating precision (float64 enables jax x64)",
                        choices=("float64", "float32"))  # fmt: skip

    def __post_init__(self):
        if self.from_minimum and not self.warmup_steps:  # Fig. 1's warm-up by default
            object.__setattr__(self, "warmup_steps", 20_000)
        elif self.warmup_steps is None:
            object.__setattr__(self, "warmup_steps", 0)
        if self.warmup_steps and not self.from_minimum:
            raise ValueError("warmup_steps: only used with from_minimum (seed 004 Fig. 1), got "
                             f"{self.warmup_steps} warm-up steps without it")  # fmt: skip
        if self.beta is not None and self.optimizer == "gd":
            raise ValueError("beta: only used with optimizer momentum or nesterov (the optimizer "
                             "is gd)")  # fmt: skip
        if not self.etas and self.eta_rel_lo >= self.eta_rel_hi:
            raise ValueError(f"eta_rel_lo: expected below eta_rel_hi ({self.eta_rel_hi}), got "
                             f"{self.eta_rel_lo}")  # fmt: skip
        if self.dtype not in TOL:
            raise ValueError(f"dtype: expected one of {', '.join(TOL)}, got {self.dtype!r}")
        check_size(self)

    @classmethod
    def quick(cls, **kw) -> Config:
        """4 seeds x 12 step sizes (eta lambda_0/2 in [0.6, 2.5]), 60 000 steps, same criteria."""
        base = dict(seeds=4, num_etas=12, eta_rel_lo=0.6, eta_rel_hi=2.5, steps=60_000,
                    chunk_size=24)  # fmt: skip
        base.update(kw)
        return cls(**base)

    @property
    def seed(self) -> int:
        """The first seed (data of ``minstab predict --seed``)."""
        return self.seed_offset

    def seed_list(self) -> list[int]:
        """The seeds run: ``seed_offset .. seed_offset + seeds - 1``."""
        return list(range(self.seed_offset, self.seed_offset + self.seeds))

    def tolerance(self) -> float:
        """The stopping tolerance on the loss: ``tol``, or the precision's default."""
        return float(self.tol) if self.tol is not None else TOL[self.dtype]

    def momentum(self) -> float:
        """The momentum beta of ``momentum``/``nesterov``: ``beta``, else :data:`DEFAULT_BETA`."""
        return DEFAULT_BETA if self.beta is None else float(self.beta)

    def threshold_factor(self) -> float:
        """eta times the optimizer's stability threshold: 2 for GD, 2 + 2 beta for heavy ball."""
        from minstab.engine.optimizers import stability_threshold

        hyper = {} if self.optimizer == "gd" else {"beta": self.momentum()}
        return float(stability_threshold(self.optimizer, 1.0, **hyper))

    def step_sizes(self, init_sharpness: float) -> np.ndarray:
        """One seed's grid: ``etas``, or the relative grid times (eta threshold) /
        ``init_sharpness`` (2 / ``init_sharpness`` for GD)."""
        if self.etas:
            return np.asarray(self.etas, float)
        rel = np.geomspace(self.eta_rel_lo, self.eta_rel_hi, self.num_etas)
        return rel * self.threshold_factor() / float(init_sharpness)

    def num_runs(self) -> int:
        """Runs of the whole job (seeds x step sizes)."""
        return self.seeds * (len(self.etas) if self.etas else self.num_etas)


def check_size(cfg: Config) -> None:
    """Refuse a job beyond the size bounds, with the estimate of memory and time (issue 30).

    Raises ``ValueError("seeds: ...")`` (the command line names ``--seeds``, exit 2).
    """
    runs = cfg.num_runs()
    P = 3 * cfg.width + 1
    logs = cfg.steps // max(min(cfg.log_every, cfg.steps), 1) if cfg.log_every else 0
    itemsize = 8 if cfg.dtype == "float64" else 4
    # per run: parameters, the per-run data and the log (5 fields), host side, twice (the
    # chunk's arrays and the assembled result)
    nbytes = 2 * runs * itemsize * (P + 2 * cfg.n + 5 * logs)
    hours = runs * cfg.steps * max(cfg.n * cfg.width / 128, 1) / NET_STEPS_PER_S / 3600
    what = (f"{runs} runs (seeds x step sizes) x {cfg.steps} steps, width {cfg.width}, "
            f"n {cfg.n}: about {nbytes / 2**30:.2g} GiB and {hours:.2g} h on a 2-core CPU")  # fmt: skip
    if runs > MAX_RUNS:
        raise ValueError(f"seeds: {what}; at most {MAX_RUNS} runs")
    if nbytes > MAX_BYTES:
        raise ValueError(f"seeds: {what}; at most {MAX_BYTES / 2**30:g} GiB")


#: ``--config`` keys without a flag whose check is not their annotation's (the driver's)
CONFIG_TYPES = {
    "noise": nonnegative_float,
    "init_scale": positive_float,
    "output_scale": positive_float,
    "warmup_tol": positive_float,
    "num_etas": bounded_int(1, MAX_RUNS, "num_etas"),
    "eta_rel_lo": positive_float,
    "eta_rel_hi": positive_float,
    "patience": bounded_int(0, MAX_STEPS),
    "log_every": bounded_int(0, MAX_STEPS, "log_every"),
}

NAME = "sweep"  # minstab-out/sweep, the "sweep" progress bar of minstab.engine.sweep
JSON_NAME = "summary"  # OUT/summary.json: checks, verdicts, per-seed statistics
OWN_PROGRESS = True  # the library sweep draws its own bar (one tick per chunk)


class Curves(NamedTuple):
    """Plot-ready arrays (computed here, drawn by :mod:`minstab.plotting`)."""

    grid: np.ndarray  # (m,)
    f: np.ndarray  # (R, m) network outputs on the grid
    g: np.ndarray  # (m,) weight g(t) of eqs. 22-23
    knot_position: np.ndarray  # (R, k) merged knots
    knot_mass: np.ndarray  # (R, k) summed f'' masses (0 for non-first group members)
    knot_gap: np.ndarray  # (R,) distance from the nearest massive knot to a data point


class SeedRun(NamedTuple):
    """One seed's sweep (what :func:`minstab.plotting.fig3` draws)."""

    seed: int
    sweep: object  # minstab.engine.sweep.SweepResult of this seed, with lambda_lower / upper filled
    curves: Curves
    init_loss: float
    init_sharpness: float  # lambda_max of the Hessian at the seed's starting point
    prediction: object  # minstab.shallow.predict.Prediction: W*, eta_max before training (Thm 1)
    theorem2_budget: np.ndarray  # (R,) 1/eta - 1/2 + Delta on strongly stable kinked runs


class Timing(NamedTuple):
    """Where :func:`run`'s time went (compilation as measured by
    :class:`minstab.engine.compile_time.CompileClock`)."""

    compile_s: float  # tracing + lowering + XLA compilation (or cache fetches)
    programs: int  # programs compiled or fetched from the persistent cache
    cache_saved_s: float  # compile time the persistent cache saved
    devices: str  # e.g. "2 CPU devices": the devices that shared the runs


class Result(NamedTuple):
    """Everything the main job produced."""

    seeds: list  # [SeedRun]
    wall_time: float  # of run(), compilation included
    net_steps_per_s: float  # parameter updates computed by this call / training time
    config: Config
    rows: list  # [dict]: runs_table(result), one row per run (results.json)
    per_seed: list  # [dict]: per_seed_stats of the rows
    timing: Timing


class _Start(NamedTuple):
    """One seed's data, starting point and grid (see :func:`_seed_start`)."""

    x: np.ndarray
    y: np.ndarray
    params: object  # ShallowParams of numpy arrays
    grid: np.ndarray  # the seed's step sizes
    sharpness: float  # lambda_max at the starting point
    loss: float
    warmup_steps: int  # small-step GD steps run to reach the start (--from-minimum)


# ----------------------------------------------------------------------------- running


def _setup(cfg: Config, seed: int):
    """Data and the shared initialization of one seed, drawn in float64 and cast to ``dtype``
    (so that ``--dtype float32`` solves the same problem as float64)."""
    import jax
    import jax.numpy as jnp

    import minstab as ms

    with jax.enable_x64(True):
        x, y = ms.data.toy_1d(n=cfg.n, key=jax.random.key(seed), noise=cfg.noise,
                              dtype=jnp.float64)  # fmt: skip
        knots = (float(x.min()), float(x.max()))
        p = ms.init_shallow(
            jax.random.key(seed + 1), 1, cfg.width, scheme="ntk", knot_range=knots,
            output_scale=cfg.output_scale, dtype=jnp.float64,
        )  # fmt: skip
        # w1 ~ init_scale N(0, 1) with the knots -b1/w1 kept where they are
        p = p._replace(w1=p.w1 * cfg.init_scale, b1=p.b1 * cfg.init_scale)
        x, y = np.asarray(x), np.asarray(y)
        p = ms.ShallowParams(*(np.asarray(a) for a in p))
        # lambda_0 in float64 whatever the dtype: the grid is the same in both precisions
        lam0 = float(ms.sharpness(ms.ShallowParams(*(jnp.asarray(a) for a in p)), jnp.asarray(x),
                                  jnp.asarray(y), method="dense" if cfg.width <= 64 else "lanczos"))  # fmt: skip
    dt = np.dtype(cfg.dtype)
    return x.astype(dt), y.astype(dt), ms.ShallowParams(*(a.astype(dt) for a in p)), lam0


def _start(cfg: Config, x, y, p0, lam0: float):
    """The point every run of a seed starts from: the initialization, or a warm start."""
    import jax.numpy as jnp

    import minstab as ms
    from minstab.engine.train import train

    if not cfg.from_minimum:
        return p0, lam0, 0
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    pj = ms.ShallowParams(*(jnp.asarray(a) for a in p0))
    warm = train(pj, xj, yj, 1.0 / lam0, steps=cfg.warmup_steps, tol=cfg.warmup_tol,
                 log_sharpness="none")  # fmt: skip
    lam = float(ms.sharpness(warm.params, xj, yj, method="gram"))
    return ms.ShallowParams(*(np.asarray(a) for a in warm.params)), lam, int(warm.steps_run)


def _curves(res, x) -> Curves:
    import jax
    import jax.numpy as jnp

    from minstab.shallow.bounds import merged_knots, weight_1d

    xs = np.asarray(x)
    span = xs.max() - xs.min()
    grid = np.linspace(xs.min() - 0.15 * span, xs.max() + 0.15 * span, 400)
    P = res.params
    z = grid[None, :, None] * np.asarray(P.w1)[:, None, :, 0] + np.asarray(P.b1)[:, None, :]
    f = (np.maximum(z, 0) @ np.asarray(P.w2)[:, :, None])[..., 0] + np.asarray(P.b2)[:, None]
    g = np.asarray(weight_1d(jnp.asarray(grid, xs.dtype), jnp.asarray(xs)))
    mk = jax.vmap(merged_knots)(jax.tree_util.tree_map(jnp.asarray, P))
    pos, mass = np.asarray(mk.position), np.asarray(mk.mass)
    big = np.abs(mass) > 1e-8 * np.maximum(np.abs(mass).max(axis=1, keepdims=True), 1e-300)
    inside = (pos >= xs.min()) & (pos <= xs.max()) & big
    d = np.abs(pos[:, :, None] - xs[None, None, :]).min(axis=2)
    gap = np.where(inside, d, np.inf).min(axis=1)
    return Curves(grid, f, g, np.where(big, pos, np.nan), np.where(big, mass, 0.0), gap)


def _theorem2_budgets(s) -> np.ndarray:
    """1/eta - 1/2 + Delta (Theorem 2) on the strongly stable kinked converged runs, else NaN."""
    from minstab.shallow.bounds import theorem2_delta

    e = np.asarray(s.etas)
    lo, up = np.asarray(s.lambda_lower), np.asarray(s.lambda_upper)
    strong = np.asarray(s.converged) & (lo != up) & (up <= 2 / e * (1 + STABILITY_RTOL))
    out = np.full(s.num_runs, np.nan)
    for i in np.flatnonzero(strong):
        out[i] = float(theorem2_delta(s.params_at(int(i)), s.x, float(e[i])).budget)
    return out


def _seed_start(cfg: Config, seed: int) -> _Start:
    """A seed's data and starting point; its grid is relative to the initial sharpness."""
    x, y, p0, lam_init = _setup(cfg, seed)
    start, lam0, warm = _start(cfg, x, y, p0, lam_init)
    loss = float(0.5 * np.mean((_forward(start, x) - y) ** 2))
    return _Start(x, y, start, cfg.step_sizes(lam_init), lam0, loss, warm)


def _train(cfg: Config, starts: list, out_dir, progress: bool):
    """Every run of every seed in one :func:`minstab.sweep` (per-run data and starts)."""
    import jax

    import minstab as ms
    from minstab.engine.sweep import sweep

    def per_run(a, st):  # one copy per run of the seed's step sizes
        return np.repeat(a[None], st.grid.size, 0)

    inits = [jax.tree_util.tree_map(lambda a, st=st: per_run(a, st), st.params) for st in starts]
    params0 = jax.tree_util.tree_map(lambda *a: np.concatenate(a), *inits)
    # the loss is logged, not the sharpness: the outputs use the end-of-run values only, and a
    # logged Gram sharpness is a vmapped (batched) LAPACK eigh, which deadlocked two CPU
    # devices at n = 16 (jaxlib 0.10.2; see minstab.engine.sweep._chunk)
    train_cfg = ms.TrainConfig(
        steps=cfg.steps, log_every=min(cfg.log_every, cfg.steps), tol=cfg.tolerance(),
        patience=cfg.patience, log_sharpness="none", optimizer=cfg.optimizer,
        momentum=cfg.momentum(),
    )  # fmt: skip
    warm = sum(st.warmup_steps for st in starts)
    return sweep(
        params0, np.concatenate([per_run(st.x, st) for st in starts]),
        np.concatenate([per_run(st.y, st) for st in starts]),
        np.concatenate([st.grid for st in starts]), config=train_cfg, chunk_size=cfg.chunk_size,
        out_dir=out_dir, per_run_data=True, progress=progress,
        extra_config={"experiment": "sweep_1d", **_jsonable(cfg), "warmup_steps_run": warm},
    )  # fmt: skip


def _seed_runs(cfg: Config, res, starts: list) -> list[SeedRun]:
    """Each seed's runs cut out of the sweep, with mode intervals, curves, W* and budgets."""
    import minstab as ms

    out, first = [], 0
    for seed, st in zip(cfg.seed_list(), starts, strict=True):
        s = res.select(np.arange(first, first + st.grid.size)).with_mode_intervals()
        s = s._replace(config=dict(s.config, seed=seed, init_sharpness=st.sharpness))
        first += st.grid.size
        pred = ms.smoothest_interpolant(s.x, s.y)  # Theorem 1 before training: W*, eta_max
        t2 = _theorem2_budgets(s) if cfg.optimizer == "gd" else np.full(s.num_runs, np.nan)
        out.append(SeedRun(seed, s, _curves(s, s.x), st.loss, st.sharpness, pred, t2))
    return out


def run(config: Config, *, out_dir=None, progress=None) -> Result:
    """Every seed's sweep in one compiled program; per seed curves, mode intervals, W*.

    ``out_dir``: finished chunks are saved under ``out_dir/chunks`` and reused on a rerun
    (None: nothing is written); ``progress``: draw the sweep's progress bar (one tick per chunk).
    """
    import jax

    from minstab.engine.compile_time import CompileClock

    clock, t0 = CompileClock(), time.perf_counter()
    starts = [_seed_start(config, seed) for seed in config.seed_list()]
    res = _train(config, starts, out_dir, bool(progress))
    # net steps = parameter updates applied in the chunks computed by this call (chunks loaded
    # from an interrupted run cost nothing here)
    net = float(np.sum(res.steps_run[res.computed])) + sum(s.warmup_steps for s in starts)
    speed = net / max(time.perf_counter() - t0, 1e-9)
    seeds = _seed_runs(config, res, starts)
    ndev = len(jax.local_devices())
    timing = Timing(clock.seconds(), clock.programs(), clock.saved(),
                    f"{ndev} {jax.default_backend().upper()} device{'s' if ndev > 1 else ''}")  # fmt: skip
    partial = Result(seeds, time.perf_counter() - t0, speed, config, [], [], timing)
    rows = runs_table(partial)
    stats = per_seed_stats(rows, {sr.seed: sr.init_sharpness for sr in seeds},
                           factor=config.threshold_factor())  # fmt: skip
    return partial._replace(rows=rows, per_seed=stats)


def _forward(p, x) -> np.ndarray:
    z = np.asarray(x)[:, None] * np.asarray(p.w1)[None, :, 0] + np.asarray(p.b1)[None, :]
    return np.maximum(z, 0) @ np.asarray(p.w2) + np.asarray(p.b2)


def _jsonable(cfg: Config) -> dict:
    d = dataclasses.asdict(cfg)
    d["etas"] = list(cfg.etas) if cfg.etas else None
    d["tol"] = cfg.tolerance()
    d["beta"] = cfg.momentum()  # the momentum optax is given (unused by GD)
    return d


# ----------------------------------------------------------------------------- per-run rows

RUN_FIELDS = ("seed", "eta", "two_over_eta", "status", "loss", "sharpness", "lambda_lower",
              "lambda_upper", "mode_delta", "twice_differentiable", "weighted_curvature",
              "flattest_sharpness", "lower_bound", "edge_dev", "in_edge_band",
              "theorem2_budget", "eta_max", "knot_gap", "threshold", "edge_ratio")  # fmt: skip


def runs_table(result: Result) -> list[dict]:
    """One row per run of every seed (``results.json``): the numbers checks and verdicts use.

    ``threshold`` is the optimizer's stability threshold (2/eta for GD) and ``edge_ratio`` =
    lambda / threshold (eta lambda / 2 for GD); ``edge_dev`` is the plain edge distance
    |edge_ratio - 1|, lambda the sharpness at the final parameters (the mode interval
    [lambda_lower, lambda_upper] is beside it, not in it); ``in_edge_band``: converged with the
    threshold below the sharpness reached at the smallest converged eta of the seed.
    ``eta_max`` is the largest eta whose budget threshold/2 - 1/2 admits W* (Theorem 1's
    1/(W* + 1/2) for GD).
    """
    factor = result.config.threshold_factor()
    rows = []
    for sr in result.seeds:
        s = sr.sweep
        e, sh = np.asarray(s.etas, float), np.asarray(s.sharpness, float)
        conv = np.asarray(s.converged)
        band = _band(e, conv, sh, factor)
        eta_max = float(sr.prediction.eta_max)
        if factor != 2.0:  # threshold/2 - 1/2 >= W*  <=>  eta <= (factor/2) / (W* + 1/2)
            eta_max = factor / 2 / (float(sr.prediction.w_star) + 0.5)
        lo, hi = np.asarray(s.lambda_lower), np.asarray(s.lambda_upper)
        for i, st in enumerate(s.status()):
            rows.append({
                "seed": sr.seed, "eta": float(e[i]), "two_over_eta": float(2 / e[i]),
                "status": st, "loss": float(s.loss[i]), "sharpness": float(sh[i]),
                "lambda_lower": float(lo[i]), "lambda_upper": float(hi[i]),
                "mode_delta": float(s.mode_delta[i]),
                "twice_differentiable": bool(conv[i] and lo[i] == hi[i]),
                "weighted_curvature": float(s.weighted_curvature[i]),
                "flattest_sharpness": float(s.flattest_sharpness[i]),
                "lower_bound": float(s.lower_bound[i]),
                "edge_dev": float(abs(e[i] * sh[i] / factor - 1)),
                "in_edge_band": bool(band[i]),
                "theorem2_budget": float(sr.theorem2_budget[i]),
                "eta_max": eta_max,
                "knot_gap": float(sr.curves.knot_gap[i]),
                "threshold": float(factor / e[i]), "edge_ratio": float(e[i] * sh[i] / factor),
            })  # fmt: skip
    return rows


def _band(eta, conv, sharpness, factor: float = 2.0) -> np.ndarray:
    """Converged runs whose threshold ``factor``/eta (2/eta: GD) is below the sharpness reached
    at the smallest converged eta."""
    if not conv.any():
        return np.zeros_like(conv)
    ref = sharpness[np.flatnonzero(conv)[np.argmin(eta[conv])]]
    return conv & (factor / eta < ref)


_ADDED = ("threshold", "edge_ratio")


def columns(rows: list[dict]) -> dict:
    """The rows as numpy columns (floats, bools; ``converged`` from ``status``)."""
    # rows written before issue 33 have no threshold / edge_ratio (NaN: not recorded)
    out = {k: np.array([r.get(k, math.nan) if k in _ADDED else r[k] for r in rows], float)
           for k in RUN_FIELDS
           if k not in ("status", "twice_differentiable", "in_edge_band")}  # fmt: skip
    out["converged"] = np.array([r["status"] == "converged" for r in rows], bool)
    out["twice_differentiable"] = np.array([r["twice_differentiable"] for r in rows], bool)
    out["status"] = np.array([r["status"] for r in rows])
    return out


def spearman(a, b) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when one side is constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    if np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def seed_stats(seed: int, eta, converged, sharpness, curvature, lam0=None, *,
               factor: float = 2.0) -> dict:  # fmt: skip
    """One seed's measures and whether each phenomenon shows (issue 29's criteria).

    ``edge``: at least ``EDGE_MIN_RUNS`` converged runs with 2/eta below the sharpness reached
    at the smallest converged eta, whose median plain |eta lambda/2 - 1| is at most
    ``EDGE_MAX_DEV``. ``smoother``: Spearman(eta, int|f''|g) over the converged runs at most
    ``SMOOTHER_MAX_SPEARMAN``. Fewer than ``MIN_CONVERGED_JUDGED`` converged runs: not judged
    (None). ``factor``: eta times the optimizer's threshold (2 for GD, 2 + 2 beta for heavy
    ball), which replaces 2 in both edge measures.
    """
    eta, conv = np.asarray(eta, float), np.asarray(converged, bool)
    sh, curv = np.asarray(sharpness, float), np.asarray(curvature, float)
    nc = int(conv.sum())
    band = _band(eta, conv, sh, factor)
    dev = np.abs(eta * sh / factor - 1)[band]
    med = float(np.median(dev)) if dev.size else math.nan
    rho = spearman(eta[conv], curv[conv]) if nc >= 2 else math.nan
    judged = nc >= MIN_CONVERGED_JUDGED
    edge = bool(band.sum() >= EDGE_MIN_RUNS and med <= EDGE_MAX_DEV) if judged else None
    smoother = bool(rho <= SMOOTHER_MAX_SPEARMAN) if judged else None  # NaN: not smoother
    out = {
        "seed": int(seed), "runs": int(eta.size), "converged": nc,
        "reference_sharpness": float(sh[conv][np.argmin(eta[conv])]) if nc else math.nan,
        "band_runs": int(band.sum()),
        "band_eta_span": float(eta[band].max() / eta[band].min()) if band.any() else math.nan,
        "band_median_edge_dev": med,
        "band_below_edge": int(np.sum(eta[band] * sh[band] / factor < 1 - EDGE_MAX_DEV)),
        "spearman": rho,
        "curvature_max": float(curv[conv].max()) if nc else math.nan,
        "curvature_min": float(curv[conv].min()) if nc else math.nan,
        "edge": edge, "smoother": smoother,
        "both": None if not judged else bool(edge and smoother),
    }  # fmt: skip
    if lam0 is not None:
        out["init_sharpness"] = float(lam0)
    return out


def per_seed_stats(rows: list[dict], init_sharpness: dict | None = None, *,
                   factor: float = 2.0) -> list[dict]:  # fmt: skip
    """:func:`seed_stats` of every seed in ``rows`` (in order of first appearance)."""
    a = columns(rows)
    out = []
    for seed in dict.fromkeys(int(s) for s in a["seed"]):
        m = a["seed"] == seed
        lam0 = None if init_sharpness is None else init_sharpness.get(seed)
        out.append(seed_stats(seed, a["eta"][m], a["converged"][m], a["sharpness"][m],
                              a["weighted_curvature"][m], lam0, factor=factor))  # fmt: skip
    return out


_EDGE_THRESHOLD = (
    f">= {EDGE_MIN_RUNS} converged runs with 2/eta below the sharpness at the smallest eta, "
    f"median plain |eta lambda/2 - 1| <= {EDGE_MAX_DEV}"
)
_SMOOTHER_THRESHOLD = f"Spearman(eta, int|f''|g) over converged runs <= {SMOOTHER_MAX_SPEARMAN}"


def _verdict_rows(stats: list[dict], key: str, measures: tuple) -> list[dict]:
    return [{"seed": s["seed"], "shown": s[key], **{m: s[m] for m in measures}} for s in stats]


def edge_verdict(stats: list[dict], *, optimizer: str = "gd") -> Verdict:
    """GD ends at the edge of stability (seed 004 Fig. 3c, Cohen et al.), judged per seed.

    With ``optimizer="momentum"``/``"nesterov"`` the same criterion with the optimizer's
    threshold in place of 2/eta (``stats`` from :func:`seed_stats` with its ``factor``).
    """
    rows = _verdict_rows(stats, "edge", ("converged", "band_runs", "band_eta_span",
                                         "band_median_edge_dev", "band_below_edge"))  # fmt: skip
    if optimizer != "gd":
        thr = _THRESHOLD_TEXT[optimizer]
        return verdict(rows, statement=f"{_NAME[optimizer]} converges at the edge of stability, "
                       f"lambda ~ {thr}, once {thr} drops below the sharpness reached at small "
                       "eta", threshold=_EDGE_THRESHOLD.replace("2/eta", "the threshold")
                       .replace("plain |eta lambda/2 - 1|", "|lambda/threshold - 1|")
                       + f" (threshold {thr})")  # fmt: skip
    return verdict(rows, statement="GD converges at the edge of stability, lambda ~ 2/eta, "
                   "once 2/eta drops below the sharpness reached at small eta",
                   threshold=_EDGE_THRESHOLD)  # fmt: skip


def smoother_verdict(stats: list[dict]) -> Verdict:
    """Larger step sizes find smoother interpolants (seed 004 Fig. 3a-b), judged per seed."""
    rows = _verdict_rows(stats, "smoother", ("converged", "spearman", "curvature_max",
                                             "curvature_min"))  # fmt: skip
    return verdict(rows, statement="the weighted curvature int|f''|g falls as eta grows",
                   threshold=_SMOOTHER_THRESHOLD)  # fmt: skip


def verdicts(stats: list[dict], *, optimizer: str = "gd") -> dict[str, Verdict]:
    """``{"edge": ..., "smoother": ...}`` from per-seed statistics."""
    return {"edge": edge_verdict(stats, optimizer=optimizer), "smoother": smoother_verdict(stats)}


_THRESHOLD_TEXT = {"gd": "2/eta", "momentum": "(2 + 2 beta)/eta",
                   "nesterov": "(2 + 2 beta)/(eta (1 + 2 beta))"}  # fmt: skip
_NAME = {"gd": "GD", "momentum": "heavy ball", "nesterov": "Nesterov momentum"}


# ----------------------------------------------------------------------------- checks


def theorem_checks(a: dict) -> dict[str, Check]:
    """The theorems on every run their hypotheses cover (columns of :func:`runs_table`).

    Lemma 1 (twice-differentiable converged minima): sharpness <= 2/eta. Lemma 2 (knots on data
    points, eq. 14): lambda_lower <= 2/eta + delta. Both with ``STABILITY_RTOL`` slack for the
    iterate's distance to the minimum. Lemma 4: bound <= flattest <= sharpness on converged
    runs. Theorem 1: int|f''|g <= 1/eta - 1/2 on twice-differentiable converged runs (the same
    slack on 2/eta). Theorem 2: int|f''|g <= 1/eta - 1/2 + Delta on kinked converged runs that
    are strongly stable by Lemma 3 (lambda_upper <= 2/eta). eta_max: no twice-differentiable
    converged run beyond 1/(W* + 1/2).
    """
    e, conv = a["eta"], a["converged"]
    smooth = conv & a["twice_differentiable"]
    kinked = conv & ~a["twice_differentiable"]
    R, nc, ns, nk = e.size, int(conv.sum()), int(smooth.sum()), int(kinked.sum())
    slack = 1 + STABILITY_RTOL
    none_conv = f"no run converged (of {R})" if not nc else None
    why_smooth = none_conv or (
        f"all {nc} converged runs have a knot on a data point (a mode interval wider than a "
        "point): none is twice differentiable"
    )
    why_kinked = none_conv or f"all {nc} converged runs are twice differentiable"
    out: dict[str, Check] = {}
    ok = a["sharpness"][smooth] <= 2 / e[smooth] * slack
    out["lemma1_differentiable"] = check(
        bool(ok.all()), f"sharpness <= 2/eta on {int(ok.sum())} of {ns} twice-differentiable "
        "converged runs", covered=ns, eligible=ns, why_none=why_smooth,
    )  # fmt: skip
    ok = a["lambda_lower"][kinked] <= (2 / e[kinked] + a["mode_delta"][kinked]) * slack
    dl = float(np.max(a["mode_delta"][kinked], initial=0))
    out["lemma2_kinked"] = check(
        bool(ok.all()), f"lambda_lower <= 2/eta + delta on {int(ok.sum())} of {nk} converged "
        f"runs with knots on data points (largest delta {dl:.3g})",
        covered=nk, eligible=nk, why_none=why_kinked,
    )  # fmt: skip
    lb, fl, sh = (a[k][conv] for k in ("lower_bound", "flattest_sharpness", "sharpness"))
    ok = (lb <= fl * (1 + ORDER_RTOL)) & (fl <= sh * (1 + ORDER_RTOL))
    out["lemma4_order"] = check(
        bool(ok.all()), f"1 + 2 int|f''|g <= flattest <= sharpness on {int(ok.sum())} of {nc} "
        "converged runs", covered=nc, eligible=nc, why_none=none_conv,
    )  # fmt: skip
    curv = a["weighted_curvature"]
    ok = curv[smooth] <= (2 / e[smooth] * slack - 1) / 2
    out["theorem1_twice_differentiable"] = check(
        bool(ok.all()), f"int|f''|g <= 1/eta - 1/2 on {int(ok.sum())} of {ns} "
        "twice-differentiable converged runs", covered=ns, eligible=ns, why_none=why_smooth,
    )  # fmt: skip
    strong = kinked & (a["lambda_upper"] <= 2 / e * slack)
    nst = int(strong.sum())
    ok = curv[strong] <= a["theorem2_budget"][strong]
    why2 = none_conv or (
        f"none of the {nk} kinked converged runs is strongly stable by Lemma 3 (lambda_upper "
        f"<= 2/eta); eta lambda_upper / 2 spans "
        f"{_span(e[kinked] * a['lambda_upper'][kinked] / 2)}"
        if nk
        else why_kinked
    )
    out["theorem2_strongly_stable"] = check(
        bool(ok.all()), f"int|f''|g <= 1/eta - 1/2 + Delta on {int(ok.sum())} of {nst} strongly "
        "stable kinked converged runs", covered=nst, eligible=nst, why_none=why2,
    )  # fmt: skip
    beyond = smooth & (e > a["eta_max"])
    out["theorem1_eta_max"] = check(
        not beyond.any(), f"{int(beyond.sum())} of {ns} twice-differentiable converged runs "
        "beyond eta_max = 1/(W* + 1/2), predicted before training",
        covered=ns, eligible=ns, why_none=why_smooth,
    )  # fmt: skip
    return out


def _span(v) -> str:
    v = np.asarray(v)[np.isfinite(v)]
    return f"{v.min():.3g}-{v.max():.3g}" if v.size else "-"


def momentum_outcome_checks(sweeps: list, a: dict, *, optimizer: str, beta: float) -> dict:
    """The checks of a momentum job: :func:`minstab.experiments.momentum_fig3.momentum_checks`
    over the seeds' sweeps, and eta_max with the optimizer's threshold (columns ``a`` of
    :func:`runs_table`: no twice-differentiable converged run beyond the ``eta_max`` column)."""
    from .momentum_fig3 import momentum_checks

    out = momentum_checks(sweeps, beta, optimizer=optimizer)
    e, smooth = a["eta"], a["converged"] & a["twice_differentiable"]
    ns = int(smooth.sum())
    beyond = smooth & (e > a["eta_max"])
    out["eta_max"] = check(
        not beyond.any(), f"{int(beyond.sum())} of {ns} twice-differentiable converged runs "
        f"beyond eta_max, where the budget threshold/2 - 1/2 falls below W* "
        "(predicted before training)", covered=ns, eligible=ns,
        why_none="no converged run has a twice-differentiable minimum (every one has a knot on a "
        "data point)" if int(a["converged"].sum()) else "no run converged",
    )  # fmt: skip
    return out


def outcomes(result: Result) -> tuple[dict, dict]:
    """``(checks, verdicts)`` of the main job: the theorems on every run they cover
    (:func:`theorem_checks`; with momentum :func:`momentum_outcome_checks`), and the
    verdicts judged per seed (:func:`verdicts`)."""
    cfg, a = result.config, columns(result.rows)
    if cfg.optimizer == "gd":
        return theorem_checks(a), verdicts(result.per_seed)
    sweeps = [sr.sweep for sr in result.seeds]
    checks = momentum_outcome_checks(sweeps, a, optimizer=cfg.optimizer, beta=cfg.momentum())
    return checks, verdicts(result.per_seed, optimizer=cfg.optimizer)


# ----------------------------------------------------------------------------- reporting


def to_json(result: Result) -> dict:
    """``summary.json`` but its checks and verdicts (which the driver adds): the protocol, the
    counts of run outcomes, per-seed statistics, tightness of Lemma 4's bound, timing."""
    cfg = result.config
    a = columns(result.rows)
    conv = a["converged"]
    status = list(a["status"])
    tight = {"bound_over_flattest": _stats(a["lower_bound"][conv] / a["flattest_sharpness"][conv]),
             "bound_over_sharpness": _stats(a["lower_bound"][conv] / a["sharpness"][conv])}  # fmt: skip
    return {
        "protocol": "from_minimum (seed 004 Fig. 1)" if cfg.from_minimum
        else "shared random initialization per seed (seed 004 Fig. 3)",
        "cell": {"width": cfg.width, "output_scale": cfg.output_scale,
                 "init_scale": cfg.init_scale, "n": cfg.n},
        "seeds": cfg.seed_list(),
        "step_sizes": (f"{len(cfg.etas)} absolute step sizes" if cfg.etas else
                       f"{cfg.num_etas} geometric values of eta lambda_0/2 in "
                       f"[{cfg.eta_rel_lo}, {cfg.eta_rel_hi}] per seed"),
        "tol": cfg.tolerance(), "dtype": cfg.dtype, "steps": cfg.steps,
        "optimizer": cfg.optimizer, "beta": None if cfg.optimizer == "gd" else cfg.momentum(),
        "threshold": _threshold_text(cfg), "threshold_times_eta": cfg.threshold_factor(),
        "num_runs": len(result.rows), "num_converged": int(conv.sum()),
        "num_diverged": status.count("diverged"), "num_stalled": status.count("stalled"),
        "num_not_converged": status.count("not converged"),
        "num_twice_differentiable": int(a["twice_differentiable"].sum()),
        "per_seed": result.per_seed,
        "tightness": tight,
        "wall_time_s": result.wall_time,
        "net_steps_per_s": result.net_steps_per_s,
    }  # fmt: skip


def summary(result: Result) -> dict:
    """``summary.json`` as ``minstab sweep`` writes it: :func:`to_json` with the checks and
    verdicts of :func:`outcomes` (what :func:`describe` reads)."""
    return {**to_json(result), **outcomes_json(*outcomes(result))}


def _threshold_text(cfg: Config) -> str:
    """The optimizer's stability threshold in words, e.g. ``(2 + 2 beta)/eta = 3.8/eta``."""
    if cfg.optimizer == "gd":
        return "2/eta"
    return f"{_THRESHOLD_TEXT[cfg.optimizer]} = {cfg.threshold_factor():.4g}/eta"


def _stats(v) -> dict:
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    if not v.size:
        return {"count": 0}
    return {"count": int(v.size), "min": float(v.min()), "median": float(np.median(v)),
            "max": float(v.max())}  # fmt: skip


def _finite(values) -> list:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def describe(summ: dict) -> str:
    """A paragraph of what the outputs show, every number read from ``summary.json``."""
    v, c, ps = summ["verdicts"], summ["cell"], summ["per_seed"]
    seeds = summ["seeds"]
    e, s = v["edge"], v["smoother"]
    judged = [p for p in ps if p["edge"] is not None]
    devs = _finite(p["band_median_edge_dev"] for p in judged if p["band_runs"])
    rhos = _finite(p["spearman"] for p in judged)
    both = sum(bool(p["both"]) for p in judged)
    gd = summ.get("optimizer", "gd") == "gd"
    dev_words = "plain |eta lambda/2 - 1|" if gd else "|lambda/threshold - 1|"
    text = [] if gd else [f"{_NAME[summ['optimizer']]} (beta {summ['beta']:g}), threshold "
                          f"{summ['threshold']}."]  # fmt: skip
    text += [
        f"Cell width {c['width']}, output scale {c['output_scale']}, n = {c['n']}, seeds "
        f"{seeds[0]}-{seeds[-1]}: {summ['num_converged']} of {summ['num_runs']} runs converged "
        f"({summ['num_diverged']} diverged, {summ['num_stalled']} stalled, "
        f"{summ['num_not_converged']} ran out of steps).",
        f"Edge of stability: {e['verdict']} ({e['seeds_shown']} of {e['seeds']} judged seeds"
        + (f"; median {dev_words} per seed with a band from {min(devs):.2g} to "
           f"{max(devs):.2g}" if devs else "") + ").",
        f"Smoother at larger eta: {s['verdict']} ({s['seeds_shown']} of {s['seeds']} judged seeds"
        + (f"; Spearman(eta, int|f''|g) per seed from {min(rhos):.2f} to {max(rhos):.2f}"
           if rhos else "") + ").",
        f"Both on {both} of {len(judged)} judged seeds.",
    ]  # fmt: skip
    nt = summ["num_twice_differentiable"]
    which = "Theorem 1 applies" if gd else "the momentum bound applies"
    text.append(
        f"{nt} converged runs are twice differentiable ({which} to those only); "
        + ("every check holds." if all(x["holds"] is not False for x in summ["checks"].values())
           else "a check FAILED.")
    )  # fmt: skip
    return " ".join(text)


def seed_table(stats: list[dict]) -> str:
    """One line per seed: converged runs, edge band, plain edge distance, Spearman, verdicts."""
    head = (f"{'seed':>4} {'lam0':>7} {'conv':>6} {'lam_ref':>7} {'band':>5} {'span':>6} "
            f"{'edge dev':>9} {'below':>5} {'spearman':>9} {'curv max':>8} {'curv min':>8}  "
            "edge smoother")  # fmt: skip
    lines = [head, "-" * len(head)]
    tag = {True: "yes", False: "no", None: "-"}
    for p in stats:
        lines.append(
            f"{p['seed']:>4} {p.get('init_sharpness', math.nan):7.3g} "
            f"{p['converged']:>3}/{p['runs']:<2} {p['reference_sharpness']:7.3g} "
            f"{p['band_runs']:>5} {p['band_eta_span']:6.3g} {p['band_median_edge_dev']:9.2g} "
            f"{p['band_below_edge']:>5} {p['spearman']:9.3f} {p['curvature_max']:8.3g} "
            f"{p['curvature_min']:8.3g}  {tag[p['edge']]:>4} {tag[p['smoother']]:>8}"
        )
    return "\n".join(lines)


def run_table(sr: SeedRun, factor: float = 2.0) -> str:
    """One seed's runs: eta, 2/eta, loss, sharpness, mode interval, flattest, bound, status.

    With another optimizer's threshold (``factor`` = eta threshold != 2), the threshold column
    replaces 2/eta and the edge column is lambda / threshold (``edge_ratio``).
    """
    s = sr.sweep
    e, sh, conv = np.asarray(s.etas), np.asarray(s.sharpness), np.asarray(s.converged)
    band = _band(e, conv, sh, factor)
    gd = factor == 2.0
    head = (f"{'eta':>8} {'2/eta' if gd else 'thresh':>8} {'loss':>8} {'sharpness':>9} "
            f"{'[lam_lo, lam_up]':>19} {'flattest':>8} {'bound':>7} {'curv':>7} "
            + (f"{'edge':>6}  status" if gd else f"{'lam/thr':>7}  status"))  # fmt: skip
    lines = [head, "-" * len(head)]
    for i, st in enumerate(s.status()):
        lo, hi = float(s.lambda_lower[i]), float(s.lambda_upper[i])
        iv = f"[{lo:.4g}, {hi:.4g}]" if np.isfinite(lo) else "-"
        if gd:
            dev = abs(e[i] * sh[i] / 2 - 1)
            dev = f"{dev:6.3f}" if conv[i] else "     -"
        else:
            dev = f"{e[i] * sh[i] / factor:7.3f}" if conv[i] else "      -"
        lines.append(
            f"{float(e[i]):8.4g} {factor / float(e[i]):8.4g} {float(s.loss[i]):8.1e} "
            f"{float(sh[i]):9.4g} {iv:>19} {float(s.flattest_sharpness[i]):8.4g} "
            f"{float(s.lower_bound[i]):7.4g} {float(s.weighted_curvature[i]):7.4g} {dev}  "
            f"{st}{' (band)' if band[i] else ''}"
        )
    return "\n".join(lines)


def plot(result: Result, out_dir) -> list:
    """Seed 004 Fig. 3 a-c of the first seed and every seed's curvature curve (PNG + PDF)."""
    from minstab import plotting

    paths = plotting.fig3(result.seeds[0], out_dir)
    return paths + plotting.fig3d_seeds(result.seeds, out_dir)


def save(result: Result, out_dir) -> list[Path]:
    """``results.json`` (the config and one row per run) and every seed's ``seed_<k>/results.*``
    (:meth:`minstab.SweepResult.save`: ``minstab predict --sweep`` and :func:`minstab.load_sweep`
    read them)."""
    from minstab._io import write_json

    out = Path(out_dir)
    for sr in result.seeds:
        sr.sweep.save(out / f"seed_{sr.seed}")
    rows = write_json(
        out / "results.json", {"config": _jsonable(result.config), "runs": result.rows}
    )
    return [rows, out / "seed_<k>" / "results.npz"]


def _header(result: Result) -> str:
    cfg, seeds = result.config, result.config.seed_list()
    momentum = ("" if cfg.optimizer == "gd" else f"{_NAME[cfg.optimizer]}, beta="
                f"{cfg.momentum():g}, threshold {_threshold_text(cfg)}; ")  # fmt: skip
    start = ("near a minimum (--from-minimum, seed 004 Fig. 1)" if cfg.from_minimum
             else "one shared random initialization per seed (seed 004 Fig. 3)")  # fmt: skip
    return (f"cell: width={cfg.width}, output scale={cfg.output_scale}, init scale="
            f"{cfg.init_scale}, n={cfg.n}; seeds {seeds[0]}-{seeds[-1]}; "
            f"{result.seeds[0].sweep.num_runs} step sizes per seed, {cfg.steps} steps, "
            f"tol={cfg.tolerance():g}, {cfg.dtype}; {momentum}start: {start}")  # fmt: skip


def _timing_text(result: Result) -> str:
    t = result.timing
    speed = (f"{result.net_steps_per_s:,.0f} net-steps/s" if result.net_steps_per_s > 0
             else "every chunk loaded from OUT/chunks")  # fmt: skip
    return (f"wall time {result.wall_time:.1f} s, of which compilation {t.compile_s:.1f} s "
            f"({t.programs} programs; the persistent cache saved {t.cache_saved_s:.1f} s); "
            f"{speed}, runs shared by {t.devices}")  # fmt: skip


def table(result: Result) -> str:
    """The cell, the first seed's runs, one line per seed, what the outputs show, timing."""
    first = result.seeds[0]
    return "\n".join([
        _header(result),
        f"\nfirst seed ({first.seed}), every run:",
        run_table(first, result.config.threshold_factor()),
        "\nper seed:",
        seed_table(result.per_seed),
        "\n" + describe(summary(result)),
        _timing_text(result),
    ])  # fmt: skip
