"""Seed 000 on image data: the multivariate stability bound against GD's solutions, across step sizes.

Protocol. Two classes of (Fashion-)MNIST or scikit-learn's 8x8 digits, reduced to d dimensions,
targets +-1, quadratic loss. Every run starts from one shared random initialization (the paper's
protocol: all initialized at the same point; no warm start, which would pin every small step size
to the warm-start minimum) and GD runs with each step size eta in one vmapped sweep
(:func:`minstab.sweep.sweep`). For every converged run:

* the sharpness lambda_max reached (Lemma 1: <= 2/eta);
* the flattest implementation of the same function (:func:`minstab.flattest_implementation`,
  computed for every converged run, with its dual certificate);
* the weighted Radon-domain norm of the solution, R_g(f) = sum over hyperplanes |a| g(v, b)
  (THEORY §4; the "weighted L1 norm of the Laplacian" of seed 000, which in d > 1 is a measure on
  hyperplanes, not an L1 function), its Lemma 4 bound 1 + 2 R_g(f) <= lambda_max(flattest), and
  the budget of Theorem 1, R_g(f) <= 1/eta - 1/2;
* tightness: bound / sharpness and bound / flattest.

The step-size behaviour the abstract claims ("the bound accurately captures the behaviour of the
solutions as a function of the step size") is checked where the bound can act: on the converged
runs at the edge of stability (sharpness >= (1 - 0.05) 2/eta, the band of seed 004 Fig. 3), where
Lemma 1 binds, R_g(f) must decrease with eta, Kendall's tau < 0 at one-sided exact significance
0.05 (at least four such runs; a perfect ordering when there are only four). Below the edge the
budget 1/eta - 1/2 does not constrain the solution and nothing is claimed (such runs are reported).
With one repeated step size (``--etas 0.6 0.6 0.6 0.6``) there is no trend and the claim must fail.
Lemma 1 is a statement about twice-differentiable minima GD converges to. A run counts as converged
when its loss stayed below ``tol`` for ``patience`` steps (10^4 in the full run, as in seed 004
Fig. 3), which resolves a sharpness past 2/eta by a relative ln(100) / (4 patience). A minimum is
non-differentiable when GD keeps crossing a kink: two more GD steps from the final point switch the
activation of some (point, neuron) pair. There the sharpness at the final iterate is one mode's
(seed 004 Lemmas 2-3) and may exceed 2/eta at a stable minimum; such runs are counted and reported,
and Lemma 1 is checked on the others.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .claims import claim, exit_status, format_claims
from .claims import to_json as claims_json

NORM = "R_g(f)"  # the weighted Radon-domain norm sum |a| g(v, b)
NORM_TEX = r"$R_g(f)=\sum_i |a_i|\,g(v_i,b_i)$"
EOS_BAND = 0.05  # edge of stability: sharpness >= (1 - EOS_BAND) * 2/eta (seed 004 Fig. 3)


@dataclasses.dataclass(frozen=True)
class Config:
    """Data, network, step sizes and stopping rule (module docstring)."""

    dataset: str = "fashion-mnist"  # "fashion-mnist", "mnist", "digits" or a directory
    classes: tuple[int, int] = (0, 1)
    n_per_class: int = 50
    dim: int = 20
    reduce: str = "pca"
    width: int = 128
    etas: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
    steps: int = 40000
    tol: float = 1e-6
    patience: int = 10000  # steps the loss must stay below tol: a minimum, not a pass-through
    seed: int = 0
    dtype: str = "float64"
    quick: bool = False

    @classmethod
    def quick_config(cls, **kw) -> Config:
        """The ``--quick`` size (seconds)."""
        base = dict(n_per_class=15, dim=8, width=32, etas=(0.45, 0.5, 0.6, 0.7), steps=8000,
                    tol=1e-5, patience=200, quick=True)  # fmt: skip
        base.update(kw)
        return cls(**base)


class Result(NamedTuple):
    etas: np.ndarray
    sharpness: np.ndarray
    flattest: np.ndarray  # NaN only for runs that did not converge (not computed)
    flattest_gap: np.ndarray  # dual certificate: flattest - certified lower bound
    bound: np.ndarray  # Lemma 4: 1 + 2 R_g(f)
    norm: np.ndarray  # R_g(f)
    converged: np.ndarray
    crossing: np.ndarray  # converged runs whose next GD steps switch an activation (on a kink)
    diverged: np.ndarray
    status: list
    loss: np.ndarray
    wall_s: float
    x_shape: tuple[int, int]
    config: Config

    @property
    def budget(self) -> np.ndarray:
        """Theorem 1: a stable solution has R_g(f) <= 1/eta - 1/2."""
        return 1.0 / self.etas - 0.5

    @property
    def at_edge(self) -> np.ndarray:
        """Converged runs at the edge of stability, where Lemma 1 binds."""
        return self.converged & (self.sharpness >= (1 - EOS_BAND) * 2 / self.etas)

    @property
    def tightness(self) -> np.ndarray:
        """Lemma 4 bound / sharpness reached (<= 1; 1 = tight). NaN if not converged."""
        return np.where(self.converged, self.bound / self.sharpness, np.nan)

    @property
    def tightness_flattest(self) -> np.ndarray:
        """Lemma 4 bound / flattest sharpness (<= 1). NaN if not converged."""
        return np.where(self.converged, self.bound / self.flattest, np.nan)


def load_data(config: Config):
    """The :class:`minstab.images.ImageSubset` a config describes."""
    from .. import images

    kw = dict(classes=config.classes, n_per_class=config.n_per_class, dim=config.dim,
              reduce=config.reduce, seed=config.seed)  # fmt: skip
    if config.dataset == "digits":
        return images.load_digits_subset(**kw)
    im, lab = images.load_mnist(images.find_dataset(config.dataset), split="train")
    return images.two_class_subset(im, lab, **kw)


def _flattest_all(params, x, y, converged):
    """Flattest implementation of every converged run (eager, one compiled program)."""
    import jax.numpy as jnp

    from ..flattest import flattest_implementation
    from ..nets import ShallowParams

    fl = np.full(converged.shape, np.nan)
    gap = np.full(converged.shape, np.nan)
    for i in np.flatnonzero(converged):
        p = ShallowParams(*(jnp.asarray(a[i]) for a in params))
        r = flattest_implementation(p, x, y)
        fl[i], gap[i] = float(r.sharpness), float(r.gap)
    return fl, gap


def _crosses_kink(params, x, y, etas, converged, steps: int = 2):
    """For each converged run: do the next ``steps`` GD steps switch an activation pattern?"""
    import jax
    import jax.numpy as jnp

    from ..losses import quadratic_loss
    from ..nets import ShallowParams, preactivations

    @jax.jit
    def flips(p, eta):
        def step(q, _):
            g = jax.grad(quadratic_loss)(q, x, y)
            q2 = jax.tree.map(lambda a, b: a - eta * b, q, g)
            return q2, jnp.any((preactivations(q, x) > 0) != (preactivations(q2, x) > 0))

        return jnp.any(jax.lax.scan(step, p, None, length=steps)[1])

    out = np.zeros(converged.shape, bool)
    for i in np.flatnonzero(converged):
        p = ShallowParams(*(jnp.asarray(a[i]) for a in params))
        out[i] = bool(flips(p, jnp.asarray(etas[i], x.dtype)))
    return out


def run(config: Config, *, progress=None) -> Result:
    """One shared random initialization, GD for every eta, then per-run quantities."""
    import jax
    import jax.numpy as jnp

    from ..nets import init_shallow
    from ..sweep import sweep

    t0 = time.perf_counter()
    if config.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    dt = jnp.dtype(config.dtype)
    data = load_data(config)
    x, y = jnp.asarray(data.x, dt), jnp.asarray(data.y, dt)
    p0 = init_shallow(jax.random.key(config.seed), x.shape[1], config.width, dtype=dt)
    res = sweep(p0, x, y, list(config.etas), steps=config.steps, tol=config.tol,
                patience=config.patience, progress=False, flattest=False)  # fmt: skip
    if progress is not None:
        progress.update(note="sweep")
    conv = np.asarray(res.converged) & ~np.asarray(res.diverged)
    fl, gap = _flattest_all(res.params, x, y, conv)
    crossing = _crosses_kink(res.params, x, y, np.asarray(res.etas), conv)
    if progress is not None:
        progress.update(note="flattest")
    return Result(
        etas=np.asarray(res.etas, float),
        sharpness=np.asarray(res.sharpness, float),
        flattest=fl,
        flattest_gap=gap,
        bound=np.asarray(res.lower_bound, float),
        norm=np.asarray(res.weighted_curvature, float),
        converged=conv,
        crossing=crossing,
        diverged=np.asarray(res.diverged),
        status=list(res.status()),
        loss=np.asarray(res.loss, float),
        wall_s=time.perf_counter() - t0,
        x_shape=tuple(x.shape),
        config=config,
    )


def step_size_trend(etas, norm) -> tuple[float, float]:
    """Kendall's tau of R_g(f) against eta and its one-sided exact p-value (alternative: tau < 0)."""
    from scipy.stats import kendalltau

    if len(etas) < 2:
        return float("nan"), float("nan")
    r = kendalltau(etas, norm, alternative="less", method="exact" if len(etas) <= 12 else "auto")
    return float(r.statistic), float(r.pvalue)


def check(result: Result) -> dict:
    """Lemma 1, Lemma 4, Theorem 1, the flattest certificate and the step-size trend."""
    c = result.converged
    nc, total = int(c.sum()), len(c)
    s, fl, b, w = result.sharpness[c], result.flattest[c], result.bound[c], result.norm[c]
    bud = result.budget[c]
    gap = result.flattest_gap[c]
    edge = result.at_edge
    ne = int(edge.sum())
    tau, p = step_size_trend(result.etas[edge], result.norm[edge])
    smooth = c & ~result.crossing
    ns = int(smooth.sum())
    lam_s, eta_s = result.sharpness[smooth], result.etas[smooth]
    kinked = result.sharpness[c & result.crossing] * result.etas[c & result.crossing] / 2
    # Lemma 1 holds at the minimum; a run counts as converged when its loss stayed below tol
    # for `patience` steps. Past 2/eta by a relative delta, the top mode grows like
    # (1 + 2 delta)^t, its loss like exp(4 delta t): a growth below 100x over the patience window
    # can go unseen, so the test resolves delta down to ln(100) / (4 patience).
    slack = float(np.log(100.0) / (4 * result.config.patience))
    # an exact one-sided p <= 0.05 needs at least 4 runs (1/4! = 0.042): fewer is "not checked"
    n_trend = ne if ne >= 4 else 0

    def worst(a):
        return f"{np.max(a):.4f}" if a.size else "-"

    return {
        "lemma1_sharpness_le_2_over_eta": claim(
            bool(np.all(lam_s * eta_s / 2 <= 1 + slack)),
            f"max sharpness * eta / 2 = {worst(lam_s * eta_s / 2)} over the {ns} converged runs at "
            f"differentiable minima (<= 1 + {slack:.2g}, the resolution of a "
            f"{result.config.patience}-step convergence test); {int(kinked.size)} on a kink "
            f"(one mode's sharpness * eta / 2: {worst(kinked)})", covered=ns, total=total,
        ),
        "lemma4_bound_le_flattest_le_sharpness": claim(
            bool(np.all(b <= fl * (1 + 1e-6)) and np.all(fl <= s * (1 + 1e-6))),
            f"max bound/flattest {worst(b / fl)}, max flattest/sharpness {worst(fl / s)}",
            covered=nc, total=total,
        ),
        "flattest_certified": claim(
            bool(np.all(np.isfinite(fl)) and np.all(gap <= 1e-6 * fl)),
            "flattest finite with dual gap <= 1e-6 relative on every converged run (max "
            + (f"{np.max(gap / fl):.2e})" if nc else "-)"), covered=nc, total=total,
        ),
        "theorem1_norm_within_budget": claim(
            bool(np.all(w <= bud * (1 + 1e-6))),
            f"max {NORM} / (1/eta - 1/2) = {worst(w / bud)} (<= 1)", covered=nc, total=total,
        ),
        "norm_decreases_with_step_size": claim(
            bool(tau < 0 and p <= 0.05),
            f"Kendall tau({NORM}, eta) = {tau:.3f}, one-sided exact p = {p:.3g} (<= 0.05) over "
            f"the {ne} converged runs at the edge of stability (>= 4 needed)", covered=n_trend,
            total=total,
        ),
    }  # fmt: skip


def table(result: Result) -> str:
    head = (f"{'eta':>6} {'2/eta':>7} {'sharpness':>9} {'flattest':>9} {'bound':>7} "
            f"{NORM:>8} {'1/eta-1/2':>9} {'b/sharp':>7} {'b/flat':>6} {'loss':>8}  status")  # fmt: skip
    lines = [head, "-" * len(head)]
    for i, e in enumerate(result.etas):
        lines.append(
            f"{e:6.3g} {2 / e:7.4g} {result.sharpness[i]:9.4g} {result.flattest[i]:9.4g} "
            f"{result.bound[i]:7.4g} {result.norm[i]:8.4f} {result.budget[i]:9.4g} "
            f"{result.tightness[i]:7.3f} {result.tightness_flattest[i]:6.3f} "
            f"{result.loss[i]:8.1e}  {result.status[i]}"
            + (", edge of stability" if result.at_edge[i] else "")
            + (", on a kink" if result.crossing[i] else "")
        )
    lines.append(f"({NORM} = sum over hyperplanes |a| g(v, b), the weighted Radon-domain norm; "
                 "bound = 1 + 2 R_g(f), Lemma 4; flattest: not computed for runs that did not "
                 "converge)")  # fmt: skip
    return "\n".join(lines)


def plot(result: Result, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    e, c = result.etas, result.converged
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.9))
    ax = axes[0]
    grid = np.geomspace(e.min() * 0.8, e.max() * 1.25, 100)
    ax.plot(grid, 2 / grid, "k--", lw=1.2, label=r"$2/\eta$ (Lemma 1)")
    ax.plot(e[c], result.sharpness[c], "o-", color="C0", ms=4, label="sharpness reached by GD")
    ax.plot(e[c], result.flattest[c], "s-", color="C2", ms=3.5, label="flattest implementation")
    ax.plot(e[c], result.bound[c], "^-", color="C3", ms=3.5,
            label=r"$1 + 2\,R_g(f)$ (Lemma 4)")  # fmt: skip
    if np.any(~c):
        ax.plot(e[~c], 2 / e[~c], "x", color="crimson", label="not converged / diverged")
    ax.set_ylabel(r"$\lambda_{\max}$")
    ax = axes[1]
    ax.plot(grid, np.maximum(1 / grid - 0.5, 1e-3), "k--", lw=1.2,
            label=r"budget $1/\eta - 1/2$ (Theorem 1)")  # fmt: skip
    ax.plot(e[c], result.norm[c], "o-", color="C3", ms=4, label=NORM_TEX + " of GD's solution")
    ax.set_ylabel("weighted Radon-domain norm")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"step size $\eta$")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, which="both")
    cfg = result.config
    fig.suptitle(f"{cfg.dataset}: classes {cfg.classes}, n={result.x_shape[0]}, "
                 f"d={result.x_shape[1]}, k={cfg.width}, one shared initialization", fontsize=9)  # fmt: skip
    fig.tight_layout()
    from minstab import plotting

    return plotting.save(fig, out, "mnist_tightness")


def to_json(result: Result) -> dict:
    return {
        "config": dataclasses.asdict(result.config),
        "x_shape": list(result.x_shape),
        "wall_s": result.wall_s,
        "etas": result.etas,
        "two_over_eta": 2 / result.etas,
        "sharpness": result.sharpness,
        "flattest_sharpness": result.flattest,
        "flattest_dual_gap": result.flattest_gap,
        "lower_bound": result.bound,
        "weighted_radon_norm": result.norm,
        "budget": result.budget,
        "tightness_bound_over_sharpness": result.tightness,
        "tightness_bound_over_flattest": result.tightness_flattest,
        "status": result.status,
        "converged": result.converged,
        "loss": result.loss,
        "at_edge_of_stability": result.at_edge,
        "on_a_kink": result.crossing,
        "step_size_trend_at_edge": dict(zip(("kendall_tau", "p_value"),
                                            step_size_trend(result.etas[result.at_edge],
                                                            result.norm[result.at_edge]), strict=True)),
    }  # fmt: skip


def add_arguments(parser) -> None:
    a = parser.add_argument
    a("--out", default="minstab-out/mnist", help="output directory")
    a("--dataset", default="fashion-mnist",
      help="fashion-mnist (apt-get install dataset-fashion-mnist), mnist (MINSTAB_MNIST_DIR), "
           "digits (scikit-learn) or a directory of MNIST-format IDX files")  # fmt: skip
    a("--classes", type=int, nargs=2, default=None, help="the two classes (default 0 1)")
    a("--n-per-class", type=int, default=None, help="samples per class")
    a("--dim", type=int, default=None, help="input dimension after PCA/downsampling")
    a("--reduce", choices=("pca", "downsample"), default=None)
    a("--width", type=int, default=None, help="hidden neurons")
    a("--etas", type=float, nargs="+", default=None, help="step sizes")
    a("--steps", type=int, default=None, help="GD steps per step size")
    a("--seed", type=int, default=None)
    a("--quick", action="store_true", help="tiny sizes (seconds); also MINSTAB_QUICK=1")
    a("--dtype", default="float64", choices=("float64", "float32"))


def _check_dataset(name: str) -> None:
    """Raise :class:`minstab.cli.UsageError` naming what is missing, before any computation."""
    from .. import images
    from ..cli import UsageError

    if name == "digits":
        try:
            import sklearn  # noqa: F401
        except ImportError:
            raise UsageError(
                '--dataset digits: needs scikit-learn; install the extra: pip install "minstab[data]"'
            ) from None
        return
    try:
        d = images.find_dataset(name)
        for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
            images._find(d, stem)
    except FileNotFoundError as e:
        msg = str(e).split(": ", 1)[-1]
        raise UsageError(f"--dataset {name}: {msg}") from None


def config_from_args(args) -> Config:
    """The :class:`Config` of a command line; bad values raise :class:`minstab.cli.UsageError`."""
    from ..cli import UsageError

    _check_dataset(args.dataset)
    kw = {"dataset": args.dataset, "dtype": args.dtype}
    for name in ("n_per_class", "dim", "reduce", "width", "seed"):
        if getattr(args, name, None) is not None:
            kw[name] = getattr(args, name)
    for name in ("n_per_class", "dim", "width"):
        if kw.get(name, 1) < 1:
            raise UsageError(
                f"--{name.replace('_', '-')}: expected a positive integer, got {kw[name]}"
            )
    if args.classes is not None:
        if args.classes[0] == args.classes[1]:
            raise UsageError(f"--classes: expected two different classes, got {args.classes}")
        kw["classes"] = tuple(args.classes)
    if args.etas is not None:
        if any(e <= 0 for e in args.etas):
            raise UsageError(f"--etas: expected positive step sizes, got {args.etas}")
        kw["etas"] = tuple(args.etas)
    if args.steps is not None:
        if args.steps < 1:
            raise UsageError(f"--steps: expected a positive integer, got {args.steps}")
        kw["steps"] = args.steps
    quick = args.quick or os.environ.get("MINSTAB_QUICK") == "1"
    return Config.quick_config(**kw) if quick else Config(**kw)


def main(args) -> int:
    from .._io import write_json
    from ..progress import ProgressBar

    config = config_from_args(args)
    with ProgressBar(2, "mnist") as bar:
        result = run(config, progress=bar)
    claims = check(result)
    out = Path(args.out)
    paths = plot(result, out)
    write_json(out / "mnist.json", {**to_json(result), **claims_json(claims)})
    print(f"\n{config.dataset}: x {result.x_shape}, width {config.width}, one shared random "
          f"initialization, wall {result.wall_s:.1f} s")  # fmt: skip
    print(table(result))
    c = result.converged
    if np.any(c):
        print(f"tightness on converged runs: bound/sharpness {np.min(result.tightness[c]):.3f} .. "
              f"{np.max(result.tightness[c]):.3f}, bound/flattest "
              f"{np.min(result.tightness_flattest[c]):.3f} .. {np.max(result.tightness_flattest[c]):.3f}")  # fmt: skip
    print(format_claims(claims))
    print("\nwrote " + ", ".join(str(p) for p in paths + [out / "mnist.json"]))
    return exit_status(claims)
