# ruff: noqa: B023 - the lambdas are called at once, inside the loop that binds them
"""Cost of tracking the sharpness during training (issue 17): tracked vs untracked ``minstab.train``.

The model of ``minstab reproduce eos``: a tanh MLP 784-h-h-10 on n Fashion-MNIST images, the
quadratic loss, full-batch GD, float32. Rows (each one compiled program, timed after an untimed
warm-up call, median of ``repeats`` calls, the methods interleaved round by round):

* ``untracked``: ``train(..., log_every=0)``, GD only;
* ``loss every 10``: ``log_every=10, log_sharpness="none"`` (what logging alone costs);
* ``sharpness every 10``: ``log_every=10, log_sharpness="lanczos"``, Lanczos on the exact
  Hessian warm-started at the previous log point's eigenvector (what ``reproduce eos`` runs);
* ``sharpness every 10 (power)``: ``log_sharpness="power"``, one Hessian-vector product per log
  point (power iteration continued across log points; the Rayleigh quotient, a lower bound);
* ``Cohen et al. style``: a Python loop of jitted GD steps with ``scipy.sparse.linalg.eigsh`` on
  a jitted Hessian-vector product every 10 steps (the edge-of-stability papers' code, in JAX).

Before timing, the Lanczos-tracked run's last logged sharpness is checked against a float64
``eigsh`` reference at the same parameters (to 1e-3; float32 arithmetic); the relative error of
every tracker's last value is reported.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import minstab
from minstab.experiments import eos

QUICK_CASES = [("mlp-h64-n256", 256, 64, 300)]  # (name, n, hidden, steps)
FULL_CASES = [("mlp-h200-n1000", 1000, 200, 500)]
ETA = 0.2
EVERY = 10


def problem(n, hidden, dtype=jnp.float32):
    x, y = eos.load_data(eos.Config(n=n, hidden=hidden, dtype=np.dtype(dtype).name))
    x, y = jnp.asarray(x), jnp.asarray(y)
    params = eos.init_mlp(jax.random.key(0), [x.shape[1], hidden, hidden, 10], x.dtype)
    return params, x, y


def _hvp_operator(params, x, y):
    """A scipy LinearOperator for the loss Hessian at ``params`` (jitted HVP, its own dtype)."""
    from scipy.sparse.linalg import LinearOperator

    theta, unravel = ravel_pytree(params)
    loss = minstab.model_loss(eos.mlp)

    @jax.jit
    def hvp(t, v):
        g = jax.grad(lambda s: loss(unravel(s), x, y))
        return jax.jvp(g, (t,), (v,))[1]

    dtype = theta.dtype
    return LinearOperator(
        (theta.size, theta.size), dtype=dtype,
        matvec=lambda v: np.asarray(hvp(theta, jnp.asarray(v.ravel(), dtype)), float),
    )  # fmt: skip


def reference_sharpness(params, x, y) -> float:
    """float64 eigsh of the Hessian at ``params`` (cast up), tol 1e-10."""
    from scipy.sparse.linalg import eigsh

    up = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
    op = _hvp_operator(up, jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.float64))
    return float(eigsh(op, k=1, which="LA", tol=1e-10, return_eigenvectors=False)[0])


def cohen_loop(params, x, y, steps):
    """GD by a jitted step in Python, eigsh (tol 1e-6, warm start) every EVERY steps."""
    from scipy.sparse.linalg import eigsh

    loss = minstab.model_loss(eos.mlp)
    step = jax.jit(lambda p: jax.tree_util.tree_map(
        lambda a, g: a - ETA * g, p, jax.grad(loss)(p, x, y)))  # fmt: skip
    out, v0 = [], None
    for i in range(1, steps + 1):
        params = step(params)
        if i % EVERY == 0:
            vals, vecs = eigsh(_hvp_operator(params, x, y), k=1, which="LA", tol=1e-6, v0=v0)
            out.append(float(vals[0]))
            v0 = vecs[:, 0]
    return params, out


def _interleaved(calls: dict, repeats: int) -> dict:
    """``{method: [seconds, ...]}``: each call compiled first (an untimed call), then the
    methods timed in turn, ``repeats`` rounds, so that a slow spell of the machine falls on
    every method alike (timed one method after another, the untracked baseline's own spread
    was 10-20 %, as large as the overheads measured)."""
    for fn in calls.values():
        jax.block_until_ready(fn())  # compilation (or, for the Python loop, its jitted pieces)
    times = {method: [] for method in calls}
    for _ in range(repeats):
        for method, fn in calls.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            times[method].append(time.perf_counter() - t0)
    return times


def run(*, quick: bool, progress=print, repeats=5):
    rows = []
    for name, n, hidden, steps in QUICK_CASES if quick else FULL_CASES:
        params, x, y = problem(n, hidden)
        common = dict(model=eos.mlp, steps=steps, tol=1e-30)
        calls = {
            "untracked": lambda: minstab.train(params, x, y, ETA, log_every=0, **common).loss,
            "loss every 10": lambda: minstab.train(
                params, x, y, ETA, log_every=EVERY, log_sharpness="none", **common).loss,
            "sharpness every 10": lambda: minstab.train(
                params, x, y, ETA, log_every=EVERY, log_sharpness="lanczos", **common).log,
            "sharpness every 10 (power)": lambda: minstab.train(
                params, x, y, ETA, log_every=EVERY, log_sharpness="power", **common).log,
            "Cohen et al. style": lambda: cohen_loop(params, x, y, steps)[1],
        }  # fmt: skip
        tracked = minstab.train(params, x, y, ETA, log_every=EVERY, log_sharpness="lanczos",
                                **common)  # fmt: skip
        ref = reference_sharpness(tracked.params, x, y)
        got = float(tracked.log.sharpness[-1])
        err = abs(got - ref) / ref
        if err > 1e-3:
            raise AssertionError(f"{name}: tracked sharpness {got} vs float64 eigsh {ref}")
        _, cohen = cohen_loop(params, x, y, steps)
        power = minstab.train(params, x, y, ETA, log_every=EVERY, log_sharpness="power", **common)
        errors = {"sharpness every 10": err, "Cohen et al. style": abs(cohen[-1] - ref) / ref,
                  "sharpness every 10 (power)":
                  abs(float(power.log.sharpness[-1]) - ref) / ref}  # fmt: skip
        cohen_call = calls.pop("Cohen et al. style")  # ~40 s a call: timed once, after
        times = _interleaved(calls, repeats)
        t0 = time.perf_counter()  # its jitted pieces were compiled by the reference run above
        jax.block_until_ready(cohen_call())
        times["Cohen et al. style"] = [time.perf_counter() - t0]
        base = statistics.median(times["untracked"])
        for method, ts in times.items():
            med = statistics.median(ts)
            rows.append(dict(case=name, n=n, hidden=hidden, steps=steps, method=method,
                             median_s=med, times_s=ts, overhead=med / base - 1,
                             rel_error=errors.get(method)))  # fmt: skip
            progress(f"{name:>16} {method:>20} {med:8.3f} s  overhead {med / base - 1:+.0%}")
    return rows


def markdown(rows) -> str:
    lines = ["| case | steps | method | median s | overhead vs untracked | rel. error of last λ |",
             "|---|---:|---|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        e = "" if r["rel_error"] is None else f"{r['rel_error']:.1e}"
        lines.append(f"| {r['case']} | {r['steps']} | {r['method']} | {r['median_s']:.3f} | "
                     f"{r['overhead']:+.0%} | {e} |")  # fmt: skip
    return "\n".join(lines) + "\n"
