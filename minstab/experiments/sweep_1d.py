"""minstab sweep: seed 004 Fig. 3 as the paper ran it, on an embedded univariate toy set.

Protocol (seed 004 §5: "We train a single-hidden-layer ReLU network using GD with varying step
sizes, all initialized at the same point"): draw ``n`` points of :func:`minstab.data.toy_1d`
and ONE random network (knots uniform over the data, first layer ``init_scale`` N(0, 1), output
layer ``output_scale`` N(0, 1/width)); run full-batch GD from that point with every step size
eta of a geometric grid, in one compiled ``jit(vmap(scan))`` program, until the loss has stayed
below ``tol`` for ``patience`` steps (converged), blows up (diverged) or ``steps`` run out.
``--from-minimum`` instead starts every run from a point near a minimum reached by small-step
GD: seed 004 Fig. 1's protocol ("initializing near the minimum"), not Fig. 3's.

Per run: the sharpness and, at minima with knots on data points, the mode interval
[lambda_lower, lambda_upper] of Lemma 2/3; the flattest implementation and the Lemma 4 bound;
the weighted curvature int |f''| g. The claims checked on the output (and written to
``summary.json``; a false one makes the command exit 1): enough runs converge; the runs whose
2/eta lies below the sharpness reached at the smallest step size (the "edge band") converge at
the edge of stability, |eta lambda / 2 - 1| small with lambda the point of the mode interval
nearest to 2/eta (Cohen et al.'s phenomenon that the paper cites as [8]); the weighted
curvature falls as eta grows (Spearman); Lemma 1/2, Lemma 4 and Theorem 1 hold where they
apply, each with the number of runs it covered. Figures: fig3a_interpolants, fig3b_curvature,
fig3c_sharpness. Finished chunks are saved under OUT/chunks; rerunning resumes from them.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .claims import Claim, claim, exit_status, format_claims
from .claims import to_json as claims_to_json

__all__ = [
    "Config",
    "Result",
    "Curves",
    "run",
    "check",
    "plot",
    "per_run",
    "describe",
    "add_arguments",
    "main",
]


@dataclasses.dataclass(frozen=True)
class Config:
    """Options of the main job (every field is a ``--config`` TOML key; the common ones are flags).

    The defaults were found by the search recorded in notebook 01 (see the README): a narrow
    net whose output layer starts large relative to its first layer, so that the small-step
    solution keeps the kinks of the initial function (rough), while larger steps reach the edge
    of stability and must flatten the function to converge there.
    """

    # data: minstab.data.toy_1d(n, key(seed), noise)
    n: int = 8
    noise: float = 0.3
    seed: int = 0
    # one shared random initialization
    width: int = 16
    init_scale: float = 1.0
    output_scale: float = 4.0
    # seed 004 Fig. 1's protocol instead of Fig. 3's (explicit opt-in)
    from_minimum: bool = False
    warmup_steps: int = 0
    warmup_tol: float = 1e-8
    # step sizes: explicit, or num_etas geometric values in [eta_lo, eta_hi]
    etas: tuple | None = None
    num_etas: int = 40
    eta_lo: float = 0.05
    eta_hi: float = 0.4
    # GD
    steps: int = 100_000
    tol: float = 1e-11
    patience: int = 5000
    log_every: int = 1000
    chunk_size: int = 40
    dtype: str = "float64"
    # claims (targets of the main job; a config file can set them to see a claim fail)
    min_converged: int = 20
    band_min_runs: int = 10
    band_min_span: float = 2.0
    edge_tol: float = 0.05
    max_spearman: float = -0.7
    # output
    out: str = "minstab-out/sweep"
    quiet: bool = False
    quick: bool = False

    @classmethod
    def quick_config(cls, **kw) -> Config:
        """A reduced sweep for tests and CI (``--quick`` or MINSTAB_QUICK=1).

        12 step sizes over a narrower range around the edge band and fewer steps (the smallest
        step converges in ~35k); the band holds fewer runs, so its size target is 4 and the
        convergence target half the runs; the other targets are the full job's.
        """
        base = dict(num_etas=12, eta_lo=0.09, eta_hi=0.36, steps=60_000, chunk_size=12,
                    min_converged=6, band_min_runs=4, quick=True)  # fmt: skip
        base.update(kw)
        return cls(**base)

    def step_sizes(self) -> np.ndarray:
        """The step-size grid (absolute values; the data and init are fixed by ``seed``)."""
        if self.etas:
            return np.asarray(self.etas, float)
        return np.geomspace(self.eta_lo, self.eta_hi, self.num_etas)


class Curves(NamedTuple):
    """Plot-ready arrays (computed here, drawn by :mod:`minstab.plotting`)."""

    grid: np.ndarray  # (m,)
    f: np.ndarray  # (R, m) network outputs on the grid
    g: np.ndarray  # (m,) weight g(t) of eqs. 22-23
    knot_position: np.ndarray  # (R, k) merged knots
    knot_mass: np.ndarray  # (R, k) summed f'' masses (0 for non-first group members)
    knot_gap: np.ndarray  # (R,) distance from the nearest massive knot to a data point


class Result(NamedTuple):
    """Everything the main job produced."""

    sweep: object  # minstab.sweep.SweepResult, with lambda_lower / lambda_upper filled
    curves: Curves
    init_loss: float
    init_sharpness: float  # lambda_max of the Hessian at the shared starting point
    wall_time: float
    net_steps_per_s: float
    config: Config
    prediction: object = None  # minstab.predict.Prediction: W*, eta_max before training (Thm 1)


# ----------------------------------------------------------------------------- running


def _setup(cfg: Config):
    """Data and the shared initialization (float64 switches jax's x64 on, before any array)."""
    import jax

    if cfg.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import minstab as ms

    dt = jnp.dtype(cfg.dtype)
    x, y = ms.data.toy_1d(n=cfg.n, key=jax.random.key(cfg.seed), noise=cfg.noise, dtype=dt)
    knots = (float(x.min()), float(x.max()))
    p = ms.init_shallow(
        jax.random.key(cfg.seed + 1), 1, cfg.width, scheme="ntk", knot_range=knots,
        output_scale=cfg.output_scale, dtype=dt,
    )  # fmt: skip
    # w1 ~ init_scale N(0, 1) with the knots -b1/w1 kept where they are
    p = p._replace(w1=p.w1 * cfg.init_scale, b1=p.b1 * cfg.init_scale)
    return x, y, p


def _start(cfg: Config, x, y, p0):
    """The point every run starts from: the initialization, or a warm start (Fig. 1 protocol)."""
    import minstab as ms
    from minstab.train import train

    lam0 = float(ms.sharpness(p0, x, y, method="dense" if cfg.width <= 64 else "lanczos"))
    if not cfg.from_minimum:
        return p0, lam0, 0
    warm = train(p0, x, y, 1.0 / lam0, steps=cfg.warmup_steps, tol=cfg.warmup_tol,
                 log_sharpness="none")  # fmt: skip
    return warm.params, float(ms.sharpness(warm.params, x, y, method="gram")), int(warm.steps_run)


def _curves(res, x) -> Curves:
    import jax
    import jax.numpy as jnp

    from minstab.bounds import merged_knots, weight_1d

    xs = np.asarray(x)
    span = xs.max() - xs.min()
    grid = np.linspace(xs.min() - 0.15 * span, xs.max() + 0.15 * span, 400)
    P = res.params
    z = grid[None, :, None] * np.asarray(P.w1)[:, None, :, 0] + np.asarray(P.b1)[:, None, :]
    f = (np.maximum(z, 0) @ np.asarray(P.w2)[:, :, None])[..., 0] + np.asarray(P.b2)[:, None]
    g = np.asarray(weight_1d(jnp.asarray(grid, x.dtype), x))
    mk = jax.vmap(merged_knots)(jax.tree_util.tree_map(jnp.asarray, P))
    pos, mass = np.asarray(mk.position), np.asarray(mk.mass)
    big = np.abs(mass) > 1e-8 * np.maximum(np.abs(mass).max(axis=1, keepdims=True), 1e-300)
    inside = (pos >= xs.min()) & (pos <= xs.max()) & big
    d = np.abs(pos[:, :, None] - xs[None, None, :]).min(axis=2)
    gap = np.where(inside, d, np.inf).min(axis=1)
    return Curves(grid, f, g, np.where(big, pos, np.nan), np.where(big, mass, 0.0), gap)


def run(cfg: Config) -> Result:
    """Train every step size from the shared starting point; curves, mode intervals, W*."""
    t0 = time.perf_counter()
    x, y, p0 = _setup(cfg)
    import minstab as ms
    from minstab.sweep import sweep

    start, lam0, warm_steps = _start(cfg, x, y, p0)
    train_cfg = ms.TrainConfig(steps=cfg.steps, log_every=min(cfg.log_every, cfg.steps),
                               tol=cfg.tol, patience=cfg.patience)  # fmt: skip
    res = sweep(
        start, x, y, cfg.step_sizes(), config=train_cfg, chunk_size=cfg.chunk_size, out_dir=cfg.out,
        progress=not cfg.quiet,
        extra_config={"experiment": "sweep_1d", **_jsonable(cfg), "warmup_steps_run": warm_steps,
                      "init_sharpness": lam0},
    )  # fmt: skip
    res = res.with_mode_intervals()
    curves = _curves(res, x)
    wall = time.perf_counter() - t0
    # net steps = parameter updates applied in the chunks computed by this call (chunks loaded
    # from an interrupted run cost nothing here)
    cs = int(res.config["chunk_size"])
    mine = np.zeros(res.num_runs, bool)
    for c in sweep.last_computed:
        mine[c * cs : (c + 1) * cs] = True
    net = float(np.sum(res.steps_run[mine])) + warm_steps
    pred = ms.smoothest_interpolant(x, y)  # Theorem 1 before training: W*, eta_max
    loss0 = float(ms.quadratic_loss(start, x, y))
    return Result(res, curves, loss0, lam0, wall, net / wall, cfg, pred)


def _jsonable(cfg: Config) -> dict:
    d = dataclasses.asdict(cfg)
    d["etas"] = list(cfg.etas) if cfg.etas else None
    return d


# ----------------------------------------------------------------------------- per-run numbers


def spearman(a, b) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    if np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def per_run(result: Result) -> dict:
    """Per-run arrays the claims use: edge band, edge deviation, differentiability, tightness.

    ``lambda_edge`` is the point of [lambda_lower, lambda_upper] nearest to 2/eta (the
    sharpness itself at a twice-differentiable minimum); ``edge_dev = |eta lambda_edge / 2 - 1|``.
    The edge band holds the converged runs whose 2/eta is below the sharpness reached at the
    smallest converged step size: there GD could not have converged to that run's minimum.
    """
    s = result.sweep
    e = np.asarray(s.etas)
    c = np.asarray(s.converged)
    two = 2 / e
    lo, hi = np.asarray(s.lambda_lower), np.asarray(s.lambda_upper)
    lam_edge = np.clip(two, lo, hi)  # NaN where not converged
    smooth = c & (lo == hi)  # no knot on a data point: twice differentiable
    ref = float(s.sharpness[np.flatnonzero(c)[np.argmin(e[c])]]) if c.any() else np.nan
    band = c & (two < ref)
    fl, lb, sh = (np.asarray(v) for v in (s.flattest_sharpness, s.lower_bound, s.sharpness))
    return {
        "lambda_edge": lam_edge,
        "edge_dev": np.abs(e * lam_edge / 2 - 1),
        "twice_differentiable": smooth,
        "band": band,
        "reference_sharpness": ref,
        "bound_over_flattest": lb / fl,
        "bound_over_sharpness": lb / sh,
    }


def _stats(v) -> dict:
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    if not v.size:
        return {"count": 0}
    return {"count": int(v.size), "min": float(v.min()), "median": float(np.median(v)),
            "max": float(v.max())}  # fmt: skip


# ----------------------------------------------------------------------------- claims


def check(result: Result) -> dict[str, Claim]:
    """Seed 004's claims on this sweep, each with the runs it covered."""
    return {**_shape_claims(result), **_theorem_claims(result)}


def _shape_claims(result: Result) -> dict[str, Claim]:
    """Fig. 3's picture: enough runs converge, an edge band at 2/eta, smoother at larger eta."""
    s, cfg = result.sweep, result.config
    e = np.asarray(s.etas)
    c = np.asarray(s.converged)
    pr = per_run(result)
    R, nc = s.num_runs, int(c.sum())
    band = pr["band"]
    nb = int(band.sum())
    out: dict[str, Claim] = {}
    out["enough_runs_converge"] = claim(
        nc >= cfg.min_converged, f"{nc} of {R} runs converged (target >= {cfg.min_converged})"
    )
    out["edge_band_runs"] = claim(
        nb >= cfg.band_min_runs,
        f"{nb} converged runs have 2/eta below the sharpness "
        f"{pr['reference_sharpness']:.4g} reached at the smallest eta (target >= {cfg.band_min_runs})",
    )
    span = float(e[band].max() / e[band].min()) if nb else float("nan")
    out["edge_band_span"] = claim(
        nb > 0 and span >= cfg.band_min_span,
        f"largest / smallest eta of the band {span:.3g} (target >= {cfg.band_min_span})",
    )
    med = float(np.median(pr["edge_dev"][band])) if nb else float("nan")
    out["edge_band_at_edge"] = claim(
        med <= cfg.edge_tol,
        f"median |eta lambda/2 - 1| = {med:.3g} over the band (target <= {cfg.edge_tol}; lambda "
        "= nearest point of the mode interval)",
        covered=nb, total=R,
    )  # fmt: skip
    rho = spearman(e[c], np.asarray(s.weighted_curvature)[c]) if nc > 2 else float("nan")
    out["smoother_at_larger_eta"] = claim(
        rho <= cfg.max_spearman,
        f"Spearman(eta, int|f''|g) = {rho:.3f} over the converged runs "
        f"(target <= {cfg.max_spearman})",
        covered=nc, total=R,
    )  # fmt: skip
    return out


def _theorem_claims(result: Result) -> dict[str, Claim]:
    """Lemmas 1-4 and Theorems 1-2 on every run their hypotheses cover."""
    from minstab.bounds import theorem2_delta

    s = result.sweep
    e, c = np.asarray(s.etas), np.asarray(s.converged)
    pr = per_run(result)
    R, nc = s.num_runs, int(c.sum())
    out: dict[str, Claim] = {}
    # Lemma 1 (twice differentiable: lambda_lower = sharpness, delta = 0) and Lemma 2 (knots on
    # data points, eq. 14): a stable minimum has lambda_lower <= 2/eta + delta (1e-3 relative
    # slack for the iterate's distance to the minimum)
    lo, dl = np.asarray(s.lambda_lower)[c], np.asarray(s.mode_delta)[c]
    ok = lo <= (2 / e[c] + dl) * (1 + 1e-3)
    out["stability_necessary_condition"] = claim(
        bool(np.all(ok)),
        f"{int(ok.sum())} of {nc} converged runs have lambda_lower <= 2/eta + delta "
        f"(Lemma 1 / Lemma 2); largest delta {float(np.max(dl, initial=0)):.3g}",
        covered=nc, total=R,
    )  # fmt: skip
    lb, fl, sh = (np.asarray(v)[c] for v in (s.lower_bound, s.flattest_sharpness, s.sharpness))
    good = (lb <= fl * (1 + 1e-6)) & (fl <= sh * (1 + 1e-6))
    out["lemma4_bound_le_flattest_le_sharpness"] = claim(
        bool(np.all(good)), f"{int(good.sum())} of {nc} converged runs", covered=nc, total=R
    )
    smooth = pr["twice_differentiable"]
    curv = np.asarray(s.weighted_curvature)
    t1 = curv[smooth] <= 1 / e[smooth] - 0.5
    out["theorem1_twice_differentiable_runs"] = claim(
        bool(np.all(t1)),
        f"int|f''|g <= 1/eta - 1/2 on {int(t1.sum())} of {int(smooth.sum())} twice-differentiable "
        "converged runs (runs with knots on data points fall under Theorem 2)",
        covered=int(smooth.sum()), total=R,
    )  # fmt: skip
    # Theorem 2 where its hypothesis is verified: knots on data points and strongly stable by
    # Lemma 3's sufficient condition (lambda_upper <= 2/eta)
    up = np.asarray(s.lambda_upper)
    strong = c & ~smooth & (up <= (2 / e) * (1 + 1e-3))
    budget2 = np.full(R, np.nan)
    for i in np.flatnonzero(strong):
        budget2[i] = float(theorem2_delta(s.params_at(int(i)), s.x, float(e[i])).budget)
    t2 = curv[strong] <= budget2[strong]
    out["theorem2_strongly_stable_runs"] = claim(
        bool(np.all(t2)),
        f"int|f''|g <= 1/eta - 1/2 + Delta on {int(t2.sum())} of {int(strong.sum())} converged "
        "runs with knots on data points and lambda_upper <= 2/eta (Lemma 3)",
        covered=int(strong.sum()), total=R,
    )  # fmt: skip
    if result.prediction is not None:
        em = float(result.prediction.eta_max)
        beyond = smooth & (e > em)
        out["no_smooth_run_beyond_eta_max"] = claim(
            not beyond.any(),
            f"eta_max = 1/(W* + 1/2) = {em:.4g} predicted before training; "
            f"{int(beyond.sum())} twice-differentiable converged runs beyond it",
            covered=int(smooth.sum()), total=R,
        )  # fmt: skip
    return out


def summary(result: Result, claims: dict[str, Claim]) -> dict:
    """Everything ``summary.json`` holds: claims, per-run numbers, tightness, timing."""
    s = result.sweep
    pr = per_run(result)
    c = np.asarray(s.converged)
    band = pr["band"]
    status = s.status()
    runs = []
    for i in range(s.num_runs):
        runs.append({
            "eta": float(s.etas[i]), "two_over_eta": float(2 / s.etas[i]), "status": status[i],
            "loss": float(s.loss[i]), "sharpness": float(s.sharpness[i]),
            "lambda_lower": float(s.lambda_lower[i]), "lambda_upper": float(s.lambda_upper[i]),
            "mode_delta": float(s.mode_delta[i]),
            "lambda_edge": float(pr["lambda_edge"][i]), "edge_dev": float(pr["edge_dev"][i]),
            "in_edge_band": bool(band[i]),
            "twice_differentiable": bool(pr["twice_differentiable"][i]),
            "weighted_curvature": float(s.weighted_curvature[i]),
            "flattest_sharpness": float(s.flattest_sharpness[i]),
            "lower_bound": float(s.lower_bound[i]),
            "bound_over_flattest": float(pr["bound_over_flattest"][i]),
            "bound_over_sharpness": float(pr["bound_over_sharpness"][i]),
            "knot_gap": float(result.curves.knot_gap[i]),
        })  # fmt: skip
    e = np.asarray(s.etas)
    out = {
        **claims_to_json(claims),
        "protocol": "from_minimum (seed 004 Fig. 1)" if result.config.from_minimum
        else "shared random initialization (seed 004 Fig. 3)",
        "init_sharpness": result.init_sharpness,
        "init_loss": result.init_loss,
        "reference_sharpness": pr["reference_sharpness"],
        "num_runs": s.num_runs,
        "num_converged": int(c.sum()),
        "num_diverged": int(np.sum(s.diverged)),
        "num_stalled": status.count("stalled"),
        "num_not_converged": status.count("not converged"),
        "num_twice_differentiable": int(pr["twice_differentiable"].sum()),
        "edge_band": {"runs": int(band.sum()),
                      "eta_min": float(e[band].min()) if band.any() else None,
                      "eta_max": float(e[band].max()) if band.any() else None,
                      "edge_dev": _stats(pr["edge_dev"][band])},
        "tightness": {"bound_over_flattest": _stats(pr["bound_over_flattest"][c]),
                      "bound_over_sharpness": _stats(pr["bound_over_sharpness"][c])},
        "weighted_curvature": _stats(np.asarray(s.weighted_curvature)[c]),
        "wall_time_s": result.wall_time,
        "net_steps_per_s": result.net_steps_per_s,
        "runs": runs,
    }  # fmt: skip
    if result.prediction is not None:
        out["w_star"] = float(result.prediction.w_star)
        out["predicted_eta_max"] = float(result.prediction.eta_max)
    return out


def describe(summ: dict) -> str:
    """A paragraph of what the outputs show, every number read from ``summary.json``."""
    b, t = summ["edge_band"], summ["tightness"]
    lines = [
        f"{summ['num_converged']} of {summ['num_runs']} step sizes converged to an interpolating "
        f"minimum ({summ['num_diverged']} diverged, {summ['num_stalled']} stalled, "
        f"{summ['num_not_converged']} ran out of steps). At the smallest step size GD ends at "
        f"sharpness {summ['reference_sharpness']:.3g} (the shared initialization has "
        f"{summ['init_sharpness']:.3g}).",
    ]
    if b["runs"]:
        d = b["edge_dev"]
        lines.append(
            f"The {b['runs']} converged runs with 2/eta below that value (eta from "
            f"{b['eta_min']:.3g} to {b['eta_max']:.3g}, a factor {b['eta_max'] / b['eta_min']:.2f}) "
            f"end at the edge of stability: median |eta lambda/2 - 1| = {d['median']:.2g} "
            f"(max {d['max']:.2g})."
        )
    wc = summ["weighted_curvature"]
    if not wc["count"]:
        return " ".join(lines)
    rho = summ["claim_details"]["smoother_at_larger_eta"]["detail"].split("=")[1].split()[0]
    lines.append(
        f"The weighted curvature int|f''|g of the converged runs goes from {wc['max']:.3g} down "
        f"to {wc['min']:.3g} (Spearman correlation with eta {rho}); W* = {summ['w_star']:.3g}."
    )
    lines.append(
        f"Lemma 4 tightness: bound / flattest has median {t['bound_over_flattest']['median']:.2f} "
        f"(range {t['bound_over_flattest']['min']:.2f}-{t['bound_over_flattest']['max']:.2f}), "
        f"bound / sharpness median {t['bound_over_sharpness']['median']:.2f}. "
        f"{summ['num_twice_differentiable']} converged runs are twice differentiable (Theorem 1 "
        "applies to those only)."
    )
    return " ".join(lines)


# ----------------------------------------------------------------------------- output


def plot(result: Result, out_dir) -> list:
    """Draw seed 004 Fig. 3 a-c (PNG + PDF)."""
    from minstab import plotting

    return plotting.fig3(result, out_dir)


def table(result: Result) -> str:
    """Per-run table: eta, 2/eta, loss, sharpness, mode interval, flattest, bound, status."""
    s = result.sweep
    pr = per_run(result)
    head = (f"{'eta':>8} {'2/eta':>8} {'loss':>8} {'sharpness':>9} {'[lam_lo, lam_up]':>19} "
            f"{'flattest':>8} {'bound':>7} {'curv':>7} {'edge':>6}  status")  # fmt: skip
    lines = [head, "-" * len(head)]
    for i, st in enumerate(s.status()):
        lo, hi = float(s.lambda_lower[i]), float(s.lambda_upper[i])
        iv = f"[{lo:.4g}, {hi:.4g}]" if np.isfinite(lo) else "-"
        dev = f"{pr['edge_dev'][i]:6.3f}" if np.isfinite(pr["edge_dev"][i]) else "     -"
        lines.append(
            f"{float(s.etas[i]):8.4g} {2 / float(s.etas[i]):8.4g} {float(s.loss[i]):8.1e} "
            f"{float(s.sharpness[i]):9.4g} {iv:>19} {float(s.flattest_sharpness[i]):8.4g} "
            f"{float(s.lower_bound[i]):7.4g} {float(s.weighted_curvature[i]):7.4g} {dev}  "
            f"{st}{' (band)' if pr['band'][i] else ''}"
        )
    return "\n".join(lines)


def write_outputs(result: Result, out) -> tuple[dict, dict[str, Claim], list]:
    """results.npz/json (per run), summary.json (claims), figures; returns them."""
    from minstab._io import write_json

    out = Path(out)
    result.sweep.save(out)
    claims = check(result)
    summ = summary(result, claims)
    write_json(out / "summary.json", summ)
    paths = plot(result, out)
    return summ, claims, paths


# ----------------------------------------------------------------------------- command line


def add_arguments(parser) -> None:
    """Flags of ``minstab sweep`` (defaults from :class:`Config`; ``--config`` TOML overrides)."""
    from minstab._cli_args import eta_list, positive_float, positive_int

    d = Config()
    a = parser.add_argument
    a("--out", default=None, help=f"output directory (default {d.out})")
    a("--etas", default=None, type=eta_list,
      help=f"step sizes: comma list '0.01,0.02' or geometric 'LO:HI:NUM' (default "
           f"{d.num_etas} values from {d.eta_lo} to {d.eta_hi})")  # fmt: skip
    a("--steps", type=positive_int, default=None, help=f"GD steps per run (default {d.steps})")
    a("--width", type=positive_int, default=None, help=f"neurons k (default {d.width})")
    a("--n", type=positive_int, default=None, help=f"training points (default {d.n})")
    a("--seed", type=int, default=None, help=f"seed for data and init (default {d.seed})")
    a("--tol", type=positive_float, default=None,
      help=f"convergence tolerance on the loss (default {d.tol})")  # fmt: skip
    a("--from-minimum", action="store_true",
      help="seed 004 Fig. 1's protocol: start every run from a point near a minimum reached by "
           "small-step GD (default: Fig. 3's shared random initialization, no warm-up)")  # fmt: skip
    a("--warmup-steps", type=positive_int, default=None,
      help="small-step GD steps of --from-minimum (default 20000)")  # fmt: skip
    a("--chunk-size", type=positive_int, default=None,
      help=f"runs per compiled chunk (default {d.chunk_size})")  # fmt: skip
    a("--dtype", default="float64", choices=("float64", "float32"),
      help="floating precision (float64 enables jax x64)")  # fmt: skip
    a("--config", default=None, metavar="FILE",
      help="TOML file with any Config field (e.g. steps = 20000); flags override it")  # fmt: skip
    a("--quick", action="store_true", help="a small, fast sweep (also MINSTAB_QUICK=1)")
    a("--quiet", action="store_true", help="no progress bar")


def _read_toml(path) -> dict:
    from minstab.cli import UsageError

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            kw = tomllib.load(fh)
    except OSError as e:
        raise UsageError(f"--config: cannot read {path!r} ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"--config: {path!r} is not valid TOML ({e})") from None
    fields = {f.name: f for f in dataclasses.fields(Config)}
    unknown = sorted(set(kw) - set(fields))
    if unknown:
        raise UsageError(f"--config: unknown keys {unknown}; known: {', '.join(fields)}")
    if isinstance(kw.get("etas"), list):
        kw["etas"] = tuple(float(v) for v in kw["etas"])
    return kw


def config_from_args(args) -> Config:
    """Merge defaults, MINSTAB_QUICK/--quick, the TOML file and explicit flags (in that order)."""
    from minstab.cli import UsageError

    kw = _read_toml(args.config) if getattr(args, "config", None) else {}
    flags = {
        "out": args.out, "steps": args.steps, "width": args.width, "n": args.n,
        "seed": args.seed, "tol": args.tol, "warmup_steps": args.warmup_steps,
        "chunk_size": args.chunk_size, "dtype": args.dtype, "etas": args.etas,
    }  # fmt: skip
    kw.update({k: v for k, v in flags.items() if v is not None})
    if args.from_minimum:
        kw["from_minimum"] = True
    if kw.get("from_minimum") and not kw.get("warmup_steps"):
        kw["warmup_steps"] = 20_000
    if args.quiet:
        kw["quiet"] = True
    quick = args.quick or kw.pop("quick", False) or os.environ.get("MINSTAB_QUICK") == "1"
    try:
        cfg = Config.quick_config(**kw) if quick else Config(**kw)
    except TypeError as e:
        raise UsageError(f"--config: {e}") from None
    if cfg.n < 2:
        raise UsageError(f"--n: expected at least 2 training points, got {cfg.n}")
    if cfg.warmup_steps and not cfg.from_minimum:
        raise UsageError("--warmup-steps: only used with --from-minimum (seed 004 Fig. 1)")
    return cfg


def main(args) -> int:
    """Run the sweep, print the table and the claims, write results and figures."""
    from minstab.compile_time import CompileClock

    cfg = config_from_args(args)
    clock, t0 = CompileClock(), time.perf_counter()
    res = run(cfg)
    s = res.sweep
    print(
        f"\nn={cfg.n} points, width={cfg.width}, {s.num_runs} step sizes, {cfg.steps} steps, "
        f"tol={cfg.tol:g}, {cfg.dtype}; start: "
        + ("near a minimum (--from-minimum, seed 004 Fig. 1)" if cfg.from_minimum
           else "one shared random initialization (seed 004 Fig. 3)")
        + f", sharpness there {res.init_sharpness:.4g}"
    )  # fmt: skip
    print(table(res))
    summ, claims, paths = write_outputs(res, cfg.out)
    print("\n" + describe(summ))
    print(format_claims(claims))
    speed = (f"{res.net_steps_per_s:,.0f} net-steps/s" if res.net_steps_per_s > 0
             else f"every chunk loaded from {Path(cfg.out) / 'chunks'}")  # fmt: skip
    import jax

    ndev = len(jax.local_devices())
    print(f"wall time {res.wall_time:.1f} s (compilation included), {speed}, runs shared by "
          f"{ndev} {jax.default_backend().upper()} device{'s' if ndev > 1 else ''}")  # fmt: skip
    print(
        f"whole job {time.perf_counter() - t0:.1f} s, of which compilation {clock.seconds():.1f} s "
        f"({clock.programs()} programs; the persistent cache saved {clock.saved():.1f} s)"
    )
    out = Path(cfg.out)
    print(f"wrote {out / 'results.npz'}, {out / 'results.json'}, {out / 'summary.json'}, "
          + ", ".join(p.name for p in paths if p.suffix == ".png"))  # fmt: skip
    return exit_status(claims)
