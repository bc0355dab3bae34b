"""Reduced in-process run of benchmarks/: every peer's answer is checked (timings are not).

Needs the ``bench`` extra (torch, pyhessian, matfree); skips with the reason otherwise.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("torch", reason="bench extra not installed (torch)")
pytest.importorskip("pyhessian", reason="bench extra not installed (pyhessian)")
pytest.importorskip("matfree", reason="bench extra not installed (matfree)")

from benchmarks import sharpness as S  # noqa: E402
from benchmarks import sweeps as W  # noqa: E402
from benchmarks.peers import jax_peers, torch_peers  # noqa: E402
from minstab.shallow.losses import quadratic_loss  # noqa: E402
from minstab.shallow.nets import ShallowParams  # noqa: E402


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    S.CACHE = tmp_path_factory.mktemp("bench-cache")
    p, x, y, info = S.trained_net("t-uni", 10, 1, 30, 400)
    return p, x, y, info


def test_trained_net_interpolates(net):
    p, x, y, info = net
    assert float(quadratic_loss(p, x, y)) < 1e-20
    assert info["training"].startswith("GD 400 steps")
    p2, *_ = S.trained_net("t-uni", 10, 1, 30, 400)  # from the .npz cache
    np.testing.assert_array_equal(np.asarray(p2.w1), np.asarray(p.w1))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_sharpness_peer_is_correct(net, dtype):
    p64, x64, y64, _ = net
    ref, how = S.reference(p64, x64, y64)
    assert how == "dense eigvalsh"
    jdt = jnp.float64 if dtype == "float64" else jnp.float32
    p = ShallowParams(*(a.astype(jdt) for a in p64))
    x, y = x64.astype(jdt), y64.astype(jdt)
    # PyHessian's own stopping rule (relative change of the Rayleigh quotient) stops early.
    loose = {"pyhessian tol=1e-3": 1e-2, "pyhessian tol=1e-6": 1e-4, "pyhessian tol=1e-9": 1e-4}
    for name, fn, _ in S.methods(int(p.w1.size + 2 * p.b1.size + 1), quick=True):
        val, mv = fn(p, x, y, dtype) if name.startswith("pyhessian") else fn(p, x, y)
        tol = loose.get(name, 1e-6 if dtype == "float64" else 1e-5)
        assert abs(val - ref) <= tol * abs(ref), (name, val, ref)
        assert mv >= 0
    val, *_ = S._matfree_row(p, x, y, ref, 0.1)
    assert abs(val - ref) <= 1e-5 * abs(ref)


def test_sweep_peers_agree():
    p, x, y, etas = W.setup(10, 1, 30, 4)
    steps = 50
    ref = jax_peers.vmap_scan_sweep(p, x, y, etas, steps=steps)
    outs = {
        "minstab.engine.sweep": W._minstab_sweep(p, x, y, etas, steps),
        "scan": jax_peers.scan_sweep(p, x, y, etas, steps=steps),
        "loop": jax_peers.jax_loop_sweep(p, x, y, etas, steps=steps),
        "torch": torch_peers.torch_sweep(p, x, y, etas, steps=steps),
    }
    assert np.all(np.isfinite(ref))
    for name, out in outs.items():
        np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-7, err_msg=name)
    W.check_agreement({"jit(vmap(scan)) jax.grad": (etas, steps, ref), "x": (etas, steps, ref)})


def test_flop_count_and_speedups():
    assert W.flops_per_step(2, 3, 5) == 4 * 2 * 5 * 3 + 14 * 2 * 5
    rows = [
        dict(case="c", dtype="float64", method="minstab:gram", reached=True, median_seconds=1.0),
        dict(case="c", dtype="float64", method="pyhessian tol=1e-6", reached=True,
             median_seconds=30.0),
        dict(case="c", dtype="float64", method="matfree lanczos", reached=True, median_seconds=3.0),
        dict(case="c", dtype="float64", method="scipy eigsh", reached=False, median_seconds=0.1),
    ]  # fmt: skip
    (e,) = S.speedups(rows)
    assert e["vs_pyhessian"] == 30.0 and e["vs_best_jax"] == 3.0


def test_pyhessian_bias_is_its_normalization(net):
    """Stock PyHessian is low by (1 + 1e-6)^-2 - 1 = -2e-6; v / ||v|| removes the bias."""
    p, x, y, _ = net
    ref, _ = S.reference(p, x, y)
    stock, _ = torch_peers.pyhessian_sharpness(p, x, y, dtype="float64", tol=1e-12, max_iter=500)
    fixed, _ = torch_peers.pyhessian_sharpness(
        p, x, y, dtype="float64", tol=1e-12, max_iter=500, patched=True
    )
    assert abs((stock - ref) / ref - ((1 + 1e-6) ** -2 - 1)) < 2e-8
    assert abs(fixed - ref) <= 1e-8 * abs(ref)


def test_speedups_patched_pyhessian_column():
    rows = [
        dict(case="c", dtype="float32", method="minstab:gram", reached=True, median_seconds=1.0),
        dict(case="c", dtype="float32", method="pyhessian tol=1e-9", reached=False,
             median_seconds=2.0),
        dict(case="c", dtype="float32", method="pyhessian tol=1e-9 (patched normalization)",
             reached=True, median_seconds=5.0),
    ]  # fmt: skip
    (e,) = S.speedups(rows)
    assert e["vs_pyhessian"] is None and e["vs_pyhessian_patched"] == 5.0
