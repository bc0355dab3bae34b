"""Exact SGD mean-square stability threshold eta*(B) against batch size B (THEORY §6).

Protocol. Data: ``minstab.data.toy.toy_1d`` (``--n`` points). Network: width ``--width`` with a random
first layer that has a knot between every pair of neighbouring points (so the minimum is
differentiable and the tangent features have full rank) and its output layer trained to
interpolation (the minimum-norm least-squares solution, i.e. the limit of GD on the output layer
from zero). At this interpolating minimum theta*:

1. eta*(B) = 2 / lambda_max(C^+ D) for B = 1..n, with and without replacement; 2/sharpness is the
   B = n (without replacement) limit. Wu-Ma-E's non-uniformity s and their rule of thumb
   eta <~ sqrt(B)/s are shown for comparison.
2. Simulations at 0.9 eta* and 1.1 eta* for every B and both sampling schemes, ``--seeds`` runs
   each (vmapped, all in one compiled program): linearized SGD and real SGD started at
   theta* + radius e_0, e_0 Gaussian in the critical mode of C^+ D. Verdict rule: the ratio of
   final to initial mean-square distance to theta* over the seeds is < 1 ("bounded") or > 1
   ("grows"). The horizon T(B) is the first step at which the exact linearized mean square at
   1.1 eta* reaches ``--growth`` (short horizons keep the heavy-tailed sample mean reliable).
3. SGD runs in a sweep: from a common initialization (theta* moved by ``init_offset`` ||theta*||
   along a random tangent direction), one run per (B, eta) with :func:`minstab.engine.sweep.sweep`
   (vmapped over eta, one compiled program per B, batches without replacement). Per run: status,
   final sharpness and eta*_B at the final point. Runs with eta below eta*(B; theta*) return to
   theta*; above it they leave for flatter minima (or diverge), earlier for smaller B. Mean-square
   stability is a statement about the second moment: a single run can still converge at a
   minimum slightly beyond its eta*_B (the median of the simulations shrinks at 1.1 eta* while
   the mean grows), so the sweep reports max eta / eta*_B(final) over converged runs as a
   measurement.

Outcomes (issue 29; :mod:`minstab.experiments.outcomes`).

* Checks (a false one exits 1): eta*(n) = 2/sharpness; eta*(B) nondecreasing in B, with and
  without replacement; with replacement <= without; the non-uniformity by Hessian-vector
  products against the Gram form; linearized SGD's sample mean square (an independent Monte
  Carlo estimate) bounded at ``factors[0]`` eta* and growing at ``factors[1]`` eta* for every
  (B, sampling); Lemma 1 (sharpness <= 2/eta) on every converged GD run (B = n) of the sweep.
* Verdicts (empirical; any result exits 0), judged per (B, sampling) configuration or per
  sweep batch size, since one network is analysed (the unit is written in each row):
  ``real_sgd_follows_threshold``: the real (nonlinear) SGD's mean square is bounded below and
  grows above eta*(B), as the linearization predicts; ``sweep_returns_below_threshold``: every
  sweep run with eta <= 0.95 eta*(B) converges back to the start minimum.

Protocol history (issue 29): before, all nine statements were claims that made the command
exit 1; the two empirical ones (real SGD, return of the sweep runs) are now verdicts, the
settings are unchanged.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._cli_args import LIMITS, float_list, int_at_least, positive_float, positive_int
from .base import option
from .outcomes import check as claim
from .outcomes import verdict as make_verdict

__all__ = ["Config", "Result", "run", "outcomes", "checks", "verdicts", "table", "plot",
           "to_json"]  # fmt: skip


def _factor_pair(value) -> tuple[float, float]:
    """``BELOW,ABOVE``: two positive numbers (a comma string or a TOML list)."""
    import argparse

    pair = float_list(positive_float)(value)
    if len(pair) != 2:
        raise argparse.ArgumentTypeError(f"expected two numbers BELOW,ABOVE, got {value!r}")
    return pair


@dataclasses.dataclass(frozen=True)
class Config:
    """Problem size, simulation and sweep budgets (see the module docstring).

    ``width`` and ``sweep_batch_sizes`` left ``None`` follow ``n``: width max(2n, 16) and batch
    sizes 1, 2, n/2, n (16 and 1, 2, 4, 8 at the default n = 8).
    """

    n: int = option(8, "number of data points", type=int_at_least(2, maximum=LIMITS["n"].maximum))
    width: int | None = option(None, "network width, at least n - 1 (follows n: max(2n, 16))")
    noise: float = 0.3
    seed: int = option(0, "data and network seed")
    seeds: int = option(2048, "SGD runs per configuration")
    growth: float = 4.0
    max_steps: int = 64
    radius: float = 1e-4
    sweep_batch_sizes: tuple[int, ...] | None = option(
        None, "batch sizes of the (B, eta) sweep, comma-separated (follow n: 1, 2, n/2, n)",
        type=float_list(positive_int),
    )  # fmt: skip
    num_etas: int = 24
    sweep_steps: int = 100_000
    sweep_tol: float = 1e-12
    patience: int = 500
    init_offset: float = 3e-3
    # simulations at factor * eta*(B): below and above the threshold
    factors: tuple[float, float] = option(
        (0.9, 1.1), "simulate SGD at BELOW x eta* and ABOVE x eta*, as BELOW,ABOVE",
        type=_factor_pair,
    )  # fmt: skip

    def __post_init__(self):
        n = self.n
        if self.width is None:
            object.__setattr__(self, "width", max(2 * n, 16))
        if self.sweep_batch_sizes is None:
            object.__setattr__(self, "sweep_batch_sizes", tuple(sorted({1, 2, max(n // 2, 1), n})))
        object.__setattr__(self, "sweep_batch_sizes", tuple(self.sweep_batch_sizes))
        if self.width < n - 1:
            raise ValueError(f"width: expected at least n - 1 = {n - 1}, got {self.width}")
        lo, hi = self.factors
        if not 0 < lo < hi:
            raise ValueError(f"factors: expected 0 < BELOW < ABOVE, got {lo} {hi}")
        bad = [b for b in self.sweep_batch_sizes if b > n]
        if bad:
            raise ValueError(f"sweep_batch_sizes: expected batch sizes <= n = {n}, got {bad}")

    @classmethod
    def quick(cls, **kw) -> Config:
        """Reduced size (under a minute): 512 SGD runs, sweep batch sizes 1, 2, n, 10 step sizes."""
        base = dict(seeds=512, num_etas=10, sweep_steps=20_000)
        if "n" not in kw:  # a given n brings its own batch sizes (1, 2, n/2, n)
            base["sweep_batch_sizes"] = (1, 2, 8)
        base.update(kw)
        return cls(**base)


NAME = "sgd_threshold"
CONFIG_TYPES = {"factors": _factor_pair, "sweep_batch_sizes": float_list(positive_int)}


def _sweep_batch_sizes(cfg: Config) -> list[int]:
    return [b for b in cfg.sweep_batch_sizes if 1 <= b <= cfg.n]


def progress_total(config: Config) -> int:
    """Thresholds, horizons, simulations, then one tick per sweep batch size."""
    return 3 + len(_sweep_batch_sizes(config))


class Result(NamedTuple):
    """Everything the experiment computed (plain lists and floats; JSON-serializable)."""

    batch_sizes: list
    eta_star: list  # without replacement
    eta_star_replacement: list
    gd_limit: float  # 2 / sharpness
    sharpness: float
    non_uniformity: float
    non_uniformity_gram: float
    wme: list  # sqrt(B) / s
    horizon: dict  # "without"/"with" -> [T(B)]
    sims: dict  # "without"/"with" -> {"linear"/"real" -> {"below"/"above" -> [ratio]}, ...}
    sweep: dict  # per B: etas, status, sharpness, eta_star_final, start threshold
    config: dict
    wall_time: float


def _network(cfg: Config):
    """toy_1d data and an interpolating width-k net with a knot between neighbouring points."""
    import jax
    import jax.numpy as jnp

    from ..data import toy as data
    from ..shallow.nets import ShallowParams, init_shallow

    n, k = cfg.n, cfg.width
    x, y = data.toy_1d(n=n, key=jax.random.key(cfg.seed), noise=cfg.noise, dtype=jnp.float64)
    kp = jax.random.key(cfg.seed + 1)
    p = init_shallow(kp, 1, k, dtype=jnp.float64)
    xs = jnp.sort(x)
    extra = jax.random.uniform(jax.random.fold_in(kp, 1), (k - n + 1,), jnp.float64, xs[0], xs[-1])
    knots = jnp.concatenate([(xs[1:] + xs[:-1]) / 2, extra])
    p = p._replace(b1=-p.w1[:, 0] * knots)
    feats = np.asarray(jax.nn.relu(x[:, None] @ p.w1.T + p.b1[None, :]))
    a = np.concatenate([feats, np.ones((n, 1))], axis=1)
    sol = np.linalg.lstsq(a, np.asarray(y), rcond=None)[0]  # min-norm output layer
    return ShallowParams(p.w1, p.b1, jnp.asarray(sol[:-1]), jnp.asarray(sol[-1])), x, y


def _horizon(traj, growth, max_steps) -> int:
    hit = np.flatnonzero(np.asarray(traj) >= growth)
    return int(np.clip(hit[0] + 1 if hit.size else max_steps, 5, max_steps))


_MODES = {"without": False, "with": True}  # sampling without / with replacement


def _horizons(cfg: Config, p, x, y, bs, es) -> dict:
    """Steps until the mean-square trajectory above eta* has grown by ``cfg.growth``."""
    from ..shallow.sgd import mean_square_trajectory

    return {
        m: [
            _horizon(
                mean_square_trajectory(
                    p, x, y, cfg.factors[1] * e, b, steps=cfg.max_steps, replacement=r
                ),
                cfg.growth,
                cfg.max_steps,
            )
            for b, e in zip(bs, es[m], strict=True)
        ]
        for m, r in _MODES.items()
    }


def _simulations(cfg: Config, p, x, y, bs, es, horizon) -> dict:
    """Every (mode, factor, B) configuration in one vmapped call; linear and real together."""
    import jax
    import jax.numpy as jnp

    from ..shallow.sgd import simulate_kernel

    cf = [(m, f, b) for m in _MODES for f in ("below", "above") for b in bs]
    fac = {"below": cfg.factors[0], "above": cfg.factors[1]}
    keys = jax.random.split(jax.random.key(cfg.seed + 2), cfg.seeds)
    lin, real = simulate_kernel(
        p, x, y,
        jnp.asarray([fac[f] * es[m][b - 1] for m, f, b in cf]),
        [b for _, _, b in cf], keys,
        steps=[horizon[m][b - 1] for m, _, b in cf],
        replacement=[_MODES[m] for m, _, _ in cf],
        init="critical", radius=cfg.radius, negative_slope=0.0,
    )  # fmt: skip
    sims = {m: {"linear": {}, "real": {}, "predicted": {}, "real_diverged": {}} for m in _MODES}
    for i, (m, f, _) in enumerate(cf):
        sims[m]["linear"].setdefault(f, []).append(float(lin.ratio[i]))
        sims[m]["real"].setdefault(f, []).append(float(real.ratio[i]))
        sims[m]["predicted"].setdefault(f, []).append(float(lin.predicted[i]))
        sims[m]["real_diverged"].setdefault(f, []).append(int(np.sum(real.diverged[i])))
    return sims


def _sgd_sweeps(cfg: Config, p, x, y, es, lam, sweep_bs, progress) -> dict:
    """SGD runs over eta for each B, from a common initialization near theta*."""
    import jax
    import jax.numpy as jnp

    from ..engine.sweep import sweep
    from ..shallow.curvature import jacobian
    from ..shallow.nets import flatten, unflatten
    from ..shallow.sgd import batch_noise_p, threshold_kernel

    theta = flatten(p)
    j = jacobian(p, x)
    d = j.T @ jax.random.normal(jax.random.key(cfg.seed + 3), (cfg.n,), jnp.float64)
    p0 = unflatten(theta + cfg.init_offset * jnp.linalg.norm(theta) * d / jnp.linalg.norm(d),
                   cfg.width, 1)  # fmt: skip
    etas = np.geomspace(0.6 * es["without"][0], 3.0 * es["without"][-1], cfg.num_etas)
    sw = {}
    for b in sweep_bs:
        res = sweep(
            p0, x, y, etas, steps=cfg.sweep_steps, tol=cfg.sweep_tol, patience=cfg.patience,
            batch_size=b, replace=False, flattest=False, progress=False,
            chunk_size=cfg.num_etas, log_sharpness="none",
        )  # fmt: skip
        pb = jnp.asarray(batch_noise_p(cfg.n, b), jnp.float64)
        final = jax.vmap(lambda q, pb=pb: threshold_kernel(q, x[:, None], pb))(
            jax.tree_util.tree_map(jnp.asarray, res.params)
        )
        final = np.where(np.asarray(res.diverged), np.nan, np.asarray(final))
        sw[str(b)] = _sweep_summary(
            etas, res.status(), np.asarray(res.sharpness), final, np.asarray(res.loss),
            es["without"][b - 1], lam,
        )  # fmt: skip
        _tick(progress, f"sweep B={b}")
    return sw


def _tick(progress, note: str) -> None:
    if progress is not None:
        progress.update(1, note)


def run(cfg: Config, *, out_dir=None, progress=None) -> Result:
    """Thresholds, simulations and the (B, eta) sweep (``out_dir`` unused: nothing resumes)."""
    from ..shallow.curvature import sharpness
    from ..shallow.sgd import non_uniformity, sgd_stability_threshold

    t0 = time.perf_counter()
    p, x, y = _network(cfg)
    bs = list(range(1, cfg.n + 1))
    lam = float(sharpness(p, x, y, method="gram"))
    es = {
        m: [float(sgd_stability_threshold(p, x, y, b, replacement=r).eta_star) for b in bs]
        for m, r in _MODES.items()
    }
    s = non_uniformity(p, x, y)
    s_gram = non_uniformity(p, x, y, method="gram")
    _tick(progress, "thresholds")
    horizon = _horizons(cfg, p, x, y, bs, es)
    _tick(progress, "horizons")
    sims = _simulations(cfg, p, x, y, bs, es, horizon)
    _tick(progress, "simulations")
    sw = _sgd_sweeps(cfg, p, x, y, es, lam, _sweep_batch_sizes(cfg), progress)
    return Result(
        batch_sizes=bs,
        eta_star=es["without"],
        eta_star_replacement=es["with"],
        gd_limit=2 / lam,
        sharpness=lam,
        non_uniformity=float(s.value),
        non_uniformity_gram=float(s_gram.value),
        wme=[float(np.sqrt(b) / float(s.value)) for b in bs],
        horizon=horizon,
        sims=sims,
        sweep=sw,
        config=dataclasses.asdict(cfg),
        wall_time=time.perf_counter() - t0,
    )


def _sweep_summary(etas, status, sharp, final, loss, start, lam) -> dict:
    conv = np.array([st == "converged" for st in status])
    back = conv & (np.abs(sharp - lam) <= 1e-3 * lam)
    ratio = etas[conv] / final[conv]
    return dict(
        etas=[float(e) for e in etas],
        status=list(status),
        sharpness=[float(v) for v in sharp],
        eta_star_final=[float(v) for v in final],
        loss=[float(v) for v in loss],
        eta_star_start=float(start),
        # measured, not claimed: a single run can converge where the second moment grows
        max_eta_over_eta_star_final=float(np.max(ratio)) if ratio.size else None,
        largest_eta_back_at_start_over_eta_star=(
            float(np.max(etas[back]) / start) if back.any() else None
        ),
    )


def checks(r: Result) -> dict:
    """The checks of the module docstring, as :class:`~minstab.experiments.outcomes.Check`."""
    es, er = np.array(r.eta_star), np.array(r.eta_star_replacement)
    lo, hi = r.config["factors"]
    nb = len(r.batch_sizes)
    out = {
        "eta_star_at_n_is_2_over_sharpness": claim(
            abs(es[-1] - r.gd_limit) <= 1e-8 * r.gd_limit,
            f"eta*(n) = {es[-1]:.10g}, 2/sharpness = {r.gd_limit:.10g}", covered=1,
        ),
        "eta_star_nondecreasing_in_B": claim(
            bool(np.all(np.diff(es) >= -1e-12 * es[1:])),
            "eta*(B) " + np.array2string(es, precision=4), covered=nb,
        ),
        "eta_star_replacement_nondecreasing_in_B": claim(
            bool(np.all(np.diff(er) >= -1e-12 * er[1:])),
            "with replacement " + np.array2string(er, precision=4), covered=nb,
        ),
        "replacement_le_without": claim(
            bool(np.all(er <= es * (1 + 1e-10))), "for every B", covered=nb
        ),
        "non_uniformity_hvp_matches_gram": claim(
            abs(r.non_uniformity - r.non_uniformity_gram) <= 1e-6 * r.non_uniformity_gram,
            f"{r.non_uniformity:.10g} vs {r.non_uniformity_gram:.10g}", covered=1,
        ),
    }  # fmt: skip
    below = max(max(r.sims[m]["linear"]["below"]) for m in _MODES)
    above = min(min(r.sims[m]["linear"]["above"]) for m in _MODES)
    out["linear_sgd_bounded_below_grows_above"] = claim(
        below < 1 < above,
        f"mean-square ratio: largest at {lo} eta* = {below:.3g} (< 1), smallest at {hi} eta* = "
        f"{above:.3g} (> 1)",
        covered=2 * nb,
    )
    gd_ok, n_gd = True, 0
    for b, sw in r.sweep.items():
        if int(b) != nb:
            continue
        e = np.array(sw["etas"])
        conv = np.array([st == "converged" for st in sw["status"]])
        sharp = np.array(sw["sharpness"], dtype=float)
        gd_ok &= bool(np.all(sharp[conv] <= (2 / e[conv]) * (1 + 1e-3)))
        n_gd += int(conv.sum())
    out["sweep_gd_converged_sharpness_le_2_over_eta"] = claim(
        gd_ok, "converged GD runs (B = n)", covered=n_gd,
        why_none="no converged GD run: the sweep has no B = n or none of its runs converged",
    )  # fmt: skip
    return out


def verdicts(r: Result) -> dict:
    """The two empirical statements of the module docstring, one row per configuration."""
    lo, hi = r.config["factors"]
    real = []
    for m in _MODES:
        s = r.sims[m]["real"]
        for i, b in enumerate(r.batch_sizes):
            real.append(dict(seed=r.config["seed"], unit=f"B={b}, {m} replacement",
                             shown=s["below"][i] < 1 < s["above"][i],
                             ratio_below=s["below"][i], ratio_above=s["above"][i]))  # fmt: skip
    back = []
    for b, sw in r.sweep.items():
        e = np.array(sw["etas"])
        conv = np.array([st == "converged" for st in sw["status"]])
        sharp = np.array(sw["sharpness"], dtype=float)
        at_start = conv & (np.abs(sharp - r.sharpness) <= 1e-3 * r.sharpness)
        below = e <= 0.95 * sw["eta_star_start"]
        back.append(dict(seed=r.config["seed"], unit=f"B={b}",
                         shown=bool(np.all(at_start[below])) if below.any() else None,
                         runs_below=int(below.sum()), returned=int(at_start[below].sum())))  # fmt: skip
    return {
        "real_sgd_follows_threshold": make_verdict(
            real, statement="real SGD is mean-square bounded below eta*(B) and grows above it, "
            "as its linearization", threshold=f"per (B, sampling): mean-square ratio < 1 at "
            f"{lo} eta* and > 1 at {hi} eta*",
        ),
        "sweep_returns_below_threshold": make_verdict(
            back, statement="SGD runs below eta*(B) return to the start minimum",
            threshold="per sweep batch size B: every run with eta <= 0.95 eta*(B) converges at "
            "the start minimum (sharpness within 1e-3)", min_seeds=1,
        ),
    }  # fmt: skip


def outcomes(r: Result) -> tuple[dict, dict]:
    """``(checks, verdicts)`` of the :mod:`~minstab.experiments.base` protocol."""
    return checks(r), verdicts(r)


def table(r: Result) -> str:
    """Summary table: eta*(B) with and without replacement and the simulation verdicts."""

    def v(x):
        return "bounded" if x < 1 else "grows"

    head = (
        f"{'B':>3} {'eta*':>9} {'eta*(repl)':>10} {'sqrt(B)/s':>9} {'T':>3} "
        f"{'lin 0.9':>8} {'lin 1.1':>8} {'real 0.9':>8} {'real 1.1':>8} "
        f"{'T_r':>3} {'real 0.9':>8} {'real 1.1':>8}"
    )
    lines = [
        f"wall time {r.wall_time:.1f} s",
        f"sharpness = {r.sharpness:.6g}, 2/sharpness = {r.gd_limit:.6g}, "
        f"non-uniformity s = {r.non_uniformity:.6g}",
        "ratios = mean-square distance to theta* after T steps / initial "
        "(< 1 bounded, > 1 grows); left: without replacement, right: with",
        head,
        "-" * len(head),
    ]
    w, h = r.sims["without"], r.sims["with"]
    for i, b in enumerate(r.batch_sizes):
        lines.append(
            f"{b:3d} {r.eta_star[i]:9.5g} {r.eta_star_replacement[i]:10.5g} {r.wme[i]:9.4g} "
            f"{r.horizon['without'][i]:3d} {w['linear']['below'][i]:8.3g} "
            f"{w['linear']['above'][i]:8.3g} {w['real']['below'][i]:8.3g} "
            f"{w['real']['above'][i]:8.3g} {r.horizon['with'][i]:3d} "
            f"{h['real']['below'][i]:8.3g} {h['real']['above'][i]:8.3g}"
        )
    verdicts = [
        v(r.sims[m][k][f][i]) == ("bounded" if f == "below" else "grows")
        for m in ("without", "with")
        for k in ("linear", "real")
        for f in ("below", "above")
        for i in range(len(r.batch_sizes))
    ]
    lines.append(f"simulation verdicts as predicted: {sum(verdicts)}/{len(verdicts)}")
    lines.append("")
    lines.append("SGD runs in a sweep (B, eta): status / final sharpness; eta*(B) at the start")
    for b, s in r.sweep.items():
        st = [x[0] if x != "not converged" else "n" for x in s["status"]]
        mx, back = s["max_eta_over_eta_star_final"], s["largest_eta_back_at_start_over_eta_star"]
        lines.append(
            f"B={b:>2}: eta*(B) at the start {s['eta_star_start']:.4g}; largest eta that "
            f"returned to the start = {back if back is None else round(back, 3)} eta*(B); "
            f"converged runs have eta <= {mx if mx is None else round(mx, 3)} eta*_B(final)"
        )
        lines.append(
            "      eta:status/sharpness "
            + " ".join(
                f"{e:.3g}:{c}/{sh:.3g}"
                for e, c, sh in zip(s["etas"], st, s["sharpness"], strict=True)
            )
        )
    return "\n".join(lines)


def plot(result: Result, out_dir) -> list:
    """Figure 1: eta*(B) with simulated outcomes. Figure 2: the (B, eta) sweep. PNG and PDF."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return _threshold_figure(result, out) + _sweep_figure(result, out)


def _threshold_figure(r: Result, out: Path) -> list:
    """eta*(B) without / with replacement, and the simulated outcomes at 0.9 and 1.1 eta*."""
    import matplotlib.pyplot as plt

    from minstab import plotting

    b = np.array(r.batch_sizes)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, mode, es in (
        (axes[0], "without", np.array(r.eta_star)),
        (axes[1], "with", np.array(r.eta_star_replacement)),
    ):
        ax.plot(b, es, "k.-", label="eta*(B) (exact)")
        ax.axhline(r.gd_limit, color="gray", ls=":", label="2 / sharpness (B = n, GD)")
        ax.plot(b, r.wme, color="tab:purple", ls="--", lw=0.8, label="sqrt(B)/s (Wu-Ma-E)")
        for kind, dx, mk in (("linear", -0.12, "o"), ("real", 0.12, "s")):
            for f, fac in (("below", 0.9), ("above", 1.1)):
                ratio = np.array(r.sims[mode][kind][f])
                ok = ratio < 1
                ax.scatter(b[ok] + dx, fac * es[ok], marker=mk, s=22, c="tab:green",
                           label=f"{kind} SGD bounded" if f == "below" else None)  # fmt: skip
                ax.scatter(b[~ok] + dx, fac * es[~ok], marker=mk, s=22, c="tab:red",
                           label=f"{kind} SGD grows" if f == "above" else None)  # fmt: skip
        ax.set_xlabel("batch size B")
        ax.set_title(f"batches drawn {mode} replacement", fontsize=9)
        ax.set_ylim(0, 1.25 * max(r.gd_limit, float(np.max(es)) * 1.1))
    axes[0].set_ylabel("step size eta")
    axes[0].legend(fontsize=6.5, loc="lower right")
    fig.tight_layout()
    return plotting.save(fig, out, "sgd_threshold")


def _sweep_panel(ax, s: dict) -> None:
    """One batch size of the sweep: final sharpness and 2 / eta*_B(final) against eta."""
    import matplotlib.ticker

    e = np.array(s["etas"])
    st = np.array(s["status"])
    sh, fin = np.array(s["sharpness"]), np.array(s["eta_star_final"])
    conv, notc, div = st == "converged", st == "not converged", st == "diverged"
    ax.plot(e, 2 / e, "k-", lw=0.8, label="2 / eta")
    ax.axvline(s["eta_star_start"], color="tab:blue", ls="--", lw=0.8,
               label="eta*(B) at the start")  # fmt: skip
    ax.plot(e[conv], sh[conv], "o", color="tab:blue", ms=4, label="sharpness (converged)")
    ax.plot(e[conv], 2 / fin[conv], "x", color="tab:orange", ms=5,
            label="2 / eta*_B(final) (converged)")  # fmt: skip
    ax.plot(e[notc], sh[notc], "o", mfc="none", color="gray", ms=4,
            label="sharpness (not converged)")  # fmt: skip
    if div.any():
        ax.plot(e[div], np.full(div.sum(), 0.7 * np.nanmin(2 / e)), "v", color="tab:red",
                ms=4, label="diverged")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ticks = [t for t in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)
             if e.min() <= t <= e.max()]  # fmt: skip
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel("step size eta")


def _sweep_figure(r: Result, out: Path) -> list:
    """One panel per sweep batch size."""
    import matplotlib.pyplot as plt

    from minstab import plotting

    sw = r.sweep
    fig, axes = plt.subplots(1, len(sw), figsize=(3.3 * len(sw), 3.4), sharey=True, squeeze=False)
    for ax, (bb, s) in zip(axes[0], sw.items(), strict=True):
        _sweep_panel(ax, s)
        ax.set_title(f"SGD, B = {bb} (n = {len(r.batch_sizes)})", fontsize=9)
    axes[0][0].set_ylabel("final sharpness and 2 / eta*_B(final)")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    return plotting.save(fig, out, "sgd_sweep")


def to_json(r: Result) -> dict:
    """Every field of the result (plain lists and floats)."""
    return r._asdict()
