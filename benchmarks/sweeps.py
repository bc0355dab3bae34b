# ruff: noqa: B023 - the lambdas are called at once, inside the loop that binds them
"""Step-size sweep benchmark: minstab.engine.sweep vs eager PyTorch, a JAX loop, per-eta scans, vmap(scan).

Every implementation trains the same shallow ReLU net with full-batch GD on the quadratic loss
for the same step sizes. Throughput is reported in net-steps per second (runs x GD steps / s).
Slow peers are timed on a subset of the runs/steps (the ``runs`` and ``steps`` columns say
which); their rate is what is compared. Useful FLOPs per GD step of one net are counted as
4 n k d (forward X W1^T and backward dL/dW1) + 14 n k (the elementwise and k-vectors work), and
compared with a float32 matmul's GFLOP/s measured in the same run.

``minstab.sweep`` is timed as the peers are, training only (``diagnostics=False``, its
``layout="auto"`` choice), and again with each layout forced and with its end-of-run
diagnostics (sharpness, Lemma 4 bound, curvature per run), which the peers do not compute.
Before timing, each case checks in float64 that the sweep equals a per-run ``minstab.train``
to 1e-10 (relative, final losses and parameters).
"""

from __future__ import annotations

import functools
import importlib
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import minstab

from .peers import jax_peers, torch_peers
from .sharpness import image_data, timed

# (name, n, d, k, runs, steps, peer subsets {peer: (runs, steps)})
QUICK_CASES = [
    ("uni-n20-k100", 20, 1, 100, 64, 2000,
     {"torch eager": (2, 500), "jax loop (jit step)": (2, 500), "per-eta jit scan": (8, 2000)}),
    ("img-n200-k64", 200, 784, 64, 16, 50,
     {"torch eager": (2, 20), "jax loop (jit step)": (2, 20), "per-eta jit scan": (4, 50)}),
]  # fmt: skip
FULL_CASES = [
    ("uni-n20-k100", 20, 1, 100, 64, 10_000,
     {"torch eager": (4, 2000), "jax loop (jit step)": (4, 2000), "per-eta jit scan": (64, 10_000)}),
    ("img-n1000-k256", 1000, 784, 256, 64, 20,
     {"torch eager": (8, 10), "jax loop (jit step)": (8, 10), "per-eta jit scan": (64, 20)}),
]  # fmt: skip


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n x n float32 matmul on the default device (the machine's usable peak)."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda a, b: a @ b)
    f(a, a).block_until_ready()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a, a).block_until_ready()
        ts.append(time.perf_counter() - t0)
    return 2 * n**3 / min(ts) / 1e9


def flops_per_step(n, d, k) -> float:
    """Useful FLOPs of one full-batch GD step of one shallow net (see module docstring)."""
    return 4.0 * n * k * d + 14.0 * n * k


def setup(n, d, k, runs):
    """float32 data, initial net and step sizes in (0.01, 1.9) / lambda_max(initial Hessian)."""
    if d == 1:
        x, y = minstab.data.toy.toy_1d(n=n, key=jax.random.key(0), dtype=jnp.float32)
        x = x[:, None]
    else:
        x, y, _ = image_data(n, jax.random.key(0))
        x, y = x.astype(jnp.float32), y.astype(jnp.float32)
    kr = (float(x.min()), float(x.max())) if d == 1 else None
    p = minstab.init_shallow(jax.random.key(1), in_dim=d, width=k, knot_range=kr)
    p = minstab.ShallowParams(*(a.astype(jnp.float32) for a in p))
    lam = float(minstab.sharpness(p, x, y, method="gram"))
    etas = np.geomspace(0.01, 1.9, runs).astype(np.float32) / lam
    return p, x, y, etas


def _minstab_sweep(p, x, y, etas, steps, **kw):
    sweep = importlib.import_module("minstab.engine.sweep").sweep  # the function, not the module
    kw = {"diagnostics": False, **kw}
    r = sweep(p, x, y, etas, steps=steps, tol=1e-37, flattest=False, progress=False,
              log_sharpness="none", chunk_size=len(etas), **kw)  # fmt: skip
    return np.asarray(r.loss)


def check_float64(p, x, y, etas, steps, rtol=1e-10):
    """Max relative difference between minstab.engine.sweep (auto layout) and per-run train, float64."""
    from minstab.engine.train import train

    to64 = lambda a: jnp.asarray(a, jnp.float64)  # noqa: E731
    p, x, y = minstab.ShallowParams(*map(to64, p)), to64(x), to64(y)
    e = np.asarray(etas, np.float64)
    sweep = importlib.import_module("minstab.engine.sweep").sweep
    r = sweep(p, x, y, e, steps=steps, tol=1e-300, flattest=False, progress=False,
              log_sharpness="none", chunk_size=len(e), diagnostics=False)  # fmt: skip
    worst = 0.0
    for i, eta in enumerate(e):
        t = train(p, x, y, eta, steps=steps, tol=1e-300, log_sharpness="none")
        for a, b in zip([r.loss[i], *r.params_at(i)], [t.loss, *t.params], strict=True):
            a, b = np.asarray(a), np.asarray(b)
            ok = np.isfinite(b)
            worst = max(
                worst,
                float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-300), initial=0)),
            )
    if worst > rtol:
        raise AssertionError(
            f"minstab.engine.sweep differs from per-run train by {worst:.3g} (> {rtol})"
        )
    return worst, r.config["layout"]


def run(*, quick: bool, progress=print):
    """Sweep rows, scaling rows and machine peak."""
    peak = matmul_peak(1024 if quick else 2048)
    progress(f"[sweep] float32 matmul peak {peak:.1f} GFLOP/s")
    rows = []
    for name, n, d, k, runs, steps, sub in QUICK_CASES if quick else FULL_CASES:
        p, x, y, etas = setup(n, d, k, runs)
        fl = flops_per_step(n, d, k)
        worst, layout = check_float64(p, x, y, etas[:: max(1, runs // 8)], 50)
        progress(f"  {name}: float64 sweep ({layout}) = per-run train to {worst:.2g} (<= 1e-10)")
        impls = {
            "minstab.engine.sweep": (lambda e, s: _minstab_sweep(p, x, y, e, s), (runs, steps)),
            "minstab.engine.sweep layout=batched": (
                lambda e, s: _minstab_sweep(p, x, y, e, s, layout="batched"), (runs, steps)),
            "minstab.engine.sweep layout=sequential": (
                lambda e, s: _minstab_sweep(p, x, y, e, s, layout="sequential"), (runs, steps)),
            "minstab.engine.sweep + diagnostics": (
                lambda e, s: _minstab_sweep(p, x, y, e, s, diagnostics=True), (runs, steps)),
            "jit(vmap(scan)) jax.grad": (
                lambda e, s: jax_peers.vmap_scan_sweep(p, x, y, e, steps=s), (runs, steps)),
            "per-eta jit scan": (
                lambda e, s: jax_peers.scan_sweep(p, x, y, e, steps=s), sub["per-eta jit scan"]),
            "jax loop (jit step)": (
                lambda e, s: jax_peers.jax_loop_sweep(p, x, y, e, steps=s),
                sub["jax loop (jit step)"]),
            "torch eager": (
                lambda e, s: torch_peers.torch_sweep(p, x, y, e, steps=s), sub["torch eager"]),
        }  # fmt: skip
        subsets = {m: etas[np.linspace(0, runs - 1, r_).round().astype(int)]
                   for m, (_, (r_, _)) in impls.items()}  # fmt: skip
        calls = {m: functools.partial(fn, subsets[m], s_) for m, (fn, (_, s_)) in impls.items()}
        outs, times = interleaved(calls, rounds=5 if quick else 3)
        losses = {}
        for mname, (_, (r_, s_)) in impls.items():
            med = statistics.median(times[mname])
            rate = r_ * s_ / med
            losses[mname] = (subsets[mname], s_, np.asarray(outs[mname]))
            row = dict(
                case=name,
                method=mname,
                layout=layout if mname == "minstab.engine.sweep" else None,
                float64_max_rel_diff=worst if mname == "minstab.engine.sweep" else None,
                n=n,
                d=d,
                k=k,
                runs=r_,
                steps=s_,
                median_seconds=med,
                seconds=times[mname],
                net_steps_per_second=rate,
                useful_gflops=rate * fl / 1e9,
                fraction_of_peak=rate * fl / 1e9 / peak,
            )
            rows.append(row)
            progress(
                f"  {name} {mname:32s} {rate:12.4g} net-steps/s  "
                f"{row['fraction_of_peak'] * 100:6.2f}% of peak  ({r_} x {s_} in {med:.3g}s)"
            )
        ours = next(r for r in rows if r["case"] == name and r["method"] == "minstab.engine.sweep")
        for r in rows:
            if r["case"] == name:
                r["minstab_speedup"] = ours["net_steps_per_second"] / r["net_steps_per_second"]
        check_agreement(losses)
    return rows, peak


def interleaved(calls: dict, *, rounds: int):
    """One untimed call each (compilation), then ``rounds`` rounds calling every method in turn.

    On a shared machine the load drifts within a minute; alternating the methods exposes each
    to the same drift, so the ratios of the medians are steadier than back-to-back timings.
    """
    outs = {m: f() for m, f in calls.items()}
    times = {m: [] for m in calls}
    for _ in range(rounds):
        for m, f in calls.items():
            t0 = time.perf_counter()
            outs[m] = f()
            times[m].append(time.perf_counter() - t0)
    return outs, times


def check_agreement(losses, rtol=2e-2):
    """Final losses of the peers agree with vmap(scan) on the shared step sizes (float32)."""
    ref_e, ref_s, ref = losses["jit(vmap(scan)) jax.grad"]
    for name, (e, s, out) in losses.items():
        if s != ref_s:
            continue
        idx = np.searchsorted(ref_e, e)
        want = ref[idx]
        ok = np.isfinite(want) & (want < 1e3)
        if not np.allclose(out[ok], want[ok], rtol=rtol, atol=1e-6):
            raise AssertionError(
                f"{name}: final losses {out[ok]} differ from vmap(scan) {want[ok]}"
            )


def scaling(*, quick: bool, progress=print):
    """Time of minstab.engine.sweep vs number of step sizes and vs width (univariate, n = 20)."""
    rows = []
    steps = 500 if quick else 2000
    rs = (1, 16, 64) if quick else (1, 4, 16, 64, 256, 1024)
    p, x, y, etas = setup(20, 1, 100, max(rs))
    for r_ in rs:
        e = etas[:r_]
        _, med, _ = timed(lambda: _minstab_sweep(p, x, y, e, steps), max_repeats=3, budget=4.0)
        rows.append(dict(case="scaling-runs", method="minstab.engine.sweep", runs=r_, k=100, steps=steps,
                         median_seconds=med, net_steps_per_second=r_ * steps / med))  # fmt: skip
        progress(f"  scaling runs={r_:5d}: {med:.4g}s")
    for k in (100, 1000) if quick else (100, 300, 1000, 3000, 10000):
        p, x, y, etas = setup(20, 1, k, 16)
        _, med, _ = timed(lambda: _minstab_sweep(p, x, y, etas, steps), max_repeats=3, budget=4.0)
        rows.append(dict(case="scaling-width", method="minstab.engine.sweep", runs=16, k=k, steps=steps,
                         median_seconds=med, net_steps_per_second=16 * steps / med))  # fmt: skip
        progress(f"  scaling width={k:6d}: {med:.4g}s")
    return rows


JAX_PEERS = ("jit(vmap(scan)) jax.grad", "per-eta jit scan", "jax loop (jit step)")


def summary(rows) -> list[dict]:
    """Per case: minstab.engine.sweep over the best JAX alternative and over eager torch (one run)."""
    out = []
    for case in dict.fromkeys(r["case"] for r in rows):
        rate = {r["method"]: r for r in rows if r["case"] == case}
        ours = rate["minstab.engine.sweep"]
        best = max(JAX_PEERS, key=lambda m: rate[m]["net_steps_per_second"])
        out.append(dict(
            case=case, layout=ours["layout"], rate=ours["net_steps_per_second"],
            best_jax=best, vs_best_jax=ours["net_steps_per_second"] / rate[best]["net_steps_per_second"],
            vs_torch=ours["net_steps_per_second"] / rate["torch eager"]["net_steps_per_second"],
            fraction_of_peak=ours["fraction_of_peak"],
            float64_max_rel_diff=ours["float64_max_rel_diff"],
        ))  # fmt: skip
    return out


def markdown(rows, scal, peak) -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    lines = [f"float32 matmul peak measured in this run: {peak:.1f} GFLOP/s; load average at the "
             f"end of the sweep benchmark {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 "
             f"min, on {os.cpu_count()} CPUs: above ~{os.cpu_count()} the machine was busy)", "",
             "| case | minstab.engine.sweep layout | net-steps/s | × best JAX alternative | "
             "× eager torch | % of peak | float64 = per-run train to |",
             "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for e in summary(rows):
        lines.append(f"| {e['case']} | {e['layout']} | {e['rate']:.4g} | {e['vs_best_jax']:.2f} "
                     f"({e['best_jax']}) | {e['vs_torch']:.0f} | {100 * e['fraction_of_peak']:.1f} | "
                     f"{e['float64_max_rel_diff']:.1e} |")  # fmt: skip
    lines += ["",
              "| case | method | runs × steps timed | median s | net-steps/s | minstab × | "
              "% of peak |", "|---|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['case']} | {r['method']} | {r['runs']} × {r['steps']} | "
                     f"{r['median_seconds']:.4g} | {r['net_steps_per_second']:.4g} | "
                     f"{r['minstab_speedup']:.1f} | {100 * r['fraction_of_peak']:.2f} |")  # fmt: skip
    lines += ["", "| scaling | runs | width k | steps | median s | net-steps/s |",
              "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in scal:
        lines.append(
            f"| {r['case']} | {r['runs']} | {r['k']} | {r['steps']} | "
            f"{r['median_seconds']:.4g} | {r['net_steps_per_second']:.4g} |"
        )
    return "\n".join(lines) + "\n"
