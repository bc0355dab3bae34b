import itertools

import jax.numpy as jnp
import numpy as np
import pytest

import minstab as ms
from minstab.sgd import sgd_stability_threshold
from tests.helpers import interpolating_net


def brute(p, x, y, b, replacement):
    """Dense P^2 x P^2 reference with E[H_hat (x) H_hat] from all batches enumerated."""
    j = np.asarray(ms.jacobian(p, x))
    n, pp = j.shape
    hs = [np.outer(j[i], j[i]) for i in range(n)]
    h = sum(hs) / n
    batches = (
        list(itertools.product(range(n), repeat=b))
        if replacement
        else list(itertools.combinations(range(n), b))
    )
    e = sum(np.kron(sum(hs[i] for i in bt) / b, sum(hs[i] for i in bt) / b) for bt in batches)
    e = e / len(batches)
    eye = np.eye(pp)
    c = 0.5 * (np.kron(h, eye) + np.kron(eye, h))
    ev = np.linalg.eigvals(np.linalg.pinv(c, rcond=1e-10) @ e)
    return 2 / np.max(ev.real)


@pytest.mark.parametrize("b,repl", [(1, False), (2, False), (4, False), (2, True)])
def test_threshold_matches_brute_force(getkey, b, repl):
    p, x, y = interpolating_net(getkey(), n=4, d=1, k=4)
    ref = brute(p, x, y, b, repl)
    for m in ("dense", "power"):
        r = sgd_stability_threshold(p, x, y, b, replacement=repl, method=m)
        np.testing.assert_allclose(float(r.eta_star), ref, rtol=1e-7)


def test_full_batch_and_monotone(getkey):
    p, x, y = interpolating_net(getkey(), n=6, d=1, k=10)
    s = float(jnp.linalg.eigvalsh(ms.hessian(p, x, y))[-1])
    etas = [float(sgd_stability_threshold(p, x, y, b).eta_star) for b in range(1, 7)]
    np.testing.assert_allclose(etas[-1], 2 / s, rtol=1e-8)
    assert all(a <= b_ * (1 + 1e-10) for a, b_ in zip(etas[:-1], etas[1:], strict=True))


def test_non_uniformity_dense(getkey):
    from minstab.sgd import non_uniformity

    p, x, y = interpolating_net(getkey(), n=5, d=1, k=6)
    j = np.asarray(ms.jacobian(p, x))
    hs = [np.outer(r, r) for r in j]
    h = sum(hs) / 5
    ref = np.sqrt(np.linalg.eigvalsh(sum(a @ a for a in hs) / 5 - h @ h)[-1])
    np.testing.assert_allclose(float(non_uniformity(p, x, y)), ref, rtol=1e-8)


def test_simulation_below_and_above(getkey):
    import jax

    from minstab.sgd import simulate_linear_sgd

    p, x, y = interpolating_net(getkey(), n=6, d=1, k=8)
    keys = jax.random.split(getkey(), 256)
    for b in (2, 4):
        es = float(sgd_stability_threshold(p, x, y, b).eta_star)
        lo = float(simulate_linear_sgd(p, x, y, 0.8 * es, b, keys, steps=400))
        hi = float(simulate_linear_sgd(p, x, y, 1.25 * es, b, keys, steps=400))
        assert lo < 1.0 < hi, (b, lo, hi)


def test_experiment_runs(tmp_path):
    from minstab.experiments import sgd_threshold as ex

    r = ex.run(ex.Config(n=4, width=5, seeds=8, steps=20), progress=False)
    np.testing.assert_allclose(r.eta_star[-1], r.gd_limit, rtol=1e-8)
    assert len(ex.plot(r, tmp_path)) == 2
