"""benchmarks/real_models.py's pieces at toy size: its convolution and its checks.

The CNN's ``SliceConv`` (nine strided slices and a matmul) against ``flax.nnx.Conv`` with the
same kernel and bias (XLA's convolution, another code path), on the script's shapes and odd
ones; the independent residual against a dense ``jax.hessian``; the checks exit 1 when a
statement fails. The full run itself (all 60 000 images) is not a test: its JSON is stored in
benchmarks/results/real_models.json and read by notebooks/07_real_models.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("flax", reason='pip install "minstab[flax]"')

from flax import nnx  # noqa: E402

import minstab as ms  # noqa: E402
from benchmarks import real_models as R  # noqa: E402
from minstab.experiments.outcomes import exit_status  # noqa: E402


@pytest.mark.parametrize("shape", [(3, 28, 28, 1), (2, 14, 14, 8), (2, 7, 9, 3), (1, 2, 2, 2)])
def test_slice_conv_equals_nnx_conv(shape):
    mods, _ = R.models()
    cin = shape[-1]
    params, slices = ms.from_flax_nnx(type(mods["cnn"].conv1)(cin, 5, nnx.Rngs(2)))
    _, conv = ms.from_flax_nnx(nnx.Conv(cin, 5, (3, 3), strides=2, rngs=nnx.Rngs(3)))
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    p = {"kernel": jax.random.normal(k1, (3, 3, cin, 5), jnp.float64),
         "bias": jax.random.normal(k2, (5,), jnp.float64)}  # fmt: skip
    assert jax.tree_util.tree_structure(p) == jax.tree_util.tree_structure(params)
    x = jax.random.normal(k3, shape, jnp.float64)
    a, b = slices(p, x), conv(p, x)
    assert a.shape == b.shape
    assert float(jnp.max(jnp.abs(a - b))) <= 1e-12 * float(jnp.max(jnp.abs(b)))


def test_cnn_and_its_nnx_conv_twin_agree_and_residual_is_independent():
    mods, reference_cnn = R.models()
    params, apply = ms.from_flax_nnx(mods["cnn"])
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
    x = jax.random.uniform(jax.random.key(0), (6, 28, 28, 1), jnp.float64)
    assert R.conv_vs_nnx_conv(params, apply, reference_cnn, x) <= 1e-12
    # the residual of the dense Hessian's top pair is ~0, of a wrong value is not
    small = {"w": jax.random.normal(jax.random.key(1), (4, 3), jnp.float64)}
    xs = jax.random.normal(jax.random.key(2), (7, 4), jnp.float64)
    ys = jax.nn.one_hot(jnp.arange(7) % 3, 3, dtype=jnp.float64)

    def lin(p, x):
        return x @ p["w"]

    h = jax.hessian(lambda w: ms.softmax_cross_entropy(xs @ w.reshape(4, 3), ys))(
        small["w"].ravel()
    )
    ev, vec = np.linalg.eigh(np.asarray(h))
    lam, v = jnp.asarray(ev[::-1][:2]), jnp.asarray(vec[:, ::-1][:, :2].T)
    res = R.residuals(small, lin, xs, ys, lam, v, batch=3)  # batches of 3, 3, 1
    assert max(res) <= 1e-12
    assert R.residuals(small, lin, xs, ys, 1.1 * lam, v, batch=3)[0] >= 0.05


def fake(top, layer, residual=1e-6, converged=True):
    c = {"top5": top, "top5_residual": [residual] * 5, "top5_converged": converged,
         "layer_sharpness": layer, "layer_sharpness_converged": True}  # fmt: skip
    return {"full": c, "subset": c}


def test_checks_fail_where_they_should():
    ok = {"mlp": fake([5.0, 4, 3, 2, 1], {"a": 4.0, "b": 5.0})}
    assert exit_status(R.checks(ok)) == 0
    above = {"mlp": fake([5.0, 4, 3, 2, 1], {"a": 5.1})}  # a block above the whole: interlacing
    assert R.checks(above)["interlacing"].holds is False and exit_status(R.checks(above)) == 1
    loose = {"mlp": fake([5.0, 4, 3, 2, 1], {"a": 1.0}, residual=2e-3)}
    assert R.checks(loose)["top5_residual"].holds is False
    stuck = {"mlp": fake([5.0, 4, 3, 2, 1], {"a": 1.0}, converged=False)}
    assert R.checks(stuck)["converged"].holds is False
    conv = {"cnn": {**fake([5.0, 4, 3, 2, 1], {"a": 1.0}), "conv_vs_nnx_conv": 1e-3}}
    assert R.checks(conv)["conv_vs_nnx_conv"].holds is False
