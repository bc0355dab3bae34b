"""Seed 004 Fig. 2: the weight g(x) of Theorem 1 for uniform, Gaussian and Laplace inputs.

For each law, the empirical g (eqs. 22-23 with X uniform over n samples, normalized to mean 0
and standard deviation 1) is drawn against the population g (the same formulas with the law's
density; numerical integration). As n grows the empirical curve converges to the population one;
the figure and the JSON report the sup-distance between them for the chosen n.

Claims: (1) for every law the sup-distance falls at least like the n^{-1/2} rate of the empirical
probabilities and conditional means that g is made of, with a factor 3 allowed for sampling noise:
d(n_max) <= 3 sqrt(n_min / n_max) d(n_min); (2) the population curve of the uniform law matches its
closed form (X ~ U(-sqrt3, sqrt3): P(X < t) = (t + a)/2a, E[t - X | X < t] = (t + a)/2,
E[X | X < t] = (t - a)/2, and the mirror image), to 1e-4; (3) the empirical curve at n = 20 matches
a direct evaluation of eqs. 22-23 (sums over the samples, no prefix sums) to 1e-12. The flag
``--no-standardize`` skips the normalization of the samples to mean 0 and std 1, so the empirical
curves converge to the weight of a differently scaled law: claim (1) must then fail.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .claims import claim, exit_status, format_claims
from .claims import to_json as claims_json

DISTRIBUTIONS = ("uniform", "gaussian", "laplace")


@dataclasses.dataclass(frozen=True)
class Config:
    n: int = 20  # samples per law, as in the paper
    seed: int = 0
    grid: int = 801  # evaluation points on [-3, 3]
    sizes: tuple[int, ...] = (20, 200, 2000, 20000)  # for the convergence table
    standardize: bool = True  # samples normalized to mean 0, std 1 (the paper's protocol)

    @classmethod
    def quick(cls, **kw) -> Config:
        return cls(**{**dict(grid=201, sizes=(20, 200, 2000)), **kw})


class Result(NamedTuple):
    t: np.ndarray  # (grid,)
    samples: dict  # law -> (n,) normalized samples
    empirical: dict  # law -> (grid,)
    population: dict  # law -> (grid,)
    sup_distance: dict  # law -> {n: sup_t |g_n - g|}
    config: Config


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


def run(config: Config, *, progress=None) -> Result:
    import jax.numpy as jnp

    from ..bounds import population_weight_1d, weight_1d

    rng = np.random.default_rng(config.seed)
    t = np.linspace(-3, 3, config.grid)
    samples, emp, pop, dist = {}, {}, {}, {}
    for law in DISTRIBUTIONS:
        samples[law] = _samples(law, config.n, rng, config.standardize)
        emp[law] = np.asarray(weight_1d(jnp.asarray(t), jnp.asarray(samples[law])))
        pop[law] = np.asarray(population_weight_1d(jnp.asarray(t), law))
        dist[law] = {}
        for n in config.sizes:
            xs = _samples(law, n, rng, config.standardize)
            g = np.asarray(weight_1d(jnp.asarray(t), jnp.asarray(xs)))
            dist[law][n] = float(np.max(np.abs(g - pop[law])))
        if progress is not None:
            progress.update(note=law)
    return Result(t, samples, emp, pop, dist, config)


def check(result: Result) -> dict:
    """The three claims of the module docstring."""
    sizes = sorted(result.config.sizes)
    lo, hi = sizes[0], sizes[-1]
    allowed = 3 * np.sqrt(lo / hi)
    ratios = {
        law: result.sup_distance[law][hi] / result.sup_distance[law][lo] for law in DISTRIBUTIONS
    }
    err_pop = float(np.max(np.abs(result.population["uniform"] - uniform_closed_form(result.t))))
    err_emp = max(float(np.max(np.abs(result.empirical[law] - weight_direct(result.t, result.samples[law]))))
                  for law in DISTRIBUTIONS)  # fmt: skip
    return {
        "empirical_converges_to_population": claim(
            len(sizes) >= 2 and all(r <= allowed for r in ratios.values()),
            f"sup-distance ratio n={hi} / n={lo}: "
            + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items())
            + f" (allowed <= 3 sqrt({lo}/{hi}) = {allowed:.3f})",
            covered=len(DISTRIBUTIONS), total=len(DISTRIBUTIONS),
        ),
        "population_uniform_matches_closed_form": claim(
            err_pop <= 1e-4, f"max |g_pop - closed form| = {err_pop:.2e} (<= 1e-4)"
        ),
        "empirical_matches_direct_evaluation": claim(
            err_emp <= 1e-12, f"max |weight_1d - eqs. 22-23 summed directly| = {err_emp:.2e}"
        ),
    }  # fmt: skip


def plot(result: Result, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
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
    from minstab import plotting

    return plotting.save(fig, out, "fig2_weights")


def to_json(result: Result) -> dict:
    return {
        "config": dataclasses.asdict(result.config),
        "sup_distance_empirical_vs_population": {
            law: {str(n): v for n, v in d.items()} for law, d in result.sup_distance.items()
        },
        "t": result.t.tolist(),
        "empirical": {k: v.tolist() for k, v in result.empirical.items()},
        "population": {k: v.tolist() for k, v in result.population.items()},
    }


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="minstab-out/fig2", help="output directory")
    parser.add_argument("--n", type=int, default=20, help="samples per distribution (paper: 20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--quick", action="store_true", help="smaller grid (seconds)")
    parser.add_argument("--no-standardize", dest="standardize", action="store_false",
                        help="keep the raw samples (not the paper's protocol: the convergence "
                             "claim must fail)")  # fmt: skip
    parser.set_defaults(dtype="float64")


def main(args) -> int:
    from ..progress import ProgressBar

    quick = args.quick or os.environ.get("MINSTAB_QUICK") == "1"
    base = Config.quick() if quick else Config()
    from .._io import write_json
    from ..cli import UsageError

    if args.n < 2:
        raise UsageError(f"--n: expected an integer >= 2, got {args.n}")
    config = dataclasses.replace(base, n=args.n, seed=args.seed,
                                 standardize=getattr(args, "standardize", True))  # fmt: skip
    with ProgressBar(len(DISTRIBUTIONS), "fig2") as bar:
        result = run(config, progress=bar)
    claims = check(result)
    out = Path(args.out)
    paths = plot(result, out)
    write_json(out / "fig2.json", {**to_json(result), **claims_json(claims)})
    print("\nsup_t |g_n(t) - g(t)| (empirical vs population):")
    print(f"{'n':>8} " + " ".join(f"{law:>10}" for law in DISTRIBUTIONS))
    for n in config.sizes:
        print(
            f"{n:>8} " + " ".join(f"{result.sup_distance[law][n]:10.4f}" for law in DISTRIBUTIONS)
        )
    print(format_claims(claims))
    print("\nwrote " + ", ".join(str(p) for p in paths + [out / "fig2.json"]))
    return exit_status(claims)
