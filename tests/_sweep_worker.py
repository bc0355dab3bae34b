"""Subprocess helper for tests/test_sweep*.py: run a tiny sweep and save it.

Usage: python tests/_sweep_worker.py OUT_DIR [--chunks-dir DIR] [--steps N] [--chunk N]
    [--flattest 1] [--port PORT --pid ID]

Honours XLA_FLAGS (e.g. --xla_force_host_platform_device_count=4) for the sharded test.
"""

import json
import sys

import jax

args = sys.argv[1:]
out = args[0]
opts = dict(zip(args[1::2], args[2::2], strict=False))
if "--port" in opts:
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{opts['--port']}",
        num_processes=2,
        process_id=int(opts["--pid"]),
    )
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import minstab as ms  # noqa: E402
from minstab.engine.sweep import sweep  # noqa: E402


def problem():
    """The tiny problem shared by the sweep tests."""
    x, y = ms.data.toy_1d(n=6, key=jax.random.key(0), dtype=jnp.float64)
    p = ms.init_shallow(
        jax.random.key(1), 1, 12, knot_range=(float(x.min()), float(x.max())), dtype=jnp.float64
    )
    return p, x, y


if __name__ == "__main__":
    p, x, y = problem()
    etas = np.asarray(json.loads(opts.get("--etas", "[0.01, 0.02, 0.03, 0.05, 0.08, 2.0]")))
    r = sweep(
        p, x, y, etas, steps=int(opts.get("--steps", 200)), log_every=50,
        tol=float(opts.get("--tol", 1e-12)),
        chunk_size=int(opts.get("--chunk", 4)), out_dir=opts.get("--chunks-dir"),
        progress=False, flattest=opts.get("--flattest") == "1",
    )  # fmt: skip
    if jax.process_index() == 0:
        r.save(out)
        with open(f"{out}/worker.json", "w") as fh:
            json.dump(
                {"computed": sorted({int(i) // int(r.config["chunk_size"])
                                     for i in np.flatnonzero(r.computed)}),
                 "devices": jax.device_count(),
                 "processes": jax.process_count()}, fh,
            )  # fmt: skip
