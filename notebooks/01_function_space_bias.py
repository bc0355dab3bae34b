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
# # The implicit bias of minima stability, seen in function space (seed 004)
#
# Gradient descent with step size $\eta$ can only stay at a minimum whose sharpness
# $\lambda_{\max}(\nabla^2 L)$ is at most $2/\eta$ (**Lemma 1**). For a univariate shallow ReLU
# network, the flattest way to implement an interpolant $f$ still has sharpness at least
# $1 + 2\int |f''(x)|\, g(x)\, dx$ (**Lemma 4**), with a weight $g$ that depends only on the
# training inputs (eqs. 22-23). Together: every stable interpolant obeys
#
# $$\int |f''(x)|\, g(x)\, dx \;\le\; \frac{1}{\eta} - \frac{1}{2} \qquad \text{(Theorem 1)},$$
#
# so larger step sizes force smoother functions, especially where $g$ is large (the middle of
# the data). This notebook reproduces the paper's three figures with `minstab`; each cell is the
# same code as `minstab reproduce fig1|fig2|fig3`. Set `MINSTAB_QUICK=1` for a fast run.

# %%
import os

import jax
from IPython.display import Image, display

jax.config.update("jax_enable_x64", True)

import minstab as ms  # noqa: E402
from minstab.experiments import fig1, fig2, sweep_1d  # noqa: E402

QUICK = os.environ.get("MINSTAB_QUICK") == "1"
OUT = "minstab-out/notebook01"
print("minstab", ms.__version__, "| quick:", QUICK)

# %% [markdown]
# ## Figure 2: the weight $g$
#
# $g(t) = \min\{g^-(t), g^+(t)\}$ with $g^-(t) = P(X<t)^2\,E[t-X\mid X<t]\sqrt{1+E[X\mid X<t]^2}$
# and symmetrically $g^+$; $X$ is uniform over the training inputs. It vanishes outside the data
# and peaks in the middle. Below: 20 samples (normalized to mean 0, std 1) from three laws, the
# empirical $g$ (red) against the population $g$ computed by numerical integration (blue).

# %%
r2 = fig2.run(fig2.Config.quick() if QUICK else fig2.Config())
fig2.plot(r2, OUT)
display(Image(f"{OUT}/fig2_weights.png"))
for law, d in r2.sup_distance.items():
    print(f"{law:>9}: sup |g_n - g| =", ", ".join(f"{v:.4f} (n={n})" for n, v in d.items()))

# %% [markdown]
# The empirical weight converges to the population one as $n$ grows (the sup-distances above
# shrink), which is what lets Theorem 1 speak about the data distribution, not just the sample.
#
# ## Figure 1: a larger step size near a minimum finds a smoother interpolant
#
# Two GD runs from the same initialization. Run A keeps $\eta$; run B multiplies it by 3 once the
# loss is small. If the minimum A converges to is sharper than $2/(3\eta)$, B cannot stay there:
# its loss spikes (panel a) and it lands on a different, flatter interpolant (panel b) whose
# $|f''|$ is smaller where $g$ is large (panel c).

# %%
r1 = fig1.run(fig1.Config())
fig1.plot(r1, OUT)
display(Image(f"{OUT}/fig1.png"))
for k, r in r1.runs.items():
    e = float(r.eta_trace[-1])
    print(f"run {k}: final eta {e:.3g}, 2/eta {2 / e:.3g}, sharpness {r.sharpness:.4g}, "
          f"int|f''|g {r.curvature:.4f}, loss {r.loss:.1e}")  # fmt: skip
claims1 = fig1.check(r1)
assert all(c.holds for c in claims1.values()), claims1

# %% [markdown]
# Both runs interpolate; each sits below its own $2/\eta$ (Lemma 1), and run B's weighted
# curvature is smaller, as Theorem 1 demands: $\int|f''|g \le 1/\eta - 1/2$ shrinks when
# $\eta$ triples.
#
# ## Figure 3: GD from one initialization with many step sizes, over many seeds
#
# Seed 004 §5: "We train a single-hidden-layer ReLU network using GD with varying step sizes,
# all initialized at the same point." This is the main job, `minstab sweep`: per seed one toy
# data set and one random network, and 40 step sizes $\eta$ with $\eta\lambda_0/2$ geometric in
# $[0.35, 2.8]$ ($\lambda_0$ the sharpness at that seed's initialization); 8 seeds x 40 step sizes
# in one compiled `jit(vmap(scan))` program. For every converged run we compute the sharpness at
# GD's final parameters and, where knots sit on data points, the mode interval
# $[\lambda_{lower}, \lambda_{upper}]$ of Lemma 2/3 beside it; the sharpness of the flattest
# implementation of the same function (a convex problem over per-neuron rescalings); the
# Lemma 4 bound $1 + 2\int|f''|g$.
#
# The job reports two kinds of outcome. **Checks** must hold on every eligible run if the code
# and the theorems are right (Lemma 1, Lemma 2, Lemma 4's order, Theorems 1 and 2); a false one
# exits 1. **Verdicts** are the paper's empirical claims, judged per seed with criteria fixed in
# issue 29 before looking: *edge* shows on a seed when at least 5 converged runs have $2/\eta$
# below the sharpness reached at the smallest $\eta$ and their median plain distance
# $|\eta\lambda/2 - 1|$ is at most 0.05; *smoother* shows when Spearman$(\eta, \int|f''|g)$ over
# the converged runs is at most $-0.5$. Reproduced: in at least 75 % of the judged seeds; partly:
# 25-75 %; not reproduced: below 25 %. The default cell was chosen from the phase diagram below
# on seeds 0-7 and is judged here on seeds 8-15.

# %%
from IPython.display import Markdown  # noqa: E402

from minstab.experiments.outcomes import format_outcomes  # noqa: E402

cfg3 = sweep_1d.Config.quick() if QUICK else sweep_1d.Config()
r3 = sweep_1d.run(cfg3, out_dir=f"{OUT}/fig3")  # what `minstab sweep --out OUT/fig3` runs
checks3, verdicts3 = sweep_1d.outcomes(r3)
summary3 = sweep_1d.summary(r3)  # what it writes to summary.json
sweep_1d.plot(r3, f"{OUT}/fig3")
print(sweep_1d.seed_table(summary3["per_seed"]))

# %%
for name in ("fig3a_interpolants", "fig3b_curvature", "fig3c_sharpness", "fig3d_seeds"):
    display(Image(f"{OUT}/fig3/{name}.png"))

# %% [markdown]
# What the run shows (generated from the run's `summary.json`; with `MINSTAB_QUICK=1` it is the
# quick slice, 4 seeds x 12 step sizes, not the full job):

# %%
display(Markdown(sweep_1d.describe(summary3)))
print(format_outcomes(checks3, verdicts3))
assert all(c.holds is not False for c in checks3.values()), "a theorem check failed"

# %% [markdown]
# The full job's committed output (`notebooks/data/main_job_summary.json`, written by
# `minstab sweep` at its defaults):

# %%
import json  # noqa: E402
from pathlib import Path  # noqa: E402

DATA = Path(ms.__file__).resolve().parents[1] / "notebooks" / "data"  # this repository's
main = json.loads((DATA / "main_job_summary.json").read_text())
display(Markdown(sweep_1d.describe(main)))
print(sweep_1d.seed_table(main["per_seed"]))

# %% [markdown]
# ## The phase diagram: where does minima stability visibly bias GD toward smoother functions?
#
# `minstab reproduce fig3` runs the main job's protocol in every cell of width $\in \{16, 64,
# 256\}$ x output-layer init scale $\in \{0.25, 1, 4\}$ x $n \in \{8, 16\}$ (first-layer init
# scale 1), seeds 0-7 each, 40 step sizes, and counts per cell the seeds on which each
# phenomenon shows (a seed with fewer than 5 converged runs is not judged and counts as not
# showing). Read from `notebooks/data/fig3_phase_diagram.json` (the full run's
# `phase_diagram.json` without the per-run rows):

# %%
from minstab import plotting  # noqa: E402
from minstab.experiments import fig3  # noqa: E402

pd = json.loads((DATA / "fig3_phase_diagram.json").read_text())
print(fig3.cell_table(pd["cells"]))
plotting.phase_diagram(pd["cells"], OUT)
display(Image(f"{OUT}/fig3_phase_diagram.png"))
display(Markdown(pd["sentence"]))
for k, c in pd["checks"].items():
    tag = "NONE" if c["holds"] is None else "PASS" if c["holds"] else "FAIL"
    print(f"{tag}  {k} ({c['covered']} of {c['eligible']} eligible)", c["why_none"] or "")

# %% [markdown]
# ## Protocol history
#
# Every change of the protocol, why, and the verdicts before and after (numbers read from the
# committed files). Until commit e74711e the main job's defaults (width 16, output scale 4,
# $n = 8$, seed 0, $\eta \in [0.05, 0.4]$) had been found by a search,
# `scripts/fig3_regime_search.py`, that ran candidate settings through the main job and kept
# one whose pass criterion was "every claim holds"; its log is
# `notebooks/data/fig3_search_e74711e.jsonl`. That search is withdrawn: a setting found that way
# passes on the seed it was searched on and tells a researcher nothing. The edge measure of that
# time clipped $2/\eta$ into the mode interval before measuring; it is replaced by the plain
# distance.

# %%
import numpy as np  # noqa: E402

search = [json.loads(ln) for ln in (DATA / "fig3_search_e74711e.jsonl").read_text().splitlines()]


def _full(r):  # a row's setting with the search's defaults filled in (repeated settings merge)
    return json.dumps({"seed": 0, **r.get("defaults", {}), **r["setting"]}, sort_keys=True)


distinct = {_full(r) for r in search}
passing = {_full(r) for r in search if r["all_targets_met"]}
print(f"search log: {len(search)} rows, {len(distinct)} distinct settings, {len(passing)} of "
      f"them passing, at seeds {sorted({json.loads(p)['seed'] for p in passing})}")  # fmt: skip
old = json.loads((DATA / "main_job_summary_e74711e.json").read_text())
band = [r for r in old["runs"] if r["in_edge_band"]]
clipped = np.array([r["edge_dev"] for r in band])
plain = np.array([abs(r["eta"] * r["sharpness"] / 2 - 1) for r in band])
below = int(np.sum(np.array([r["eta"] * r["sharpness"] / 2 for r in band]) < 0.95))
print(f"old default (seed 0), {len(band)} edge-band runs: median clipped distance "
      f"{np.median(clipped):.2g} ({int(np.sum(clipped == 0))} runs exactly 0); median plain "
      f"distance {np.median(plain):.2g}; {below} runs end more than 5 % below 2/eta")  # fmt: skip
hist = json.loads((DATA / "protocol_history.json").read_text())
lines = ["| change | reason | verdicts before | verdicts after |", "|---|---|---|---|"]
for h in hist["changes"]:
    cells = [h[k].replace("|", "\\|") for k in ("setting", "reason", "before", "after")]
    lines.append("| " + " | ".join(cells) + " |")
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## Predicting the largest stable step size before training
#
# Theorem 1 holds for *every* stable twice-differentiable interpolant, so the smallest weighted
# curvature over all interpolants of the data, $W^* = \min_f \int |f''| g$, gives a step size
# $\eta_{\max} = 1/(W^* + 1/2)$ above which no such minimum can be stable. In 1-D, $W^*$ is a
# linear program over knot positions (`ms.smoothest_interpolant`). The sweep above can be checked
# against it (here the seed with the most converged runs): no converged, twice-differentiable
# run may sit above $\eta_{\max}$ (the check `theorem1_eta_max` does the same for every seed).

# %%
best = max(r3.seeds, key=lambda sr: int(sr.sweep.converged.sum()))  # most converged runs
s = best.sweep
pred = ms.smoothest_interpolant(s.x, s.y)
check = ms.check_against_sweep(pred, s)
big = check["largest_converged_eta"]
print(f"seed {best.seed}: W* = {pred.w_star:.4f}, eta_max = {pred.eta_max:.4f}, largest "
      f"converged eta in the sweep = {'-' if big is None else format(big, '.4f')}")  # fmt: skip
assert check["all_agree"], check
