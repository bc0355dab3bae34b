"""Seed 000 depth separation: the minimal stable budget of a bump grows, a smooth control's stays bounded.

Claim (seed 000; THEORY §4). A stable solution of GD with step size eta has a weighted Laplacian
norm (a weighted Radon-domain norm) sum |a| g <= 1/eta - 1/2. The compactly supported bump
sigma(1 - ||x||_1) has an infinite such norm (its kinks lie on segments, not on whole
hyperplanes), so no shallow net that is a stable solution for a fixed eta approximates it
arbitrarily well; a Sobolev-smooth function has a finite norm and can be. A two-hidden-layer ReLU
net realizes the bump exactly with a finite sharpness lambda, a minimum that is linearly stable
for eta < 2/lambda.

Protocol.

1. Minimal budgets. For each target (the bump and a smooth control, by default a Gaussian
   bump exp(-||x||^2 / (2 s^2))) on n uniform points in [-1.5, 1.5]^d, and each accuracy eps of a
   decreasing list, B(eps) = the smallest sum |c| g of a shallow ReLU network with
   max_i |f(x_i) - y_i| <= eps, an LP over a hyperplane dictionary
   (:func:`minstab.predict.minimal_budget`). eta_max(eps) = 1 / (B(eps) + 1/2) is then the
   largest step at which GD can have a stable solution that accurate. The claim is a
   *difference*: a bounded budget means increments B(eps/2) - B(eps) that shrink to 0 (the
   control), an unbounded one (log-divergent for a kink on a segment) increments that do not.
   Checked: the control's last increment is at most half its first; the bump's last increment
   is at least half its first. Both fail if the two targets behave alike (``--control l1-bump``
   makes the control the bump: the control claim must then fail). In the full run the tightest
   accuracy is solved again with a dictionary twice as fine in directions and offsets, to show
   how much of B is the dictionary's.
2. The deep net: :func:`minstab.deep.bump_network` fits the bump exactly (max error); its
   sharpness lambda (dense Hessian, and Lanczos); and linear stability checked by GD itself:
   started at theta* + delta v (v the top Hessian eigenvector), GD with eta = 0.9 * 2/lambda
   must return (the distance shrinks) and with eta = 1.1 * 2/lambda must leave (it grows).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .claims import claim, exit_status, format_claims
from .claims import to_json as claims_json

TARGETS = ("l1-bump", "gaussian")
STEP_FACTORS = (0.9, 1.1)  # eta = factor * 2 / lambda for the deep net's GD check


@dataclasses.dataclass(frozen=True)
class Config:
    """Sample, accuracies, dictionary and the deep-net check (module docstring)."""

    dim: int = 2
    n: int = 300  # training points, uniform on [-1.5, 1.5]^d
    accuracies: tuple[float, ...] = (0.1, 0.05, 0.025, 0.0125, 0.00625)
    num_directions: int = 48
    num_offsets: int = 48
    refine: bool = True  # solve the tightest accuracy again with a 2x finer dictionary
    control: str = "gaussian"
    gaussian_scale: float = 0.5
    gd_steps: int = 60
    gd_offset: float = 1e-6  # |theta_0 - theta*| for the deep net's GD check
    seed: int = 0
    quick: bool = False

    @classmethod
    def quick_config(cls, **kw) -> Config:
        """The ``--quick`` size (seconds)."""
        base = dict(n=200, accuracies=(0.1, 0.05, 0.025, 0.0125), num_directions=32,
                    num_offsets=32, refine=False, quick=True)  # fmt: skip
        base.update(kw)
        return cls(**base)


class Result(NamedTuple):
    accuracies: np.ndarray
    budget: dict  # target -> (A,) minimal budgets B(eps)
    max_error: dict  # target -> (A,) achieved max |f - y| of the LP's network
    refined: dict  # target -> B at the tightest eps with the finer dictionary (empty if not run)
    deep_sharpness: float  # lambda_max of the deep net at its exact fit (dense Hessian)
    deep_sharpness_lanczos: float
    deep_error: float  # max |deep(x) - bump(x)|
    deep_gd_ratio: dict  # step factor -> |theta_T - theta*| / |theta_0 - theta*|
    wall_s: float
    config: Config

    @property
    def eta_max(self) -> dict:
        """1 / (B + 1/2): the largest step with a stable solution that accurate (Theorem 1)."""
        return {k: 1 / (b + 0.5) for k, b in self.budget.items()}

    @property
    def increments(self) -> dict:
        """B(eps_{j+1}) - B(eps_j) along the accuracy list."""
        return {k: np.diff(b) for k, b in self.budget.items()}


def target(name: str, x, *, scale: float = 0.5) -> np.ndarray:
    """The targets on inputs (n, d): ``"l1-bump"`` sigma(1 - ||x||_1), ``"gaussian"``."""
    x = np.asarray(x, float)
    if name == "l1-bump":
        return np.maximum(1 - np.abs(x).sum(axis=-1), 0)
    if name == "gaussian":
        return np.exp(-np.sum(x * x, axis=-1) / (2 * scale**2))
    raise ValueError(f"target must be one of {TARGETS}, got {name!r}")


def _deep_check(x, config):
    import jax.numpy as jnp

    from ..deep import (
        bump,
        bump_network,
        deep_flatten,
        deep_forward,
        deep_gd,
        deep_hessian,
        deep_sharpness,
        deep_unflatten,
    )

    xj = jnp.asarray(x, jnp.float64)
    p = bump_network(config.dim, dtype=jnp.float64)
    y = bump(xj)
    err = float(jnp.max(jnp.abs(deep_forward(p, xj) - y)))
    lam_all, vec = jnp.linalg.eigh(deep_hessian(p, xj, y))
    lam = float(lam_all[-1])
    lam_l = float(deep_sharpness(p, xj, y).value)
    theta = deep_flatten(p)
    shape = (config.dim, (2 * config.dim, 1))
    start = deep_unflatten(theta + config.gd_offset * vec[:, -1], *shape)
    ratios = {}
    for f in STEP_FACTORS:
        q = deep_gd(start, xj, y, f * 2 / lam, steps=config.gd_steps)
        ratios[f] = float(jnp.linalg.norm(deep_flatten(q) - theta) / config.gd_offset)
    return lam, lam_l, err, ratios


def run(config: Config, *, progress=None) -> Result:
    """Minimal budgets of both targets at every accuracy, then the deep net's checks."""
    import jax

    from ..predict import minimal_budget

    if config.dim < 2:
        raise ValueError(f"dim must be at least 2 for the depth separation, got {config.dim}")
    jax.config.update("jax_enable_x64", True)
    t0 = time.perf_counter()
    x = np.random.default_rng(config.seed).uniform(-1.5, 1.5, (config.n, config.dim))
    names = ("l1-bump", config.control)
    budget, error, refined = {}, {}, {}
    kw = dict(num_directions=config.num_directions, num_offsets=config.num_offsets,
              seed=config.seed)  # fmt: skip
    for i, name in enumerate(names):
        key = name if i == 0 else "control"
        y = target(name, x, scale=config.gaussian_scale)
        res = []
        for eps in config.accuracies:
            res.append(minimal_budget(x, y, accuracy=float(eps), **kw))
            if progress is not None:
                progress.update(note=f"{key} eps={eps:g}")
        budget[key] = np.array([r.budget for r in res])
        error[key] = np.array([r.max_error for r in res])
        if config.refine:
            fine = dict(kw, num_directions=2 * config.num_directions,
                        num_offsets=2 * config.num_offsets)  # fmt: skip
            refined[key] = minimal_budget(
                x, y, accuracy=float(config.accuracies[-1]), **fine
            ).budget
            if progress is not None:
                progress.update(note=f"{key} finer dictionary")
    lam, lam_l, derr, ratios = _deep_check(x, config)
    if progress is not None:
        progress.update(note="deep net")
    return Result(np.asarray(config.accuracies, float), budget, error, refined, lam, lam_l, derr,
                  ratios, time.perf_counter() - t0, config)  # fmt: skip


def check(result: Result) -> dict:
    """The depth-separation claims (module docstring)."""
    inc = result.increments
    lo, hi = STEP_FACTORS
    rb, rc = inc["l1-bump"], inc["control"]
    lam = result.deep_sharpness
    ok = len(result.accuracies) >= 3
    ctl = result.config.control
    return {
        "control_budget_converges": claim(
            rc[-1] <= rc[0] / 2,
            f"{ctl}: increments of B {np.array2string(rc, precision=4)}: last <= first/2",
            covered=int(ok), total=1,
        ),
        "bump_budget_keeps_growing": claim(
            rb[-1] >= rb[0] / 2,
            f"l1-bump: increments of B {np.array2string(rb, precision=4)}: last >= first/2",
            covered=int(ok), total=1,
        ),
        "deep_net_exact": claim(
            result.deep_error <= 1e-12, f"max |deep(x) - bump(x)| = {result.deep_error:.1e}"
        ),
        "deep_sharpness_dense_matches_lanczos": claim(
            abs(result.deep_sharpness_lanczos - lam) <= 1e-6 * lam,
            f"dense {lam:.10g}, Lanczos {result.deep_sharpness_lanczos:.10g}",
        ),
        "deep_net_stable_below_2_over_lambda": claim(
            result.deep_gd_ratio[lo] < 1,
            f"GD at eta = {lo} * 2/lambda: distance ratio {result.deep_gd_ratio[lo]:.3g} after "
            f"{result.config.gd_steps} steps (< 1: returns)",
        ),
        "deep_net_leaves_above_2_over_lambda": claim(
            result.deep_gd_ratio[hi] > 1,
            f"GD at eta = {hi} * 2/lambda: distance ratio {result.deep_gd_ratio[hi]:.3g} (> 1: leaves)",
        ),
    }  # fmt: skip


def table(result: Result) -> str:
    cfg = result.config
    lines = [f"{'eps':>8} " + " ".join(f"{k + ' B':>14} {'eta_max':>8}" for k in result.budget)]
    lines.append("-" * len(lines[0]))
    for j, e in enumerate(result.accuracies):
        lines.append(f"{e:8.4g} " + " ".join(
            f"{result.budget[k][j]:14.5f} {result.eta_max[k][j]:8.4f}" for k in result.budget))  # fmt: skip
    lines.append("increments of B per halving of eps: " + "; ".join(
        f"{k} {np.array2string(v, precision=4)}" for k, v in result.increments.items()))  # fmt: skip
    if result.refined:
        lines.append(f"eps = {result.accuracies[-1]:g} with a dictionary of {2 * cfg.num_directions} x "
                     f"{2 * cfg.num_offsets} planes (instead of {cfg.num_directions} x {cfg.num_offsets}): "
                     + "; ".join(f"{k} B = {v:.5f} ({v / result.budget[k][-1] - 1:+.1%})"
                                 for k, v in result.refined.items()))  # fmt: skip
    lam = result.deep_sharpness
    eta = STEP_FACTORS[0] * 2 / lam
    lines.append(
        f"deep net sigma(1-||x||_1): max error {result.deep_error:.1e}, sharpness {lam:.5g} "
        f"(Lanczos {result.deep_sharpness_lanczos:.5g}); GD distance ratio after "
        f"{cfg.gd_steps} steps at {STEP_FACTORS[0]} * 2/lambda: "
        f"{result.deep_gd_ratio[STEP_FACTORS[0]]:.3g}, at {STEP_FACTORS[1]} * 2/lambda: "
        f"{result.deep_gd_ratio[STEP_FACTORS[1]]:.3g}"
    )
    lines.append(
        f"at the deep net's stable step eta = {eta:.4g} a shallow stable solution has budget "
        f"1/eta - 1/2 = {1 / eta - 0.5:.4g}"
    )
    return "\n".join(lines)


def plot(result: Result, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.9))
    labels = {"l1-bump": r"$\sigma(1-\|x\|_1)$", "control": f"control: {result.config.control}"}
    colors = {"l1-bump": "C3", "control": "C0"}
    e = result.accuracies
    for k, b in result.budget.items():
        axes[0].plot(1 / e, b, "o-", color=colors[k], label=labels[k])
        axes[1].plot(1 / e, result.eta_max[k], "o-", color=colors[k], label=labels[k])
        if k in result.refined:
            axes[0].plot(1 / e[-1], result.refined[k], "x", color=colors[k], ms=8,
                         label=f"{labels[k]}, 2x finer dictionary")  # fmt: skip
    eta = STEP_FACTORS[0] * 2 / result.deep_sharpness
    axes[1].axhline(eta, color="k", ls="--", lw=1,
                    label=rf"deep net stable at $\eta$ = {STEP_FACTORS[0]}$\cdot 2/\lambda$")  # fmt: skip
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel(r"accuracy $1/\varepsilon$  ($\max_i |f(x_i)-y_i| \leq \varepsilon$)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0].set_ylabel(r"minimal budget $B(\varepsilon) = \min \sum |c|\,g$  (weighted Radon norm)")
    axes[1].set_ylabel(r"largest stable step $1/(B + 1/2)$")
    cfg = result.config
    fig.suptitle(f"depth separation, d = {cfg.dim}, n = {cfg.n}, dictionary "
                 f"{cfg.num_directions} x {cfg.num_offsets}", fontsize=9)  # fmt: skip
    fig.tight_layout()
    from minstab import plotting

    return plotting.save(fig, out, "depth_separation")


def to_json(result: Result) -> dict:
    return {
        "config": dataclasses.asdict(result.config),
        "accuracies": result.accuracies,
        "minimal_budget": result.budget,
        "eta_max": result.eta_max,
        "increments": result.increments,
        "max_error": result.max_error,
        "finer_dictionary_budget": result.refined,
        "deep_sharpness": result.deep_sharpness,
        "deep_sharpness_lanczos": result.deep_sharpness_lanczos,
        "deep_max_error": result.deep_error,
        "deep_gd_distance_ratio": {str(k): v for k, v in result.deep_gd_ratio.items()},
        "wall_s": result.wall_s,
    }


def add_arguments(parser) -> None:
    a = parser.add_argument
    a("--out", default="minstab-out/depth-separation", help="output directory")
    a("--dim", type=int, default=None, help="input dimension d >= 2")
    a("--n", type=int, default=None, help="training points")
    a("--accuracies", type=float, nargs="+", default=None,
      help="decreasing accuracies eps (at least 3)")  # fmt: skip
    a("--directions", type=int, default=None, help="dictionary directions")
    a("--offsets", type=int, default=None, help="dictionary offsets per direction")
    a("--control", default=None, choices=TARGETS,
      help="the control target (l1-bump: a negative control, its claim must fail)")  # fmt: skip
    a("--seed", type=int, default=None)
    a("--quick", action="store_true", help="small sizes (seconds); also MINSTAB_QUICK=1")
    parser.set_defaults(dtype="float64")


def config_from_args(args) -> Config:
    """The :class:`Config` of a command line; bad values raise :class:`minstab.cli.UsageError`."""
    from ..cli import UsageError

    kw = {}
    for flag, name in (("dim", "dim"), ("n", "n"), ("seed", "seed"), ("control", "control"),
                       ("directions", "num_directions"), ("offsets", "num_offsets")):  # fmt: skip
        if getattr(args, flag, None) is not None:
            kw[name] = getattr(args, flag)
    if kw.get("dim", 2) < 2:
        raise UsageError(f"--dim: expected an integer >= 2, got {kw['dim']}")
    for flag, name in (
        ("--n", "n"),
        ("--directions", "num_directions"),
        ("--offsets", "num_offsets"),
    ):
        if kw.get(name, 1) < 1:
            raise UsageError(f"{flag}: expected a positive integer, got {kw[name]}")
    if args.accuracies is not None:
        acc = tuple(args.accuracies)
        if len(acc) < 3 or any(a <= 0 for a in acc) or any(np.diff(acc) >= 0):
            raise UsageError(
                f"--accuracies: expected at least 3 positive, decreasing values, got {list(acc)}"
            )
        kw["accuracies"] = acc
    quick = args.quick or os.environ.get("MINSTAB_QUICK") == "1"
    return Config.quick_config(**kw) if quick else Config(**kw)


def main(args) -> int:
    from .._io import write_json
    from ..progress import ProgressBar

    config = config_from_args(args)
    steps = 2 * len(config.accuracies) + 2 * int(config.refine) + 1
    with ProgressBar(steps, "depth-separation") as bar:
        result = run(config, progress=bar)
    claims = check(result)
    out = Path(args.out)
    paths = plot(result, out)
    write_json(out / "depth_separation.json", {**to_json(result), **claims_json(claims)})
    print(f"\nwall {result.wall_s:.1f} s")
    print(table(result))
    print(format_claims(claims))
    print("\nwrote " + ", ".join(str(p) for p in paths + [out / "depth_separation.json"]))
    return exit_status(claims)
