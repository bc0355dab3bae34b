"""Item 4 of issue 32: Flax NNX models on the whole Fashion-MNIST training set vs a subset.

An MLP 784-512-512-10 and a small CNN (conv 3x3/2 8 ch, conv 3x3/2 16 ch, dense 10, ReLU),
written in Flax NNX and handed to minstab by ``ms.from_flax_nnx``; each trained for one epoch
of Adam (lr 1e-3, batches of 128, seed 0) on the cross-entropy. At the trained weights, over
all 60 000 training images (``data_batch_size=2000``) and over the first 1 000 of them (the
usual subsample), float32:

- top-5 Hessian eigenvalues (``hessian_eigenvalues(k=5)``; the first is the sharpness),
- per-layer sharpness (``block_sharpness(blocks="layer")``) and trace
  (``hessian_trace(per_block="layer")``, Hutch++ with 30 products per layer),

and how far the subset's values are from the full data's (relative difference). Checks (exit 1
if one fails): every Lanczos run converged; each top-5 pair has ``||H v - lambda v|| <= 1e-3
lambda_1`` with H v recomputed by an independent host loop over the batches; Cauchy
interlacing (no layer's sharpness above the whole Hessian's); the CNN's convolutions equal
``nnx.Conv``'s.

The CNN's convolutions are :class:`SliceConv`: an ``nnx.Module`` with ``nnx.Conv``'s kernel
and bias (same shapes, same initialization) that computes the 3x3 stride-2 SAME convolution as
nine strided slices and one matmul. With ``nnx.Conv`` (XLA:CPU's convolution) one Hessian-vector
product over 2 000 images took 1.46 s against 0.36 s with the slices (2026-12-07 17:45 UTC, this
2-core machine under load), so 60 000 images x ~270 products would have taken hours. The
outputs agree to float32 rounding (checked on every run: ``conv_vs_nnx_conv``).

    python benchmarks/real_models.py --out benchmarks/results           # full (about an hour)
    python benchmarks/real_models.py --n 2000 --subset 200 --out DIR    # small

``--only mlp`` / ``--only cnn`` adds that model to an existing ``real_models.json``;
``--random-subsets K`` adds K random subsets of ``--subset`` images (seeds 1..K; the spread of
the subsample's error), and with ``--reuse-full --only NAME`` to a stored run, without the
full-data part again (the model is retrained, deterministically: checked by recomputing the
first subset). ``--merge A.json B.json --out DIR`` combines runs made apart (e.g. the two
models in two processes; ``B.json:cnn`` takes one model of a file) into one
``real_models.json`` with the checks over all.
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


def models():
    import jax
    import jax.numpy as jnp
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.l1 = nnx.Linear(784, 512, rngs=rngs)
            self.l2 = nnx.Linear(512, 512, rngs=rngs)
            self.l3 = nnx.Linear(512, 10, rngs=rngs)

        def __call__(self, x):
            x = x.reshape(x.shape[0], -1)
            return self.l3(jax.nn.relu(self.l2(jax.nn.relu(self.l1(x)))))

    class SliceConv(nnx.Module):
        """``nnx.Conv(cin, cout, (3, 3), strides=2)`` (SAME padding) as 9 slices and a matmul."""

        def __init__(self, cin, cout, rngs):
            ref = nnx.Conv(cin, cout, (3, 3), strides=2, rngs=rngs)
            self.kernel, self.bias = ref.kernel, ref.bias  # (3, 3, cin, cout), (cout,)

        def __call__(self, x):
            n, h, w, c = x.shape
            ho, wo = -(-h // 2), -(-w // 2)  # SAME: ceil(h / stride)
            ph, pw = max(2 * (ho - 1) + 3 - h, 0), max(2 * (wo - 1) + 3 - w, 0)
            xp = jnp.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
            cols = [xp[:, i : i + 2 * ho - 1 : 2, j : j + 2 * wo - 1 : 2, :]
                    for i in range(3) for j in range(3)]  # fmt: skip
            patches = jnp.concatenate(cols, axis=-1)  # (n, ho, wo, 9 c) in (i, j, c) order
            return patches @ self.kernel[...].reshape(9 * c, -1) + self.bias[...][None, None, None]

    class CNN(nnx.Module):
        def __init__(self, rngs, conv=SliceConv):
            self.conv1 = conv(1, 8, rngs)
            self.conv2 = conv(8, 16, rngs)
            self.dense = nnx.Linear(7 * 7 * 16, 10, rngs=rngs)

        def __call__(self, x):
            x = jax.nn.relu(self.conv2(jax.nn.relu(self.conv1(x))))
            return self.dense(x.reshape(x.shape[0], -1))

    def reference_cnn(rngs):  # the same CNN with nnx.Conv, for the check
        return CNN(rngs, lambda i, o, r: nnx.Conv(i, o, (3, 3), strides=2, rngs=r))

    return {"mlp": MLP(nnx.Rngs(0)), "cnn": CNN(nnx.Rngs(0))}, reference_cnn


def conv_vs_nnx_conv(params, apply, reference_cnn, x) -> float:
    """Max |CNN(x) - the same CNN with nnx.Conv(x)| / max |...| at the weights ``params``."""
    import jax.numpy as jnp
    from flax import nnx

    import minstab as ms

    _, ref_apply = ms.from_flax_nnx(reference_cnn(nnx.Rngs(0)))  # same parameter paths, shapes
    a, b = apply(params, x), ref_apply(params, x)
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


def train(params, apply, x, y, *, seed=0, batch=128):
    import jax
    import optax

    import minstab as ms

    opt = optax.adam(1e-3)
    perm = np.random.default_rng(seed).permutation(x.shape[0])
    steps = x.shape[0] // batch
    xb = x[perm[: steps * batch]].reshape(steps, batch, *x.shape[1:])
    yb = y[perm[: steps * batch]].reshape(steps, batch, -1)

    @jax.jit
    def epoch(params, state):
        def step(carry, b):
            p, s = carry
            g = jax.grad(lambda q: ms.softmax_cross_entropy(apply(q, b[0]), b[1]))(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (params, state), (xb, yb))[0]

    with jax.numpy_dtype_promotion("standard"):
        return epoch(params, opt.init(params))[0]


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, file=sys.stderr, flush=True)


def residuals(params, apply, x, y, values, vectors, *, batch):
    """``||H v_i - lambda_i v_i|| / |lambda_1|`` with H v summed over batches in a host loop.

    An independent product (``jax.jvp`` of ``jax.grad`` of the loss on each batch, weighted by
    n_b / n, summed in Python), not minstab's compiled batch loop: it certifies the returned
    eigenpairs on the same data.
    """
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    import minstab as ms

    theta, unravel = ravel_pytree(params)

    @jax.jit
    def hvp(xb, yb, v):
        def loss(t):
            return ms.softmax_cross_entropy(apply(unravel(t), xb), yb)

        return jax.jvp(jax.grad(loss), (theta,), (v,))[1]

    n = x.shape[0]
    out = []
    for lam, v in zip(values, vectors, strict=True):
        hv = jnp.zeros_like(theta)
        for s in range(0, n, batch):
            xb, yb = x[s : s + batch], y[s : s + batch]
            hv = hv + hvp(xb, yb, v) * np.asarray(xb.shape[0] / n, theta.dtype)
        out.append(float(jnp.linalg.norm(hv - lam * v)) / abs(float(values[0])))
    return out


def curvature(params, apply, x, y, *, batch):
    import jax

    import minstab as ms

    kw = dict(model=apply, loss=ms.softmax_cross_entropy, data_batch_size=batch)
    seconds = {}
    log(f"  top-5 over {x.shape[0]} images")
    t0 = time.perf_counter()
    top = jax.block_until_ready(ms.hessian_eigenvalues(params, x, y, k=5, **kw))
    seconds["top5"] = time.perf_counter() - t0
    log(f"  per-layer sharpness ({seconds['top5']:.0f} s so far)")
    t0 = time.perf_counter()
    blk = ms.block_sharpness(params, x, y, blocks="layer", full_output=True, **kw)
    blk = jax.block_until_ready(blk)
    seconds["layer_sharpness"] = time.perf_counter() - t0
    log(f"  per-layer trace ({seconds['layer_sharpness']:.0f} s)")
    t0 = time.perf_counter()
    tr = ms.hessian_trace(params, x, y, key=jax.random.key(0), num_samples=30,
                          per_block="layer", **kw)  # fmt: skip
    tr = jax.block_until_ready(tr)
    seconds["layer_trace"] = time.perf_counter() - t0
    log(f"  residual check ({seconds['layer_trace']:.0f} s)")
    t0 = time.perf_counter()
    res = residuals(params, apply, x, y, top.values, top.vectors, batch=batch)
    seconds["residual_check"] = time.perf_counter() - t0
    return {
        "n": int(x.shape[0]),
        "top5": [float(v) for v in top.values],
        "top5_converged": bool(top.converged.all()),
        "top5_residual": res,
        "hvps_top5": int(top.num_matvecs),
        "layer_sharpness": {k: float(v) for k, v in blk.value.items()},
        "layer_sharpness_converged": all(bool(v) for v in blk.converged.values()),
        "layer_trace": {k: float(v) for k, v in tr.value.items()},
        "layer_trace_stderr": {k: float(v) for k, v in tr.stderr.items()},
        "seconds": seconds,
    }


RESIDUAL_MAX = 1e-3  # float32: ||H v - lambda v|| / lambda_1 of each top-5 pair (fixed upfront)


def checks(models: dict) -> dict:
    """What must hold on every run: converged, certified eigenpairs, Cauchy interlacing."""
    from minstab.experiments.outcomes import check

    runs = [(m, part, r[part]) for m, r in models.items() for part in ("full", "subset")]
    runs += [(m, f"random{c['seed']}", c) for m, r in models.items()
             for c in r.get("random_subsets", [])]  # fmt: skip
    worst = max((max(c["top5_residual"]), m, p) for m, p, c in runs)
    gap = max((max(c["layer_sharpness"].values()) / c["top5"][0], m, p) for m, p, c in runs)
    conv = [f"{m}/{p}" for m, p, c in runs
            if not (c["top5_converged"] and c["layer_sharpness_converged"])]  # fmt: skip
    conv_err = [r["conv_vs_nnx_conv"] for r in models.values() if "conv_vs_nnx_conv" in r]
    found = {
        "converged": check(
            not conv, "not converged: " + (", ".join(conv) or "none"), covered=len(runs)
        ),  # fmt: skip
        "top5_residual": check(
            worst[0] <= RESIDUAL_MAX,
            f"max ||Hv - lambda v|| / lambda_1 = {worst[0]:.2e} ({worst[1]}/{worst[2]}; "
            f"host-loop products) <= {RESIDUAL_MAX:g}",
            covered=len(runs),
        ),
        "interlacing": check(
            gap[0] <= 1 + 1e-4,
            f"max_b lambda_max(H_bb) / lambda_max(H) = {gap[0]:.4f} ({gap[1]}/{gap[2]}) <= 1",
            covered=len(runs),
        ),
    }
    again = [r["retrained_subset_top5_max_rel_diff"] for r in models.values()
             if "retrained_subset_top5_max_rel_diff" in r]  # fmt: skip
    if again:  # only with --reuse-full: the random subsets were measured at the same weights
        found["retrained_same_weights"] = check(
            max(again) <= 1e-5,
            f"retrained: the first subset's top-5 within {max(again):.1e} of the stored ones "
            "<= 1e-5",
            covered=len(again),
        )
    if conv_err:  # only when the CNN ran
        found["conv_vs_nnx_conv"] = check(
            max(conv_err) <= 1e-5,
            f"max |CNN - CNN with nnx.Conv| / max |CNN with nnx.Conv| = {max(conv_err):.1e} "
            "(trained weights, first 100 images) <= 1e-5",
            covered=len(conv_err),
        )
    return found


PROTOCOL = {
    "train": "one epoch of Adam, lr 1e-3, batches of 128 (permutation seed 0), cross-entropy",
    "curvature": "float32; hessian_eigenvalues(k=5), block_sharpness(blocks='layer'), "
    "hessian_trace(per_block='layer', Hutch++, 30 products per layer, key 0); "
    "data_batch_size=2000",
    "subset": "the first --subset training images",
    "changes": [
        "2026-12-07: the CNN's convolutions as SliceConv (9 strided slices and a matmul, "
        "nnx.Conv's parameters) instead of nnx.Conv: XLA:CPU's convolution made one product "
        "over 2 000 images take 1.46 s (slices 0.36 s); MLP first (was CNN first); the "
        "top-5 residual, interlacing and convolution checks added",
    ],
}


def machine() -> dict:
    """Where the numbers come from: cores, load, versions."""
    import flax
    import jax

    return {
        "cpus": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "flax": flax.__version__,
        "numpy": np.__version__,
        "device": str(jax.devices()[0]),
    }


def vs_full(f: dict, s: dict) -> dict:
    """The subset's relative differences from the full data: s / f - 1, quantity by quantity."""
    return {
        "top5": [b / a - 1 for a, b in zip(f["top5"], s["top5"], strict=True)],
        "layer_sharpness": {k: s["layer_sharpness"][k] / v - 1
                            for k, v in f["layer_sharpness"].items()},
        "layer_trace": {k: s["layer_trace"][k] / v - 1 for k, v in f["layer_trace"].items()},
    }  # fmt: skip


def merge(paths, out: Path) -> int:
    """Write the models of several runs (each with its own machine and args) as one run."""
    from minstab.experiments.outcomes import exit_status, format_checks, to_json

    runs, models = [], {}
    for spec in map(str, paths):  # PATH, or PATH:MODEL for one model of that file
        file, _, only = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
        runs.append(json.loads(Path(file).read_text()))
        stored = runs[-1]["models"]
        models.update({only: stored[only]} if only else stored)
    merged = {"machine": runs[-1]["machine"], "protocol": runs[-1]["protocol"],
              "merged_from": [str(p) for p in paths], "models": models}  # fmt: skip
    found = checks(models)
    merged.update(to_json(found, {}))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merged, indent=2) + "\n")
    print(format_checks(found))
    return exit_status(found)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60_000)
    ap.add_argument("--subset", type=int, default=1_000)
    ap.add_argument("--batch", type=int, default=2_000)
    ap.add_argument("--only", choices=["mlp", "cnn"], default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--random-subsets", type=int, default=0, metavar="K",
                    help="also K random subsets of --subset images (seeds 1..K)")  # fmt: skip
    ap.add_argument("--reuse-full", action="store_true",
                    help="with --only: keep the stored full-data values; retrain, recompute the "
                    "first subset (checked equal to the stored one) and add --random-subsets")  # fmt: skip
    ap.add_argument("--merge", nargs="+", default=None, metavar="JSON[:MODEL]",
                    help="combine the models of these real_models.json files (later ones win; "
                    "FILE:mlp takes that model alone) into --out/real_models.json, with the "
                    "checks over all of them")  # fmt: skip
    args = ap.parse_args(argv)
    if args.reuse_full and not (args.only and args.out):
        ap.error("--reuse-full needs --only and --out (the stored run)")
    if args.merge:
        if args.out is None:
            ap.error("--merge needs --out")
        return merge(args.merge, args.out / "real_models.json")

    import jax
    import jax.numpy as jnp

    import minstab as ms
    from minstab.experiments.outcomes import exit_status, format_checks, to_json

    images, labels = ms.load_mnist(ms.images.find_dataset("fashion-mnist"))
    x = jnp.asarray(images[: args.n, :, :, None] / 255.0, jnp.float32)
    y = jax.nn.one_hot(jnp.asarray(labels[: args.n]), 10, dtype=jnp.float32)
    path = None if args.out is None else args.out / "real_models.json"
    out = {"machine": machine(), "protocol": PROTOCOL, "models": {}}
    if args.only and path is not None and path.exists():  # add to the stored run
        out["models"] = json.loads(path.read_text())["models"]
    order = ["mlp", "cnn"] if args.only is None else [args.only]
    mods, reference_cnn = models()
    for name in order:
        module = mods[name]
        params, apply = ms.from_flax_nnx(module)
        size = sum(a.size for a in jax.tree_util.tree_leaves(params))
        log(f"{name}: {size} parameters, one epoch of Adam on {x.shape[0]} images")
        t0 = time.perf_counter()
        params = train(params, apply, x, y)
        res = {"params": int(size), "train_seconds": time.perf_counter() - t0,
               "machine": machine(), "args": vars(args) | {"out": None}}  # fmt: skip
        if args.reuse_full:
            stored = out["models"][name]
            log(f"{name}: first subset of {args.subset} again (stored full-data values kept)")
            again = curvature(params, apply, x[: args.subset], y[: args.subset],
                              batch=args.batch)  # fmt: skip
            stored["reuse_run"] = {k: res[k] for k in ("train_seconds", "machine", "args")}
            stored["retrained_subset_top5_max_rel_diff"] = max(
                abs(b / a - 1) for a, b in zip(stored["subset"]["top5"], again["top5"], strict=True)
            )
            res = stored
        else:
            if name == "cnn":
                res["conv_vs_nnx_conv"] = conv_vs_nnx_conv(params, apply, reference_cnn, x[:100])
            res["full"] = curvature(params, apply, x, y, batch=args.batch)
            log(f"{name}: subset of {args.subset}")
            res["subset"] = curvature(params, apply, x[: args.subset], y[: args.subset],
                                      batch=args.batch)  # fmt: skip
            res["subset_vs_full"] = vs_full(res["full"], res["subset"])
        if args.random_subsets:
            res["random_subsets"] = []
            for seed in range(1, args.random_subsets + 1):
                log(f"{name}: random subset {seed} of {args.random_subsets}")
                pick = np.sort(np.random.default_rng(seed).choice(x.shape[0], args.subset,
                                                                  replace=False))  # fmt: skip
                c = curvature(params, apply, x[pick], y[pick], batch=args.batch)
                c["seed"], c["vs_full"] = seed, vs_full(res["full"], c)
                res["random_subsets"].append(c)
        out["models"][name] = res
        print(json.dumps({name: res}, indent=1), flush=True)
        found = checks(out["models"])
        out.update(to_json(found, {}))
        if path is not None:  # after each model
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(out, indent=2) + "\n")
    print(format_checks(found))
    return exit_status(found)


if __name__ == "__main__":
    sys.exit(main())
