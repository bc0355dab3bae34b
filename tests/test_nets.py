import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

import minstab as ms


def test_forward_matches_explicit_sum(getkey):
    p = ms.init_shallow(getkey(), 3, 7, dtype=jnp.float64)
    x = jax.random.normal(getkey(), (5, 3), jnp.float64)
    ref = np.array(
        [
            sum(float(p.w2[i]) * max(float(p.w1[i] @ xj + p.b1[i]), 0.0) for i in range(7))
            for xj in x
        ]
    ) + float(p.b2)
    np.testing.assert_allclose(ms.forward(p, x), ref, rtol=1e-13)


def test_forward_1d_input_and_leaky(getkey):
    p = ms.init_shallow(getkey(), 1, 4, dtype=jnp.float64)
    x = jnp.linspace(-2.0, 2.0, 9)
    np.testing.assert_array_equal(ms.forward(p, x), ms.forward(p, x[:, None]))
    z = x[:, None] @ p.w1.T + p.b1[None, :]
    leaky = jnp.where(z > 0, z, 0.1 * z) @ p.w2 + p.b2
    np.testing.assert_allclose(ms.forward(p, x, negative_slope=0.1), leaky, rtol=1e-14)


@pytest.mark.parametrize("scheme", ["he", "lecun", "ntk", "uniform"])
def test_init_shapes_and_scale(scheme):
    p = ms.init_shallow(jax.random.key(0), 4, 2000, scheme=scheme, dtype=jnp.float64)
    assert p.w1.shape == (2000, 4) and p.b1.shape == (2000,) and p.w2.shape == (2000,)
    assert p.b2.shape == () and p.w1.dtype == jnp.float64
    expected = {"he": 2 / 4, "lecun": 1 / 4, "ntk": 1.0, "uniform": 1 / 12}[scheme]
    assert abs(float(jnp.var(p.w1)) / expected - 1) < 0.1


def test_knot_range_places_knots():
    p = ms.init_shallow(jax.random.key(0), 1, 50, knot_range=(-1.0, 1.0), dtype=jnp.float64)
    t = ms.knots(p).position
    assert float(t.min()) >= -1 and float(t.max()) <= 1


def test_flatten_order_is_eq20(getkey):
    p = ms.init_shallow(getkey(), 2, 3, dtype=jnp.float64)
    theta = ms.flatten(p)
    assert theta.shape == (ms.num_params(3, 2),) == (13,)
    np.testing.assert_array_equal(theta[:6], p.w1.reshape(-1))  # row-major w1
    np.testing.assert_array_equal(theta[6:9], p.b1)
    np.testing.assert_array_equal(theta[9:12], p.w2)
    assert theta[12] == p.b2
    q = ms.unflatten(theta, 3, 2)
    for a, b in zip(p, q, strict=True):
        np.testing.assert_array_equal(a, b)
    # matches jax's own pytree ravel (same leaf order)
    np.testing.assert_array_equal(theta, jax.flatten_util.ravel_pytree(p)[0])


def test_rescale_and_permute_preserve_function(getkey):
    p = ms.init_shallow(getkey(), 3, 6, dtype=jnp.float64)
    x = jax.random.normal(getkey(), (11, 3), jnp.float64)
    alpha = jnp.exp(jax.random.normal(getkey(), (6,), jnp.float64))
    np.testing.assert_allclose(ms.forward(ms.rescale(p, alpha), x), ms.forward(p, x), rtol=1e-12)
    perm = jax.random.permutation(getkey(), 6)
    np.testing.assert_allclose(ms.forward(ms.permute(p, perm), x), ms.forward(p, x), rtol=1e-12)


def test_knots_and_hyperplanes():
    p = ms.ShallowParams(
        jnp.array([[2.0], [-1.0], [0.0]]), jnp.array([1.0, 3.0, 1.0]),
        jnp.array([1.5, -2.0, 4.0]), jnp.array(0.0),
    )  # fmt: skip
    k = ms.knots(p)
    np.testing.assert_allclose(k.position, [-0.5, 3.0, 0.0])
    np.testing.assert_allclose(k.mass, [3.0, -2.0, 0.0])
    np.testing.assert_array_equal(k.active, [True, True, False])
    h = ms.hyperplanes(p)
    np.testing.assert_allclose(h.normal[:, 0], [1.0, -1.0, 0.0])
    np.testing.assert_allclose(h.offset, [-0.5, -3.0, 0.0])  # -x > -3 <=> x < 3
    np.testing.assert_allclose(h.mass, k.mass)
    # f'' of the network: second finite difference integrates to the mass near each knot
    x = jnp.array([-0.5 - 1e-3, -0.5, -0.5 + 1e-3])
    f = ms.forward(p, x)
    np.testing.assert_allclose((f[2] - 2 * f[1] + f[0]) / 1e-3, 3.0, rtol=1e-8)


def test_losses(getkey):
    p = ms.init_shallow(getkey(), 2, 5, dtype=jnp.float64)
    x = jax.random.normal(getkey(), (7, 2), jnp.float64)
    y = jax.random.normal(getkey(), (7,), jnp.float64)
    f = ms.forward(p, x)
    np.testing.assert_allclose(ms.quadratic_loss(p, x, y), 0.5 * np.mean((f - y) ** 2), rtol=1e-14)
    s = jnp.sign(y)
    np.testing.assert_allclose(
        ms.logistic_loss(p, x, s), np.mean(np.log1p(np.exp(-s * f))), rtol=1e-13
    )
    np.testing.assert_allclose(ms.exponential_loss(p, x, s), np.mean(np.exp(-s * f)), rtol=1e-13)


def test_bad_inputs_name_the_argument(getkey):
    p = ms.init_shallow(getkey(), 2, 5, dtype=jnp.float64)
    x = jnp.ones((4, 2))
    y = jnp.ones(4)
    with pytest.raises(ValueError, match="x must have shape"):
        ms.quadratic_loss(p, jnp.ones((4, 3)), y)
    with pytest.raises(ValueError, match="1-D x means d = 1"):
        ms.quadratic_loss(p, jnp.ones(4), y)
    with pytest.raises(ValueError, match="y must have shape"):
        ms.quadratic_loss(p, x, jnp.ones(5))
    with pytest.raises(ValueError, match="y must be finite"):
        ms.quadratic_loss(p, x, y.at[0].set(jnp.nan))
    with pytest.raises(ValueError, match="params.b1"):
        ms.quadratic_loss(p._replace(b1=jnp.ones(3)), x, y)
    with pytest.raises(ValueError, match="params.w1 must be finite"):
        ms.quadratic_loss(p._replace(w1=p.w1.at[0, 0].set(jnp.inf)), x, y)
    with pytest.raises(ValueError, match="scheme"):
        ms.init_shallow(getkey(), 1, 3, scheme="xavier")
    with pytest.raises(ValueError, match="theta must have shape"):
        ms.unflatten(jnp.ones(5), 3, 2)
