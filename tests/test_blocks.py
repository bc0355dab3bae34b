"""Per-block curvature (issue 32) against the diagonal blocks of the dense ``jax.hessian``.

The reference slices the dense Hessian of tests/model_zoo.py (``ravel_pytree`` order: leaves in
``tree_leaves`` order, each flattened row-major) into the leaves' diagonal blocks, or the
blocks of a layer's leaves together, and takes ``eigvalsh`` and the trace of each.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import minstab as ms
from minstab.engine.blocks import block_labels

from .model_zoo import problem, reference_ggn, reference_hessian


def rel(a, b):
    return abs(float(a) - float(b)) / abs(float(b))


def leaf_slices(params):
    sizes = [a.size for a in jax.tree_util.tree_leaves(params)]
    ends = np.cumsum(sizes)
    return [np.arange(e - s, e) for s, e in zip(sizes, ends, strict=True)]


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def prob(request):
    # the MLP's first hidden layer has 40 parameters (exact eigh), the second 110 (Lanczos)
    return problem(request.param, jax.random.key(4), interpolating=False, n=12)


def test_block_sharpness_and_trace_per_leaf(prob):
    apply, p, x, y = prob
    h = np.asarray(reference_hessian(apply, p, x, y))
    top = ms.block_sharpness(p, x, y, model=apply, full_output=True)
    tr = ms.hessian_trace(p, x, y, key=jax.random.key(0), num_samples=120, model=apply,
                          per_block=True)  # fmt: skip
    assert jax.tree_util.tree_structure(top.value) == jax.tree_util.tree_structure(p)
    leaves = zip(
        leaf_slices(p),
        jax.tree_util.tree_leaves(top.value),
        jax.tree_util.tree_leaves(top.converged),
        jax.tree_util.tree_leaves(tr.value),
        strict=True,
    )
    for idx, value, ok, trace in leaves:  # fmt: skip
        block = h[np.ix_(idx, idx)]
        assert bool(ok)
        assert rel(value, np.linalg.eigvalsh(block)[-1]) < 1e-10
        if idx.size <= 120:  # exact from unit vectors
            assert rel(trace, np.trace(block)) < 1e-12
    # the block traces add up to tr(H) (estimated for blocks above 120 parameters)
    total = sum(float(v) for v in jax.tree_util.tree_leaves(tr.value))
    assert (
        abs(total - np.trace(h))
        < 5 * np.sqrt(sum(float(s) ** 2 for s in jax.tree_util.tree_leaves(tr.stderr))) + 1e-9
    )


def test_blocks_per_layer_and_batched():
    apply, p, x, y = problem("mlp", jax.random.key(4), interpolating=False, n=12)
    h = np.asarray(reference_hessian(apply, p, x, y))
    g = np.asarray(reference_ggn(apply, p, x, y))
    sl = leaf_slices(p)
    layers = {f"[{i}]": np.concatenate(sl[2 * i : 2 * i + 2]) for i in range(3)}
    assert block_labels(p, "layer") == ["[0]", "[0]", "[1]", "[1]", "[2]", "[2]"]
    top = ms.block_sharpness(p, x, y, model=apply, blocks="layer", data_batch_size=5)
    ggn = ms.block_sharpness(p, x, y, model=apply, blocks="layer", curvature="ggn")
    tr = ms.block_trace(p, x, y, key=jax.random.key(1), num_samples=200, model=apply,
                        blocks="layer", data_batch_size=5)  # fmt: skip
    assert list(top) == list(layers)
    for name, idx in layers.items():
        assert rel(top[name], np.linalg.eigvalsh(h[np.ix_(idx, idx)])[-1]) < 1e-10
        assert rel(ggn[name], np.linalg.eigvalsh(g[np.ix_(idx, idx)])[-1]) < 1e-10
        assert rel(tr.value[name], np.trace(h[np.ix_(idx, idx)])) < 1e-12
    # Cauchy interlacing: lambda_max(H) bounds every diagonal block's
    assert max(float(v) for v in top.values()) <= np.linalg.eigvalsh(h)[-1] * (1 + 1e-12)
    # labels as a pytree, and a callable, give the same grouping
    labels = [
        {"b": "hidden", "w": "hidden"},
        {"b": "hidden", "w": "hidden"},
        {"b": "out", "w": "out"},
    ]
    by_tree = ms.block_sharpness(p, x, y, model=apply, blocks=labels)
    by_fn = ms.block_sharpness(
        p, x, y, model=apply, blocks=lambda path, leaf: "out" if path[0].idx == 2 else "hidden"
    )
    idx = np.concatenate(sl[:4])
    for r in (by_tree, by_fn):
        assert rel(r["hidden"], np.linalg.eigvalsh(h[np.ix_(idx, idx)])[-1]) < 1e-10
        assert rel(r["out"], top["[2]"]) < 1e-10


def test_plot_blocks():
    import matplotlib

    matplotlib.use("Agg")
    apply, p, x, y = problem("mlp", jax.random.key(4), interpolating=False, n=12)
    top = ms.block_sharpness(p, x, y, model=apply, blocks="layer")
    tr = ms.block_trace(p, x, y, key=jax.random.key(0), num_samples=8, model=apply, blocks="layer")
    axes = ms.plot_blocks(top, tr)
    assert len(axes) == 2 and len(axes[0].patches) == len(top)


def test_validation():
    apply, p, x, y = problem("mlp", jax.random.key(4), interpolating=False, n=12)
    with pytest.raises(ValueError, match="blocks"):
        ms.block_sharpness(p, x, y, model=apply, blocks="layers")
    with pytest.raises(ValueError, match="blocks"):
        ms.block_sharpness(p, x, y, model=apply, blocks=[{"w": 1}])
    with pytest.raises(ValueError, match="blocks"):
        ms.block_sharpness(p, x, y, model=apply, blocks=lambda path, leaf: [])
    with pytest.raises(ValueError, match="num_iters"):
        ms.block_sharpness(p, x, y, model=apply, num_iters=0)
    with pytest.raises(ValueError, match="curvature"):
        ms.block_sharpness(p, x, y, model=apply, curvature="fisher")
    with pytest.raises(ValueError, match="num_samples"):
        ms.hessian_trace(p, x, y, key=jax.random.key(0), num_samples=1, model=apply, per_block=True)
    with pytest.raises(ValueError, match="params"):
        ms.hessian_eigenvalues(p, x, y, k=2, model=apply).vector_tree({"w": jnp.ones(3)})
