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
# # Implicit bias beyond stability (seed 002): the gap to the minimum-norm global minimum
#
# Seed 002 (Lai, Wang, Tao, Muthukumar 2026) states that GD on a shallow ReLU model with square
# loss on high-dimensional random features lands near the minimum-$\ell_2$-norm global minimum,
# with a relative gap $\Theta(\sqrt{n/d})$ ($\Theta(\sqrt{n/\mathrm{tr}\,\Sigma})$ for covariance
# $\Sigma$). The seed gives no model details; we read it as one ReLU neuron $\sigma(w\cdot x)$ with
# teacher labels $y_i = \sigma(w_\star \cdot x_i)$. Its global minima are
# $\{w : w\cdot x_i = y_i\ (y_i>0),\ w\cdot x_i \le 0\ (y_i=0)\}$, and the minimum-norm one is a
# convex QP, solved exactly by `minstab.min_norm_interpolant` (dual active set). GD starts at
# $w_0 = 0$ (with $\sigma'(0)=1$, the vanishing-initialization limit).
#
# Set `MINSTAB_QUICK=1` for a small, fast run (the tests do).

# %%
import os

import jax
import jax.numpy as jnp
from IPython.display import Image, display

jax.config.update("jax_enable_x64", True)

import minstab.implicit_bias as ib  # noqa: E402
from minstab.experiments import min_norm  # noqa: E402

QUICK = os.environ.get("MINSTAB_QUICK") == "1"
# quick: a smaller run than `minstab reproduce min-norm --quick` (the tests run both)
cfg = min_norm.Config.quick(ratios=(16, 64, 256), seeds=8, boot=200) if QUICK else min_norm.Config()
print("quick:", QUICK, "|", cfg)

# %% [markdown]
# ## One instance: the QP solution, its certificate, and GD

# %%
data = ib.teacher_data(jax.random.key(0), 24, 1536)
mn = ib.min_norm_interpolant(data.x, data.y)
print(
    "converged:",
    bool(mn.converged),
    "| KKT residual:",
    float(mn.kkt_residual),
    "| binding zero-label constraints:",
    int(mn.binding.sum()),
    "of",
    int((data.y == 0).sum()),
)
for eta_rel in (0.5, 1.5):
    eta = eta_rel * 24 / float(jnp.mean(jnp.sum(data.x**2, axis=1)))
    gd = ib.gd_single_neuron(data.x, data.y, eta, steps=4000)
    print(
        f"eta_rel={eta_rel}: loss {float(gd.loss):.1e}, global minimum reached: {bool(gd.interpolated)}, "
        f"gap {float(ib.relative_gap(gd.w, mn.w)):.3e}"
    )

# %% [markdown]
# ## The gap against $\sqrt{n/d}$
#
# For a grid of $(n, d)$ and several seeds per cell: the gap
# $\|w_{GD} - w_{mn}\|/\|w_{mn}\|$ over the runs where GD reached a global minimum (a positive-label
# point that starts inactive can stay inactive forever; the table counts the runs that made it).
# The step size is $\eta = \eta_{rel}\, n / \overline{\|x\|^2}$: $\eta_{rel} > 1$ overshoots each
# point's own residual. The fit is the slope $p$ of $\log$ gap against $\log(n/d)$, with a bootstrap
# 95% interval; the seed's claim is $p = 1/2$. The anisotropic rows use
# $\Sigma = \mathrm{diag}(k^{-1/2})$ (top eigenvalue 1) and the variable $n/\mathrm{tr}\,\Sigma$;
# the extra fit uses the effective rank $(\mathrm{tr}\,\Sigma)^2/\mathrm{tr}\,\Sigma^2$ instead.

# %%
res = min_norm.run(cfg)
print(min_norm.table(res))
print(f"wall time {res.wall_s:.1f} s")

# %% [markdown]
# ## Figure
#
# Log-log scatter of the gap against $\sqrt{n/\mathrm{tr}\,\Sigma}$ ($=\sqrt{n/d}$ when isotropic),
# the fitted power laws, and a dashed reference line of the claimed $\Theta(\sqrt{n/d})$ (slope 1 on
# these axes, $p = 1/2$). The claim is tested by whether the fitted $p$ and its interval cover 1/2,
# and, for the anisotropic case, by whether the points fall on the isotropic line when plotted
# against $n/\mathrm{tr}\,\Sigma$.

# %%
paths = min_norm.plot(res, "min-norm-out")
display(Image(filename=str(paths[0])))

# %%
for (case, e), f in res.fits.items():
    print(
        f"{case:>26}, eta_rel={e}: p = {f.slope:.3f}  95% CI [{f.lo:.3f}, {f.hi:.3f}]  ({f.points} runs)"
    )
