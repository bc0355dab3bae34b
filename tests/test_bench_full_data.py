"""benchmarks/full_data.py at toy size: both tools' answers agree with a float64 reference.

The same wiring as the timed run (MLP 784-512-512-10, Fashion-MNIST inputs, cross-entropy,
batches with a smaller last one); the reference is the unbatched float64 Lanczos (one pass over
all samples, another code path than the batched one).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("torch", reason="bench extra not installed (torch)")
pytest.importorskip("pyhessian", reason="bench extra not installed (pyhessian)")

import minstab as ms  # noqa: E402
from benchmarks import full_data as F  # noqa: E402


# PyHessian's loss.backward(create_graph=True) makes torch warn about a reference cycle
@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning")
def test_full_data_benchmark_answers_agree():
    x, labels = F.load(64)
    keys = jax.random.split(jax.random.key(0), 3)
    sizes = F.SIZES
    params = [
        {"w": jax.random.normal(k, (a, b), jnp.float32) * np.float32(np.sqrt(2 / a)),
         "b": jnp.full((b,), 0.01, jnp.float32)}
        for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]  # fmt: skip
    y = jax.nn.one_hot(jnp.asarray(labels), 10, dtype=jnp.float32)
    r, _ = F.run_minstab(params, jnp.asarray(x), y, batch=24)  # 24 + 24 + 16
    p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
    ref = ms.sharpness(p64, jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.float64),
                       model=F.apply, loss=ms.softmax_cross_entropy, method="lanczos")  # fmt: skip
    ph, _, count = F.run_pyhessian(params, x, labels, batch=24, tol=1e-4)
    assert bool(r.converged)
    assert abs(float(r.value) - float(ref)) <= 1e-4 * float(ref)
    assert abs(ph - float(ref)) <= 1e-2 * float(ref) and count >= 2
