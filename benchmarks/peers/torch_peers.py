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


# --------------------------------------------------------------------------- any model (spectrum)
def half_mse_multi(out, target):
    """(1/2n) sum_j ||f(x_j) - y_j||^2 for outputs (n, c): minstab.squared_error."""
    return 0.5 * ((out - target) ** 2).sum() / out.shape[0]


class _PyHessianCall:
    """PyHessian's ``hessian`` object for a torch model, with counted HVPs and optional patches.

    ``patched=True`` swaps in an exact ``v / ||v||`` (see :func:`pyhessian_sharpness`).
    ``torch.eig`` (a raising stub in torch 2) is shimmed with ``torch.linalg.eigh`` for ``density``:
    the tridiagonal is symmetric, so this is the same decomposition.
    """

    def __init__(self, net, x, y, *, dtype, patched=False):
        self.net, self.x, self.y, self.dtype, self.patched = net, x, y, dtype, patched
        self.count = [0]

    def __enter__(self):
        import sys

        import pyhessian.hessian  # noqa: F401
        import torch

        self.torch = torch
        self.H = sys.modules["pyhessian.hessian"]
        self.U = sys.modules["pyhessian.utils"]
        self.old_dtype = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64 if self.dtype == "float64" else torch.float32)
        self.orig = self.H.hessian_vector_product
        count = self.count

        def counted(*a, **kw):
            count[0] += 1
            return self.orig(*a, **kw)

        self.H.hessian_vector_product = counted
        self.norms = (self.H.normalization, self.U.normalization)
        if self.patched:
            self.H.normalization = self.U.normalization = exact_normalization
        self.old_eig = getattr(torch, "eig", None)  # torch 2: a stub that raises

        def eig(t, eigenvectors=True):  # torch<2 API: (n, 2) real/imag values, vectors
            vals, vecs = torch.linalg.eigh(t)
            return torch.stack([vals, torch.zeros_like(vals)], dim=1), vecs

        torch.eig = eig
        self.warn = warnings.catch_warnings()
        self.warn.__enter__()
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        return self.H.hessian(self.net, half_mse_multi, data=(self.x, self.y), cuda=False)

    def __exit__(self, *exc):
        self.warn.__exit__(*exc)
        self.H.hessian_vector_product = self.orig
        self.H.normalization, self.U.normalization = self.norms
        if self.old_eig is None:
            del self.torch.eig
        else:
            self.torch.eig = self.old_eig
        self.torch.set_default_dtype(self.old_dtype)
        return False


def pyhessian_top(net, x, y, *, dtype, top_n, tol, max_iter, patched=False):
    """PyHessian ``eigenvalues(top_n=...)`` (power iteration with deflation): (values, HVPs)."""
    call = _PyHessianCall(net, x, y, dtype=dtype, patched=patched)
    with call as hc:
        vals, _ = hc.eigenvalues(maxIter=max_iter, tol=tol, top_n=top_n)
    return np.sort(np.asarray(vals))[::-1], call.count[0]


def pyhessian_trace(net, x, y, *, dtype, num_samples):
    """PyHessian ``trace(maxIter=num_samples, tol=0)`` (Hutchinson, all samples): (mean, sem, N)."""
    call = _PyHessianCall(net, x, y, dtype=dtype)
    with call as hc:
        s = np.asarray(hc.trace(maxIter=num_samples, tol=0.0))
    return float(s.mean()), float(s.std(ddof=1) / np.sqrt(len(s))), len(s)


def pyhessian_density(net, x, y, *, dtype, iters, n_v):
    """PyHessian ``density(iter, n_v)`` (SLQ, full reorthogonalization): nodes, weights (n_v, iter)."""
    call = _PyHessianCall(net, x, y, dtype=dtype)
    with call as hc:
        nodes, weights = hc.density(iter=iters, n_v=n_v)
    return np.asarray(nodes), np.asarray(weights)
