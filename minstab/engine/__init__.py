"""The model-agnostic engine: any JAX model's curvature, training and stability.

The problem object, curvature operators, eigen-solvers, spectra, the training skeleton and
loops, sweeps, the optimizers' stability thresholds, central flows.
"""
