import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minstab as ms
from minstab.shallow.bounds import (
    merged_knots,
    population_weight_1d,
    sharpness_lower_bound,
    theorem1_budget,
    theorem2_delta,
    weight,
    weight_1d,
    weighted_curvature,
)


def brute_weight_1d(t, x):
    """O(n m) reference straight from eqs. 22-23 (numpy, float64)."""
    x = np.asarray(x, float)
    out = []
    for ti in np.atleast_1d(np.asarray(t, float)):
        if ti < x.min() or ti > x.max():
            out.append(0.0)
            continue
        lo, hi = x[x < ti], x[x > ti]
        gm = (
            (len(lo) / len(x)) ** 2 * np.mean(ti - lo) * np.sqrt(1 + np.mean(lo) ** 2)
            if len(lo)
            else 0.0
        )
        gp = (
            (len(hi) / len(x)) ** 2 * np.mean(hi - ti) * np.sqrt(1 + np.mean(hi) ** 2)
            if len(hi)
            else 0.0
        )
        out.append(min(gm, gp))
    return np.array(out)


def brute_weight_nd(v, b, x):
    def gt(v, b):
        proj = x @ v
        m = proj > b
        if not m.any():
            return 0.0
        return m.mean() ** 2 * np.mean(proj[m] - b) * np.sqrt(1 + np.sum(x[m].mean(0) ** 2))

    return np.array([min(gt(vi, bi), gt(-vi, -bi)) for vi, bi in zip(v, b, strict=True)])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.sampled_from([1, 2, 7, 30]))
def test_weight_1d_matches_brute_force(seed, n):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    t = np.concatenate([rng.uniform(-3, 3, 40), x, [x.min(), x.max()]])  # data points included
    np.testing.assert_allclose(
        weight_1d(jnp.asarray(t), jnp.asarray(x)), brute_weight_1d(t, x), atol=1e-14
    )


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 5))
def test_weight_nd_matches_brute_force_and_1d(seed, d):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((12, d))
    v = rng.standard_normal((25, d))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    b = rng.uniform(-2, 2, 25)
    got = weight(jnp.asarray(v), jnp.asarray(b), jnp.asarray(x), chunk_size=7)
    np.testing.assert_allclose(got, brute_weight_nd(v, b, x), atol=1e-13)
    if d == 1:
        np.testing.assert_allclose(
            got, weight_1d(jnp.asarray(b * v[:, 0]), jnp.asarray(x[:, 0])), atol=1e-13
        )
    # (c v, c b) with c > 0 is the same hyperplane: the same g (unnormalized, the formula
    # would return c times it)
    c = rng.uniform(0.1, 10.0, 25)
    scaled = weight(jnp.asarray(c[:, None] * v), jnp.asarray(c * b), jnp.asarray(x), chunk_size=7)
    np.testing.assert_allclose(scaled, got, rtol=1e-12, atol=1e-14)


def test_weight_is_symmetric_in_orientation():
    x = jax.random.normal(jax.random.key(0), (20, 3), jnp.float64)
    v = jax.random.normal(jax.random.key(1), (10, 3), jnp.float64)
    v = v / jnp.linalg.norm(v, axis=1, keepdims=True)
    b = jax.random.normal(jax.random.key(2), (10,), jnp.float64)
    np.testing.assert_allclose(weight(v, b, x), weight(-v, -b, x), atol=1e-15)


def test_weight_vanishes_outside_data_range():
    x = jnp.array([-1.0, 0.5, 2.0])
    g = weight_1d(jnp.array([-1.5, -1.0, 2.0, 3.0]), x)
    np.testing.assert_array_equal(g, 0.0)


@pytest.mark.parametrize("law", ["uniform", "gaussian", "laplace"])
def test_empirical_weight_converges_to_population(law):
    rng = np.random.default_rng(0)
    draw = {"uniform": lambda n: rng.uniform(-np.sqrt(3), np.sqrt(3), n),
            "gaussian": rng.standard_normal, "laplace": lambda n: rng.laplace(0, 1 / np.sqrt(2), n)}[law]  # fmt: skip
    t = jnp.linspace(-1.5, 1.5, 61)
    pop = np.asarray(population_weight_1d(t, law))
    errs = [
        float(np.max(np.abs(np.asarray(weight_1d(t, jnp.asarray(draw(n)))) - pop)))
        for n in (30, 3000, 300_000)
    ]
    assert errs[2] < errs[0] and errs[2] < 0.01 * float(pop.max()) + 1e-3


def test_population_weight_by_independent_quadrature():
    from scipy import integrate, stats

    t = 0.3
    law = stats.norm()
    p_l, p_r = law.cdf(t), law.sf(t)
    m_l = integrate.quad(lambda u: u * law.pdf(u), -np.inf, t)[0] / p_l
    m_r = integrate.quad(lambda u: u * law.pdf(u), t, np.inf)[0] / p_r
    g = min(p_l**2 * (t - m_l) * np.sqrt(1 + m_l**2), p_r**2 * (m_r - t) * np.sqrt(1 + m_r**2))
    np.testing.assert_allclose(float(population_weight_1d(jnp.array(t), "gaussian")), g, rtol=1e-6)


def test_abs_x_closed_form():
    p = ms.ShallowParams(jnp.array([[1.0], [-1.0]]), jnp.zeros(2), jnp.ones(2), jnp.array(0.0))
    x = jnp.linspace(-2.0, 2.0, 9)
    np.testing.assert_allclose(weighted_curvature(p, x), 2 * brute_weight_1d(0.0, x)[0], rtol=1e-14)
    # sigma(x) - sigma(-x) = x is linear: the two knots cancel
    q = p._replace(w2=jnp.array([1.0, -1.0]))
    assert float(weighted_curvature(q, x)) == 0.0


def test_coincident_knots_merge_and_dead_neurons_vanish():
    x = jnp.linspace(-2.0, 2.0, 7)
    p = ms.ShallowParams(
        jnp.array([[2.0], [1.0], [0.0]]), jnp.array([-1.0, -0.5, 3.0]),
        jnp.array([1.5, -3.0, 10.0]), jnp.array(0.0),
    )  # fmt: skip  # knots 0.5 and 0.5 with masses 3 and -3; dead neuron
    assert float(weighted_curvature(p, x)) == 0.0
    mk = merged_knots(p)
    assert int(jnp.sum(mk.first & (mk.position < 1e300))) == 1


def test_nd_mirror_hyperplanes_merge_with_same_sign():
    x = jax.random.normal(jax.random.key(0), (15, 2), jnp.float64)
    w = jnp.array([[1.0, 2.0], [-1.0, -2.0]])
    b1 = jnp.array([0.3, -0.3])
    # sigma(z) + sigma(-z) = |z|: masses add (2 ||w||); sigma(z) - sigma(-z) = z: they cancel
    p = ms.ShallowParams(w, b1, jnp.array([1.0, 1.0]), jnp.array(0.0))
    v = w[:1] / jnp.linalg.norm(w[0])
    g = weight(v, -b1[:1] / jnp.linalg.norm(w[0]), x)
    np.testing.assert_allclose(
        weighted_curvature(p, x), 2 * jnp.linalg.norm(w[0]) * g[0], rtol=1e-13
    )
    q = p._replace(w2=jnp.array([1.0, -1.0]))
    assert float(weighted_curvature(q, x)) == 0.0


def random_net(seed, d, k=7):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    n = [2, 5, 13][seed % 3]  # few distinct shapes: few compilations
    return ms.init_shallow(k1, d, k, scheme="ntk", dtype=jnp.float64), jax.random.normal(
        k2, (n, d), jnp.float64
    )


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 100_000), d=st.integers(1, 5))
def test_lemma4_holds_for_every_network(seed, d):
    """lambda_max(Phi Phi^T / n) >= 1 + 2 weighted curvature, for any theta (THEORY §3-4)."""
    p, x = random_net(seed, d)
    lam, bound = _lemma4_sides(p, x)
    assert float(lam) >= float(bound) - 1e-10 * float(lam)


@jax.jit
def _lemma4_sides(p, x):
    return jnp.linalg.eigvalsh(ms.gauss_newton_gram(p, x))[-1], sharpness_lower_bound(p, x)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 100_000), d=st.integers(1, 4))
def test_curvature_invariant_under_symmetries(seed, d):
    p, x = random_net(seed, d)
    alpha = jnp.exp(jax.random.normal(jax.random.key(seed + 1), (7,), jnp.float64))
    perm = jax.random.permutation(jax.random.key(seed + 2), 7)
    base = float(weighted_curvature(p, x))
    np.testing.assert_allclose(
        weighted_curvature(ms.rescale(p, alpha), x), base, rtol=1e-11, atol=1e-14
    )
    np.testing.assert_allclose(
        weighted_curvature(ms.permute(p, perm), x), base, rtol=1e-11, atol=1e-14
    )


def test_curvature_jit_vmap():
    nets = [random_net(s, 2)[0] for s in range(3)]
    x = jax.random.normal(jax.random.key(9), (10, 2), jnp.float64)
    batch = jax.tree.map(lambda *a: jnp.stack(a), *nets)
    got = jax.jit(jax.vmap(lambda p: weighted_curvature(p, x)))(batch)
    np.testing.assert_allclose(got, [float(weighted_curvature(q, x)) for q in nets], rtol=1e-13)


def test_theorem_quantities():
    assert float(theorem1_budget(0.4)) == pytest.approx(2.0)  # 1/eta - 1/2
    with pytest.raises(ValueError, match="eta"):
        theorem1_budget(-1.0)
    p = ms.ShallowParams(jnp.array([[1.0], [-1.0], [2.0]]), jnp.array([0.0, 0.0, -1.0]),
                         jnp.array([1.0, 1.0, 0.5]), jnp.array(0.25))  # fmt: skip
    x = jnp.linspace(-2.0, 2.0, 8)
    eta = 0.1
    r = theorem2_delta(p, x, eta)
    # by hand from the statement (seed 004 eqs. 24-25): rho = ||theta||_inf = 2, M = 2,
    # C = max(1, rho (1 + M)) = 6; knots at 0 (two neurons, masses 1 + 1) and 0.5: L = 2;
    # p = 1 + k - L = 2 unused degrees of freedom, p/n = 1/4
    assert float(r.rho) == 2.0 and float(r.M) == 2.0 and float(r.C) == 6.0
    assert int(r.num_knots) == 2 and int(r.p) == 2
    # Delta is the positive root of Delta^2 - 3 C^2 (p/n) Delta - (3/2) C^2 (p/n) / eta = 0
    # (the quadratic the closed form solves): found here by numpy's polynomial roots
    q = 0.25
    roots = np.roots([1.0, -3 * 36 * q, -1.5 * 36 * q / eta])
    np.testing.assert_allclose(float(r.delta), roots.real.max(), rtol=1e-13)
    np.testing.assert_allclose(float(r.budget), 1 / eta - 0.5 + float(r.delta), rtol=1e-14)
    # with every neuron used (L = k + 1, p = 0) Theorem 2 reduces to Theorem 1: Delta = 0
    r0 = theorem2_delta(p, x, eta, num_knots=4)
    assert float(r0.delta) == 0.0
    assert float(r0.budget) == pytest.approx(float(theorem1_budget(eta)), rel=1e-15)
    # more unused freedom or a smaller step size both loosen the budget
    assert float(theorem2_delta(p, x, eta, num_knots=1).delta) > float(r.delta)
    assert float(theorem2_delta(p, x, eta / 2).delta) > float(r.delta)


def test_bad_inputs():
    p = ms.init_shallow(jax.random.key(0), 2, 3, dtype=jnp.float64)
    with pytest.raises(ValueError, match="x_train"):
        weighted_curvature(p, jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="x_train"):
        weight_1d(jnp.ones(3), jnp.ones((3, 2)))
    with pytest.raises(ValueError, match="b must have shape"):
        weight(jnp.ones((3, 2)), jnp.ones(2), jnp.ones((5, 2)))
    with pytest.raises(ValueError, match="non-zero rows"):
        weight(jnp.array([[1.0, 0.0], [0.0, 0.0]]), jnp.ones(2), jnp.ones((5, 2)))
    with pytest.raises(ValueError, match="dist"):
        population_weight_1d(jnp.zeros(2), "cauchy")
