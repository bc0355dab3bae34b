"""The shallow-network theory of the minima-stability papers (seeds 000, 004).

ReLU nets, their closed-form curvature, weight functions and bounds, modes at kinks, the
flattest implementation, predictions, deep nets of the depth separation, SGD thresholds.
"""

from ..engine.problem import register_builtin
from .builtin import SHALLOW_NET

register_builtin(SHALLOW_NET)  # model=None in the engine is the shallow ReLU net
