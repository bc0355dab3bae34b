# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Multivariate stability (seed 000): the bound on images across step sizes, and depth separation
#
# Seed 000 extends the univariate result of seed 004 to inputs in $\mathbb{R}^d$. A neuron is a
# hyperplane with unit normal $v_i$, offset $b_i$ and mass $a_i = w_{2,i}\|w_{1,i}\|$; the
# Laplacian of a shallow ReLU net is a measure on these hyperplanes, so its "weighted $L^1$ norm"
# is the weighted Radon-domain norm
# $R_g(f) = \sum_{\text{hyperplanes}} |a|\, g(v, b)$ (THEORY §4). At a stable minimum of GD with
# step size $\eta$ (Lemma 1: $\lambda_{\max} \le 2/\eta$), the flattest implementation has
# $1 + 2 R_g(f) \le \lambda_{\max}$ (multivariate Lemma 4), hence $R_g(f) \le 1/\eta - 1/2$
# (Theorem 1).
#
# 1. **Image data**: two classes of Fashion-MNIST (or scikit-learn's 8x8 digits), every run from
#    one shared random initialization, GD for each $\eta$; per converged run the sharpness, the
#    flattest implementation (with its dual certificate), $R_g(f)$ against its budget, and the
#    tightness of the bound.
# 2. **Depth separation**: the smallest $R_g$ of a shallow net reaching accuracy $\varepsilon$ (a
#    linear program over a hyperplane dictionary) for the bump $\sigma(1 - \|x\|_1)$ and for a
#    smooth Gaussian control, as $\varepsilon$ shrinks; and the two-hidden-layer net that realizes
#    the bump exactly.
#
# Set `MINSTAB_QUICK=1` for a small, fast run (the tests do).

# %%
import dataclasses
import os

import jax
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

jax.config.update("jax_enable_x64", True)

from minstab.experiments import depth_separation, mnist  # noqa: E402
from minstab.experiments.claims import format_claims  # noqa: E402
from minstab.images import FASHION_MNIST_DIR  # noqa: E402

QUICK = os.environ.get("MINSTAB_QUICK") == "1"
DATASET = "fashion-mnist" if FASHION_MNIST_DIR.is_dir() else "digits"
print("quick:", QUICK, "| dataset:", DATASET)

# %% [markdown]
# ## 1. The bound on image data, across step sizes
#
# Classes 0 (T-shirt) and 1 (trouser), PCA to $d$ dimensions, targets $\pm 1$, quadratic loss,
# one random initialization shared by every run (no warm start: a warm start would pin every
# small step size to the same minimum). A run counts as converged when its loss stays below the
# tolerance for the patience window (long enough for a point just past $2/\eta$ to show its
# instability).

# %%
cfg = mnist.Config.quick_config() if QUICK else mnist.Config()
cfg = dataclasses.replace(cfg, dataset=DATASET)
res = mnist.run(cfg)
claims = mnist.check(res)
print(mnist.table(res))
print(format_claims(claims))
print(f"wall time {res.wall_s:.1f} s")

# %%
paths = mnist.plot(res, "out_mnist")
display(Image(str(paths[0])))

# %% [markdown]
# Left: sharpness reached, the flattest implementation and the Lemma 4 bound against $2/\eta$.
# Right: $R_g(f)$ of GD's solution against the budget $1/\eta - 1/2$. The summary below is
# generated from the run: where the runs sit at the edge of stability (sharpness within 5 % of
# $2/\eta$) the budget binds and $R_g(f)$ falls with $\eta$, following the shape of
# $1/\eta - 1/2$; below the edge the budget is loose and $R_g(f)$ stays at the value of the
# first solution GD finds. Lemma 1 is only checked at twice-differentiable minima: a run whose next
# GD steps still switch an activation sits on a kink, where the printed sharpness is one mode's
# (seed 004 Lemmas 2-3) and may exceed $2/\eta$ at a stable minimum; the claims output says how
# many runs that is and by how much.

# %%
c, edge = res.converged, res.at_edge
print(f"{c.sum()} of {len(c)} runs converged; {edge.sum()} at the edge of stability")
print(
    f"tightness bound/sharpness {np.nanmin(res.tightness[c]):.3f} .. "
    f"{np.nanmax(res.tightness[c]):.3f}, bound/flattest {np.nanmin(res.tightness_flattest[c]):.3f}"
    f" .. {np.nanmax(res.tightness_flattest[c]):.3f}"
)
print(
    "R_g(f) / (1/eta - 1/2) per converged run:",
    ", ".join(
        f"eta={e:g}: {r:.3f}" for e, r in zip(res.etas[c], (res.norm / res.budget)[c], strict=True)
    ),
)
tau, p = mnist.step_size_trend(res.etas[edge], res.norm[edge])
print(f"at the edge: Kendall tau(R_g(f), eta) = {tau:.3f}, one-sided exact p = {p:.3g}")

# %% [markdown]
# ## 2. Depth separation: minimal budgets as the accuracy tightens
#
# For each target, on $n$ uniform points in $[-1.5, 1.5]^2$: $B(\varepsilon) = \min \sum |c|\, g$
# over shallow nets with $\max_i |f(x_i) - y_i| \le \varepsilon$, and
# $\eta_{\max}(\varepsilon) = 1/(B(\varepsilon) + 1/2)$, the largest step size at which GD can have
# a stable solution that accurate. A bounded budget shows as increments $B(\varepsilon/2) -
# B(\varepsilon)$ that shrink; the bump's, whose norm is infinite, do not. The full run also solves
# the tightest accuracy with a dictionary twice as fine, to show how much of $B$ is the
# dictionary's.

# %%
dcfg = depth_separation.Config.quick_config() if QUICK else depth_separation.Config()
dres = depth_separation.run(dcfg)
dclaims = depth_separation.check(dres)
print(depth_separation.table(dres))
print(format_claims(dclaims))
print(f"wall time {dres.wall_s:.1f} s")

# %%
dpaths = depth_separation.plot(dres, "out_depth")
display(Image(str(dpaths[0])))

# %% [markdown]
# With the twice finer dictionary the control's tightest budget barely moves, while the bump's
# drops noticeably (the line "with a dictionary of ..." above): part of the bump's last increment
# is the dictionary's resolution, so the growth it shows is an upper-bound measurement, and a
# finer dictionary at every accuracy would be the next check.
#
# The two-hidden-layer net realizes the bump exactly; GD started next to it along the top Hessian
# eigenvector returns at $0.9 \cdot 2/\lambda$ and leaves at $1.1 \cdot 2/\lambda$, so it is a
# linearly stable minimum exactly up to $2/\lambda$. Generated summary:

# %%
inc = dres.increments
print(
    f"bump: B from {dres.budget['l1-bump'][0]:.4f} to {dres.budget['l1-bump'][-1]:.4f}, increments "
    f"{np.array2string(inc['l1-bump'], precision=4)}; control ({dcfg.control}): B from "
    f"{dres.budget['control'][0]:.4f} to {dres.budget['control'][-1]:.4f}, increments "
    f"{np.array2string(inc['control'], precision=4)}"
)
lam = dres.deep_sharpness
print(
    f"deep net: max error {dres.deep_error:.1e}, sharpness {lam:.4f}; GD distance ratio "
    f"{dres.deep_gd_ratio[0.9]:.2e} at 0.9*2/lambda, {dres.deep_gd_ratio[1.1]:.2e} at 1.1*2/lambda"
)
eta = 0.9 * 2 / lam
ok = dres.budget["l1-bump"] <= 1 / eta - 0.5
print(
    f"at eta = {eta:.4f} (deep net stable) a stable shallow solution has budget {1 / eta - 0.5:.4f}: "
    + (
        f"the bump is reached to accuracy {dres.accuracies[ok][-1]:g} at best"
        if ok.any()
        else f"not even the loosest accuracy {dres.accuracies[0]:g} is reachable for the bump"
    )
)

# %%
from minstab.deep import bump, bump_network, deep_forward  # noqa: E402

grid = np.linspace(-1.5, 1.5, 121)
xx, yy = np.meshgrid(grid, grid)
pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
deep = bump_network(2)
fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
for ax, z, title in zip(
    axes,
    [
        np.asarray(deep_forward(deep, pts)),
        np.asarray(bump(pts)) - np.asarray(deep_forward(deep, pts)),
    ],
    ["deep net $\\sigma(1-\\|x\\|_1)$", "deep net minus target"],
    strict=True,
):
    im = ax.imshow(z.reshape(xx.shape), extent=(-1.5, 1.5, -1.5, 1.5), origin="lower")
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
fig.tight_layout()
display(fig)
plt.close(fig)
