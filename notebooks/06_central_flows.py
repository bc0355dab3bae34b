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
# # Central flows: where gradient descent goes at the edge of stability
#
# At the edge of stability GD's sharpness rises to $2/\eta$ and hovers there while the loss
# oscillates (notebook 05). Cohen, Damian, Talwalkar, Kolter & Lee (ICLR 2025) describe GD's
# *time-averaged* path by an ODE, the **central flow** (time in GD steps):
#
# $$\frac{dw}{dt} = -\eta\Big[\nabla L(w) + \tfrac12 \nabla\langle \Sigma, \nabla^2 L(w)\rangle\Big],
# \qquad \Sigma = \eta\, U X U^\top,$$
#
# with $U$ the top-$k$ Hessian eigenvectors and the $k\times k$ matrix $X$ from a semidefinite
# complementarity problem at every substep: $X \succeq 0$, the effective projected Hessian after
# the substep $\preceq 2I$, and the two complementary. Its predicted GD loss is
# $L(w) + \tfrac12\sum_i \eta\lambda_i X_{ii}$. `ms.central_flow` integrates it for any model
# (`model=`/`loss=`), with the top-$k$ eigenvectors tracked by warm-started LOBPCG and the
# third-derivative terms as JVPs of Hessian-vector products, in one compiled `lax.scan`;
# `ms.stable_flow` is gradient flow with the same integrator.
#
# This notebook first runs a small central flow live, then shows the stored full run of
# `minstab reproduce central-flow` (`notebooks/data/central_flow/`, written by
# `minstab reproduce central-flow --out notebooks/data/central_flow`).

# %%
import json
import os
from pathlib import Path

import jax
import numpy as np
from IPython.display import Image, display

jax.config.update("jax_enable_x64", True)

import minstab as ms  # noqa: E402
from minstab.experiments import central_flow as exp  # noqa: E402
from minstab.experiments.outcomes import Check, Verdict, format_outcomes  # noqa: E402

QUICK = os.environ.get("MINSTAB_QUICK") == "1"
data_dir = Path(ms.__file__).resolve().parents[1] / "notebooks" / "data" / "central_flow"

# %% [markdown]
# ## A live run: the authors' example, shortened
#
# The MLP 8-16-16-1 with swish on Gaussian data, loss mean((f - y)²), η = 0.1 (quick: fewer
# samples and steps). The effective eigenvalues ηλᵢ of the flow, and what the SDCP solver
# reports (complementarity, convergence).

# %%
cfg = exp.Config.quick() if QUICK else exp.Config(steps=600)
params, x, y = exp.authors_problem(cfg, 0)
model = exp.mlp_apply("swish")
r = ms.central_flow(params, x, y, eta=cfg.eta, steps=cfg.steps, model=model,
                    loss=exp.mean_squared, k=3)  # fmt: skip
mu = r.effective_eigenvalues
print(
    f"{cfg.steps} steps: eta*lambda_1 from {mu[0, 0]:.3f} to {mu[-1, 0]:.3f}, max {mu[:, 0].max():.4f}"
)
print(f"first step with X != 0: {np.argmax(np.trace(r.X, axis1=1, axis2=2) > 0) or 'none'}")
print(f"every SDCP converged: {bool(r.sdcp_converged.all())}, max |<X,S>|/||A|| = "
      f"{r.sdcp_complementarity.max():.1e}; products per step: {r.hvp_count.mean():.0f} HVPs, "
      f"{r.third_count.mean():.0f} third-derivative")  # fmt: skip
print(
    f"loss {r.loss[0]:.4f} -> {r.loss[-1]:.4f}; predicted GD loss at the end {r.predicted_loss[-1]:.4f}"
)

# %% [markdown]
# ## The stored full run
#
# Part (a): the authors' example over seeds, and the same with tanh and GELU; (c) the shallow ReLU
# net of the main job at three step sizes; (b) a tanh MLP on a Fashion-MNIST subset. The
# verdicts use the criteria fixed before the run (module docstring of
# `minstab.experiments.central_flow`).

# %%
path = data_dir / "central_flow.json"
if path.exists():
    res = json.loads(path.read_text())
    rows = res["runs"]
    print(f"stored run: wall {res['wall_s']:.0f} s")
    print(exp.table(rows))
    checks = {k: Check(**v) for k, v in res["checks"].items()}
    verdicts = {
        k: Verdict(**{f: v[f] for f in Verdict._fields}) for k, v in res["verdicts"].items()
    }
    print(format_outcomes(checks, verdicts))
    for row in rows:
        if row["family"] == "toy":
            e = row["extra"]
            print(f"toy seed {row['seed']} eta {row['eta']:g}: sharpness GD "
                  f"{e['gd_sharpness_end']:.3f} CF {e['cf_sharpness_end']:.3f} GF "
                  f"{e['sf_sharpness_end']:.3f}; int|f''|g GD {e['gd_curvature_end']:.4f} CF "
                  f"{e['cf_curvature_end']:.4f} GF {e['sf_curvature_end']:.4f}")  # fmt: skip
else:
    print(f"no stored run at {path}")

# %%
png = data_dir / "central_flow.png"
if png.exists():
    display(Image(filename=str(png)))

# %% [markdown]
# ## Reading it
#
# The first table's columns: the step where GD's ηλ₁ first reached 1.9 (EoS onset), the
# central flow's median and max relative error against GD's Gaussian-smoothed loss (σ = 50
# steps) over [onset + 2σ, steps − 2σ), gradient flow's max error there, the flow's and
# gradient flow's max ηλ₁. The checks are the solver's conditions and the gradient-flow limit;
# the verdicts are per seed. What the numbers say is printed above: in the stored run GD on the
# authors' setting does not hover at 2/η but overshoots to ηλ₁ ≈ 2.4–3 and falls back (a
# sawtooth of catapults), so its smoothed loss sits above the flow's prediction after each
# catapult; the flow itself stays at ηλ₁ ≤ 2 by construction.
