"""Exact SGD mean-square stability threshold eta*(B) against batch size B (THEORY §6).

Uses an exactly interpolating shallow net; 2/lambda_max is the B = n limit. Each eta*(B) is
checked by simulating linearized SGD at 0.9 eta* and 1.1 eta* over many seeds (vmapped).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np


@dataclasses.dataclass
class Config:
    """Problem size and simulation budget."""

    n: int = 8
    width: int = 12
    seeds: int = 256
    steps: int = 500
    seed: int = 3


class Result(NamedTuple):
    """eta*(B), 2/sharpness and the simulated mean-square distances below/above eta*."""

    batch_sizes: list
    eta_star: list
    eta_star_replacement: list
    ms_below: list
    ms_above: list
    gd_limit: float


def _interpolant(key, n, k):
    import jax
    import jax.numpy as jnp

    from ..nets import ShallowParams, init_shallow

    kx, ky, kp = jax.random.split(key, 3)
    x = jnp.sort(jax.random.normal(kx, (n,), jnp.float64))
    y = jax.random.normal(ky, (n,), jnp.float64)
    p = init_shallow(kp, 1, k, dtype=jnp.float64)
    extra = jax.random.uniform(jax.random.fold_in(kp, 1), (k - n + 1,), jnp.float64, x[0], x[-1])
    t = jnp.concatenate([(x[1:] + x[:-1]) / 2, extra])
    p = p._replace(b1=-p.w1[:, 0] * t)
    s = np.asarray(jax.nn.relu(x[:, None] @ p.w1.T + p.b1[None, :]))
    a = np.concatenate([s, np.ones((n, 1))], axis=1)
    sol = np.linalg.lstsq(a, np.asarray(y), rcond=None)[0]
    return ShallowParams(p.w1, p.b1, jnp.asarray(sol[:-1]), jnp.asarray(sol[-1])), x, y


def run(config: Config, *, progress: bool = True) -> Result:
    """Compute eta*(B) for every B and simulate linearized SGD at 0.9 and 1.1 eta*."""
    import jax
    import jax.numpy as jnp

    from ..curvature import hessian
    from ..progress import ProgressBar
    from ..sgd import sgd_stability_threshold, simulate_linear_sgd

    p, x, y = _interpolant(jax.random.key(config.seed), config.n, config.width)
    gd = 2 / float(jnp.linalg.eigvalsh(hessian(p, x, y))[-1])
    keys = jax.random.split(jax.random.key(config.seed + 1), config.seeds)
    bs = list(range(1, config.n + 1))
    es, er, lo, hi = [], [], [], []
    with ProgressBar(len(bs), "sgd-threshold", enabled=progress) as bar:
        for b in bs:
            e = float(sgd_stability_threshold(p, x, y, b).eta_star)
            es.append(e)
            er.append(float(sgd_stability_threshold(p, x, y, b, replacement=True).eta_star))
            lo.append(float(simulate_linear_sgd(p, x, y, 0.9 * e, b, keys, steps=config.steps)))
            hi.append(float(simulate_linear_sgd(p, x, y, 1.1 * e, b, keys, steps=config.steps)))
            bar.update()
    return Result(bs, es, er, lo, hi, gd)


def plot(result: Result, out_dir) -> list:
    """eta*(B) with stable (o) / unstable (x) simulated outcomes; PNG and PDF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    b = np.array(result.batch_sizes)
    e = np.array(result.eta_star)
    ax.plot(b, e, "k-", label="eta*(B), without replacement")
    ax.plot(b, result.eta_star_replacement, "k--", label="eta*(B), with replacement")
    ax.axhline(result.gd_limit, color="gray", ls=":", label="2 / lambda_max (B = n)")
    ok = np.array(result.ms_below) < 1
    bad = np.array(result.ms_above) > 1
    ax.plot(b, 0.9 * e, "go", mfc="none" if not ok.all() else "g", label="sim 0.9 eta*: bounded")
    ax.plot(b, 1.1 * e, "rx", label="sim 1.1 eta*: grows" if bad.all() else "sim 1.1 eta*")
    ax.set_xlabel("batch size B")
    ax.set_ylabel("step size eta")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths = [out / "sgd_threshold.png", out / "sgd_threshold.pdf"]
    for f in paths:
        fig.savefig(f)
    plt.close(fig)
    return paths


def add_arguments(parser) -> None:
    """Command-line options of ``minstab reproduce sgd-threshold``."""
    parser.add_argument("--out", default="minstab-out/sgd-threshold", help="output directory")
    parser.add_argument("--quick", action="store_true", help="small size")
    parser.add_argument("--seed", type=int, default=3)
    parser.set_defaults(dtype="float64")


def main(args) -> int:
    """Run, print the table, write JSON and figures."""
    quick = args.quick or os.environ.get("MINSTAB_QUICK") == "1"
    cfg = Config(seed=args.seed, seeds=64 if quick else 256, steps=300 if quick else 500)
    r = run(cfg)
    print(f"2/lambda_max = {r.gd_limit:.6g}")
    print(f"{'B':>3} {'eta*':>12} {'eta*(repl)':>12} {'ms@0.9':>10} {'ms@1.1':>10}")
    for row in zip(
        r.batch_sizes, r.eta_star, r.eta_star_replacement, r.ms_below, r.ms_above, strict=True
    ):
        print(f"{row[0]:3d} {row[1]:12.6g} {row[2]:12.6g} {row[3]:10.2e} {row[4]:10.2e}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sgd_threshold.json").write_text(json.dumps(r._asdict(), indent=2))
    plot(r, out)
    print(f"wrote {out}")
    return 0
