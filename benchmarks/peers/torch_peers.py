"""PyTorch peers: PyHessian power iteration and an eager PyTorch GD loop (the usual research code)."""

from __future__ import annotations

import warnings

import numpy as np


def torch_net(params, dtype):
    """nn.Sequential(Linear(d, k), ReLU, Linear(k, 1)) with minstab's weights."""
    import torch
    from torch import nn

    w1, b1, w2, b2 = (np.asarray(a) for a in params)
    k, d = w1.shape
    tdt = torch.float64 if dtype == "float64" else torch.float32
    net = nn.Sequential(nn.Linear(d, k), nn.ReLU(), nn.Linear(k, 1)).to(tdt)
    with torch.no_grad():
        net[0].weight.copy_(torch.as_tensor(w1))
        net[0].bias.copy_(torch.as_tensor(b1))
        net[2].weight.copy_(torch.as_tensor(w2)[None, :])
        net[2].bias.copy_(torch.as_tensor(np.reshape(b2, (1,))))
    return net


def half_mse(out, target):
    """minstab.quadratic_loss: (1/2n) sum (f - y)^2 (nn.MSELoss would give mean(r^2))."""
    return 0.5 * ((out[:, 0] - target) ** 2).mean()


def exact_normalization(v):
    """pyhessian.utils.normalization without its ``+ 1e-6``: v / ||v||."""
    s = sum((vi * vi).sum() for vi in v) ** 0.5
    return [vi / s for vi in v]


def pyhessian_sharpness(params, x, y, *, dtype, tol, max_iter, patched=False):
    """Top Hessian eigenvalue by PyHessian's power iteration; returns (value, num_matvecs).

    PyHessian 0.1 normalizes with ``v / (||v|| + 1e-6)`` (``pyhessian/utils.py``), and its
    ``orthnormal`` normalizes once more before each product, so the vector it forms the Rayleigh
    quotient with has ``||v||^2 = (1 + 1e-6)^-2`` and every eigenvalue it returns is low by a
    factor ``1 - 2e-6`` however tightly it converges. ``patched=True`` swaps in an exact
    ``v / ||v||`` for the call (a clearly labelled extra row; the timed PyHessian rows are
    unpatched).
    """
    import sys

    import pyhessian.hessian  # noqa: F401 - the package re-exports the class under this name
    import torch

    H = sys.modules["pyhessian.hessian"]
    U = sys.modules["pyhessian.utils"]

    tdt = torch.float64 if dtype == "float64" else torch.float32
    old = torch.get_default_dtype()
    torch.set_default_dtype(tdt)  # PyHessian draws its start vector with the default dtype
    count = [0]
    orig = H.hessian_vector_product

    def counted(*a, **kw):
        count[0] += 1
        return orig(*a, **kw)

    H.hessian_vector_product = counted
    norms = (H.normalization, U.normalization)
    if patched:
        H.normalization = U.normalization = exact_normalization
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyHessian's backward(create_graph=True) warns
            torch.manual_seed(0)
            xt = torch.as_tensor(np.array(x).reshape(len(y), -1), dtype=tdt)
            yt = torch.as_tensor(np.array(y), dtype=tdt)
            hc = H.hessian(torch_net(params, dtype), half_mse, data=(xt, yt), cuda=False)
            vals, _ = hc.eigenvalues(maxIter=max_iter, tol=tol, top_n=1)
    finally:
        H.hessian_vector_product = orig
        H.normalization, U.normalization = norms
        torch.set_default_dtype(old)
    return float(vals[0]), count[0]


def torch_sweep(params, x, y, etas, *, steps, dtype="float32"):
    """Plain eager PyTorch: one run after another, optimizer.step() per GD step; final losses."""
    import torch

    tdt = torch.float64 if dtype == "float64" else torch.float32
    xt = torch.as_tensor(np.array(x).reshape(len(y), -1), dtype=tdt)
    yt = torch.as_tensor(np.array(y), dtype=tdt)
    losses = []
    for eta in np.asarray(etas):
        net = torch_net(params, dtype)
        opt = torch.optim.SGD(net.parameters(), lr=float(eta))
        for _ in range(steps):
            opt.zero_grad()
            loss = half_mse(net(xt), yt)
            loss.backward()
            opt.step()
        with torch.no_grad():
            losses.append(float(half_mse(net(xt), yt)))
    return np.array(losses)
