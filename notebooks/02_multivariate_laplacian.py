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
# Both are judged as issue 29 asks: *checks* (the lemmas, on every eligible run; a false one makes
# the command exit 1) apart from *verdicts* (the paper's empirical statements, per seed, over
# several seeds: reproduced when they show in >= 75 % of the judged seeds, partly 25-75 %, not
# reproduced below 25 %, inconclusive when fewer than 4 seeds can be judged).
#
# Without `MINSTAB_QUICK`, the notebook shows the full-size seeds stored in `data/mnist/seeds/`
# and `data/depth_separation/seeds/` (written by `minstab reproduce mnist --out
# notebooks/data/mnist` and `minstab reproduce depth-separation --out
# notebooks/data/depth_separation`; a full run takes long on a CPU, so the stored seeds may be
# fewer than the protocol's 4); where none is stored, and with `MINSTAB_QUICK=1` (the tests), it
# computes the quick sizes. The first line printed by each run says which seeds and sizes are
# shown.

# %%
import dataclasses
import json
import os
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, Markdown, display

jax.config.update("jax_enable_x64", True)

import minstab as ms  # noqa: E402
from minstab.data.images import FASHION_MNIST_DIR  # noqa: E402
from minstab.experiments import depth_separation, mnist  # noqa: E402
from minstab.experiments.outcomes import format_outcomes  # noqa: E402

QUICK = os.environ.get("MINSTAB_QUICK") == "1"
DATASET = "fashion-mnist" if FASHION_MNIST_DIR.is_dir() else "digits"
DATA = Path(ms.__file__).resolve().parents[1] / "notebooks" / "data"
print("quick:", QUICK, "| dataset:", DATASET)


def stored_seeds(directory, first=0):
    """How many consecutive seeds from ``first`` are stored in ``directory/seeds``."""
    k = first
    while (Path(directory) / "seeds" / f"seed_{k}.json").exists():
        k += 1
    return k - first


# %% [markdown]
# ## 1. The bound on image data, across step sizes
#
# Classes 0 (T-shirt) and 1 (trouser), PCA to $d$ dimensions, targets $\pm 1$, quadratic loss.
# Per seed (the seed draws the 50 images of each class and the initialization), one random
# initialization shared by every run (no warm start: a warm start would pin every small step
# size to the same minimum). A run counts as converged when its loss stays below the tolerance
# for the patience window. A converged run is *on a kink* when its next two GD steps switch an
# activation: there the loss is not twice differentiable, the printed sharpness is one mode's,
# and the check is Lemma 2's $\lambda_{\text{lower}} \le 2/\eta + \delta$ on the mode interval
# (seed 004 Lemmas 2-3) instead of Lemma 1's $\lambda_{\max} \le 2/\eta$.

# %%
mdir = DATA / "mnist"
FULL_M = not QUICK and stored_seeds(mdir) > 0  # a full run is stored: show its seeds
cfg = mnist.Config(seeds=stored_seeds(mdir)) if FULL_M else mnist.Config.quick()
cfg = dataclasses.replace(cfg, dataset=DATASET)
if not FULL_M:
    mdir = Path("out_mnist")  # quick sizes, computed here
res = mnist.run(cfg, out_dir=mdir)
checks, verdicts = mnist.checks(res), mnist.verdicts(res)
print(f"{'stored full run' if FULL_M else 'quick sizes'}: seeds {[s.seed for s in res.seeds]} "
      f"(the protocol has {mnist.Config().seeds}), width {cfg.width}, d = {cfg.dim}, steps "
      f"{cfg.steps}, patience {cfg.patience}")  # fmt: skip
print(mnist.table(res))
print(format_outcomes(checks, verdicts))

# %%
paths = mnist.plot(res, "out_mnist")
display(Image(str(paths[0])))

# %% [markdown]
# Left: sharpness reached, the flattest implementation and the Lemma 4 bound against $2/\eta$.
# Right: $R_g(f)$ of GD's solution against the budget $1/\eta - 1/2$, every seed. What the
# outputs show, generated from the numbers above (a sentence about the budget says "binds" only
# when some run at the edge uses at least 95 % of it):

# %%
sm = mnist.summary(res)
lo, hi = sm["norm_over_budget"]
elo, ehi = sm["norm_over_budget_at_edge"]
v = verdicts["norm_decreases_with_step_size"]
l2 = checks["lemma2_lambda_lower_le_2_over_eta_plus_delta"]
l1 = checks["lemma1_sharpness_le_2_over_eta"]
lines = [
    f"Over {len(res.seeds)} seed(s), {sm['converged']} of {sm['runs']} runs converged, "
    f"{sm['at_edge']} at the edge of stability (sharpness >= 0.95 x 2/eta) and {sm['kinked']} on a "
    "kink.",
    f"R_g(f) uses {100 * lo:.0f}-{100 * hi:.0f} % of the budget 1/eta - 1/2 on the converged runs"
    + (f" ({100 * elo:.0f}-{100 * ehi:.0f} % at the edge)" if sm["at_edge"] else "")
    + (": the budget binds at the edge." if sm["at_edge"] and ehi >= 0.95
       else ": the budget does not bind on any run (no run uses 95 % of it)."),
    f"Lemma 4's bound is {100 * sm['bound_over_sharpness'][0]:.0f}-"
    f"{100 * sm['bound_over_sharpness'][1]:.0f} % of the sharpness GD reached and "
    f"{100 * sm['bound_over_flattest'][0]:.0f}-{100 * sm['bound_over_flattest'][1]:.0f} % of the "
    "flattest implementation's.",
    f"Lemma 2 ({l2.covered} kinked runs): "
    + ("holds" if l2.holds else "FAILS" if l2.holds is False else "covers no run") + f" - {l2.detail}.",
    f"Lemma 1 ({l1.covered} runs at differentiable minima): "
    + ("holds." if l1.holds else "FAILS." if l1.holds is False else f"no such run ({l1.why_none}).")
]  # fmt: skip
per = ", ".join(
    f"seed {r['seed']}: "
    + (f"{r['edge_runs']} edge runs, not judged" if r["shown"] is None
       else f"tau {r['kendall_tau']:.2f}, p {r['p_value']:.3g} ({'shown' if r['shown'] else 'not shown'})")
    for r in v.per_seed
)  # fmt: skip
lines.append(f"Verdict (R_g(f) falls with eta at the edge): **{v.verdict}**, shown on "
             f"{v.seeds_shown} of {v.seeds} judged seeds ({v.seeds_run} run; {per}).")  # fmt: skip
display(Markdown("\n\n".join(lines)))

# %% [markdown]
# ## 2. Depth separation: minimal budgets as the accuracy tightens, for several dictionaries
#
# For each target, on $n$ uniform points in $[-1.5, 1.5]^2$ (the seed draws them):
# $B(\varepsilon) = \min \sum |c|\, g$ over shallow nets with $\max_i |f(x_i) - y_i| \le
# \varepsilon$, an LP over a dictionary of $m \times m$ hyperplanes, and
# $\eta_{\max}(\varepsilon) = 1/(B(\varepsilon) + 1/2)$, the largest step size at which GD can
# have a stable solution that accurate. A bounded budget shows as increments
# $B(\varepsilon/2) - B(\varepsilon)$ that shrink; the bump's, whose norm is infinite, do not.
# The separation shows on a seed when, at each of the two finest dictionaries, every increment of
# the bump after the first stays at least half the first, while the control's last increment
# falls below half its first. Everything but the point draw is deterministic (evenly spaced
# directions and offsets, an LP with one optimal value), so the seeds are the data draws.

# %%
ddir = DATA / "depth_separation"
FULL_D = not QUICK and stored_seeds(ddir) > 0  # a full run is stored: show its seeds
if FULL_D:
    stored = json.loads((ddir / "seeds" / "seed_0.json").read_text())["config"]  # as run
    dcfg = depth_separation.Config(dictionaries=tuple(stored["dictionaries"]),
                                   seeds=stored_seeds(ddir))  # fmt: skip
else:
    dcfg, ddir = depth_separation.Config.quick(), Path("out_depth")  # computed here
dres = depth_separation.run(dcfg, out_dir=ddir)
dchecks, dverdicts = depth_separation.checks(dres), depth_separation.verdicts(dres)
print(f"{'stored full run' if FULL_D else 'quick sizes'}: seeds {[s.seed for s in dres.seeds]}, "
      f"n = {dcfg.n}, dictionaries {dcfg.dictionaries} (the protocol's: "
      f"{depth_separation.Config().dictionaries}, {depth_separation.Config().seeds} seeds)")  # fmt: skip
print(depth_separation.table(dres))
print(format_outcomes(dchecks, dverdicts))

# %%
dpaths = depth_separation.plot(dres, "out_depth")
display(Image(str(dpaths[0])))

# %% [markdown]
# Generated summary (the convergence in dictionary size is the relative change of $B$ between
# the two finest dictionaries; the verdict is only as good as that change is small):

# %%
dv = dverdicts["depth_separation"]
conv = depth_separation.dictionary_convergence(dres)
d = dres.dictionaries
lines = []
for r in dv.per_seed:
    b = "; ".join(np.array2string(np.asarray(x), precision=3) for x in r["bump_increments"])
    c = "; ".join(np.array2string(np.asarray(x), precision=3) for x in r["control_increments"])
    lines.append(f"seed {r['seed']}: bump increments at {d[-2]}^2; {d[-1]}^2: {b} (keeps growing: "
                 f"{r['bump_keeps_growing']}); control: {c} (converges: {r['control_converges']})")  # fmt: skip
lines.append(
    f"From {d[-2]}^2 to {d[-1]}^2 planes B changes by "
    + "; ".join(f"{k} {100 * np.min(x):+.1f} to {100 * np.max(x):+.1f} %" for k, x in conv.items())
    + " over seeds and accuracies."
)
lines.append(f"Verdict (depth separation): **{dv.verdict}**, shown on {dv.seeds_shown} of "
             f"{dv.seeds} judged seeds ({dv.seeds_run} run).")  # fmt: skip
s0 = dres.seeds[0]
eta = 0.9 * 2 / s0.deep_sharpness
budget = 1 / eta - 0.5
reach = {k: budget >= np.min(s0.budget[k][:, 0]) for k in depth_separation.ROLES}
lines.append(
    f"The two-hidden-layer net realizes the bump with max error {s0.deep_error:.1e} and sharpness "
    f"{s0.deep_sharpness:.4f} (seed {s0.seed}); GD started next to it returns at 0.9 x 2/lambda "
    f"(distance ratio {s0.deep_gd_ratio[0.9]:.1e}) and leaves at 1.1 x 2/lambda "
    f"({s0.deep_gd_ratio[1.1]:.1e}). At its stable step eta = {eta:.3f} a shallow stable solution "
    f"has budget {budget:.3f}; B at the loosest accuracy {dres.accuracies[0]:g} is "
    f"{np.min(s0.budget['l1-bump'][:, 0]):.3f} for the bump and "
    f"{np.min(s0.budget['control'][:, 0]):.3f} for the control: "
    + (
        "both are out of reach at this step size, so what separates them is how B grows as eps "
        "shrinks, not one step size."
        if not any(reach.values())
        else "reachable at that accuracy: " + ", ".join(k for k, r in reach.items() if r) + "."
    )
)
display(Markdown("\n\n".join(lines)))

# %%
from minstab.shallow.deep import bump, bump_network, deep_forward  # noqa: E402

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

# %% [markdown]
# ## Protocol history (issue 29)
#
# | command | before | why it changed | after |
# |---|---|---|---|
# | `reproduce mnist` | one seed (000); Lemma 1 checked on differentiable minima only: every run of the full run was on a kink, so it covered 0 of 8 runs (one mode's sharpness x eta/2 reached 1.006, which had led to the narrowing); the step-size trend a pass/fail claim on that seed (tau = -1.000, p = 0.0014, PASS) | a check over no run is no check; a trend judged on one seed is an anecdote | Lemma 2's $\lambda_{\text{lower}} \le 2/\eta + \delta$ on every kinked converged run (on the stored full seed 0 its largest $\lambda_{\text{lower}}\,\eta/2$ is 0.9987: the 1.006 was one mode's curvature, not a counterexample); the trend a verdict over 4 seeds, in `--quick` too (4 seeds of the old quick size: inconclusive, 2 of 2 judged seeds show it, 2 seeds have fewer than 4 edge runs) |
# | `reproduce depth-separation` | one point draw, a 48 x 48 dictionary (the tightest accuracy re-solved at 96 x 96), "bump keeps growing: last increment >= first/2" and "control converges" as claims (both PASS at 48^2; last/first for the bump 0.70 at 32^2, 0.56 at 64^2, 0.497 at 128^2, the last a FAIL); a sentence "not even accuracy 0.1 is reachable for the bump" that is equally true of the control | the claim flipped with the dictionary; a sentence true of the control separates nothing | dictionaries 32^2, 64^2, 128^2, 256^2 (quick: 32^2, 64^2 with n = 150 instead of 200, to stay near the old quick test's time with 4 draws), 4 point draws, one verdict with the criterion at the two finest dictionaries, the convergence in dictionary size reported; the deep-net statements are checks on every draw |
