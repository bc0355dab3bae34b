"""Full-data sharpness (issue 32): the MLP 784-512-512-10 over all 60 000 Fashion-MNIST images.

minstab: ``ms.sharpness(..., data_batch_size=B)`` (Lanczos on Hessian-vector products that are
sums over batches in one compiled loop, float32). Peer: PyHessian's dataloader mode
(``hessian(model, criterion, dataloader=...)``: power iteration, a double-backward HVP per
batch, tol 1e-3), on the same weights, data and batches (torch float32, 2 threads).

Answers are checked before any time is reported: the reference is the float64 sharpness of the
float32 net over the same 60 000 images (batched Lanczos at tol 1e-9, warm-started from
minstab's float32 eigenvector, so its residual certificate is independent of the float32 run);
a row whose relative error exceeds 1e-3 is marked ✗ and kept out of the speedup.

Loss: softmax cross-entropy with one-hot labels (PyHessian's ``nn.CrossEntropyLoss``); inputs
scaled to [0, 1]; the net is trained for one epoch of Adam (lr 1e-3, batches of 128, seed 0),
cached in ``benchmarks/.cache/full_data_mlp.npz``.

    python benchmarks/full_data.py --out benchmarks/results          # everything (~15 min)
    /usr/bin/time -v python benchmarks/full_data.py --only minstab   # the target: time, memory
    python benchmarks/full_data.py --quick --out DIR                 # 6 000 images (CI-sized)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"
SIZES = (784, 512, 512, 10)
BATCH = 2_000  # both tools' batch


def load(n: int | None):
    import minstab as ms

    images, labels = ms.load_mnist(ms.images.find_dataset("fashion-mnist"))
    n = images.shape[0] if n is None else n
    x = (images[:n].reshape(n, -1) / 255.0).astype(np.float32)
    return x, labels[:n].astype(np.int64)


def apply(params, x):
    import jax

    h = x
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"][None, :])
    return h @ params[-1]["w"] + params[-1]["b"][None, :]


def trained_params(x, labels):
    """One epoch of Adam on the cross-entropy (cached): a net in the middle of training."""
    import jax
    import jax.numpy as jnp
    import optax

    import minstab as ms

    path = CACHE / "full_data_mlp.npz"
    if path.exists():
        z = np.load(path)
        return [{"w": jnp.asarray(z[f"w{i}"]), "b": jnp.asarray(z[f"b{i}"])} for i in range(3)]
    keys = jax.random.split(jax.random.key(0), 3)
    params = [
        {
            "w": jax.random.normal(k, (a, b), jnp.float32) * np.float32(np.sqrt(2 / a)),
            "b": jnp.zeros(b, jnp.float32),
        }
        for k, a, b in zip(keys, SIZES[:-1], SIZES[1:], strict=True)
    ]
    opt = optax.adam(1e-3)
    y = jax.nn.one_hot(labels, 10, dtype=jnp.float32)
    perm = np.random.default_rng(0).permutation(x.shape[0])
    steps = x.shape[0] // 128
    xb = jnp.asarray(x[perm[: steps * 128]].reshape(steps, 128, -1))
    yb = y[perm[: steps * 128]].reshape(steps, 128, 10)

    @jax.jit
    def epoch(params, state):
        def step(carry, batch):
            p, s = carry
            g = jax.grad(lambda q: ms.softmax_cross_entropy(apply(q, batch[0]), batch[1]))(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (params, state), (xb, yb))[0]

    with jax.numpy_dtype_promotion("standard"):
        params, _ = epoch(params, opt.init(params))
    CACHE.mkdir(exist_ok=True)
    np.savez(path, **{f"{k}{i}": np.asarray(l[k]) for i, l in enumerate(params) for k in "wb"})
    return params


def run_minstab(params, x, y, *, batch):
    """The full-data sharpness and its wall time, compilation included."""
    import jax

    import minstab as ms

    kw = dict(model=apply, loss=ms.softmax_cross_entropy, data_batch_size=batch, full_output=True)
    t0 = time.perf_counter()
    r = ms.sharpness(params, x, y, **kw)
    jax.block_until_ready(r)
    cold = time.perf_counter() - t0
    return r, cold


def run_reference(params, x, y, v0, *, batch):
    """float64 sharpness of the float32 net, warm-started from minstab's eigenvector."""
    import jax
    import jax.numpy as jnp

    import minstab as ms

    with jax.enable_x64(True):
        p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
        r = ms.sharpness(
            p64, jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.float64), model=apply,
            loss=ms.softmax_cross_entropy, data_batch_size=batch, full_output=True,
            v0=jnp.asarray(v0, jnp.float64), tol=1e-9, method="lanczos",
        )  # fmt: skip
        return float(r.value), float(r.residual), bool(r.converged), int(r.num_matvecs)


def run_pyhessian(params, x, labels, *, batch, tol=1e-3):
    import torch
    from pyhessian import hessian
    from torch import nn

    torch.set_num_threads(os.cpu_count() or 2)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
    )
    with torch.no_grad():
        for i, layer in enumerate(net[::2]):
            layer.weight.copy_(torch.as_tensor(np.array(params[i]["w"]).T))
            layer.bias.copy_(torch.as_tensor(np.array(params[i]["b"])))
    ds = torch.utils.data.TensorDataset(torch.as_tensor(x), torch.as_tensor(labels))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=False)
    import pyhessian.hessian  # noqa: F401

    mod = sys.modules["pyhessian.hessian"]
    count = [0]
    orig = mod.hessian.dataloader_hv_product

    def counted(self, v):
        count[0] += 1
        return orig(self, v)

    mod.hessian.dataloader_hv_product = counted
    try:
        t0 = time.perf_counter()
        h = hessian(net, nn.CrossEntropyLoss(), dataloader=loader, cuda=False)
        top, _ = h.eigenvalues(top_n=1, tol=tol, maxIter=100)
        seconds = time.perf_counter() - t0
    finally:
        mod.hessian.dataloader_hv_product = orig
    return float(top[0]), seconds, count[0]


def hvp_cpu_seconds(params, x_np, labels, *, batch, repeats=2):
    """Process CPU seconds of one full-data HVP, minstab (batched, compiled) vs PyHessian.

    CPU time, unlike wall time, hardly moves when other jobs share the cores; each tool's
    product is timed ``repeats`` times after one untimed call.
    """
    import jax
    import jax.numpy as jnp
    import torch
    from pyhessian import hessian
    from torch import nn

    import minstab as ms
    from minstab.engine.batching import curvature_operator

    x = jnp.asarray(x_np)
    y = jax.nn.one_hot(jnp.asarray(labels), 10, dtype=jnp.float32)
    f = jax.jit(lambda v, p, x, y: curvature_operator(
        p, x, y, model=apply, loss=ms.softmax_cross_entropy, curvature="hessian",
        batch_size=batch)[1](v))  # fmt: skip
    v = jax.random.normal(jax.random.key(0), (669_706,), jnp.float32)
    jax.block_until_ready(f(v, params, x, y))
    out = {"minstab": [], "pyhessian": []}
    for _ in range(repeats):
        c = time.process_time()
        jax.block_until_ready(f(v, params, x, y))
        out["minstab"].append(time.process_time() - c)
    torch.set_num_threads(os.cpu_count() or 2)
    net = nn.Sequential(
        nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
    )
    with torch.no_grad():
        for i, layer in enumerate(net[::2]):
            layer.weight.copy_(torch.as_tensor(np.array(params[i]["w"]).T))
            layer.bias.copy_(torch.as_tensor(np.array(params[i]["b"])))
    ds = torch.utils.data.TensorDataset(torch.as_tensor(x_np), torch.as_tensor(labels))
    h = hessian(net, nn.CrossEntropyLoss(),
                dataloader=torch.utils.data.DataLoader(ds, batch_size=batch), cuda=False)  # fmt: skip
    vt = [torch.randn(p.size()) for p in h.params]
    for _ in range(repeats):
        c = time.process_time()
        h.dataloader_hv_product(vt)
        out["pyhessian"].append(time.process_time() - c)
    return out


def machine() -> dict:
    import jax
    import torch

    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "torch": torch.__version__,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--quick", action="store_true", help="6 000 images")
    ap.add_argument("--only", choices=["minstab", "hvp-cpu", "all"], default="all")
    ap.add_argument("--batch", type=int, default=BATCH)
    args = ap.parse_args(argv)

    import jax
    import jax.numpy as jnp

    t_start = time.perf_counter()
    x_np, labels = load(6_000 if args.quick else None)
    params = trained_params(*load(None)) if not args.quick else trained_params(x_np, labels)
    x = jnp.asarray(x_np)
    y = jax.nn.one_hot(jnp.asarray(labels), 10, dtype=jnp.float32)
    if args.only == "hvp-cpu":
        cpu = hvp_cpu_seconds(params, x_np, labels, batch=args.batch)
        print(json.dumps({"cpu_seconds_per_hvp": cpu}))
        return 0
    r, cold = run_minstab(params, x, y, batch=args.batch)
    n = x.shape[0]
    print(
        f"minstab: n = {n}, sharpness {float(r.value):.6g}, {int(r.num_matvecs)} HVPs, "
        f"converged {bool(r.converged)}, {cold:.1f} s (compile included), "
        f"{time.perf_counter() - t_start:.1f} s since start",
        flush=True,
    )
    if args.only == "minstab":
        return 0
    warm = cold  # minutes per call: compilation (seconds) is included, not subtracted
    ref, ref_res, ref_ok, ref_mv = run_reference(params, x_np, np.asarray(y), r.vector,
                                                 batch=args.batch)  # fmt: skip
    print(f"reference float64: {ref:.10g} (residual {ref_res:.2e}, converged {ref_ok}, "
          f"{ref_mv} HVPs)", flush=True)  # fmt: skip
    ph, ph_s, ph_mv = run_pyhessian(params, x_np, labels, batch=args.batch)
    rows = [
        {"method": "minstab.sharpness(data_batch_size)", "value": float(r.value),
         "seconds_cold": cold, "seconds": warm, "matvecs": int(r.num_matvecs)},
        {"method": "pyhessian dataloader, tol=1e-3", "value": ph, "seconds": ph_s,
         "matvecs": ph_mv},
    ]  # fmt: skip
    for row in rows:
        row["rel_error"] = abs(row["value"] - ref) / abs(ref)
        row["accurate"] = row["rel_error"] <= 1e-3
    out = {
        "machine": machine(),
        "case": f"MLP 784-512-512-10, n = {n}, batch {args.batch}, float32, cross-entropy",
        "reference": {"value": ref, "residual": ref_res, "converged": ref_ok, "matvecs": ref_mv},
        "rows": rows,
    }
    if rows[0]["accurate"] and rows[1]["accurate"]:
        out["speedup_vs_pyhessian"] = ph_s / warm
    lines = [
        f"Full-data sharpness, {out['case']} (reference {ref:.8g}, float64)",
        "",
        "| method | value | rel. error | HVPs | seconds |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        mark = "" if row["accurate"] else " ✗"
        lines.append(
            f"| {row['method']} | {row['value']:.7g} | {row['rel_error']:.1e}{mark} | "
            f"{row['matvecs']} | {row['seconds']:.1f} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "full_data.json").write_text(json.dumps(out, indent=2) + "\n")
        (args.out / "full_data.md").write_text(text + "\n")
    return 0 if all(row["accurate"] for row in rows[:1]) and ref_ok else 1


if __name__ == "__main__":
    sys.exit(main())
