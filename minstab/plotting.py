"""Figures from result objects (no computation here beyond array selection).

``fig3(result, out_dir)`` draws seed 004 Fig. 3 (a-c) from a
:class:`minstab.experiments.sweep_1d.Result`: the interpolants, |f''| against the weight g, and
sharpness against eta with the 2/eta line, the flattest implementation and the Lemma 4 bound.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "fig3",
    "fig3a_interpolants",
    "fig3b_curvature",
    "fig3c_sharpness",
    "fig3d_seeds",
    "phase_diagram",
    "save",
]


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg") and not _interactive():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _interactive() -> bool:
    import sys

    return hasattr(sys, "ps1")


def save(fig, out_dir, name: str) -> list[Path]:
    """Write ``name.png`` and ``name.pdf`` under ``out_dir``; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    _plt().close(fig)
    return paths


def _colors(etas):
    plt = _plt()
    from matplotlib.colors import LogNorm

    norm = LogNorm(vmin=float(np.min(etas)), vmax=float(np.max(etas)))
    cmap = plt.get_cmap("viridis")
    return norm, cmap


def _selection(res, max_curves=8):
    ok = np.flatnonzero(np.asarray(res.sweep.converged))
    if ok.size <= max_curves:
        return ok
    return ok[np.unique(np.round(np.linspace(0, ok.size - 1, max_curves)).astype(int))]


TRIO_COLORS = ("k", "tab:blue", "tab:green")  # seed 004 Fig. 3: small, medium, large step


def trio(res) -> np.ndarray:
    """Three converged runs as in seed 004 Fig. 3: the smallest step, a medium one, the largest.

    The medium one is the middle run of the edge-of-stability band (converged runs whose
    stability threshold, 2/eta for GD, is below the sharpness reached at the smallest step), or
    of all converged runs if the band is empty.
    """
    e = np.asarray(res.sweep.etas)
    ok = np.flatnonzero(np.asarray(res.sweep.converged))
    if ok.size <= 3:
        return ok
    lo, hi = ok[np.argmin(e[ok])], ok[np.argmax(e[ok])]
    band = ok[np.asarray(res.sweep.threshold)[ok] < float(np.asarray(res.sweep.sharpness)[lo])]
    pool = band if band.size else ok
    pool = pool[(pool != lo) & (pool != hi)]
    if not pool.size:
        pool = ok[(ok != lo) & (ok != hi)]
    mid = pool[np.argsort(e[pool])[pool.size // 2]]
    return np.array([lo, mid, hi])


def fig3a_interpolants(res, ax=None):
    """Seed 004 Fig. 3a: the interpolants for a small, a medium and a large step size (bold).

    Every other converged run is drawn faintly in the colour of its step size.
    """
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 3.6))
    s, c = res.sweep, res.curves
    norm, cmap = _colors(s.etas)
    pick = trio(res)
    for i in np.flatnonzero(np.asarray(s.converged)):
        if i not in pick:
            ax.plot(c.grid, c.f[i], color=cmap(norm(s.etas[i])), lw=0.8, alpha=0.35)
    for col, i in zip(TRIO_COLORS, pick, strict=False):
        ax.plot(c.grid, c.f[i], color=col, lw=2.0,
                label=rf"$\eta$={s.etas[i]:.3g}, $\int|f''|g$={s.weighted_curvature[i]:.3g}")  # fmt: skip
    ax.plot(s.x, s.y, "x", color="crimson", ms=7, mew=2, zorder=5, label="training data")
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    (fig or ax.figure).colorbar(sm, ax=ax, label=r"step size $\eta$ (faint curves)")
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.set_title("(a) interpolants found by GD from one initialization")
    ax.legend(loc="best", fontsize=7)
    return fig or ax.figure


def fig3b_curvature(res, ax=None):
    """Seed 004 Fig. 3b: |f''| atoms (knot masses) of the three runs of (a), against the weight g."""
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 3.6))
    s, c = res.sweep, res.curves
    lo, hi = float(c.grid[0]), float(c.grid[-1])
    for j, (col, i) in enumerate(zip(TRIO_COLORS, trio(res), strict=False)):
        pos, mass = c.knot_position[i], np.abs(c.knot_mass[i])
        m = (mass > 0) & (pos >= lo) & (pos <= hi)
        ax.vlines(pos[m], 0, mass[m], color=col, lw=1.6, alpha=0.8)
        ax.plot(pos[m], mass[m], "ov^"[j % 3], ms=5, color=col,
                label=rf"$|f''|$ atoms, $\eta$={s.etas[i]:.3g}")  # fmt: skip
    ax.set_xlim(lo, hi)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("x")
    ax.set_ylabel(r"knot mass $|\sum w_2 |w_1||$")
    ax2 = ax.twinx()
    ax2.fill_between(c.grid, c.g, color="tab:purple", alpha=0.12)
    ax2.plot(c.grid, c.g, color="tab:purple", lw=1.5, label="weight g(x)")
    ax2.set_ylabel("weight g(x)", color="tab:purple")
    ax2.set_ylim(bottom=0)
    for xi in s.x:
        ax.axvline(float(xi), color="0.85", lw=0.6, zorder=0)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left", framealpha=0.9)
    ax.set_title(r"(b) $|f''|$ against the weight $g$")
    return fig or ax.figure


def fig3c_sharpness(res, ax=None):
    """Seed 004 Fig. 3c: sharpness vs eta, stability threshold, flattest implementation, Lemma 4.

    The threshold is the optimizer's (``SweepResult.threshold``): 2/eta for GD (Lemma 1),
    (2 + 2 beta)/eta for heavy ball.
    """
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 3.6))
    s = res.sweep
    e = np.asarray(s.etas)
    conv = np.asarray(s.converged)
    div = np.asarray(s.diverged)
    factor = s.config.get("threshold_factor", 2.0)
    label = r"$2/\eta$ (Lemma 1)" if factor == 2.0 else rf"threshold ${factor:.3g}/\eta$"
    ax.plot(e, s.threshold, "k--", lw=1.2, label=label)
    ax.plot(e[conv], s.sharpness[conv], "o-", ms=4, color="C0", label="sharpness reached by GD")
    lo, hi = getattr(s, "lambda_lower", None), getattr(s, "lambda_upper", None)
    if lo is not None and np.any(conv & (np.asarray(hi) > np.asarray(lo))):
        ax.vlines(e[conv], np.asarray(lo)[conv], np.asarray(hi)[conv], color="C0", lw=2.5,
                  alpha=0.35, label=r"mode interval $[\lambda_{lower}, \lambda_{upper}]$")  # fmt: skip
    if np.any(np.isfinite(s.flattest_sharpness[conv])):
        ax.plot(e[conv], s.flattest_sharpness[conv], "s-", ms=3.5, color="C2",
                label="flattest implementation")  # fmt: skip
    ax.plot(e[conv], s.lower_bound[conv], "^-", ms=3.5, color="C3",
            label=r"Lemma 4: $1 + 2\int|f''|g$")  # fmt: skip
    other = ~conv & ~div
    if np.any(other):
        ax.plot(e[other], s.sharpness[other], "o", mfc="none", color="C1",
                label="stalled / not converged")  # fmt: skip
    if np.any(div):
        lo = float(np.nanmin(s.lower_bound[conv])) if np.any(conv) else 1.0
        ax.plot(e[div], np.full(int(div.sum()), lo * 0.8), "x", color="crimson", label="diverged")
    pred = getattr(res, "prediction", None)
    if pred is not None and np.isfinite(pred.eta_max):
        em = float(pred.eta_max)
        ax.axvline(em, color="0.4", ls=":", lw=1.2)
        ax.plot([em], [factor / em], "*", ms=9, color="k",
                label=r"$\eta_{\max} = 1/(W^* + 1/2)$: smoothest interpolant")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"step size $\eta$")
    ax.set_ylabel(r"$\lambda_{\max}$")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.set_title(r"(c) sharpness vs step size")
    return fig or ax.figure


def fig3(res, out_dir) -> list[Path]:
    """Write fig3a_interpolants, fig3b_curvature, fig3c_sharpness (.png and .pdf) to ``out_dir``."""
    paths = []
    paths += save(fig3a_interpolants(res), out_dir, "fig3a_interpolants")
    paths += save(fig3b_curvature(res), out_dir, "fig3b_curvature")
    paths += save(fig3c_sharpness(res), out_dir, "fig3c_sharpness")
    return paths


def fig3d_seeds(seed_runs, out_dir) -> list[Path]:
    """Every seed's weighted curvature against eta lambda_0 / 2 (converged runs; band runs filled).

    ``seed_runs``: :class:`minstab.experiments.sweep_1d.SeedRun` objects. Writes fig3d_seeds.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    cmap = plt.get_cmap("tab10")
    for j, sr in enumerate(seed_runs):
        s = sr.sweep
        e, c = np.asarray(s.etas), np.asarray(s.converged)
        sh, curv = np.asarray(s.sharpness), np.asarray(s.weighted_curvature)
        rel = e * float(sr.init_sharpness) / 2
        col = cmap(j % 10)
        ax.plot(rel[c], curv[c], "-", color=col, lw=1.0, alpha=0.8, label=f"seed {sr.seed}")
        if c.any():
            ref = sh[np.flatnonzero(c)[np.argmin(e[c])]]
            band = c & (np.asarray(s.threshold) < ref)
            ax.plot(rel[c & ~band], curv[c & ~band], "o", ms=3, mfc="none", color=col)
            ax.plot(rel[band], curv[band], "o", ms=3.5, color=col)
    ax.set_xscale("log")
    ax.set_xlabel(r"$\eta\,\lambda_0/2$ ($\lambda_0$: sharpness at the seed's initialization)")
    ax.set_ylabel(r"$\int|f''|g$ (converged runs)")
    ax.set_title("(d) every seed: filled = edge band (threshold below the sharpness at the smallest eta)",
                 fontsize=8)  # fmt: skip
    ax.legend(fontsize=7, ncol=2, loc="best")
    return save(fig, out_dir, "fig3d_seeds")


def phase_diagram(cells, out_dir, *, name: str = "fig3_phase_diagram") -> list[Path]:
    """Heatmaps of the fraction of seeds showing edge, smoother and both, per n (PNG + PDF).

    ``cells``: dicts with ``width``, ``output_scale``, ``n`` and ``edge_fraction``,
    ``smoother_fraction``, ``both_fraction`` (seeds showing / seeds run).
    """
    plt = _plt()
    widths = sorted({c["width"] for c in cells})
    scales = sorted({c["output_scale"] for c in cells})
    ns = sorted({c["n"] for c in cells})
    keys = ("edge_fraction", "smoother_fraction", "both_fraction")
    titles = ("edge of stability", "smoother at larger eta", "both")
    fig, axes = plt.subplots(len(ns), 3, figsize=(11, 3.2 * len(ns) + 0.4), squeeze=False,
                             layout="constrained")  # fmt: skip
    for r, n in enumerate(ns):
        for j, (key, title) in enumerate(zip(keys, titles, strict=True)):
            ax = axes[r, j]
            grid = np.full((len(scales), len(widths)), np.nan)
            judged = np.zeros_like(grid)
            for c in cells:
                if c["n"] == n:
                    at = scales.index(c["output_scale"]), widths.index(c["width"])
                    grid[at] = c[key]
                    judged[at] = c.get("judged", 1)
            im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", origin="lower", aspect="auto")
            for (a, b), v in np.ndenumerate(grid):
                if np.isfinite(v):
                    note = "\n(0 judged)" if judged[a, b] == 0 else ""
                    ax.text(b, a, f"{v:.2f}{note}", ha="center", va="center", fontsize=8,
                            color="w" if v < 0.6 else "k")  # fmt: skip
            ax.set_xticks(range(len(widths)), [str(w) for w in widths])
            ax.set_yticks(range(len(scales)), [f"{s:g}" for s in scales])
            ax.set_xlabel("width")
            if j == 0:
                ax.set_ylabel("output-layer init scale")
            ax.set_title(f"{title}, n = {n}", fontsize=9)
    fig.colorbar(im, ax=axes, label="fraction of the seeds run showing it", shrink=0.8)
    return save(fig, out_dir, name)
