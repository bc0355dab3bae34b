"""Seed 004 Fig. 1: a larger step size near a minimum sends GD to a smoother interpolant.

Two GD runs of a univariate shallow ReLU net from the same initialization: run A keeps the step
size eta; run B multiplies it by 3 once the loss falls below ``boost_below`` (the schedule of
seed 004 Fig. 1, i.e. "initialize near a minimum and continue with two step sizes"). If the
minimum A is heading to is sharper than 2/(3 eta), B cannot stay there (Lemma 1): its loss
spikes and it lands on a flatter minimum, whose weighted curvature int |f''| g is smaller
(Theorem 1). Panels: (a) loss vs iteration, (b) the two interpolants with the data, (c) a
kernel-smoothed |f''| of both with the weight g of eqs. 22-23.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .claims import Claim, claim, exit_status, format_claims
from .claims import to_json as claims_to_json


@dataclasses.dataclass(frozen=True)
class Config:
    n: int = 8
    noise: float = 0.3
    width: int = 100
    output_scale: float = 0.3
    knot_range: tuple[float, float] = (-1.6, 1.6)
    eta: float = 0.02
    boost_factor: float = 3.0
    boost_below: float = 1e-7
    steps: int = 200_000
    tol: float = 1e-12
    log_every: int = 250
    seed: int = 0


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


class Result(NamedTuple):
    x: np.ndarray
    y: np.ndarray
    grid: np.ndarray
    f: dict  # "A"/"B" -> network on the grid
    f2_smoothed: dict  # "A"/"B" -> kernel-smoothed |f''|
    g: np.ndarray  # weight on the grid
    runs: dict  # "A"/"B" -> Run
    config: Config


def _smoothed_f2(params, grid, bandwidth):
    """|(K_h * f'')(t)|: f'' = sum_i w2_i |w1_i| delta(t - t_i), convolved with a Gaussian."""
    w = np.asarray(params.w1)[:, 0]
    live = w != 0
    t = -np.asarray(params.b1)[live] / w[live]
    m = np.asarray(params.w2)[live] * np.abs(w[live])
    kern = np.exp(-0.5 * ((grid[:, None] - t[None, :]) / bandwidth) ** 2)
    return np.abs(kern @ m) / (bandwidth * np.sqrt(2 * np.pi))


def run(config: Config, *, progress=None) -> Result:
    import jax
    import jax.numpy as jnp

    from .. import data, nets
    from ..bounds import weight_1d, weighted_curvature
    from ..curvature import sharpness
    from ..train import train

    x, y = data.toy_1d(n=config.n, key=jax.random.key(config.seed), noise=config.noise)
    p0 = nets.init_shallow(
        jax.random.key(config.seed + 1), 1, config.width,
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
        runs[name] = Run(
            np.asarray(r.log.loss), np.asarray(r.log.step), np.asarray(r.log.eta),
            float(r.loss), bool(r.converged), int(r.converged_at),
            float(sharpness(p, x, y)), float(weighted_curvature(p, x)),
            tuple(np.asarray(a) for a in p),
        )  # fmt: skip
        f[name] = np.asarray(nets.forward(p, jnp.asarray(grid)))
        f2[name] = _smoothed_f2(p, grid, bandwidth=0.03 * (hi - lo))
        if progress is not None:
            progress.update(note=f"run {name}")
    g = np.asarray(weight_1d(jnp.asarray(grid), x))
    return Result(np.asarray(x), np.asarray(y), grid, f, f2, g, runs, config)


def check(result: Result) -> dict[str, Claim]:
    """The figure's claims: both runs converge, the larger step ends smoother, Lemma 1 for both."""
    a, b = result.runs["A"], result.runs["B"]
    eta = result.config.eta
    eta_b = eta * result.config.boost_factor
    return {
        "both_runs_converge": claim(
            a.converged and b.converged, f"A converged: {a.converged}, B: {b.converged}"
        ),
        "larger_step_ends_smoother": claim(
            b.curvature < a.curvature,
            f"int|f''|g: B {b.curvature:.4g} vs A {a.curvature:.4g} (Theorem 1's budget shrinks)",
        ),
        "lemma1_run_a": claim(
            a.sharpness <= 2 / eta * (1 + 1e-6),
            f"sharpness {a.sharpness:.5g} vs 2/eta {2 / eta:.5g}",
        ),
        "lemma1_run_b": claim(
            b.sharpness <= 2 / eta_b * (1 + 1e-6),
            f"sharpness {b.sharpness:.5g} vs 2/eta {2 / eta_b:.5g}",
        ),
    }


def plot(result: Result, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    c = result.config
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
    from minstab import plotting

    return plotting.save(fig, out, "fig1")


def to_json(result: Result) -> dict:
    runs = {
        k: {
            "loss": r.loss, "converged": r.converged, "converged_at": r.converged_at,
            "sharpness": r.sharpness, "weighted_curvature": r.curvature,
            "eta_final": float(r.eta_trace[-1]), "two_over_eta_final": 2 / float(r.eta_trace[-1]),
            "loss_trace": r.loss_trace.tolist(), "steps": r.steps.tolist(),
        }
        for k, r in result.runs.items()
    }  # fmt: skip
    return {
        "config": dataclasses.asdict(result.config),
        "runs": runs,
        **claims_to_json(check(result)),
    }


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="minstab-out/fig1", help="output directory")
    parser.add_argument("--eta", type=float, default=Config.eta, help="step size of run A")
    parser.add_argument("--factor", type=float, default=Config.boost_factor,
                        help="run B multiplies eta by this near the minimum")  # fmt: skip
    parser.add_argument("--width", type=int, default=Config.width, help="neurons k")
    parser.add_argument("--steps", type=int, default=Config.steps, help="GD steps per run")
    parser.add_argument("--seed", type=int, default=Config.seed, help="random seed")
    parser.add_argument(
        "--quick", action="store_true", help="accepted for symmetry (already < 1 min)"
    )
    parser.set_defaults(dtype="float64")


def main(args) -> int:
    from minstab._io import write_json

    from ..progress import ProgressBar

    config = Config(eta=args.eta, boost_factor=args.factor, width=args.width, steps=args.steps,
                    seed=args.seed)  # fmt: skip
    with ProgressBar(2, "fig1") as bar:
        result = run(config, progress=bar)
    out = Path(args.out)
    paths = plot(result, out)
    write_json(out / "fig1.json", to_json(result))
    head = ("run", "final eta", "2/eta", "sharpness", "int|f''|g", "loss", "converged at")
    print("\n{:>4} {:>10} {:>8} {:>10} {:>10} {:>9} {:>12}".format(*head))
    for k, r in result.runs.items():
        e = float(r.eta_trace[-1])
        print(f"{k:>4} {e:10.4g} {2 / e:8.4g} {r.sharpness:10.4g} {r.curvature:10.4g} "
              f"{r.loss:9.2e} {r.converged_at:12d}")  # fmt: skip
    claims = check(result)
    print("\nwrote " + ", ".join(str(p) for p in paths + [out / "fig1.json"]))
    print(format_claims(claims))
    return exit_status(claims)
