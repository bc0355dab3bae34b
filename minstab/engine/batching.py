"""Whole data sets in batches: loss, gradient and curvature products as one compiled loop.

A loss that is a mean over samples, L = (1/n) sum_j l(f(x_j), y_j) (the quadratic loss of
seed 004 eq. 19, :func:`minstab.squared_error`, :func:`minstab.softmax_cross_entropy`), splits
over batches b of n_b samples as

    L = sum_b (n_b / n) L_b,    grad L = sum_b (n_b / n) grad L_b,    H v = sum_b (n_b / n) H_b v

with L_b the same loss on batch b alone (its own mean). :func:`batch_mean` computes such a sum
as one ``lax.fori_loop`` over the full batches (each read by ``dynamic_slice``: the data are
not copied) plus, when ``batch_size`` does not divide n, one call on the smaller last batch
(its own static shape: exact, no padding). Intermediates (activations, tangents) live for one
batch at a time, so the memory is O(batch) on top of the data, where the unbatched operators of
:mod:`minstab.engine.operators` linearize over all n samples at once (O(n)); each product re-runs the
forward pass, so a batched product costs about 1.5-2x a linearized one.

:class:`minstab.Problem` with ``data_batch_size`` computes the loss, gradient and products
this way; :func:`curvature_operator` is the batched twin of :func:`minstab.engine.operators.curvature_operator`
(H v by forward-over-reverse, or G v = J^T (d^2 l / d pred^2) J v, per batch). The public
functions take ``data_batch_size=`` (``None``: one pass over all data, as before) and data as
arrays or as a sequence of ``(x_b, y_b)`` batches (:func:`resolve_data`; e.g.
:func:`read_idx_batches` reads an IDX file in pieces).

Progress: with ``progress=True`` (:func:`minstab.block_sharpness`, :func:`minstab.block_trace`,
:func:`minstab.sharpness`; inside the kernels a :class:`DataBatches` static batch size) every
batch of every product sends one ``jax.debug.callback`` to the host, counted by the open
:func:`pass_progress` bar (batches done, full passes over the data); off by default, and then
no callback is compiled in. The keyword is ``data_batch_size`` (not
``batch_size``) because ``batch_size`` already means Hutchinson probes per product
(:func:`minstab.hessian_trace`) and the SGD minibatch (:func:`minstab.train`).

The batched sum assumes that the model treats samples independently (no batch statistics: a
BatchNorm in eval mode) and that ``loss`` is a mean over samples; :func:`check_mean_loss`
verifies the latter on a few samples before anything is compiled.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..progress import ProgressBar

__all__ = [
    "batch_mean",
    "curvature_operator",
    "check_data_batch_size",
    "check_mean_loss",
    "resolve_data",
    "read_idx_batches",
    "DataBatches",
    "batch_plan",
    "PassProgress",
    "pass_progress",
]


# ----------------------------------------------------------------------------- validation
def check_data_batch_size(data_batch_size, n: int | None = None) -> int | None:
    """``data_batch_size`` as an int (None stays None); ``ValueError`` naming it otherwise.

    A value above the number of samples ``n`` means one batch (it is capped at n).
    """
    if data_batch_size is None:
        return None
    ok = isinstance(data_batch_size, int | np.integer) and not isinstance(data_batch_size, bool)
    if not ok or data_batch_size < 1:
        raise ValueError(
            f"data_batch_size must be a positive integer (samples per batch) or None, got "
            f"{data_batch_size!r}"
        )
    return int(data_batch_size) if n is None else min(int(data_batch_size), n)


def _is_batch_sequence(x, y) -> bool:
    if y is not None or isinstance(x, np.ndarray | jax.Array) or hasattr(x, "__array__"):
        return False
    return isinstance(x, list | tuple) or (isinstance(x, Iterable) and not isinstance(x, str))


def resolve_data(x, y, data_batch_size, *, progress: bool = False):
    """``(x, y, data_batch_size)`` with the data as arrays, before validation.

    With ``y=None``, ``x`` may be a sequence (or iterator) of ``(x_b, y_b)`` batches: they are
    concatenated on the host (numpy; a progress bar per batch with ``progress=True``), and
    ``data_batch_size`` defaults to the first batch's size. Arrays pass through unchanged.
    """
    if not _is_batch_sequence(x, y):
        return x, y, check_data_batch_size(data_batch_size)
    xs, ys = [], []
    total = len(x) if hasattr(x, "__len__") else None
    with ProgressBar(total, "reading batches", enabled=progress) as bar:
        for i, item in enumerate(x):
            if not (isinstance(item, tuple | list) and len(item) == 2):
                raise ValueError(
                    f"x: batch {i} must be a pair (x_b, y_b), got {type(item).__name__}"
                )
            xb, yb = np.asarray(item[0]), np.asarray(item[1])
            if xb.ndim < 1 or yb.ndim < 1 or xb.shape[0] != yb.shape[0] or xb.shape[0] == 0:
                raise ValueError(
                    f"x: batch {i} must hold x_b and y_b with the same number (>= 1) of rows, "
                    f"got shapes {xb.shape} and {yb.shape}"
                )
            if xs and (xb.shape[1:] != xs[0].shape[1:] or yb.shape[1:] != ys[0].shape[1:]):
                raise ValueError(
                    f"x: batch {i} has sample shapes {xb.shape[1:]}, {yb.shape[1:]}; batch 0 "
                    f"has {xs[0].shape[1:]}, {ys[0].shape[1:]}"
                )
            xs.append(xb)
            ys.append(yb)
            bar.update(1)
    if not xs:
        raise ValueError("x: the sequence of (x, y) batches is empty")
    size = xs[0].shape[0] if data_batch_size is None else data_batch_size
    return np.concatenate(xs), np.concatenate(ys), check_data_batch_size(size)


def read_idx_batches(
    images, labels, batch_size: int, *, transform: Callable | None = None, progress: bool = False
):
    """Yield ``(x_b, y_b)`` batches of an IDX image file and its label file, read in pieces.

    Only ``batch_size`` samples of each file are in memory at a time (gzip is decompressed as a
    stream). ``transform(images_b, labels_b) -> (x_b, y_b)`` (default: identity) maps each raw
    uint8 piece, e.g. to scaled float inputs and one-hot targets. ``progress=True`` draws a
    progress bar (one tick per batch read, :class:`minstab.progress.ProgressBar`).
    """
    batch_size = check_data_batch_size(batch_size)
    if batch_size is None:
        raise ValueError("batch_size must be a positive integer, got None")
    with _open_idx(images) as fi, _open_idx(labels) as fl:
        (n, *shape), dt_i = _idx_header(fi, images)
        (n_l, *shape_l), dt_l = _idx_header(fl, labels)
        if n != n_l:
            raise ValueError(f"labels: {n_l} labels for {n} images")
        with ProgressBar(-(-n // batch_size), "reading IDX", enabled=progress) as bar:
            for start in range(0, n, batch_size):
                m = min(batch_size, n - start)
                xb = _read_rows(fi, images, dt_i, (m, *shape))
                yb = _read_rows(fl, labels, dt_l, (m, *shape_l))
                bar.update(1, f"{start + m}/{n} samples")
                yield (xb, yb) if transform is None else transform(xb, yb)


_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open_idx(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no IDX file at {path}")
    with path.open("rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else path.open("rb")


def _idx_header(f, path):
    head = f.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
        raise ValueError(f"path: {path} is not an IDX file (bad magic number)")
    shape = tuple(int(s) for s in np.frombuffer(f.read(4 * head[3]), ">u4"))
    return shape, np.dtype(_IDX_DTYPES[head[2]])


def _read_rows(f, path, dtype, shape):
    count = int(np.prod(shape))
    raw = f.read(count * dtype.itemsize)
    if len(raw) != count * dtype.itemsize:
        raise ValueError(f"path: {path} is truncated")
    return np.frombuffer(raw, dtype).reshape(shape).astype(dtype.newbyteorder("="))


def check_mean_loss(params, x, y, *, model: Callable, loss: Callable) -> None:
    """``ValueError`` naming ``loss`` unless it is a mean over samples on the first 4 of them.

    Batching needs L(4 samples) = (L(first 2) + L(last 2)) / 2; a sum over samples (or a loss
    coupling samples) fails this. Computes the model on at most 4 samples; skipped for n < 2.
    """
    m = min(4, x.shape[0]) // 2 * 2
    if m < 2:
        return
    pred = model(params, x[:m])
    whole = loss(pred, y[:m])
    halves = 0.5 * (loss(pred[: m // 2], y[: m // 2]) + loss(pred[m // 2 :], y[m // 2 : m]))
    eps = float(jnp.finfo(whole.dtype).eps)
    if not abs(float(whole) - float(halves)) <= 1e3 * eps * max(abs(float(whole)), 1.0):
        raise ValueError(
            "loss must be a mean over samples for data_batch_size (L = (1/n) sum_j l_j, as "
            f"minstab.squared_error): on {m} samples loss = {float(whole):.6g} but the mean of "
            f"its two halves is {float(halves):.6g}"
        )


# ----------------------------------------------------------------------------- progress
class PassProgress:
    """Host side of the in-loop progress: counts the batches the compiled loop reports.

    Attributes
    ----------
    batches : batches of data done (one per batch of every product; a vmapped group of k
        products on one batch counts k).
    passes : full passes over the data done (batches that were the last of their pass).
    """

    def __init__(self, desc: str, *, enabled: bool = True, stream=None):
        self.batches = 0
        self.passes = 0
        self._bar = ProgressBar(None, desc, enabled=enabled, stream=stream, unit="batch")

    def batch_done(self, index: int, batches: int) -> None:
        """One batch (``index`` of ``batches`` per pass) done."""
        self.batches += 1
        self.passes += index == batches - 1
        self._bar.update(1, f"{self.passes} passes of {batches} batches")

    def close(self) -> None:
        self._bar.__exit__(None, None, None)


_OPEN: list[PassProgress] = []  # the bars open on the host; callbacks report to the last


def _tick(index, _done, *, batches: int) -> None:
    """Host callback of :func:`batch_mean`: batch ``index`` done; no open bar, nothing.

    ``_done`` is a value of the batch's result: it makes the callback wait for the batch.
    """
    if _OPEN:
        for i in np.atleast_1d(np.asarray(index)).ravel():  # once per vmapped product
            _OPEN[-1].batch_done(int(i), batches)


@contextmanager
def pass_progress(desc: str = "batches", *, enabled: bool = True, stream=None):
    """Open a :class:`PassProgress` for the compiled calls made inside the ``with`` block.

    On leaving, ``jax.effects_barrier()`` waits for every pending callback, so the count is
    complete. Inside an open one, it yields that one (one bar counts the calls of the outer
    ``with`` block, e.g. around several functions called with ``progress=True``). With
    ``enabled=False`` nothing is drawn and nothing counted (yields None).

    Examples
    --------
    >>> import jax.numpy as jnp, io
    >>> from minstab.engine.batching import batch_mean, pass_progress
    >>> x = jnp.arange(10.0)[:, None]
    >>> with pass_progress("mean", stream=io.StringIO()) as bar:
    ...     m = batch_mean(lambda xb, yb: jnp.mean(xb), x, x, batch_size=4, progress=True)
    >>> float(m), bar.batches, bar.passes  # 4 + 4 + 2 rows: 3 batches, one pass
    (4.5, 3, 1)
    """
    if not enabled:
        with nullcontext() as none:
            yield none
        return
    if _OPEN:
        try:
            yield _OPEN[-1]
        finally:
            jax.effects_barrier()
        return
    bar = PassProgress(desc, stream=stream)
    _OPEN.append(bar)
    try:
        yield bar
    finally:
        jax.effects_barrier()
        _OPEN.remove(bar)
        bar.close()


def _report(index, result, batches: int) -> None:
    """Send batch ``index`` (of ``batches``) to the host once ``result`` is computed."""
    leaf = jax.tree_util.tree_leaves(result)[0]
    jax.debug.callback(partial(_tick, batches=batches), index, jnp.ravel(leaf)[0])


# ----------------------------------------------------------------------------- kernels
def batch_mean(fn: Callable, x, y, *, batch_size: int, progress: bool = False):
    """``sum_b (n_b / n) fn(x_b, y_b)`` over the batches of (x, y), traceable.

    One ``lax.fori_loop`` over the full batches (``dynamic_slice``) and one call on the last,
    smaller batch when ``batch_size`` does not divide n; ``fn`` returns a pytree of arrays.
    For ``fn`` the mean of a per-sample quantity over its batch, this is the mean over all n.
    ``progress=True`` (static) reports each finished batch to the open :func:`pass_progress`
    (a ``jax.debug.callback`` per batch; the values are unchanged).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from minstab.engine.batching import batch_mean
    >>> x, y = jnp.arange(10.0)[:, None], jnp.zeros(10)
    >>> float(batch_mean(lambda xb, yb: jnp.mean(xb), x, y, batch_size=4))  # 4 + 4 + 2 rows
    4.5
    """
    n = x.shape[0]
    batch_size = min(batch_size, n)
    full, rest = divmod(n, batch_size)

    def term(xb, yb):
        w = xb.shape[0] / n
        return jax.tree_util.tree_map(lambda a: a * w, fn(xb, yb))

    def add(a, b):
        return jax.tree_util.tree_map(jnp.add, a, b)

    batches = full + (rest > 0)

    def body(i, acc):
        xb = jax.lax.dynamic_slice_in_dim(x, i * batch_size, batch_size)
        yb = jax.lax.dynamic_slice_in_dim(y, i * batch_size, batch_size)
        t = term(xb, yb)
        if progress:
            _report(i, t, batches)
        return add(acc, t)

    shapes = jax.eval_shape(term, x[:batch_size], y[:batch_size])
    acc = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    acc = jax.lax.fori_loop(0, full, body, acc)
    if rest:
        t = term(x[full * batch_size :], y[full * batch_size :])
        if progress:
            _report(jnp.array(full, jnp.int32), t, batches)
        acc = add(acc, t)
    return acc


def _batch_hvp(params, xb, yb, v, *, model, loss):
    theta, unravel = ravel_pytree(params)
    return jax.jvp(jax.grad(lambda t: loss(model(unravel(t), xb), yb)), (theta,), (v,))[1]


def _batch_ggn(params, xb, yb, v, *, model, loss):
    theta, unravel = ravel_pytree(params)
    pred, jvp = jax.linearize(lambda t: model(unravel(t), xb), theta)
    _, loss_hvp = jax.linearize(jax.grad(lambda p: loss(p, yb)), pred)
    (out,) = jax.linear_transpose(jvp, theta)(loss_hvp(jvp(v)))
    return out


class DataBatches(NamedTuple):
    """A batched pass, as a static argument: samples per batch, and progress on or off.

    :func:`curvature_operator` takes it wherever it takes an int ``batch_size``, so a kernel
    that forwards its static ``data_batch_size`` turns progress on without a new argument.
    """

    size: int
    progress: bool = False


def batch_plan(data_batch_size, progress: bool):
    """The static batch argument of a kernel: ``data_batch_size``, or it with progress on.

    A :class:`DataBatches` when ``progress`` and batches are both given (only a batched pass
    has batches to count), else ``data_batch_size`` as it is.
    """
    return DataBatches(data_batch_size, True) if progress and data_batch_size else data_batch_size


def curvature_operator(
    params, x, y, *, model: Callable, loss: Callable, curvature: str,
    batch_size: int | DataBatches | None,
):  # fmt: skip
    """``(theta, matvec)`` of H (``"hessian"``) or G (``"ggn"``), flat, over all samples.

    ``batch_size=None``: :func:`minstab.engine.operators.curvature_operator` (linearized once over all
    data). Otherwise each product is a :func:`batch_mean` of per-batch products, each batch
    reported to the open :func:`pass_progress` when ``batch_size`` is a :class:`DataBatches`
    with ``progress=True``.
    """
    progress = isinstance(batch_size, DataBatches) and batch_size.progress
    if isinstance(batch_size, DataBatches):
        batch_size = batch_size.size
    if batch_size is None:
        from .operators import curvature_operator as whole

        return whole(params, x, y, model=model, loss=loss, curvature=curvature)
    theta, _ = ravel_pytree(params)
    one = _batch_hvp if curvature == "hessian" else _batch_ggn

    def matvec(v):
        return batch_mean(
            lambda xb, yb: one(params, xb, yb, v, model=model, loss=loss),
            x, y, batch_size=batch_size, progress=progress,
        )  # fmt: skip

    return theta, matvec
