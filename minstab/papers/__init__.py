"""The other seed papers' models.

Stable rank and margins (seed 001), GD vs the minimum-norm interpolant (seed 002).
"""
