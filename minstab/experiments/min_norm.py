"""Seed 002: how far is GD on a ReLU neuron from the minimum-norm global minimum?

A single ReLU neuron x -> max(w.x, 0), square loss, teacher labels y = max(w*.x, 0) on Gaussian
inputs (THEORY §5). For every (n, d) of a grid and every seed: the minimum-norm global minimum
w_mn (the QP of :func:`minstab.implicit_bias.min_norm_interpolant`), GD from w0 = 0
(:func:`minstab.implicit_bias.gd_single_neuron`) and the relative gap ||w_GD - w_mn|| / ||w_mn||.
The seed claims gap = Theta(sqrt(n/d)), i.e. exponent p = 1/2 in gap ~ (n/d)^p; the fit is the
least-squares slope of log gap against log(n/d) over the runs where GD reached a global minimum,
with a bootstrap 95% interval. The anisotropic case uses Sigma = diag(k^-decay) (top eigenvalue 1)
and the variable n / tr Sigma.

The step size is eta = eta_rel * n / mean ||x_i||^2: eta_rel > 1 overshoots each point's own
residual. Both regimes are run; the gap exponent depends on it (see the printed table).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class Config:
    ns: tuple[int, ...] = (16, 32, 64)
    ratios: tuple[int, ...] = (4, 16, 64, 256, 1024)  # d / n (isotropic) or d / n target
    seeds: int = 24
    eta_rels: tuple[float, ...] = (1.5, 0.5)  # first one is the headline fit
    steps: int = 4000
    decay: float = 0.5  # anisotropic spectrum k^-decay
    seed: int = 0
    boot: int = 2000

    @classmethod
    def quick(cls, **kw) -> Config:
        base = dict(ns=(24,), ratios=(4, 16, 64, 256), seeds=20, eta_rels=(1.5,), steps=2000,
                    boot=500)  # fmt: skip
        base.update(kw)
        return cls(**base)


class Fit(NamedTuple):
    slope: float  # exponent p in gap ~ (variable)^p, variable = n/d or n/tr Sigma
    lo: float
    hi: float
    intercept: float
    points: int


class Result(NamedTuple):
    rows: list  # dicts: case, eta_rel, n, d, trace, var, gaps (per seed), reached (per seed)
    fits: dict  # (case, eta_rel) -> Fit
    wall_s: float
    config: Config


def fit_slope(var, gap, *, boot: int = 2000, seed: int = 0) -> Fit:
    """OLS slope of log gap on log var with a bootstrap 95% interval (resampling points)."""
    lx, ly = np.log(np.asarray(var, float)), np.log(np.asarray(gap, float))
    ok = np.isfinite(lx) & np.isfinite(ly)
    lx, ly = lx[ok], ly[ok]
    if lx.size < 3 or np.ptp(lx) == 0:
        return Fit(float("nan"), float("nan"), float("nan"), float("nan"), int(lx.size))
    slope, icpt = np.polyfit(lx, ly, 1)
    rng = np.random.default_rng(seed)
    bs = []
    for _ in range(boot):
        i = rng.integers(0, lx.size, lx.size)
        if np.ptp(lx[i]) > 0:
            bs.append(np.polyfit(lx[i], ly[i], 1)[0])
    lo, hi = np.percentile(bs, [2.5, 97.5])
    return Fit(float(slope), float(lo), float(hi), float(icpt), int(lx.size))


def _cell(n, d, decay, eta_rel, config, key):
    import jax
    import jax.numpy as jnp

    from .. import implicit_bias as ib

    keys = jax.random.split(key, config.seeds)
    at = tuple(int(t) for t in ib.log_steps(config.steps, 5))
    f64 = jnp.float64

    def one(k):  # all seeds of a cell in one vmapped program (the jitted cores of the API)
        data = ib.teacher_data(k, n, d, decay=decay, dtype=f64)
        mn = ib._min_norm_jit(data.x, data.y, jnp.asarray(1e-8, f64), pg_iters=50, max_iter=12)
        eta = eta_rel * n / jnp.mean(jnp.sum(data.x * data.x, axis=1))
        gd = ib._neuron_jit(data.x, data.y, jnp.zeros(d, f64), eta, jnp.asarray(1e-12, f64),
                            steps_at=at)  # fmt: skip
        return ib.relative_gap(gd.w, mn.w), gd.interpolated & mn.converged, data.trace

    gaps, reached, trace = jax.vmap(one)(keys)
    return [float(g) for g in gaps], [bool(r) for r in reached], float(trace[0])


def run(config: Config, *, progress=None) -> Result:
    import jax

    jax.config.update("jax_enable_x64", True)
    t0 = time.perf_counter()
    rows, fits = [], {}
    key = jax.random.key(config.seed)
    cases = [("isotropic", 0.0), ("anisotropic", config.decay)]
    for case, decay in cases:
        for eta_rel in config.eta_rels:
            for n in config.ns:
                for r in config.ratios:
                    d = n * r
                    key, sub = jax.random.split(key)
                    gaps, reached, trace = _cell(n, d, decay, eta_rel, config, sub)
                    spec = np.arange(1, d + 1, dtype=float) ** (-decay)
                    r2 = spec.sum() ** 2 / np.sum(spec**2)  # effective rank (tr S)^2 / tr S^2
                    rows.append(dict(case=case, eta_rel=eta_rel, n=n, d=d, trace=trace,
                                     var=n / trace, var_r2=n / r2, gaps=gaps,
                                     reached=reached))  # fmt: skip
                    if progress is not None:
                        progress.update(note=f"{case} eta_rel={eta_rel} n={n} d={d}")
            sel = [r for r in rows if r["case"] == case and r["eta_rel"] == eta_rel]
            var = [
                r["var"] for r in sel for g, ok in zip(r["gaps"], r["reached"], strict=True) if ok
            ]
            gap = [g for r in sel for g, ok in zip(r["gaps"], r["reached"], strict=True) if ok]
            fits[(case, eta_rel)] = fit_slope(var, gap, boot=config.boot, seed=config.seed)
            if decay > 0:  # the same runs against n (tr S^2) / (tr S)^2 instead of n / tr S
                var2 = [r["var_r2"] for r in sel for ok in r["reached"] if ok]
                fits[(case + " vs n/r2", eta_rel)] = fit_slope(
                    var2, gap, boot=config.boot, seed=config.seed
                )
    return Result(rows, fits, time.perf_counter() - t0, config)


def num_cells(config: Config) -> int:
    return 2 * len(config.eta_rels) * len(config.ns) * len(config.ratios)


def table(result: Result) -> str:
    head = f"{'case':>12} {'eta_rel':>7} {'n':>4} {'d':>6} {'sqrt(n/trS)':>11} {'median gap':>10} {'reached':>8}"
    lines = [head, "-" * len(head)]
    for r in result.rows:
        g = np.asarray(r["gaps"])[np.asarray(r["reached"])]
        med = np.median(g) if g.size else float("nan")
        lines.append(
            f"{r['case']:>12} {r['eta_rel']:7.2f} {r['n']:4d} {r['d']:6d} {np.sqrt(r['var']):11.4f} "
            f"{med:10.3e} {sum(r['reached']):4d}/{len(r['reached']):<3d}"
        )
    lines.append("")
    lines.append("fitted exponent p in gap ~ (n / tr Sigma)^p (seed 002 claims p = 1/2):")
    for (case, e), f in result.fits.items():
        lines.append(f"  {case:>12}, eta_rel={e:4.2f}: p = {f.slope:.3f}  95% CI [{f.lo:.3f}, {f.hi:.3f}]"
                     f"  ({f.points} runs)")  # fmt: skip
    return "\n".join(lines)


def plot(result: Result, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    etas = result.config.eta_rels
    fig, axes = plt.subplots(1, len(etas), figsize=(5.2 * len(etas), 4.0), squeeze=False)
    for ax, e in zip(axes[0], etas, strict=True):
        for case, color, mk in (("isotropic", "C0", "o"), ("anisotropic", "C3", "s")):
            sel = [r for r in result.rows if r["case"] == case and r["eta_rel"] == e]
            xs = np.concatenate([np.full(sum(r["reached"]), np.sqrt(r["var"])) for r in sel])
            ys = np.concatenate([np.asarray(r["gaps"])[np.asarray(r["reached"])] for r in sel])
            ax.plot(xs, ys, mk, color=color, alpha=0.25, ms=3)
            f = result.fits[(case, e)]
            if np.isfinite(f.slope):
                grid = np.geomspace(xs.min(), xs.max(), 50)
                ax.plot(grid, np.exp(f.intercept) * grid ** (2 * f.slope), "-", color=color,
                        label=f"{case}: p = {f.slope:.2f} [{f.lo:.2f}, {f.hi:.2f}]")  # fmt: skip
        if len(ys):
            g0 = np.geomspace(xs.min(), xs.max(), 50)
            ax.plot(
                g0,
                np.median(ys) / np.median(xs) * g0,
                "k--",
                lw=1,
                label=r"$\propto\sqrt{n/\mathrm{tr}\,\Sigma}$ (p = 1/2)",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"$\sqrt{n/\mathrm{tr}\,\Sigma}$  ($=\sqrt{n/d}$ isotropic)")
        ax.set_ylabel(r"$\|w_{GD}-w_{mn}\| / \|w_{mn}\|$")
        ax.set_title(rf"GD from $w_0=0$, $\eta = {e}\,n/\overline{{\|x\|^2}}$", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    from minstab import plotting

    return plotting.save(fig, out, "min_norm_gap")


def to_json(result: Result) -> dict:
    return {
        "config": dataclasses.asdict(result.config),
        "wall_s": result.wall_s,
        "fits": [dict(case=c, eta_rel=e, **f._asdict()) for (c, e), f in result.fits.items()],
        "rows": result.rows,
    }


def add_arguments(parser) -> None:
    a = parser.add_argument
    a("--out", default="minstab-out/min-norm", help="output directory")
    a("--seeds", type=int, default=None, help="runs per (n, d) cell")
    a("--steps", type=int, default=None, help="GD steps")
    a("--eta-rels", type=float, nargs="+", default=None,
      help="step sizes in units of n / mean ||x||^2 (first one is the headline fit)")  # fmt: skip
    a("--seed", type=int, default=None)
    a("--quick", action="store_true", help="small grid (seconds); also MINSTAB_QUICK=1")
    parser.set_defaults(dtype="float64")


def config_from_args(args) -> Config:
    kw = {}
    for name in ("seeds", "steps", "seed"):
        if getattr(args, name, None) is not None:
            kw[name] = getattr(args, name)
    if getattr(args, "eta_rels", None):
        kw["eta_rels"] = tuple(args.eta_rels)
    quick = args.quick or os.environ.get("MINSTAB_QUICK") == "1"
    return Config.quick(**kw) if quick else Config(**kw)


def main(args) -> int:
    from ..progress import ProgressBar

    config = config_from_args(args)
    with ProgressBar(num_cells(config), "min-norm") as bar:
        result = run(config, progress=bar)
    out = Path(args.out)
    paths = plot(result, out)
    (out / "min_norm.json").write_text(json.dumps(to_json(result), indent=1))
    print(f"\nwall {result.wall_s:.1f} s")
    print(table(result))
    print("\nwrote " + ", ".join(str(p) for p in paths + [out / "min_norm.json"]))
    return 0
