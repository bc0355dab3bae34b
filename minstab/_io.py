"""Files: one JSON writer and atomic writes (results are never pickled).

``to_jsonable`` turns the objects experiments produce (NamedTuples, frozen dataclasses, numpy
scalars and arrays, paths, tuples) into plain JSON values; ``write_json`` writes them atomically,
so an interrupted job never leaves a half-written file that a resume would trust.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

__all__ = ["to_jsonable", "write_json", "atomic_write_text", "atomic_savez"]


def to_jsonable(obj):
    """A JSON-serializable copy of ``obj`` (NaN stays NaN, as Python's json writes it)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, float)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "__array__") and hasattr(obj, "dtype"):  # jax arrays
        return np.asarray(obj).tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "_asdict"):  # NamedTuple
        return {k: to_jsonable(v) for k, v in obj._asdict().items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    raise TypeError(f"cannot write an object of type {type(obj).__name__} to JSON")


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path, obj, *, indent: int = 2) -> Path:
    """Write ``to_jsonable(obj)`` to ``path`` atomically (parent directories are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=indent))
    return path


def atomic_savez(path, arrays: dict) -> None:
    """``np.savez`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def read_stored(path, key) -> dict | None:
    """A JSON record written by an earlier run, if its ``config`` equals ``key``; else None.

    Missing, torn or foreign files (another protocol's record) are not results: the caller
    computes them again.
    """
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) and d.get("config") == key else None
