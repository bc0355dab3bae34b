"""Spectrum API (issue 17) on small models (P <= 2000) against dense eigvalsh of jax.hessian."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import minstab as ms
from minstab.engine import spectrum
from tests.helpers import interpolating_net
from tests.model_zoo import problem, reference_ggn, reference_hessian

ROOT = Path(__file__).resolve().parents[1]


def spectrum_of(a):
    return np.linalg.eigvalsh(np.asarray(a))


# ----------------------------------------------------------------------------- eigenpairs
@pytest.mark.parametrize("name", ["mlp", "cnn"])
@pytest.mark.parametrize("kind", ["interpolating", "random"])
def test_top5_equals_eigvalsh(getkey, name, kind):
    apply, p, x, y = problem(name, getkey(), interpolating=kind == "interpolating")
    h = reference_hessian(apply, p, x, y)
    ref = spectrum_of(h)[::-1][:5]
    r = ms.hessian_eigenvalues(p, x, y, k=5, model=apply)
    assert r.values.shape == (5,) and r.vectors.shape == (5, h.shape[0])
    assert bool(jnp.all(r.converged))
    np.testing.assert_allclose(r.values, ref, rtol=0, atol=1e-8 * abs(ref[0]))
    # the residuals are the true ||H v - value v|| (up to rounding) and the vectors orthonormal
    true_res = np.linalg.norm(r.vectors @ h - r.values[:, None] * r.vectors, axis=1)
    np.testing.assert_allclose(r.residuals, true_res, atol=1e-7 * abs(ref[0]))
    np.testing.assert_allclose(r.vectors @ r.vectors.T, np.eye(5), atol=1e-8)


def test_value_tol_top5_equals_eigvalsh_in_fewer_products(getkey):
    apply, p, x, y = problem("mlp", getkey(), interpolating=False)
    ref = spectrum_of(reference_hessian(apply, p, x, y))[::-1][:5]
    r = ms.hessian_eigenvalues(p, x, y, k=5, model=apply, tol=1e-9, value_tol=1e-9)
    by_residual = ms.hessian_eigenvalues(p, x, y, k=5, model=apply, tol=1e-9)
    assert bool(jnp.all(r.converged))
    np.testing.assert_allclose(r.values, ref, rtol=0, atol=1e-8 * abs(ref[0]))
    assert int(r.num_matvecs) < int(by_residual.num_matvecs)
    with pytest.raises(ValueError, match="value_tol"):
        ms.hessian_eigenvalues(p, x, y, k=5, model=apply, value_tol=-1.0)


def test_bottom_k_and_shallow_default(getkey):
    apply, p, x, y = problem("cnn", getkey(), interpolating=False)
    ref = spectrum_of(reference_hessian(apply, p, x, y))
    r = ms.hessian_eigenvalues(p, x, y, k=3, model=apply, which="smallest", num_iters=79)
    assert bool(jnp.all(r.converged))
    np.testing.assert_allclose(r.values, ref[:3], rtol=0, atol=1e-8 * abs(ref[0]))
    q, xs, ys = interpolating_net(getkey(), n=8, d=2, k=12)  # model=None: the shallow net
    r = ms.hessian_eigenvalues(q, xs, ys, k=2)
    np.testing.assert_allclose(r.values, spectrum_of(ms.hessian(q, xs, ys))[::-1][:2], rtol=1e-9)


@pytest.mark.parametrize("loss", [None, "cross-entropy"])
def test_ggn_eigenvalues(getkey, loss):
    apply, p, x, y = problem("mlp", getkey(), interpolating=False)
    fn = None
    if loss is not None:
        y = jax.nn.one_hot(jax.random.randint(getkey(), (x.shape[0],), 0, 2), 2, dtype=x.dtype)
        fn = ms.softmax_cross_entropy
    ref = spectrum_of(reference_ggn(apply, p, x, y, loss=fn))[::-1][:5]
    r = ms.hessian_eigenvalues(p, x, y, k=5, model=apply, loss=fn, curvature="ggn")
    assert bool(jnp.all(r.converged))
    np.testing.assert_allclose(r.values, ref, rtol=0, atol=1e-8 * ref[0])


def test_ggn_is_the_hessian_at_interpolation(getkey):
    apply, p, x, y = problem("cnn", getkey(), interpolating=True)
    ref = spectrum_of(reference_hessian(apply, p, x, y))[::-1][:5]
    r = ms.hessian_eigenvalues(p, x, y, k=5, model=apply, curvature="ggn")
    np.testing.assert_allclose(r.values, ref, rtol=1e-8)


# ----------------------------------------------------------------------------- trace
@pytest.mark.parametrize("method", ["hutch++", "hutchinson", "xtrace"])
@pytest.mark.parametrize("name,kind", [("mlp", "interpolating"), ("cnn", "random")])
def test_trace_within_three_standard_errors(getkey, name, kind, method):
    apply, p, x, y = problem(
        name, getkey(), interpolating=kind == "interpolating", n=40 if kind == "random" else None
    )
    exact = float(np.trace(np.asarray(reference_hessian(apply, p, x, y))))
    num = 100 if method == "xtrace" else 200  # xtrace: 50 probes, fewer than P (79 for the CNN)
    t = ms.hessian_trace(p, x, y, key=getkey(), num_samples=num, model=apply, method=method)
    assert int(t.num_matvecs) == num
    err = abs(float(t.value) - exact)
    assert err <= 3 * float(t.stderr) + 1e-10 * abs(exact)  # exact up to rounding: se = 0
    if method != "hutchinson":
        # Hutchinson's own standard error at 200 samples is 3-8 % on these spectra (per-probe
        # relative std 0.5-1.2), so the 5 % bound is Hutch++'s and XTrace's
        assert err <= 0.05 * abs(exact)


@pytest.mark.parametrize("method", ["hutch++", "hutchinson", "xtrace"])
def test_trace_samples_do_not_depend_on_the_probe_batch(getkey, method):
    """Batches of 1, 4 (a remainder of 3 for Hutchinson's 11) and the default: same probes."""
    apply, p, x, y = problem("mlp", getkey(), interpolating=False, n=30)
    key = getkey()
    runs = [ms.hessian_trace(p, x, y, key=key, num_samples=11, model=apply, method=method,
                             batch_size=b) for b in (1, 4, None)]  # fmt: skip
    for r in runs[1:]:
        np.testing.assert_allclose(r.samples, runs[0].samples, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(r.value, runs[0].value, rtol=1e-12)
    if method == "hutchinson":  # each sample is z^T H z of the dense Hessian (probes from `key`)
        h = np.asarray(reference_hessian(apply, p, x, y))
        z = np.asarray(jax.random.rademacher(key, (11, h.shape[0]), jnp.float64))
        np.testing.assert_allclose(runs[0].samples, np.einsum("ip,pq,iq->i", z, h, z), rtol=1e-9)


def test_trace_of_ggn_and_under_vmap(getkey):
    apply, p, x, y = problem("cnn", getkey(), interpolating=False, n=40)
    exact = float(np.trace(np.asarray(reference_ggn(apply, p, x, y))))
    keys = jax.random.split(getkey(), 3)
    est = jax.vmap(
        lambda k: ms.hessian_trace(p, x, y, key=k, num_samples=60, model=apply, curvature="ggn")
    )(keys)
    assert est.value.shape == (3,)
    for v, se in zip(est.value, est.stderr, strict=True):
        assert abs(float(v) - exact) <= 3 * float(se) + 1e-10 * exact


def test_hutchpp_beats_hutchinson_on_low_rank_dominated_spectrum(getkey):
    # H = X^T X / n for a linear model: 5 large directions plus a small isotropic part
    n, dim = 200, 120
    u = jax.random.normal(getkey(), (n, 5), jnp.float64)
    v = jax.random.normal(getkey(), (5, dim), jnp.float64)
    x = 10 * u @ v / np.sqrt(dim) + 0.3 * jax.random.normal(getkey(), (n, dim), jnp.float64)

    def apply(q, x):
        return x @ q["w"]

    p, y = {"w": jnp.zeros(dim, jnp.float64)}, jnp.zeros(n, jnp.float64)
    exact = float(jnp.sum(x * x) / n)
    keys = jax.random.split(getkey(), 8)
    errs = {}
    for method in ("hutch++", "hutchinson", "xtrace"):
        f = jax.vmap(
            lambda k, m=method: (
                ms.hessian_trace(p, x, y, key=k, num_samples=30, model=apply, method=m).value
            )
        )
        errs[method] = float(jnp.mean(jnp.abs(f(keys) - exact))) / exact
    assert errs["hutch++"] < 0.2 * errs["hutchinson"], errs
    assert errs["xtrace"] < 0.2 * errs["hutchinson"], errs


def test_xtrace_is_exact_when_the_sketch_spans_the_range(getkey):
    """rank(A) = 6 < 15 probes: the sketch's trace is tr(A), returned with standard error 0."""
    x = jax.random.normal(getkey(), (50, 6), jnp.float64) @ jax.random.normal(
        getkey(), (6, 20), jnp.float64
    )

    def apply(q, x):
        return x @ q["w"]

    p, y = {"w": jnp.zeros(20, jnp.float64)}, jnp.zeros(50, jnp.float64)
    t = ms.hessian_trace(p, x, y, key=getkey(), num_samples=30, model=apply, method="xtrace")
    np.testing.assert_allclose(t.value, jnp.sum(x * x) / 50, rtol=1e-10)
    assert float(t.stderr) == 0.0 and int(t.num_matvecs) == 30


# ----------------------------------------------------------------------------- density
@pytest.mark.parametrize("reorthogonalize", [True, False])
def test_density_moments_and_nodes(getkey, reorthogonalize):
    apply, p, x, y = problem("cnn", getkey(), interpolating=False, n=40)
    evals = spectrum_of(reference_hessian(apply, p, x, y))
    sd = ms.spectral_density(p, x, y, key=getkey(), model=apply, num_probes=300, num_iters=30,
                             reorthogonalize=reorthogonalize)  # fmt: skip
    assert sd.nodes.shape == (300, 30) and sd.weights.shape == (300, 30)
    np.testing.assert_allclose(jnp.sum(sd.weights, axis=1), 1.0, rtol=1e-10)
    m1, m2 = float(sd.moment(1)), float(sd.moment(2))
    assert abs(m1 - np.mean(evals)) <= 0.10 * abs(np.mean(evals))
    assert abs(m2 - np.mean(evals**2)) <= 0.15 * np.mean(evals**2)
    # Ritz values lie in the spectrum's hull; the extremes converge first
    span = evals[-1] - evals[0]
    assert float(jnp.min(sd.nodes)) >= evals[0] - 1e-8 * span
    assert float(jnp.max(sd.nodes)) <= evals[-1] + 1e-8 * span
    assert abs(float(jnp.max(sd.nodes[0])) - evals[-1]) <= 1e-6 * span
    grid = np.linspace(evals[0] - span, evals[-1] + span, 4001)
    dens = np.asarray(sd.density(grid))
    assert np.all(dens >= 0)
    assert abs(np.trapezoid(dens, grid) - 1) < 1e-3


def test_density_ggn_float32_and_plot(getkey):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    apply, p, x, y = problem("mlp", getkey(), interpolating=True)
    p32, x32, y32 = jax.tree.map(lambda a: a.astype(jnp.float32), (p, x, y))
    sd = ms.spectral_density(
        p32, x32, y32, key=getkey(), model=apply, num_probes=2, num_iters=20, curvature="ggn"
    )
    assert sd.nodes.dtype == jnp.float32
    top = spectrum_of(reference_ggn(apply, p, x, y))[-1]
    assert abs(float(jnp.max(sd.nodes)) - top) <= 1e-4 * top
    ax = sd.plot()
    assert ax.get_xlabel() == "eigenvalue" and ax.get_yscale() == "log"
    plt.close(ax.figure)


def test_float32_eigenvalues_and_trace(getkey):
    apply, p, x, y = problem("cnn", getkey(), interpolating=True)
    p32, x32, y32 = jax.tree.map(lambda a: a.astype(jnp.float32), (p, x, y))
    up = jax.tree.map(lambda a: a.astype(jnp.float64), p32)
    h = reference_hessian(apply, up, x32.astype(jnp.float64), y32.astype(jnp.float64))
    ref = spectrum_of(h)[::-1][:5]
    r = ms.hessian_eigenvalues(p32, x32, y32, k=5, model=apply)
    assert r.values.dtype == jnp.float32
    np.testing.assert_allclose(r.values, ref, rtol=0, atol=1e-4 * ref[0])
    t = ms.hessian_trace(p32, x32, y32, key=getkey(), num_samples=60, model=apply)
    assert t.value.dtype == jnp.float32
    assert abs(float(t.value) - float(np.trace(h))) <= 1e-3 * float(np.trace(h))


def test_new_keys_and_data_do_not_recompile(getkey):
    apply, p, x, y = problem("mlp", getkey(), interpolating=False)
    ms.hessian_trace(p, x, y, key=getkey(), num_samples=12, model=apply)
    ms.spectral_density(p, x, y, key=getkey(), model=apply, num_iters=8)
    before = spectrum._trace_jit._cache_size(), spectrum._density_jit._cache_size()
    for _ in range(2):
        _, q, xx, yy = problem("mlp", getkey(), interpolating=False)
        ms.hessian_trace(q, xx, yy, key=getkey(), num_samples=12, model=apply)
        ms.spectral_density(q, xx, yy, key=getkey(), model=apply, num_iters=8)
    after = spectrum._trace_jit._cache_size(), spectrum._density_jit._cache_size()
    assert after == before


def test_bad_input(getkey):
    apply, p, x, y = problem("mlp", getkey(), interpolating=False)
    key = getkey()
    with pytest.raises(ValueError, match="curvature must be one of"):
        ms.hessian_eigenvalues(p, x, y, k=2, model=apply, curvature="fisher")
    with pytest.raises(ValueError, match="k must be an integer between 1 and"):
        ms.hessian_eigenvalues(p, x, y, k=0, model=apply)
    with pytest.raises(ValueError, match="which must be one of"):
        ms.hessian_eigenvalues(p, x, y, k=2, model=apply, which="magnitude")
    with pytest.raises(ValueError, match="num_samples"):
        ms.hessian_trace(p, x, y, key=key, num_samples=3, model=apply)
    with pytest.raises(ValueError, match="method must be one of"):
        ms.hessian_trace(p, x, y, key=key, num_samples=10, model=apply, method="hutch+")
    with pytest.raises(ValueError, match="num_samples"):
        ms.hessian_trace(p, x, y, key=key, num_samples=3, model=apply, method="xtrace")
    size = sum(a.size for a in jax.tree_util.tree_leaves(p))
    with pytest.raises(ValueError, match="below 2 x the number of parameters"):
        ms.hessian_trace(p, x, y, key=key, num_samples=2 * size, model=apply, method="xtrace")
    with pytest.raises(ValueError, match="key must be a PRNG key"):
        ms.hessian_trace(p, x, y, key=jnp.ones(3), num_samples=10, model=apply)
    with pytest.raises(ValueError, match="num_iters"):
        ms.spectral_density(p, x, y, key=key, model=apply, num_iters=10_000)
    with pytest.raises(ValueError, match="reorthogonalize must be True or False"):
        ms.spectral_density(p, x, y, key=key, model=apply, reorthogonalize="no")
    with pytest.raises(ValueError, match="model must be a callable"):
        ms.spectral_density(p, x, y, key=key, model=3)
    with pytest.raises(ValueError, match="y must have the shape"):
        ms.hessian_trace(p, x, y[:, :1], key=key, num_samples=10, model=apply)
