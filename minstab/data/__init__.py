"""Data sets, no downloads.

Embedded toy problems (:mod:`.toy`) and MNIST-format IDX image files (:mod:`.images`).
"""

from . import images as images
from .toy import load_xy as load_xy
from .toy import toy_1d as toy_1d
