"""Seed 000 depth separation: a bump that deep nets implement stably and shallow nets cannot.

Target: the compactly supported piecewise-linear bump sigma(1 - ||x||_1) in d >= 2, realized
exactly by a two-hidden-layer ReLU net (:func:`minstab.deep.bump_network`). Shallow ReLU nets of
growing width are fit to it (Adam, many steps) and for each fit we compute the error and the
weighted Laplacian norm ||Delta f||_{L1(g)} (``minstab.bounds.weighted_curvature``), which a
stable minimum for step size eta must keep below the budget 1/eta - 1/2 (seed 000, the
multivariate Theorem 1). As the fit improves the required budget grows: at a fixed eta shallow
nets cannot be both stable and accurate. The deep net interpolates the same data with a finite
sharpness lambda_deep (dense Hessian), so it is a stable minimum for every eta < 2/lambda_deep;
we report it at eta_deep = 1/lambda_deep (sharpness = 1/eta_deep < 2/eta_deep). For contrast, a
Sobolev-smooth Gaussian bump: stable shallow approximations improve with a bounded budget.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

TARGETS = ("l1-bump", "gaussian")


@dataclasses.dataclass(frozen=True)
class Config:
    dim: int = 2
    n: int = 400  # training points, uniform on [-1.5, 1.5]^d
    widths: tuple[int, ...] = (4, 8, 16, 32, 64, 128)
    steps: int = 6000
    lr: float = 0.01  # Adam learning rate for the shallow fits
    gaussian_scale: float = 0.5
    n_test: int = 4000
    seed: int = 0
    dtype: str = "float64"

    @classmethod
    def quick(cls, **kw) -> Config:
        base = dict(n=60, widths=(4, 32), steps=800, n_test=500)
        base.update(kw)
        return cls(**base)


class Result(NamedTuple):
    widths: np.ndarray
    error: dict  # target -> (W,) RMS test error of the shallow fits
    train_error: dict  # target -> (W,)
    budget: dict  # target -> (W,) required budget ||Delta f||_{L1(g)} = 1/eta - 1/2
    deep_sharpness: float  # lambda_max of the deep net at its exact fit (dense Hessian)
    deep_sharpness_lanczos: float
    deep_error: float  # max |deep(x) - bump(x)| on train and test points
    deep_eta: float  # step size at which we report the deep net (1 / deep_sharpness)
    wall_s: float
    config: Config

    @property
    def deep_budget(self) -> float:
        """1/eta_deep - 1/2: the budget a shallow net would have at the deep net's step size."""
        return 1.0 / self.deep_eta - 0.5


def target(name: str, x, *, scale: float = 0.5):
    """The two targets on inputs (n, d): ``"l1-bump"`` sigma(1 - ||x||_1), ``"gaussian"``."""
    import jax.numpy as jnp

    from ..deep import bump

    if name == "l1-bump":
        return bump(x)
    if name == "gaussian":
        return jnp.exp(-jnp.sum(x * x, axis=-1) / (2 * scale**2))
    raise ValueError(f"target must be one of {TARGETS}, got {name!r}")


def _adam_fit(params, x, y, lr, *, steps: int):
    """Full-batch Adam on the quadratic loss (a plain jit(scan) loop: these fits are about
    accuracy, not stability, so the optimizer does not matter for the claim)."""
    return _adam_compiled()(params, x, y, lr, steps=int(steps))


@functools.cache
def _adam_compiled():
    import jax
    import jax.numpy as jnp

    from ..losses import quadratic_loss

    b1, b2, eps = 0.9, 0.999, 1e-8
    tmap = jax.tree_util.tree_map

    def impl(params, x, y, lr, *, steps):
        zeros = tmap(jnp.zeros_like, params)

        def step(state, _):
            p, m, v, t = state
            g = jax.grad(quadratic_loss)(p, x, y)
            t = t + 1.0
            m = tmap(lambda m, g: b1 * m + (1 - b1) * g, m, g)
            v = tmap(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
            c1, c2 = 1 - b1**t, 1 - b2**t
            p = tmap(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), p, m, v)
            return (p, m, v, t), None

        t0 = jnp.zeros((), x.dtype)
        return jax.lax.scan(step, (params, zeros, zeros, t0), None, length=steps)[0][0]

    return jax.jit(impl, static_argnames=("steps",))


def run(config: Config, *, progress=None) -> Result:
    import jax
    import jax.numpy as jnp

    from ..bounds import weighted_curvature
    from ..deep import bump_network, deep_forward, deep_sharpness
    from ..nets import forward, init_shallow

    if config.dim < 2:
        raise ValueError(f"dim must be at least 2 for the depth separation, got {config.dim}")
    t0 = time.perf_counter()
    if config.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    dt = jnp.dtype(config.dtype)
    kx, kt, kp = jax.random.split(jax.random.key(config.seed), 3)
    x = jax.random.uniform(kx, (config.n, config.dim), dt, -1.5, 1.5)
    xt = jax.random.uniform(kt, (config.n_test, config.dim), dt, -1.5, 1.5)

    err, terr, bud = {}, {}, {}
    for name in TARGETS:
        y = target(name, x, scale=config.gaussian_scale)
        yt = target(name, xt, scale=config.gaussian_scale)
        err[name], terr[name], bud[name] = [], [], []
        for i, k in enumerate(config.widths):
            p0 = init_shallow(jax.random.fold_in(kp, i), config.dim, int(k), dtype=dt)
            p = _adam_fit(p0, x, y, jnp.asarray(config.lr, dt), steps=config.steps)
            err[name].append(float(jnp.sqrt(jnp.mean((forward(p, xt) - yt) ** 2))))
            terr[name].append(float(jnp.sqrt(jnp.mean((forward(p, x) - y) ** 2))))
            bud[name].append(float(weighted_curvature(p, x)))
            if progress is not None:
                progress.update(note=f"{name} k={k}")

    deep = bump_network(config.dim, dtype=dt)
    y = target("l1-bump", x)
    lam = float(deep_sharpness(deep, x, y, method="dense"))
    lam_l = float(deep_sharpness(deep, x, y).value)
    derr = float(max(jnp.max(jnp.abs(deep_forward(deep, x) - y)),
                     jnp.max(jnp.abs(deep_forward(deep, xt) - target("l1-bump", xt)))))  # fmt: skip
    if progress is not None:
        progress.update(note="deep net")
    return Result(
        widths=np.asarray(config.widths),
        error={k: np.asarray(v) for k, v in err.items()},
        train_error={k: np.asarray(v) for k, v in terr.items()},
        budget={k: np.asarray(v) for k, v in bud.items()},
        deep_sharpness=lam,
        deep_sharpness_lanczos=lam_l,
        deep_error=derr,
        deep_eta=1.0 / lam,
        wall_s=time.perf_counter() - t0,
        config=config,
    )


def table(result: Result) -> str:
    lines = [f"{'target':>8} {'width':>6} {'test RMS':>10} {'train RMS':>10} {'budget':>9} "
             f"{'max stable eta':>15}"]  # fmt: skip
    lines.append("-" * len(lines[0]))
    for name in TARGETS:
        for i, k in enumerate(result.widths):
            b = result.budget[name][i]
            lines.append(
                f"{name:>8} {int(k):6d} {result.error[name][i]:10.3e} "
                f"{result.train_error[name][i]:10.3e} {b:9.4g} {1 / (b + 0.5):15.4g}"
            )
    lines.append(
        f"deep net sigma(1-||x||_1): exact (max error {result.deep_error:.1e}), sharpness "
        f"{result.deep_sharpness:.4g} (Lanczos {result.deep_sharpness_lanczos:.4g}); at "
        f"eta = {result.deep_eta:.4g}: sharpness = 1/eta < 2/eta = {2 / result.deep_eta:.4g}"
    )
    return "\n".join(lines)


def plot(result: Result, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.6, 3.9))
    labels = {"l1-bump": r"shallow fits of $\sigma(1-\|x\|_1)$",
              "gaussian": "shallow fits of a Gaussian bump"}  # fmt: skip
    for c, name in zip(("C3", "C0"), TARGETS, strict=True):
        ax.plot(result.budget[name], result.error[name], "o-", color=c, label=labels[name])
        for k, b, e in zip(result.widths, result.budget[name], result.error[name], strict=True):
            ax.annotate(f"k={int(k)}", (b, e), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
    ax.axvline(result.deep_budget, color="k", ls="--", lw=1,
               label=rf"budget at $\eta$ where the deep net is stable ($\eta$={result.deep_eta:.3g})")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"required budget $1/\eta - 1/2 = \|\Delta f\|_{L^1(g)}$")
    ax.set_ylabel("test RMS error")
    ax.set_title(f"depth separation, d = {result.config.dim}, n = {result.config.n}", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    from minstab import plotting

    return plotting.save(fig, out, "depth_separation")


def to_json(result: Result) -> dict:
    return {
        "config": dataclasses.asdict(result.config),
        "widths": [int(k) for k in result.widths],
        "test_rms_error": {k: v.tolist() for k, v in result.error.items()},
        "train_rms_error": {k: v.tolist() for k, v in result.train_error.items()},
        "required_budget": {k: v.tolist() for k, v in result.budget.items()},
        "deep_sharpness": result.deep_sharpness,
        "deep_sharpness_lanczos": result.deep_sharpness_lanczos,
        "deep_max_error": result.deep_error,
        "deep_eta": result.deep_eta,
        "wall_s": result.wall_s,
    }


def add_arguments(parser) -> None:
    a = parser.add_argument
    a("--out", default="minstab-out/depth-separation", help="output directory")
    a("--dim", type=int, default=None, help="input dimension d >= 2")
    a("--n", type=int, default=None, help="training points")
    a("--widths", type=int, nargs="+", default=None, help="shallow widths")
    a("--steps", type=int, default=None, help="Adam steps per shallow fit")
    a("--seed", type=int, default=None)
    a("--quick", action="store_true", help="tiny sizes (seconds); also MINSTAB_QUICK=1")
    a("--dtype", default="float64", choices=("float64", "float32"))


def main(args) -> int:
    from ..progress import ProgressBar

    kw = {"dtype": args.dtype}
    for name in ("dim", "n", "steps", "seed"):
        if getattr(args, name, None) is not None:
            kw[name] = getattr(args, name)
    if args.widths is not None:
        kw["widths"] = tuple(args.widths)
    quick = args.quick or os.environ.get("MINSTAB_QUICK") == "1"
    config = Config.quick(**kw) if quick else Config(**kw)
    with ProgressBar(2 * len(config.widths) + 1, "depth-separation") as bar:
        result = run(config, progress=bar)
    out = Path(args.out)
    paths = plot(result, out)
    (out / "depth_separation.json").write_text(json.dumps(to_json(result), indent=1))
    print(f"\nwall {result.wall_s:.1f} s")
    print(table(result))
    print("\nwrote " + ", ".join(str(p) for p in paths + [out / "depth_separation.json"]))
    return 0
