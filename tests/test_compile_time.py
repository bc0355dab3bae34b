"""The compile clock the jobs print, and where the command line keeps JAX's compilation cache."""

import jax
import jax.numpy as jnp

from minstab.cli import compilation_cache_dir
from minstab.engine.compile_time import CompileClock


def test_clock_counts_a_new_program_and_not_a_cached_call():
    clock = CompileClock()
    f = jax.jit(lambda v: jnp.sin(v) * 3.0 + 0.25)  # a program no other test compiles
    f(jnp.arange(7.0))
    first_s, first_n = clock.seconds(), clock.programs()
    assert first_n >= 1 and first_s > 0  # tracing, lowering and compiling took some time
    f(jnp.arange(7.0))  # same shapes: jit's in-memory cache, nothing compiled
    assert clock.programs() == first_n and clock.seconds() == first_s
    assert CompileClock().seconds() == 0.0  # a new clock starts at zero


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv("MINSTAB_COMPILATION_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compilation_cache_dir() == str(tmp_path / "minstab" / "jax")
    monkeypatch.setenv("MINSTAB_COMPILATION_CACHE", "0")
    assert compilation_cache_dir() is None
    monkeypatch.setenv("MINSTAB_COMPILATION_CACHE", str(tmp_path / "elsewhere"))
    assert compilation_cache_dir() == str(tmp_path / "elsewhere")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax"))
    assert compilation_cache_dir() == str(tmp_path / "jax")  # JAX's own variable wins
