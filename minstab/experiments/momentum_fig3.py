"""Seed 004 Fig. 3's protocol with heavy-ball momentum: the momentum bound and the moved edge.

Heavy ball (optax ``sgd(momentum=beta)``: ``t' = g + beta t``, ``theta' = theta - eta t'``) is
linearly stable at a minimum only if lambda_max <= (2 + 2 beta)/eta
(:func:`minstab.stability_threshold`). With Lemma 4 (lambda_max >= 1 + 2 int |f''| g at an
interpolating minimum) this gives, at a stable twice-differentiable minimum,

    int |f''| g <= (1 + beta)/eta - 1/2                       (:func:`minstab.momentum_budget`)

Theorem 1's argument with the new threshold (THEORY §7; no paper we know of states or tests it).

Protocol: the main job's (``minstab sweep``, seed 004 Fig. 3: one shared random initialization,
many step sizes, full batch) on the same data and initialization per seed (:func:`setup`: n = 8
points of ``toy_1d`` with noise 0.3, width 16, knots uniform over the data, output scale 4), with
heavy ball in place of GD. The step-size grid is the main job's GD grid times (1 + beta), so that
every run's threshold (2 + 2 beta)/eta equals the GD threshold 2/eta_GD of the corresponding GD
run: the same range of sharpness is probed. Each run stops when its loss has stayed below
``tol`` for ``patience`` steps.

Checks (must hold on every eligible run; a false one exits 1), over the converged runs of every
seed whose minimum is twice differentiable (no knot within ``atol`` of a data point, where the
mode interval of Lemma 2/3 is a single point):

* ``momentum_stability_necessary``: sharpness <= (2 + 2 beta)/eta (1e-3 relative slack for the
  distance to the minimum);
* ``momentum_bound``: int |f''| g <= (1 + beta)/eta - 1/2;
* ``lemma4_order`` (every converged run): 1 + 2 int |f''| g <= flattest sharpness <= sharpness.

Verdict (per seed, the main job's criterion with the momentum threshold): ``edge``: the *band*
runs (converged, threshold below the sharpness reached at the smallest converged eta, so GD
could not stay at that minimum) end at the edge, median |lambda / threshold - 1| <= ``edge_tol``
(0.05) over the band; a seed without a band run is not judged.

The functions :func:`momentum_checks` and :func:`edge_rows` take any heavy-ball
:class:`minstab.SweepResult` (with mode intervals), so ``minstab sweep --optimizer momentum
--beta 0.9`` can report the same outcomes.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._cli_args import momentum_beta
from .base import option, seed_count, seed_tuple
from .outcomes import check, verdict

__all__ = ["Config", "Result", "setup", "run", "momentum_checks", "edge_rows", "outcomes",
           "table", "plot", "to_json"]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Config:
    """Seeds, heavy ball's beta and the main job's sweep settings (commit a1cda7f)."""

    seeds: tuple[int, ...] = option(
        tuple(range(8)), "the seeds, given as their number N (seeds 0..N-1)"
    )
    beta: float = option(0.9, "heavy-ball momentum in [0, 1)", type=momentum_beta)
    # the main job's data and initialization (minstab sweep)
    n: int = 8
    noise: float = 0.3
    width: int = 16
    init_scale: float = 1.0
    output_scale: float = 4.0
    # the main job's GD grid, scaled by (1 + beta)
    num_etas: int = 40
    eta_lo: float = 0.05
    eta_hi: float = 0.4
    steps: int = 100_000
    tol: float = 1e-11
    patience: int = 5000
    log_every: int = 1000
    chunk_size: int = 40
    atol: float = 1e-6  # knots this close (relative) to a data point make a kink
    edge_tol: float = 0.05
    min_seeds: int = 4

    def __post_init__(self):
        object.__setattr__(self, "seeds", seed_tuple(self.seeds))
        if not 0 <= self.beta < 1:
            raise ValueError(f"beta: expected a momentum in [0, 1), got {self.beta}")

    @classmethod
    def quick(cls, **kw) -> Config:
        """Two seeds, the main job's quick grid (12 step sizes in [0.09, 0.36] x (1 + beta))."""
        base = dict(seeds=(0, 1), num_etas=12, eta_lo=0.09, eta_hi=0.36, steps=60_000,
                    chunk_size=12)  # fmt: skip
        base.update(kw)
        return cls(**base)

    def step_sizes(self) -> np.ndarray:
        """The GD grid of the main job times (1 + beta): thresholds equal to GD's 2/eta_GD."""
        return (1 + self.beta) * np.geomspace(self.eta_lo, self.eta_hi, self.num_etas)


NAME = "momentum_fig3"
CONFIG_TYPES = {"seeds": seed_count()}


def progress_total(config: Config) -> int:
    """One tick per seed (one sweep each)."""
    return len(config.seeds)


class Result(NamedTuple):
    config: Config
    sweeps: dict  # seed -> minstab.SweepResult (with mode intervals)
    wall_s: float


def setup(config: Config, seed: int):
    """(x, y, params0): the main job's toy data and shared initialization for ``seed``."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import minstab as ms

    dt = jnp.float64
    x, y = ms.data.toy_1d(n=config.n, key=jax.random.key(seed), noise=config.noise, dtype=dt)
    p = ms.init_shallow(
        jax.random.key(seed + 1), 1, config.width, scheme="ntk",
        knot_range=(float(x.min()), float(x.max())), output_scale=config.output_scale, dtype=dt,
    )  # fmt: skip
    p = p._replace(w1=p.w1 * config.init_scale, b1=p.b1 * config.init_scale)
    return x, y, p


def run(config: Config, *, out_dir=None, progress=None) -> Result:
    """One heavy-ball sweep per seed (chunks cached under ``out_dir/seed_<seed>``)."""
    import minstab as ms

    t0 = time.perf_counter()
    sweeps = {}
    for seed in config.seeds:
        x, y, p0 = setup(config, seed)
        res = ms.sweep(
            p0, x, y, config.step_sizes(), optimizer="momentum", momentum=config.beta,
            steps=config.steps, tol=config.tol, patience=config.patience,
            log_every=min(config.log_every, config.steps), chunk_size=config.chunk_size,
            out_dir=None if out_dir is None else str(Path(out_dir) / f"seed_{seed}"),
            progress=False,
            extra_config={"experiment": "momentum_fig3", "seed_data": seed},
        )  # fmt: skip
        sweeps[seed] = res.with_mode_intervals(atol=config.atol)
        if progress is not None:
            progress.update(1, f"seed {seed}")
    return Result(config, sweeps, time.perf_counter() - t0)


# --------------------------------------------------------------------------- outcomes
_FORMULA = {"momentum": "(2 + 2 beta)/eta", "nesterov": "(2 + 2 beta)/(eta (1 + 2 beta))"}
_BUDGET = {"momentum": "(1 + beta)/eta - 1/2", "nesterov": "(1 + beta)/(eta (1 + 2 beta)) - 1/2"}


def _threshold(res, beta: float, optimizer: str = "momentum") -> np.ndarray:
    import minstab as ms

    return np.asarray(ms.stability_threshold(optimizer, np.asarray(res.etas), beta=beta))


def _check_optimizer(optimizer: str) -> None:
    if optimizer not in _FORMULA:
        raise ValueError(f"optimizer must be 'momentum' or 'nesterov', got {optimizer!r}")


def momentum_checks(sweeps, beta: float, *, optimizer: str = "momentum") -> dict:
    """The momentum checks of the module docstring over the converged runs of ``sweeps``.

    ``sweeps``: heavy-ball (or, with ``optimizer="nesterov"``, Nesterov)
    :class:`minstab.SweepResult` objects with mode intervals
    (:meth:`minstab.SweepResult.with_mode_intervals`), e.g. one per seed. The budget on
    int |f''| g is threshold/2 - 1/2 (Lemma 4, lambda_max >= 1 + 2 int |f''| g, with the
    optimizer's threshold): (1 + beta)/eta - 1/2 for heavy ball (:func:`minstab.momentum_budget`).
    """
    _check_optimizer(optimizer)
    conv = smooth = 0
    nec, bound, order = [], [], []
    worst_nec = worst_bound = -np.inf
    for res in sweeps:
        c = np.asarray(res.converged)
        sm = c & (np.asarray(res.lambda_lower) == np.asarray(res.lambda_upper))
        conv += int(c.sum())
        smooth += int(sm.sum())
        thr = _threshold(res, beta, optimizer)
        lam = np.asarray(res.sharpness)
        nec.append(lam[sm] <= thr[sm] * (1 + 1e-3))
        budget = thr / 2 - 0.5  # Lemma 4: lambda_max >= 1 + 2 int|f''|g
        curv = np.asarray(res.weighted_curvature)
        bound.append(curv[sm] <= budget[sm])
        if sm.any():
            worst_nec = max(worst_nec, float(np.max(lam[sm] / thr[sm])))
            worst_bound = max(worst_bound, float(np.max(curv[sm] - budget[sm])))
        lb, fl = np.asarray(res.lower_bound)[c], np.asarray(res.flattest_sharpness)[c]
        order.append((lb <= fl * (1 + 1e-6)) & (fl <= lam[c] * (1 + 1e-6)))
    nec, bound, order = (np.concatenate(a) if a else np.zeros(0, bool) for a in (nec, bound, order))
    why = (
        "no converged run has a twice-differentiable minimum (every one has a knot on a data point)"
        if conv
        else "no run converged"
    )
    nec_text = f"{worst_nec:.4g}" if smooth else "-"
    bound_text = f"{worst_bound:.4g}" if smooth else "-"
    return {
        "momentum_stability_necessary": check(
            bool(nec.all()), f"{int(nec.sum())} of {smooth} twice-differentiable converged runs "
            f"have sharpness <= {_FORMULA[optimizer]}; largest lambda / threshold {nec_text}",
            covered=smooth, eligible=smooth, why_none=why,
        ),
        "momentum_bound": check(
            bool(bound.all()), f"int|f''|g <= {_BUDGET[optimizer]} on {int(bound.sum())} of "
            f"{smooth}; largest int|f''|g - budget {bound_text}",
            covered=smooth, eligible=smooth, why_none=why,
        ),
        "lemma4_order": check(
            bool(order.all()), f"1 + 2 int|f''|g <= flattest <= sharpness on {int(order.sum())} "
            f"of {conv} converged runs", covered=conv,
            why_none="no run converged",
        ),
    }  # fmt: skip


def edge_rows(sweeps: dict, beta: float, edge_tol: float, *,
              optimizer: str = "momentum") -> list[dict]:  # fmt: skip
    """Per seed: the band runs and whether their median |lambda/threshold - 1| <= edge_tol."""
    _check_optimizer(optimizer)
    rows = []
    for seed, res in sweeps.items():
        e, c = np.asarray(res.etas), np.asarray(res.converged)
        thr = _threshold(res, beta, optimizer)
        lam = np.asarray(res.sharpness)
        ref = float(lam[np.flatnonzero(c)[np.argmin(e[c])]]) if c.any() else np.nan
        band = c & (thr < ref)
        dev = np.abs(lam / thr - 1)
        med = float(np.median(dev[band])) if band.any() else float("nan")
        rows.append({
            "seed": seed, "shown": bool(med <= edge_tol) if band.any() else None,
            "converged": int(c.sum()), "runs": int(e.size), "band_runs": int(band.sum()),
            "reference_sharpness": ref, "median_edge_dev": med,
            "band_ratios": [float(v) for v in (lam / thr)[band]],
        })  # fmt: skip
    return rows


def outcomes(result: Result) -> tuple[dict, dict]:
    c = result.config
    checks = momentum_checks(list(result.sweeps.values()), c.beta)
    v = {
        "edge": verdict(
            edge_rows(result.sweeps, c.beta, c.edge_tol), min_seeds=c.min_seeds,
            statement="heavy ball ends at the edge of stability, lambda ~ (2 + 2 beta)/eta",
            threshold=f"median |lambda / ((2 + 2 beta)/eta) - 1| <= {c.edge_tol} over the band "
            "runs (converged, threshold below the sharpness at the smallest converged eta)",
        )
    }  # fmt: skip
    return checks, v


def table(result: Result) -> str:
    """The run header and one row per seed: converged runs, band, edge deviation, budget gap."""
    import minstab as ms

    c = result.config
    lines = [f"heavy ball beta = {c.beta}, {len(c.seeds)} seeds, {c.num_etas} step sizes in "
             f"[{c.step_sizes()[0]:.3g}, {c.step_sizes()[-1]:.3g}], wall {result.wall_s:.1f} s",
             f"{'seed':>4} {'conv':>6} {'band':>5} {'median |lam/thr - 1|':>21} "
             f"{'max curv - budget (smooth runs)':>32}"]  # fmt: skip
    for seed, res in result.sweeps.items():
        row = edge_rows({seed: res}, c.beta, c.edge_tol)[0]
        conv = np.asarray(res.converged)
        sm = conv & (np.asarray(res.lambda_lower) == np.asarray(res.lambda_upper))
        gap = (np.asarray(res.weighted_curvature)
               - np.asarray(ms.momentum_budget(np.asarray(res.etas), beta=c.beta)))  # fmt: skip
        worst = f"{float(np.max(gap[sm])):.4g}" if sm.any() else "-"
        lines.append(f"{seed:>4} {row['converged']:>3}/{row['runs']:<2} {row['band_runs']:>5} "
                     f"{row['median_edge_dev']:>21.3g} {worst:>32}")  # fmt: skip
    return "\n".join(lines)


def plot(result: Result, out_dir) -> list[Path]:
    """No figure: the per-seed sweeps are the main job's (``minstab sweep`` draws them)."""
    return []


def to_json(result: Result) -> dict:
    """The config, the wall time and per seed the arrays the checks and verdicts read."""
    return {
        "config": dataclasses.asdict(result.config), "wall_s": result.wall_s,
        "seeds": {str(s): {"etas": r.etas, "converged": r.converged, "sharpness": r.sharpness,
                           "weighted_curvature": r.weighted_curvature,
                           "lambda_lower": r.lambda_lower, "lambda_upper": r.lambda_upper}
                  for s, r in result.sweeps.items()},
    }  # fmt: skip
