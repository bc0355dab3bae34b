"""Edge of stability on real data: full-batch GD on a tanh MLP, sharpness tracked during training.

The phenomenon seed 004 cites as [8] (Cohen, Kaur, Li, Kolter, Talwalkar 2021): trained by
full-batch GD with step size eta from a standard initialization, a network's sharpness
lambda_max(H) first rises (progressive sharpening) until it reaches the stability limit 2/eta
of Lemma 1, then hovers there while the loss keeps falling, non-monotonically. This is the
mechanism that makes the main job's runs end at sharpness ~ 2/eta.

Protocol (Cohen et al.'s, on a Fashion-MNIST subset): an MLP 784-h-h-10 with tanh hidden layers
(weights N(0, 1/fan_in), zero biases, one shared initialization for every eta), the quadratic
loss (1/2n) sum_j ||f(x_j) - y_j||^2 on one-hot targets, the first ``n`` training images,
centered and scaled per pixel to unit variance, rows divided by sqrt(784). Each eta is one
:func:`minstab.train` run with ``model=`` (the generic engine) and ``log_sharpness="lanczos"``:
lambda_max of the exact Hessian every ``log_every`` steps by Lanczos warm-started at the
previous log point's eigenvector.

Outcomes (issue 29), in units of 2/eta. Verdict ``hovers_at_edge`` (Cohen et al.'s claim), judged
per (seed, eta) run over ``seeds`` seeds (each seed draws the shared initialization of its runs):
after the sharpness first reaches ``reach`` = 0.9, at least ``min_in_band`` = 70 % of the logged
values lie in ``band`` = [0.9, 1.1]; a run that never reaches 0.9 x 2/eta is not judged. Verdict
``progressive_sharpening``, per eligible run (2/eta >= ``eligible_factor`` = 1.1 x the initial
sharpness, i.e. it does not start at the edge): the sharpness reaches 0.9 x 2/eta within the
step budget without diverging. No theorem applies to these runs (Lemma 1 is about minima GD
converges to; these runs keep moving), so the command has no checks: it exits 0 whatever the
verdicts say. The table reports, per run, the step of the first reach, the fraction in the band,
the final sharpness, and the loss at the reach and at the end with the number of log-to-log rises.

Outputs: ``eos.json`` (config, data, per-run traces, summary, checks, verdicts), ``eos.png``/``.pdf``
(loss and sharpness vs step, 2/eta dashed, Cohen et al.'s Fig. 1 layout), one
``runs/eta_*.json`` per finished step size (a rerun with the same configuration resumes).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .base import option
from .outcomes import verdict

__all__ = [
    "Config",
    "Run",
    "Result",
    "run",
    "checks",
    "verdicts",
    "summary",
    "plot",
    "to_json",
    "outcomes",
    "table",
]


@dataclasses.dataclass(frozen=True)
class Config:
    n: int = option(5000, "Fashion-MNIST training images")
    hidden: int = option(200, "width of both hidden layers")
    etas: tuple[float, ...] = option((0.15, 0.2, 0.3), "step sizes, comma-separated")
    steps: int = option(3000, "GD steps per step size")
    log_every: int = option(20, "steps between sharpness logs")
    seed: int = option(0, "the first initialization seed")
    seeds: int = option(3, "number of seeds: each draws the shared initialization of its runs")
    dtype: str = option("float32", "floating precision", choices=("float32", "float64"))
    lanczos_iters: int | None = None
    # verdict thresholds (issue 29), in units of 2/eta
    eligible_factor: float = 1.1
    reach: float = 0.9
    band: tuple[float, float] = (0.9, 1.1)
    min_in_band: float = 0.7

    def __post_init__(self):
        if self.log_every < 1:  # a sharpness log every 0 steps is no log: nothing to judge
            raise ValueError(f"log_every: expected a positive integer, got {self.log_every}")
        if self.log_every > self.steps:
            raise ValueError(
                f"log_every: expected at most steps ({self.steps}), got {self.log_every}"
            )
        if self.n > 60000:
            raise ValueError(f"n: expected at most 60000 (the training split), got {self.n}")

    @classmethod
    def quick(cls, **kw) -> Config:
        """500 images, width 64, 800 steps, 2 seeds (seconds)."""
        base = dict(n=500, hidden=64, etas=(0.2, 0.3), steps=800, log_every=10, seeds=2)
        base.update(kw)
        return cls(**base)


NAME = "eos"
NOTE = "no checks: no theorem applies to runs that keep moving; Lemma 1 is about minima"


def progress_total(config: Config) -> int:
    """One tick per (seed, eta) run."""
    return len(config.etas) * config.seeds


class Run(NamedTuple):
    eta: float
    seed: int
    step: np.ndarray  # (L,) steps taken at each log point (0 = the initialization)
    loss: np.ndarray  # (L,)
    sharpness: np.ndarray  # (L,) lambda_max of the loss Hessian
    diverged: bool
    wall_s: float


class Result(NamedTuple):
    config: Config
    runs: list[Run]
    data_info: dict
    wall_s: float


# --------------------------------------------------------------------------- data and model
def load_data(config: Config):
    """(x (n, 784), y (n, 10) one-hot) of the first ``n`` Fashion-MNIST training images."""
    from ..data.images import find_dataset, load_mnist

    images, labels = load_mnist(find_dataset("fashion-mnist"), "train")
    if config.n > images.shape[0]:
        raise ValueError(f"n must be <= {images.shape[0]}, got {config.n}")
    x = images[: config.n].reshape(config.n, -1).astype(np.float64) / 255.0
    x = (x - x.mean(0)) / (x.std(0) + 1e-3) / np.sqrt(x.shape[1])  # unit-variance pixels
    y = np.eye(10)[labels[: config.n]]
    return x.astype(config.dtype), y.astype(config.dtype)


def mlp(params, x):
    """f(x) = W3 tanh(W2 tanh(W1 x + b1) + b2) + b3 with ``params`` a list of (w, b)."""
    import jax.numpy as jnp

    for w, b in params[:-1]:
        x = jnp.tanh(x @ w + b[None, :])
    w, b = params[-1]
    return x @ w + b[None, :]


def init_mlp(key, sizes, dtype):
    """Weights N(0, 1/fan_in) (LeCun normal), zero biases."""
    import jax
    import jax.numpy as jnp

    keys = jax.random.split(key, len(sizes) - 1)
    return [
        (jax.random.normal(k, (m, n), dtype) * jnp.asarray(m**-0.5, dtype), jnp.zeros(n, dtype))
        for k, m, n in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


# --------------------------------------------------------------------------- running
def _run_path(out_dir, eta, seed) -> Path:
    return Path(out_dir) / "runs" / f"seed_{seed}" / f"eta_{eta:.6g}.json"


def _key(config: Config, seed: int) -> dict:
    """The fields a stored run must match to be reused (everything but the thresholds)."""
    d = dataclasses.asdict(config)
    for k in ("etas", "eligible_factor", "reach", "band", "min_in_band", "seeds"):
        d.pop(k)
    d["seed"] = int(seed)
    return d


def _load_run(path: Path, config: Config, seed: int) -> Run | None:
    import json

    if not path.exists():
        return None
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # a torn or foreign file: run again
    if d.get("config") != _key(config, seed):
        return None
    return Run(d["eta"], int(seed), np.asarray(d["step"]), np.asarray(d["loss"], float),
               np.asarray(d["sharpness"], float), bool(d["diverged"]), float(d["wall_s"]))  # fmt: skip


def _train_one(config: Config, params, x, y, eta: float, seed: int) -> Run:
    import minstab as ms

    t0 = time.perf_counter()
    r = ms.train(
        params, x, y, eta, model=mlp, steps=config.steps, log_every=config.log_every,
        log_sharpness="lanczos", lanczos_iters=config.lanczos_iters, tol=1e-30,
    )  # fmt: skip
    s0 = float(ms.sharpness(params, x, y, model=mlp, method="lanczos"))
    l0 = float(ms.model_loss(mlp)(params, x, y))
    step = np.concatenate([[0], np.asarray(r.log.step)])
    loss = np.concatenate([[l0], np.asarray(r.log.loss, float)])
    sharp = np.concatenate([[s0], np.asarray(r.log.sharpness, float)])
    return Run(float(eta), int(seed), step, loss, sharp, bool(r.diverged), time.perf_counter() - t0)


def run(config: Config, *, out_dir=None, progress=None) -> Result:
    """Per seed, one MLP per step size from the seed's shared initialization; resume from ``out_dir``."""
    import jax

    from .._io import write_json

    t0 = time.perf_counter()
    x, y = load_data(config)
    runs, params = [], None
    for seed in range(config.seed, config.seed + config.seeds):
        params = init_mlp(jax.random.key(seed), [x.shape[1], config.hidden, config.hidden, 10],
                          x.dtype)  # fmt: skip
        for eta in config.etas:
            path = None if out_dir is None else _run_path(out_dir, eta, seed)
            r = None if path is None else _load_run(path, config, seed)
            note = f"seed {seed} eta {eta:g}" + (" (resumed)" if r is not None else "")
            if r is None:
                r = _train_one(config, params, x, y, eta, seed)
                if path is not None:
                    write_json(path, {"config": _key(config, seed), **r._asdict()})
            runs.append(r)
            if progress is not None:
                progress.update(1, note)
    num_params = sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(params))
    info = dict(n=int(x.shape[0]), d=int(x.shape[1]), classes=10, num_params=num_params,
                dtype=str(x.dtype), dataset="fashion-mnist")  # fmt: skip
    return Result(config, runs, info, time.perf_counter() - t0)


# --------------------------------------------------------------------------- outcomes
class RunSummary(NamedTuple):
    seed: int
    eta: float
    edge: float  # 2 / eta
    initial_sharpness: float
    eligible: bool
    reached_step: int  # first log step with sharpness >= reach * 2/eta (-1: never)
    in_band: float  # fraction of logged sharpness in band * 2/eta from the first reach on
    loss_at_reach: float
    final_loss: float  # median of the last tenth of the log
    final_sharpness: float  # median of the last tenth of the log
    rises_after_reach: int  # log-to-log loss increases after the first reach
    diverged: bool


def summarize_run(r: Run, config: Config) -> RunSummary:
    edge = 2.0 / r.eta
    tail = slice(-max(1, len(r.step) // 10), None)
    hit = np.nonzero(r.sharpness >= config.reach * edge)[0]
    i = int(hit[0]) if len(hit) else -1
    after = r.sharpness[i:] if i >= 0 else np.empty(0)
    lo, hi = config.band
    in_band = float(np.mean((after >= lo * edge) & (after <= hi * edge))) if i >= 0 else np.nan
    rises = int(np.sum(np.diff(r.loss[i:]) > 0)) if i >= 0 else 0
    return RunSummary(
        seed=r.seed, eta=r.eta, edge=edge, initial_sharpness=float(r.sharpness[0]),
        eligible=bool(edge >= config.eligible_factor * r.sharpness[0]),
        reached_step=int(r.step[i]) if i >= 0 else -1, in_band=in_band,
        loss_at_reach=float(r.loss[i]) if i >= 0 else np.nan,
        final_loss=float(np.median(r.loss[tail])),
        final_sharpness=float(np.median(r.sharpness[tail])), rises_after_reach=rises,
        diverged=r.diverged,
    )  # fmt: skip


def summary(result: Result) -> list[RunSummary]:
    return [summarize_run(r, result.config) for r in result.runs]


def hovers(r: RunSummary, config: Config) -> dict:
    """One run's entry of the ``hovers_at_edge`` verdict (judged once it reached the edge)."""
    reached = r.reached_step >= 0 and not r.diverged
    return {"seed": r.seed, "eta": r.eta,
            "shown": bool(r.in_band >= config.min_in_band) if reached else None,
            "fraction_in_band": r.in_band, "reached_step": r.reached_step}  # fmt: skip


def sharpens(r: RunSummary) -> dict:
    """One run's entry of the ``progressive_sharpening`` verdict (judged on eligible runs)."""
    return {"seed": r.seed, "eta": r.eta,
            "shown": bool(r.reached_step >= 0 and not r.diverged) if r.eligible else None,
            "initial_sharpness_over_edge": r.initial_sharpness / r.edge,
            "reached_step": r.reached_step}  # fmt: skip


def verdicts(result: Result) -> dict:
    """The verdicts of the module docstring, one entry per (seed, eta) run."""
    c = result.config
    s = summary(result)
    lo, hi = c.band
    return {
        "hovers_at_edge": verdict(
            [hovers(r, c) for r in s],
            statement="once the sharpness reaches the edge 2/eta it hovers there",
            threshold=f"per (seed, eta) run: after the first log with sharpness >= {c.reach} x "
            f"2/eta, >= {c.min_in_band:.0%} of the logged values in [{lo}, {hi}] x 2/eta",
        ),
        "progressive_sharpening": verdict(
            [sharpens(r) for r in s],
            statement="from below the edge the sharpness rises to 2/eta",
            threshold=f"per (seed, eta) run with 2/eta >= {c.eligible_factor} x the initial "
            f"sharpness: reaches {c.reach} x 2/eta within {c.steps} steps without diverging",
        ),
    }


def checks(result: Result) -> dict:
    """None: no theorem applies to runs that keep moving (module docstring)."""
    return {}


def outcomes(result: Result) -> tuple[dict, dict]:
    """``(checks, verdicts)`` of the :mod:`~minstab.experiments.base` protocol."""
    return checks(result), verdicts(result)


# --------------------------------------------------------------------------- reporting
def table(result: Result) -> str:
    """The run header (wall time, data, precision) and one row per (seed, eta) run."""
    c, info = result.config, result.data_info
    lines = [
        f"wall {result.wall_s:.1f} s; {info['n']} images, P = {info['num_params']}, "
        f"{info['dtype']}, {c.steps} steps, sharpness every {c.log_every}",
        "seed    eta   2/eta  lambda_0  reached at  in band  lambda_end  "
        "lambda_end*eta/2  loss@reach  loss_end  rises",
    ]
    for r in summary(result):
        reach = f"{r.reached_step:10d}" if r.reached_step >= 0 else "     never"
        lines.append(
            f"{r.seed:4d} {r.eta:6.3g} {r.edge:7.3f} {r.initial_sharpness:9.3f}  {reach} "
            f"{r.in_band:8.2f} {r.final_sharpness:11.3f} {r.final_sharpness * r.eta / 2:17.3f} "
            f"{r.loss_at_reach:11.4g} {r.final_loss:9.4g} {r.rises_after_reach:6d}"
        )
    return "\n".join(lines)


def describe(result: Result, verdicts_: dict | None = None) -> str:
    """One paragraph of what the runs show, every number taken from ``result`` (notebook 05)."""
    c, info = result.config, result.data_info
    s = summary(result)
    v = verdicts(result) if verdicts_ is None else verdicts_
    seeds = sorted({r.seed for r in s})
    parts = [
        f"Full-batch GD on a tanh MLP 784-{c.hidden}-{c.hidden}-10 (P = {info['num_params']}) "
        f"with the quadratic loss on {info['n']} Fashion-MNIST images ({info['dtype']}), "
        f"{c.steps} steps, the sharpness logged every {c.log_every} steps, seeds "
        f"{', '.join(map(str, seeds))} (one shared initialization per seed)."
    ]
    for r in s:
        head = f"Seed {r.seed}, eta = {r.eta:g} (2/eta = {r.edge:.2f}), starting at sharpness {r.initial_sharpness:.2f}"
        if r.reached_step < 0:
            parts.append(f"{head}: the sharpness never reached {c.reach} x 2/eta; it ended at "
                         f"{r.final_sharpness:.2f}.")  # fmt: skip
            continue
        parts.append(
            f"{head}: it reached {c.reach} x 2/eta by step {r.reached_step}; from there "
            f"{100 * r.in_band:.0f} % of the logged values lie in [{c.band[0]}, {c.band[1]}] x "
            f"2/eta, it ends at {r.final_sharpness:.2f} ({r.final_sharpness * r.eta / 2:.3f} x "
            f"2/eta), and the loss went from {r.loss_at_reach:.4g} to {r.final_loss:.4g}, rising "
            f"between log points {r.rises_after_reach} times."
        )
    for k, x in v.items():
        parts.append(f"Verdict {k}: {x.verdict} ({x.seeds_shown} of {x.seeds} judged runs"
                     + (f", {x.seeds_run} run" if x.seeds_run != x.seeds else "") + ").")  # fmt: skip
    return " ".join(parts)


def plot(result: Result, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    from minstab import plotting

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    for k, r in enumerate(result.runs):
        color = f"C{k}"
        ax.plot(r.step, r.loss, color=color, lw=1, label=f"seed {r.seed}, $\\eta$ = {r.eta:g}")
        bx.plot(r.step, r.sharpness, color=color, lw=1)
        bx.axhline(2 / r.eta, color=color, ls="--", lw=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("training loss")
    bx.set_ylabel(r"sharpness $\lambda_{\max}$ (dashed: $2/\eta$)")
    for a in (ax, bx):
        a.set_xlabel("GD step")
        a.grid(alpha=0.3)
    ax.legend(fontsize=8)
    info = result.data_info
    fig.suptitle(
        f"full-batch GD, tanh MLP 784-{result.config.hidden}-{result.config.hidden}-10 "
        f"(P = {info['num_params']}), {info['n']} Fashion-MNIST images, {info['dtype']}",
        fontsize=10,
    )
    fig.tight_layout()
    return plotting.save(fig, out_dir, "eos")


def to_json(result: Result) -> dict:
    return {
        "config": dataclasses.asdict(result.config),
        "wall_s": result.wall_s,
        "data": result.data_info,
        "summary": [s._asdict() for s in summary(result)],
        "runs": [r._asdict() for r in result.runs],
    }
