"""Time spent compiling, as JAX itself reports it (``jax.monitoring`` duration events).

The main job (`minstab sweep`) prints it next to its wall time, so that a user sees how much of a
short run was XLA compilation and what the persistent compilation cache saved.

Examples
--------
>>> from minstab.engine.compile_time import CompileClock
>>> clock = CompileClock()
>>> import jax, jax.numpy as jnp
>>> _ = jax.jit(lambda v: v * 2.0)(jnp.arange(3.0))
>>> clock.seconds() >= 0.0 and clock.programs() >= 0
True
"""

from __future__ import annotations

import threading

__all__ = ["CompileClock"]

# tracing, lowering to StableHLO and XLA's compilation (or fetching it from the persistent cache)
_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_TOTALS = {"seconds": 0.0, "programs": 0, "saved": 0.0}
_LOCK = threading.Lock()
_REGISTERED = []


def _on_duration(event: str, duration: float, **_) -> None:
    with _LOCK:
        if event in _EVENTS:
            _TOTALS["seconds"] += duration
            _TOTALS["programs"] += event == _EVENTS[-1]
        elif event == "/jax/compilation_cache/compile_time_saved_sec":
            _TOTALS["saved"] += duration


def _register() -> None:
    if not _REGISTERED:
        from jax import monitoring

        monitoring.register_event_duration_secs_listener(_on_duration)
        _REGISTERED.append(True)


class CompileClock:
    """Compilation since this clock was made: ``seconds()``, ``programs()``, ``saved()``."""

    def __init__(self):
        _register()
        with _LOCK:
            self._start = dict(_TOTALS)

    def _since(self, key: str):
        with _LOCK:
            return _TOTALS[key] - self._start[key]

    def seconds(self) -> float:
        """Tracing + lowering + XLA compilation (or cache fetches), summed over programs."""
        return float(self._since("seconds"))

    def programs(self) -> int:
        """Programs compiled or fetched from the persistent cache."""
        return int(self._since("programs"))

    def saved(self) -> float:
        """Compile time the persistent cache saved (JAX's own estimate, clipped at 0)."""
        return max(float(self._since("saved")), 0.0)
