"""Plain-pytree models for the any-model tests: a 3-layer tanh MLP and a small CNN.

References are written out here, independently of minstab: ``jax.hessian`` of the flat loss in
``ravel_pytree`` order and the Gauss-Newton matrix from ``jax.jacfwd`` and the loss's Hessian.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree


def mlp_features(params, x):
    h = x
    for layer in params[:-1]:
        h = jnp.tanh(h @ layer["w"] + layer["b"][None, :])
    return h


def mlp_apply(params, x):
    """3-layer tanh MLP as a list of dicts; output (n, 2)."""
    return mlp_features(params, x) @ params[-1]["w"] + params[-1]["b"][None, :]


def mlp_init(key, sizes=(3, 10, 10, 2), dtype=jnp.float64):
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {
            "w": jax.random.normal(k, (a, b), dtype) / np.sqrt(a),
            "b": 0.1 * jax.random.normal(jax.random.fold_in(k, 1), (b,), dtype),
        }
        for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def cnn_features(params, x):
    z = jax.lax.conv_general_dilated(
        x, params["conv"], (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    h = jnp.tanh(z + params["bias"][None, None, None, :])
    return h.reshape(h.shape[0], -1)


def cnn_apply(params, x):
    """Conv 3x3 (3 channels) + tanh + dense on 6x6 images, as a dict; output (n,)."""
    return cnn_features(params, x) @ params["dense"] + params["out_bias"]


def cnn_init(key, dtype=jnp.float64):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "conv": jax.random.normal(k1, (3, 3, 1, 3), dtype) / 3,
        "bias": 0.1 * jax.random.normal(k2, (3,), dtype),
        "dense": jax.random.normal(k3, (48,), dtype) / 7,
        "out_bias": jnp.zeros((), dtype),
    }


def problem(name, key, *, interpolating, n=None):
    """(apply, params, x, y); interpolating: the last layer solved by least squares (r ~ 1e-14)."""
    k1, k2, k3 = jax.random.split(key, 3)
    if name == "mlp":
        n, apply, p = n or 6, mlp_apply, mlp_init(k1)
        x = jax.random.normal(k2, (n, 3), jnp.float64)
        y = jax.random.normal(k3, (n, 2), jnp.float64)
        feats = mlp_features(p, x)
    else:
        n, apply, p = n or 10, cnn_apply, cnn_init(k1)
        x = jax.random.normal(k2, (n, 6, 6, 1), jnp.float64)
        y = jax.random.normal(k3, (n,), jnp.float64)
        feats = cnn_features(p, x)
    if interpolating:
        a = np.concatenate([np.asarray(feats), np.ones((n, 1))], axis=1)
        sol = np.linalg.lstsq(a, np.asarray(y), rcond=None)[0]
        w, b = jnp.asarray(sol[:-1]), jnp.asarray(sol[-1])
        if name == "mlp":
            p = p[:-1] + [{"w": w, "b": b}]
        else:
            p = {**p, "dense": w, "out_bias": b}
    return apply, p, x, y


def reference_hessian(apply, p, x, y, loss=None):
    flat, unravel = ravel_pytree(p)

    def f(t):
        pred = apply(unravel(t), x)
        if loss is None:
            return 0.5 * jnp.sum((pred - y) ** 2) / x.shape[0]
        return loss(pred, y)

    return jax.hessian(f)(flat)


def reference_ggn(apply, p, x, y, loss=None):
    """J^T (d^2 l / d pred^2) J with J from jax.jacfwd and the loss Hessian from jax.hessian."""
    flat, unravel = ravel_pytree(p)
    pred = apply(p, x)
    jac = jax.jacfwd(lambda t: apply(unravel(t), x).reshape(-1))(flat)
    if loss is None:
        return jac.T @ jac / x.shape[0]
    lh = jax.hessian(lambda q: loss(q.reshape(pred.shape), y))(pred.reshape(-1))
    return jac.T @ lh @ jac
