"""Argument types for the command line: bad values fail while argparse reads them.

Each function is an argparse ``type=``: it returns the parsed value or raises
``argparse.ArgumentTypeError`` with what was expected, and argparse prefixes the flag, so
``minstab sweep --width 0`` prints ``minstab sweep: argument --width: expected a positive
integer, got '0'`` and exits 2, before jax compiles anything. :func:`require_extra` does the same
for optional dependencies, naming the extra to install.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
from pathlib import Path

__all__ = [
    "EXTRAS",
    "eta_list",
    "existing_dir",
    "existing_file",
    "int_at_least",
    "int_in_range",
    "missing_extra_message",
    "nonnegative_float",
    "nonnegative_int",
    "output_dir",
    "positive_float",
    "positive_int",
    "require_extra",
]

# optional top-level modules -> (distribution name, minstab extra that installs it)
EXTRAS = {
    "sklearn": ("scikit-learn", "data"),
    "scipy": ("scipy", "test"),
    "torch": ("torch", "bench"),
    "pyhessian": ("pyhessian", "bench"),
    "matfree": ("matfree", "bench"),
    "jupytext": ("jupytext", "notebooks"),
    "nbclient": ("nbclient", "notebooks"),
}


def _fail(expected: str, text) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")


def _int(text, expected: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise _fail(expected, text) from None


def _float(text, expected: str) -> float:
    try:
        v = float(str(text).strip())
    except ValueError:
        raise _fail(expected, text) from None
    if not math.isfinite(v):
        raise _fail(expected, text)
    return v


def int_at_least(minimum: int, expected: str | None = None):
    """An argparse type for integers ``>= minimum`` (e.g. ``int_at_least(2)`` for ``--n``).

    ``expected`` words the error message (default ``"an integer >= minimum"``).
    """
    expected = expected or f"an integer >= {minimum}"

    def parse(text) -> int:
        v = _int(text, expected)
        if v < minimum:
            raise _fail(expected, text)
        return v

    parse.__name__ = f"int_at_least_{minimum}"
    return parse


def int_in_range(minimum: int, maximum: int, expected: str | None = None):
    """An argparse type for integers in ``[minimum, maximum]`` (e.g. a class label 0-9).

    ``expected`` words the error message (default ``"an integer from minimum to maximum"``).
    """
    expected = expected or f"an integer from {minimum} to {maximum}"

    def parse(text) -> int:
        v = _int(text, expected)
        if not minimum <= v <= maximum:
            raise _fail(expected, text)
        return v

    parse.__name__ = f"int_in_range_{minimum}_{maximum}"
    return parse


_positive_int = int_at_least(1, "a positive integer")
_nonnegative_int = int_at_least(0, "a non-negative integer")


def positive_int(text) -> int:
    """An integer >= 1 (``--width``, ``--steps``, ``--chunk-size``)."""
    return _positive_int(text)


def nonnegative_int(text) -> int:
    """An integer >= 0 (``--seed``, ``--warmup-steps``)."""
    return _nonnegative_int(text)


def positive_float(text) -> float:
    """A finite number > 0 (``--tol``, a step size)."""
    expected = "a positive, finite number"
    v = _float(text, expected)
    if v <= 0:
        raise _fail(expected, text)
    return v


def nonnegative_float(text) -> float:
    """A finite number >= 0 (``--noise``)."""
    expected = "a non-negative, finite number"
    v = _float(text, expected)
    if v < 0:
        raise _fail(expected, text)
    return v


def eta_list(text) -> tuple[float, ...]:
    """Step sizes: a comma list ``'0.01,0.02'`` or geometric ``'LO:HI:NUM'``.

    ``LO:HI:NUM`` is ``numpy.geomspace(LO, HI, NUM)`` with finite ``0 < LO < HI`` and an integer
    ``NUM >= 1`` (``NUM = 1`` gives ``(LO,)``). Every value must be positive and finite.
    The result is a tuple of floats (hashable, JSON-serializable).

    >>> eta_list("0.1:10:3")
    (0.1, 1.0, 10.0)
    >>> eta_list("0.5, 0.25")
    (0.5, 0.25)
    """
    s = str(text).strip()
    if ":" in s:
        return _geometric(s)
    cells = [c.strip() for c in s.split(",")]
    expected = "positive, finite step sizes 'ETA,ETA,...' or 'LO:HI:NUM'"
    if not s or any(not c for c in cells):
        raise _fail(expected, text)
    vals = tuple(_float(c, expected) for c in cells)
    if any(v <= 0 for v in vals):
        raise _fail(expected, text)
    return vals


def _geometric(s: str) -> tuple[float, ...]:
    expected = "'LO:HI:NUM' with finite 0 < LO < HI and an integer NUM >= 1"
    parts = s.split(":")
    if len(parts) != 3:
        raise _fail(expected, s)
    lo, hi = (_float(v, expected) for v in parts[:2])
    num = _int(parts[2], expected)
    if not (0 < lo < hi) or num < 1:
        raise _fail(expected, s)
    import numpy as np

    return tuple(float(v) for v in np.geomspace(lo, hi, num))


def existing_file(text) -> Path:
    """A path to an existing regular file (``--data``, ``--config``)."""
    p = Path(text)
    if not p.is_file():
        why = "a directory" if p.is_dir() else "no such file"
        raise argparse.ArgumentTypeError(f"expected an existing file, got {str(text)!r} ({why})")
    return p


def existing_dir(text) -> Path:
    """A path to an existing directory (``--sweep``, ``--dataset DIR``)."""
    p = Path(text)
    if not p.is_dir():
        why = "a file" if p.exists() else "no such directory"
        raise argparse.ArgumentTypeError(
            f"expected an existing directory, got {str(text)!r} ({why})"
        )
    return p


def output_dir(text) -> Path:
    """A directory to write to: it may not exist yet, but must not be a file (``--out``)."""
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(
            f"expected a directory to write results to, got {str(text)!r} (an existing file)"
        )
    return p


def require_extra(module: str, *, flag: str | None = None):
    """Import an optional dependency, or raise ``UsageError`` naming the extra to install.

    ``require_extra("sklearn", flag="--dataset digits")`` returns the module, or raises
    ``UsageError('--dataset digits: needs scikit-learn; pip install "minstab[data]"')``.
    Call it while reading the arguments, before any computation.
    """
    from .cli import UsageError

    if importlib.util.find_spec(module) is None:
        raise UsageError(missing_extra_message(module, flag=flag))
    return importlib.import_module(module)


def missing_extra_message(module: str, *, flag: str | None = None) -> str:
    """One line: which distribution is missing and which ``minstab`` extra installs it."""
    top = module.split(".")[0]
    dist, extra = EXTRAS.get(top, (top, None))
    how = f'pip install "minstab[{extra}]"' if extra else f"pip install {dist}"
    return f"{flag + ': ' if flag else ''}needs {dist}, which is not installed; {how}"
