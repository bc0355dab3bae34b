# ruff: noqa: B023 - the lambdas are called at once, inside the loop that binds them
"""Sharpness benchmark: minstab's methods vs PyHessian, scipy eigsh, matfree and jax.hessian.

Every method is timed at trained interpolating shallow ReLU nets and its answer compared with a
float64 reference (dense ``eigvalsh`` when P is small, else scipy ``eigsh`` at tol 1e-13
cross-checked against minstab's float64 Lanczos). For float32 rows the reference is the float64
sharpness of the float32-rounded net and data (rounding moves a net off exact interpolation, which
changes lambda_max by ~1e-4 relative on the univariate nets: that is not the solver's error). A method counts as accurate when its relative
error is <= ``TARGET`` (1e-6); rows that miss it keep their time but carry ``reached: false`` and
are left out of every speedup ratio.
"""

from __future__ import annotations

import functools
import statistics
import time
import zlib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import minstab
from minstab.shallow.curvature import gauss_newton_gram
from minstab.shallow.losses import quadratic_loss, residuals
from minstab.shallow.nets import ShallowParams, flatten

from .peers import jax_peers, torch_peers

TARGET = 1e-6
CACHE = Path(__file__).resolve().parent / ".cache"
DENSE_MAX_P = 4000

# (name, n, d, k, gd_steps); d = 1 uses minstab.data.toy.toy_1d, d = 784 Fashion-MNIST (or Gaussian).
QUICK_CASES = [("uni-n20-k100", 20, 1, 100, 20000), ("img-n200-k64", 200, 784, 64, 300)]
FULL_CASES = [
    ("uni-n20-k100", 20, 1, 100, 20000),
    ("uni-n20-k1000", 20, 1, 1000, 20000),
    ("uni-n20-k10000", 20, 1, 10000, 20000),
    ("img-n1000-k256", 1000, 784, 256, 100),
    ("img-n1000-k1024", 1000, 784, 1024, 60),
    ("img-n2000-k1024", 2000, 784, 1024, 40),
]


# --------------------------------------------------------------------------- data and training
def image_data(n: int, key):
    """n Fashion-MNIST images (unit-norm after centering), targets +1 for classes 0-4 else -1.

    Falls back to unit-norm Gaussian inputs with random signs when the dataset is missing.
    """
    try:
        from minstab.data.images import find_dataset, load_mnist

        imgs, labels = load_mnist(find_dataset("fashion-mnist"), "train")
        x = np.asarray(imgs[:n], np.float64).reshape(n, -1)
        y = np.where(np.asarray(labels[:n]) < 5, 1.0, -1.0)
        source = "fashion-mnist"
    except Exception:  # noqa: BLE001 - dataset or module missing: documented fallback
        kx, ky = jax.random.split(key)
        x = np.asarray(jax.random.normal(kx, (n, 784), jnp.float64))
        y = np.asarray(jnp.sign(jax.random.normal(ky, (n,), jnp.float64)))
        source = "gaussian"
    x = x - x.mean(axis=0, keepdims=True)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return jnp.asarray(x), jnp.asarray(y), source


@functools.partial(jax.jit, static_argnames=("steps",))
def _gd(params, x, y, eta, *, steps):
    def body(p, _):
        g = jax.grad(quadratic_loss)(p, x, y)
        return jax.tree.map(lambda a, b: a - eta * b, p, g), None

    return jax.lax.scan(body, params, None, length=steps)[0]


@jax.jit
def _gn_step(params, x, y):
    """Minimum-norm Gauss-Newton step onto {f(x) = y}: theta -= J^T (J J^T)^-1 r."""
    r = residuals(params, x, y)
    g = gauss_newton_gram(params, x) * x.shape[0]  # J J^T
    a = jnp.linalg.solve(g, r)
    _, vjp = jax.vjp(lambda p: minstab.forward(p, x), params)
    (step,) = vjp(a)
    return jax.tree.map(lambda p, s: p - s, params, step)


def _head_lstsq(params, x, y):
    """Minimum-norm correction of the output layer (w2, b2) that interpolates exactly (k + 1 >= n)."""
    x2 = x[:, None] if x.ndim == 1 else x
    feats = np.asarray(jnp.maximum(x2 @ params.w1.T + params.b1[None, :], 0))
    a = np.concatenate([feats, np.ones((feats.shape[0], 1))], axis=1)
    r = np.asarray(residuals(params, x, y))
    delta = np.linalg.lstsq(a, r, rcond=None)[0]
    w2 = params.w2 - jnp.asarray(delta[:-1])
    return params._replace(w2=w2, b2=params.b2 - delta[-1])


def trained_net(name, n, d, k, gd_steps):
    """A GD-trained interpolating net (float64), cached as benchmarks/.cache/NAME.npz.

    GD runs ``gd_steps`` steps at eta = 1/lambda_max (re-estimated every chunk). If the loss is
    still above 1e-20, the output layer gets its minimum-norm least-squares correction when
    k + 1 >= n (exact interpolation, the hidden layer stays as GD left it), else a few
    minimum-norm Gauss-Newton steps polish the net onto the interpolation manifold.
    ``info["training"]`` says which, and ``gd_loss`` what GD alone reached.
    """
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"{name}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            p = ShallowParams(*(jnp.asarray(z[f]) for f in ShallowParams._fields))
            info = {"training": str(z["training"]), "gd_loss": float(z["gd_loss"]),
                    "loss": float(z["loss"]), "data": str(z["data"])}  # fmt: skip
            return p, jnp.asarray(z["x"]), jnp.asarray(z["y"]), info
    key = jax.random.key(zlib.crc32(name.encode()))
    if d == 1:
        x, y = minstab.data.toy.toy_1d(n=n, key=jax.random.key(0), dtype=jnp.float64)
        source = "toy_1d"
    else:
        x, y, source = image_data(n, jax.random.key(0))
    kr = (float(x.min()), float(x.max())) if d == 1 else None  # d = 1: knots inside the data
    p = minstab.init_shallow(key, in_dim=d, width=k, dtype=jnp.float64, knot_range=kr)
    p = ShallowParams(*(a.astype(jnp.float64) for a in p))
    chunk = max(gd_steps // 10, 1)
    for _ in range(max(gd_steps // chunk, 1)):
        lam = float(minstab.sharpness(p, x, y, method="gram", tol=1e-6))
        p = _gd(p, x, y, jnp.asarray(1.0 / lam), steps=chunk)
        if float(quadratic_loss(p, x, y)) < 1e-20:
            break
    gd_loss = float(quadratic_loss(p, x, y))
    training = f"GD {gd_steps} steps"
    if not gd_loss <= 1e-20 and k + 1 >= n:
        p = _head_lstsq(p, x, y)
        training += " + least-squares output layer"
    if not float(quadratic_loss(p, x, y)) <= 1e-20:
        for _ in range(30):
            p = _gn_step(p, x, y)
            if float(quadratic_loss(p, x, y)) <= 1e-24:
                break
        training += " + Gauss-Newton polish"
    loss = float(quadratic_loss(p, x, y))
    np.savez(path, **p._asdict(), x=np.asarray(x), y=np.asarray(y), training=training,
             gd_loss=gd_loss, loss=loss, data=source)  # fmt: skip
    info = {"training": training, "gd_loss": gd_loss, "loss": loss, "data": source}
    return p, x, y, info


def reference(p, x, y):
    """float64 lambda_max: dense eigvalsh when P is small, else scipy eigsh at tol 1e-13."""
    P = flatten(p).shape[0]
    if P <= DENSE_MAX_P:
        return float(jnp.linalg.eigvalsh(minstab.hessian(p, x, y))[-1]), "dense eigvalsh"
    val, _ = jax_peers.scipy_eigsh(p, x, y, tol=1e-13)
    lz = minstab.sharpness(p, x, y, method="lanczos", tol=1e-12, num_iters=400, full_output=True)
    if abs(float(lz.value) - val) > 1e-9 * abs(val):
        raise AssertionError(f"references disagree: eigsh {val} vs minstab lanczos {lz.value}")
    return val, "scipy eigsh tol 1e-13 (= minstab lanczos to 1e-9)"


# --------------------------------------------------------------------------- timing
def timed(fn, *, max_repeats=5, budget=10.0):
    """(result, median seconds, all seconds): one warm-up call (compilation), then repeats."""
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    reps = 1 if first > budget / 2 else max(1, min(max_repeats, int(budget / max(first, 1e-4))))
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return out, statistics.median(ts), ts


def _ms(method, **kw):
    """Timed: the value alone, as the peers return it (no eigenvector; what
    ``minstab.sharpness(..., full_output=False)`` computes). The product count comes from one
    untimed ``full_output=True`` call per (net, dtype), cached."""
    counts = {}

    def f(p, x, y):
        value = float(minstab.sharpness(p, x, y, method=method, **kw))
        key = (p.w1.shape, str(p.w1.dtype))
        if key not in counts:
            r = minstab.sharpness(p, x, y, method=method, full_output=True, **kw)
            counts[key] = int(r.num_matvecs)
        return value, counts[key]

    return f


def methods(P, *, quick):
    """(name, fn(p, x, y) -> (value, matvecs), note) for every method applicable at size P."""
    out = []
    if P <= DENSE_MAX_P:
        out.append(("minstab:dense", _ms("dense"), ""))
    out += [
        ("minstab:lanczos", _ms("lanczos"), "default tol"),
        ("minstab:gram", _ms("gram"), "default tol"),
        ("minstab:power", _ms("power", num_iters=2000), "default tol, <= 2000 it"),
        ("minstab:auto", _ms("auto"), "default tol"),
    ]
    pm = 300 if quick else 1000
    out += [
        ("pyhessian tol=1e-3", lambda p, x, y, dt: torch_peers.pyhessian_sharpness(
            p, x, y, dtype=dt, tol=1e-3, max_iter=100), "PyHessian default (tol 1e-3, 100 it)"),
        ("pyhessian tol=1e-6", lambda p, x, y, dt: torch_peers.pyhessian_sharpness(
            p, x, y, dtype=dt, tol=1e-6, max_iter=pm), f"tol 1e-6, <= {pm} it"),
        ("pyhessian tol=1e-9", lambda p, x, y, dt: torch_peers.pyhessian_sharpness(
            p, x, y, dtype=dt, tol=1e-9, max_iter=pm), f"tol 1e-9, <= {pm} it"),
        ("pyhessian tol=1e-9 (patched normalization)",
         lambda p, x, y, dt: torch_peers.pyhessian_sharpness(
             p, x, y, dtype=dt, tol=1e-9, max_iter=pm, patched=True),
         f"NOT stock PyHessian: v/||v|| instead of v/(||v||+1e-6); tol 1e-9, <= {pm} it"),
        ("scipy eigsh (jax hvp)", lambda p, x, y: jax_peers.scipy_eigsh(p, x, y, tol=1e-7),
         "tol 1e-7"),
    ]  # fmt: skip
    if P <= DENSE_MAX_P:
        out.append(("jax.hessian+eigvalsh", jax_peers.hessian_eigvalsh, ""))
    return out


def _matfree_row(p, x, y, ref, budget):
    """matfree at the smallest Krylov depth (10, 20, 40, 80, 160) that reaches TARGET."""
    depths = (10, 20, 40, 80, 160)
    for depth in depths:
        fn = lambda: jax_peers.matfree_lanczos(p, x, y, depth=depth)  # noqa: E731
        (val, mv), med, ts = timed(fn, budget=budget)
        err = abs(val - ref) / abs(ref)
        if err <= TARGET or depth == depths[-1]:
            return val, mv, med, ts, f"depth {depth} (smallest of {depths} reaching 1e-6)"


def run(*, quick: bool, progress=print):
    """All sharpness rows (list of dicts) and the case descriptions."""
    rows, cases = [], []
    budget = 3.0 if quick else 8.0
    for name, n, d, k, steps in QUICK_CASES if quick else FULL_CASES:
        p64, x64, y64, info = trained_net(name, n, d, k, steps)
        ref, ref_how = reference(p64, x64, y64)
        P = int(flatten(p64).shape[0])
        cases.append(dict(case=name, n=n, d=d, k=k, P=P, reference=ref, reference_method=ref_how,
                          **info))  # fmt: skip
        progress(f"[sharpness] {name}: P={P} ref={ref:.10g} ({info['training']}, "
                 f"loss {info['loss']:.1e})")  # fmt: skip
        for dt in ("float64", "float32"):
            jdt = jnp.float64 if dt == "float64" else jnp.float32
            p = ShallowParams(*(a.astype(jdt) for a in p64))
            x, y = x64.astype(jdt), y64.astype(jdt)
            if dt == "float32":  # the float32 net is the float64 one rounded: its own reference
                up = ShallowParams(*(a.astype(jnp.float64) for a in p))
                ref, _ = reference(up, x.astype(jnp.float64), y.astype(jnp.float64))
                cases[-1]["reference_float32_net"] = ref
            for mname, fn, note in methods(P, quick=quick):
                torch_like = mname.startswith("pyhessian")
                call = (lambda: fn(p, x, y, dt)) if torch_like else (lambda: fn(p, x, y))
                try:
                    (val, mv), med, ts = timed(call, budget=budget, max_repeats=3)
                    err = abs(val - ref) / abs(ref)
                except Exception as e:  # noqa: BLE001 - reported, not hidden
                    rows.append(dict(case=name, dtype=dt, method=mname, error=repr(e)[:200]))
                    continue
                rows.append(dict(case=name, dtype=dt, method=mname, value=val, rel_error=err,
                                 reached=bool(err <= TARGET), median_seconds=med, seconds=ts,
                                 matvecs=mv, note=note))  # fmt: skip
                progress(f"  {dt:7s} {mname:24s} {med:9.4f}s  err {err:.1e}  mv {mv}")
            val, mv, med, ts, note = _matfree_row(p, x, y, ref, budget)
            err = abs(val - ref) / abs(ref)
            rows.append(dict(case=name, dtype=dt, method="matfree lanczos", value=val,
                             rel_error=err, reached=bool(err <= TARGET), median_seconds=med,
                             seconds=ts, matvecs=mv, note=note))  # fmt: skip
            progress(f"  {dt:7s} {'matfree lanczos':24s} {med:9.4f}s  err {err:.1e}  mv {mv}")
    return rows, cases


def speedups(rows):
    """Per (case, dtype): best accurate minstab time vs PyHessian and vs the best JAX peer."""
    out = []
    keys = sorted({(r["case"], r["dtype"]) for r in rows})
    for case, dt in keys:
        rs = [r for r in rows if r["case"] == case and r["dtype"] == dt and r.get("reached")]
        ours = [r for r in rs if r["method"].startswith("minstab:")]
        ph = [r for r in rs if r["method"].startswith("pyhessian") and "patched" not in r["method"]]
        php = [r for r in rs if r["method"].startswith("pyhessian") and "patched" in r["method"]]
        jx = [r for r in rs if not r["method"].startswith(("minstab:", "pyhessian"))]
        if not ours:
            continue
        best = min(ours, key=lambda r: r["median_seconds"])
        e = dict(case=case, dtype=dt, minstab_best=best["method"],
                 minstab_seconds=best["median_seconds"])  # fmt: skip
        if ph:
            b = min(ph, key=lambda r: r["median_seconds"])
            e.update(vs_pyhessian=b["median_seconds"] / best["median_seconds"])
        else:
            e.update(vs_pyhessian=None, note="no PyHessian setting reached 1e-6")
        if php:
            b = min(php, key=lambda r: r["median_seconds"])
            e.update(vs_pyhessian_patched=b["median_seconds"] / best["median_seconds"])
        if jx:
            b = min(jx, key=lambda r: r["median_seconds"])
            e.update(
                best_jax_peer=b["method"], vs_best_jax=b["median_seconds"] / best["median_seconds"]
            )
        out.append(e)
    return out


def markdown(rows, cases, ratios) -> str:
    lines = ["| case | dtype | method | median s | rel. error | ≤1e-6 | matvecs | note |",
             "|---|---|---|---:|---:|:-:|---:|---|"]  # fmt: skip
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['dtype']} | {r['method']} | – | – | failed | – | "
                         f"{r['error']} |")  # fmt: skip
            continue
        lines.append(
            f"| {r['case']} | {r['dtype']} | {r['method']} | {r['median_seconds']:.4g} | "
            f"{r['rel_error']:.1e} | {'✓' if r['reached'] else '✗'} | {r['matvecs']} | "
            f"{r['note']} |"
        )
    lines += ["", "| case | dtype | fastest accurate minstab | s | × vs PyHessian | "
              "× vs PyHessian (patched normalization) | × vs best JAX peer |",
              "|---|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for e in ratios:
        vp = f"{e['vs_pyhessian']:.1f}" if e.get("vs_pyhessian") else "never ≤1e-6"
        vpp = f"{e['vs_pyhessian_patched']:.1f}" if e.get("vs_pyhessian_patched") else "–"
        vj = f"{e['vs_best_jax']:.1f} ({e['best_jax_peer']})" if e.get("vs_best_jax") else "–"
        lines.append(f"| {e['case']} | {e['dtype']} | {e['minstab_best']} | "
                     f"{e['minstab_seconds']:.4g} | {vp} | {vpp} | {vj} |")  # fmt: skip
    lines += ["", "| case | n | d | k | P | reference | training | final loss | data |",
              "|---|---:|---:|---:|---:|---|---|---:|---|"]  # fmt: skip
    for c in cases:
        lines.append(f"| {c['case']} | {c['n']} | {c['d']} | {c['k']} | {c['P']} | "
                     f"{c['reference']:.10g} ({c['reference_method']}) | {c['training']} | "
                     f"{c['loss']:.1e} | {c['data']} |")  # fmt: skip
    return "\n".join(lines) + "\n"
