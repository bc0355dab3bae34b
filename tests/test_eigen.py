"""One contract over every eigen-solver: accuracy vs eigvalsh, jit and vmap, shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import minstab as ms


def matrix_with_spectrum(key, evals):
    """Q diag(evals) Q^T with a random orthogonal Q (matfree's hermitian_matrix_from_eigenvalues)."""
    n = evals.shape[0]
    q, _ = jnp.linalg.qr(jax.random.normal(key, (n, n), jnp.float64))
    return (q * evals[None, :]) @ q.T


SPECTRA = {
    "separated": jnp.concatenate([jnp.array([10.0, 5.0]), jnp.linspace(-1.0, 1.0, 58)]),
    "clustered_top": jnp.concatenate(
        [jnp.array([3.0, 3.0 - 1e-3, 3.0 - 2e-3]), jnp.linspace(0.0, 1.0, 47)]
    ),
    "negative_dominant": jnp.concatenate([jnp.array([-20.0, 2.0]), jnp.linspace(-1.0, 1.5, 38)]),
    "all_negative": -jnp.linspace(1.0, 4.0, 30),
    "degenerate_top": jnp.concatenate([jnp.array([7.0, 7.0]), jnp.linspace(-3.0, 3.0, 28)]),
}


def matvec(v, a):
    return a @ v


def solve(method, a, v0, **kw):
    if method == "lanczos":
        return ms.lanczos(matvec, v0, a, **kw)
    if method == "power":
        return ms.power_iteration(matvec, v0, a, num_iters=20_000, **kw)
    return ms.eigh_dense(a, **kw)


def expected_value(method, evals) -> float:
    """Lanczos and dense find the largest algebraic eigenvalue; power the largest magnitude."""
    if method == "power":
        return float(evals[jnp.argmax(jnp.abs(evals))])
    return float(jnp.max(evals))


CONVERGES = {  # (method, spectrum) pairs that reach the tolerance within their budget
    (m, n) for m in ("lanczos", "dense", "power") for n in SPECTRA
} - {("power", "clustered_top")}  # |lambda_2/lambda_1| = 1 - 3e-4: see the test below


@pytest.mark.parametrize(
    ("method", "name"), sorted(CONVERGES), ids=[f"{m}-{n}" for m, n in sorted(CONVERGES)]
)
def test_extreme_eigenvalue(method, name):
    """Each solver finds its documented eigenvalue; power's is the dominant one (STYLE.md).

    On "negative_dominant" and "all_negative" the two differ (2 vs -20, -1 vs -4), so a power
    iteration returning the largest algebraic value, or Lanczos the largest magnitude, fails.
    """
    evals = SPECTRA[name]
    a = matrix_with_spectrum(jax.random.key(0), evals)
    v0 = jax.random.normal(jax.random.key(1), evals.shape, jnp.float64)
    true = expected_value(method, evals)
    r = solve(method, a, v0)
    assert bool(r.converged)
    assert abs(float(r.value) - true) <= 1e-10 * abs(true)
    np.testing.assert_allclose(
        jnp.linalg.norm(a @ r.vector - r.value * r.vector), r.residual, atol=1e-8
    )
    assert float(r.residual) <= 1e-8 * abs(true)
    assert abs(float(jnp.linalg.norm(r.vector)) - 1) < 1e-12


def test_power_iteration_reports_slow_convergence():
    """Clustered top (3, 3 - 1e-3, 3 - 2e-3): power iteration needs ~1e5 steps, and says so.

    After N steps the error components shrink like (1 - 1/3000)^N, so 20 000 steps leave a
    residual near 1e-6, far above the tolerance: ``converged`` must be False with the budget
    spent, and the reported residual must be the true one. The Rayleigh quotient still lies in
    the top cluster (the rest of the spectrum decays like (1/3)^N).
    """
    evals = SPECTRA["clustered_top"]
    a = matrix_with_spectrum(jax.random.key(0), evals)
    v0 = jax.random.normal(jax.random.key(1), evals.shape, jnp.float64)
    r = solve("power", a, v0)
    assert not bool(r.converged) and int(r.num_matvecs) == 20_000
    true_res = float(jnp.linalg.norm(a @ r.vector - r.value * r.vector))
    np.testing.assert_allclose(float(r.residual), true_res, rtol=1e-6)
    assert true_res > 1e-10 * 3.0  # above the default float64 tolerance: honestly unconverged
    assert 3.0 - 2e-3 <= float(r.value) <= 3.0 + 1e-12


@pytest.mark.parametrize("method", ["lanczos", "dense"])
def test_top_k_and_smallest(method):
    evals = SPECTRA["separated"]
    a = matrix_with_spectrum(jax.random.key(2), evals)
    v0 = jnp.ones(evals.shape[0])
    srt = np.sort(np.asarray(evals))
    r = solve(method, a, v0, k=3)
    assert r.value.shape == (3,) and r.vector.shape == (3, 60)
    np.testing.assert_allclose(r.value, srt[::-1][:3], rtol=1e-10)
    r = solve(method, a, v0, k=2, which="smallest")
    np.testing.assert_allclose(r.value, srt[:2], rtol=1e-9, atol=1e-10)


def test_lanczos_jit_and_vmap_agree():
    keys = jax.random.split(jax.random.key(3), 4)
    mats = jnp.stack(
        [matrix_with_spectrum(k, SPECTRA["separated"] * (i + 1)) for i, k in enumerate(keys)]
    )
    v0 = jnp.ones(60)
    eager = [ms.lanczos(matvec, v0, m) for m in mats]
    jitted = jax.jit(lambda v, m: ms.lanczos(matvec, v, m))
    batched = jax.jit(jax.vmap(lambda m: ms.lanczos(matvec, v0, m)))(mats)
    for i, e in enumerate(eager):
        np.testing.assert_allclose(jitted(v0, mats[i]).value, e.value, rtol=1e-12)
        np.testing.assert_allclose(batched.value[i], e.value, rtol=1e-12)
        np.testing.assert_allclose(batched.value[i], 10.0 * (i + 1), rtol=1e-10)
    assert bool(jnp.all(batched.converged))


def test_lanczos_reports_nonconvergence():
    a = matrix_with_spectrum(jax.random.key(4), SPECTRA["clustered_top"])
    r = ms.lanczos(matvec, jnp.ones(50), a, num_iters=3)
    assert not bool(r.converged) and int(r.num_matvecs) == 3


def test_lanczos_warm_start_is_immediate():
    a = matrix_with_spectrum(jax.random.key(5), SPECTRA["separated"])
    r = ms.lanczos(matvec, jnp.ones(60), a)
    r2 = ms.lanczos(matvec, r.vector, a)
    assert int(r2.num_matvecs) <= 2 and bool(r2.converged)


@pytest.mark.parametrize("k,which", [(1, "largest"), (3, "largest"), (2, "smallest")])
def test_lanczos_value_tol_reaches_the_value_accuracy_in_fewer_products(k, which):
    # a gap around the wanted values: their errors fall like the square of the residuals
    evals = jnp.concatenate([jnp.array([10.0, 9.5, 9.0, -3.0, -2.6]), jnp.linspace(-2.0, 8.0, 195)])
    a = matrix_with_spectrum(jax.random.key(6), evals)
    srt = np.sort(np.asarray(evals))
    want = srt[::-1][:k] if which == "largest" else srt[:k]
    v0 = jax.random.normal(jax.random.key(7), (200,), jnp.float64)
    by_value = ms.lanczos(matvec, v0, a, k=k, which=which, tol=1e-8, value_tol=1e-8)
    by_residual = ms.lanczos(matvec, v0, a, k=k, which=which, tol=1e-8)
    assert bool(by_value.converged)
    # the estimated error r^2/gap is trusted only where the true error meets the tolerance
    # (a factor 10 for the gap estimate); an estimate that stopped too early fails here
    np.testing.assert_allclose(by_value.value, want, rtol=0, atol=1e-7 * abs(srt).max())
    # and it must save products: the residual test of the same tolerance needs more
    assert int(by_value.num_matvecs) < int(by_residual.num_matvecs)
    # the reported residuals are still the true ||A v - value v||
    vec = np.atleast_2d(by_value.vector)
    true_res = np.linalg.norm(
        vec @ np.asarray(a) - np.atleast_1d(by_value.value)[:, None] * vec, axis=1
    )
    np.testing.assert_allclose(np.atleast_1d(by_value.residual), true_res, atol=1e-8)


def test_solver_input_errors():
    a = jnp.eye(4)
    with pytest.raises(ValueError, match="which"):
        ms.lanczos(matvec, jnp.ones(4), a, which="magnitude")
    with pytest.raises(ValueError, match="v0 must be a non-zero"):
        ms.lanczos(matvec, jnp.zeros(4), a)
    with pytest.raises(ValueError, match="v0 must be a vector"):
        ms.lanczos(matvec, jnp.ones((4, 1)), a)
    with pytest.raises(ValueError, match="k must be between"):
        ms.lanczos(matvec, jnp.ones(4), a, k=5)
    for bad in (0.0, -1e-6, float("nan")):
        with pytest.raises(ValueError, match="value_tol"):
            ms.lanczos(matvec, jnp.ones(4), a, value_tol=bad)
    with pytest.raises(ValueError, match="matrix must be square"):
        ms.eigh_dense(jnp.ones((3, 4)))


@pytest.mark.parametrize("reorthogonalize", [True, False])
def test_tridiagonal_gauss_rule_with_and_without_reorthogonalization(reorthogonalize):
    """The Gauss rule of T integrates the spectral measure at q: sum_i w_i theta_i^k equals
    q^T A^k q for k < 2m in exact arithmetic. Without reorthogonalization the top eigenvalue
    (far from the rest) converges early and comes back as copies ("ghosts"): their weights
    must add up to its true weight q_top^2 (Greenbaum 1989), and the moments must still hold.
    A rule whose ghosts double-count the weight, or a wrong recurrence, fails both.
    """
    evals = jnp.concatenate([jnp.linspace(0.0, 1.0, 299), jnp.array([10.0])])
    q = jax.random.normal(jax.random.key(3), (300,), jnp.float64)
    q = q / jnp.linalg.norm(q)
    t = ms.lanczos_tridiagonal(
        lambda v: evals * v, q, num_iters=60, reorthogonalize=reorthogonalize
    )
    nodes, weights = (np.asarray(a) for a in t.nodes_and_weights())
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-12)
    for k in range(1, 9):
        exact = float(jnp.sum(q**2 * evals**k))
        np.testing.assert_allclose(np.sum(weights * nodes**k), exact, rtol=1e-9)
    near = np.abs(nodes - 10.0) < 1e-6
    np.testing.assert_allclose(weights[near].sum(), float(q[-1] ** 2), rtol=1e-8)
    # full reorthogonalization keeps one copy; the plain recurrence makes ghosts here
    assert near.sum() == 1 if reorthogonalize else near.sum() >= 2


def test_tridiagonal_rejects_a_non_bool_reorthogonalize():
    with pytest.raises(ValueError, match="reorthogonalize"):
        ms.lanczos_tridiagonal(lambda v: v, jnp.ones(4), num_iters=2, reorthogonalize="no")


def _tridiagonals():
    rng = np.random.default_rng(3)
    yield "random", rng.normal(size=40), rng.normal(size=39)
    # Wilkinson's W21+: pairs of eigenvalues equal to ~1e-14 (the hard case for bisection)
    yield "wilkinson", np.abs(np.arange(-10.0, 11.0)), np.ones(20)
    yield "split", rng.normal(size=12), np.where(np.arange(11) % 4 == 3, 0.0, rng.normal(size=11))
    yield "scaled", 1e6 * rng.normal(size=9), 1e-3 * rng.normal(size=8)
    yield "one", np.array([2.5]), np.zeros(0)


@pytest.mark.parametrize("name", ["random", "wilkinson", "split", "scaled", "one"])
def test_tridiagonal_values_match_dense_eigvalsh(name):
    # the multisection solver inside Lanczos against LAPACK on the dense matrix
    from minstab.engine.eigen import _tridiagonal_values

    diag, off = next((d, o) for n, d, o in _tridiagonals() if n == name)
    dense = np.diag(diag) + np.diag(off, 1) + np.diag(off, -1)
    exact = np.linalg.eigvalsh(dense)
    m = diag.size
    norm = np.abs(exact).max()
    for first, count in [(0, 1), (m - 1, 1), (max(m - 3, 0), min(3, m)), (0, m)]:
        got = np.asarray(_tridiagonal_values(jnp.asarray(diag), jnp.asarray(off), first, count))
        np.testing.assert_allclose(got, exact[first : first + count], rtol=0,
                                   atol=4 * m * np.finfo(np.float64).eps * norm)  # fmt: skip
