"""Implicit bias of GD beyond stability: the two seed papers of THEORY §5, one module each.

* :mod:`minstab.papers.rank_margins` (seed 001, Kou, Chen, Gu 2023): stable rank and normalized margins
  of a two-layer (leaky) ReLU net with a fixed second layer, trained by GD on the logistic loss.
* :mod:`minstab.papers.min_norm` (seed 002, Lai, Wang, Tao, Muthukumar 2026): GD on a ReLU neuron with
  the square loss against the minimum-norm global minimum.

This module re-exports both, so ``minstab.papers.implicit_bias.NAME`` keeps working.
"""

from __future__ import annotations

from . import min_norm as min_norm
from . import rank_margins as rank_margins
from .min_norm import *  # noqa: F403
from .min_norm import __all__ as _mn_all
from .rank_margins import *  # noqa: F403
from .rank_margins import __all__ as _rm_all

__all__ = [*_rm_all, *_mn_all]
