# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Implicit bias beyond stability (seed 002): is GD $\Theta(\sqrt{n/d})$ from the minimum-norm solution?
#
# Seed 002 (Lai, Wang, Tao, Muthukumar 2026) states that GD on a shallow ReLU model with square
# loss on high-dimensional random features lands near the minimum-$\ell_2$-norm global minimum,
# with a relative gap $\Theta(\sqrt{n/d})$. We read the model as one ReLU neuron
# $\sigma(w\cdot x)$: its global minima are
# $\{w : w\cdot x_i = y_i\ (y_i>0),\ w\cdot x_i \le 0\ (y_i=0)\}$ and the minimum-norm one,
# $w_{mn}$, is a convex QP solved exactly (`minstab.min_norm_interpolant`, with a KKT
# certificate). A multi-neuron model has no computable minimum-norm global minimum, which is why
# the single neuron is the reading that can be checked against an exact reference.
#
# The design (docstring of `minstab.experiments.min_norm`): GD from $w_0 = 0$ (so $w$ stays in
# the data span, the "data-span coefficients" of the seed); labels half 0 and half uniform on
# $[1/2, 3/2]$ (the "margin" case), plus a ReLU-teacher case and an anisotropic case; step sizes
# $\eta = \eta_{rel}\, n/\overline{\|x\|^2}$ in the stable regime, every run counted (runs that
# miss a global minimum are reported, not dropped); the exponent $p$ of the median gap against
# $n/d$ over $d/n = 16 \dots 1024$ with a bootstrap interval.
#
# Set `MINSTAB_QUICK=1` for a small, fast run (the tests do).

# %%
import os

import jax
import jax.numpy as jnp
import numpy as np
from IPython.display import Image, display

jax.config.update("jax_enable_x64", True)

import minstab.papers.implicit_bias as ib  # noqa: E402
from minstab.experiments import min_norm  # noqa: E402
from minstab.experiments.outcomes import format_outcomes  # noqa: E402
from minstab.papers import min_norm as mn  # noqa: E402

QUICK = os.environ.get("MINSTAB_QUICK") == "1"
# quick: a smaller run than `minstab reproduce min-norm --quick` (the tests run both)
cfg = (
    min_norm.Config.quick(ratios=(16, 128, 1024), seeds=12, boot=200, cases=("isotropic",))
    if QUICK
    else min_norm.Config()
)
print("quick:", QUICK, "|", cfg)

# %% [markdown]
# ## Why the gap is zero unless an activation flips
#
# GD from 0 only pushes active zero-label points down (their dual coefficients stay $\le 0$) and
# never touches the others, so if no zero-label point it pushed down is switched off later, its
# limit satisfies the KKT conditions of the QP: it *is* $w_{mn}$. One instance, two step sizes:
# below $\eta_{rel} = 1$ the pushed-down points approach 0 monotonically; above it each one
# overshoots once and is switched off ("released") with a dual coefficient of the size of the
# cross-talk $\sqrt{n/d}$.

# %%
k, y, _, _ = min_norm.cell_data(np.random.default_rng(0), 24, 24 * 64, 1)
for eta_rel in (0.5, 1.25):
    r = mn.gd_gap(jnp.asarray(k[0]), jnp.asarray(y[0]), eta_rel * 24 / np.mean(np.diag(k[0])))
    print(
        f"eta_rel={eta_rel}: global minimum reached: {bool(r.reached)}, w_mn certified: "
        f"{bool(r.certified)}, released points: {int(r.released)}, gap {float(r.gap):.3e}, "
        f"eta*lambda_max/2 = {float(r.stability):.3f}"
    )

# %% [markdown]
# ## The gap against $n/d$, for every case and step size

# %%
res = min_norm.run(cfg)
checks, verdicts = min_norm.checks(res.rows), min_norm.verdicts(res)
counts = min_norm.headline(res)
print(min_norm.table(res))
print(format_outcomes(checks, verdicts))

# %% [markdown]
# ## Figure
#
# Median gap (bars: quartiles) against $\sqrt{n/\mathrm{tr}\,\Sigma}$ ($=\sqrt{n/d}$ when
# isotropic), one panel per step size, with the fitted power laws and a dashed line of exponent
# 1/2.

# %%
paths = min_norm.plot(res, "min-norm-out")
display(Image(filename=str(paths[0])))

# %% [markdown]
# ## What the outputs show
#
# Checks (KKT certificate of every $w_{mn}$, GD on $w_{mn}$ when no point is released, Lemma 1 at
# every global minimum reached) must hold on every run; the verdicts are the seed's claim
# "gap $=\Theta(\sqrt{n/d})$" judged per $(\text{case}, \eta_{rel})$ cell: the runs of every grid
# point are split into 4 disjoint seed groups, and a group shows the claim when the 95 % interval
# of its exponent (against $n/\mathrm{tr}\,\Sigma$, the seed's variable) contains 1/2 and excludes
# 1. The sentences below are generated from the fits and verdicts above.

# %%
for key, v in verdicts.items():
    case, e = key.split(" eta_rel=")
    f = res.fits[(case, float(e), "n/tr")]
    sel = [r for r in res.rows if r["case"] == case and r["eta_rel"] == float(e)]
    runs = sum(len(r["gaps"]) for r in sel)
    reached = sum(sum(r["reached"]) for r in sel)
    exact = sum(int(np.sum(np.asarray(r["gaps"]) < min_norm.EXACT)) for r in sel)
    groups = ", ".join(f"{g['slope']:.2f} [{g['lo']:.2f}, {g['hi']:.2f}]" for g in v.per_seed)
    print(
        f"{case}, eta_rel = {float(e):g}: {v.verdict} ({v.seeds_shown} of {v.seeds} seed groups; "
        f"group exponents {groups}); pooled p = {f.slope:.3f} [{f.lo:.3f}, {f.hi:.3f}]: "
        f"{min_norm.describe(f)}; {reached} of {runs} runs reached a global minimum, {exact} "
        f"landed on w_mn (gap < {min_norm.EXACT:g})"
    )
for (case, e, v), f in res.fits.items():
    if v == "n/r_eff":
        print(
            f"{case}, eta_rel = {e:g}, against n/r_eff instead (not judged): p = {f.slope:.3f} "
            f"[{f.lo:.3f}, {f.hi:.3f}]: {min_norm.describe(f)}"
        )
print(min_norm.headline_text(counts))
print("checks:", {k: c.holds for k, c in checks.items()})

# %% [markdown]
# ## Protocol history
#
# | date | setting | reason | verdicts before | verdicts after |
# |---|---|---|---|---|
# | issue 29 | every (case, $\eta_{rel}$) cell judged, as a verdict over 4 seed groups; exit 1 only on a false check | before, only the first cell (isotropic, $\eta_{rel} = 1.25$) was judged, as a claim that could fail the command; the teacher case was missing from this summary | one cell judged: exponent consistent with 1/2 (claim passed); 2 of the 12 fits in the previous outputs (9 cells plus 3 against $n/r_{\mathrm{eff}}$) were consistent with 1/2 | every cell judged over 4 seed groups: isotropic and teacher at $\eta_{rel} = 1.25$ reproduced (4/4), the 7 other cells not reproduced (0/4); grid, step sizes and statistic unchanged |

# %% [markdown]
# The Gram-space computation agrees with GD on $w$ and the QP on $x$ (independent code paths):

# %%
data = ib.teacher_data(jax.random.key(1), 10, 300)
eta = 1.25 * 10 / float(jnp.mean(jnp.sum(data.x**2, axis=1)))
g = mn.gd_gap(data.x @ data.x.T, data.y, eta, steps=3000)
ref = ib.relative_gap(
    ib.gd_single_neuron(data.x, data.y, eta, steps=3000).w,
    ib.min_norm_interpolant(data.x, data.y).w,
)
print(f"gap in Gram space {float(g.gap):.12e}, from w and the QP {float(ref):.12e}")
