"""Spectrum benchmark (benchmarks/spectrum.py): every peer's answer on a tiny model vs dense eigvalsh.

Needs the ``bench`` extra (torch, pyhessian, matfree); skips with the reason otherwise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

pytest.importorskip("torch", reason="bench extra not installed (torch)")
pytest.importorskip("pyhessian", reason="bench extra not installed (pyhessian)")
pytest.importorskip("matfree", reason="bench extra not installed (matfree)")

import torch  # noqa: E402

from benchmarks import spectrum as S  # noqa: E402
from benchmarks.peers import jax_peers, torch_peers  # noqa: E402


def relu_mlp(params, x):
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b[None, :])
    w, b = params[-1]
    return x @ w + b[None, :]


@pytest.fixture(scope="module")
def tiny():
    """A 6-12-3 ReLU MLP on 10 points (P = 123), its torch twin, the dense Hessian."""
    ks = jax.random.split(jax.random.key(0), 4)
    params = [
        (jax.random.normal(ks[0], (6, 12), jnp.float64) / 2, 0.1 * jnp.ones(12, jnp.float64)),
        (jax.random.normal(ks[1], (12, 3), jnp.float64) / 3, jnp.zeros(3, jnp.float64)),
    ]
    x = jax.random.normal(ks[2], (10, 6), jnp.float64)
    y = jax.random.normal(ks[3], (10, 3), jnp.float64)
    flat, unravel = ravel_pytree(params)
    h = jax.hessian(lambda t: 0.5 * jnp.sum((relu_mlp(unravel(t), x) - y) ** 2) / 10)(flat)
    net = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3))
    net = net.to(torch.float64)
    with torch.no_grad():
        for m, (w, b) in zip([net[0], net[2]], params, strict=True):
            m.weight.copy_(torch.as_tensor(np.array(w).T))
            m.bias.copy_(torch.as_tensor(np.array(b)))
    xt, yt = torch.as_tensor(np.array(x)), torch.as_tensor(np.array(y))
    return params, x, y, np.linalg.eigvalsh(np.asarray(h)), net, xt, yt


def test_models_match_their_torch_twins():
    for kind in ("mlp", "cnn"):
        p = S.init(kind, jax.random.key(0))
        x = jax.random.normal(jax.random.key(1), (3, 784) if kind == "mlp" else (3, 28, 28, 1))
        x = x.astype(jnp.float64)
        apply = S.mlp_apply if kind == "mlp" else S.cnn_apply
        out = S.torch_net(kind, p, "float64")(S.torch_inputs(kind, x, "float64")).detach().numpy()
        np.testing.assert_allclose(out, apply(p, x), rtol=1e-10, atol=1e-12)
        if kind == "cnn":
            np.testing.assert_allclose(S.cnn_apply_lax_conv(p, x), apply(p, x), atol=1e-12)


def test_exact_trace_identity_for_relu_nets(tiny):
    params, x, _, evals, *_ = tiny
    np.testing.assert_allclose(S.exact_trace(relu_mlp, params, x), evals.sum(), rtol=1e-10)


def test_peers_are_correct(tiny):
    params, x, y, evals, net, xt, yt = tiny
    top = evals[::-1][:3]
    theta, hvp = jax_peers.make_flat_hvp(relu_mlp, params)
    vals, _ = jax_peers.scipy_eigsh_top(theta, hvp, x, y, k=3, tol=1e-12)
    np.testing.assert_allclose(vals, top, rtol=1e-9)
    vals, _ = jax_peers.matfree_top(theta, hvp, x, y, k=3, depth=100)  # < P: no breakdown
    np.testing.assert_allclose(vals, top, rtol=1e-8)
    vals, mv = torch_peers.pyhessian_top(
        net, xt, yt, dtype="float64", top_n=2, tol=1e-12, max_iter=3000, patched=True
    )
    np.testing.assert_allclose(vals, top[:2], rtol=1e-6)
    assert mv > 0
    tr = evals.sum()
    for mean, sem, num in (
        torch_peers.pyhessian_trace(net, xt, yt, dtype="float64", num_samples=200),
        jax_peers.matfree_hutchinson(theta, hvp, x, y, num_samples=200),
    ):
        assert num == 200 and abs(mean - tr) <= 4 * sem
    span = evals[-1] - evals[0]
    for nodes, weights in (
        torch_peers.pyhessian_density(net, xt, yt, dtype="float64", iters=20, n_v=2),
        jax_peers.matfree_slq(theta, hvp, x, y, num_probes=2, depth=20),
    ):
        assert nodes.shape == (2, 20)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-8)
        assert nodes.min() >= evals[0] - 1e-6 * span and nodes.max() <= evals[-1] + 1e-6 * span


def test_speedups_and_markdown():
    rows = [
        dict(case="c", dtype="float64", task="trace", method="pyhessian trace", reached=True,
             median_seconds=30.0, stderr=2.0, rel_error=0.01, matvecs=100, note=""),
        dict(case="c", dtype="float64", task="trace", method="minstab:hessian_trace hutch++",
             reached=True, median_seconds=3.0, stderr=1.0, rel_error=0.01, matvecs=60, note=""),
        dict(case="c", dtype="float64", task="trace", method="minstab:hessian_trace hutchinson",
             reached=True, median_seconds=1.0, stderr=3.0, rel_error=0.01, matvecs=10, note=""),
        dict(case="c", dtype="float64", task="top1", method="minstab:hessian_eigenvalues",
             reached=True, median_seconds=1.0, rel_error=1e-9, matvecs=10, note=""),
        dict(case="c", dtype="float64", task="top1", method="matfree lanczos", reached=True,
             median_seconds=2.0, rel_error=1e-9, matvecs=10, note=""),
    ]  # fmt: skip
    ratios = {e["task"]: e for e in S.speedups(rows)}
    # the hutchinson row is faster but its standard error is above PyHessian's: not comparable
    assert ratios["trace"]["minstab_best"] == "minstab:hessian_trace hutch++"
    assert ratios["trace"]["vs_pyhessian"] == pytest.approx(10.0)
    assert ratios["top1"]["vs_best_jax"] == pytest.approx(2.0)
    cases = [dict(case="c", model="mlp", n=10, dtype="float64", P=5, top5=[1.0] * 5, trace=3.0)]
    text = S.markdown(rows, cases, list(ratios.values()))
    assert "hutch++" in text and "| c | mlp | 10 |" in text
