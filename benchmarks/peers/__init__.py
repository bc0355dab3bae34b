"""Peer implementations that minstab is benchmarked against (PyHessian, scipy, matfree, torch)."""
