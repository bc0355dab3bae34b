"""Seed 000 on image data: how tight is the Laplacian bound of stable shallow nets?

Two classes of (Fashion-)MNIST or scikit-learn's 8x8 digits, reduced to d dimensions, targets
+-1, quadratic loss. One shared warm start (GD with a small step size until the loss is small),
then one GD run per step size eta in a single vmapped sweep (:func:`minstab.sweep.sweep`).
For every converged run we report the sharpness reached, 2/eta (Lemma 1), the sharpness of the
flattest implementation (when :mod:`minstab.flattest` is installed) and the multivariate Lemma 4
bound 1 + 2 ||Delta f||_{L1(g)} (seed 000; ``minstab.bounds.sharpness_lower_bound``), as in seed
004 Fig. 3(c). The tightness ratio is bound / sharpness (1 = tight).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class Config:
    dataset: str = "fashion-mnist"  # "fashion-mnist", "mnist", "digits" or a directory
    classes: tuple[int, int] = (0, 1)
    n_per_class: int = 50
    dim: int = 20
    reduce: str = "pca"
    width: int = 128
    etas: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    warmup_eta: float = 0.1
    warmup_steps: int = 20000
    steps: int = 20000
    tol: float = 1e-6
    patience: int = 500  # steps the loss must stay below tol: a minimum, not a pass-through
    seed: int = 0
    dtype: str = "float64"

    @classmethod
    def quick(cls, **kw) -> Config:
        base = dict(n_per_class=15, dim=8, width=32, etas=(0.2, 0.4, 0.6),
                    warmup_steps=4000, steps=4000, tol=1e-5, patience=200)  # fmt: skip
        base.update(kw)
        return cls(**base)


class Result(NamedTuple):
    etas: np.ndarray
    sharpness: np.ndarray
    flattest: np.ndarray
    bound: np.ndarray
    weighted_curvature: np.ndarray
    converged: np.ndarray
    diverged: np.ndarray
    loss: np.ndarray
    warmup_loss: float
    wall_s: float
    x_shape: tuple[int, int]
    config: Config

    @property
    def two_over_eta(self) -> np.ndarray:
        return 2.0 / self.etas

    @property
    def tightness(self) -> np.ndarray:
        """Lemma 4 bound / sharpness reached (<= 1 always; 1 = tight). NaN if not converged."""
        return np.where(self.converged, self.bound / self.sharpness, np.nan)


def load_data(config: Config):
    """The :class:`minstab.images.ImageSubset` a config describes."""
    from .. import images

    kw = dict(classes=config.classes, n_per_class=config.n_per_class, dim=config.dim,
              reduce=config.reduce, seed=config.seed)  # fmt: skip
    if config.dataset == "digits":
        return images.load_digits_subset(**kw)
    im, lab = images.load_mnist(images.find_dataset(config.dataset), split="train")
    return images.two_class_subset(im, lab, **kw)


def run(config: Config, *, progress=None) -> Result:
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
    # Warm start: GD at a small step size gets close to an interpolating minimum; each eta
    # then continues from there, so large step sizes only have to finish (and flatten) the fit.
    warm = sweep(p0, x, y, [config.warmup_eta], steps=config.warmup_steps, tol=config.tol,
                 progress=False, flattest=False)  # fmt: skip
    if progress is not None:
        progress.update(note="warm start")
    p1 = warm.params_at(0)
    res = sweep(p1, x, y, list(config.etas), steps=config.steps, tol=config.tol,
                patience=config.patience, progress=False)  # fmt: skip
    if progress is not None:
        progress.update(note="sweep")
    conv = np.asarray(res.converged) & ~np.asarray(res.diverged)
    return Result(
        etas=np.asarray(res.etas, float),
        sharpness=np.asarray(res.sharpness, float),
        flattest=np.asarray(res.flattest_sharpness, float),
        bound=np.asarray(res.lower_bound, float),
        weighted_curvature=np.asarray(res.weighted_curvature, float),
        converged=conv,
        diverged=np.asarray(res.diverged),
        loss=np.asarray(res.loss, float),
        warmup_loss=float(warm.loss[0]),
        wall_s=time.perf_counter() - t0,
        x_shape=tuple(x.shape),
        config=config,
    )


def table(result: Result) -> str:
    head = (f"{'eta':>7} {'2/eta':>8} {'sharpness':>10} {'flattest':>9} {'bound':>9} "
            f"{'ratio':>6} {'loss':>9}  status")  # fmt: skip
    lines = [head, "-" * len(head)]
    for i, e in enumerate(result.etas):
        st = ("converged" if result.converged[i]
              else "diverged" if result.diverged[i] else "not converged")  # fmt: skip
        lines.append(
            f"{e:7.3g} {2 / e:8.4g} {result.sharpness[i]:10.4g} {result.flattest[i]:9.4g} "
            f"{result.bound[i]:9.4g} {result.tightness[i]:6.3f} {result.loss[i]:9.2e}  {st}"
        )
    return "\n".join(lines)


def plot(result: Result, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    e, c = result.etas, result.converged
    fig, ax = plt.subplots(figsize=(5.4, 3.8))
    grid = np.geomspace(e.min() * 0.8, e.max() * 1.25, 100)
    ax.plot(grid, 2 / grid, "k--", lw=1.2, label=r"$2/\eta$ (Lemma 1)")
    ax.plot(e[c], result.sharpness[c], "o-", color="C0", ms=4, label="sharpness reached by GD")
    if np.any(np.isfinite(result.flattest[c])):
        ax.plot(e[c], result.flattest[c], "s-", color="C2", ms=3.5, label="flattest implementation")
    ax.plot(e[c], result.bound[c], "^-", color="C3", ms=3.5,
            label=r"$1 + 2\,\|\Delta f\|_{L^1(g)}$ (Lemma 4, $d>1$)")  # fmt: skip
    if np.any(~c):
        ax.plot(e[~c], 2 / e[~c], "x", color="crimson", label="not converged / diverged")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"step size $\eta$")
    ax.set_ylabel(r"$\lambda_{\max}$")
    cfg = result.config
    ax.set_title(f"{cfg.dataset}: classes {cfg.classes}, n={result.x_shape[0]}, "
                 f"d={result.x_shape[1]}, k={cfg.width}", fontsize=9)  # fmt: skip
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    from minstab import plotting

    return plotting.save(fig, out, "mnist_tightness")


def to_json(result: Result) -> dict:
    def clean(a):
        return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, float)]

    return {
        "config": dataclasses.asdict(result.config),
        "x_shape": list(result.x_shape),
        "warmup_loss": result.warmup_loss,
        "wall_s": result.wall_s,
        "etas": clean(result.etas),
        "two_over_eta": clean(result.two_over_eta),
        "sharpness": clean(result.sharpness),
        "flattest_sharpness": clean(result.flattest),
        "lower_bound": clean(result.bound),
        "weighted_curvature": clean(result.weighted_curvature),
        "tightness_ratio": clean(result.tightness),
        "converged": [bool(v) for v in result.converged],
        "loss": clean(result.loss),
    }


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
    a("--steps", type=int, default=None, help="GD steps per step size (and for the warm start)")
    a("--seed", type=int, default=None)
    a("--quick", action="store_true", help="tiny sizes (seconds); also MINSTAB_QUICK=1")
    a("--dtype", default="float64", choices=("float64", "float32"))


def config_from_args(args) -> Config:
    kw = {"dataset": args.dataset, "dtype": args.dtype}
    for name in ("n_per_class", "dim", "reduce", "width", "seed"):
        if getattr(args, name, None) is not None:
            kw[name] = getattr(args, name)
    if args.classes is not None:
        kw["classes"] = tuple(args.classes)
    if args.etas is not None:
        kw["etas"] = tuple(args.etas)
    if args.steps is not None:
        kw["steps"] = kw["warmup_steps"] = args.steps
    quick = args.quick or os.environ.get("MINSTAB_QUICK") == "1"
    return Config.quick(**kw) if quick else Config(**kw)


def main(args) -> int:
    from ..progress import ProgressBar

    config = config_from_args(args)
    with ProgressBar(2, "mnist") as bar:
        result = run(config, progress=bar)
    out = Path(args.out)
    paths = plot(result, out)
    (out / "mnist.json").write_text(json.dumps(to_json(result), indent=1))
    print(f"\n{config.dataset}: x {result.x_shape}, width {config.width}, "
          f"warm-start loss {result.warmup_loss:.2e}, wall {result.wall_s:.1f} s")  # fmt: skip
    print(table(result))
    c = result.converged
    if np.any(c):
        print(f"tightness ratio bound/sharpness on converged runs: "
              f"min {np.min(result.tightness[c]):.3f}, max {np.max(result.tightness[c]):.3f}")  # fmt: skip
    print("\nwrote " + ", ".join(str(p) for p in paths + [out / "mnist.json"]))
    return 0
