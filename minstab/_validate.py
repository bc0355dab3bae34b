"""Input checks for the public entry points: clear ``ValueError``s before any tracing.

Shapes are always checked (they are static). Values are checked only when the arrays are
concrete; inside ``jit``/``vmap`` the functions report through their result fields instead.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(a) -> bool:
    """True when ``a`` holds actual values (not a tracer under jit/vmap/grad)."""
    return not isinstance(a, jax.core.Tracer)


def check_finite(a, name: str) -> None:
    """Raise if a concrete array has NaN or inf entries."""
    if is_concrete(a) and not bool(np.all(np.isfinite(np.asarray(a)))):
        raise ValueError(f"{name} must be finite, but it contains NaN or inf values")


def check_params(params, *, finite: bool = True) -> None:
    """Check that ``params`` is a ShallowParams-like tuple with consistent shapes.

    ``finite=True``: concrete values must also be finite (inputs of an analysis); ``False``
    for maps that carry NaN through honestly (forward pass, knots, symmetries).
    """
    fields = ("w1", "b1", "w2", "b2")
    if not all(hasattr(params, f) for f in fields):
        raise ValueError(
            f"params must be a ShallowParams(w1, b1, w2, b2), got {type(params).__name__}"
        )
    w1, b1, w2, b2 = (jnp.shape(getattr(params, f)) for f in fields)
    if len(w1) != 2:
        raise ValueError(f"params.w1 must have shape (k, d), got {w1}")
    k = w1[0]
    if b1 != (k,):
        raise ValueError(f"params.b1 must have shape (k,) = ({k},), got {b1}")
    if w2 != (k,):
        raise ValueError(f"params.w2 must have shape (k,) = ({k},), got {w2}")
    if b2 != ():
        raise ValueError(f"params.b2 must be a scalar (shape ()), got {b2}")
    for f in fields if finite else ():
        check_finite(getattr(params, f), f"params.{f}")


def as_inputs(x, in_dim: int, *, name: str = "x") -> jax.Array:
    """Return inputs as an (n, d) array; (n,) is accepted when d = 1."""
    x = jnp.asarray(x)
    if x.ndim == 1:
        if in_dim != 1:
            raise ValueError(
                f"{name} has shape {x.shape}; a 1-D {name} means d = 1, but the network has "
                f"input dimension {in_dim}. Pass {name} with shape (n, {in_dim})."
            )
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != in_dim:
        raise ValueError(
            f"{name} must have shape (n, {in_dim}) (or (n,) when d = 1), got {x.shape}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} must contain at least one sample, got shape {x.shape}")
    return x


def check_choice(value, name: str, choices) -> None:
    """Raise for an unknown option name."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def check_bool(value, name: str) -> None:
    """Raise unless a flag is True or False (a static option: no truthy strings or arrays)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def check_positive(value, name: str) -> None:
    """Raise if a concrete value is not > 0 and finite (e.g. step sizes)."""
    if is_concrete(value):
        v = np.asarray(value)
        if not np.all(np.isfinite(v)) or not np.all(v > 0):
            raise ValueError(f"{name} must be positive and finite, got {value}")


def check_common_float_dtype(params, x, y) -> None:
    """Raise unless every params field, x and y share one floating dtype.

    Mixed precision would otherwise be promoted silently (or fail inside jax with a
    ``TypePromotionError`` under strict promotion) in the middle of a compiled program.
    """
    named = {**{f"params.{f}": getattr(params, f) for f in params._fields}, "x": x, "y": y}
    # Python scalars carry no dtype (jax treats them as weakly typed): nothing to mix
    dtypes = {k: a.dtype for k, a in named.items() if hasattr(a, "dtype")}
    ref = dtypes.get("params.w1", jnp.asarray(x).dtype)
    if not jnp.issubdtype(ref, jnp.floating) or any(d != ref for d in dtypes.values()):
        got = ", ".join(f"{k} {v}" for k, v in dtypes.items())
        raise ValueError(
            f"x, y and params must share one floating dtype (cast them, e.g. with "
            f"jax.tree.map(lambda a: a.astype(jnp.float32), params)); got {got}"
        )


def check_data_dtype(x, y, dtype) -> None:
    """Raise unless x and y (validated arrays) have the params' floating ``dtype``."""
    if x.dtype != dtype or y.dtype != dtype:
        raise ValueError(
            f"x, y and params must share a floating dtype, got x {x.dtype}, y {y.dtype}, "
            f"params {dtype}"
        )


def as_matrix(a, name: str) -> jax.Array:
    """A non-empty finite 2-d floating array (integers are cast to the default float)."""
    a = jnp.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {a.shape}")
    if not jnp.issubdtype(a.dtype, jnp.floating):
        a = a.astype(jnp.zeros(()).dtype)
    check_finite(a, name)
    return a


def as_labelled_data(x, y, *, labels: str) -> tuple[jax.Array, jax.Array]:
    """(x (n, d), y (n,)) checked; ``labels="pm1"``: y in {-1, +1}; ``"nonneg"``: y >= 0."""
    x = as_matrix(x, "x")
    y = jnp.asarray(y, x.dtype)
    if y.shape != (x.shape[0],):
        raise ValueError(
            f"y must have shape (n,) = ({x.shape[0]},) to match x {x.shape}, got {y.shape}"
        )
    check_finite(y, "y")
    if is_concrete(y):
        yv = np.asarray(y)
        if labels == "pm1" and not np.all(np.abs(yv) == 1):
            raise ValueError("y must contain labels -1 or +1 (logistic loss of seed 001)")
        if labels == "nonneg" and np.any(yv < 0):
            raise ValueError(
                "y must be >= 0: a ReLU neuron outputs sigma(w.x) >= 0, so negative labels "
                "cannot be interpolated (eq. 5 needs y_i > 0 or y_i = 0)"
            )
    return x, y


def check_count(v, name: str, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (not a bool, not 2.5; see :func:`check_int`)."""
    return check_int(v, name, minimum=minimum)


# ----------------------------------------------------------------------------- static options
# Options that shape the computation (counts, tolerances, flags) are Python values, checked
# before anything is traced: a count is an integer (2.5 is not silently truncated), a number
# is finite, a flag is a bool. Each raises a ValueError/TypeError naming the argument.


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type: a bool or 2.5 where a count is meant, text for a number.

    A ``TypeError``, and a ``ValueError`` like every other bad argument, so that one
    ``except ValueError`` catches every bad input of the library.
    """


def _concrete_scalar(v, name: str):
    """A Python/numpy scalar (or a concrete 0-d array) as numpy; a tracer is a TypeError."""
    if isinstance(v, jax.core.Tracer):
        raise ArgumentTypeError(f"{name} must be a static Python number, not a traced array (under jit "
                        f"pass it with static_argnames)")  # fmt: skip
    a = np.asarray(v)
    if a.ndim != 0 or a.dtype == object or a.dtype.kind not in "biuf":
        raise ArgumentTypeError(f"{name} must be a number, got {v!r}")
    return a


def check_int(v, name: str, *, minimum: int | None = None, maximum: int | None = None,
              none: bool = False) -> int | None:  # fmt: skip
    """An integer in ``[minimum, maximum]`` (``none=True``: ``None`` passes through).

    A bool is not an integer here, nor is 2.5 or 2.0 (a count must be meant as one).

    >>> check_int(3, "k", minimum=1)
    3
    """
    if v is None and none:
        return None
    if isinstance(v, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be an integer, got the bool {v!r}")
    a = _concrete_scalar(v, name)
    if a.dtype.kind not in "iu":
        raise ArgumentTypeError(f"{name} must be an integer, got {v!r}")
    i = int(a)
    if (minimum is not None and i < minimum) or (maximum is not None and i > maximum):
        if maximum is None:
            span = f">= {minimum}"
        elif minimum is None:
            span = f"<= {maximum}"
        else:
            span = f"between {minimum} and {maximum}"
        raise ValueError(f"{name} must be an integer {span}, got {i}")
    return i


def check_real(v, name: str, *, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False, hi_open: bool = False, none: bool = False):  # fmt: skip
    """A finite real number in an interval (``lo_open``: ``> lo``), as a Python float.

    A concrete array with one element counts as a number; a traced value is a TypeError (use
    :func:`check_real_values` for values that may be traced).

    >>> check_real(0.5, "rtol", lo=0, lo_open=True)
    0.5
    """
    if v is None and none:
        return None
    if isinstance(v, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be a number, got the bool {v!r}")
    f = float(_concrete_scalar(v, name))
    bad = not np.isfinite(f)
    bad |= lo is not None and (f < lo or (lo_open and f == lo))
    bad |= hi is not None and (f > hi or (hi_open and f == hi))
    if bad:
        left = "-inf" if lo is None else f"{lo:g}"
        right = "inf" if hi is None else f"{hi:g}"
        iv = f"{'(' if lo_open or lo is None else '['}{left}, {right}{')' if hi_open or hi is None else ']'}"
        raise ValueError(f"{name} must be a finite number in {iv}, got {v!r}")
    return f


def check_tol(v, name: str = "tol", *, none: bool = True):
    """A tolerance: ``None`` (the default) or a finite number > 0."""
    return check_real(v, name, lo=0, lo_open=True, none=none)


def check_real_values(v, name: str, *, lo: float | None = None, lo_open: bool = False):
    """Finite entries ``>= lo`` (``> lo``) when concrete; tracers pass (reported under jit)."""
    if not is_concrete(v):
        return v
    a = np.asarray(v)
    if a.dtype == object or a.dtype.kind not in "biuf" or a.dtype.kind == "b":
        raise ArgumentTypeError(f"{name} must be numeric, got {v!r}")
    bad = ~np.isfinite(a)
    if lo is not None:
        bad |= (a <= lo) if lo_open else (a < lo)
    if np.any(bad):
        what = f" and {'>' if lo_open else '>='} {lo:g}" if lo is not None else ""
        first = a.reshape(-1)[np.argmax(bad.reshape(-1))]
        raise ValueError(f"{name} must be finite{what}, got {first!r}"
                         + (f" among {a.size} values" if a.size > 1 else ""))  # fmt: skip
    return v


def check_interval(pair, name: str) -> tuple[float, float]:
    """A pair ``(lo, hi)`` of finite numbers with ``lo < hi``."""
    try:
        lo, hi = pair
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{name} must be a pair (lo, hi), got {pair!r}") from None
    lo, hi = check_real(lo, f"{name}[0]"), check_real(hi, f"{name}[1]")
    if not lo < hi:
        raise ValueError(f"{name} must be an interval (lo, hi) with lo < hi, got {pair!r}")
    return lo, hi


def check_callable(f, name: str, *, none: bool = False) -> None:
    """Raise a TypeError unless ``f`` is callable (``none=True``: ``None`` passes)."""
    if not (callable(f) or (none and f is None)):
        raise ArgumentTypeError(f"{name} must be a callable (a function), got {f!r}")


def check_permutation(perm, size: int, name: str = "perm"):
    """A permutation of ``range(size)``: integer entries, each index exactly once."""
    if not is_concrete(perm):
        return perm
    a = np.asarray(perm)
    if a.dtype.kind not in "iu":
        raise ArgumentTypeError(f"{name} must hold integer indices, got dtype {a.dtype}")
    if a.shape != (size,) or not np.array_equal(np.sort(a), np.arange(size)):
        raise ValueError(f"{name} must be a permutation of 0..{size - 1} (each index once), "
                         f"got {a.tolist() if a.size <= 20 else a.shape}")  # fmt: skip
    return perm


def check_key(key, name: str = "key"):
    """A JAX PRNG key: a typed key (``jax.random.key``) or a raw ``uint32[2]`` one."""
    if key is None:
        raise ArgumentTypeError(f"{name} must be a PRNG key (jax.random.key), got None")
    if isinstance(key, (int, float, np.integer, np.floating)):
        raise ArgumentTypeError(
            f"{name} must be a PRNG key (jax.random.key) (e.g. jax.random.key({key})), got {key!r}"
        )
    dt = getattr(key, "dtype", None)
    if dt is None:
        raise ArgumentTypeError(
            f"{name} must be a PRNG key (jax.random.key), got {type(key).__name__}"
        )
    if jnp.issubdtype(dt, jax.dtypes.prng_key):
        return key
    if dt == jnp.uint32 and jnp.shape(key)[-1:] == (2,):
        return key
    raise ArgumentTypeError(f"{name} must be a PRNG key (jax.random.key), got an array of dtype {dt}, shape "
                    f"{jnp.shape(key)}")  # fmt: skip


def check_shape(a, shape: tuple, name: str) -> None:
    """Raise unless ``a`` has exactly ``shape``."""
    if tuple(jnp.shape(a)) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(jnp.shape(a))}")


# ----------------------------------------------------------------------------- memory


def available_memory() -> int:
    """Bytes this process may still allocate: ``MemAvailable`` (Linux), else physical memory.

    ``MINSTAB_MEMORY_LIMIT`` (bytes, e.g. ``8e9``) overrides it.
    """
    import os

    env = os.environ.get("MINSTAB_MEMORY_LIMIT", "").strip()
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise ValueError(
                f"MINSTAB_MEMORY_LIMIT must be a number of bytes, got {env!r}"
            ) from None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 2**63


def format_bytes(n: float) -> str:
    """``3.2 GB`` style."""
    for unit, s in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= s:
            return f"{n / s:.3g} {unit}"
    return f"{n:.0f} B"


def check_memory(nbytes: float, name: str, what: str) -> None:
    """Refuse a computation whose estimated memory ``nbytes`` exceeds what is available.

    ``what`` says what the estimate counts (``"1e9 probe vectors of 25 float64"``). The error
    names the argument ``name`` that sets the size, the estimate and the memory available.
    """
    avail = available_memory()
    if nbytes > avail:
        raise ValueError(
            f"{name}: {what} would need about {format_bytes(nbytes)}, more than the "
            f"{format_bytes(avail)} of memory available (MINSTAB_MEMORY_LIMIT overrides)"
        )


def num_flat(params) -> int:
    """Number of scalars in a pytree of arrays (the flat dimension P)."""
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params)))


def itemsize(dtype=None) -> int:
    """Bytes per element of ``dtype`` (default: jax's default float)."""
    return int(np.dtype(dtype if dtype is not None else jnp.zeros(()).dtype).itemsize)


# ----------------------------------------------------------------------------- under jit


def all_finite(*arrays) -> jax.Array:
    """A traced bool: every entry of every array (pytree) is finite."""
    leaves = [x for a in arrays for x in jax.tree.leaves(a)]
    ok = jnp.array(True)
    for x in leaves:
        x = jnp.asarray(x)
        if jnp.issubdtype(x.dtype, jnp.inexact):
            ok = ok & jnp.all(jnp.isfinite(x))
    return ok
