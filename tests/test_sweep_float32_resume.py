"""`minstab sweep --dtype float32 --out DIR` run twice, the second time over a truncated chunk.

Its own module so that pytest-xdist (``--dist loadfile``) can run it beside tests/test_float32.py.
"""

import sys

import jax.numpy as jnp
import numpy as np

import minstab as ms
from minstab.engine.sweep import load_sweep
from tests.test_float32 import RTOL, _run
from tests.test_sweep import _gauss_newton_top


def test_minstab_sweep_float32_resumes_after_a_truncated_chunk(tmp_path):
    """The real command twice: float32 throughout; the rerun reuses the intact chunk, warns
    about the truncated one, recomputes it, and writes the same results.
    """
    out = tmp_path / "run"
    cell = tmp_path / "cell.toml"  # the cell this test was built on, whatever the default
    cell.write_text("width = 16\noutput_scale = 4.0\nn = 8\n")
    cmd = [sys.executable, "-m", "minstab", "sweep", "--out", str(out), "--quiet",
           "--config", str(cell),
           "--dtype", "float32", "--tol", "1e-9", "--etas", "0.09,0.1,0.11",
           "--steps", "50000", "--seeds", "1", "--seed-offset", "0",
           "--chunk-size", "2"]  # fmt: skip
    # three step sizes of one seed: the verdicts are inconclusive (exit 0 whatever they say) and
    # every check holds; resuming is what this test checks
    # XLA's default compile options (tests/helpers.py default_xla_env): 50 000 steps run far
    # longer than they compile, and the float64 check below needs users' arithmetic
    _run(cmd, returncodes=(0,), optimize=True)
    first = load_sweep(out / "seed_0")
    chunks = out / "chunks"
    assert sorted(f.name for f in chunks.glob("chunk_*.npz")) == [
        "chunk_0000.npz",
        "chunk_0001.npz",
    ]
    kept = (chunks / "chunk_0000.npz").stat().st_mtime_ns
    data = (chunks / "chunk_0001.npz").read_bytes()
    (chunks / "chunk_0001.npz").write_bytes(data[: len(data) // 3])
    proc = _run(cmd, returncodes=(0,), optimize=True)
    assert "chunk_0001.npz: unreadable chunk" in proc.stderr and "Traceback" not in proc.stderr
    assert "chunk_0000" not in proc.stderr
    assert (chunks / "chunk_0000.npz").stat().st_mtime_ns == kept  # loaded, not rewritten
    second = load_sweep(out / "seed_0")
    for f in ("loss", "sharpness", "lower_bound", "flattest_sharpness", "converged"):
        a, b = np.asarray(getattr(first, f)), np.asarray(getattr(second, f))
        assert a.dtype == b.dtype and (a.dtype == bool or a.dtype == np.float32), f
        np.testing.assert_allclose(b, a, rtol=RTOL, err_msg=f)
    # float32 numbers that are right, not only consistent: the Gauss-Newton sharpness of each
    # converged run, in float64 at its float32 parameters
    x = jnp.asarray(second.x, jnp.float64)
    assert np.all(second.converged), second.table()
    for i in range(second.num_runs):
        q = ms.ShallowParams(*(jnp.asarray(a, jnp.float64) for a in second.params_at(i)))
        np.testing.assert_allclose(second.sharpness[i], _gauss_newton_top(q, x), rtol=RTOL)


def test_toml_dtype_float32_is_used(tmp_path):
    """`dtype = "float32"` in a --config file holds when no --dtype flag is given (it used to
    be overridden by the flag's default), and runs in float32 throughout."""
    toml = tmp_path / "f32.toml"
    toml.write_text('dtype = "float32"\n')
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "minstab", "sweep", "--out", str(out), "--quiet",
           "--config", str(toml), "--etas", "0.1", "--steps", "500", "--seeds", "1"]  # fmt: skip
    _run(cmd, returncodes=(0,))
    r = load_sweep(out / "seed_8")
    assert r.config["dtype"] == "float32"
    assert np.asarray(r.loss).dtype == np.float32 and np.asarray(r.params.w1).dtype == np.float32
