"""One module per paper experiment, each meeting the protocol of :mod:`.base`.

A module holds its own science (``Config``, ``run``, ``outcomes``, ``table``, ``plot``,
``to_json``); the driver of :mod:`.base` builds its command line and writes its results.
``minstab reproduce NAME`` dispatches through :data:`REGISTRY` and lists only the experiments
whose module is present.
"""

from __future__ import annotations

import importlib
import importlib.util

# name on the command line -> (module, one-line description)
REGISTRY = {
    "fig1": (
        "minstab.experiments.fig1",
        "seed 004 Fig. 1 over seeds: does a 3x step spike the loss and land smoother?",
    ),
    "fig2": ("minstab.experiments.fig2", "seed 004 Fig. 2: empirical vs population weight g"),
    "fig3": (
        "minstab.experiments.fig3",
        "seed 004 Fig. 3 as a phase diagram (width x output scale x n, seeds 0-7)",
    ),
    "mnist": (
        "minstab.experiments.mnist",
        "seed 000: R_g(f) vs 1/eta - 1/2 on image data, from one shared init",
    ),
    "depth-separation": (
        "minstab.experiments.depth_separation",
        "seed 000: minimal shallow budget (bump vs smooth control), deep net",
    ),
    "stable-rank": ("minstab.experiments.stable_rank", "seed 001: stable rank and margins"),
    "min-norm": (
        "minstab.experiments.min_norm",
        "seed 002: GD-to-minimum-norm gap exponent vs n/d",
    ),
    "sgd-threshold": ("minstab.experiments.sgd_threshold", "exact SGD mean-square threshold vs B"),
    "eos": (
        "minstab.experiments.eos",
        "edge of stability: sharpness rises to 2/eta and hovers (MLP, Fashion-MNIST)",
    ),
    "adaptive-eos": ("minstab.experiments.adaptive_eos", "Adam at 38/eta, frozen D, heavy ball"),
    "momentum-fig3": ("minstab.experiments.momentum_fig3", "Fig. 3 with heavy ball: bound, edge"),
    "central-flow": ("minstab.experiments.central_flow", "central flows: GD's time average at EoS"),
}


def available() -> dict:
    """The registered experiments whose module exists in this installation."""
    return {k: v for k, v in REGISTRY.items() if importlib.util.find_spec(v[0]) is not None}


def load(name: str):
    """Import an experiment module by its command-line name."""
    if name not in available():
        raise ValueError(f"unknown experiment {name!r}; available: {', '.join(available())}")
    return importlib.import_module(REGISTRY[name][0])
