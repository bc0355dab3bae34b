"""Whole data sets in batches (issue 32): batched equals unbatched, on every public entry point.

References: the unbatched operators (one pass over all samples) and dense ``eigvalsh`` of
``jax.hessian`` (tests/model_zoo.py). Sizes are chosen so that the last batch is smaller than
the others (n = 23, batches of 5: 5 + 5 + 5 + 5 + 3) and also larger than n (one batch).
"""

import gzip

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import minstab as ms
from minstab.engine.batching import (
    batch_mean,
    check_mean_loss,
    read_idx_batches,
    resolve_data,
)

from .model_zoo import problem, reference_ggn, reference_hessian

N = 23
SIZES = (5, 23, 100)  # last batch smaller; one batch; larger than n


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def prob(request):
    return problem(request.param, jax.random.key(3), interpolating=False, n=N)


@pytest.mark.parametrize("b", SIZES)
def test_loss_and_gradient_match_full_batch(prob, b):
    apply, p, x, y = prob
    loss = ms.squared_error
    v, g = ms.Problem(apply, loss, data_batch_size=b).value_and_grad(p, x, y)
    v0, g0 = jax.value_and_grad(lambda q: loss(apply(q, x), y))(p)
    assert rel(v, v0) < 1e-12
    for a, c in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(g0), strict=True):
        assert rel(a, c) < 1e-12


def test_batch_mean_last_batch_smaller():
    x = jnp.arange(23.0)[:, None]
    for b in (1, 4, 5, 22, 23, 40):
        assert float(batch_mean(lambda xb, yb: jnp.mean(xb), x, x, batch_size=b)) == pytest.approx(
            11.0, rel=1e-15
        )


@pytest.mark.parametrize("b", [5, 100])
def test_sharpness_and_top5_match_dense_and_unbatched(prob, b):
    apply, p, x, y = prob
    ev = np.linalg.eigvalsh(np.asarray(reference_hessian(apply, p, x, y)))[::-1]
    top = ms.hessian_eigenvalues(p, x, y, k=5, model=apply, data_batch_size=b)
    top0 = ms.hessian_eigenvalues(p, x, y, k=5, model=apply)
    assert bool(top.converged.all())
    assert rel(top.values, ev[:5]) < 1e-12 and rel(top.values, top0.values) < 1e-12
    if b == 5:
        s = ms.sharpness(p, x, y, model=apply, data_batch_size=b, full_output=True)
        assert bool(s.converged) and rel(s.value, ev[0]) < 1e-12


def test_ggn_and_cross_entropy_batched():
    apply, p, x, y = problem("mlp", jax.random.key(3), interpolating=False, n=N)
    yc = jax.nn.one_hot(jnp.arange(N) % 2, 2, dtype=x.dtype)
    g = np.linalg.eigvalsh(np.asarray(reference_ggn(apply, p, x, y)))[::-1][:3]
    h = np.linalg.eigvalsh(np.asarray(reference_hessian(apply, p, x, yc, ms.softmax_cross_entropy)))
    kw = dict(k=3, model=apply, data_batch_size=5)
    assert rel(ms.hessian_eigenvalues(p, x, y, curvature="ggn", **kw).values, g) < 1e-12
    top = ms.hessian_eigenvalues(p, x, yc, loss=ms.softmax_cross_entropy, **kw)
    assert rel(top.values, h[::-1][:3]) < 1e-12


@pytest.mark.parametrize("method", ["hutchinson", "hutch++", "xtrace"])
def test_trace_matches_unbatched_probe_by_probe(prob, method):
    apply, p, x, y = prob
    kw = dict(key=jax.random.key(5), num_samples=12, model=apply, method=method)
    a = ms.hessian_trace(p, x, y, data_batch_size=5, **kw)
    b = ms.hessian_trace(p, x, y, **kw)
    assert rel(a.samples, b.samples) < 1e-11 and rel(a.value, b.value) < 1e-12


def test_spectral_density_matches_unbatched(prob):
    apply, p, x, y = prob
    kw = dict(key=jax.random.key(2), model=apply, num_iters=8, num_probes=2)
    a = ms.spectral_density(p, x, y, data_batch_size=5, **kw)
    b = ms.spectral_density(p, x, y, **kw)
    assert rel(a.nodes, b.nodes) < 1e-10 and rel(a.weights, b.weights) < 1e-10


def test_sequence_of_batches_equals_arrays(prob):
    apply, p, x, y = prob
    pieces = [(np.asarray(x[i : i + 6]), np.asarray(y[i : i + 6])) for i in range(0, N, 6)]
    a = ms.sharpness(p, pieces, None, model=apply)
    b = ms.sharpness(p, iter(pieces), None, model=apply, data_batch_size=4)
    ref = np.linalg.eigvalsh(np.asarray(reference_hessian(apply, p, x, y)))[-1]
    assert rel(a, ref) < 1e-12 and rel(b, ref) < 1e-12
    xs, ys, bs = resolve_data(pieces, None, None)
    assert bs == 6 and np.array_equal(xs, np.asarray(x)) and np.array_equal(ys, np.asarray(y))


def test_shallow_net_batched():
    x, y = ms.data.toy_1d(n=13, key=jax.random.key(0))
    x, y = x.astype(jnp.float64), y.astype(jnp.float64)
    p = ms.init_shallow(jax.random.key(1), 1, 16, dtype=jnp.float64)
    ref = np.linalg.eigvalsh(np.asarray(ms.hessian(p, x, y)))[-1]
    assert rel(ms.sharpness(p, x, y, data_batch_size=4), ref) < 1e-12


def test_train_and_sweep_batched_equal_unbatched():
    apply, p, x, y = problem("mlp", jax.random.key(0), interpolating=False, n=N)
    kw = dict(model=apply, steps=40, log_every=10, log_sharpness="lanczos")
    a = ms.train(p, x, y, 0.1, **kw)
    b = ms.train(p, x, y, 0.1, data_batch_size=5, **kw)
    assert rel(b.log.loss, a.log.loss) < 1e-12
    assert rel(b.log.sharpness, a.log.sharpness) < 1e-12
    leaves = jax.tree_util.tree_leaves
    for u, v in zip(leaves(a.params), leaves(b.params), strict=True):
        assert rel(u, v) < 1e-12
    etas = jnp.array([0.05, 0.1])
    kw = dict(model=apply, steps=20, progress=False, diagnostics=False)
    s = ms.sweep(p, x, y, etas, data_batch_size=6, **kw)
    s0 = ms.sweep(p, x, y, etas, **kw)
    assert rel(s.loss, s0.loss) < 1e-12


def test_memory_is_o_batch():
    """The compiled batched product's scratch memory does not grow with n (XLA's own count)."""
    apply, p, _, _ = problem("mlp", jax.random.key(0), interpolating=False, n=4)
    from minstab.engine.batching import curvature_operator

    def temp(n, b):
        x = jnp.ones((n, 3))
        y = jnp.ones((n, 2))

        def f(v):
            return curvature_operator(
                p, x, y, model=apply, loss=ms.squared_error, curvature="hessian", batch_size=b
            )[1](v)

        v = jnp.ones(sum(a.size for a in jax.tree_util.tree_leaves(p)))
        return jax.jit(f).lower(v).compile().memory_analysis().temp_size_in_bytes

    small, large = temp(4_000, 100), temp(40_000, 100)
    assert large <= 1.1 * small + 4096
    assert temp(40_000, None) > 5 * small  # the unbatched operator: O(n)


def test_validation():
    apply, p, x, y = problem("mlp", jax.random.key(0), interpolating=False, n=N)
    for bad in (0, -3, 2.5, True, "4"):
        with pytest.raises(ValueError, match="data_batch_size"):
            ms.sharpness(p, x, y, model=apply, data_batch_size=bad)
        with pytest.raises(ValueError, match="data_batch_size"):
            ms.hessian_eigenvalues(p, x, y, k=2, model=apply, data_batch_size=bad)
        with pytest.raises(ValueError, match="data_batch_size"):
            ms.train(p, x, y, 0.1, model=apply, steps=2, data_batch_size=bad)
    with pytest.raises(ValueError, match="method"):
        ms.sharpness(p, x, y, model=apply, method="dense", data_batch_size=4)

    def summed(pred, t):  # a sum, not a mean, over samples: batching would rescale it
        return jnp.sum((pred - t) ** 2)

    with pytest.raises(ValueError, match="loss"):
        ms.sharpness(p, x, y, model=apply, loss=summed, data_batch_size=4)
    with pytest.raises(ValueError, match="loss"):
        ms.train(p, x, y, 0.1, model=apply, loss=summed, steps=2, data_batch_size=4)
    with pytest.raises(ValueError, match="loss"):
        check_mean_loss(p, x, y, model=apply, loss=summed)
    with pytest.raises(ValueError, match="^y"):
        ms.sharpness(p, x, None, model=apply)
    bad_pieces = [(np.ones((3, 3)), np.ones((3, 2))), (np.ones((2, 4)), np.ones((2, 2)))]
    with pytest.raises(ValueError, match="^x: batch 1"):
        ms.sharpness(p, bad_pieces, None, model=apply)
    with pytest.raises(ValueError, match="^x: batch 0"):
        ms.sharpness(p, [np.ones(3)], None, model=apply)


def _write_idx(path, array, *, compress):
    head = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    raw = head + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_batches(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (11, 4, 3))
    labels = rng.integers(0, 10, 11)
    _write_idx(tmp_path / "im", images, compress=compress)
    _write_idx(tmp_path / "lb", labels, compress=compress)
    pieces = list(read_idx_batches(tmp_path / "im", tmp_path / "lb", 4, progress=compress))
    assert [a.shape[0] for a, _ in pieces] == [4, 4, 3]
    assert np.array_equal(np.concatenate([a for a, _ in pieces]), images)
    assert np.array_equal(np.concatenate([b for _, b in pieces]), labels)
    assert np.array_equal(ms.read_idx(tmp_path / "im"), images)
    with pytest.raises(ValueError, match="batch_size"):
        list(read_idx_batches(tmp_path / "im", tmp_path / "lb", 0))
