"""benchmarks/adaptive_tracking.py's Kaniel-Paige-Saad count against Lanczos on known spectra."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import minstab as ms
from benchmarks.adaptive_tracking import _kps_products


@pytest.mark.parametrize("gap", [0.3, 0.1, 0.03])
@pytest.mark.parametrize("tan0", [0.01, 0.3, 3.0])
def test_kps_count_bounds_lanczos_and_is_not_vacuous(gap, tan0):
    """On a diagonal operator with lambda_1 = 1, the rest uniform on [-0.2, 1 - gap], and a start
    at angle theta_0 to e_1: Lanczos stops within the predicted count (the theorem's bound) and
    needs at least half of it (the bound is near-tight for a uniform spectrum: a wrong gamma or
    spread makes one side fail)."""
    n, tol = 400, 1e-6
    lam = np.concatenate([[1.0], np.linspace(1 - gap, -0.2, n - 1)])
    w = np.random.default_rng(0).standard_normal(n)
    w[0] = 0
    v0 = np.eye(n)[0] + tan0 * w / np.linalg.norm(w)
    r = ms.lanczos(lambda v, a: a * v, jnp.asarray(v0), jnp.asarray(lam), tol=tol, num_iters=200)
    assert bool(r.converged)
    predicted = _kps_products(tan0, gap / (1 - gap + 0.2), 1.2, tol)
    assert 0.5 * predicted <= int(r.num_matvecs) <= predicted + 1


def test_kps_count_is_one_when_the_start_is_already_good():
    assert _kps_products(1e-9, 0.1, 1.0, 1e-6) == 1.0
