"""Traceable kernels shared between modules, under public names (no private cross-module imports).

These are the building blocks the training and sweep loops call inside ``jit``/``vmap``; they
skip the input checks of the public functions (which run once, before tracing). Not part of
the user-facing API: their signatures may change with the modules that define them.

- :func:`sharpness_kernel` = ``minstab.curvature._sharpness_impl``: one sharpness method
  (``"dense"``, ``"lanczos"``, ``"gram"``, ``"power"``) of the shallow net, traceable.
- :func:`residual_bound` = ``minstab.curvature._residual_bound``: ``||H - Phi Phi^T / n||_2``
  exactly (``max_i ||c_i||``, THEORY §2).
"""

from .curvature import _residual_bound as residual_bound
from .curvature import _sharpness_impl as sharpness_kernel

__all__ = ["sharpness_kernel", "residual_bound"]
