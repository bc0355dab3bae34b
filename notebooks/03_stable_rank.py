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
# # Implicit bias beyond stability (seed 001): stable rank and normalized margins
#
# Kou, Chen and Gu (2023) train a two-layer net with a fixed second layer $\pm 1/m$ and a trained
# first layer $W \in \mathbb{R}^{2m \times d}$ by GD on the logistic loss from a small Gaussian
# initialization. On nearly-orthogonal data ($\|x_i\|^2 \ge C n \max_{k \ne i}|\langle x_i, x_k\rangle|$)
# they show that the stable rank $\|W\|_F^2/\|W\|_2^2$ goes to 1 for leaky ReLU and stays bounded
# for ReLU, and that the normalized margins $y_i f(x_i)/\|W\|_F$ of all points become equal.
#
# `minstab.implicit_bias` runs GD exactly in the coefficients of $W = W_0 + C X$ (the rows never
# leave the data span), so a step costs $O(m n^2)$ whatever $d$ is; every seed and step size is one
# `jit(vmap(vmap(scan)))` program, with stable rank, loss and margins logged inside the scan.
#
# Set `MINSTAB_QUICK=1` for a small, fast run (the tests do).

# %%
import os

import jax
from IPython.display import Image, display

jax.config.update("jax_enable_x64", True)

from minstab.experiments import stable_rank  # noqa: E402
from minstab.experiments.outcomes import format_outcomes  # noqa: E402

QUICK = os.environ.get("MINSTAB_QUICK") == "1"
# quick: a smaller run than `minstab reproduce stable-rank --quick` (the tests run both)
cfg = (
    stable_rank.Config.quick(d=1000, steps=1500, seeds=4, num_logs=10)
    if QUICK
    else stable_rank.Config()
)
print("quick:", QUICK, "|", cfg)

# %% [markdown]
# ## Run: synthetic nearly-orthogonal data and a two-class image subset
#
# Synthetic: $x_i \sim N(0, I_d/d)$ with random labels (pure noise, so only near-orthogonality
# makes them separable). Images: Fashion-MNIST classes 0/1 (scikit-learn digits when Fashion-MNIST
# is not installed), centred and scaled, full resolution. The table gives seed means of the
# stable rank at initialization and at the end, for the whole $W$ and for the sign blocks $W_+$
# and $W_-$ (the larger of the two; "blk max" the largest over seeds), the fewest support vectors
# of a run and the largest max/min normalized margin over them, and the largest final loss.

# %%
res = stable_rank.run(cfg)
print(stable_rank.table(res))

# %% [markdown]
# ## How we read "stable rank $\to 1$" (an interpretation of the abstract)
#
# The abstract says that for leaky ReLU the stable rank of the trained network converges to 1.
# GD makes each sign block rank one: the rows of $W_+$ align with $u_+ - \gamma u_-$ and those of
# $W_-$ with $u_- - \gamma u_+$, where $u_\pm$ are the label-weighted sums of the positive and the
# negative points (nearly orthogonal and of equal norm on balanced nearly-orthogonal data). The
# whole first layer is then two rank-one blocks of equal norm at an angle, with stable rank
# $1 + |\cos| = 2(1+\gamma^2)/(1+\gamma)^2$ (1.669 for $\gamma = 0.1$), not 1. We therefore read
# the paper's "$\to 1$" as the statement per block, $W_{+1}$ and $W_{-1}$, and check both values:
# the blocks against 1 and the whole layer against $2(1+\gamma^2)/(1+\gamma)^2$.

# %% [markdown]
# ## Checks and verdicts
#
# The verdicts are the paper's two statements for leaky ReLU, judged per initialization seed
# with the criteria of issue 29: every run of the seed ends with block stable rank $\le 1.01$;
# every run ends with max/min normalized margin $\le 1.05$ over its support vectors (the points
# whose logistic weight $1/(1+e^{y_i f(x_i)})$ is at least 1/100 of the largest). A seed is
# judged when all its runs brought the loss below $\log(2)/10$. The check compares the values
# logged inside the compiled scan with an SVD and a forward pass of the final $W$ in NumPy.

# %%
checks, verdicts = stable_rank.checks(res), stable_rank.verdicts(res)
print(format_outcomes(checks, verdicts))

# %% [markdown]
# ## Figure: stable rank and margins against the GD step (largest step size)
#
# Top row: the stable rank of the whole $W$ (solid) and of the block $W_+$ (dotted) for every
# seed; bottom row: the band between the smallest and largest normalized margin, and its median.

# %%
paths = stable_rank.plot(res, "stable-rank-out")
display(Image(filename=str(paths[0])))

# %% [markdown]
# ## What the outputs show
#
# Generated from the outputs above.

# %%
gamma = cfg.leaky_slope
for key, v in verdicts.items():
    vals = [
        max(r["block_stable_rank"]) if "block_stable_rank" in r else max(r["margin_ratio"])
        for r in v.per_seed
    ]
    what = "largest block stable rank" if key.startswith("stable") else "largest max/min margin"
    print(
        f"{key}: {v.verdict} ({v.seeds_shown} of {v.seeds} judged seeds, {v.seeds_run} run); "
        f"per seed {what}: " + ", ".join(f"{x:.4g}" for x in vals)
    )
for r in stable_rank.summary(res):
    print(
        f"{r['data']:>13} {r['activation']:>10}, eta = {r['eta']:g}: whole W {r['srank_final']:.4f} "
        f"(two orthogonal rank-one blocks: {stable_rank.whole_layer_limit(gamma):.4f}), block "
        f"{r['srank_block_final']:.4f}, margins max/min up to {r['margin_ratio_max']:.3g}"
    )
print("checks:", {k: c.holds for k, c in checks.items()})

# %% [markdown]
# ## Protocol history
#
# | date | setting | reason | verdicts before | verdicts after |
# |---|---|---|---|---|
# | issue 29 | two per-seed verdicts (block stable rank $\le 1.01$; max/min support-vector margin $\le 1.05$) on the synthetic data and on Fashion-MNIST; 8 seeds (4 before); the ReLU and whole-layer claims dropped (reported only) | the ReLU claim held as soon as $W$ moved (learned part of rank $\le n = 20 < 43.7$) and the margin claim passed margins that differed by 2x; Fashion-MNIST was reported, not judged | synthetic only, 5 claims, all passed (4 seeds) | block stable rank: synthetic reproduced 8/8, Fashion-MNIST partly 3/8; equal margins: synthetic reproduced 8/8, Fashion-MNIST not reproduced 0/8 |
