"""Models as their users wrote them: Equinox modules and Flax (NNX, linen) models.

Each adapter returns ``(params, apply)`` for every curvature function of minstab:
``params`` a pytree of the model's trainable floating arrays, ``apply(params, x)`` a pure
function of them with everything else (the module's structure, non-trainable state such as
BatchNorm statistics, integer arrays) held fixed, in evaluation mode. ``apply`` is one
hashable object per adapter call (a static argument of the compiled kernels): build it once
and reuse it, so repeated calls hit the compilation cache.

The frameworks are optional extras: ``pip install "minstab[equinox]"`` or
``pip install "minstab[flax]"``; without them the adapter raises an ``ImportError`` saying so.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import jax

__all__ = ["from_equinox", "from_flax_nnx", "from_flax_linen"]


def _require(module: str, extra: str, caller: str):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{caller} needs {module.split('.')[0]}, an optional dependency of minstab: "
            f'pip install "minstab[{extra}]" ({e})'
        ) from e


def from_equinox(module, *, vmap: bool = True) -> tuple[object, Callable]:
    """``(params, apply)`` of an Equinox module: its floating array leaves are the params.

    ``params`` is the module with every non-floating-array leaf replaced by None
    (``eqx.partition(module, eqx.is_inexact_array)``), so it is shaped like the module and its
    paths name the layers (``.layers[0].weight``). ``apply(params, x)`` recombines it with the
    rest and calls the module on each row of ``x`` (``jax.vmap``; Equinox modules take one
    sample) or, with ``vmap=False``, on ``x`` as a whole. Wrap a module in inference mode
    (``eqx.nn.inference_mode``) first if it has dropout or batch statistics.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, equinox as eqx, minstab as ms
    >>> mlp = eqx.nn.MLP(3, 1, 8, 1, key=jax.random.key(0))
    >>> params, apply = ms.from_equinox(mlp)
    >>> x = jnp.ones((5, 3))
    >>> apply(params, x).shape
    (5, 1)
    """
    eqx = _require("equinox", "equinox", "from_equinox")
    if not isinstance(module, eqx.Module):
        raise ValueError(f"module must be an equinox.Module, got {type(module).__name__}")
    if not isinstance(vmap, bool):
        raise ValueError(f"vmap must be a bool, got {vmap!r}")
    params, static = eqx.partition(module, eqx.is_inexact_array)
    if not jax.tree_util.tree_leaves(params):
        raise ValueError("module has no floating array leaves (nothing to differentiate)")

    def apply(p, x):
        model = eqx.combine(p, static)
        return jax.vmap(model)(x) if vmap else model(x)

    return params, apply


def from_flax_nnx(module) -> tuple[dict, Callable]:
    """``(params, apply)`` of a Flax NNX module: its ``nnx.Param`` variables, in eval mode.

    ``params`` is a nested dict of arrays (``nnx.to_pure_dict`` of the ``nnx.Param`` state,
    keyed by the attribute names: ``params["linear1"]["kernel"]``); everything else (BatchNorm
    ``mean`` / ``var``, RNG state, ...) is held fixed at its current value. ``apply`` runs a
    copy of the module switched to evaluation mode (``module.eval()``: BatchNorm uses its
    running statistics, Dropout is off); the module passed in is not modified.

    Examples
    --------
    >>> import jax.numpy as jnp, minstab as ms
    >>> from flax import nnx
    >>> layer = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    >>> params, apply = ms.from_flax_nnx(layer)
    >>> sorted(params), apply(params, jnp.ones((4, 3))).shape
    (['bias', 'kernel'], (4, 2))
    """
    nnx = _require("flax.nnx", "flax", "from_flax_nnx")
    if not isinstance(module, nnx.Module):
        raise ValueError(f"module must be a flax.nnx.Module, got {type(module).__name__}")
    graphdef, state = nnx.split(module)
    copy = nnx.merge(graphdef, state)  # new module objects: the caller's stays in its mode
    copy.eval()
    graphdef, state_params, rest = nnx.split(copy, nnx.Param, ...)
    params = nnx.to_pure_dict(state_params)
    treedef = jax.tree_util.tree_structure(state_params)
    if not jax.tree_util.tree_leaves(params):
        raise ValueError("module has no nnx.Param variables (nothing to differentiate)")

    def apply(p, x):
        st = jax.tree_util.tree_unflatten(treedef, jax.tree_util.tree_leaves(p))
        return nnx.merge(graphdef, st, rest)(x)

    return params, apply


def from_flax_linen(module, variables, **apply_kwargs) -> tuple[dict, Callable]:
    """``(params, apply)`` of a Flax linen module: ``variables["params"]``, the rest fixed.

    ``apply(params, x) = module.apply({"params": params, **other collections}, x,
    **apply_kwargs)``: other collections (``batch_stats``, ...) are held at their values in
    ``variables``; pass what evaluation mode needs in ``apply_kwargs`` (e.g. ``train=False``,
    or a module built with ``use_running_average=True``).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, minstab as ms
    >>> import flax.linen as nn
    >>> dense = nn.Dense(2)
    >>> variables = dense.init(jax.random.key(0), jnp.ones((1, 3)))
    >>> params, apply = ms.from_flax_linen(dense, variables)
    >>> apply(params, jnp.ones((4, 3))).shape
    (4, 2)
    """
    nn = _require("flax.linen", "flax", "from_flax_linen")
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be a flax.linen.Module, got {type(module).__name__}")
    if not hasattr(variables, "keys") or "params" not in variables:
        got = sorted(variables) if hasattr(variables, "keys") else type(variables).__name__
        raise ValueError(f"variables must be a dict with a 'params' collection, got {got}")
    params = variables["params"]
    rest = {k: v for k, v in variables.items() if k != "params"}

    def apply(p, x):
        return module.apply({"params": p, **rest}, x, **apply_kwargs)

    return params, apply
