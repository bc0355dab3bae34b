"""Any model: hessian / sharpness / hvp / Gram of plain-pytree models against jax.hessian + eigvalsh.

References are computed here, independently of minstab: ``jax.hessian`` of the flat loss written
out in the test (``ravel_pytree`` order), dense ``eigvalsh``, ``jax.jacfwd`` Jacobians.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import minstab as ms
from minstab.shallow import curvature
from tests.helpers import interpolating_net
from tests.model_zoo import problem, reference_hessian

MODELS = ["mlp", "cnn"]
METHODS = ["dense", "lanczos", "gram", "power", "auto"]


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("name", MODELS)
def test_hessian_equals_jax_hessian_in_ravel_order(getkey, name):
    apply, p, x, y = problem(name, getkey(), interpolating=False)
    ref = reference_hessian(apply, p, x, y)
    np.testing.assert_allclose(ms.hessian(p, x, y, model=apply), ref, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["interpolating", "random"])
@pytest.mark.parametrize("name", MODELS)
def test_sharpness_every_method_equals_eigvalsh(getkey, name, kind, method):
    apply, p, x, y = problem(name, getkey(), interpolating=kind == "interpolating")
    h = reference_hessian(apply, p, x, y)
    evals = np.linalg.eigvalsh(np.asarray(h))
    ref = float(evals[-1])
    r = ms.sharpness(p, x, y, model=apply, method=method, full_output=True)
    if method == "gram" and kind == "random":
        # not a minimum: the Gram shortcut is not the Hessian's, and says so
        assert not bool(r.converged)
        return
    if method == "power" and (abs(evals[0]) > abs(ref) or not bool(r.converged)):
        pytest.skip("power iteration finds the largest magnitude / did not converge (reported)")
    assert bool(r.converged), r
    assert abs(float(r.value) - ref) <= 1e-8 * abs(ref)
    if method == "auto":
        assert r.method_name == ("gram" if kind == "interpolating" else "lanczos")
    P = h.shape[0]
    assert r.vector.shape == (P,)
    np.testing.assert_allclose(h @ r.vector, r.value * r.vector, atol=1e-6 * abs(ref))


def test_generic_gram_matches_shallow_closed_form(getkey):
    p, x, y = interpolating_net(getkey(), n=10, d=2, k=20)
    closed = ms.sharpness(p, x, y, method="gram", full_output=True)
    generic = ms.sharpness(p, x, y, model=ms.forward, method="gram", full_output=True)
    assert bool(closed.converged) and bool(generic.converged)
    np.testing.assert_allclose(generic.value, closed.value, rtol=1e-10)
    np.testing.assert_allclose(
        ms.gauss_newton_gram(p, x, model=ms.forward), ms.gauss_newton_gram(p, x), rtol=1e-11
    )
    np.testing.assert_allclose(ms.jacobian(p, x, model=ms.forward), ms.jacobian(p, x), rtol=1e-12)
    ref = float(np.linalg.eigvalsh(np.asarray(ms.hessian(p, x, y)))[-1])
    assert abs(float(generic.value) - ref) <= 1e-10 * ref


@pytest.mark.parametrize("name", MODELS)
def test_hvp_jacobian_and_gauss_newton_of_any_model(getkey, name):
    apply, p, x, y = problem(name, getkey(), interpolating=False)
    h = reference_hessian(apply, p, x, y)
    flat, unravel = ravel_pytree(p)
    v = jax.random.normal(getkey(), flat.shape, jnp.float64)
    hv = ms.hvp(ms.model_loss(apply), p, unravel(v), x, y)
    np.testing.assert_allclose(ravel_pytree(hv)[0], h @ v, rtol=1e-11, atol=1e-12)
    jref = jax.jacfwd(lambda t: apply(unravel(t), x).reshape(-1))(flat)
    np.testing.assert_allclose(ms.jacobian(p, x, model=apply), jref, rtol=1e-11, atol=1e-13)
    n = x.shape[0]
    np.testing.assert_allclose(
        ms.gauss_newton_matvec(v, p, x, model=apply), jref.T @ (jref @ v) / n, rtol=1e-11
    )
    np.testing.assert_allclose(
        ms.gauss_newton_gram(p, x, model=apply), jref @ jref.T / n, rtol=1e-11, atol=1e-13
    )


def test_custom_loss_hessian_and_sharpness(getkey):
    apply, p, x, _ = problem("mlp", getkey(), interpolating=False)
    labels = jax.nn.one_hot(jax.random.randint(getkey(), (x.shape[0],), 0, 2), 2, dtype=x.dtype)

    def ce(logits, y):  # written out, independent of ms.softmax_cross_entropy
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(logits), axis=1))

    h = reference_hessian(apply, p, x, labels, loss=ce)
    loss = ms.softmax_cross_entropy
    np.testing.assert_allclose(
        ms.hessian(p, x, labels, model=apply, loss=loss), h, rtol=1e-11, atol=1e-13
    )
    ref = float(np.linalg.eigvalsh(np.asarray(h))[-1])
    for method in ("lanczos", "dense", "auto"):
        r = ms.sharpness(p, x, labels, model=apply, loss=loss, method=method, full_output=True)
        assert bool(r.converged) and abs(float(r.value) - ref) <= 1e-8 * abs(ref), method
    with pytest.raises(ValueError, match="loss"):
        ms.sharpness(p, x, labels, model=apply, loss=loss, method="gram")


@pytest.mark.parametrize("name", MODELS)
def test_float32(getkey, name):
    apply, p, x, y = problem(name, getkey(), interpolating=True)
    p32, x32, y32 = jax.tree.map(lambda a: a.astype(jnp.float32), (p, x, y))
    up = jax.tree.map(lambda a: a.astype(jnp.float64), p32)  # the float32 net's own reference
    ref = float(np.linalg.eigvalsh(np.asarray(reference_hessian(apply, up, x, y)))[-1])
    for method in ("lanczos", "auto", "dense"):
        r = ms.sharpness(p32, x32, y32, model=apply, method=method, full_output=True)
        assert r.value.dtype == jnp.float32 and r.vector.dtype == jnp.float32
        assert abs(float(r.value) - ref) <= 1e-4 * abs(ref), method
    assert ms.hessian(p32, x32, y32, model=apply).dtype == jnp.float32


def test_compiles_once_for_new_data(getkey):
    apply, p, x, y = problem("mlp", getkey(), interpolating=False)
    ms.sharpness(p, x, y, model=apply, method="lanczos")
    before = curvature._sharpness_jit._cache_size()
    for _ in range(3):
        _, q, xx, yy = problem("mlp", getkey(), interpolating=False)
        ms.sharpness(q, xx, yy, model=apply, method="lanczos")
    assert curvature._sharpness_jit._cache_size() == before


def test_jit_and_vmap_over_params(getkey):
    probs = [problem("cnn", getkey(), interpolating=True) for _ in range(3)]
    apply, _, x, y = probs[0]
    batch = jax.tree.map(lambda *a: jnp.stack(a), *[q for _, q, _, _ in probs])
    f = jax.jit(jax.vmap(lambda q, x, y: ms.sharpness(q, x, y, model=apply, method="lanczos")))
    xs = jnp.stack([q[2] for q in probs])
    ys = jnp.stack([q[3] for q in probs])
    vals = f(batch, xs, ys)
    for i, (_, q, xi, yi) in enumerate(probs):
        ref = np.linalg.eigvalsh(np.asarray(reference_hessian(apply, q, xi, yi)))[-1]
        np.testing.assert_allclose(vals[i], ref, rtol=1e-9)


def test_bad_input(getkey):
    apply, p, x, y = problem("mlp", getkey(), interpolating=False)
    with pytest.raises(ValueError, match="model must be a callable"):
        ms.sharpness(p, x, y, model="mlp")
    with pytest.raises(ValueError, match="loss must be a callable"):
        ms.hessian(p, x, y, model=apply, loss=3)
    bad = [dict(p[0], w=jnp.ones((3, 10), jnp.int32))] + p[1:]
    with pytest.raises(ValueError, match="floating arrays"):
        ms.sharpness(bad, x, y, model=apply)
    mixed = [jax.tree.map(lambda a: a.astype(jnp.float32), p[0])] + p[1:]
    with pytest.raises(ValueError, match="one floating dtype"):
        ms.hessian(mixed, x, y, model=apply)
    with pytest.raises(ValueError, match="y must have the shape"):
        ms.sharpness(p, x, y[:, 0], model=apply)
    with pytest.raises(ValueError, match="one row per sample"):
        ms.sharpness(p, x, y, model=lambda q, x: apply(q, x)[:-1])
    with pytest.raises(ValueError, match="loss.*scalar"):
        ms.hessian(p, x, y, model=apply, loss=lambda pred, y: pred - y)
    with pytest.raises(ValueError, match="x and params must share"):
        ms.sharpness(p, x.astype(jnp.float32), y, model=apply)
    with pytest.raises(ValueError, match="x must be finite"):
        ms.sharpness(p, x.at[0, 0].set(jnp.nan), y, model=apply)
    with pytest.raises(ValueError, match="v0 must have shape"):
        ms.sharpness(p, x, y, model=apply, method="lanczos", v0=jnp.ones(3))
    with pytest.raises(ValueError, match="negative_slope"):
        ms.sharpness(p, x, y, model=apply, negative_slope=0.1)
    with pytest.raises(ValueError, match="method must be one of"):
        ms.sharpness(p, x, y, model=apply, method="arnoldi")
