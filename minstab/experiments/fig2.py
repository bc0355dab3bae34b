"""Seed 004 Fig. 2: the weight g(x) of Theorem 1 for uniform, Gaussian and Laplace inputs.

For each law, the empirical g (eqs. 22-23 with X uniform over n samples, normalized to mean 0
and standard deviation 1) is drawn against the population g (the same formulas with the law's
density; numerical integration). As n grows the empirical curve converges to the population one;
the figure and the JSON report the sup-distance between them for the chosen n.

Outcomes (issue 29; :mod:`minstab.experiments.outcomes`). The sup-distances are measured for
``seeds`` seeds (fresh samples of every size per seed; the figure shows the first seed).

* Checks (a false one exits 1), against independent references: the population curve of the
  uniform law matches its closed form (X ~ U(-sqrt3, sqrt3): P(X < t) = (t + a)/2a,
  E[t - X | X < t] = (t + a)/2, E[X | X < t] = (t - a)/2, and the mirror image) to 1e-4; the
  empirical curve of every seed's n-sample matches a direct evaluation of eqs. 22-23 (sums over
  the samples, no prefix sums) to 1e-12; and the empirical curves approach the population
  curve: for every law the seed mean of the sup-distance at the largest n is at most half of
  that at the smallest n (a consequence of the law of large numbers that seed-to-seed noise
  cannot break; ``--no-standardize`` breaks it: raw samples converge to the weight of a
  differently scaled law).
* Verdict ``sqrt_n_rate`` (per seed; any result exits 0): for every law the sup-distance falls at
  least like the n^{-1/2} rate of the empirical probabilities and conditional means that g is
  made of, with a factor 3 allowed for sampling noise: d(n_max) <= 3 sqrt(n_min / n_max) d(n_min).

Protocol history (issue 29): before, one seed and the rate statement was a claim that made the
command exit 1; measured over 12 seeds it fails on 2 of them (sampling noise), so it is now a
per-seed verdict over 8 seeds and the check is the noise-proof "halves" statement above.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import plotting
from .base import option
from .outcomes import check as make_check
from .outcomes import verdict as make_verdict

DISTRIBUTIONS = ("uniform", "gaussian", "laplace")


@dataclasses.dataclass(frozen=True)
class Config:
    n: int = option(20, "samples per distribution (paper: 20)")
    seed: int = option(0, "first seed")
    grid: int = 801  # evaluation points on [-3, 3]
    sizes: tuple[int, ...] = (20, 200, 2000, 20000)  # for the convergence table
    standardize: bool = option(
        True,
        "samples normalized to mean 0, std 1, the paper's protocol (--no-standardize keeps the "
        "raw samples: the convergence check must fail)",
    )
    seeds: int = option(8, "seeds of the convergence measurement")

    def __post_init__(self):
        if self.n < 2:
            raise ValueError(f"n: expected an integer >= 2, got {self.n}")

    @classmethod
    def quick(cls, **kw) -> Config:
        """Smaller grid, sizes up to 2000 (seconds)."""
        return cls(**{**dict(grid=201, sizes=(20, 200, 2000)), **kw})


NAME = "fig2"


def progress_total(config: Config) -> int:
    """One tick per seed."""
    return config.seeds


class Result(NamedTuple):
    t: np.ndarray  # (grid,)
    samples: dict  # law -> (n,) normalized samples
    empirical: dict  # law -> (grid,)
    population: dict  # law -> (grid,)
    sup_distance: dict  # law -> {n: sup_t |g_n - g|} (first seed)
    config: Config
    distances: dict  # law -> (seeds, sizes) sup-distances
    direct_error: float  # largest |weight_1d - eqs. 22-23 summed directly| over seeds and laws


def _samples(law: str, n: int, rng: np.random.Generator, standardize: bool = True) -> np.ndarray:
    draw = {
        "uniform": lambda: rng.uniform(-1, 1, n),
        "gaussian": lambda: rng.standard_normal(n),
        "laplace": lambda: rng.laplace(0, 1, n),
    }[law]()
    return (draw - draw.mean()) / draw.std() if standardize else draw


def weight_direct(t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Eqs. 22-23 evaluated literally (masks and means over the samples): a reference for g."""
    t = np.asarray(t, float)[:, None]
    x = np.asarray(x, float)[None, :]
    n = x.shape[1]
    out = []
    for side in (x < t, x > t):
        cnt = side.sum(axis=1)
        safe = np.maximum(cnt, 1)
        mean = np.where(side, x, 0).sum(axis=1) / safe
        gap = np.abs(t[:, 0] - mean)
        out.append(np.where(cnt > 0, (cnt / n) ** 2 * gap * np.sqrt(1 + mean**2), 0.0))
    inside = (t[:, 0] >= x.min()) & (t[:, 0] <= x.max())
    return np.where(inside, np.minimum(*out), 0.0)


def uniform_closed_form(t: np.ndarray) -> np.ndarray:
    """Population g of the standardized uniform law U(-sqrt3, sqrt3), in closed form."""
    a = np.sqrt(3.0)
    t = np.asarray(t, float)
    p_lo, p_hi = (t + a) / (2 * a), (a - t) / (2 * a)
    g_lo = p_lo**2 * (t + a) / 2 * np.sqrt(1 + ((t - a) / 2) ** 2)
    g_hi = p_hi**2 * (a - t) / 2 * np.sqrt(1 + ((t + a) / 2) ** 2)
    return np.where(np.abs(t) <= a, np.minimum(g_lo, g_hi), 0.0)


def run(config: Config, *, out_dir=None, progress=None) -> Result:
    """The population curves, the first seed's empirical ones and every seed's sup-distances."""
    import jax.numpy as jnp

    from ..shallow.bounds import population_weight_1d, weight_1d

    t = np.linspace(-3, 3, config.grid)
    samples, emp, pop, dist = {}, {}, {}, {}
    direct = 0.0
    for law in DISTRIBUTIONS:
        pop[law] = np.asarray(population_weight_1d(jnp.asarray(t), law))
        dist[law] = np.empty((config.seeds, len(config.sizes)))
    for k in range(config.seeds):
        rng = np.random.default_rng(config.seed + k)
        for law in DISTRIBUTIONS:
            xs = _samples(law, config.n, rng, config.standardize)
            g_n = np.asarray(weight_1d(jnp.asarray(t), jnp.asarray(xs)))
            direct = max(direct, float(np.max(np.abs(g_n - weight_direct(t, xs)))))
            if k == 0:
                samples[law], emp[law] = xs, g_n
            for j, n in enumerate(config.sizes):
                xn = _samples(law, n, rng, config.standardize)
                g = np.asarray(weight_1d(jnp.asarray(t), jnp.asarray(xn)))
                dist[law][k, j] = float(np.max(np.abs(g - pop[law])))
        if progress is not None:
            progress.update(note=f"seed {config.seed + k}")
    first = {law: {n: float(dist[law][0, j]) for j, n in enumerate(config.sizes)}
             for law in DISTRIBUTIONS}  # fmt: skip
    return Result(t, samples, emp, pop, first, config, dist, direct)


def _ends(config: Config) -> tuple[int, int]:
    sizes = list(config.sizes)
    return sizes.index(min(sizes)), sizes.index(max(sizes))


def checks(result: Result) -> dict:
    """The three checks of the module docstring."""
    c = result.config
    lo, hi = _ends(c)
    err_pop = float(np.max(np.abs(result.population["uniform"] - uniform_closed_form(result.t))))
    means = {law: (float(np.mean(d[:, lo])), float(np.mean(d[:, hi])))
             for law, d in result.distances.items()}  # fmt: skip
    nl, nh = c.sizes[lo], c.sizes[hi]
    return {
        "population_uniform_matches_closed_form": make_check(
            err_pop <= 1e-4, f"max |g_pop - closed form| = {err_pop:.2e} (<= 1e-4)", covered=1
        ),
        "empirical_matches_direct_evaluation": make_check(
            result.direct_error <= 1e-12,
            f"max |weight_1d - eqs. 22-23 summed directly| = {result.direct_error:.2e} over "
            f"{c.seeds} seeds x {len(DISTRIBUTIONS)} laws (<= 1e-12)",
            covered=c.seeds * len(DISTRIBUTIONS),
        ),
        "empirical_approaches_population": make_check(
            nh > nl and all(h <= m / 2 for m, h in means.values()),
            f"seed-mean sup-distance n={nl} -> n={nh}: " + ", ".join(
                f"{k} {m:.4f} -> {h:.4f}" for k, (m, h) in means.items()) + " (at most half)",
            covered=len(DISTRIBUTIONS) if nh > nl else 0,
            why_none="one sample size: nothing to compare",
        ),
    }  # fmt: skip


def verdicts(result: Result) -> dict:
    """``{"sqrt_n_rate": Verdict}``: the n^{-1/2} rate per seed (module docstring)."""
    c = result.config
    lo, hi = _ends(c)
    allowed = 3 * np.sqrt(c.sizes[lo] / c.sizes[hi])
    per = []
    for k in range(c.seeds):
        ratios = {law: float(d[k, hi] / d[k, lo]) for law, d in result.distances.items()}
        per.append(dict(seed=c.seed + k, shown=all(r <= allowed for r in ratios.values()),
                        ratios=ratios, allowed=float(allowed)))  # fmt: skip
    return {"sqrt_n_rate": make_verdict(
        per, statement="the empirical weight g converges to the population g at the n^-1/2 rate",
        threshold=f"every law: d(n={c.sizes[hi]}) <= 3 sqrt({c.sizes[lo]}/{c.sizes[hi]}) "
        f"d(n={c.sizes[lo]}) = {allowed:.3f} d(n={c.sizes[lo]})")}  # fmt: skip


def outcomes(result: Result) -> tuple[dict, dict]:
    """``(checks, verdicts)`` of the :mod:`~minstab.experiments.base` protocol."""
    return checks(result), verdicts(result)


def table(result: Result) -> str:
    """The seed-mean sup-distance between the empirical and the population g, per n and law."""
    lines = ["sup_t |g_n(t) - g(t)| (empirical vs population), mean over seeds:",
             f"{'n':>8} " + " ".join(f"{law:>10}" for law in DISTRIBUTIONS)]  # fmt: skip
    for j, n in enumerate(result.config.sizes):
        lines.append(f"{n:>8} " + " ".join(
            f"{np.mean(result.distances[law][:, j]):10.4f}" for law in DISTRIBUTIONS))  # fmt: skip
    return "\n".join(lines)


def to_json(result: Result) -> dict:
    """Sup-distances and the first seed's curves (the driver adds config, checks, verdicts)."""
    return {
        "sup_distance_empirical_vs_population": {
            law: {str(n): v for n, v in d.items()} for law, d in result.sup_distance.items()
        },
        "sup_distance_per_seed": {law: d.tolist() for law, d in result.distances.items()},
        "t": result.t.tolist(),
        "empirical": {k: v.tolist() for k, v in result.empirical.items()},
        "population": {k: v.tolist() for k, v in result.population.items()},
    }


def plot(result: Result, out_dir) -> list[Path]:
    """The three laws' empirical and population weights (seed 004 Fig. 2)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
    titles = {"uniform": "(a) Uniform", "gaussian": "(b) Gaussian", "laplace": "(c) Laplace"}
    for ax, law in zip(axes, DISTRIBUTIONS, strict=True):
        ax.plot(result.t, result.population[law], color="tab:blue", lw=2, label="population")
        ax.plot(result.t, result.empirical[law], color="tab:red", lw=1.5,
                label=f"empirical (n = {result.config.n})")  # fmt: skip
        ax.plot(result.samples[law], np.zeros_like(result.samples[law]), "|", color="k", ms=8)
        ax.set_title(titles[law])
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("g(x)")
    axes[0].legend(frameon=False)
    fig.tight_layout()
    return plotting.save(fig, out_dir, "fig2_weights")
