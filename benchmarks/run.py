"""Run minstab's benchmarks against the tools researchers use today.

    python benchmarks/run.py [--quick] [--out DIR] [--only sharpness|sweep|spectrum|tracking] [--threads N]
                             [--cpu-devices N]

writes ``DIR/sharpness.json``, ``DIR/sweep.json``, ``DIR/spectrum.json`` (machine, versions,
thread settings, rows) and ``DIR/README.md`` (markdown tables). ``--quick`` uses small cases
(CI: sharpness and sweeps < 3 minutes, spectrum a few minutes); the full sharpness and sweep
tables take < 15 min on a 2-core CPU, the full spectrum table about 25 min (``--only
spectrum``). ``--threads N`` gives XLA and torch N threads each (``--threads 1`` on a machine
shared with other jobs, where spinning thread pools slow both down several-fold). Peers need
the ``bench`` extra (torch, pyhessian, matfree). Like the ``minstab`` command line, it exposes
every core as a CPU device (``minstab.use_cpu_cores``), which ``minstab.sweep`` shares its runs
over; the peers run as written, on the first device; ``--cpu-devices 1`` keeps JAX's default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "benchmarks"

import jax  # noqa: E402

from . import _machine  # noqa: E402

jax.config.update("jax_enable_x64", True)


def machine() -> dict:
    """Where the numbers came from (the peers' versions too)."""
    return _machine.machine(_machine.PACKAGES + ("torch", "pyhessian", "matfree"))


def set_threads(n: int) -> None:
    """n threads for XLA's CPU client and torch (XLA's take effect only before JAX's backend is
    initialized, i.e. from the command line; in-process callers get torch's only)."""
    import torch

    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "thread" not in f]
    if n == 1:
        flags.append("--xla_cpu_multi_thread_eigen=false")
    flags.append(f"intra_op_parallelism_threads={n}")
    os.environ["XLA_FLAGS"] = " ".join(flags)
    os.environ["OMP_NUM_THREADS"] = str(n)
    torch.set_num_threads(n)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small cases (CI, < 3 minutes)")
    ap.add_argument("--out", default="bench-out", help="output directory")
    ap.add_argument("--only", choices=("sharpness", "sweep", "spectrum", "tracking"), default=None)
    ap.add_argument("--case", default=None, help="spectrum: only the cases whose name has this")
    ap.add_argument("--dtype", choices=("float64", "float32"), default=None,
                    help="spectrum: only this dtype (default: both)")  # fmt: skip
    ap.add_argument("--task", default=None,
                    help="spectrum: comma-separated tasks among top1,top5,trace,density (default: all)")  # fmt: skip
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for XLA and torch each (default: their own defaults)")  # fmt: skip
    ap.add_argument("--cpu-devices", type=int, default=None,
                    help="CPU devices for minstab.engine.sweep's runs (default: one per core, as the "
                         "minstab command line; 1: JAX's single default device)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.cpu_devices is not None and args.cpu_devices < 1:
        ap.error(f"--cpu-devices: expected a positive integer, got {args.cpu_devices}")
    from minstab.engine.devices import use_cpu_cores

    use_cpu_cores(args.cpu_devices)  # before JAX starts; peers use the first device, as written
    tasks = None
    if args.task is not None:
        from .spectrum import TASKS

        tasks = tuple(t.strip() for t in args.task.split(","))
        if not tasks or not set(tasks) <= set(TASKS):
            ap.error(
                f"--task: expected a comma-separated subset of {','.join(TASKS)}, got {args.task!r}"
            )
    if args.threads is not None:
        set_threads(args.threads)
    from . import sharpness, spectrum, sweeps, tracking

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    t0 = time.perf_counter()
    md = [f"# minstab benchmarks ({'quick' if args.quick else 'full'})", "",
          f"Machine: {info['processor']}, {info['cpu_count']} CPUs, backend {info['backend']} "
          f"({info['device']}, {info['num_devices']} device(s)); {info['date']}", "",
          "Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()), ""]  # fmt: skip
    if args.only in (None, "sharpness"):
        rows, cases = sharpness.run(quick=args.quick)
        ratios = sharpness.speedups(rows)
        (out / "sharpness.json").write_text(json.dumps(
            dict(machine=info, quick=args.quick, target_rel_error=sharpness.TARGET, cases=cases,
                 rows=rows, speedups=ratios), indent=1))  # fmt: skip
        md += ["## Sharpness (relative error vs a float64 reference; target ≤ 1e-6)", "",
               sharpness.markdown(rows, cases, ratios)]  # fmt: skip
    if args.only in (None, "sweep"):
        rows, peak = sweeps.run(quick=args.quick)
        scal = sweeps.scaling(quick=args.quick)
        (out / "sweep.json").write_text(json.dumps(
            dict(machine=info, quick=args.quick, matmul_gflops=peak, rows=rows, scaling=scal),
            indent=1))  # fmt: skip
        md += [
            "## Step-size sweeps (float32, full-batch GD)",
            "",
            sweeps.markdown(rows, scal, peak),
        ]
    if args.only in (None, "spectrum"):

        def save(rows, cases, complete):  # after every case: a long run on a shared machine
            (out / "spectrum.json").write_text(json.dumps(
                dict(machine=info, quick=args.quick, complete=complete,
                     target_rel_error=spectrum.TARGET, cases=cases, rows=rows,
                     speedups=spectrum.speedups(rows)), indent=1))  # fmt: skip

        rows, cases = spectrum.run(
            quick=args.quick,
            checkpoint=lambda r, c: save(r, c, False),
            only=args.case,
            dtypes=(args.dtype,) if args.dtype else ("float64", "float32"),
            **({} if tasks is None else {"tasks": tasks}),
        )
        save(rows, cases, True)
        ratios = spectrum.speedups(rows)
        md += ["## Curvature spectrum of any model (MLP, CNN; target ≤ 1e-6)", "",
               spectrum.markdown(rows, cases, ratios)]  # fmt: skip
    if args.only in (None, "tracking"):
        rows = tracking.run(quick=args.quick)
        (out / "tracking.json").write_text(json.dumps(
            dict(machine=info, quick=args.quick, eta=tracking.ETA, every=tracking.EVERY,
                 rows=rows), indent=1))  # fmt: skip
        md += ["## Sharpness tracking during training (tanh MLP, Fashion-MNIST, float32)", "",
               tracking.markdown(rows)]  # fmt: skip
    md.append(f"Total wall time: {time.perf_counter() - t0:.0f} s")
    (out / "README.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
