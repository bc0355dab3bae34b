"""float32 end to end, in subprocesses without x64 (the suite itself runs in float64).

The float32 results are checked against float64 references evaluated here, at the float32
points cast up: what is compared is float32 arithmetic, not two diverging trajectories. The
tolerance is ``tol(float32) = 1e-4`` (conftest): about 1e3 float32 ulps (eps = 6e-8) of rounding
accumulated over a few hundred steps and an n x n eigenproblem.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import minstab as ms
from minstab.engine.sweep import load_sweep
from tests.conftest import tol
from tests.helpers import default_xla_env
from tests.test_sweep import _gauss_newton_top

RTOL = tol(jnp.float32)
ETAS = [0.02, 0.05, 0.1, 3.0]  # the last diverges

_LIBRARY_SCRIPT = """
import json, sys
import jax, jax.numpy as jnp, numpy as np
import minstab as ms

assert not jax.config.jax_enable_x64
out = sys.argv[1]
x, y = ms.data.toy_1d(n=6, key=jax.random.key(0))
p = ms.init_shallow(jax.random.key(1), 1, 12, knot_range=(float(x.min()), float(x.max())))
etas = json.loads(sys.argv[2])
t = ms.train(p, x, y, etas[1], steps=300, log_every=100, tol=1e-12)
s = ms.sweep(p, x, y, etas, steps=300, log_every=100, tol=1e-12, chunk_size=2,
             progress=False, flattest=True)
fl = ms.flattest_implementation(t.params, x, y)
arrays = {"x": x, "y": y, "train_loss": t.loss, "flat": fl.sharpness, "flat_dual": fl.dual_bound}
arrays.update({f"p0_{k}": v for k, v in p._asdict().items()})
arrays.update({f"train_{k}": v for k, v in t.params._asdict().items()})
np.savez(out + "/f32.npz", **{k: np.asarray(v) for k, v in arrays.items()})
s.save(out + "/sweep")
dtypes = {k: str(np.asarray(v).dtype) for k, v in arrays.items()}
dtypes.update({f: str(np.asarray(getattr(s, f)).dtype) for f in
               ("loss", "sharpness", "lower_bound", "flattest_sharpness", "weighted_curvature")})
dtypes.update({f"sweep_{k}": str(np.asarray(v).dtype) for k, v in s.params._asdict().items()})
json.dump({"dtypes": dtypes}, open(out + "/info.json", "w"))
"""


def _run(cmd, *, returncodes=(0,), optimize=False, **kw):
    """Run a command in float32; ``optimize=True``: with XLA's default compile options."""
    env = default_xla_env() if optimize else dict(os.environ)
    env.pop("JAX_ENABLE_X64", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, **kw)
    assert proc.returncode in returncodes, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _params(z, prefix, dtype=jnp.float64):
    return ms.ShallowParams(
        *(jnp.asarray(z[f"{prefix}_{f}"], dtype) for f in ms.ShallowParams._fields)
    )


@pytest.fixture(scope="module")
def f32(tmp_path_factory):
    out = tmp_path_factory.mktemp("f32")
    _run([sys.executable, "-c", _LIBRARY_SCRIPT, str(out), json.dumps(ETAS)])
    info = json.loads((out / "info.json").read_text())
    with np.load(out / "f32.npz") as z:
        arrays = dict(z)
    return info, arrays, load_sweep(out / "sweep")


def test_every_result_is_float32(f32):
    info, _, _ = f32
    assert set(info["dtypes"].values()) == {"float32"}, info["dtypes"]


def test_train_float32_follows_float64(f32):
    """300 GD steps from the same (float32) start: float32 rounding only."""
    _, z, _ = f32
    x, y = jnp.asarray(z["x"], jnp.float64), jnp.asarray(z["y"], jnp.float64)
    ref = ms.train(_params(z, "p0"), x, y, ETAS[1], steps=300, log_every=100, tol=1e-12)
    for a, b in zip(_params(z, "train"), ref.params, strict=True):
        scale = float(jnp.max(jnp.abs(b)))
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * scale)
    np.testing.assert_allclose(z["train_loss"], float(ref.loss), rtol=10 * RTOL)


def test_sweep_float32_columns_match_float64_evaluation(f32):
    """Each column, evaluated in float64 at the float32 final parameters of its run."""
    from minstab.shallow.bounds import sharpness_lower_bound, weighted_curvature

    _, z, s = f32
    x = jnp.asarray(z["x"], jnp.float64)
    assert bool(s.diverged[-1]) and not np.any(s.diverged[:-1])
    # the sweep's run at ETAS[1] is the train() run of the same step size
    for a, b in zip(s.params_at(1), _params(z, "train", jnp.float32), strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * float(jnp.max(jnp.abs(b))))
    for i in np.flatnonzero(~s.diverged):
        q = ms.ShallowParams(*(jnp.asarray(a, jnp.float64) for a in s.params_at(i)))
        np.testing.assert_allclose(s.sharpness[i], _gauss_newton_top(q, x), rtol=RTOL)
        np.testing.assert_allclose(s.lower_bound[i], sharpness_lower_bound(q, x), rtol=RTOL)
        np.testing.assert_allclose(s.weighted_curvature[i], weighted_curvature(q, x), rtol=RTOL)
        y = jnp.asarray(z["y"], jnp.float64)
        ref = ms.flattest_implementation(q, x, y)
        np.testing.assert_allclose(s.flattest_sharpness[i], float(ref.sharpness), rtol=RTOL)


def test_flattest_float32(f32):
    _, z, _ = f32
    x, y = jnp.asarray(z["x"], jnp.float64), jnp.asarray(z["y"], jnp.float64)
    ref = ms.flattest_implementation(_params(z, "train"), x, y)
    np.testing.assert_allclose(z["flat"], float(ref.sharpness), rtol=RTOL)
    np.testing.assert_allclose(z["flat_dual"], float(ref.dual_bound), rtol=RTOL)


def test_mixed_dtypes_are_a_value_error():
    """The library's ValueError naming the arrays, not jax's TypePromotionError mid-trace."""
    x, y = ms.data.toy_1d(n=6, dtype=jnp.float64)
    p = ms.init_shallow(jax.random.key(1), 1, 8, dtype=jnp.float64)
    p32 = ms.ShallowParams(*(a.astype(jnp.float32) for a in p))
    cases = [
        (p32, x, y),
        (p, x.astype(jnp.float32), y),
        (p, x, y.astype(jnp.float32)),
        (p._replace(w2=p.w2.astype(jnp.float32)), x, y),
    ]
    for q, xx, yy in cases:
        with pytest.raises(ValueError, match="share one floating dtype"):
            ms.train(q, xx, yy, 0.1, steps=5)
        with pytest.raises(ValueError, match="share one floating dtype"):
            ms.sweep(q, xx, yy, [0.1], steps=5, progress=False)
    with pytest.raises(ValueError, match="1-D"):
        ms.sweep(p, x, y, [[0.1, 0.2]], steps=5, progress=False)
