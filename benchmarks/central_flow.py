"""Cost of the central flow (issue 34) per unit time, against GD steps and the authors' count.

The authors' example (``minstab reproduce central-flow`` part (a), seed 0): MLP 8-16-16-1 with
swish, n = 128, loss mean((f - y)^2), eta = 0.1, k = 5, 4 substeps, float64. Rows, each one
compiled program timed after an untimed warm-up call (median of ``repeats``):

* ``gd``: ``steps`` plain GD steps (one ``lax.scan``; loss and gradient only);
* ``gd + top-k every 5``: :func:`minstab.engine.central_flow.gd_trajectory` (what the experiment runs);
* ``stable flow``: :func:`minstab.stable_flow` (gradient flow with the same eigen-tracking);
* ``central flow``: :func:`minstab.central_flow`.

Reported per GD step (unit time): seconds, Hessian-vector products, third-derivative products
(JVPs of HVPs) and gradients, next to the authors' method's count of third-derivative products
(k (k + 1) / 2 per substep, here the same since both contract every pair of the k tracked
eigenvectors) and their LOBPCG's k (4 i + 1) HVPs per eigensolve. The first (compiling) call is
timed too. Machine conditions (load average, CPU count) go into the JSON: the 2-core machine of
this project is shared, so absolute times vary by 2-4x with the load.

Run: ``python benchmarks/central_flow.py [--quick] [--out benchmarks/results/central_flow.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import minstab as ms  # noqa: E402
from minstab.engine.central_flow import gd_trajectory  # noqa: E402
from minstab.experiments import central_flow as exp  # noqa: E402


def _timed(fn, repeats):
    t = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, first, statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="benchmarks/results/central_flow.json")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    cfg = exp.Config(steps=200 if args.quick else 1000)
    params, x, y = exp.authors_problem(cfg, 0)
    model, loss = exp._apply("swish"), exp.mean_squared
    kw = dict(eta=cfg.eta, steps=cfg.steps, model=model, loss=loss, k=cfg.k)
    f = ms.model_loss(model, loss)

    @jax.jit
    def gd(p):
        def body(p, _):
            val, g = jax.value_and_grad(f)(p, x, y)
            return jax.tree.map(lambda a, b: a - cfg.eta * b, p, g), val

        return jax.lax.scan(body, p, None, length=cfg.steps)

    rows = []
    load = os.getloadavg()
    _, first, med = _timed(lambda: jax.block_until_ready(gd(params)), args.repeats)
    rows.append(dict(method="gd", first_s=first, median_s=med, hvp_per_step=0, third_per_step=0,
                     grad_per_step=1))  # fmt: skip
    r, first, med = _timed(lambda: gd_trajectory(params, x, y, every=5, **kw), args.repeats)
    rows.append(dict(method="gd + top-k every 5", first_s=first, median_s=med,
                     hvp_per_step=None, third_per_step=0, grad_per_step=1))  # fmt: skip
    r, first, med = _timed(lambda: ms.stable_flow(params, x, y, substeps=cfg.substeps, **kw),
                           args.repeats)  # fmt: skip
    rows.append(dict(method="stable flow", first_s=first, median_s=med,
                     hvp_per_step=float(np.mean(r.hvp_count)), third_per_step=0,
                     grad_per_step=float(np.mean(r.grad_count))))  # fmt: skip
    r, first, med = _timed(lambda: ms.central_flow(params, x, y, substeps=cfg.substeps, **kw),
                           args.repeats)  # fmt: skip
    rows.append(dict(method="central flow", first_s=first, median_s=med,
                     hvp_per_step=float(np.mean(r.hvp_count)),
                     third_per_step=float(np.mean(r.third_count)),
                     grad_per_step=float(np.mean(r.grad_count))))  # fmt: skip
    k, sub = cfg.k, cfg.substeps
    authors_third = k * (k + 1) // 2 * sub
    gd_med = rows[0]["median_s"]
    for row in rows:
        row["s_per_step"] = row["median_s"] / cfg.steps
        row["x_gd"] = row["median_s"] / gd_med
    result = dict(
        case=f"authors' example, swish MLP 8-16-16-1, n = {cfg.n}, eta = {cfg.eta}, k = {k}, "
        f"{sub} substeps, {cfg.steps} steps, float64",
        steps=cfg.steps,
        authors_third_per_step=authors_third,
        central_flow_mu1_max=float(np.max(cfg.eta * r.sharpness)),
        rows=rows,
        load_before=load,
        load_after=os.getloadavg(),
        cpus=os.cpu_count(),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        jax=jax.__version__,
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(result["case"], "| load", load, "->", result["load_after"])
    print(f"{'method':<20} {'first s':>8} {'median s':>9} {'ms/step':>8} {'x GD':>7} "
          f"{'HVP/step':>9} {'D3/step':>8} (authors: {authors_third} D3/step)")  # fmt: skip
    for row in rows:
        hv = "-" if row["hvp_per_step"] is None else f"{row['hvp_per_step']:.0f}"
        print(f"{row['method']:<20} {row['first_s']:>8.1f} {row['median_s']:>9.2f} "
              f"{1e3 * row['s_per_step']:>8.2f} {row['x_gd']:>7.0f} {hv:>9} "
              f"{row['third_per_step']:>8.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
