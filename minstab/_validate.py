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


def check_params(params) -> None:
    """Check that ``params`` is a ShallowParams-like tuple with consistent shapes."""
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
    for f in fields:
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
    if not isinstance(value, bool):
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
    """An integer >= ``minimum`` (a float with an integer value is accepted)."""
    if int(v) != v or int(v) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v}")
    return int(v)
