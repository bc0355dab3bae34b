"""Edge of stability on real data: full-batch GD on a tanh MLP, sharpness tracked during training.

The phenomenon seed 004 cites as [8] (Cohen, Kaur, Li, Kolter, Talwalkar 2021): trained by
full-batch GD with step size eta from a standard initialization, a network's sharpness
lambda_max(H) first rises (progressive sharpening) until it reaches the stability limit 2/eta
of Lemma 1, then hovers there while the loss keeps falling, non-monotonically. This is the
mechanism that makes the main job's runs end at sharpness ~ 2/eta.

Protocol (Cohen et al.'s, on a Fashion-MNIST subset): an MLP 784-h-h-10 with tanh hidden layers
(weights N(0, 1/fan_in), zero biases, one shared initialization for every eta), the quadratic
loss (1/2n) sum_j ||f(x_j) - y_j||^2 on one-hot targets, the first ``n`` training images,
centered and scaled per pixel to unit variance, rows divided by sqrt(784). Each eta is one
:func:`minstab.train` run with ``model=`` (the generic engine) and ``log_sharpness="lanczos"``:
lambda_max of the exact Hessian every ``log_every`` steps by Lanczos warm-started at the
previous log point's eigenvector.

Claims (``reach`` = 0.9, ``band`` = [0.8, 1.2], ``min_in_band`` = 0.7, all in units of 2/eta):

* ``progressive_sharpening``: every eligible run (2/eta >= ``eligible_factor`` x the initial
  sharpness, i.e. it does not start at the edge) reaches ``reach`` x 2/eta within the budget;
* ``hovers_at_edge``: in every run that reached it, at least ``min_in_band`` of the logged
  sharpness values from the first reach on lie in ``band`` x 2/eta;
* ``loss_keeps_falling``: in every such run the median loss of the last tenth of the log is
  below the loss at the first reach;
* ``loss_non_monotone``: in every such run the logged loss rises between two log points at least
  once after the first reach (GD is no longer a descent method at the edge);
* ``sharpness_follows_eta``: the final sharpness (median of the last tenth) falls as eta grows
  (strictly, over the runs that reached the edge; needs two).

Outputs: ``eos.json`` (config, data, per-run traces, summary, claims), ``eos.png``/``.pdf``
(loss and sharpness vs step, 2/eta dashed, Cohen et al.'s Fig. 1 layout), one
``runs/eta_*.json`` per finished step size (a rerun with the same configuration resumes).
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

__all__ = ["Config", "Run", "Result", "run", "check", "summary", "plot", "to_json", "main"]


@dataclasses.dataclass(frozen=True)
class Config:
    n: int = 5000
    hidden: int = 200
    etas: tuple[float, ...] = (0.15, 0.2, 0.3)
    steps: int = 3000
    log_every: int = 20
    seed: int = 0
    dtype: str = "float32"
    lanczos_iters: int | None = None
    # claim thresholds, in units of 2/eta
    eligible_factor: float = 1.1
    reach: float = 0.9
    band: tuple[float, float] = (0.8, 1.2)
    min_in_band: float = 0.7

    @classmethod
    def quick(cls, **kw) -> Config:
        base = dict(n=500, hidden=64, etas=(0.2, 0.3), steps=800, log_every=10)
        base.update(kw)
        return cls(**base)


class Run(NamedTuple):
    eta: float
    step: np.ndarray  # (L,) steps taken at each log point (0 = the initialization)
    loss: np.ndarray  # (L,)
    sharpness: np.ndarray  # (L,) lambda_max of the loss Hessian
    diverged: bool
    wall_s: float


class Result(NamedTuple):
    config: Config
    runs: list[Run]
    data_info: dict
    wall_s: float


# --------------------------------------------------------------------------- data and model
def load_data(config: Config):
    """(x (n, 784), y (n, 10) one-hot) of the first ``n`` Fashion-MNIST training images."""
    from ..images import find_dataset, load_mnist

    images, labels = load_mnist(find_dataset("fashion-mnist"), "train")
    if config.n > images.shape[0]:
        raise ValueError(f"n must be <= {images.shape[0]}, got {config.n}")
    x = images[: config.n].reshape(config.n, -1).astype(np.float64) / 255.0
    x = (x - x.mean(0)) / (x.std(0) + 1e-3) / np.sqrt(x.shape[1])  # unit-variance pixels
    y = np.eye(10)[labels[: config.n]]
    return x.astype(config.dtype), y.astype(config.dtype)


def mlp(params, x):
    """f(x) = W3 tanh(W2 tanh(W1 x + b1) + b2) + b3 with ``params`` a list of (w, b)."""
    import jax.numpy as jnp

    for w, b in params[:-1]:
        x = jnp.tanh(x @ w + b[None, :])
    w, b = params[-1]
    return x @ w + b[None, :]


def init_mlp(key, sizes, dtype):
    """Weights N(0, 1/fan_in) (LeCun normal), zero biases."""
    import jax
    import jax.numpy as jnp

    keys = jax.random.split(key, len(sizes) - 1)
    return [
        (jax.random.normal(k, (m, n), dtype) * jnp.asarray(m**-0.5, dtype), jnp.zeros(n, dtype))
        for k, m, n in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


# --------------------------------------------------------------------------- running
def _run_path(out_dir, eta) -> Path:
    return Path(out_dir) / "runs" / f"eta_{eta:.6g}.json"


def _key(config: Config) -> dict:
    """The fields a stored run must match to be reused (everything but the claim thresholds)."""
    d = dataclasses.asdict(config)
    for k in ("etas", "eligible_factor", "reach", "band", "min_in_band"):
        d.pop(k)
    return d


def _load_run(path: Path, config: Config) -> Run | None:
    import json

    if not path.exists():
        return None
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # a torn or foreign file: run again
    if d.get("config") != _key(config):
        return None
    return Run(d["eta"], np.asarray(d["step"]), np.asarray(d["loss"], float),
               np.asarray(d["sharpness"], float), bool(d["diverged"]), float(d["wall_s"]))  # fmt: skip


def _train_one(config: Config, params, x, y, eta: float) -> Run:
    import minstab as ms

    t0 = time.perf_counter()
    r = ms.train(
        params, x, y, eta, model=mlp, steps=config.steps, log_every=config.log_every,
        log_sharpness="lanczos", lanczos_iters=config.lanczos_iters, tol=1e-30,
    )  # fmt: skip
    s0 = float(ms.sharpness(params, x, y, model=mlp, method="lanczos"))
    l0 = float(ms.model_loss(mlp)(params, x, y))
    step = np.concatenate([[0], np.asarray(r.log.step)])
    loss = np.concatenate([[l0], np.asarray(r.log.loss, float)])
    sharp = np.concatenate([[s0], np.asarray(r.log.sharpness, float)])
    return Run(float(eta), step, loss, sharp, bool(r.diverged), time.perf_counter() - t0)


def run(config: Config, *, out_dir=None, progress=None) -> Result:
    """Train one MLP per step size from one shared initialization; resume from ``out_dir``."""
    import jax

    from .._io import write_json

    t0 = time.perf_counter()
    x, y = load_data(config)
    params = init_mlp(jax.random.key(config.seed), [x.shape[1], config.hidden, config.hidden, 10],
                      x.dtype)  # fmt: skip
    runs = []
    for eta in config.etas:
        r = None if out_dir is None else _load_run(_run_path(out_dir, eta), config)
        note = f"eta {eta:g} (resumed)" if r is not None else f"eta {eta:g}"
        if r is None:
            r = _train_one(config, params, x, y, eta)
            if out_dir is not None:
                write_json(_run_path(out_dir, eta), {"config": _key(config), **r._asdict()})
        runs.append(r)
        if progress is not None:
            progress.update(1, note)
    num_params = sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(params))
    info = dict(n=int(x.shape[0]), d=int(x.shape[1]), classes=10, num_params=num_params,
                dtype=str(x.dtype), dataset="fashion-mnist")  # fmt: skip
    return Result(config, runs, info, time.perf_counter() - t0)


# --------------------------------------------------------------------------- claims
class RunSummary(NamedTuple):
    eta: float
    edge: float  # 2 / eta
    initial_sharpness: float
    eligible: bool
    reached_step: int  # first log step with sharpness >= reach * 2/eta (-1: never)
    in_band: float  # fraction of logged sharpness in band * 2/eta from the first reach on
    loss_at_reach: float
    final_loss: float  # median of the last tenth of the log
    final_sharpness: float  # median of the last tenth of the log
    rises_after_reach: int  # log-to-log loss increases after the first reach
    diverged: bool


def summarize_run(r: Run, config: Config) -> RunSummary:
    edge = 2.0 / r.eta
    tail = slice(-max(1, len(r.step) // 10), None)
    hit = np.nonzero(r.sharpness >= config.reach * edge)[0]
    i = int(hit[0]) if len(hit) else -1
    after = r.sharpness[i:] if i >= 0 else np.empty(0)
    lo, hi = config.band
    in_band = float(np.mean((after >= lo * edge) & (after <= hi * edge))) if i >= 0 else np.nan
    rises = int(np.sum(np.diff(r.loss[i:]) > 0)) if i >= 0 else 0
    return RunSummary(
        eta=r.eta, edge=edge, initial_sharpness=float(r.sharpness[0]),
        eligible=bool(edge >= config.eligible_factor * r.sharpness[0]),
        reached_step=int(r.step[i]) if i >= 0 else -1, in_band=in_band,
        loss_at_reach=float(r.loss[i]) if i >= 0 else np.nan,
        final_loss=float(np.median(r.loss[tail])),
        final_sharpness=float(np.median(r.sharpness[tail])), rises_after_reach=rises,
        diverged=r.diverged,
    )  # fmt: skip


def summary(result: Result) -> list[RunSummary]:
    return [summarize_run(r, result.config) for r in result.runs]


def check(result: Result) -> dict:
    """The named claims of the module docstring."""
    c = result.config
    s = summary(result)
    total = len(s)
    elig = [r for r in s if r.eligible]
    reached = [r for r in s if r.reached_step >= 0 and not r.diverged]
    lo, hi = c.band

    def etas(rows):
        return ", ".join(f"{r.eta:g}" for r in rows) or "none"

    missed = [r for r in elig if r.reached_step < 0 or r.diverged]
    claims = {
        "progressive_sharpening": claim(
            not missed, covered=len(elig), total=total,
            detail=f"runs with 2/eta >= {c.eligible_factor} x initial sharpness: eta {etas(elig)};"
            f" reached {c.reach} x 2/eta: {len(elig) - len(missed)} (missed: eta {etas(missed)})",
        ),
        "hovers_at_edge": claim(
            all(r.in_band >= c.min_in_band for r in reached), covered=len(reached), total=total,
            detail=f"fraction in [{lo}, {hi}] x 2/eta after the first reach: "
            + ", ".join(f"eta {r.eta:g}: {r.in_band:.2f}" for r in reached)
            + f" (need >= {c.min_in_band})",
        ),
        "loss_keeps_falling": claim(
            all(r.final_loss < r.loss_at_reach for r in reached), covered=len(reached),
            total=total,
            detail=", ".join(f"eta {r.eta:g}: {r.loss_at_reach:.4g} -> {r.final_loss:.4g}"
                             for r in reached),
        ),
        "loss_non_monotone": claim(
            all(r.rises_after_reach > 0 for r in reached), covered=len(reached), total=total,
            detail="log-to-log loss rises after the first reach: "
            + ", ".join(f"eta {r.eta:g}: {r.rises_after_reach}" for r in reached),
        ),
    }  # fmt: skip
    order = sorted(reached, key=lambda r: r.eta)
    fs = [r.final_sharpness for r in order]
    claims["sharpness_follows_eta"] = claim(
        all(a > b for a, b in zip(fs, fs[1:], strict=False)), covered=len(order) if len(order) >= 2 else 0,
        total=total,
        detail="final sharpness x eta / 2: "
        + ", ".join(f"eta {r.eta:g}: {r.final_sharpness:.3f} ({r.final_sharpness * r.eta / 2:.3f})"
                    for r in order),
    )  # fmt: skip
    return claims


# --------------------------------------------------------------------------- reporting
def table(result: Result) -> str:
    lines = [
        "   eta   2/eta  lambda_0  reached at  in band  lambda_end  "
        "lambda_end*eta/2  loss@reach  loss_end  rises"
    ]
    for r in summary(result):
        reach = f"{r.reached_step:10d}" if r.reached_step >= 0 else "     never"
        lines.append(
            f"{r.eta:6.3g} {r.edge:7.3f} {r.initial_sharpness:9.3f}  {reach} {r.in_band:8.2f} "
            f"{r.final_sharpness:11.3f} {r.final_sharpness * r.eta / 2:17.3f} "
            f"{r.loss_at_reach:11.4g} {r.final_loss:9.4g} {r.rises_after_reach:6d}"
        )
    return "\n".join(lines)


def describe(result: Result, claims: dict | None = None) -> str:
    """One paragraph of what the run shows, every number taken from ``result`` (notebook 05)."""
    c, info = result.config, result.data_info
    s = summary(result)
    claims = check(result) if claims is None else claims
    parts = [
        f"Full-batch GD on a tanh MLP 784-{c.hidden}-{c.hidden}-10 (P = {info['num_params']}) "
        f"with the quadratic loss on {info['n']} Fashion-MNIST images ({info['dtype']}), "
        f"{c.steps} steps, the sharpness logged every {c.log_every} steps. All runs start at "
        f"sharpness {s[0].initial_sharpness:.2f}."
    ]
    for r in s:
        if r.reached_step < 0:
            parts.append(
                f"At eta = {r.eta:g} (2/eta = {r.edge:.2f}) the sharpness never reached "
                f"{c.reach} x 2/eta; it ended at {r.final_sharpness:.2f}."
            )
            continue
        parts.append(
            f"At eta = {r.eta:g} (2/eta = {r.edge:.2f}) it rose to {c.reach} x 2/eta by step "
            f"{r.reached_step}; from there {100 * r.in_band:.0f} % of the logged values lie in "
            f"[{c.band[0]}, {c.band[1]}] x 2/eta, it ends at {r.final_sharpness:.2f} "
            f"({r.final_sharpness * r.eta / 2:.3f} x 2/eta), and the loss went from "
            f"{r.loss_at_reach:.4g} to {r.final_loss:.4g} while rising between log points "
            f"{r.rises_after_reach} times."
        )
    bad = [k for k, v in claims.items() if v.holds is False]
    unchecked = [k for k, v in claims.items() if v.holds is None]
    parts.append(
        ("Every claim holds" if not bad else "Claims that fail: " + ", ".join(bad))
        + (f" (not checked: {', '.join(unchecked)})." if unchecked else ".")
    )
    return " ".join(parts)


def plot(result: Result, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    from minstab import plotting

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    for k, r in enumerate(result.runs):
        color = f"C{k}"
        ax.plot(r.step, r.loss, color=color, lw=1, label=f"$\\eta$ = {r.eta:g}")
        bx.plot(r.step, r.sharpness, color=color, lw=1)
        bx.axhline(2 / r.eta, color=color, ls="--", lw=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("training loss")
    bx.set_ylabel(r"sharpness $\lambda_{\max}$ (dashed: $2/\eta$)")
    for a in (ax, bx):
        a.set_xlabel("GD step")
        a.grid(alpha=0.3)
    ax.legend(fontsize=8)
    info = result.data_info
    fig.suptitle(
        f"full-batch GD, tanh MLP 784-{result.config.hidden}-{result.config.hidden}-10 "
        f"(P = {info['num_params']}), {info['n']} Fashion-MNIST images, {info['dtype']}",
        fontsize=10,
    )
    fig.tight_layout()
    return plotting.save(fig, out_dir, "eos")


def to_json(result: Result) -> dict:
    return {
        "config": dataclasses.asdict(result.config),
        "wall_s": result.wall_s,
        "data": result.data_info,
        "summary": [s._asdict() for s in summary(result)],
        "runs": [r._asdict() for r in result.runs],
    }


# --------------------------------------------------------------------------- command line
def add_arguments(parser) -> None:
    from .._cli_args import eta_list, positive_int

    a = parser.add_argument
    a("--out", default="minstab-out/eos", help="output directory (runs resume from it)")
    a("--n", type=positive_int, default=None, help="Fashion-MNIST training images (default 5000)")
    a("--hidden", type=positive_int, default=None, help="width of both hidden layers")
    a("--etas", type=eta_list, default=None, help="step sizes, comma-separated")
    a("--steps", type=positive_int, default=None, help="GD steps per step size")
    a("--log-every", type=positive_int, default=None, help="steps between sharpness logs")
    a("--seed", type=int, default=None, help="initialization seed")
    a("--dtype", choices=("float32", "float64"), default="float32")
    a("--quick", action="store_true", help="500 images, width 64, 800 steps (seconds)")


def config_from_args(args) -> Config:
    """The :class:`Config` of a command line; bad values raise :class:`minstab.cli.UsageError`."""
    from ..cli import UsageError

    kw = {k: getattr(args, k) for k in ("n", "hidden", "steps", "log_every", "seed")
          if getattr(args, k, None) is not None}  # fmt: skip
    if args.etas is not None:
        kw["etas"] = tuple(float(e) for e in args.etas)
    kw["dtype"] = args.dtype
    quick = args.quick or os.environ.get("MINSTAB_QUICK") == "1"
    base = Config.quick() if quick else Config()
    steps, every = kw.get("steps", base.steps), kw.get("log_every", base.log_every)
    if every > steps:
        raise UsageError(f"--log-every: expected at most --steps ({steps}), got {every}")
    if kw.get("n", 1) > 60000:
        raise UsageError(f"--n: expected at most 60000 (the training split), got {kw['n']}")
    return Config.quick(**kw) if quick else Config(**kw)


def main(args) -> int:
    from .._io import write_json
    from ..progress import ProgressBar

    config = config_from_args(args)
    out = Path(args.out)
    with ProgressBar(len(config.etas), "eos") as bar:
        result = run(config, out_dir=out, progress=bar)
    claims = check(result)
    paths = plot(result, out)
    write_json(out / "eos.json", {**to_json(result), **claims_json(claims)})
    info = result.data_info
    print(f"\nwall {result.wall_s:.1f} s; {info['n']} images, P = {info['num_params']}, "
          f"{info['dtype']}, {config.steps} steps, sharpness every {config.log_every}")  # fmt: skip
    print(table(result))
    print(format_claims(claims))
    print("\nwrote " + ", ".join(str(p) for p in paths + [out / "eos.json"]))
    return exit_status(claims)
