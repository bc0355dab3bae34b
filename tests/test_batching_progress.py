"""Progress on long batched passes (issue 32): counts what was computed, changes no number.

The expected number of updates is counted from what each routine must compute, independently
of the progress code: a batched product over n = 23 samples in batches of 5 is 5 batches; an
exact block (at most 64 parameters for the sharpness, at most ``num_samples`` for the trace)
takes one product per parameter (unit vectors), a Hutch++ block ``num_samples`` products;
Lanczos reports its own number of products (``num_matvecs``). The values with progress on
equal those with it off to rounding (the largest difference seen: 1.1e-16 in an eigenvector of
norm 1, with the test suite's XLA flags; none with XLA's defaults).
"""

import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import minstab as ms
from minstab.engine.batching import batch_mean, pass_progress

from .model_zoo import problem

N, B = 23, 5
BATCHES = 5  # 5 + 5 + 5 + 5 + 3


def same(a, b):
    """Equal leaf by leaf: integers and flags exactly, floats to rounding (1e-13 of the leaf's
    largest entry: the callback may change XLA's fusion, hence the rounding, of a product)."""
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    if len(la) != len(lb):
        return False
    for u, v in zip(la, lb, strict=True):
        u, v = np.asarray(u), np.asarray(v)
        if not np.issubdtype(u.dtype, np.floating):
            if not np.array_equal(u, v):
                return False
        elif not np.max(np.abs(u - v), initial=0.0) <= 1e-13 * np.max(np.abs(u), initial=1.0):
            return False
    return True


def test_batch_mean_reports_each_batch_once_also_vmapped():
    x = jnp.arange(float(N))[:, None]

    def mean(s):
        return batch_mean(lambda xb, yb: s * jnp.mean(xb), x, x, batch_size=B, progress=True)

    with pass_progress("t", stream=io.StringIO()) as bar:
        plain = jax.jit(mean)(2.0)
        many = jax.jit(jax.vmap(mean))(jnp.arange(3.0))
    assert float(plain) == 22.0 and np.allclose(many, [0.0, 11.0, 22.0])
    assert (bar.batches, bar.passes) == (4 * BATCHES, 4)  # 1 + 3 vmapped passes


def test_no_open_bar_no_count_and_disabled_yields_none():
    x = jnp.arange(float(N))[:, None]
    f = jax.jit(lambda x: batch_mean(lambda xb, yb: jnp.mean(xb), x, x, batch_size=B,
                                     progress=True))  # fmt: skip
    assert float(f(x)) == 11.0  # no bar open: the callbacks do nothing
    with pass_progress("t", enabled=False) as bar:
        assert bar is None and float(f(x)) == 11.0


def test_sharpness_progress_counts_lanczos_products():
    apply, p, x, y = problem("mlp", jax.random.key(3), interpolating=False, n=N)
    kw = dict(model=apply, loss=None, method="lanczos", v0=None, num_iters=None, tol=None,
              negative_slope=0.0, full_output=True, data_batch_size=B)  # fmt: skip
    off = ms.sharpness(p, x, y, **kw)
    with pass_progress("count", stream=io.StringIO()) as bar:  # the call reports to this bar
        on = ms.sharpness(p, x, y, progress=True, **kw)
    assert same(on, off) and bool(off.converged)
    assert (bar.batches, bar.passes) == (int(off.num_matvecs) * BATCHES, int(off.num_matvecs))


def test_block_sharpness_and_trace_progress(capsys):
    apply, p, x, y = problem("cnn", jax.random.key(3), interpolating=False, n=N)
    sizes = [a.size for a in jax.tree_util.tree_leaves(p)]  # 27, 3, 48, 1: all exact (<= 64)
    assert max(sizes) <= 64
    off = ms.block_sharpness(p, x, y, model=apply, data_batch_size=B, full_output=True)
    with pass_progress("count", stream=io.StringIO()) as bar:
        on = ms.block_sharpness(p, x, y, model=apply, data_batch_size=B, full_output=True,
                                progress=True)  # fmt: skip
    assert same(on, off)
    assert (bar.batches, bar.passes) == (sum(sizes) * BATCHES, sum(sizes))
    kw = dict(key=jax.random.key(0), num_samples=12, model=apply, data_batch_size=B)
    t_off = ms.block_trace(p, x, y, **kw)
    with pass_progress("count", stream=io.StringIO()) as bar:
        t_on = ms.block_trace(p, x, y, progress=True, **kw)
    assert same(t_on, t_off)
    products = sum(s if s <= 12 else 12 for s in sizes)  # Hutch++: 12; exact: one per entry
    assert (bar.batches, bar.passes) == (products * BATCHES, products)
    capsys.readouterr()
    ms.block_trace(p, x, y, progress=True, **kw)  # alone: its own bar on stderr
    err = capsys.readouterr().err
    assert "block_trace" in err and f"{products} passes of {BATCHES} batches" in err


def test_progress_is_validated():
    apply, p, x, y = problem("cnn", jax.random.key(3), interpolating=False, n=N)
    with pytest.raises(ValueError, match="progress"):
        ms.block_sharpness(p, x, y, model=apply, data_batch_size=B, progress="yes")


def test_public_spectrum_functions_report_their_products():
    """``progress=`` on the public entry points: Lanczos products x batches, values unchanged."""
    apply, p, x, y = problem("mlp", jax.random.key(4), interpolating=False, n=N)
    kw = dict(model=apply, data_batch_size=B)
    stream = io.StringIO()

    off = ms.hessian_eigenvalues(p, x, y, k=2, **kw)
    with pass_progress("count", stream=stream) as bar:
        on = ms.hessian_eigenvalues(p, x, y, k=2, progress=True, **kw)
    assert same(on, off)
    assert bar.batches == int(off.num_matvecs) * BATCHES

    lam = ms.sharpness(p, x, y, method="lanczos", full_output=True, **kw)
    with pass_progress("count", stream=stream) as bar:
        lam_on = ms.sharpness(p, x, y, method="lanczos", full_output=True, progress=True, **kw)
    assert same(lam_on, lam) and bar.batches == int(lam.num_matvecs) * BATCHES

    key = jax.random.key(5)
    tr = ms.hessian_trace(p, x, y, key=key, num_samples=8, method="hutchinson", **kw)
    with pass_progress("count", stream=stream) as bar:
        tr_on = ms.hessian_trace(p, x, y, key=key, num_samples=8, method="hutchinson",
                                 progress=True, **kw)  # fmt: skip
    assert same(tr_on, tr) and bar.batches == 8 * BATCHES  # one product per probe

    sd = ms.spectral_density(p, x, y, key=key, num_probes=2, num_iters=6, **kw)
    with pass_progress("count", stream=stream) as bar:
        sd_on = ms.spectral_density(p, x, y, key=key, num_probes=2, num_iters=6, progress=True,
                                    **kw)  # fmt: skip
    assert same(sd_on, sd) and bar.batches == 2 * 6 * BATCHES  # num_iters products per probe

    with pytest.raises(ValueError, match="progress"):
        ms.hessian_eigenvalues(p, x, y, k=2, progress="yes", **kw)
