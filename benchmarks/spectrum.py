# ruff: noqa: B023 - the lambdas are called at once, inside the loop that binds them
"""Curvature-spectrum benchmark (issue 17): top eigenvalue, top-5, trace and density of any model.

Models: an MLP 784-512-512-10 (ReLU, P = 669 706) and a small CNN (conv 3x3 16 - avgpool - conv
3x3 32 - avgpool - dense 10, ReLU, P = 20 490) at He initialization on n Fashion-MNIST images
(one-hot targets, quadratic loss (1/2n) sum_j ||f(x_j) - y_j||^2), float64 and float32; the same
weights in a torch ``nn.Sequential`` for PyHessian. The JAX CNN writes its convolutions as
patches + matmul (see ``_conv3x3``), for every JAX method alike. ``--quick`` (CI) uses an MLP
784-64-64-10 on 64 images, the CNN on 32 images and smaller budgets (``QUICK``).

Every answer is checked against a float64 reference before it is timed: top-5 by scipy ``eigsh``
at tol 1e-12 cross-checked with minstab's float64 Lanczos to 1e-9; the trace exactly, as
tr H = ||J||_F^2 / n (for piecewise-linear nets grad^2_theta f has a zero diagonal almost
everywhere, so tr H = tr of the Gauss-Newton part; per-sample Jacobians in chunks), cross-checked
against a float64 Hutch++ estimate; the density by its largest node (vs lambda_max) and its mean
(vs tr H / P). The density runs with full reorthogonalization (PyHessian, matfree, minstab) and
without it (matfree ``reortho="none"``, minstab ``reorthogonalize=False``), at the same budget.
For float32 rows the reference is that of the float32-rounded net and data.
Timing (:func:`interleaved`): after the checked first call, methods are timed in turn, round by
round (``rounds`` of the budget), so that load drift on a shared machine hits them alike; the
first call of a JAX method is an untimed warm-up (compilation), a torch peer's first call is
timed (nothing to compile); medians are reported.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

import minstab

from .peers import jax_peers, torch_peers

TARGET = 1e-6
# Probes per vmapped batch for matfree's Hutchinson and the trace reference (minstab's
# hessian_trace runs its default, one probe at a time on CPU): 16 HVPs of the patches-CNN on
# 1 000 images at once need 35 GB (measured: RESOURCE_EXHAUSTED), 2 fit in ~4.4 GB.
PROBE_BATCH = {"mlp": 16, "cnn": 2}
CACHE = Path(__file__).resolve().parent / ".cache"
# (name, model, n images, MLP hidden width). --quick (CI) shrinks the MLP to 784-64-64-10 and
# the data to a few dozen images so that every task and peer runs in about a minute.
QUICK_CASES = [("mlp-h64-n64", "mlp", 64, 64), ("cnn-n32", "cnn", 32, None)]
FULL_CASES = [("mlp-n1000", "mlp", 1000, 512), ("cnn-n1000", "cnn", 1000, None)]
# Budgets per mode: PyHessian iterations per eigenvalue (patched row), Hutchinson samples,
# Hutch++ and XTrace sample counts, SLQ (iter, n_v) as PyHessian's density defaults, timed rounds.
QUICK = dict(pyh_iters=60, trace_samples=30, hutchpp_samples=(15, 30), xtrace_samples=(16, 30),
             density_iters=30, density_probes=1, rounds=1)  # fmt: skip
FULL = dict(pyh_iters=100, trace_samples=100, hutchpp_samples=(30, 60, 99),
            xtrace_samples=(40, 60, 100), density_iters=100, density_probes=1, rounds=2)  # fmt: skip


# --------------------------------------------------------------------------- models and data
def mlp_apply(params, x):
    """MLP 784-512-512-10 with ReLU; params a list of (w, b), x (n, 784)."""
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b[None, :])
    w, b = params[-1]
    return x @ w + b[None, :]


def _conv3x3(h, w):
    """'SAME' 3x3 convolution as patches + one matmul (im2col), NHWC, w of shape (3, 3, c, o).

    XLA on CPU runs a ``lax.conv_general_dilated`` weight gradient 15-400x slower inside a
    while loop than outside (measured: README, "Where the time goes"), and every Lanczos or
    power iteration is such a loop; as a matmul the same function runs at full speed there.
    """
    n, hh, ww, c = h.shape
    hp = jnp.pad(h, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = jnp.concatenate(
        [hp[:, i : i + hh, j : j + ww, :] for i in range(3) for j in range(3)], -1
    )
    return cols @ w.reshape(9 * c, -1)


def _lax_conv3x3(h, w):
    return jax.lax.conv_general_dilated(
        h, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def _cnn(params, x, conv):
    h = x
    for w, b in params["conv"]:
        h = jax.nn.relu(conv(h, w) + b[None, None, None, :])
        n, hh, ww, c = h.shape
        h = h.reshape(n, hh // 2, 2, ww // 2, 2, c).mean(axis=(2, 4))
    return h.reshape(h.shape[0], -1) @ params["w"] + params["b"][None, :]


def cnn_apply(params, x):
    """conv3x3(1->16) relu avgpool2 conv3x3(16->32) relu avgpool2 dense(1568->10); x (n,28,28,1)."""
    return _cnn(params, x, _conv3x3)


def cnn_apply_lax_conv(params, x):
    """The same CNN with ``lax.conv_general_dilated`` (slow inside XLA CPU loops)."""
    return _cnn(params, x, _lax_conv3x3)


def init(kind, key, hidden=512):
    """He-normal weights and small random biases (float64); the MLP is 784-hidden-hidden-10."""
    ks = iter(jax.random.split(key, 8))

    def dense(m, n):
        w = jax.random.normal(next(ks), (m, n), jnp.float64) * np.sqrt(2.0 / m)
        return w, 0.01 * jax.random.normal(next(ks), (n,), jnp.float64)

    if kind == "mlp":
        return [dense(784, hidden), dense(hidden, hidden), dense(hidden, 10)]
    convs = []
    for cin, cout in ((1, 16), (16, 32)):
        w = jax.random.normal(next(ks), (3, 3, cin, cout), jnp.float64) * np.sqrt(2.0 / (9 * cin))
        convs.append((w, 0.01 * jax.random.normal(next(ks), (cout,), jnp.float64)))
    w, b = dense(7 * 7 * 32, 10)
    return {"conv": convs, "w": w, "b": b}


def data(kind, n):
    """n Fashion-MNIST training images (standardized), one-hot targets (n, 10)."""
    from minstab.data.images import find_dataset, load_mnist

    imgs, labels = load_mnist(find_dataset("fashion-mnist"), "train")
    x = np.asarray(imgs[:n], np.float64) / 255.0
    x = (x - x.mean()) / x.std()
    x = x.reshape(n, 784) if kind == "mlp" else x.reshape(n, 28, 28, 1)
    y = np.eye(10)[np.asarray(labels[:n])]
    return jnp.asarray(x), jnp.asarray(y)


def torch_net(kind, params, dtype):
    """The same network in torch: Linear weights are (out, in), convolutions OIHW on NCHW inputs,
    and the CNN's dense rows are permuted from JAX's (h, w, c) flattening to torch's (c, h, w)."""
    import torch
    from torch import nn

    tdt = torch.float64 if dtype == "float64" else torch.float32
    if kind == "mlp":
        layers = []
        for w, _ in params:
            layers += [nn.Linear(*np.shape(w)), nn.ReLU()]
        layers = layers[:-1]
        weights = [(np.asarray(w).T, b) for w, b in params]
    else:
        layers = [nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                  nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                  nn.Linear(1568, 10)]  # fmt: skip
        weights = [(np.transpose(np.asarray(w), (3, 2, 0, 1)), b) for w, b in params["conv"]]
        dense = np.asarray(params["w"]).reshape(7, 7, 32, 10).transpose(2, 0, 1, 3)
        weights.append((dense.reshape(1568, 10).T, params["b"]))
    net = nn.Sequential(*layers).to(tdt)
    mods = [m for m in net if isinstance(m, nn.Linear | nn.Conv2d)]
    with torch.no_grad():
        for m, (w, b) in zip(mods, weights, strict=True):
            m.weight.copy_(torch.as_tensor(np.ascontiguousarray(w)))
            m.bias.copy_(torch.as_tensor(np.array(b)))
    return net


def torch_inputs(kind, x, dtype):
    """x as a torch tensor in torch's layout (NCHW for the CNN)."""
    import torch

    tdt = torch.float64 if dtype == "float64" else torch.float32
    x = np.array(x)
    return torch.as_tensor(x if kind == "mlp" else x.transpose(0, 3, 1, 2).copy(), dtype=tdt)


# --------------------------------------------------------------------------- references
def exact_trace(apply, params, x, *, chunk=5):
    """tr H = ||J||_F^2 / n for a piecewise-linear net (zero diagonal of grad^2 f a.e.)."""
    theta, unravel = jax.flatten_util.ravel_pytree(params)

    @jax.jit
    def sq_norms(t, xs):
        jac = jax.vmap(jax.jacrev(lambda s, xi: apply(unravel(s), xi[None])[0]), (None, 0))(t, xs)
        return jnp.sum(jac * jac)

    total = sum(float(sq_norms(theta, x[i : i + chunk])) for i in range(0, x.shape[0], chunk))
    return total / x.shape[0]


def reference(name, kind, apply, params, x, y, *, tag):
    """float64 top-5 (eigsh, checked against minstab Lanczos) and exact trace; cached as JSON."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"spectrum-{name}-{tag}.json"
    if path.exists():
        return json.loads(path.read_text())
    theta, hvp = jax_peers.make_flat_hvp(apply, params)
    vals, _ = jax_peers.scipy_eigsh_top(theta, hvp, x, y, k=5, tol=1e-12)
    lz = minstab.hessian_eigenvalues(params, x, y, k=5, model=apply, tol=1e-12, num_iters=300)
    if not np.allclose(np.asarray(lz.values), vals, rtol=1e-9, atol=1e-9 * abs(vals[0])):
        raise AssertionError(f"references disagree: eigsh {vals} vs minstab {lz.values}")
    tr = exact_trace(apply, params, x)
    est = minstab.hessian_trace(
        params,
        x,
        y,
        key=jax.random.key(7),
        num_samples=90,
        model=apply,
        batch_size=PROBE_BATCH[kind],
    )
    if abs(float(est.value) - tr) > 5 * float(est.stderr) + 1e-9 * abs(tr):
        raise AssertionError(f"exact trace {tr} vs Hutch++ {est.value} +- {est.stderr}")
    ref = dict(top5=[float(v) for v in vals], trace=tr, P=int(theta.shape[0]),
               trace_check=f"Hutch++ 90 samples {float(est.value):.6g} +- {float(est.stderr):.2g}")  # fmt: skip
    path.write_text(json.dumps(ref))
    return ref


# --------------------------------------------------------------------------- timing
def _block(tree):
    return jax.block_until_ready(tree)


def top_rows(ctx, k):
    """(method, fn -> (values, matvecs), note) for the top-k eigenvalue task."""
    p, x, y, apply, net, dt = (
        ctx["params"],
        ctx["x"],
        ctx["y"],
        ctx["apply"],
        ctx["net"],
        ctx["dtype"],
    )
    theta, hvp = ctx["theta"], ctx["hvp"]
    xt, yt = ctx["xt"], ctx["yt"]

    def ours(tol=None, model=apply, value_tol=None):
        r = _block(minstab.hessian_eigenvalues(p, x, y, k=k, model=model, tol=tol,
                                               value_tol=value_tol))  # fmt: skip
        return np.asarray(r.values), int(r.num_matvecs)

    rows = [
        ("minstab:hessian_eigenvalues", ours, "Lanczos, default tol (residual <= 1e-10 / 1e-5)"),
        ("minstab:hessian_eigenvalues tol=1e-6", lambda: ours(1e-6),
         "residual <= 1e-6 |value|: error <= 1e-6 certified (Bauer-Fike)"),
        ("minstab:hessian_eigenvalues value_tol=1e-6", lambda: ours(1e-6, value_tol=1e-6),
         "stops once the estimated value error r^2/(Ritz gap) <= 1e-6 |value| (an estimate)"),
    ]  # fmt: skip
    if k == 1 and ctx["kind"] == "cnn" and dt == "float32":
        rows.append(("minstab:hessian_eigenvalues (lax.conv CNN)", lambda: ours(model=cnn_apply_lax_conv),
                     "same net with lax.conv_general_dilated: XLA CPU's slow in-loop convolutions"))  # fmt: skip
    rows += [
        (f"pyhessian top_n={k} tol=1e-3", lambda: torch_peers.pyhessian_top(
            net, xt, yt, dtype=dt, top_n=k, tol=1e-3, max_iter=100), "stock, PyHessian defaults"),
        (f"pyhessian top_n={k} tol=1e-9 (patched normalization)", lambda: torch_peers.pyhessian_top(
            net, xt, yt, dtype=dt, top_n=k, tol=1e-9, max_iter=ctx["pyh_iters"], patched=True),
         f"NOT stock: v/||v||; tol 1e-9, <= {ctx['pyh_iters']} it per eigenvalue"),
        ("scipy eigsh (jax hvp)", lambda: jax_peers.scipy_eigsh_top(
            theta, hvp, x, y, k=k, tol=1e-8), "tol 1e-8"),
    ]  # fmt: skip
    return rows


def matfree_depth(ctx, k, ref):
    """The smallest matfree depth of (10, 20, 40, 80) whose top-k reach TARGET (untimed search)."""
    depths = (10, 20, 40, 80)
    for depth in depths:
        vals, _ = jax_peers.matfree_top(
            ctx["theta"], ctx["hvp"], ctx["x"], ctx["y"], k=k, depth=depth
        )
        if float(np.max(np.abs(vals - ref) / np.abs(ref))) <= TARGET:
            return depth
    return depths[-1]


def trace_rows(ctx):
    """(method, fn -> (value, sem, matvecs), note) for the trace task; PyHessian's sem first."""
    p, x, y, apply, net, dt = (
        ctx["params"],
        ctx["x"],
        ctx["y"],
        ctx["apply"],
        ctx["net"],
        ctx["dtype"],
    )
    n_s = ctx["trace_samples"]
    mf_batch = min(10, ctx["probe_batch"])  # 10 probes of the CNN at once do not fit in memory

    def ours(method, num, seed=0):
        r = _block(minstab.hessian_trace(p, x, y, key=jax.random.key(seed), num_samples=num,
                                         model=apply, method=method))  # fmt: skip
        return float(r.value), float(r.stderr), int(r.num_matvecs)

    return [
        (f"pyhessian trace (Hutchinson, {n_s} samples)", lambda: torch_peers.pyhessian_trace(
            net, ctx["xt"], ctx["yt"], dtype=dt, num_samples=n_s), "stock, tol=0: all samples"),
        (f"matfree Hutchinson ({n_s} samples)", lambda: jax_peers.matfree_hutchinson(
            ctx["theta"], ctx["hvp"], x, y, num_samples=n_s, batch=mf_batch),
         f"batches of {mf_batch} probes"),
        (f"minstab:hessian_trace hutchinson ({n_s} samples)", lambda: ours("hutchinson", n_s), ""),
    ] + [
        (f"minstab:hessian_trace hutch++ ({m} samples)", lambda m=m: ours("hutch++", m), "")
        for m in ctx["hutchpp_samples"]
    ] + [
        (f"minstab:hessian_trace xtrace ({m} samples)", lambda m=m: ours("xtrace", m), "")
        for m in ctx["xtrace_samples"]
    ]  # fmt: skip


def density_rows(ctx):
    """(method, fn -> (nodes, weights), note) at PyHessian's default budget (iter, n_v)."""
    p, x, y, apply = ctx["params"], ctx["x"], ctx["y"], ctx["apply"]
    it, nv = ctx["density_iters"], ctx["density_probes"]

    def ours(reorthogonalize=True):
        sd = _block(minstab.spectral_density(p, x, y, key=jax.random.key(0), model=apply,
                                             num_probes=nv, num_iters=it,
                                             reorthogonalize=reorthogonalize))  # fmt: skip
        return np.asarray(sd.nodes), np.asarray(sd.weights)

    def matfree(reortho):
        return jax_peers.matfree_slq(ctx["theta"], ctx["hvp"], x, y, num_probes=nv, depth=it,
                                     reortho=reortho)  # fmt: skip

    return [
        (f"pyhessian density(iter={it}, n_v={nv})", lambda: torch_peers.pyhessian_density(
            ctx["net"], ctx["xt"], ctx["yt"], dtype=ctx["dtype"], iters=it, n_v=nv),
         "stock (torch.eig shimmed by torch.linalg.eigh)"),
        (f"matfree SLQ (tridiag_sym({it}), {nv} probe(s))", lambda: matfree("full"),
         "full reorthogonalization"),
        (f"matfree SLQ (tridiag_sym({it}, reortho='none'), {nv} probe(s))",
         lambda: matfree("none"), "three-term recurrence"),
        (f"minstab:spectral_density({nv}, {it})", ours, "full reorthogonalization"),
        (f"minstab:spectral_density({nv}, {it}, reorthogonalize=False)",
         lambda: ours(False), "three-term recurrence (ghost copies share their weight)"),
    ]  # fmt: skip


def _context(kind, params64, x64, y64, dtype, budget):
    import torch

    jdt = jnp.float64 if dtype == "float64" else jnp.float32
    tdt = torch.float64 if dtype == "float64" else torch.float32
    params = jax.tree.map(lambda a: a.astype(jdt), params64)
    x, y = x64.astype(jdt), y64.astype(jdt)
    apply = mlp_apply if kind == "mlp" else cnn_apply
    theta, hvp = jax_peers.make_flat_hvp(apply, params)
    return dict(
        params=params, x=x, y=y, apply=apply, dtype=dtype, theta=theta, hvp=hvp, kind=kind,
        net=torch_net(kind, params, dtype), xt=torch_inputs(kind, x, dtype),
        yt=torch.as_tensor(np.array(y), dtype=tdt), probe_batch=PROBE_BATCH[kind], **budget,
    )  # fmt: skip


def _row(case, dtype, task, method, med, ts, note, **kw):
    return dict(case=case, dtype=dtype, task=task, method=method, median_seconds=med, seconds=ts,
                note=note, **kw)  # fmt: skip


def interleaved(entries, check, *, rounds=3, slow=60.0):
    """Check every method's answer, then time the methods in turn, round by round, so that load
    drift on a shared machine hits every method alike.

    ``entries``: (method, fn, note, compiled). The first call of each method gives the answer,
    and ``check(method, answer)`` (error against the float64 reference) runs on it before any
    timing. Compiled (JAX) methods have that first call as an untimed warm-up (compilation); the
    torch peers have nothing to compile, so their first call is their first timing, and one
    slower than ``slow`` s is not repeated. Returns (method, note, check's result, median s,
    all s) per entry.
    """
    checked, times = {}, {}
    for method, fn, _, compiled in entries:
        t0 = time.perf_counter()
        answer = fn()
        first = time.perf_counter() - t0
        checked[method] = check(method, answer)
        times[method] = [] if compiled else [first]
    for _ in range(rounds):
        for method, fn, _, _ in entries:
            ts = times[method]
            if len(ts) >= rounds or (ts and ts[0] > slow):
                continue
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [
        (m, note, checked[m], statistics.median(times[m]), times[m]) for m, _, note, _ in entries
    ]


def _compiled(rows):
    return [(m, fn, note, not m.startswith("pyhessian")) for m, fn, note in rows]


def _eig_task(ctx, case, k, ref, progress):
    task = "top1" if k == 1 else f"top{k}"
    depth = matfree_depth(ctx, k, ref[:k])
    entries = _compiled(top_rows(ctx, k))
    entries.append(("matfree lanczos", lambda: jax_peers.matfree_top(
        ctx["theta"], ctx["hvp"], ctx["x"], ctx["y"], k=k, depth=depth),
        f"depth {depth}: the smallest of (10, 20, 40, 80) reaching 1e-6, found with the reference",
        True))  # fmt: skip

    def check(method, answer):
        vals, mv = answer
        err = float(np.max(np.abs(np.asarray(vals)[:k] - ref[:k]) / np.abs(ref[:k])))
        return dict(rel_error=err, reached=err <= TARGET, matvecs=int(mv))

    rows = []
    for method, note, c, med, ts in interleaved(entries, check, rounds=ctx["rounds"]):
        rows.append(_row(case, ctx["dtype"], task, method, med, ts, note, **c))
        progress(f"  {ctx['dtype']:7s} {task} {method:50s} {med:8.3f}s err {c['rel_error']:.1e} "
                 f"mv {c['matvecs']}")  # fmt: skip
    return rows


def _trace_task(ctx, case, exact, progress):
    def check(method, answer):
        val, sem, mv = answer
        ok = abs(val - exact) <= 3 * sem + 1e-5 * abs(exact)
        return dict(value=val, stderr=sem, rel_error=abs(val - exact) / abs(exact),
                    reached=bool(ok), matvecs=int(mv))  # fmt: skip

    rows = []
    entries = _compiled(trace_rows(ctx))
    for method, note, c, med, ts in interleaved(entries, check, rounds=ctx["rounds"]):
        rows.append(_row(case, ctx["dtype"], "trace", method, med, ts, note, **c))
        progress(f"  {ctx['dtype']:7s} trace {method:50s} {med:8.3f}s err {c['rel_error']:.1e} "
                 f"se {c['stderr']:.2g}")  # fmt: skip
    return rows


def _density_task(ctx, case, ref, progress):
    lam, mean = ref["top5"][0], ref["trace"] / ref["P"]

    def check(method, answer):
        nodes, weights = answer
        top_err = abs(float(np.max(nodes)) - lam) / abs(lam)
        m1 = float(np.mean(np.sum(weights * nodes, axis=-1)))
        return dict(rel_error=top_err, reached=top_err <= TARGET, first_moment=m1,
                    exact_first_moment=mean, matvecs=int(np.size(nodes)))  # fmt: skip

    rows = []
    entries = _compiled(density_rows(ctx))
    for method, note, c, med, ts in interleaved(entries, check, rounds=ctx["rounds"]):
        rows.append(_row(case, ctx["dtype"], "density", method, med, ts, note, **c))
        progress(f"  {ctx['dtype']:7s} density {method:50s} {med:8.3f}s "
                 f"top err {c['rel_error']:.1e}")  # fmt: skip
    return rows


def threads() -> dict:
    """The thread settings the timings ran under (the peers share the same cores)."""
    import os

    import torch

    return dict(torch_threads=torch.get_num_threads(), XLA_FLAGS=os.environ.get("XLA_FLAGS", ""),
                OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", ""))  # fmt: skip


TASKS = ("top1", "top5", "trace", "density")


def run(*, quick: bool, progress=print, checkpoint=None, only=None, dtypes=("float64", "float32"),
        tasks=TASKS):  # fmt: skip
    """All spectrum rows (list of dicts) and the case descriptions; ``checkpoint(rows, cases)``
    after every (case, dtype); ``only``: run the cases whose name contains it; ``dtypes``: which
    precisions; ``tasks``: which of :data:`TASKS` (every method of a task runs, interleaved)."""
    unknown = set(tasks) - set(TASKS)
    if unknown:
        raise ValueError(f"tasks must be among {TASKS}, got {sorted(unknown)}")
    rows, cases = [], []
    progress(f"[spectrum] threads: {threads()}")
    budget = QUICK if quick else FULL
    for name, kind, n, hidden in QUICK_CASES if quick else FULL_CASES:
        if only is not None and only not in name:
            continue
        params64 = init(kind, jax.random.key(0), **({"hidden": hidden} if hidden else {}))
        x64, y64 = data(kind, n)
        apply = mlp_apply if kind == "mlp" else cnn_apply
        for dtype in dtypes:
            if dtype == "float64":
                p, x, y = params64, x64, y64
            else:  # the float32-rounded net and data: their own float64 reference
                p, x, y = jax.tree.map(lambda a: a.astype(jnp.float32).astype(jnp.float64),
                                       (params64, x64, y64))  # fmt: skip
            ref = reference(name, kind, apply, p, x, y, tag=dtype)
            arch = f"784-{hidden}-{hidden}-10" if kind == "mlp" else "conv16-conv32-dense10"
            cases.append(dict(case=name, model=kind, arch=arch, n=n, dtype=dtype, **ref,
                              budget=budget, **threads()))  # fmt: skip
            progress(
                f"[spectrum] {name} {dtype}: P={ref['P']} top5={ref['top5']} tr={ref['trace']:.6g}"
            )
            ctx = _context(kind, p, x, y, dtype, budget)
            top = np.asarray(ref["top5"])
            if "top1" in tasks:
                rows += _eig_task(ctx, name, 1, top, progress)
            if "top5" in tasks:
                rows += _eig_task(ctx, name, 5, top, progress)
            if "trace" in tasks:
                rows += _trace_task(ctx, name, ref["trace"], progress)
            if "density" in tasks:
                rows += _density_task(ctx, name, ref, progress)
            if checkpoint is not None:
                checkpoint(rows, cases)
    return rows, cases


def _fastest(rows, pred):
    rs = [r for r in rows if r.get("reached") and pred(r["method"])]
    return min(rs, key=lambda r: r["median_seconds"]) if rs else None


def speedups(rows):
    """Per (case, dtype, task): fastest accurate minstab row vs PyHessian (stock / patched) and
    the best JAX peer (matfree, scipy); for the trace, minstab at a standard error <= PyHessian's."""
    out = []
    for case, dt, task in sorted({(r["case"], r["dtype"], r["task"]) for r in rows}):
        rs = [r for r in rows if (r["case"], r["dtype"], r["task"]) == (case, dt, task)]
        ph = _fastest(rs, lambda m: m.startswith("pyhessian") and "patched" not in m)
        php = _fastest(rs, lambda m: m.startswith("pyhessian") and "patched" in m)
        jx = _fastest(rs, lambda m: m.startswith(("matfree", "scipy")))
        ours = [r for r in rs if r.get("reached") and r["method"].startswith("minstab:")]
        if task == "trace" and ph is not None:
            # equal standard error: a measured stderr <= PyHessian's, or Hutchinson with at
            # least as many probes (the same estimator: the same variance in expectation)
            ours = [r for r in ours if r["stderr"] <= ph["stderr"] * (1 + 1e-9)
                    or ("hutchinson" in r["method"] and r["matvecs"] >= ph["matvecs"])]  # fmt: skip
        if not ours:
            out.append(dict(case=case, dtype=dt, task=task, minstab_best=None))
            continue
        best = min(ours, key=lambda r: r["median_seconds"])
        e = dict(case=case, dtype=dt, task=task, minstab_best=best["method"],
                 minstab_seconds=best["median_seconds"])  # fmt: skip
        for key, peer in (("pyhessian", ph), ("pyhessian_patched", php), ("best_jax", jx)):
            if peer is not None:
                e[f"vs_{key}"] = peer["median_seconds"] / best["median_seconds"]
                e[f"{key}_method"] = peer["method"]
        if php is None:  # patched PyHessian ran out of iterations before 1e-6: a lower bound
            short = [r for r in rs if "patched" in r["method"] and not r.get("reached")]
            if short:
                slow = max(short, key=lambda r: r["median_seconds"])
                e["vs_pyhessian_patched_at_least"] = slow["median_seconds"] / best["median_seconds"]
        out.append(e)
    return out


def markdown(rows, cases, ratios) -> str:
    """Markdown tables: every row, the speedups, the cases."""
    lines = ["| case | dtype | task | method | median s | rel. error | ok | matvecs | note |",
             "|---|---|---|---|---:|---:|:-:|---:|---|"]  # fmt: skip
    for r in rows:
        extra = f"; se {r['stderr']:.3g}" if "stderr" in r else ""
        lines.append(
            f"| {r['case']} | {r['dtype']} | {r['task']} | {r['method']} | "
            f"{r['median_seconds']:.4g} | {r['rel_error']:.1e} | {'✓' if r['reached'] else '✗'} | "
            f"{r['matvecs']} | {r['note']}{extra} |"
        )
    lines += ["", "| case | dtype | task | fastest accurate minstab | s | × PyHessian (stock) | "
              "× PyHessian (patched normalization) | × best JAX peer |",
              "|---|---|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for e in ratios:
        if e["minstab_best"] is None:
            lines.append(
                f"| {e['case']} | {e['dtype']} | {e['task']} | none accurate | – | – | – | – |"
            )
            continue

        def fmt(key):
            if f"vs_{key}" in e:
                return f"{e[f'vs_{key}']:.1f}"
            if f"vs_{key}_at_least" in e:
                return f"> {e[f'vs_{key}_at_least']:.1f} (not ≤ 1e-6 within its iterations)"
            return "no accurate row"

        jx = f"{fmt('best_jax')} ({e.get('best_jax_method', '–')})"
        lines.append(f"| {e['case']} | {e['dtype']} | {e['task']} | {e['minstab_best']} | "
                     f"{e['minstab_seconds']:.4g} | {fmt('pyhessian')} | {fmt('pyhessian_patched')} "
                     f"| {jx} |")  # fmt: skip
    lines += ["", "| case | model | n | dtype | architecture | P | top-5 (float64 reference) | "
              "trace (exact) |", "|---|---|---:|---|---|---:|---|---:|"]  # fmt: skip
    for c in cases:
        top = ", ".join(f"{v:.8g}" for v in c["top5"])
        lines.append(f"| {c['case']} | {c['model']} | {c['n']} | {c['dtype']} | "
                     f"{c.get('arch', '')} | {c['P']} | {top} | {c['trace']:.8g} |")  # fmt: skip
    return "\n".join(lines) + "\n"
