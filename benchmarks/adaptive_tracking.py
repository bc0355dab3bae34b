# ruff: noqa: B023 - the lambdas are called at once, inside the loop that binds them
"""Cost of tracking Adam's preconditioned sharpness against the plain one (issue 33).

    python benchmarks/adaptive_tracking.py [--quick] [--repeats N] [--out DIR]
                                           [--block-replay | --krylov-replay]

The model of ``minstab reproduce eos`` (tanh MLP 784-h-h-10, n Fashion-MNIST images, quadratic
loss, float32), trained by full-batch Adam (optax, lr 2e-3). Rows of ``minstab.train`` (each one
compiled program, an untimed warm-up call, then the methods interleaved round by round, median
of ``repeats``):

* ``adam untracked``: ``log_every=0``;
* ``adam + plain every 10``: ``log_sharpness="lanczos"`` (warm-started Lanczos on H);
* ``adam + preconditioned every 10``: ``log_sharpness="preconditioned"`` (warm-started Lanczos
  on D^{-1/2} H D^{-1/2} at Adam's current D: the same products with two elementwise scalings);
* ``gd untracked`` / ``gd + plain every 10``: plain GD at eta 0.2 (``benchmarks/tracking.py``'s
  setting), which ends below its edge (0.83-0.90 of 2/eta);
* ``gd@edge untracked`` / ``gd@edge + plain every 10``: plain GD at eta 0.5, whose sharpness is
  at or above its edge 2/eta = 4 (GD's edge-of-stability regime), as Adam's preconditioned one
  is at Adam's: the like-for-like comparison (eta 0.5 added on 2026-12-07 because eta 0.2, said to be at the edge
  before, is not; 0.5 was the first value tried).

The ``last / threshold`` column says how close each tracked run ended to its threshold (Adam's
preconditioned sharpness over 38/eta, GD's sharpness over 2/eta; Adam's plain sharpness has
no threshold).

Why the preconditioned tracker costs more (issue 33's target was "no more than the plain one"):
``tracker_products`` replays the trackers outside ``train`` along the same Adam run (the same
warm-started ``minstab.lanczos`` calls and residual tolerance 1e-2 sqrt(eps) as
``minstab.train``'s log) and reports the Lanczos products per log point, the overlap
|<u_prev, u_new>| of consecutive top eigenvectors, and the top 6 eigenvalues of H and of
D^{-1/2} H D^{-1/2} at the end (each product costs the same: one HVP and two scalings).

``--block-replay`` (issue 33's follow-up: does a block warm start close the gap?) runs only
``block_start_products``: along the same Adam run, the products per log point of the tracker
against Rayleigh-Ritz over the previous log point's top-b Ritz vectors plus the Krylov space of
the top residual (``_augmented_top``, b = 1, 2, 4, 6; b = 1 is Lanczos's Krylov space, a check
that the count matches), same warm start and tolerance; writes ``DIR/adaptive_tracking_block.*``.
Measured 2026-12-07: 16.6 -> 14.0 (b = 4) and 20.8 -> 17.7 (b = 6) products against 8.4 / 9.5 for
the plain sharpness, so ``minstab.train`` keeps its single-vector tracker. LOBPCG
(``jax.experimental.sparse.linalg.lobpcg_standard``) from the same block, tried on the quick case
(one-off script, not kept), needed 21.9 (b = 2) and 30.5 (b = 4) products per log point against
Lanczos's 14.0 (b products in one vmapped call cost 0.67-0.86 x b single ones at width 64:
not enough).

``--krylov-replay`` (why the count differs, 2026-12-07, third session) runs only
``krylov_replay``: along the same Adam run, each tracker's products per log point next to the
count the Kaniel-Paige-Saad bound gives for the spectrum at that point (gamma = (l1 - l2)/(l2 -
ln) from converged Lanczos) and the tracker's own warm start (its angle to the top eigenvector);
writes ``DIR/adaptive_tracking_krylov.*``. Measured: gamma 0.41 / 0.34 for Adam's H against
0.051 / 0.039 for D^{-1/2} H D^{-1/2}, warm-start tan theta_0 0.027 / 0.071 against 0.15 / 0.80;
predicted ratio 2.6 / 3.1 against the measured 2.0 / 2.2 (the bound is an upper bound; per log
point it correlates 0.75-0.96 with the measured count).

The rest: one-shot calls at the final point of the preconditioned run (cold start, ``tol`` 1e-5):
``minstab.sharpness(method="lanczos")`` against ``minstab.preconditioned_sharpness``, with
their product counts. Before timing, ``preconditioned_sharpness`` is checked against scipy
``eigsh`` of D^{-1/2} H D^{-1/2} in float64 at that point (to 1e-3; float32 arithmetic).
Writes ``DIR/adaptive_tracking.json`` and ``DIR/adaptive_tracking.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/adaptive_tracking.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

import minstab
from benchmarks import _machine
from minstab.experiments import eos

QUICK_CASES = [("mlp-h32-n256", 256, 32, 200)]  # (name, n, hidden, steps)
FULL_CASES = [("mlp-h64-n1000", 1000, 64, 400), ("mlp-h200-n1000", 1000, 200, 300)]
ETA = 2e-3
GD_EDGE_ETA = 0.5  # plain GD at its edge 2/eta = 4 on these problems (see the docstring)
EVERY = 10


def problem(n, hidden):
    x, y = eos.load_data(eos.Config(n=n, hidden=hidden, dtype="float32"))
    x, y = jnp.asarray(x), jnp.asarray(y)
    params = eos.init_mlp(jax.random.key(0), [x.shape[1], hidden, hidden, 10], x.dtype)
    return params, x, y


def _adam_step(opt, loss, x, y):
    """One full-batch step of ``opt`` (jitted): ``(params, state) -> (params, state)``."""

    @jax.jit
    def step(p, s):
        with jax.numpy_dtype_promotion("standard"):
            u, s = opt.update(jax.grad(loss)(p, x, y), s, p)
        return optax.apply_updates(p, u), s

    return step


def adam_point(params, x, y, steps):
    """Parameters and Adam's D after ``steps`` steps (a hand-written optax loop)."""
    opt = optax.adam(ETA)
    step = _adam_step(opt, minstab.model_loss(eos.mlp), x, y)
    s = opt.init(params)
    for _ in range(steps):
        params, s = step(params, s)
    return params, minstab.adam_preconditioner(s)


def reference(params, x, y, d) -> float:
    """float64 ``eigsh`` of D^{-1/2} H D^{-1/2} (cast up), tol 1e-10."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    with jax.enable_x64(True):
        up = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), (params, d, x, y))
        p64, d64, x64, y64 = up
        theta, unravel = ravel_pytree(p64)
        s = ravel_pytree(d64)[0] ** -0.5
        loss = minstab.model_loss(eos.mlp)

        @jax.jit
        def op(v, theta, s, x, y):  # data as arguments: no constant folding at compile time
            g = jax.grad(lambda t: loss(unravel(t), x, y))
            return s * jax.jvp(g, (theta,), (s * v,))[1]

        lin = LinearOperator(
            (theta.size, theta.size), dtype=np.float64,
            matvec=lambda v: np.asarray(op(jnp.asarray(v.ravel()), theta, s, x64, y64)),
        )  # fmt: skip
        return float(eigsh(lin, k=1, which="LA", tol=1e-10, return_eigenvectors=False)[0])


def tracker_products(params, x, y, steps, *, every=EVERY) -> dict:
    """Products per log point of the plain and preconditioned trackers along one Adam run.

    Replays ``minstab.train``'s log outside the loop: at every ``every`` steps, Lanczos from the
    previous top eigenvector plus 1e-3 of the fixed dense start (``_warm_start``), residual
    tolerance 1e-2 sqrt(eps) relative. Also plain GD at eta 0.2 and at ``GD_EDGE_ETA`` with the
    plain tracker.
    """
    from minstab.engine.eigen import lanczos
    from minstab.engine.operators import default_start
    from minstab.engine.optimizers import inverse_sqrt_scale

    loss = minstab.model_loss(eos.mlp)
    _, unravel = ravel_pytree(params)
    tol = float(np.finfo(x.dtype).eps) ** 0.5 * 1e-2  # minstab.engine.train's tracker tolerance

    def hvp(v, p, x, y):
        return ravel_pytree(minstab.hvp(loss, p, unravel(v), x, y))[0]

    def pre_hvp(v, p, x, y, s):
        return s * hvp(s * v, p, x, y)

    plain = jax.jit(lambda v, p: lanczos(hvp, v, p, x, y, tol=tol))
    pre = jax.jit(lambda v, p, s: lanczos(pre_hvp, v, p, x, y, s, tol=tol))
    opt = optax.adam(ETA)
    adam_step = _adam_step(opt, loss, x, y)

    @jax.jit
    def gd_step(p, eta):
        return jax.tree_util.tree_map(lambda a, g: a - eta * g, p, jax.grad(loss)(p, x, y))

    start = default_start(params)
    start = start / jnp.linalg.norm(start)
    counts = {"adam plain": [], "adam preconditioned": [], "gd plain": [], "gd@edge plain": []}
    overlap = {k: [] for k in counts}
    vec = dict.fromkeys(counts, start)
    p, s, q, qe = params, opt.init(params), params, params
    for t in range(1, steps + 1):
        p, s = adam_step(p, s)
        q, qe = gd_step(q, 0.2), gd_step(qe, GD_EDGE_ETA)
        if t % every:
            continue
        scale = inverse_sqrt_scale(minstab.adam_preconditioner(s))
        runs = {"adam plain": lambda v: plain(v, p), "adam preconditioned": lambda v: pre(v, p, scale),
                "gd plain": lambda v: plain(v, q), "gd@edge plain": lambda v: plain(v, qe)}  # fmt: skip
        for k, fn in runs.items():
            r = fn(vec[k] + 1e-3 * start)
            if t > every:
                overlap[k].append(abs(float(jnp.vdot(vec[k], r.vector))))
            vec[k] = r.vector
            counts[k].append(int(r.num_matvecs))
    top = {
        "adam plain": lanczos(hvp, start, p, x, y, k=6, num_iters=150, tol=1e-5),
        "adam preconditioned": lanczos(pre_hvp, start, p, x, y, scale, k=6, num_iters=150, tol=1e-5),
        "gd plain": lanczos(hvp, start, q, x, y, k=6, num_iters=150, tol=1e-5),
        "gd@edge plain": lanczos(hvp, start, qe, x, y, k=6, num_iters=150, tol=1e-5),
    }  # fmt: skip
    return {
        k: dict(mean_products=float(np.mean(counts[k])), products=counts[k],
                median_overlap=float(np.median(overlap[k])), min_overlap=float(np.min(overlap[k])),
                top6=[float(v) for v in np.asarray(top[k].value)])
        for k in counts
    }  # fmt: skip


def _augmented_top(op, block, *, tol: float, max_products: int = 80):
    """Top eigenpairs by Rayleigh-Ritz over span(block) plus the Krylov space of the top residual.

    Davidson's method with the identity as preconditioner (Saad, *Numerical Methods for Large
    Eigenvalue Problems*, 2011, sec. 11.2): each step adds the residual A u - theta u of the top
    Ritz pair, so from one vector the search space is the Krylov space and it spends what
    Lanczos does; from the previous log point's top-b Ritz block it starts with the whole
    cluster in the subspace (a thick restart carried across log points, Wu & Simon 2000).
    Float32 products, float64 Rayleigh-Ritz; stops as ``minstab.train``'s tracker does, on
    ||A u - theta u|| <= tol theta for the top pair. Returns (values descending, Ritz vectors
    (rows, descending), products).
    """
    basis = np.zeros((0, block.shape[1]))
    images = basis.copy()
    products, new = 0, np.asarray(block, np.float64)
    while True:
        for v in new:
            for _ in range(2):  # classical Gram-Schmidt twice
                v = v - basis.T @ (basis @ v)
            norm = np.linalg.norm(v)
            if norm <= 1e-8:
                continue
            basis = np.vstack([basis, v / norm])
            images = np.vstack([images, np.asarray(op(jnp.asarray(basis[-1], jnp.float32)))])
            products += 1
        g = basis @ images.T
        theta, s = np.linalg.eigh((g + g.T) / 2)
        u, au = s[:, -1] @ basis, s[:, -1] @ images
        r = au - theta[-1] * u
        if np.linalg.norm(r) <= tol * abs(theta[-1]) or products >= max_products:
            return theta[::-1], s[:, ::-1].T @ basis, products
        new = r[None]


def block_start_products(params, x, y, steps, *, blocks=(1, 2, 4, 6), every=EVERY) -> dict:
    """Products per log point of block warm starts for the preconditioned tracker (issue 33).

    Replays Adam's run as :func:`tracker_products` does: ``lanczos`` is the tracker of
    ``minstab.train`` (warm-started from the previous top eigenvector plus 1e-3 of the fixed
    start); ``block b`` is :func:`_augmented_top` from the previous top-b Ritz vectors (the
    first plus 1e-3 of the same start), with the same residual tolerance. ``max_rel_diff`` is
    the largest relative difference of its value from the Lanczos value over the log points;
    ``median_start_residual`` the median over log points (the first excepted) of
    ||A u - (u^T A u) u|| / u^T A u for the previous top eigenvector u on the new operator
    (one extra product each, not counted): how far the operator moved between log points.
    """
    from minstab.engine.eigen import lanczos
    from minstab.engine.operators import default_start
    from minstab.engine.optimizers import inverse_sqrt_scale

    loss = minstab.model_loss(eos.mlp)
    _, unravel = ravel_pytree(params)
    tol = float(np.finfo(x.dtype).eps) ** 0.5 * 1e-2  # minstab.engine.train's tracker tolerance

    def pre_hvp(v, p, s):
        return s * ravel_pytree(minstab.hvp(loss, p, unravel(s * v), x, y))[0]

    product = jax.jit(pre_hvp)
    track = jax.jit(lambda v, p, s: lanczos(pre_hvp, v, p, s, tol=tol))
    opt = optax.adam(ETA)
    adam_step = _adam_step(opt, loss, x, y)

    start = default_start(params)
    start = start / jnp.linalg.norm(start)
    vec, kept = start, dict.fromkeys(blocks, np.asarray(start, np.float64)[None])
    counts = {"lanczos": [], **{f"block {b}": [] for b in blocks}}
    diff, moved = dict.fromkeys(blocks, 0.0), []
    p, s = params, opt.init(params)
    for t in range(1, steps + 1):
        p, s = adam_step(p, s)
        if t % every:
            continue
        scale = inverse_sqrt_scale(minstab.adam_preconditioner(s))
        w = product(vec, p, scale)  # how far the operator moved: the old vector's residual
        rho = jnp.vdot(vec, w)
        moved.append(float(jnp.linalg.norm(w - rho * vec) / rho))
        r = track(vec + 1e-3 * start, p, scale)
        vec = r.vector
        counts["lanczos"].append(int(r.num_matvecs))
        for b in blocks:
            block = kept[b].copy()
            block[0] = block[0] + 1e-3 * np.asarray(start)
            theta, vectors, used = _augmented_top(lambda v: product(v, p, scale), block, tol=tol)
            kept[b] = vectors[:b]
            counts[f"block {b}"].append(used)
            diff[b] = max(diff[b], abs(theta[0] - float(r.value)) / float(r.value))
    out = {
        k: dict(mean_products=float(np.mean(c)), products=c,
                max_rel_diff=diff.get(int(k.split()[1])) if k != "lanczos" else None)
        for k, c in counts.items()
    }  # fmt: skip
    out["lanczos"]["median_start_residual"] = float(np.median(moved[1:]))
    return out


def _kps_products(tan0: float, gamma: float, spread: float, tol: float) -> float:
    """Lanczos products the Kaniel-Paige-Saad bound needs to bring the residual to ``tol``.

    Saad, *Numerical Methods for Large Eigenvalue Problems* (2011), Thm. 6.4: after k products
    from a start at angle theta_0 to the top eigenvector, tan theta_k <= tan theta_0 /
    T_{k-1}(1 + 2 gamma), gamma = (lambda_1 - lambda_2)/(lambda_2 - lambda_n), T the Chebyshev
    polynomial; the Ritz residual is <= (lambda_1 - lambda_n) sin theta_k. The stop
    ``residual <= tol lambda_1`` then holds once T_{k-1}(1 + 2 gamma) >= tan theta_0 /
    (tol lambda_1 / spread), ``spread`` = (lambda_1 - lambda_n)/lambda_1.
    """
    need = tan0 * spread / tol
    if need <= 1:
        return 1.0
    return 1.0 + float(np.arccosh(need) / np.arccosh(1 + 2 * gamma))


def krylov_replay(params, x, y, steps, *, every=EVERY) -> dict:
    """Products per log point against the spectrum that sets them (issue 33's missed target).

    Replays Adam's run as :func:`tracker_products` does, with the plain and the preconditioned
    tracker; at each log point also a cold, converged Lanczos (tol 1e-5, up to 150 products,
    not counted) for lambda_1, lambda_2 and the top eigenvector u_1, and for lambda_n (the
    smallest). Per tracker: the measured products, the gap ratio gamma, the start angle
    tan theta_0 of the warm start to u_1, and :func:`_kps_products` from those: the count the
    Kaniel-Paige-Saad bound predicts for that spectrum and start. Lanczos's Ritz value is the
    largest Rayleigh quotient over its Krylov space, so no method that only multiplies the
    same start by the operator does better with the same number of products.
    """
    from minstab.engine.eigen import lanczos
    from minstab.engine.operators import default_start
    from minstab.engine.optimizers import inverse_sqrt_scale

    loss = minstab.model_loss(eos.mlp)
    _, unravel = ravel_pytree(params)
    tol = float(np.finfo(x.dtype).eps) ** 0.5 * 1e-2  # minstab.engine.train's tracker tolerance

    def op(v, p, s):  # s = 1: H; s = D^{-1/2}: the preconditioned operator
        return s * ravel_pytree(minstab.hvp(loss, p, unravel(s * v), x, y))[0]

    track = jax.jit(lambda v, p, s: lanczos(op, v, p, s, tol=tol))
    top = jax.jit(lambda v, p, s: lanczos(op, v, p, s, k=2, num_iters=150, tol=1e-5))
    low = jax.jit(lambda v, p, s: lanczos(op, v, p, s, which="smallest", num_iters=150, tol=1e-5))
    opt = optax.adam(ETA)
    adam_step = _adam_step(opt, loss, x, y)
    start = default_start(params)
    start = start / jnp.linalg.norm(start)
    names = ("adam plain", "adam preconditioned")
    vec = dict.fromkeys(names, start)
    rows = {k: [] for k in names}
    p, st = params, opt.init(params)
    for t in range(1, steps + 1):
        p, st = adam_step(p, st)
        if t % every:
            continue
        scales = {"adam plain": jnp.ones_like(start),
                  "adam preconditioned": inverse_sqrt_scale(minstab.adam_preconditioner(st))}  # fmt: skip
        for k, s in scales.items():
            v0 = vec[k] + 1e-3 * start
            r, ref, bottom = track(v0, p, s), top(start, p, s), low(start, p, s)
            l1, l2 = (float(v) for v in np.asarray(ref.value))
            ln = float(np.asarray(bottom.value).ravel()[0])
            u1 = np.asarray(ref.vector)[0]
            c = abs(float(np.dot(np.asarray(v0) / np.linalg.norm(v0), u1)))
            tan0 = np.sqrt(max(1 - c * c, 0.0)) / max(c, 1e-12)
            gamma = (l1 - l2) / (l2 - ln)
            rows[k].append(dict(step=t, products=int(r.num_matvecs), gamma=gamma, tan0=float(tan0),
                                lambda_1=l1, lambda_2=l2, lambda_n=ln,
                                predicted=_kps_products(tan0, gamma, (l1 - ln) / l1, tol)))  # fmt: skip
            vec[k] = r.vector
    out = {}
    for k, rs in rows.items():
        col = {f: np.asarray([r[f] for r in rs]) for f in rs[0]}
        out[k] = dict(mean_products=float(col["products"].mean()),
                      mean_predicted=float(col["predicted"].mean()),
                      median_gamma=float(np.median(col["gamma"])),
                      median_tan0=float(np.median(col["tan0"])),
                      median_spread=float(np.median((col["lambda_1"] - col["lambda_n"])
                                                    / col["lambda_1"])),
                      points=rs)  # fmt: skip
    return out


def krylov_markdown(cases) -> str:
    lines = ["| case | tracker | products per log point (measured) | Kaniel-Paige-Saad prediction | "
             "median gamma = (l1-l2)/(l2-ln) | median tan theta_0 of the warm start | "
             "median (l1-ln)/l1 |", "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for c in cases:
        for k in ("adam plain", "adam preconditioned"):
            d = c[k]
            lines.append(f"| {c['case']} | {k} | {d['mean_products']:.1f} | "
                         f"{d['mean_predicted']:.1f} | {d['median_gamma']:.3f} | "
                         f"{d['median_tan0']:.2e} | {d['median_spread']:.2f} |")  # fmt: skip
        a, b = c["adam preconditioned"], c["adam plain"]
        lines.append(f"| {c['case']} | ratio preconditioned / plain | "
                     f"{a['mean_products'] / b['mean_products']:.2f} | "
                     f"{a['mean_predicted'] / b['mean_predicted']:.2f} | | | |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _interleaved(calls: dict, repeats: int) -> tuple[dict, dict]:
    """Times of ``repeats`` rounds (after an untimed warm-up call each) and the last outputs."""
    last = {m: jax.block_until_ready(fn()) for m, fn in calls.items()}
    times = {m: [] for m in calls}
    for _ in range(repeats):
        for m, fn in calls.items():
            t0 = time.perf_counter()
            last[m] = jax.block_until_ready(fn())
            times[m].append(time.perf_counter() - t0)
    return times, last


def _last_over_threshold(method: str, log) -> float | None:
    """The last logged sharpness over the run's threshold (None where there is none)."""
    if method == "adam + preconditioned every 10":
        thr = minstab.stability_threshold("adam", ETA)
    elif method == "gd + plain every 10":
        thr = minstab.stability_threshold("gd", 0.2)
    elif method == "gd@edge + plain every 10":
        thr = minstab.stability_threshold("gd", GD_EDGE_ETA)
    else:
        return None
    return float(np.asarray(log.sharpness)[-1]) / thr


def run(*, quick: bool, repeats: int = 5, progress=print):
    rows, diagnostics = [], []
    for name, n, hidden, steps in QUICK_CASES if quick else FULL_CASES:
        params, x, y = problem(n, hidden)
        common = dict(model=eos.mlp, steps=steps, tol=1e-30, optimizer=optax.adam)
        calls = {
            "adam untracked": lambda: minstab.train(params, x, y, ETA, log_every=0,
                                                    **common).loss,
            "adam + plain every 10": lambda: minstab.train(
                params, x, y, ETA, log_every=EVERY, log_sharpness="lanczos", **common).log,
            "adam + preconditioned every 10": lambda: minstab.train(
                params, x, y, ETA, log_every=EVERY, log_sharpness="preconditioned",
                **common).log,
            "gd untracked": lambda: minstab.train(params, x, y, 0.2, log_every=0, model=eos.mlp,
                                                  steps=steps, tol=1e-30).loss,
            "gd + plain every 10": lambda: minstab.train(
                params, x, y, 0.2, log_every=EVERY, log_sharpness="lanczos", model=eos.mlp,
                steps=steps, tol=1e-30).log,
            "gd@edge untracked": lambda: minstab.train(params, x, y, GD_EDGE_ETA, log_every=0,
                                                       model=eos.mlp, steps=steps, tol=1e-30).loss,
            "gd@edge + plain every 10": lambda: minstab.train(
                params, x, y, GD_EDGE_ETA, log_every=EVERY, log_sharpness="lanczos",
                model=eos.mlp, steps=steps, tol=1e-30).log,
        }  # fmt: skip
        p, d = adam_point(params, x, y, steps)
        ref = reference(p, x, y, d)
        pre = minstab.preconditioned_sharpness(p, x, y, precond=d, model=eos.mlp, tol=1e-5,
                                               full_output=True)  # fmt: skip
        err = abs(float(pre.values[0]) - ref) / ref
        if err > 1e-3:
            raise AssertionError(f"{name}: preconditioned sharpness {pre.values[0]} vs {ref}")
        plain = minstab.sharpness(p, x, y, model=eos.mlp, method="lanczos", tol=1e-5,
                                  full_output=True)  # fmt: skip
        calls["one-shot plain (lanczos)"] = lambda: minstab.sharpness(
            p, x, y, model=eos.mlp, method="lanczos", tol=1e-5
        )
        calls["one-shot preconditioned"] = lambda: minstab.preconditioned_sharpness(
            p, x, y, precond=d, model=eos.mlp, tol=1e-5)  # fmt: skip
        matvecs = {"one-shot plain (lanczos)": int(plain.num_matvecs),
                   "one-shot preconditioned": int(pre.num_matvecs)}  # fmt: skip
        times, last = _interleaved(calls, repeats)
        bases = {k: statistics.median(times[f"{k} untracked"]) for k in ("adam", "gd", "gd@edge")}
        for m, ts in times.items():
            med = statistics.median(ts)
            base = bases.get(m.split()[0])
            rows.append(dict(case=name, n=n, hidden=hidden, steps=steps, method=m,
                             median_s=med, times_s=ts,
                             overhead=None if base is None else med / base - 1,
                             matvecs=matvecs.get(m),
                             rel_error=err if m == "one-shot preconditioned" else None,
                             last_over_threshold=_last_over_threshold(m, last[m])))  # fmt: skip
            progress(f"{name:>16} {m:>32} {med:8.3f} s")
        diag = tracker_products(params, x, y, steps)
        for k, d in diag.items():
            progress(f"{name:>16} {k:>32} {d['mean_products']:.1f} products per log point, "
                     f"median overlap {d['median_overlap']:.4f}")  # fmt: skip
        diagnostics.append(dict(case=name, **{k.replace(" ", "_"): d for k, d in diag.items()}))
    return rows, diagnostics


def markdown(rows, diagnostics=()) -> str:
    lines = ["| case | steps | method | median s | overhead vs its untracked run | products | "
             "rel. error vs float64 eigsh | last / threshold |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        ov = "" if r["overhead"] is None else f"{r['overhead']:+.0%}"
        mv = "" if r["matvecs"] is None else str(r["matvecs"])
        e = "" if r["rel_error"] is None else f"{r['rel_error']:.1e}"
        lt = r.get("last_over_threshold")
        lt = "" if lt is None else f"{lt:.3f}"
        lines.append(f"| {r['case']} | {r['steps']} | {r['method']} | {r['median_s']:.3f} | "
                     f"{ov} | {mv} | {e} | {lt} |")  # fmt: skip
    if diagnostics:
        lines += ["", "Trackers replayed along the same runs (`tracker_products`):", "",
                  "| case | tracker | products per log point (mean) | median / min overlap of "
                  "consecutive top eigenvectors | top 6 eigenvalues at the end |",
                  "|---|---|---:|---:|---|"]  # fmt: skip
        for d in diagnostics:
            for k in ("adam_plain", "adam_preconditioned", "gd_plain", "gd@edge_plain"):
                t = d[k]
                top = ", ".join(f"{v:.4g}" for v in t["top6"])
                lines.append(f"| {d['case']} | {k.replace('_', ' ')} | {t['mean_products']:.1f} | "
                             f"{t['median_overlap']:.4f} / {t['min_overlap']:.3f} | {top} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def block_markdown(cases) -> str:
    lines = ["| case | tracker | products per log point (mean) | max rel. diff vs Lanczos |",
             "|---|---|---:|---:|"]  # fmt: skip
    for c in cases:
        for k, d in c.items():
            if k == "case":
                continue
            e = "" if d["max_rel_diff"] is None else f"{d['max_rel_diff']:.1e}"
            lines.append(f"| {c['case']} | {k} | {d['mean_products']:.2f} | {e} |")
    lines += [""] + [f"{c['case']}: median residual of the previous top eigenvector on the new "
                     f"operator {c['lanczos']['median_start_residual']:.1e} (relative)"
                     for c in cases]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--block-replay", action="store_true",
                    help="only replay block warm starts (block_start_products)")  # fmt: skip
    ap.add_argument("--krylov-replay", action="store_true",
                    help="only replay the trackers against their spectra (krylov_replay)")  # fmt: skip
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = _machine.machine()
    if args.block_replay:
        cases = []
        for name, n, hidden, steps in QUICK_CASES if args.quick else FULL_CASES:
            cases.append(dict(case=name, **block_start_products(*problem(n, hidden), steps)))
        (out / "adaptive_tracking_block.json").write_text(
            json.dumps({"machine": meta, "cases": cases}, indent=1))  # fmt: skip
        (out / "adaptive_tracking_block.md").write_text(block_markdown(cases))
        print(block_markdown(cases))
        return 0
    if args.krylov_replay:
        cases = [dict(case=name, **krylov_replay(*problem(n, hidden), steps))
                 for name, n, hidden, steps in (QUICK_CASES if args.quick else FULL_CASES)]  # fmt: skip
        (out / "adaptive_tracking_krylov.json").write_text(
            json.dumps({"machine": meta, "cases": cases}, indent=1))  # fmt: skip
        (out / "adaptive_tracking_krylov.md").write_text(krylov_markdown(cases))
        print(krylov_markdown(cases))
        return 0
    rows, diagnostics = run(quick=args.quick, repeats=args.repeats)
    (out / "adaptive_tracking.json").write_text(json.dumps(
        {"machine": meta, "rows": rows, "trackers": diagnostics}, indent=1))  # fmt: skip
    (out / "adaptive_tracking.md").write_text(markdown(rows, diagnostics))
    print(markdown(rows, diagnostics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
