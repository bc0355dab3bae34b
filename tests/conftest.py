"""Test configuration: float64 and strict numerics everywhere (STYLE.md, lineax tests/conftest.py)."""

import os

os.environ.setdefault("MINSTAB_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


def tol(dtype) -> float:
    """Relative tolerance the float64 reference tests use for a dtype."""
    return 1e-10 if jnp.dtype(dtype) == jnp.float64 else 1e-4


@pytest.fixture
def getkey():
    """Fresh PRNG keys: ``k = getkey()``."""
    state = {"key": jax.random.key(1234)}

    def _next():
        state["key"], sub = jax.random.split(state["key"])
        return sub

    return _next
