"""Seed 001: stable rank and normalized margins of a two-layer (leaky) ReLU net trained by GD.

The model of Kou, Chen and Gu (2023): W in R^{2m x d}, fixed output weights +1/m (first m rows)
and -1/m (last m rows), logistic loss, small Gaussian initialization, GD
(:func:`minstab.papers.implicit_bias.sweep_two_layer`: every seed and step size in one compiled
program, stable rank, loss and margins logged inside the scan). Two data sets: nearly-orthogonal
Gaussian data (d >> n, the constant C of the paper's condition is reported) and a two-class
image subset (Fashion-MNIST if installed, else scikit-learn's digits).

Reported: the stable rank ||W||_F^2/||W||_2^2 of the whole W and of its two sign blocks W_+ and
W_- (the paper's W_{+1}, W_{-1}), and the normalized margins y_i f(x_i)/||W||_F with their
relative spread (max - min)/mean|.| and ratio min/max.

Reading of "stable rank -> 1" (an interpretation of the abstract, not a quote). For leaky ReLU
(slope gamma) GD drives each sign block to rank one: W_+ rows align with u_+ - gamma u_- and W_-
rows with u_- - gamma u_+, where u_+ and u_- are the label-weighted sums of the positive and of the
negative points (nearly orthogonal, of equal norm on balanced nearly-orthogonal data). So each
block's stable rank tends to 1, and the whole first layer, two rank-one blocks of equal norm, has
stable rank 1 + |cos| with cos the cosine between the two directions, i.e.
2 (1 + gamma^2) / (1 + gamma)^2 (1.669 for gamma = 0.1), not 1. We take the paper's "-> 1" to be
the statement per block and check both values.

Outcomes (issue 29; :mod:`minstab.experiments.outcomes`), on the synthetic data and on the
two-class image subset alike, for leaky ReLU (the seed's statements are about leaky ReLU; ReLU
runs are reported in the table, not judged).

* Verdicts, per initialization seed (any result exits 0). A seed is judged when every one of
  its runs (one per step size) brought the loss below log(2)/10 from log 2; otherwise it is not
  judged (a run that has not fitted the data is not in the seed's regime).
  ``stable_rank_one``: every run ends with max(srank W_+, srank W_-) <= 1.01.
  ``equal_margins``: every run ends with max/min normalized margin <= 1.05 over its support
  vectors, the points whose logistic-loss weight 1/(1 + exp(y_i f(x_i))) (the dual coefficient
  of the max-margin problem in the limit) is at least 1/100 of the largest.
* Checks (must hold on every run if the code is right; a false one exits 1): the stable ranks
  and normalized margins logged inside the compiled scan agree, at the end of every run, with
  an SVD and a forward pass of the returned W in NumPy (relative error <= 1e-6).

Protocol history (issue 29). Before: claims on the synthetic runs only, seeds 4, exit 1 when
one failed: "loss -> 0", leaky block stable rank <= 1.01, whole layer within 2 % of
2 (1 + gamma^2) / (1 + gamma)^2, ReLU stable rank below half its initial value (true as soon as W
moves: the learned part has rank <= n = 20, far below the initial 87), and margins "equalize"
when their relative spread shrinks to a fifth (passed margins that differ by 2x). Now: the two
per-seed verdicts above, on both data sets, over 8 seeds (4 in ``--quick``); the whole-layer
value and the ReLU runs are reported, not judged.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import plotting
from .._cli_args import float_between
from .base import option
from .outcomes import check as make_check
from .outcomes import verdict as make_verdict

ACTIVATIONS = (("ReLU", 0.0), ("leaky ReLU", 0.1))
SRANK_ONE = 1.01  # verdict: per-block stable rank at most this (issue 29)
EQUAL_MARGINS = 1.05  # verdict: max/min normalized margin over the support vectors (issue 29)
SUPPORT_WEIGHT = 1e-2  # support vector: logistic weight >= this times the largest
TRAINED_LOSS = float(np.log(2) / 10)  # a seed is judged when every run is below this
REFERENCE_RTOL = 1e-6  # check: logged values vs NumPy on the final W


@dataclasses.dataclass(frozen=True)
class Config:
    n: int = 20
    d: int = 20000
    width: int = option(50, "m (2m rows in W)")
    eta_per_width: tuple[float, ...] = (0.5, 2.0)  # eta = c * m (f has output weights 1/m)
    steps: int = option(50000, "GD steps")
    seeds: int = option(8, "initializations")
    init_scale: float = 1e-2
    leaky_slope: float = option(0.1, "negative slope of the leaky ReLU, in (0, 1)",
                                type=float_between(0, 1))  # fmt: skip
    dataset: str = option("fashion-mnist", "fashion-mnist (digits if missing) or digits",
                          choices=("fashion-mnist", "digits"))  # fmt: skip
    classes: tuple[int, int] = (0, 1)
    n_per_class: int = 25
    num_logs: int = 40
    seed: int = option(0, "seed of the data; the initializations use seed + 1")

    @classmethod
    def quick(cls, **kw) -> Config:
        """Small sizes, 4 seeds (seconds)."""
        base = dict(n=10, d=2000, width=10, steps=3000, seeds=4, n_per_class=8, num_logs=15)
        base.update(kw)
        return cls(**base)


NAME = "stable-rank"
JSON_NAME = "stable_rank"


def progress_total(config: Config) -> int:
    """One tick per (data set, activation): four sweeps."""
    return 2 * len(ACTIVATIONS)


class Run(NamedTuple):
    data: str
    activation: str
    slope: float
    etas: np.ndarray  # (E,)
    step: np.ndarray  # (L,)
    loss: np.ndarray  # (S, E, L)
    stable_rank: np.ndarray  # (S, E, L) whole W
    stable_rank_pos: np.ndarray
    stable_rank_neg: np.ndarray
    margins: np.ndarray  # (S, E, L, n)
    spread: np.ndarray  # (S, E, L)
    ratio: np.ndarray  # (S, E, L)
    frobenius: np.ndarray  # (S, E, L) ||W||_F
    reference_error: np.ndarray  # (S, E) logged vs NumPy on the final W (relative, largest)


class Result(NamedTuple):
    runs: list
    data_info: dict  # name -> {"shape", "C"}
    wall_s: float
    config: Config


def load_images(config: Config):
    """Two-class image subset, labels +-1 (Fashion-MNIST if installed, else digits)."""
    from ..data import images as images

    kw = dict(classes=config.classes, n_per_class=config.n_per_class, reduce="none",
              scale="unit-norm", seed=config.seed)  # fmt: skip
    name = config.dataset
    if name != "digits":
        try:
            im, lab = images.load_mnist(images.find_dataset(name), split="train")
            return name, images.two_class_subset(im, lab, **kw)
        except FileNotFoundError:
            name = "digits"
    return name, images.load_digits_subset(**kw)


def run(config: Config, *, out_dir=None, progress=None) -> Result:
    """Every seed and step size on both data sets, ReLU and leaky ReLU (module docstring)."""
    import jax
    import jax.numpy as jnp

    from ..papers import implicit_bias as ib

    jax.config.update("jax_enable_x64", True)
    t0 = time.perf_counter()
    syn = ib.near_orthogonal_data(
        jax.random.key(config.seed), config.n, config.d, dtype=jnp.float64
    )
    img_name, img = load_images(config)
    xi = jnp.asarray(img.x, jnp.float64)
    datasets = [("synthetic", syn.x, syn.y), (img_name, xi, jnp.asarray(img.y, jnp.float64))]
    info = {
        "synthetic": {"shape": list(syn.x.shape), "C": float(syn.constant)},
        img_name: {"shape": list(xi.shape), "C": float(ib.near_orthogonality_constant(xi))},
    }
    keys = jax.random.split(jax.random.key(config.seed + 1), config.seeds)
    etas = np.asarray(config.eta_per_width, float) * config.width
    runs = []
    for name, x, y in datasets:
        for act, slope in (("ReLU", 0.0), ("leaky ReLU", config.leaky_slope)):
            r = ib.sweep_two_layer(keys, x, y, etas, width=config.width,
                                   init_scale=config.init_scale, steps=config.steps,
                                   negative_slope=slope, num_logs=config.num_logs)  # fmt: skip
            lg = jax.tree.map(np.asarray, r.log)
            mg = ib.margin_summary(lg.margins)
            err = reference_errors(np.asarray(r.w), np.asarray(x), np.asarray(y), slope, lg)
            del r  # the final W of every run (S x E x 2m x d) is not kept
            runs.append(Run(name, act, slope, etas, lg.step[0, 0], lg.loss, lg.stable_rank,
                            lg.stable_rank_pos, lg.stable_rank_neg, lg.margins,
                            np.asarray(mg.spread), np.asarray(mg.ratio), lg.frobenius,
                            err))  # fmt: skip
            if progress is not None:
                progress.update(note=f"{name} {act}")
    return Result(runs, info, time.perf_counter() - t0, config)


def _numpy_stable_rank(w) -> float:
    sv = np.linalg.svd(w, compute_uv=False)
    return float(np.sum(sv**2) / sv[0] ** 2)


def reference_errors(w, x, y, slope: float, log) -> np.ndarray:
    """(S, E) largest relative error of the logged final values against NumPy on the final W.

    Compared: the stable rank of W, of W_+ (first m rows) and of W_- (eq. 3, by SVD), and the
    normalized margins y_i f(x_i) / ||W||_F (eqs. 1, 4, by a forward pass).
    """
    s_, e_ = w.shape[:2]
    m = w.shape[2] // 2
    out = np.empty((s_, e_))
    for i in range(s_):
        for j in range(e_):
            wij = w[i, j]
            ref = [_numpy_stable_rank(wij), _numpy_stable_rank(wij[:m]),
                   _numpy_stable_rank(wij[m:])]  # fmt: skip
            got = [log.stable_rank[i, j, -1], log.stable_rank_pos[i, j, -1],
                   log.stable_rank_neg[i, j, -1]]  # fmt: skip
            z = x @ wij.T
            f = np.where(z > 0, z, slope * z) @ np.concatenate(
                [np.full(m, 1 / m), np.full(m, -1 / m)]
            )
            marg = y * f / np.linalg.norm(wij)
            errs = [abs(g - r) / abs(r) for g, r in zip(got, ref, strict=True)]
            errs.append(np.max(np.abs(log.margins[i, j, -1] - marg)) / np.max(np.abs(marg)))
            out[i, j] = max(errs)
    return out


class RunMeasures(NamedTuple):
    """The final measures of one run (one seed, one step size) behind the verdicts."""

    loss: float
    block_stable_rank: float  # max(srank W_+, srank W_-)
    margin_ratio: float  # max/min normalized margin over the support vectors (inf if min <= 0)
    support_vectors: int


def support_vectors(margins, frobenius: float) -> np.ndarray:
    """Mask of the support vectors: logistic weight 1/(1+exp(q_i)) >= SUPPORT_WEIGHT x largest.

    ``q_i = y_i f(x_i) = margins_i * ||W||_F``; the weights are compared in log space.
    """
    q = np.asarray(margins, float) * float(frobenius)
    logw = -np.logaddexp(0.0, q)
    return logw >= logw.max() + np.log(SUPPORT_WEIGHT)


def margin_ratio(margins, frobenius: float) -> tuple[float, int]:
    """max/min normalized margin over the support vectors (inf when the smallest is <= 0)."""
    sv = support_vectors(margins, frobenius)
    v = np.asarray(margins, float)[sv]
    return (float(v.max() / v.min()) if v.min() > 0 else float("inf")), int(sv.sum())


def measures(r: Run, s: int, j: int) -> RunMeasures:
    ratio, nsv = margin_ratio(r.margins[s, j, -1], r.frobenius[s, j, -1])
    blk = max(float(r.stable_rank_pos[s, j, -1]), float(r.stable_rank_neg[s, j, -1]))
    return RunMeasures(float(r.loss[s, j, -1]), blk, ratio, nsv)


STATEMENTS = {
    "stable_rank_one": "GD drives the stable rank of each sign block of W to 1 (seed 001, leaky ReLU)",
    "equal_margins": "GD makes the normalized margins of the support vectors equal (seed 001, leaky ReLU)",
}  # fmt: skip
THRESHOLDS = {
    "stable_rank_one": f"every step size: final max(srank W_+, srank W_-) <= {SRANK_ONE}",
    "equal_margins": f"every step size: final max/min normalized margin <= {EQUAL_MARGINS} over the "
    f"support vectors (logistic weight >= {SUPPORT_WEIGHT:g} x the largest)",
}  # fmt: skip


def per_seed(r: Run) -> dict:
    """``{"stable_rank_one": [...], "equal_margins": [...]}``: one row per seed of one Run."""
    out = {k: [] for k in STATEMENTS}
    for s in range(r.loss.shape[0]):
        ms = [measures(r, s, j) for j in range(len(r.etas))]
        judged = all(m.loss <= TRAINED_LOSS for m in ms)
        base = dict(seed=s, loss=[m.loss for m in ms])
        blk = [m.block_stable_rank for m in ms]
        rat = [m.margin_ratio for m in ms]
        out["stable_rank_one"].append(dict(
            base, block_stable_rank=blk,
            shown=all(v <= SRANK_ONE for v in blk) if judged else None))  # fmt: skip
        out["equal_margins"].append(dict(
            base, margin_ratio=rat, support_vectors=[m.support_vectors for m in ms],
            shown=all(v <= EQUAL_MARGINS for v in rat) if judged else None))  # fmt: skip
    return out


def verdicts(result: Result) -> dict:
    """``{"NAME[DATA]": Verdict}`` for the leaky-ReLU runs of each data set."""
    out = {}
    for r in result.runs:
        if r.slope == 0:
            continue
        rows = per_seed(r)
        for k in STATEMENTS:
            out[f"{k}[{r.data}]"] = make_verdict(
                rows[k], statement=STATEMENTS[k],
                threshold=THRESHOLDS[k] + "; judged when every run's loss <= log(2)/10",
            )  # fmt: skip
    return out


def outcomes(result: Result) -> tuple[dict, dict]:
    """``(checks, verdicts)`` of the :mod:`~minstab.experiments.base` protocol."""
    return checks(result), verdicts(result)


def checks(result: Result) -> dict:
    """Logged values against NumPy on the final W, every run (module docstring)."""
    errs = np.concatenate([np.ravel(r.reference_error) for r in result.runs])
    return {
        "logged_values_match_numpy": make_check(
            bool(np.all(errs <= REFERENCE_RTOL)),
            f"final stable ranks (W, W_+, W_-) by SVD and normalized margins by a forward pass: "
            f"largest relative error {errs.max():.1e} (<= {REFERENCE_RTOL:g})",
            covered=errs.size,
        ),
    }


def summary(result: Result) -> list[dict]:
    """One row per (data, activation, eta): seed means of the first and last log entries."""
    rows = []
    for r in result.runs:
        blk = np.maximum(r.stable_rank_pos, r.stable_rank_neg)
        for j, e in enumerate(r.etas):
            ms = [measures(r, s, j) for s in range(r.loss.shape[0])]
            rows.append(dict(
                data=r.data, activation=r.activation, eta=float(e),
                srank_init=float(np.mean(r.stable_rank[:, j, 0])),
                srank_final=float(np.mean(r.stable_rank[:, j, -1])),
                srank_block_final=float(np.mean(blk[:, j, -1])),
                srank_block_max=float(np.max(blk[:, j, -1])),
                margin_ratio_max=float(max(m.margin_ratio for m in ms)),
                support_vectors_min=int(min(m.support_vectors for m in ms)),
                spread_init=float(np.mean(r.spread[:, j, 0])),
                spread_final=float(np.mean(r.spread[:, j, -1])),
                loss_final=float(np.mean(r.loss[:, j, -1])),
                loss_max=float(np.max(r.loss[:, j, -1])),
            ))  # fmt: skip
    return rows


def whole_layer_limit(gamma: float) -> float:
    """Stable rank of two equal-norm rank-one blocks along u_+ - gamma u_- and u_- - gamma u_+
    (u_+ orthogonal to u_-, equal norms): 1 + |cos| = 2 (1 + gamma^2) / (1 + gamma)^2."""
    return 2 * (1 + gamma**2) / (1 + gamma) ** 2


def table(result: Result) -> str:
    """Wall time and data, then seed means (block: also the largest) and max/min margin over the
    support vectors (largest) per (data, activation, eta)."""
    head = (f"{'data':>13} {'activation':>10} {'eta':>6} {'srank0':>7} {'srank':>6} "
            f"{'block':>6} {'blk max':>7} {'SV min':>6} {'marg max/min':>12} {'loss max':>8}")  # fmt: skip
    lines = [
        f"wall {result.wall_s:.1f} s; data: " + ", ".join(
            f"{k} {v['shape']} C={v['C']:.3g}" for k, v in result.data_info.items()),
        "stable rank of the whole W and of the sign blocks (max of W_+, W_-); seed means",
        head, "-" * len(head),
    ]  # fmt: skip
    for s in summary(result):
        lines.append(
            f"{s['data']:>13} {s['activation']:>10} {s['eta']:6.3g} {s['srank_init']:7.2f} "
            f"{s['srank_final']:6.3f} {s['srank_block_final']:6.3f} {s['srank_block_max']:7.4f} "
            f"{s['support_vectors_min']:6d} {s['margin_ratio_max']:12.4g} {s['loss_max']:8.2e}"
        )
    lines.append(f"(whole W of two orthogonal rank-one blocks: 2(1+g^2)/(1+g)^2 = "
                 f"{whole_layer_limit(result.config.leaky_slope):.4f} at g = "
                 f"{result.config.leaky_slope:g}; SV: support vectors)")  # fmt: skip
    return "\n".join(lines)


def to_json(result: Result) -> dict:
    """Data, summary rows and every run's logs (the driver adds config, checks, verdicts)."""
    return {
        "wall_s": result.wall_s,
        "data": result.data_info,
        "summary": summary(result),
        "runs": [
            dict(
                data=r.data,
                activation=r.activation,
                negative_slope=r.slope,
                etas=r.etas.tolist(),
                step=r.step.tolist(),
                loss=r.loss.tolist(),
                stable_rank=r.stable_rank.tolist(),
                stable_rank_pos=r.stable_rank_pos.tolist(),
                stable_rank_neg=r.stable_rank_neg.tolist(),
                spread=r.spread.tolist(),
                ratio=r.ratio.tolist(),
                frobenius=r.frobenius.tolist(),
                margins_final=r.margins[:, :, -1].tolist(),
                reference_error=r.reference_error.tolist(),
            )
            for r in result.runs
        ],  # fmt: skip
    }


def plot(result: Result, out_dir) -> list[Path]:
    """Stable ranks and normalized margins vs step at the largest step size, per data set."""
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r.data for r in result.runs))
    fig, axes = plt.subplots(2, len(names), figsize=(5.4 * len(names), 7.0), squeeze=False)
    for col, name in enumerate(names):
        ax, bx = axes[0, col], axes[1, col]
        for r, color in zip([r for r in result.runs if r.data == name], ("C0", "C3"), strict=True):
            t = np.maximum(r.step, 1)
            j = len(r.etas) - 1  # largest step size
            for s in range(r.stable_rank.shape[0]):
                lab = s == 0
                ax.plot(t, r.stable_rank[s, j], "-", color=color, alpha=0.7,
                        label=f"{r.activation}: whole W" if lab else None)  # fmt: skip
                ax.plot(t, r.stable_rank_pos[s, j], ":", color=color, alpha=0.9,
                        label=f"{r.activation}: block $W_+$" if lab else None)  # fmt: skip
                m = r.margins[s, j]
                bx.fill_between(t, m.min(axis=-1), m.max(axis=-1), color=color, alpha=0.15)
                bx.plot(t, np.median(m, axis=-1), color=color,
                        label=f"{r.activation} (median, min-max band)" if lab else None)  # fmt: skip
        ax.axhline(1, color="k", lw=0.8, ls="--")
        for a in (ax, bx):
            a.set_xscale("log")
            a.grid(alpha=0.3, which="both")
            a.set_xlabel("GD step")
        info = result.data_info[name]
        ax.set_title(f"{name}: n={info['shape'][0]}, d={info['shape'][1]}, C={info['C']:.2g}",
                     fontsize=9)  # fmt: skip
        ax.set_ylabel(r"stable rank $\|W\|_F^2/\|W\|_2^2$")
        ax.set_ylim(0.9, 4)
        bx.set_ylabel(r"normalized margins $y_i f(x_i)/\|W\|_F$")
        bx.set_ylim(bottom=0)
        ax.legend(fontsize=7)
        bx.legend(fontsize=7)
    fig.tight_layout()
    return plotting.save(fig, out_dir, "stable_rank")
