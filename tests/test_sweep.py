"""Sweeps: equal to single runs, compile once, resume from chunks, sharded and multi-process."""

import importlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

import minstab as ms
from minstab.engine.sweep import SweepResult, load_sweep, sweep
from minstab.engine.train import train
from tests.helpers import computed_chunks, xla_env

HERE = Path(__file__).parent
ETAS = [0.01, 0.02, 0.03, 0.05, 0.08, 2.0]  # the last one diverges


def compiled_chunks() -> int:
    """Programs in the jit cache of the per-chunk kernel (a retrace adds one)."""
    return importlib.import_module("minstab.engine.sweep")._chunk._cache_size()


def _problem():
    x, y = ms.data.toy_1d(n=6, key=jax.random.key(0), dtype=jnp.float64)
    p = ms.init_shallow(
        jax.random.key(1), 1, 12, knot_range=(float(x.min()), float(x.max())), dtype=jnp.float64
    )
    return p, x, y


@pytest.fixture(scope="module")
def base():
    p, x, y = _problem()
    r = sweep(p, x, y, ETAS, steps=200, log_every=50, tol=1e-12, chunk_size=4, progress=False,
              flattest=False)  # fmt: skip
    return p, x, y, r


def test_chunks_are_even_and_pad_less_than_a_run_per_device():
    """Brute force over run counts, chunk caps and device counts: the fewest chunks of at most
    ``chunk_size`` runs (rounded up to the device count), equal, each a multiple of the device
    count, with less than one padded run per device and chunk. A sweep of 8 step sizes with the
    default ``chunk_size=32`` used to compile a program of 32 runs, 24 of them padding.
    """
    from minstab.engine.sweep import _chunking

    for runs in range(1, 70):
        for cap in range(1, 40):
            for devices in (1, 2, 3, 8):
                chunks, per = _chunking(runs, cap, devices)
                rounded_cap = -(-cap // devices) * devices
                assert per % devices == 0 and per <= rounded_cap
                assert chunks == -(-runs // rounded_cap)  # the fewest chunks the cap allows
                assert (chunks - 1) * per < runs <= chunks * per  # no chunk of padding only
                assert chunks * per - runs < chunks * devices


def test_result_records_the_chunk_size_used(base):
    p, x, y, r = base
    assert r.config["chunk_size"] == 3  # 6 runs, chunk_size=4: two chunks of 3, not 4 + 4


def _assert_same(a: SweepResult, b: SweepResult, rtol=1e-12):
    for f in ("loss", "sharpness", "lower_bound", "weighted_curvature"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=rtol, atol=1e-300)
    for f in ("converged", "diverged", "diverged_at", "converged_at", "steps_run"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    for u, v in zip(a.params, b.params, strict=True):
        np.testing.assert_allclose(u, v, rtol=rtol, atol=1e-14)


def test_each_run_equals_a_single_run(base):
    p, x, y, r = base
    for i, eta in enumerate(ETAS):
        s = train(p, x, y, eta, steps=200, log_every=50, tol=1e-12)
        for u, v in zip(r.params_at(i), s.params, strict=True):
            np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(r.loss[i], s.loss, rtol=1e-12)
        np.testing.assert_allclose(r.log.loss[i], s.log.loss, rtol=1e-12)
        assert bool(r.diverged[i]) == bool(s.diverged)
        assert int(r.diverged_at[i]) == int(s.diverged_at)


def _gauss_newton_top(q, x):
    """lambda_max of the Gauss-Newton matrix J^T J / n, from jax.hessian of a plain jnp net.

    With targets f(theta) itself every residual is zero, so the Hessian of the loss is exactly
    J^T J / n (the residual term r_i * d2f_i vanishes): an independent route to eq. (28) that
    shares no code with minstab's Gram form.
    """
    flat, unravel = jax.flatten_util.ravel_pytree(tuple(q))
    x2 = x.reshape(-1, 1)

    def f(t):
        w1, b1, w2, b2 = unravel(t)
        return jnp.maximum(x2 @ w1.T + b1[None, :], 0.0) @ w2 + b2

    target = jax.lax.stop_gradient(f(flat))
    h = jax.hessian(lambda t: 0.5 * jnp.mean((f(t) - target) ** 2))(flat)
    return float(jnp.linalg.eigvalsh(h)[-1])


# Host threads (``threads=2``) are opt-in and not run here: two concurrent XLA:CPU executions
# deadlocked under load in a full-suite run (see minstab.engine.sweep._choose_threads).
@pytest.mark.parametrize("layout", ["sequential", "batched"])
def test_every_layout_gives_the_same_runs(base, layout):
    """One vmapped program or one loop per run: the same results, and the diverging run (last)
    does not touch its neighbours."""
    p, x, y, r = base
    s = sweep(p, x, y, ETAS, steps=200, log_every=50, tol=1e-12, chunk_size=4, progress=False,
              flattest=False, layout=layout)  # fmt: skip
    assert s.config["layout"] == layout and bool(s.diverged[-1])
    _assert_same(s, r)
    np.testing.assert_allclose(s.log.loss[:-1], r.log.loss[:-1], rtol=1e-12)


def test_per_run_quantities_match_references(base):
    from minstab.shallow.bounds import sharpness_lower_bound, weighted_curvature

    p, x, y, r = base
    for i in np.flatnonzero(~r.diverged):
        q = r.params_at(i)
        # the sweep's sharpness column is the Gauss-Newton lambda_max (eq. 28): equal to the
        # independent dense reference to float64 rounding; a 1e-9 relative error fails
        gn = _gauss_newton_top(q, x)
        assert abs(r.sharpness[i] - gn) <= 1e-10 * gn
        # and its certificate is valid: the exact Hessian is within sharpness_residual
        dense = float(jnp.linalg.eigvalsh(ms.hessian(q, x, y))[-1])
        assert abs(r.sharpness[i] - dense) <= r.sharpness_residual[i] * (1 + 1e-9) + 1e-9
        np.testing.assert_allclose(r.lower_bound[i], sharpness_lower_bound(q, x), rtol=1e-12)
        np.testing.assert_allclose(r.weighted_curvature[i], weighted_curvature(q, x), rtol=1e-12)
        assert r.lower_bound[i] <= r.sharpness[i] * (1 + 1e-12)  # Lemma 4 holds for every theta
    np.testing.assert_allclose(r.two_over_eta, 2 / np.asarray(ETAS))


def test_diverging_run_is_flagged_and_isolated(base):
    p, x, y, r = base
    assert bool(r.diverged[-1]) and int(r.diverged_at[-1]) > 0
    assert np.isnan(r.sharpness[-1]) and not np.any(r.diverged[:-1])
    # neighbours are unaffected: same as a sweep without the diverging step size
    r2 = sweep(p, x, y, ETAS[:-1], steps=200, log_every=50, tol=1e-12, chunk_size=4,
               progress=False, flattest=False)  # fmt: skip
    np.testing.assert_allclose(r.loss[:-1], r2.loss, rtol=1e-12)
    assert "diverged at step" in r.table()


def test_stalled_status_marks_a_point_no_relu_sees(base):
    """A run with a training point where every ReLU is off can't interpolate: 'stalled'."""
    p, x, y, r = base
    assert r.status()[:-1] == ["not converged"] * (len(ETAS) - 1) and r.status()[-1] == "diverged"
    # move every knot to the right of the smallest input, with every neuron facing right: the
    # leftmost point has no active neuron, its pre-activations are all <= 0
    w1 = jnp.abs(p.w1)
    b1 = -w1[:, 0] * (float(x.min()) + 0.1)
    q = p._replace(w1=w1, b1=b1)
    s = sweep(q, x, y, [0.01], steps=50, log_every=50, tol=1e-12, progress=False, flattest=False)
    assert s.uncovered_point().tolist() == [True] and s.status() == ["stalled"]
    assert "stalled" in s.table()
    assert not np.any(r.uncovered_point())


def test_new_step_sizes_do_not_retrace(base):
    p, x, y, _ = base
    sweep(p, x, y, [0.011, 0.022], steps=200, log_every=50, tol=1e-12, chunk_size=4,
          progress=False, flattest=False)  # fmt: skip
    before = compiled_chunks()
    r = sweep(p, x, y, [0.013, 0.027, 0.04, 0.07, 0.09], steps=200, log_every=50, tol=1e-12,
              chunk_size=4, progress=False, flattest=False)  # fmt: skip
    assert compiled_chunks() == before
    assert r.num_runs == 5


def test_batched_initial_points():
    p, x, y = _problem()
    q = ms.init_shallow(jax.random.key(5), 1, 12, dtype=jnp.float64)
    batch = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), p, q)
    r = sweep(batch, x, y, [0.02, 0.03], steps=100, tol=1e-12, chunk_size=2, progress=False,
              flattest=False)  # fmt: skip
    for i, (pi, eta) in enumerate([(p, 0.02), (q, 0.03)]):
        s = train(pi, x, y, eta, steps=100, tol=1e-12)
        np.testing.assert_allclose(r.loss[i], s.loss, rtol=1e-12)
    with pytest.raises(ValueError, match="batch axis"):
        sweep(batch, x, y, [0.1, 0.2, 0.3], steps=10, progress=False)


def test_validation():
    p, x, y = _problem()
    with pytest.raises(ValueError, match="etas"):
        sweep(p, x, y, [0.1, -1.0], steps=10, progress=False)
    with pytest.raises(ValueError, match="chunk_size"):
        sweep(p, x, y, [0.1], steps=10, chunk_size=0, progress=False)
    with pytest.raises(ValueError, match="layout"):
        sweep(p, x, y, [0.1], steps=10, layout="fast", progress=False)
    with pytest.raises(ValueError, match="threads"):
        sweep(p, x, y, [0.1], steps=10, threads=0, progress=False)


def test_save_load_and_resume(base, tmp_path):
    p, x, y, r = base
    r.save(tmp_path / "res")
    with np.load(tmp_path / "res" / "results.npz", allow_pickle=False) as z:
        assert "etas" in z.files
    json.loads((tmp_path / "res" / "results.json").read_text())
    back = load_sweep(tmp_path / "res")
    _assert_same(r, back, rtol=0)
    np.testing.assert_array_equal(back.log.sharpness, r.log.sharpness)
    assert back.config == json.loads(json.dumps(r.config))
    assert SweepResult.load(tmp_path / "res").table() == r.table()
    # chunked run with an out_dir, then resume: nothing recomputed, same results
    kw = dict(steps=200, log_every=50, tol=1e-12, chunk_size=4, progress=False, flattest=False)
    a = sweep(p, x, y, ETAS, out_dir=tmp_path / "run", **kw)
    assert computed_chunks(a) == [0, 1] and a.computed.all()
    files = sorted((tmp_path / "run" / "chunks").glob("chunk_*.npz"))
    assert [f.name for f in files] == ["chunk_0000.npz", "chunk_0001.npz"]
    b = sweep(p, x, y, ETAS, out_dir=tmp_path / "run", **kw)
    assert not b.computed.any()
    _assert_same(a, b, rtol=0)
    _assert_same(a, r)
    # a different sweep in the same directory does not reuse those chunks
    c = sweep(p, x, y, ETAS[:3], out_dir=tmp_path / "run", **kw)
    assert computed_chunks(c) == [0] and c.computed.all()
    np.testing.assert_allclose(c.loss, r.loss[:3], rtol=1e-12)


def _run_worker(out, *extra, env=None):
    cmd = [sys.executable, str(HERE / "_sweep_worker.py"), str(out), *extra]
    e = dict(os.environ, **(env or {}))
    return subprocess.Popen(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sharded_equals_unsharded(base, tmp_path):
    _, _, _, r = base
    env = xla_env("--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = _run_worker(tmp_path, env=env)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    info = json.loads((tmp_path / "worker.json").read_text())
    assert info["devices"] == 4
    _assert_same(load_sweep(tmp_path), r)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(base, tmp_path):
    """jax.distributed on localhost: each process takes every other chunk, results gathered."""
    _, _, _, r = base
    port = str(_free_port())
    env = {"JAX_PLATFORMS": "cpu"}
    procs = [
        _run_worker(tmp_path / f"p{i}", "--port", port, "--pid", str(i), "--chunk", "2", env=env)
        for i in range(2)
    ]
    outs = [pr.communicate(timeout=240)[0] for pr in procs]
    for pr, o in zip(procs, outs, strict=True):
        assert pr.returncode == 0, o
    info = json.loads((tmp_path / "p0" / "worker.json").read_text())
    assert info["processes"] == 2 and info["computed"] == [0, 2]
    _assert_same(load_sweep(tmp_path / "p0"), r)
