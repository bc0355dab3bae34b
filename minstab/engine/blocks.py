"""Where the curvature sits: sharpness and trace of the diagonal Hessian blocks, per layer.

Group the parameters into blocks (one per leaf of ``params``, per layer, or any labelling).
The diagonal block H_bb of the loss Hessian is the Hessian of the loss as a function of block b
alone, the other parameters held fixed, so its products are forward-over-reverse on that
function (THEORY §2 eq. 27 restricted to block b). :func:`block_sharpness` returns
lambda_max(H_bb) for every block, :func:`block_trace` tr(H_bb). By Cauchy interlacing
lambda_max(H) >= max_b lambda_max(H_bb), and tr(H) = sum_b tr(H_bb) exactly.

Blocks of at most ``_DENSE_MAX`` parameters are solved exactly (H_bb built column by column
from unit vectors, then ``eigh``); larger ones by Lanczos (:func:`minstab.lanczos`). Each block
has its own linearization (or, with ``data_batch_size``, its batched products:
:mod:`minstab.engine.batching`); all blocks run in one compiled program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import check_bool, check_choice, check_int, check_key
from .batching import pass_progress
from .eigen import default_tol, lanczos
from .problem import Problem
from .spectrum import (
    TRACE_ESTIMATORS,
    TraceEstimate,
    TraceOptions,
    setup_problem,
    trace_kernel,
)

__all__ = ["BlockSharpness", "block_sharpness", "block_trace", "block_labels", "plot_blocks"]

_DENSE_MAX = 64  # blocks this small: exact eigh / trace from unit vectors


class BlockSharpness(NamedTuple):
    """Top eigenvalue of each diagonal Hessian block, with Lanczos diagnostics.

    Each field is shaped like ``params`` (one scalar per leaf), or a dict by block label when
    ``blocks`` groups leaves.

    Attributes
    ----------
    value : lambda_max(H_bb).
    residual : ``||H_bb v - value v||`` of its eigenvector (0 for the exact small blocks).
    converged : Lanczos met its tolerance (True for the exact small blocks).
    """

    value: object
    residual: object
    converged: object


def _parent_label(path) -> str:
    return jax.tree_util.keystr(tuple(path[:-1])) or "(root)"


def block_labels(params, blocks=None) -> list:
    """The block label of every leaf of ``params`` (in ``tree_leaves`` order).

    ``blocks``: None (each leaf its own block, labelled by its path), ``"layer"`` (leaves
    grouped by their parent's path: a Dense layer's kernel and bias, an ``eqx.nn.Linear``'s
    weight and bias), a callable ``(path, leaf) -> label``, or a pytree of hashable labels with
    the structure of ``params``. Raises ``ValueError`` naming ``blocks`` otherwise.
    """
    with_path = jax.tree_util.tree_leaves_with_path(params)
    if blocks is None:
        return [jax.tree_util.keystr(path) for path, _ in with_path]
    if isinstance(blocks, str):
        if blocks != "layer":
            raise ValueError(
                f"blocks must be None, 'layer', a callable (path, leaf) -> label or a pytree of "
                f"labels shaped like params, got {blocks!r}"
            )
        return [_parent_label(path) for path, _ in with_path]
    if callable(blocks):
        labels = [blocks(path, leaf) for path, leaf in with_path]
    else:
        treedef = jax.tree_util.tree_structure(params)
        try:
            labels = treedef.flatten_up_to(blocks)
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"blocks must be a pytree of labels with the structure of params ({e})"
            ) from None
    for lab in labels:
        try:
            hash(lab)
        except TypeError:
            raise ValueError(f"blocks: labels must be hashable, got {type(lab).__name__}") from None
    return labels


def _groups(labels) -> dict:
    """Label -> leaf indices, in order of first appearance."""
    groups: dict = {}
    for i, lab in enumerate(labels):
        groups.setdefault(lab, []).append(i)
    return groups


def _block_model(params, idx, model):
    """``(sub, model_b)``: the leaves ``idx`` and the model as a function of them alone."""
    leaves, treedef = jax.tree_util.tree_flatten(params)

    def model_b(sub_params, xb):
        full = list(leaves)
        for i, leaf in zip(idx, sub_params, strict=True):
            full[i] = leaf
        return model(jax.tree_util.tree_unflatten(treedef, full), xb)

    return [leaves[i] for i in idx], model_b


def _block_problem(params, idx, problem: Problem):
    """``(sub, problem_b)``: the leaves ``idx`` and the problem as a function of them alone."""
    sub, model_b = _block_model(params, idx, problem.net)
    return sub, problem.replace(model=model_b, negative_slope=0.0)


def _dense_block(matvec, size, dtype):
    eye = jnp.eye(size, dtype=dtype)
    h = jax.lax.map(matvec, eye)
    return (h + h.T) / 2


class BlockOptions(NamedTuple):
    """Static options of the block kernels: the leaf indices of each block and the solver's."""

    groups: tuple
    curvature: str
    num_iters: int = 0
    tol: float = 0.0
    method: str = ""
    num_samples: int = 0


def _sharpness_kernel(params, x, y, *, problem: Problem, opts: BlockOptions):
    out = []
    for idx in opts.groups:
        sub, block = _block_problem(params, idx, problem)
        theta, matvec = block.operator(sub, x, y, curvature=opts.curvature)
        size, dtype = theta.shape[0], theta.dtype
        if size <= _DENSE_MAX:
            top = jnp.linalg.eigvalsh(_dense_block(matvec, size, dtype))[-1]
            out.append((top, jnp.zeros((), dtype), jnp.ones((), bool)))
        else:
            v0 = jax.random.normal(jax.random.key(0), (size,), dtype)
            r = lanczos(matvec, v0, num_iters=min(size, opts.num_iters), tol=opts.tol)
            out.append((r.value, r.residual, r.converged))
    return out


def _trace_kernel(params, x, y, key, *, problem: Problem, opts: BlockOptions):
    out = []
    for b, idx in enumerate(opts.groups):
        sub, block = _block_problem(params, idx, problem)
        theta, matvec = block.operator(sub, x, y, curvature=opts.curvature)
        size, dtype = theta.shape[0], theta.dtype
        if size <= opts.num_samples:  # exact: sum of e_i^T H_bb e_i
            diag = jnp.diagonal(_dense_block(matvec, size, dtype))
            out.append(TraceEstimate(jnp.sum(diag), jnp.zeros((), dtype), jnp.array(size), diag))
            continue
        trace_opts = TraceOptions(opts.curvature, opts.method, opts.num_samples, 1)
        est = trace_kernel(sub, x, y, jax.random.fold_in(key, b), problem=block, opts=trace_opts)
        out.append(est)
    return out


_sharpness_jit = jax.jit(_sharpness_kernel, static_argnames=("problem", "opts"))
_trace_jit = jax.jit(_trace_kernel, static_argnames=("problem", "opts"))


def _arrange(params, blocks, labels, groups, values):
    """Per-block values back as a pytree like params (blocks=None) or a dict by label."""
    if blocks is None:
        per_leaf = [None] * len(labels)
        for idx, v in zip(groups.values(), values, strict=True):
            for i in idx:
                per_leaf[i] = v
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), per_leaf)
    return dict(zip(groups, values, strict=True))


def block_sharpness(
    params,
    x,
    y,
    *,
    model: Callable | None = None,
    loss: Callable | None = None,
    blocks=None,
    curvature: str = "hessian",
    num_iters: int = 80,
    tol: float | None = None,
    data_batch_size: int | None = None,
    full_output: bool = False,
    progress: bool = False,
):
    """Top eigenvalue of each diagonal block of the loss Hessian (or GGN), per leaf or layer.

    Parameters
    ----------
    params, x, y, model, loss : the problem, as in :func:`minstab.sharpness`.
    blocks : None (one block per leaf of ``params``; the result is shaped like ``params``),
        ``"layer"`` (leaves grouped by their parent module), a callable ``(path, leaf) ->
        label`` or a pytree of labels shaped like ``params`` (the result is then a dict by
        label, in order of first appearance); see :func:`block_labels`.
    curvature : ``"hessian"`` or ``"ggn"``.
    num_iters : Lanczos steps per block at most (blocks of <= 64 parameters are exact).
    tol : relative residual tolerance (default 1e-10 in float64, 1e-5 in float32).
    data_batch_size : samples per batch (:mod:`minstab.engine.batching`; memory O(batch)). Not
        ``batch_size``, which in minstab means probes or SGD samples per step.
    full_output : return a :class:`BlockSharpness` (values, residuals, converged flags).
    progress : with ``data_batch_size``, a bar on stderr counting the batches of every
        product and the passes over the data (a ``jax.debug.callback`` per batch;
        :func:`minstab.engine.batching.pass_progress`). Default off.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, minstab as ms
    >>> def apply(p, x):
    ...     return jnp.tanh(x @ p["w"]) @ p["v"]
    >>> x, y = jax.random.normal(jax.random.key(0), (20, 3)), jnp.zeros(20)
    >>> p = {"w": jax.random.normal(jax.random.key(1), (3, 8)), "v": jnp.ones(8) / 8}
    >>> top = ms.block_sharpness(p, x, y, model=apply)
    >>> h = ms.hessian(p, x, y, model=apply)  # ravel_pytree order: v (8) then w (24)
    >>> ref = jnp.linalg.eigvalsh(h[8:, 8:])[-1]
    >>> bool(jnp.allclose(top["w"], ref, rtol=1e-5))
    True
    """
    check_bool(full_output, "full_output")
    check_bool(progress, "progress")
    labels = block_labels(params, blocks)
    num_iters = check_int(num_iters, "num_iters", minimum=1)
    x, y, problem, _, dtype = setup_problem(
        params, x, y, model, loss, curvature, data_batch_size, progress
    )
    tol = default_tol(dtype) if tol is None else float(tol)
    groups = _groups(labels)
    opts = BlockOptions(tuple(tuple(g) for g in groups.values()), curvature, num_iters, tol)
    with pass_progress("block_sharpness", enabled=problem.progress):
        out = _sharpness_jit(params, x, y, problem=problem, opts=opts)
    fields = [_arrange(params, blocks, labels, groups, [o[j] for o in out]) for j in range(3)]
    return BlockSharpness(*fields) if full_output else fields[0]


def block_trace(
    params,
    x,
    y,
    *,
    key: jax.Array,
    num_samples: int,
    model: Callable | None = None,
    loss: Callable | None = None,
    method: str = "hutch++",
    curvature: str = "hessian",
    blocks=None,
    data_batch_size: int | None = None,
    progress: bool = False,
):
    """tr(H_bb) of each diagonal block, as :func:`minstab.hessian_trace` with ``per_block``.

    Each block's estimate uses ``num_samples`` products with H_bb and its own probes (the
    key folded with the block's index); a block of at most ``num_samples`` parameters gets
    its exact trace from unit vectors instead (stderr 0, its size in products). Returns a
    :class:`minstab.TraceEstimate` whose fields are shaped like ``params`` (``blocks=None``)
    or dicts by label; the sum of the block values estimates tr(H). ``progress``: as in
    :func:`block_sharpness`.
    """
    labels = block_labels(params, blocks)
    check_choice(method, "method", tuple(TRACE_ESTIMATORS))
    num_samples = check_int(num_samples, "num_samples",
                            minimum=TRACE_ESTIMATORS[method].min_samples)  # fmt: skip
    check_bool(progress, "progress")
    x, y, problem, _, _ = setup_problem(
        params, x, y, model, loss, curvature, data_batch_size, progress
    )
    groups = _groups(labels)
    opts = BlockOptions(
        tuple(tuple(g) for g in groups.values()), curvature, method=method, num_samples=num_samples
    )
    with pass_progress("block_trace", enabled=problem.progress):
        out = _trace_jit(params, x, y, check_key(key), problem=problem, opts=opts)
    return TraceEstimate(
        *[_arrange(params, blocks, labels, groups, [o[j] for o in out]) for j in range(4)]
    )


def _flat_items(result) -> list[tuple[str, float]]:
    """(label, value) per block: a dict's keys, else each leaf's path."""

    def name(path):
        if len(path) == 1 and hasattr(path[0], "key"):
            return str(path[0].key)
        return jax.tree_util.keystr(tuple(path))

    return [(name(p), float(v)) for p, v in jax.tree_util.tree_leaves_with_path(result)]


def plot_blocks(sharpness, trace=None, *, axes=None, title: str | None = None):
    """Bar charts of per-block sharpness (and trace) by block, log scale; returns the axes.

    ``sharpness`` (and ``trace``): the output of :func:`block_sharpness` (its values) and of
    :func:`block_trace` or ``hessian_trace(per_block=...)`` (a :class:`minstab.TraceEstimate`
    or its ``value``), for the same blocks. Non-positive values are drawn at the axis floor.
    """
    import matplotlib.pyplot as plt

    if isinstance(sharpness, BlockSharpness):
        sharpness = sharpness.value
    panels = [("lambda_max of the block", _flat_items(sharpness))]
    if trace is not None:
        trace = getattr(trace, "value", trace)
        panels.append(("trace of the block", _flat_items(trace)))
    if axes is None:
        _, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.5), squeeze=False)
        axes = axes[0]
    for ax, (name, items) in zip(np.atleast_1d(axes), panels, strict=False):
        labels = [k for k, _ in items]
        vals = np.array([v for _, v in items])
        pos = vals[vals > 0]
        floor = pos.min() / 10 if pos.size else 1e-12
        ax.bar(range(len(vals)), np.where(vals > 0, vals, floor))
        ax.set_yscale("log")
        ax.set_xticks(range(len(vals)), labels, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel(name)
        if title:
            ax.set_title(title, fontsize=9)
    return axes
