"""Adapters (issue 32): one MLP written by hand, in Equinox, Flax NNX and Flax linen.

Every framework's copy carries the same weights, so the loss Hessians are the same matrix up
to the order of the parameters: equal sharpness, top-5 eigenvalues and trace (exact: Hutch++
with a sketch of rank >= P) to 1e-10 in float64, and all equal to dense ``eigvalsh`` of
``jax.hessian`` of the hand-written model. A Flax NNX model with BatchNorm, in eval mode, has
the sharpness of the hand-written model with the statistics fixed.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import minstab as ms

from .model_zoo import reference_hessian

SIZES = (3, 5, 5, 2)
N = 17


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def hand_apply(params, x):
    h = x
    for layer in params[:-1]:
        h = jnp.tanh(h @ layer["w"] + layer["b"][None, :])
    return h @ params[-1]["w"] + params[-1]["b"][None, :]


@pytest.fixture(scope="module")
def data():
    k1, k2 = jax.random.split(jax.random.key(7))
    return jax.random.normal(k1, (N, 3), jnp.float64), jax.random.normal(k2, (N, 2), jnp.float64)


def nnx_model():
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs):
            kw = dict(rngs=rngs, param_dtype=jnp.float64, dtype=jnp.float64)
            self.layers = nnx.List(
                [nnx.Linear(a, b, **kw) for a, b in zip(SIZES[:-1], SIZES[1:], strict=True)]
            )

        def __call__(self, x):
            for layer in self.layers[:-1]:
                x = jnp.tanh(layer(x))
            return self.layers[-1](x)

    m = MLP(nnx.Rngs(0))
    for layer in m.layers:  # non-zero biases, so that every parameter matters
        layer.bias[...] = 0.1 * jnp.arange(layer.bias[...].shape[0], dtype=jnp.float64)
    return m


def hand_from_nnx(m):
    return [{"w": layer.kernel[...], "b": layer.bias[...]} for layer in m.layers]


def equinox_model(hand):
    import equinox as eqx

    mlp = eqx.nn.MLP(3, 2, 5, 2, activation=jnp.tanh, key=jax.random.key(1), dtype=jnp.float64)
    for i, layer in enumerate(hand):
        mlp = eqx.tree_at(lambda m, i=i: (m.layers[i].weight, m.layers[i].bias), mlp,
                          (layer["w"].T, layer["b"]))  # fmt: skip
    return mlp


def linen_model(hand):
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            for b in SIZES[1:-1]:
                x = jnp.tanh(nn.Dense(b, param_dtype=jnp.float64, dtype=jnp.float64)(x))
            return nn.Dense(SIZES[-1], param_dtype=jnp.float64, dtype=jnp.float64)(x)

    variables = {"params": {f"Dense_{i}": {"kernel": l["w"], "bias": l["b"]}
                            for i, l in enumerate(hand)}}  # fmt: skip
    return MLP(), variables


@pytest.fixture(scope="module")
def models():
    m = nnx_model()
    hand = hand_from_nnx(m)
    lin, variables = linen_model(hand)
    return {
        "hand": (hand, hand_apply),
        "equinox": ms.from_equinox(equinox_model(hand)),
        "nnx": ms.from_flax_nnx(m),
        "linen": ms.from_flax_linen(lin, variables),
    }


@pytest.mark.parametrize("name", ["equinox", "nnx", "linen"])
def test_same_mlp_same_curvature(models, data, name):
    x, y = data
    hand, _ = models["hand"]
    params, apply = models[name]
    size = sum(a.size for a in jax.tree_util.tree_leaves(params))
    assert size == sum(a.size for a in jax.tree_util.tree_leaves(hand)) == 62
    assert rel(apply(params, x), hand_apply(hand, x)) < 1e-14
    ev = np.linalg.eigvalsh(np.asarray(reference_hessian(hand_apply, hand, x, y)))[::-1]
    s = ms.sharpness(params, x, y, model=apply, method="lanczos")
    top = ms.hessian_eigenvalues(params, x, y, k=5, model=apply)
    tr = ms.hessian_trace(params, x, y, key=jax.random.key(0), num_samples=3 * 63, model=apply)
    assert rel(s, ev[0]) < 1e-10
    assert rel(top.values, ev[:5]) < 1e-10
    assert rel(tr.value, ev.sum()) < 1e-10
    # the eigenvectors come back shaped like the framework's params
    vec = top.vector_tree(params, 0)
    assert jax.tree_util.tree_structure(vec) == jax.tree_util.tree_structure(params)


def test_nnx_batchnorm_eval_mode_equals_fixed_statistics(data):
    from flax import nnx

    x, y = data

    class Net(nnx.Module):
        def __init__(self, rngs):
            kw = dict(rngs=rngs, param_dtype=jnp.float64, dtype=jnp.float64)
            self.l1 = nnx.Linear(3, 6, **kw)
            self.bn = nnx.BatchNorm(6, **kw)
            self.l2 = nnx.Linear(6, 2, **kw)

        def __call__(self, x):
            return self.l2(jnp.tanh(self.bn(self.l1(x))))

    net = Net(nnx.Rngs(3))
    mean = 0.3 * jnp.arange(6, dtype=jnp.float64) - 0.5
    var = 0.5 + 0.2 * jnp.arange(6, dtype=jnp.float64)
    net.bn.mean, net.bn.var = nnx.BatchStat(mean), nnx.BatchStat(var)
    net.bn.scale[...] = 1.0 + 0.1 * jnp.arange(6, dtype=jnp.float64)
    net.bn.bias[...] = 0.05 * jnp.arange(6, dtype=jnp.float64)
    eps = net.bn.epsilon
    params, apply = ms.from_flax_nnx(net)
    assert not net.bn.use_running_average  # the caller's module stays in training mode
    assert sorted(params["bn"]) == ["bias", "scale"]  # statistics are not parameters

    def fixed(p, x):  # the same net by hand, statistics as constants
        h = x @ p["l1"]["kernel"] + p["l1"]["bias"][None, :]
        h = (h - mean[None, :]) / jnp.sqrt(var + eps)[None, :] * p["bn"]["scale"][None, :]
        return jnp.tanh(h + p["bn"]["bias"][None, :]) @ p["l2"]["kernel"] + p["l2"]["bias"][None]

    assert rel(apply(params, x), fixed(params, x)) < 1e-14
    ref = np.linalg.eigvalsh(np.asarray(reference_hessian(fixed, params, x, y)))[-1]
    assert rel(ms.sharpness(params, x, y, model=apply, method="lanczos"), ref) < 1e-10
    assert rel(ms.sharpness(params, x, y, model=fixed, method="lanczos"), ref) < 1e-10


@pytest.mark.parametrize(
    ("adapter", "modules", "extra"),
    [
        ("from_equinox", ("equinox",), "equinox"),
        ("from_flax_nnx", ("flax", "flax.nnx"), "flax"),
        ("from_flax_linen", ("flax", "flax.linen"), "flax"),
    ],
)
def test_missing_extra_names_it(monkeypatch, adapter, modules, extra):
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)  # import of it raises ImportError
    with pytest.raises(ImportError, match=rf'pip install "minstab\[{extra}\]"'):
        getattr(ms, adapter)(object(), *([{}] if adapter == "from_flax_linen" else []))


def test_adapters_validate():
    with pytest.raises(ValueError, match="module"):
        ms.from_equinox(object())
    with pytest.raises(ValueError, match="module"):
        ms.from_flax_nnx(object())
    import flax.linen as nn

    with pytest.raises(ValueError, match="variables"):
        ms.from_flax_linen(nn.Dense(2), {"batch_stats": {}})
    import equinox as eqx

    with pytest.raises(ValueError, match="vmap"):
        ms.from_equinox(eqx.nn.Linear(2, 2, key=jax.random.key(0)), vmap="yes")
