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
# # Real models on a whole training set: how far off is the usual subsample?
#
# Curvature is usually measured on a subsample (a few hundred to a thousand images) because
# the Hessian-vector products of the whole training set do not fit in memory in one pass.
# With `data_batch_size=` every product is a sum over batches in one compiled loop, so the
# full-data values can be computed, and compared with the subsample's.
#
# `benchmarks/real_models.py` takes two models written in Flax NNX, an MLP 784-512-512-10 and
# a small CNN (two 3x3 stride-2 convolutions with 8 and 16 channels, a dense layer; ReLU),
# hands them to minstab with `ms.from_flax_nnx`, trains each for one epoch of Adam on all
# 60 000 Fashion-MNIST training images, and then measures at the trained weights, in float32,
# over all 60 000 images (batches of 2 000) and over the first 1 000:
#
# * the top-5 Hessian eigenvalues (`hessian_eigenvalues(k=5)`; the first is the sharpness),
# * the sharpness of each layer's diagonal Hessian block (`block_sharpness(blocks="layer")`),
# * the trace of each layer's block (`hessian_trace(per_block="layer")`, Hutch++ with 30
#   products per layer; the same probes for the full set and the subset).
#
# This notebook reads the JSON that the script wrote (`benchmarks/results/real_models.json`,
# from `python benchmarks/real_models.py --out benchmarks/results`); it recomputes nothing.

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import minstab as ms
from minstab.experiments.outcomes import Check, format_checks

path = Path(ms.__file__).resolve().parents[1] / "benchmarks" / "results" / "real_models.json"
res = json.loads(path.read_text()) if path.exists() else None
if res is None:
    print(f"no stored run at {path}")
else:
    m = res["machine"]
    print(f"{m['cpus']} CPUs ({m['processor']}), {m['device']}; python {m['python']}, "
          f"jax {m['jax']}, flax {m['flax']}, numpy {m['numpy']}")  # fmt: skip
    for change in res["protocol"]["changes"]:
        print("protocol change:", change)
    print(format_checks({k: Check(**v) for k, v in res["checks"].items()}))

# %% [markdown]
# ## The numbers
#
# For each model: its size and the time of each part (the shared 2-core machine; seconds
# include compilation), then the top-5 eigenvalues and the per-layer values on all 60 000
# images and on the 1 000-image subset, with the subset's relative difference
# (subset / full - 1) and, where the run has them, the range of that difference over random
# subsets of 1 000 images (other draws of the same subsample size). The trace is an estimate;
# its standard error is given (full / first subset).


# %%
def pct(v):
    return f"{100 * v:+.1f} %"


def spread(r, part, key):
    """min and max of the random subsets' relative difference of one quantity, or None."""
    vals = [c["vs_full"][part][key] for c in r.get("random_subsets", [])]
    return (min(vals), max(vals)) if vals else None


def table(name, r):
    f, s, d = r["full"], r["subset"], r["subset_vs_full"]
    k_random = len(r.get("random_subsets", []))
    sec = f["seconds"]
    print(f"== {name}: {r['params']} parameters; training {r['train_seconds']:.0f} s; "
          f"full data: top-5 {sec['top5']:.0f} s ({f['hvps_top5']} products), per-layer "
          f"sharpness {sec['layer_sharpness']:.0f} s, per-layer trace "
          f"{sec['layer_trace']:.0f} s")  # fmt: skip
    head = f"{k_random} random subsets" if k_random else ""
    print(f"{'':24s}{'all ' + str(f['n']):>12s}{'first ' + str(s['n']):>12s}{'subset':>10s}"
          f"   {head}")  # fmt: skip

    def line(label, a, b, e, rng, extra=""):
        r_txt = f"   {pct(rng[0])} .. {pct(rng[1])}" if rng else ""
        print(f"{label:24s}{a:12.4g}{b:12.4g}{pct(e):>10s}{r_txt}{extra}")

    for i, (a, b, e) in enumerate(zip(f["top5"], s["top5"], d["top5"], strict=True)):
        rng = None
        if k_random:
            vals = [c["vs_full"]["top5"][i] for c in r["random_subsets"]]
            rng = (min(vals), max(vals))
        line(f"lambda_{i + 1}", a, b, e, rng)
    for k, a in f["layer_sharpness"].items():
        line(f"lambda_max {k}", a, s["layer_sharpness"][k], d["layer_sharpness"][k],
             spread(r, "layer_sharpness", k))  # fmt: skip
    for k, a in f["layer_trace"].items():
        se = (f["layer_trace_stderr"][k], s["layer_trace_stderr"][k])
        line(f"trace {k}", a, s["layer_trace"][k], d["layer_trace"][k],
             spread(r, "layer_trace", k), f"   (stderr {se[0]:.2g} / {se[1]:.2g})")  # fmt: skip
    print()


if res is not None:
    for name, r in res["models"].items():
        table(name, r)

# %% [markdown]
# ## The figure
#
# Full data (filled) against the 1 000-image subset (open): the top-5 eigenvalues, each
# layer's sharpness and each layer's trace (with ±2 standard errors), log scale; and in the
# last panel the subset's relative difference, subset / full - 1, of every quantity (bars: the
# first 1 000 images; black dots: random subsets of 1 000, where the run has them).

# %%
if res is not None:
    names = list(res["models"])
    fig, axes = plt.subplots(len(names), 4, figsize=(15, 3.3 * len(names)), squeeze=False)
    for row, name in zip(axes, names, strict=True):
        r = res["models"][name]
        f, s, d = r["full"], r["subset"], r["subset_vs_full"]
        layers = list(f["layer_sharpness"])
        short = [lab.strip("[]'") for lab in layers]
        panels = [
            ("top-5 eigenvalues", [f"λ{i + 1}" for i in range(5)], f["top5"], s["top5"],
             None, None),
            ("sharpness of each layer's block", short,
             [f["layer_sharpness"][k] for k in layers], [s["layer_sharpness"][k] for k in layers],
             None, None),
            ("trace of each layer's block", short, [f["layer_trace"][k] for k in layers],
             [s["layer_trace"][k] for k in layers],
             [2 * f["layer_trace_stderr"][k] for k in layers],
             [2 * s["layer_trace_stderr"][k] for k in layers]),
        ]  # fmt: skip
        for ax, (title, labels, full, sub, ef, es) in zip(row, panels, strict=False):
            pos = np.arange(len(labels))
            ax.errorbar(pos - 0.08, full, yerr=ef, fmt="o", color="C0", label=f"all {f['n']}")
            ax.errorbar(pos + 0.08, sub, yerr=es, fmt="o", mfc="none", color="C1",
                        label=f"first {s['n']}")  # fmt: skip
            ax.set_yscale("log")
            ax.set_xticks(pos, labels)
            ax.set_xlim(-0.5, len(labels) - 0.5)
            ax.set_title(f"{name}: {title}", fontsize=9)
        row[0].legend(fontsize=8)
        rel = ([(f"λ{i + 1}", v) for i, v in enumerate(d["top5"])]
               + [(f"λmax {k}", d["layer_sharpness"][j]) for j, k in zip(layers, short, strict=True)]
               + [(f"tr {k}", d["layer_trace"][j]) for j, k in zip(layers, short, strict=True)])  # fmt: skip
        ax = row[3]
        ax.bar(range(len(rel)), [100 * v for _, v in rel],
               color=["C2"] * 5 + ["C3"] * len(layers) + ["C4"] * len(layers))  # fmt: skip
        for c in r.get("random_subsets", []):  # the other draws of the subsample, as dots
            e = c["vs_full"]
            vals = (e["top5"] + [e["layer_sharpness"][k] for k in layers]
                    + [e["layer_trace"][k] for k in layers])  # fmt: skip
            ax.plot(range(len(rel)), [100 * v for v in vals], "k.", ms=4)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xticks(range(len(rel)), [k for k, _ in rel], rotation=60, fontsize=7)
        ax.set_ylabel("subset / full - 1 (%)")
        ax.set_title(f"{name}: the subset's error", fontsize=9)
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## Reading it
#
# PROSE
