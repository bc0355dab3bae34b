"""Seed 000 depth separation: the minimal stable budget of a bump grows, a smooth control's stays bounded.

Claim (seed 000; THEORY §4). A stable solution of GD with step size eta has a weighted Laplacian
norm (a weighted Radon-domain norm) sum |a| g <= 1/eta - 1/2. The compactly supported bump
sigma(1 - ||x||_1) has an infinite such norm (its kinks lie on segments, not on whole
hyperplanes), so no shallow net that is a stable solution for a fixed eta approximates it
arbitrarily well; a Sobolev-smooth function has a finite norm and can be. A two-hidden-layer ReLU
net realizes the bump exactly with a finite sharpness lambda, a minimum that is linearly stable
for eta < 2/lambda.

Protocol (issue 29), per seed (the seed draws the n training points; everything else is
deterministic: in d = 2 the dictionary's directions are evenly spaced angles and its offsets
evenly spaced in the data's range, and the LP has one optimal value):

1. Minimal budgets. For each target (the bump and a smooth control, by default a Gaussian
   bump exp(-||x||^2 / (2 s^2))) on n uniform points in [-1.5, 1.5]^d, each accuracy eps of a
   decreasing list, and each dictionary of m x m hyperplanes (m directions times m offsets,
   m in ``dictionaries``: 32, 64, 128, 256; ``--quick``: 32, 64), B(eps) = the smallest sum |c| g
   of a shallow ReLU network with max_i |f(x_i) - y_i| <= eps, an LP
   (:func:`minstab.shallow.predict.minimal_budget`). eta_max(eps) = 1 / (B(eps) + 1/2) is then the
   largest step at which GD can have a stable solution that accurate. A bounded budget means
   increments B(eps/2) - B(eps) that shrink to 0 (the control), an unbounded one
   (log-divergent for a kink on a segment) increments that do not.
2. The deep net: :func:`minstab.shallow.deep.bump_network` fits the bump exactly (max error); its
   sharpness lambda (dense Hessian, and Lanczos); and linear stability checked by GD itself:
   started at theta* + delta v (v the top Hessian eigenvector), GD with eta = 0.9 * 2/lambda
   returns (the distance shrinks) and with eta = 1.1 * 2/lambda leaves (it grows).

Verdict ``depth_separation`` (criterion fixed by issue 29): on a seed, the separation shows when,
at each of the two finest dictionaries, every increment of the bump after the first stays >= half
its first increment while the control's last increment falls below half of its own first. The
convergence in dictionary size is reported beside it: B at each accuracy per dictionary, and the
relative change of B between the two finest dictionaries (if that change is not small, the
budgets are still the dictionary's, and so is the verdict).

Checks (must hold on every seed if the code and the theorems are right): each LP's network meets
its accuracy (max error <= eps); B never falls as eps tightens (a tighter constraint cannot cost
less, same dictionary); the deep net is exact; dense and Lanczos sharpness agree; GD returns at
0.9 * 2/lambda and leaves at 1.1 * 2/lambda (Lemma 1 at a twice-differentiable minimum).

``--control l1-bump`` makes the control the bump: the verdict must then come out
"not reproduced".
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import plotting
from .._cli_args import float_list, positive_float, positive_int
from .base import option, resume_seeds, stored_key
from .outcomes import check as make_check
from .outcomes import verdict

TARGETS = ("l1-bump", "gaussian")
STEP_FACTORS = (0.9, 1.1)  # eta = factor * 2 / lambda for the deep net's GD check
ROLES = ("l1-bump", "control")
# the LP's accuracy and monotonicity hold up to the solver's tolerance (HiGHS, ~1e-9 absolute)
LP_TOL = 1e-7


@dataclasses.dataclass(frozen=True)
class Config:
    """Sample, accuracies, dictionaries, seeds and the deep-net check (module docstring)."""

    dim: int = option(2, "input dimension d >= 2")
    n: int = option(300, "training points, uniform on [-1.5, 1.5]^d")
    accuracies: tuple[float, ...] = option(
        (0.1, 0.05, 0.025, 0.0125, 0.00625),
        "decreasing accuracies eps, comma-separated (at least 3)", type=float_list(positive_float))  # fmt: skip
    dictionaries: tuple[int, ...] = option(
        (32, 64, 128, 256), "dictionary sizes m (m directions x m offsets), comma-separated, "
        "increasing, at least 2", type=float_list(positive_int))  # fmt: skip
    control: str = option("gaussian", "the control target (l1-bump: a negative control, the "
                          "separation must not show)", choices=TARGETS)  # fmt: skip
    gaussian_scale: float = 0.5
    gd_steps: int = 60
    gd_offset: float = 1e-6  # |theta_0 - theta*| for the deep net's GD check
    seed: int = option(0, "first seed (draw of the points)")
    seeds: int = option(4, "number of seeds: seed, seed + 1, ..., each draws its own n points")

    def __post_init__(self):
        if self.dim < 2:
            raise ValueError(
                f"dim: expected an integer >= 2 (the depth separation), got {self.dim}"
            )
        if self.n < 2:
            raise ValueError(f"n: expected an integer >= 2, got {self.n}")
        acc = self.accuracies
        if len(acc) < 3 or any(np.diff(acc) >= 0):
            raise ValueError(
                f"accuracies: expected at least 3 positive, decreasing values, got {list(acc)}"
            )
        d = self.dictionaries
        if len(d) < 2 or any(np.diff(d) <= 0):
            raise ValueError(f"dictionaries: expected at least 2 increasing sizes, got {list(d)}")

    @classmethod
    def quick(cls, **kw) -> Config:
        """n = 150, four accuracies, dictionaries 32 and 64 (seconds)."""
        base = dict(n=150, accuracies=(0.1, 0.05, 0.025, 0.0125), dictionaries=(32, 64))
        base.update(kw)
        return cls(**base)


NAME = "depth-separation"
JSON_NAME = "depth_separation"


def progress_total(config: Config) -> int:
    """One tick per (seed, target, dictionary)."""
    return config.seeds * len(ROLES) * len(config.dictionaries)


class SeedResult(NamedTuple):
    """One seed (one draw of the n points)."""

    seed: int
    budget: dict  # role -> (D, A) minimal budgets B per dictionary and accuracy
    max_error: dict  # role -> (D, A) achieved max |f - y| of each LP's network
    deep_sharpness: float  # lambda_max of the deep net at its exact fit (dense Hessian)
    deep_sharpness_lanczos: float
    deep_error: float  # max |deep(x) - bump(x)|
    deep_gd_ratio: dict  # step factor -> |theta_T - theta*| / |theta_0 - theta*|

    @property
    def increments(self) -> dict:
        """role -> (D, A - 1): B(eps_{j+1}) - B(eps_j) along the accuracy list, per dictionary."""
        return {k: np.diff(b, axis=1) for k, b in self.budget.items()}


class Result(NamedTuple):
    accuracies: np.ndarray
    dictionaries: np.ndarray
    seeds: list  # SeedResult per seed
    wall_s: float
    config: Config

    @property
    def eta_max(self) -> dict:
        """role -> (S, D, A): 1 / (B + 1/2), the largest step with a stable solution that accurate."""
        return {k: 1 / (np.stack([s.budget[k] for s in self.seeds]) + 0.5) for k in ROLES}


def target(name: str, x, *, scale: float = 0.5) -> np.ndarray:
    """The targets on inputs (n, d): ``"l1-bump"`` sigma(1 - ||x||_1), ``"gaussian"``."""
    x = np.asarray(x, float)
    if name == "l1-bump":
        return np.maximum(1 - np.abs(x).sum(axis=-1), 0)
    if name == "gaussian":
        return np.exp(-np.sum(x * x, axis=-1) / (2 * scale**2))
    raise ValueError(f"target must be one of {TARGETS}, got {name!r}")


def sample(config: Config, seed: int) -> np.ndarray:
    """The n training points of one seed, uniform on [-1.5, 1.5]^d."""
    return np.random.default_rng(seed).uniform(-1.5, 1.5, (config.n, config.dim))


def _deep_check(x, config):
    import jax.numpy as jnp

    from ..shallow.deep import (
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


def run_seed(config: Config, seed: int, *, progress=None) -> SeedResult:
    """Minimal budgets of both targets at every dictionary and accuracy, then the deep net."""
    from ..shallow.predict import minimal_budget

    x = sample(config, seed)
    names = dict(zip(ROLES, ("l1-bump", config.control), strict=True))
    budget, error = {}, {}
    for role, name in names.items():
        y = target(name, x, scale=config.gaussian_scale)
        b = np.full((len(config.dictionaries), len(config.accuracies)), np.nan)
        e = np.full_like(b, np.nan)
        for i, m in enumerate(config.dictionaries):
            for j, eps in enumerate(config.accuracies):
                r = minimal_budget(x, y, accuracy=float(eps), num_directions=int(m),
                                   num_offsets=int(m), seed=seed)  # fmt: skip
                b[i, j], e[i, j] = r.budget, r.max_error
            if progress is not None:
                progress.update(note=f"seed {seed} {role} {m}x{m}")
        budget[role], error[role] = b, e
    lam, lam_l, derr, ratios = _deep_check(x, config)
    return SeedResult(seed, budget, error, lam, lam_l, derr, ratios)


def _seed_to_json(s: SeedResult) -> dict:
    return {
        "seed": s.seed,
        "minimal_budget": s.budget,
        "increments": s.increments,
        "max_error": s.max_error,
        "deep_sharpness": s.deep_sharpness,
        "deep_sharpness_lanczos": s.deep_sharpness_lanczos,
        "deep_max_error": s.deep_error,
        "deep_gd_distance_ratio": {str(k): v for k, v in s.deep_gd_ratio.items()},
    }


def _seed_from_json(d: dict) -> SeedResult:
    arr = {k: np.asarray(v, float) for k, v in d["minimal_budget"].items()}
    err = {k: np.asarray(v, float) for k, v in d["max_error"].items()}
    ratio = {float(k): float(v) for k, v in d["deep_gd_distance_ratio"].items()}
    return SeedResult(int(d["seed"]), arr, err, float(d["deep_sharpness"]),
                      float(d["deep_sharpness_lanczos"]), float(d["deep_max_error"]), ratio)  # fmt: skip


def run(config: Config, *, out_dir=None, progress=None) -> Result:
    """Every seed of the protocol (module docstring); seeds stored in ``out_dir/seeds`` are reused."""
    import jax

    jax.config.update("jax_enable_x64", True)
    t0 = time.perf_counter()

    def resumed(seed):
        if progress is not None:
            progress.update(len(ROLES) * len(config.dictionaries), note=f"seed {seed} (resumed)")

    seeds = resume_seeds(
        range(config.seed, config.seed + config.seeds), out_dir,
        lambda seed: run_seed(config, seed, progress=progress),
        key=lambda seed: stored_key(config, seed), encode=_seed_to_json,
        decode=_seed_from_json, resumed=resumed,
    )  # fmt: skip
    return Result(np.asarray(config.accuracies, float), np.asarray(config.dictionaries),
                  seeds, time.perf_counter() - t0, config)  # fmt: skip


# --------------------------------------------------------------------------- outcomes
def bump_stays(inc) -> bool:
    """Every increment after the first is >= half the first (the budget keeps growing)."""
    inc = np.asarray(inc, float)
    return bool(np.all(inc[1:] >= inc[0] / 2))


def control_falls(inc) -> bool:
    """The last increment is below half the first (the budget converges)."""
    inc = np.asarray(inc, float)
    return bool(inc[-1] < inc[0] / 2)


def separation(s: SeedResult, *, finest: int = 2) -> dict:
    """One seed's verdict entry: at each of the ``finest`` finest dictionaries, does the bump's
    budget keep growing while the control's converges?"""
    inc = s.increments
    rows = range(inc["l1-bump"].shape[0] - finest, inc["l1-bump"].shape[0])
    bump = [bump_stays(inc["l1-bump"][i]) for i in rows]
    ctrl = [control_falls(inc["control"][i]) for i in rows]
    judged = inc["l1-bump"].shape[1] >= 2 and inc["l1-bump"].shape[0] >= finest
    return {
        "seed": s.seed,
        "shown": bool(all(bump) and all(ctrl)) if judged else None,
        "bump_keeps_growing": bump,
        "control_converges": ctrl,
        "bump_increments": [inc["l1-bump"][i] for i in rows],
        "control_increments": [inc["control"][i] for i in rows],
    }


def dictionary_convergence(result: Result) -> dict:
    """role -> (S, A) relative change of B between the two finest dictionaries."""
    out = {}
    for k in ROLES:
        b = np.stack([s.budget[k] for s in result.seeds])  # (S, D, A)
        out[k] = (
            (b[:, -1] - b[:, -2]) / b[:, -1] if b.shape[1] >= 2 else np.full(b.shape[::2], np.nan)
        )
    return out


def verdicts(result: Result) -> dict:
    """The depth-separation verdict over seeds (module docstring)."""
    d = result.dictionaries
    fin = " and ".join(f"{m}^2" for m in d[-2:])
    return {
        "depth_separation": verdict(
            [separation(s) for s in result.seeds],
            statement="the minimal stable budget keeps growing for the bump, converges for the "
            f"smooth control ({result.config.control})",
            threshold=f"at dictionaries {fin}: every bump increment after the first >= half the "
            "first, and the control's last increment < half its first",
        )
    }


def outcomes(result: Result) -> tuple[dict, dict]:
    """``(checks, verdicts)`` of the :mod:`~minstab.experiments.base` protocol."""
    return checks(result), verdicts(result)


def checks(result: Result) -> dict:
    """Checks that hold on every seed if the code and the theorems are right (module docstring)."""
    acc = result.accuracies
    ss = result.seeds
    ns = len(ss)
    nlp = sum(s.budget[k].size for s in ss for k in ROLES)
    over = [float(np.max(s.max_error[k] - acc[None, :])) for s in ss for k in ROLES]
    drops = [float(np.min(np.diff(s.budget[k], axis=1))) for s in ss for k in ROLES]
    scale = max(float(np.max([np.max(s.budget[k]) for s in ss for k in ROLES])), 1.0)
    lam = np.array([s.deep_sharpness for s in ss])
    laml = np.array([s.deep_sharpness_lanczos for s in ss])
    err = np.array([s.deep_error for s in ss])
    lo, hi = STEP_FACTORS
    back = np.array([s.deep_gd_ratio[lo] for s in ss])
    away = np.array([s.deep_gd_ratio[hi] for s in ss])
    steps = result.config.gd_steps
    return {
        "lp_meets_accuracy": make_check(
            max(over) <= LP_TOL, f"max over LPs of (max |f - y| - eps) = {max(over):.2e} "
            f"(<= {LP_TOL:g})", covered=nlp,
        ),
        "budget_never_falls_as_eps_tightens": make_check(
            min(drops) >= -LP_TOL * scale, f"smallest B(eps/2) - B(eps) = {min(drops):.2e} "
            f"(>= -{LP_TOL:g} x {scale:.3g}), same dictionary", covered=len(drops),
        ),
        "deep_net_exact": make_check(
            np.max(err) <= 1e-12, f"max |deep(x) - bump(x)| = {np.max(err):.1e}", covered=ns,
        ),
        "deep_sharpness_dense_matches_lanczos": make_check(
            np.all(np.abs(laml - lam) <= 1e-6 * lam),
            f"max relative difference {np.max(np.abs(laml - lam) / lam):.1e} (<= 1e-6); dense "
            f"{np.array2string(lam, precision=6)}", covered=ns,
        ),
        "deep_net_stable_below_2_over_lambda": make_check(
            np.all(back < 1), f"GD at eta = {lo} * 2/lambda, {steps} steps: distance ratio max "
            f"{np.max(back):.3g} (< 1: returns)", covered=ns,
        ),
        "deep_net_leaves_above_2_over_lambda": make_check(
            np.all(away > 1), f"GD at eta = {hi} * 2/lambda, {steps} steps: distance ratio min "
            f"{np.min(away):.3g} (> 1: leaves)", covered=ns,
        ),
    }  # fmt: skip


# --------------------------------------------------------------------------- reporting
def table(result: Result) -> str:
    """Wall time; B per seed, dictionary and accuracy; increments; the convergence in
    dictionary size; the deep net of the first seed."""
    acc = result.accuracies
    lines = [f"wall {result.wall_s:.1f} s"]
    lines += [f"{'seed':>4} {'dict':>7} {'target':>8} " + " ".join(f"{'B@' + f'{e:g}':>10}" for e in acc)
             + "   increments of B per halving of eps"]  # fmt: skip
    lines.append("-" * len(lines[1]))
    for s in result.seeds:
        for i, m in enumerate(result.dictionaries):
            for k in ROLES:
                lines.append(f"{s.seed:4d} {f'{m}^2':>7} {k:>8} "
                             + " ".join(f"{b:10.5f}" for b in s.budget[k][i]) + "   "
                             + np.array2string(s.increments[k][i], precision=4))  # fmt: skip
    conv = dictionary_convergence(result)
    d = result.dictionaries
    if len(d) >= 2:
        lines.append(
            f"convergence in dictionary size, (B({d[-1]}^2) - B({d[-2]}^2)) / B({d[-1]}^2) over "
            "seeds and accuracies: "
            + "; ".join(f"{k} {np.min(v):+.1%} .. {np.max(v):+.1%}" for k, v in conv.items())
        )
    s0 = result.seeds[0]
    lam = s0.deep_sharpness
    eta = STEP_FACTORS[0] * 2 / lam
    lines.append(
        f"deep net sigma(1-||x||_1), seed {s0.seed}: max error {s0.deep_error:.1e}, sharpness "
        f"{lam:.5g} (Lanczos {s0.deep_sharpness_lanczos:.5g}); GD distance ratio after "
        f"{result.config.gd_steps} steps at {STEP_FACTORS[0]} * 2/lambda: "
        f"{s0.deep_gd_ratio[STEP_FACTORS[0]]:.3g}, at {STEP_FACTORS[1]} * 2/lambda: "
        f"{s0.deep_gd_ratio[STEP_FACTORS[1]]:.3g}; at eta = {eta:.4g} a shallow stable solution "
        f"has budget 1/eta - 1/2 = {1 / eta - 0.5:.4g}"
    )
    return "\n".join(lines)


def to_json(result: Result) -> dict:
    """Per-seed budgets and the convergence in dictionary size (the driver adds the config,
    checks and verdicts)."""
    return {
        "accuracies": result.accuracies,
        "dictionaries": result.dictionaries,
        "seeds": [_seed_to_json(s) for s in result.seeds],
        "dictionary_convergence": dictionary_convergence(result),
        "wall_s": result.wall_s,
    }


def plot(result: Result, out_dir) -> list[Path]:
    """Minimal budgets and their increments against 1/eps, both targets, every dictionary."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.9))
    cfg = result.config
    labels = {"l1-bump": r"$\sigma(1-\|x\|_1)$", "control": f"control: {cfg.control}"}
    colors = {"l1-bump": "C3", "control": "C0"}
    e = result.accuracies
    styles = ["-", "--", "-.", ":"]
    for i, m in enumerate(result.dictionaries):
        for k in ROLES:
            for j, s in enumerate(result.seeds):
                lab = f"{labels[k]}, {m}$^2$" if j == 0 else None
                ls = styles[i % len(styles)]
                axes[0].plot(1 / e, s.budget[k][i], ls, color=colors[k], alpha=0.4 + 0.6 * (i + 1)
                             / len(result.dictionaries), lw=1, label=lab)  # fmt: skip
                axes[1].plot(1 / e[1:], s.increments[k][i], ls, color=colors[k], lw=1,
                             alpha=0.4 + 0.6 * (i + 1) / len(result.dictionaries), label=lab)  # fmt: skip
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel(r"accuracy $1/\varepsilon$  ($\max_i |f(x_i)-y_i| \leq \varepsilon$)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6)
    axes[0].set_ylabel(r"minimal budget $B(\varepsilon) = \min \sum |c|\,g$")
    axes[1].set_ylabel(r"increment $B(\varepsilon) - B(2\varepsilon)$")
    fig.suptitle(f"depth separation, d = {cfg.dim}, n = {cfg.n}, {len(result.seeds)} seeds (data "
                 "draws), dictionaries " + ", ".join(f"{m}x{m}" for m in result.dictionaries),
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    return plotting.save(fig, out_dir, "depth_separation")
