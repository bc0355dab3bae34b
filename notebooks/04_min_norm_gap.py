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

import minstab.implicit_bias as ib  # noqa: E402
from minstab import min_norm as mn  # noqa: E402
from minstab.experiments import min_norm  # noqa: E402
from minstab.experiments.claims import format_claims  # noqa: E402

QUICK = os.environ.get("MINSTAB_QUICK") == "1"
# quick: a smaller run than `minstab reproduce min-norm --quick` (the tests run both)
cfg = (
    min_norm.Config.quick_config(ratios=(16, 128, 1024), seeds=12, boot=200, cases=("isotropic",))
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
claims = min_norm.check(res)
print(min_norm.table(res))
print(format_claims(claims))
print(f"wall time {res.wall_s:.1f} s")

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
# The summary below is generated from the fits above. The claim "gap $\Theta(\sqrt{n/d})$" is
# checked at the headline step $\eta_{rel} = 1.25$ on isotropic data; every other fit gets the
# same plain verdict. In the full run, the exponent is consistent with 1/2 (and excludes 1) only
# above $\eta_{rel} = 1$, where every pushed-down zero-label point is released once; at
# $\eta_{rel} = 1$ it is consistent with 1, and below it many runs land exactly on $w_{mn}$ and
# the median gap falls much faster than any power 1/2. On anisotropic data the gap follows
# $n/r_{\mathrm{eff}}$, $r_{\mathrm{eff}} = (\mathrm{tr}\,\Sigma)^2/\mathrm{tr}\,\Sigma^2$,
# rather than $n/\mathrm{tr}\,\Sigma$ (with $\Sigma$ normalized to top eigenvalue 1).

# %%
for (case, e, v), f in res.fits.items():
    sel = [r for r in res.rows if r["case"] == case and r["eta_rel"] == e]
    runs = sum(len(r["gaps"]) for r in sel)
    reached = sum(sum(r["reached"]) for r in sel)
    exact = sum(int(np.sum(np.asarray(r["gaps"]) < min_norm.EXACT)) for r in sel)
    print(
        f"{case}, eta_rel = {e:g}, against {v}: p = {f.slope:.3f}, 95% interval "
        f"[{f.lo:.3f}, {f.hi:.3f}]: {min_norm.verdict(f)}; {reached} of {runs} runs reached a "
        f"global minimum, {exact} landed on w_mn (gap < {min_norm.EXACT:g})"
    )
print("headline claims:", {k: v.holds for k, v in claims.items()})

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
