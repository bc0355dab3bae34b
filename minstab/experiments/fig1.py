"""Seed 004 Fig. 1: a larger step size near a minimum sends GD to a smoother interpolant.

Two GD runs of a univariate shallow ReLU net from the same initialization: run A keeps the step
size eta; run B multiplies it by 3 once the loss falls below ``boost_below`` (the schedule of
seed 004 Fig. 1, i.e. "initialize near a minimum and continue with two step sizes"). If the
minimum A is heading to is sharper than 2/(3 eta), B cannot stay there (Lemma 1): its loss
spikes and it lands on a flatter minimum, whose weighted curvature int |f''| g is smaller
(Theorem 1). Panels (first seed): (a) loss vs iteration, (b) the two interpolants with the
data, (c) a kernel-smoothed |f''| of both with the weight g of eqs. 22-23.

Outcomes (issue 29; :mod:`minstab.experiments.outcomes`). The pair of runs is repeated for
``seeds`` seeds (seed s: data ``toy_1d(key(s))``, initialization ``key(s + 1)``).

* Verdict ``spike_then_smoother`` (Fig. 1's statement, per seed, any result exits 0): judged
  when run A converged and run B switched to the larger step; shown when B then converged, its
  logged loss rose to at least ``SPIKE`` x ``boost_below`` after the switch, and its
  int |f''| g ended below A's.
* Checks on every converged run of every seed (a false one exits 1): Lemma 1 (sharpness <=
  2/eta_final) on twice-differentiable minima and Lemma 2 (lambda_lower <= 2/eta_final + delta)
  on minima with a knot on a data point; Lemma 4 (1 + 2 int |f''| g <= sharpness); the budget
  int |f''| g <= 1/eta_final - 1/2 on twice-differentiable minima (Theorem 1), plus Theorem 2's
  Delta (eq. 25, as printed) on strongly stable minima with a knot on a data point.

Protocol history (issue 29): before, one seed and four claims that made the command exit 1
("both runs converge" and "the larger step ends smoother" among them); now the empirical
statement is a per-seed verdict over 8 seeds (4 with ``--quick``), the theorems are checks.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import plotting
from .._cli_args import positive_float
from .base import option
from .outcomes import check as make_check
from .outcomes import verdict as make_verdict

SPIKE = 100.0  # verdict: B's loss after the switch rises to at least this x boost_below
RTOL = 1e-6  # checks: relative slack of the inequalities (rounding)


@dataclasses.dataclass(frozen=True)
class Config:
    n: int = 8
    noise: float = 0.3
    width: int = option(100, "neurons k")
    output_scale: float = 0.3
    knot_range: tuple[float, float] = (-1.6, 1.6)
    eta: float = option(0.02, "step size of run A", type=positive_float)
    boost_factor: float = option(3.0, "run B multiplies eta by this near the minimum",
                                 type=positive_float, flag="--factor")  # fmt: skip
    boost_below: float = 1e-7
    steps: int = option(200_000, "GD steps per run")
    tol: float = 1e-12
    log_every: int = 250
    seed: int = option(0, "first seed")
    seeds: int = option(8, "seeds: each its own data and initialization")

    def __post_init__(self):
        if self.steps < self.log_every:
            raise ValueError(f"steps: expected an integer >= {self.log_every} (the loss is "
                             f"logged every {self.log_every} steps), got {self.steps}")  # fmt: skip

    @classmethod
    def quick(cls, **kw) -> Config:
        """4 seeds instead of 8 (every run is already short)."""
        return cls(**{"seeds": 4, **kw})


NAME = "fig1"


def progress_total(config: Config) -> int:
    """One tick per seed (runs A and B)."""
    return config.seeds


class Run(NamedTuple):
    loss_trace: np.ndarray  # (steps // log_every,)
    steps: np.ndarray
    eta_trace: np.ndarray
    loss: float
    converged: bool
    converged_at: int
    sharpness: float
    curvature: float
    params: tuple  # ShallowParams as numpy arrays
    lambda_lower: float  # Lemma 2's end of the mode interval (= sharpness if differentiable)
    lambda_upper: float
    delta: float
    num_toggling: int  # (point, neuron) pairs with the knot on the point
    theorem2_delta: float  # Theorem 2's Delta (eq. 25) at eta_final


class SeedResult(NamedTuple):
    x: np.ndarray
    y: np.ndarray
    grid: np.ndarray
    f: dict  # "A"/"B" -> network on the grid
    f2_smoothed: dict  # "A"/"B" -> kernel-smoothed |f''|
    g: np.ndarray  # weight on the grid
    runs: dict  # "A"/"B" -> Run
    config: Config
    seed: int

    def checks(self) -> dict:
        """The checks on this seed's two runs alone."""
        return checks([run_row(r, self.seed, k) for k, r in self.runs.items()])


class Result(NamedTuple):
    seeds: list  # SeedResult per seed; the figure shows the first
    config: Config
    wall_s: float

    @property
    def runs(self) -> dict:
        """Runs A and B of the first seed (the figure's)."""
        return self.seeds[0].runs


def _smoothed_f2(params, grid, bandwidth):
    """|(K_h * f'')(t)|: f'' = sum_i w2_i |w1_i| delta(t - t_i), convolved with a Gaussian."""
    w = np.asarray(params.w1)[:, 0]
    live = w != 0
    t = -np.asarray(params.b1)[live] / w[live]
    m = np.asarray(params.w2)[live] * np.abs(w[live])
    kern = np.exp(-0.5 * ((grid[:, None] - t[None, :]) / bandwidth) ** 2)
    return np.abs(kern @ m) / (bandwidth * np.sqrt(2 * np.pi))


def run_seed(config: Config, seed: int) -> SeedResult:
    """Runs A and B of one seed (data ``key(seed)``, initialization ``key(seed + 1)``).

    Every seed reuses the two compiled programs (same shapes); a sequential run takes two
    steps per loop iteration, faster on a CPU than a vmapped batch of seeds (measured).
    """
    import jax
    import jax.numpy as jnp

    from ..data import toy as data
    from ..engine.train import train
    from ..shallow import nets as nets
    from ..shallow.bounds import theorem2_delta, weight_1d, weighted_curvature
    from ..shallow.curvature import sharpness
    from ..shallow.modes import mode_interval

    x, y = data.toy_1d(n=config.n, key=jax.random.key(seed), noise=config.noise)
    p0 = nets.init_shallow(
        jax.random.key(seed + 1), 1, config.width,
        knot_range=config.knot_range, output_scale=config.output_scale,
    )  # fmt: skip
    lo, hi = float(x.min()), float(x.max())
    grid = np.linspace(lo - 0.15 * (hi - lo), hi + 0.15 * (hi - lo), 600)
    runs, f, f2 = {}, {}, {}
    for name, boost in (("A", 1.0), ("B", config.boost_factor)):
        r = train(
            p0, x, y, config.eta, steps=config.steps, tol=config.tol, log_every=config.log_every,
            boost_factor=boost, boost_below=config.boost_below, log_sharpness="none",
        )  # fmt: skip
        p = r.params
        modes = mode_interval(p, x)
        runs[name] = Run(
            np.asarray(r.log.loss), np.asarray(r.log.step), np.asarray(r.log.eta),
            float(r.loss), bool(r.converged), int(r.converged_at),
            float(sharpness(p, x, y)), float(weighted_curvature(p, x)),
            tuple(np.asarray(a) for a in p), float(modes.lambda_lower),
            float(modes.lambda_upper), float(modes.delta), int(modes.num_toggling),
            float(theorem2_delta(p, x, float(r.log.eta[-1])).delta),
        )  # fmt: skip
        f[name] = np.asarray(nets.forward(p, jnp.asarray(grid)))
        f2[name] = _smoothed_f2(p, grid, bandwidth=0.03 * (hi - lo))
    g = np.asarray(weight_1d(jnp.asarray(grid), x))
    return SeedResult(np.asarray(x), np.asarray(y), grid, f, f2, g, runs, config, int(seed))


def run(config: Config, *, out_dir=None, progress=None) -> Result:
    """Runs A and B for seeds ``seed, ..., seed + seeds - 1``."""
    import time

    t0 = time.perf_counter()
    out = []
    for s in range(config.seed, config.seed + config.seeds):
        out.append(run_seed(config, s))
        if progress is not None:
            progress.update(note=f"seed {s}")
    return Result(out, config, time.perf_counter() - t0)


def run_row(r: Run, seed: int, name: str) -> dict:
    """The numbers of one run that the checks and the verdict read (JSON-ready)."""
    eta = float(r.eta_trace[-1])
    return dict(
        seed=seed, run=name, converged=r.converged, converged_at=r.converged_at, loss=r.loss,
        eta_final=eta, two_over_eta=2 / eta, sharpness=r.sharpness, weighted_curvature=r.curvature,
        lambda_lower=r.lambda_lower, lambda_upper=r.lambda_upper, delta=r.delta,
        num_toggling=r.num_toggling, twice_differentiable=r.num_toggling == 0,
        theorem2_delta=r.theorem2_delta,
    )  # fmt: skip


def rows(result: Result) -> list[dict]:
    """One row per (seed, run)."""
    return [run_row(r, sr.seed, k) for sr in result.seeds for k, r in sr.runs.items()]


def seed_row(sr: SeedResult) -> dict:
    """Per-seed row of the verdict (module docstring)."""
    a, b = sr.runs["A"], sr.runs["B"]
    c = sr.config
    switched = bool(np.any(b.eta_trace > c.eta * (1 + 1e-12))) and c.boost_factor != 1
    after = b.loss_trace[b.eta_trace > c.eta * (1 + 1e-12)]
    peak = float(np.max(after)) if after.size else float("nan")
    spike = bool(after.size) and peak >= SPIKE * c.boost_below
    smoother = b.curvature < a.curvature
    judged = a.converged and switched
    return dict(
        seed=sr.seed, shown=(b.converged and spike and smoother) if judged else None,
        a_converged=a.converged, b_switched=switched, b_converged=b.converged,
        b_peak_loss_after_switch=peak, curvature_a=a.curvature, curvature_b=b.curvature,
    )  # fmt: skip


STATEMENT = "a 3x step near a minimum spikes the loss and lands on a smoother interpolant"
THRESHOLD = (f"judged when A converges and B switches; shown when B converges, its loss rises to "
             f">= {SPIKE:g} x boost_below after the switch, and int|f''|g(B) < int|f''|g(A)")  # fmt: skip


def verdicts(result: Result) -> dict:
    """``{"spike_then_smoother": Verdict}`` over the seeds."""
    per = [seed_row(sr) for sr in result.seeds]
    return {"spike_then_smoother": make_verdict(per, statement=STATEMENT, threshold=THRESHOLD)}


def checks(run_rows: list[dict]) -> dict:
    """Lemmas 1, 2, 4 and Theorem 1 on every converged run (module docstring)."""
    conv = [r for r in run_rows if r["converged"]]
    diff = [r for r in conv if r["twice_differentiable"]]
    kink = [r for r in conv if not r["twice_differentiable"]]
    slack = 1 + RTOL
    lemma1 = [r["sharpness"] <= r["two_over_eta"] * slack for r in diff]
    lemma2 = [r["lambda_lower"] <= (r["two_over_eta"] + r["delta"]) * slack for r in kink]
    lemma4 = [1 + 2 * r["weighted_curvature"] <= r["sharpness"] * slack for r in conv]
    strong = [r for r in kink if r["lambda_upper"] <= r["two_over_eta"] * slack]  # Lemma 3
    budget = [(r, 1 / r["eta_final"] - 0.5) for r in diff]
    budget += [(r, 1 / r["eta_final"] - 0.5 + r["theorem2_delta"]) for r in strong]
    thm = [r["weighted_curvature"] <= b * slack for r, b in budget]

    def worst(vals):
        return f"{max(vals):.4f}" if vals else "-"

    why = "no run converged (the protocol's runs all stop at a minimum when they converge)"
    return {
        "stable_minima_lemma1_lemma2": make_check(
            all(lemma1) and all(lemma2),
            f"{len(diff)} twice-differentiable minima: largest sharpness/(2/eta) "
            f"{worst([r['sharpness'] / r['two_over_eta'] for r in diff])} (<= 1); {len(kink)} with a "
            f"knot on a data point: largest lambda_lower/(2/eta + delta) "
            f"{worst([r['lambda_lower'] / (r['two_over_eta'] + r['delta']) for r in kink])} (<= 1)",
            covered=len(conv), eligible=len(conv), why_none=why,
        ),
        "lemma4_lower_bound": make_check(
            all(lemma4),
            f"largest (1 + 2 int|f''|g)/sharpness "
            f"{worst([(1 + 2 * r['weighted_curvature']) / r['sharpness'] for r in conv])} (<= 1)",
            covered=len(conv), why_none=why,
        ),
        "theorem1_theorem2_budget": make_check(
            all(thm),
            f"largest int|f''|g / budget {worst([r['weighted_curvature'] / b for r, b in budget])} "
            f"(<= 1): 1/eta - 1/2 on {len(diff)} twice-differentiable minima (Theorem 1), + Delta "
            f"(eq. 25) on {len(strong)} strongly stable kinked ones (Theorem 2, lambda_upper <= "
            "2/eta)",
            covered=len(budget), eligible=len(budget),
            why_none="no converged run is twice differentiable or strongly stable (lambda_upper "
            "<= 2/eta), the hypotheses of Theorems 1 and 2",
        ),
    }  # fmt: skip


def check(result: Result) -> dict:
    """The checks of the first seed's two runs (what the figure shows); see :func:`checks`."""
    return result.seeds[0].checks()


def outcomes(result: Result) -> tuple[dict, dict]:
    """``(checks, verdicts)`` of the :mod:`~minstab.experiments.base` protocol, over every seed."""
    return checks(rows(result)), verdicts(result)


def table(result: Result) -> str:
    """One line per (seed, run), then the wall time."""
    head = ("seed", "run", "final eta", "2/eta", "sharpness", "int|f''|g", "knots@x", "loss",
            "conv. at")  # fmt: skip
    lines = ["{:>4} {:>3} {:>9} {:>8} {:>10} {:>9} {:>7} {:>9} {:>8}".format(*head)]
    for r in rows(result):
        lines.append(
            f"{r['seed']:4d} {r['run']:>3} {r['eta_final']:9.4g} {r['two_over_eta']:8.4g} "
            f"{r['sharpness']:10.4g} {r['weighted_curvature']:9.4g} {r['num_toggling']:7d} "
            f"{r['loss']:9.2e} {r['converged_at']:8d}"
        )
    lines.append(f"wall {result.wall_s:.1f} s")
    return "\n".join(lines)


def to_json(result: Result) -> dict:
    """One row per (seed, run), the first seed's traces (the driver adds config, checks, verdicts)."""
    first = result.seeds[0]
    traces = {
        k: {"loss_trace": r.loss_trace.tolist(), "steps": r.steps.tolist(),
            "eta_trace": r.eta_trace.tolist()}
        for k, r in first.runs.items()
    }  # fmt: skip
    return {
        "wall_s": result.wall_s,
        "runs": rows(result),
        "first_seed_traces": traces,
    }


def plot(result: Result, out_dir) -> list[Path]:
    """The figure of the first seed."""
    import matplotlib.pyplot as plt

    c = result.config
    result = result.seeds[0]
    colors = {"A": "k", "B": "tab:green"}
    labels = {"A": f"eta = {c.eta:g}", "B": f"eta x {c.boost_factor:g} near the minimum"}
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    ax = axes[0]
    for k, r in result.runs.items():
        ok = r.loss_trace > 0
        ax.semilogy(r.steps[ok], r.loss_trace[ok], color=colors[k], label=labels[k], lw=1.3)
    done = [r.converged_at for r in result.runs.values() if r.converged_at > 0]
    if done:
        ax.set_xlim(0, 1.3 * max(done))
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title("(a) Loss vs. iteration")
    ax.legend(frameon=False)
    ax = axes[1]
    for k in result.runs:
        ax.plot(result.grid, result.f[k], color=colors[k], label=labels[k])
    ax.plot(result.x, result.y, "x", color="tab:red", ms=8, mew=2, label="training points")
    ax.set_title("(b) Interpolating functions found by GD")
    ax.set_xlabel("x")
    ax.legend(frameon=False, fontsize=8)
    ax = axes[2]
    for k, r in result.runs.items():
        ax.plot(result.grid, result.f2_smoothed[k], color=colors[k],
                label=f"|f''| smoothed ({labels[k]}); int|f''|g = {r.curvature:.3f}")  # fmt: skip
    ax.set_xlabel("x")
    ax.set_ylabel("|f''(x)| (smoothed)")
    ax2 = ax.twinx()
    ax2.fill_between(result.grid, result.g, color="tab:blue", alpha=0.15)
    ax2.plot(result.grid, result.g, color="tab:blue", lw=1.5, label="g(x)")
    ax2.set_ylabel("g(x)", color="tab:blue")
    ax.set_title("(c) Second derivative and the weight g")
    ax.legend(frameon=False, fontsize=7, loc="upper left")
    fig.tight_layout()
    return plotting.save(fig, out_dir, "fig1")
