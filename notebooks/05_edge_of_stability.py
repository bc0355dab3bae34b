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
# # Edge of stability on Fashion-MNIST: the sharpness rises to $2/\eta$ and stays there
#
# Lemma 1 of seed 004 says that GD with step size $\eta$ can only converge to a minimum with
# $\lambda_{\max}(\nabla^2 L) \le 2/\eta$. Cohen et al. (2021, the paper seed 004 cites as [8])
# observed what GD does on the way: from a standard initialization the sharpness rises
# (*progressive sharpening*) until it reaches $2/\eta$, then hovers there while the loss keeps
# falling, non-monotonically. This is why the main job's runs end at sharpness $\approx 2/\eta$.
#
# `minstab reproduce eos` runs their protocol with minstab's generic engine: a user model
# (`model=mlp`, a plain list of `(w, b)`), `minstab.train(..., log_sharpness="lanczos")`, which
# logs $\lambda_{\max}$ of the exact Hessian every `log_every` steps by Lanczos warm-started at
# the previous eigenvector, inside the compiled training loop.
#
# The full run (5 000 images, width 200, 3 000 steps per step size) takes minutes per step size
# on a CPU (each stored run's wall time is printed below); this notebook resumes it from
# `data/eos/runs/` (written by `minstab reproduce eos --out notebooks/data/eos`).
# `MINSTAB_QUICK=1` runs the quick variant.

# %%
import os

import numpy as np
from IPython.display import Image, Markdown, display

from minstab.experiments import eos
from minstab.experiments.claims import format_claims

QUICK = os.environ.get("MINSTAB_QUICK") == "1"
cfg = eos.Config.quick() if QUICK else eos.Config()
out_dir = "eos-out" if QUICK else "data/eos"
print("quick:", QUICK, "|", cfg)

# %% [markdown]
# ## Run (or resume) one training run per step size, from one shared initialization

# %%
res = eos.run(cfg, out_dir=out_dir)
print(res.data_info)
print(eos.table(res))
print("wall time per step size (s, as stored):", [round(r.wall_s) for r in res.runs])

# %% [markdown]
# ## Figure: loss and sharpness against the GD step
#
# Left: the training loss (log scale). Right: the logged sharpness, with $2/\eta$ dashed in the
# same colour. Cohen et al.'s Fig. 1 has this layout.

# %%
paths = eos.plot(res, "eos-out")
display(Image(filename=str(paths[0])))

# %% [markdown]
# ## Claims, checked on the run above
#
# In units of $2/\eta$: a run is *eligible* when it starts below $2/\eta$ by a margin (here every
# run does); it must reach $0.9$; from then on at least 70 % of the logged values must lie in
# $[0.8, 1.2]$; its loss must end below the loss at the first reach and rise between log points
# at least once; and the final sharpness must fall as $\eta$ grows.

# %%
claims = eos.check(res)
print(format_claims(claims))

# %% [markdown]
# ## What the outputs show
#
# Generated from the run above, numbers included:

# %%
display(Markdown(eos.describe(res, claims)))
s = eos.summary(res)
ratio = [r.final_sharpness * r.eta / 2 for r in s if r.reached_step >= 0]
print("final sharpness / (2/eta):", np.round(ratio, 3))
