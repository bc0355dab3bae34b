"""Seed 004 Fig. 2: the weight g(x) of Theorem 1 for uniform, Gaussian and Laplace inputs.

For each law, the empirical g (eqs. 22-23 with X uniform over n samples, normalized to mean 0
and standard deviation 1) is drawn against the population g (the same formulas with the law's
density; numerical integration). As n grows the empirical curve converges to the population one;
the figure and the JSON report the sup-distance between them for the chosen n.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

DISTRIBUTIONS = ("uniform", "gaussian", "laplace")


@dataclasses.dataclass(frozen=True)
class Config:
    n: int = 20  # samples per law, as in the paper
    seed: int = 0
    grid: int = 801  # evaluation points on [-3, 3]
    sizes: tuple[int, ...] = (20, 200, 2000, 20000)  # for the convergence table

    @classmethod
    def quick(cls) -> Config:
        return cls(grid=201, sizes=(20, 200, 2000))


class Result(NamedTuple):
    t: np.ndarray  # (grid,)
    samples: dict  # law -> (n,) normalized samples
    empirical: dict  # law -> (grid,)
    population: dict  # law -> (grid,)
    sup_distance: dict  # law -> {n: sup_t |g_n - g|}
    config: Config


def _samples(law: str, n: int, rng: np.random.Generator) -> np.ndarray:
    draw = {
        "uniform": lambda: rng.uniform(-1, 1, n),
        "gaussian": lambda: rng.standard_normal(n),
        "laplace": lambda: rng.laplace(0, 1, n),
    }[law]()
    return (draw - draw.mean()) / draw.std()


def run(config: Config, *, progress=None) -> Result:
    import jax.numpy as jnp

    from ..bounds import population_weight_1d, weight_1d

    rng = np.random.default_rng(config.seed)
    t = np.linspace(-3, 3, config.grid)
    samples, emp, pop, dist = {}, {}, {}, {}
    for law in DISTRIBUTIONS:
        samples[law] = _samples(law, config.n, rng)
        emp[law] = np.asarray(weight_1d(jnp.asarray(t), jnp.asarray(samples[law])))
        pop[law] = np.asarray(population_weight_1d(jnp.asarray(t), law))
        dist[law] = {}
        for n in config.sizes:
            xs = _samples(law, n, rng)
            g = np.asarray(weight_1d(jnp.asarray(t), jnp.asarray(xs)))
            dist[law][n] = float(np.max(np.abs(g - pop[law])))
        if progress is not None:
            progress.update(note=law)
    return Result(t, samples, emp, pop, dist, config)


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
    parser.set_defaults(dtype="float64")


def main(args) -> int:
    from ..progress import ProgressBar

    quick = args.quick or os.environ.get("MINSTAB_QUICK") == "1"
    base = Config.quick() if quick else Config()
    config = dataclasses.replace(base, n=args.n, seed=args.seed)
    with ProgressBar(len(DISTRIBUTIONS), "fig2") as bar:
        result = run(config, progress=bar)
    out = Path(args.out)
    paths = plot(result, out)
    (out / "fig2.json").write_text(json.dumps(to_json(result), indent=1))
    print("\nsup_t |g_n(t) - g(t)| (empirical vs population):")
    print(f"{'n':>8} " + " ".join(f"{law:>10}" for law in DISTRIBUTIONS))
    for n in config.sizes:
        print(
            f"{n:>8} " + " ".join(f"{result.sup_distance[law][n]:10.4f}" for law in DISTRIBUTIONS)
        )
    print("\nwrote " + ", ".join(str(p) for p in paths + [out / "fig2.json"]))
    return 0
