"""Step-size sweeps: every run in one compiled ``jit(vmap(scan))`` program, chunked, sharded, resumable.

A sweep trains one network per step size eta (seed 004 Fig. 3) from a shared initialization
(or one initialization per run), then evaluates per run: the sharpness lambda_max (Lemma 1 says
a stable minimum has lambda_max <= 2/eta), the Lemma 4 lower bound 1 + 2 int |f''| g, the
weighted curvature int |f''| g (Theorem 1: <= 1/eta - 1/2 without knots on data points) and the
sharpness of the flattest implementation (THEORY §3).

The eta axis is cut into chunks of static size (padded), so new step-size values never
recompile; each chunk is placed on a ``jax.sharding.Mesh`` over the devices with one axis
``"runs"``. With ``out_dir``, every finished chunk is written atomically to
``out_dir/chunks/chunk_XXXX.npz`` next to a manifest keyed by a hash of the sweep; rerunning the
same sweep loads finished chunks instead of recomputing them. Under ``jax.distributed`` with
several processes, each process computes every ``process_count``-th chunk and the results are
gathered with ``multihost_utils.process_allgather``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ._validate import check_common_float_dtype
from .curvature import _residual_bound, _sharpness_impl
from .nets import ShallowParams, validate
from .progress import ProgressBar
from .train import TrainLog, _train_impl, make_config

__all__ = ["SweepResult", "sweep", "load_sweep", "trace_count"]

_TRACES = {"chunk": 0}


def trace_count() -> int:
    """How many times the per-chunk program has been traced (for compile-once tests)."""
    return _TRACES["chunk"]


class SweepResult(NamedTuple):
    """Per-run results of a step-size sweep (leading axis = runs).

    Attributes
    ----------
    etas : (R,) step sizes.
    params : ShallowParams with a leading (R,) axis.
    loss, converged, diverged, diverged_at, converged_at, steps_run : as in
        :class:`minstab.train.TrainResult`.
    sharpness : lambda_max at the final point (Gram form, eq. 28; NaN for diverged runs).
    sharpness_residual : bound on the Gram form's error, ||H - Phi Phi^T/n||_2.
    lower_bound : Lemma 4 bound 1 + 2 int |f''| g (seed 004 eq. 30).
    flattest_sharpness : lambda_max of the flattest rescaling (THEORY §3), NaN if unavailable.
    weighted_curvature : int |f''| g (eq. 21).
    log : :class:`minstab.train.TrainLog` with a leading (R,) axis.
    x, y : training data.
    config : dict of the sweep options (JSON-serializable).
    lambda_lower, lambda_upper : (R,) ends of the mode interval of Lemma 2/3 at converged runs
        (:func:`minstab.modes.mode_interval`; equal to the sharpness at twice-differentiable
        minima, NaN elsewhere); ``mode_delta`` is Lemma 2's delta. None until
        :meth:`with_mode_intervals` fills them.
    """

    etas: np.ndarray
    params: ShallowParams
    loss: np.ndarray
    converged: np.ndarray
    diverged: np.ndarray
    diverged_at: np.ndarray
    converged_at: np.ndarray
    steps_run: np.ndarray
    sharpness: np.ndarray
    sharpness_residual: np.ndarray
    lower_bound: np.ndarray
    flattest_sharpness: np.ndarray
    weighted_curvature: np.ndarray
    log: TrainLog
    x: np.ndarray
    y: np.ndarray
    config: dict
    lambda_lower: np.ndarray | None = None
    lambda_upper: np.ndarray | None = None
    mode_delta: np.ndarray | None = None

    @property
    def two_over_eta(self) -> np.ndarray:
        """2/eta, the Lemma 1 stability threshold for each run."""
        return 2.0 / np.asarray(self.etas)

    @property
    def num_runs(self) -> int:
        """Number of runs R."""
        return int(np.shape(self.etas)[0])

    def params_at(self, i: int) -> ShallowParams:
        """Final parameters of run ``i``."""
        return ShallowParams(*(jnp.asarray(np.asarray(a)[i]) for a in self.params))

    def with_mode_intervals(self, *, atol: float = 1e-6) -> SweepResult:
        """Return a copy with ``lambda_lower``/``lambda_upper``/``mode_delta`` of converged runs.

        At a minimum with knots on data points the Hessian depends on the mode (seed 004 §2.2):
        Lemma 2 needs lambda_lower <= 2/eta + delta (necessary) and Lemma 3 lambda_upper <= 2/eta
        (sufficient). Computed on the host with n x n Gram matrices per mode
        (:func:`minstab.modes.mode_interval`). ``atol`` (relative) decides which knots sit on a
        data point: GD approaches such a kink at a linear rate, and when the loss first stays
        below ~1e-11 the knots are still up to ~1e-7 short of it, while knots that stay off
        the data are typically >= 1e-4 away; 1e-6 separates the two.
        """
        from .modes import mode_interval

        lo, hi, delta = (np.full(self.num_runs, np.nan) for _ in range(3))
        x = np.asarray(self.x)
        for i in np.flatnonzero(np.asarray(self.converged)):
            m = mode_interval(self.params_at(int(i)), jnp.asarray(x), atol=atol)
            lo[i], hi[i], delta[i] = m.lambda_lower, m.lambda_upper, m.delta
        return self._replace(lambda_lower=lo, lambda_upper=hi, mode_delta=delta)

    def uncovered_point(self) -> np.ndarray:
        """(R,) bool: some training point has every ReLU off (pre-activation <= 0).

        Such a point is fitted only by the output bias b2 and no gradient reaches the first
        layer through it, so GD sits at (or drifts to) a non-interpolating stationary point.
        Always False for leaky ReLU nets.
        """
        if float(self.config.get("negative_slope", 0.0) or 0.0) != 0.0:
            return np.zeros(self.num_runs, bool)
        x = np.asarray(self.x).reshape(np.shape(self.x)[0], -1)  # (n, d)
        w1, b1 = np.asarray(self.params.w1), np.asarray(self.params.b1)  # (R, k, d), (R, k)
        z = np.einsum("nd,rkd->rnk", x, w1) + b1[:, None, :]
        return np.any(np.all(z <= 0, axis=2), axis=1)

    def status(self) -> list[str]:
        """Per run: 'converged', 'diverged', 'stalled' or 'not converged'.

        'stalled': not converged and not diverged, with a training point that every ReLU
        ignores (:meth:`uncovered_point`): GD cannot interpolate from there.
        """
        dead = self.uncovered_point()
        return [
            "diverged" if d else "converged" if c else "stalled" if u else "not converged"
            for c, d, u in zip(
                np.asarray(self.converged), np.asarray(self.diverged), dead, strict=True
            )
        ]

    def table(self) -> str:
        """Summary table: eta, 2/eta, loss, sharpness, flattest, bound, status."""
        head = (
            f"{'eta':>9} {'2/eta':>9} {'loss':>9} {'sharpness':>10} {'flattest':>9} "
            f"{'bound':>9} {'curv':>8} {'steps':>7}  status"
        )
        lines = [head, "-" * len(head)]
        for i, st in enumerate(self.status()):
            d = st == "diverged"
            at = int(self.diverged_at[i]) if d else int(self.converged_at[i])
            lines.append(
                f"{float(self.etas[i]):9.4g} {float(self.two_over_eta[i]):9.4g} "
                f"{float(self.loss[i]):9.2e} {float(self.sharpness[i]):10.4g} "
                f"{float(self.flattest_sharpness[i]):9.4g} {float(self.lower_bound[i]):9.4g} "
                f"{float(self.weighted_curvature[i]):8.4g} {at if at >= 0 else '-':>7}  {st}"
                + (f" at step {at}" if d else "")
            )
        return "\n".join(lines)

    def save(self, directory) -> None:
        """Write ``results.npz`` (arrays) and ``results.json`` (config and scalars); no pickle."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        arrays = _to_arrays(self)
        _atomic_savez(d / "results.npz", arrays)
        summary = {
            "config": self.config,
            "runs": [
                {
                    "eta": float(self.etas[i]),
                    "two_over_eta": float(self.two_over_eta[i]),
                    "loss": float(self.loss[i]),
                    "status": st,
                    "diverged_at": int(self.diverged_at[i]),
                    "converged_at": int(self.converged_at[i]),
                    "sharpness": float(self.sharpness[i]),
                    "flattest_sharpness": float(self.flattest_sharpness[i]),
                    "lower_bound": float(self.lower_bound[i]),
                    "weighted_curvature": float(self.weighted_curvature[i]),
                    **(
                        {}
                        if self.lambda_lower is None
                        else {
                            "lambda_lower": float(self.lambda_lower[i]),
                            "lambda_upper": float(self.lambda_upper[i]),
                            "mode_delta": float(self.mode_delta[i]),
                        }
                    ),
                }
                for i, st in enumerate(self.status())
            ],
        }
        _atomic_write(d / "results.json", json.dumps(summary, indent=2, default=_json_default))

    @classmethod
    def load(cls, directory) -> SweepResult:
        """Inverse of :meth:`save`."""
        return load_sweep(directory)


_ARRAY_FIELDS = (
    "etas", "loss", "converged", "diverged", "diverged_at", "converged_at", "steps_run",
    "sharpness", "sharpness_residual", "lower_bound", "flattest_sharpness",
    "weighted_curvature",
)  # fmt: skip


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def _to_arrays(r: SweepResult) -> dict:
    out = {f: np.asarray(getattr(r, f)) for f in _ARRAY_FIELDS}
    out.update(
        {f"params_{f}": np.asarray(a) for f, a in zip(ShallowParams._fields, r.params, strict=True)}
    )
    out.update({f"log_{f}": np.asarray(a) for f, a in zip(TrainLog._fields, r.log, strict=True)})
    out["x"], out["y"] = np.asarray(r.x), np.asarray(r.y)
    if r.lambda_lower is not None:
        out["lambda_lower"], out["lambda_upper"] = r.lambda_lower, r.lambda_upper
        out["mode_delta"] = r.mode_delta
    return out


def load_sweep(directory) -> SweepResult:
    """Load a :class:`SweepResult` written by :meth:`SweepResult.save` (``allow_pickle=False``)."""
    d = Path(directory)
    with np.load(d / "results.npz", allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    cfg = json.loads((d / "results.json").read_text())["config"]
    return SweepResult(
        **{f: a[f] for f in _ARRAY_FIELDS},
        params=ShallowParams(*(a[f"params_{f}"] for f in ShallowParams._fields)),
        log=TrainLog(*(a[f"log_{f}"] for f in TrainLog._fields)),
        x=a["x"],
        y=a["y"],
        config=cfg,
        lambda_lower=a.get("lambda_lower"),
        lambda_upper=a.get("lambda_upper"),
        mode_delta=a.get("mode_delta"),
    )


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _atomic_savez(path: Path, arrays: dict) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- per-run kernel


def _per_run(params, x, y, eta, key, *, cfg, flattest):
    r = _train_impl(params, x, y, eta, key, cfg=cfg)
    negative_slope = cfg[12]
    p = r.params
    nan = jnp.array(jnp.nan, x.dtype)
    g = _sharpness_impl(
        p, x, y, jnp.zeros(1, x.dtype), method="gram", num_iters=None, tol=1e-8,
        negative_slope=negative_slope,
    )  # fmt: skip
    res = _residual_bound(p, x, y, negative_slope)
    curv = _curvature(p, x)
    fl = _flattest(p, x, y) if flattest else nan
    dv = r.diverged
    return dict(
        params=p,
        loss=r.loss,
        converged=r.converged,
        diverged=dv,
        diverged_at=r.diverged_at,
        converged_at=r.converged_at,
        steps_run=r.steps_run,
        sharpness=jnp.where(dv, nan, g.value),
        sharpness_residual=jnp.where(dv, nan, res),
        lower_bound=jnp.where(dv, nan, 1 + 2 * curv),
        flattest_sharpness=jnp.where(dv, nan, fl),
        weighted_curvature=jnp.where(dv, nan, curv),
        log=r.log,
    )


def _curvature(p, x):
    try:
        from .bounds import _curvature_1d
    except ImportError:  # pragma: no cover - bounds not available
        return jnp.array(jnp.nan, x.dtype)
    if x.shape[1] != 1:
        from .bounds import _curvature_nd

        return _curvature_nd(p, x, 1e-9)
    return _curvature_1d(p, x[:, 0], 1e-9)


def _flattest(p, x, y):
    try:
        from .flattest import flattest_implementation
    except ImportError:  # TODO: minstab.flattest not written yet -> NaN
        return jnp.array(jnp.nan, x.dtype)
    return flattest_implementation(p, x, y).sharpness


def flattest_available() -> bool:
    """Whether :mod:`minstab.flattest` is importable."""
    import importlib.util

    return importlib.util.find_spec("minstab.flattest") is not None


_FLATTEST_IN_JIT = {"ok": True}


def _flattest_eager(res: dict, x, y) -> np.ndarray:
    from .flattest import flattest_implementation

    out = np.full(res["loss"].shape, np.nan, np.asarray(x).dtype)
    for i in np.flatnonzero(~res["diverged"]):
        p = ShallowParams(*(jnp.asarray(res[f"params_{f}"][i]) for f in ShallowParams._fields))
        out[i] = float(flattest_implementation(p, x, y).sharpness)
    return out


@functools.partial(jax.jit, static_argnames=("cfg", "flattest", "shared"))
def _chunk(params, x, y, etas, keys, *, cfg, flattest, shared):
    _TRACES["chunk"] += 1
    f = functools.partial(_per_run, cfg=cfg, flattest=flattest)
    in_axes = (None if shared else 0, None, None, 0, 0)
    return jax.vmap(f, in_axes=in_axes)(params, x, y, etas, keys)


# ----------------------------------------------------------------------------- driver


def _hash(parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str(p.dtype).encode() + str(p.shape).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
    return h.hexdigest()


def _flatten_out(out) -> dict:
    d = {k: np.asarray(v) for k, v in out.items() if k not in ("params", "log")}
    d.update(
        {
            f"params_{f}": np.asarray(a)
            for f, a in zip(ShallowParams._fields, out["params"], strict=True)
        }
    )
    d.update({f"log_{f}": np.asarray(a) for f, a in zip(TrainLog._fields, out["log"], strict=True)})
    return d


def _chunk_fields() -> set[str]:
    return (
        (set(_ARRAY_FIELDS) - {"etas"})
        | {f"params_{f}" for f in ShallowParams._fields}
        | {f"log_{f}" for f in TrainLog._fields}
    )


def _load_chunk(path: Path, runs: int) -> dict | None:
    """A finished chunk, or None (with a warning) when the file is unreadable or incomplete.

    Chunks are written atomically, but a full disk or a copy cut short can still leave a
    truncated file; it is recomputed rather than trusted.
    """
    import zipfile

    try:  # our own file handle: np.load leaks its own when the archive is truncated
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        warnings.warn(f"{path}: unreadable chunk ({e}); recomputing it", stacklevel=3)
        return None
    expected = _chunk_fields()
    shapes_ok = all(np.shape(a)[:1] == (runs,) for a in arrays.values())
    if set(arrays) != expected or not shapes_ok:
        warnings.warn(
            f"{path}: incomplete chunk (fields or run count differ); recomputing it", stacklevel=3
        )
        return None
    return arrays


def _read_manifest(man: Path) -> dict:
    """The chunk manifest, or {} (so every chunk is recomputed) when missing or unreadable."""
    if not man.exists():
        return {}
    try:
        old = json.loads(man.read_text())
    except (OSError, ValueError) as e:
        warnings.warn(f"{man}: unreadable manifest ({e}); recomputing every chunk", stacklevel=3)
        return {}
    return old if isinstance(old, dict) else {}


def sweep(
    params0: ShallowParams,
    x: jax.Array,
    y: jax.Array,
    etas,
    *,
    steps: int,
    log_every: int = 0,
    tol: float = 1e-14,
    diverge_above: float = 1e6,
    optimizer: str = "gd",
    momentum: float = 0.9,
    batch_size: int | None = None,
    replace: bool = True,
    log_sharpness: str = "gram",
    log_curvature: bool = False,
    boost_factor: float = 1.0,
    boost_below: float = 0.0,
    negative_slope: float = 0.0,
    patience: int = 0,
    seed: int = 0,
    chunk_size: int = 32,
    flattest: bool | None = None,
    out_dir=None,
    devices=None,
    progress: bool = True,
    extra_config: dict | None = None,
) -> SweepResult:
    """Train one network per step size in a single compiled program (seed 004 Fig. 3).

    Parameters
    ----------
    params0 : initial network, shared by every run, or a batch with leading axis R (one
        initialization per run, e.g. several seeds; then ``len(etas) == R``).
    x, y : training data.
    etas : (R,) step sizes (positive). New values reuse the compiled program.
    steps, log_every, tol, diverge_above, optimizer, momentum, batch_size, replace,
    log_sharpness, log_curvature, boost_factor, boost_below, negative_slope, patience :
        as in :func:`minstab.train.train`.
    seed : SGD batches of run i use ``fold_in(key(seed), i)``.
    chunk_size : runs per compiled chunk (bounds memory); rounded up to a multiple of the
        device count.
    flattest : compute the flattest implementation's sharpness (default: when
        :mod:`minstab.flattest` exists).
    out_dir : if given, finished chunks are written to ``out_dir/chunks`` and reused on rerun.
    devices : devices of the ``"runs"`` mesh axis (default: this process's devices).
    progress : show a progress bar on stderr.
    extra_config : JSON-serializable entries stored in ``result.config``.

    Returns
    -------
    SweepResult
    """
    x2, y = validate(
        params0 if params0.w1.ndim == 2 else ShallowParams(*(a[0] for a in params0)), x, y
    )
    check_common_float_dtype(params0, x2, y)
    if np.ndim(etas) > 1:
        raise ValueError(f"etas must be a 1-D sequence of step sizes, got shape {np.shape(etas)}")
    etas = np.asarray(etas, dtype=np.dtype(x2.dtype)).reshape(-1)
    if etas.size == 0 or not np.all(np.isfinite(etas)) or np.any(etas <= 0):
        raise ValueError("etas must be a non-empty array of positive, finite step sizes")
    shared = params0.w1.ndim == 2
    if not shared and params0.w1.shape[0] != etas.size:
        raise ValueError(
            f"params0 has a batch axis of {params0.w1.shape[0]} but etas has {etas.size} entries"
        )
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
    cfg = make_config(
        steps=steps, log_every=log_every, tol=tol, diverge_above=diverge_above,
        optimizer=optimizer, momentum=momentum, batch_size=batch_size, replace=replace,
        log_sharpness=log_sharpness, log_curvature=log_curvature, boost_factor=boost_factor,
        boost_below=boost_below, negative_slope=negative_slope, patience=patience,
    )  # fmt: skip
    if flattest is None:
        flattest = flattest_available()
    devices = list(jax.local_devices() if devices is None else devices)
    ndev = len(devices)
    cs = -(-int(chunk_size) // ndev) * ndev
    R = etas.size
    nchunks = -(-R // cs)
    nproc, pid = jax.process_count(), jax.process_index()
    nchunks_padded = -(-nchunks // nproc) * nproc
    mesh = Mesh(np.array(devices), ("runs",))
    run_sh, rep_sh = NamedSharding(mesh, P("runs")), NamedSharding(mesh, P())

    host_params = ShallowParams(*(np.asarray(a) for a in params0))
    key_data = jax.random.key_data(jax.random.key(seed))
    config = dict(
        steps=int(steps), log_every=int(log_every), tol=float(tol),
        diverge_above=float(diverge_above), optimizer=optimizer, momentum=float(momentum),
        batch_size=batch_size, replace=bool(replace), log_sharpness=log_sharpness,
        log_curvature=bool(log_curvature), boost_factor=float(boost_factor),
        boost_below=float(boost_below), negative_slope=float(negative_slope), seed=int(seed),
        patience=int(patience),
        chunk_size=cs, flattest=bool(flattest), dtype=str(x2.dtype),
        width=int(params0.w1.shape[-2]), n=int(x2.shape[0]), num_runs=int(R),
    )  # fmt: skip
    config.update(extra_config or {})
    digest = _hash(
        [*host_params, np.asarray(x2), np.asarray(y), etas, cfg, bool(flattest), cs, int(seed)]
    )
    chunk_dir = None
    if out_dir is not None:
        chunk_dir = Path(out_dir) / "chunks"
        chunk_dir.mkdir(parents=True, exist_ok=True)
        man = chunk_dir / "manifest.json"
        old = _read_manifest(man)
        if old.get("hash") != digest:  # a different sweep: its chunks are not ours
            for f in chunk_dir.glob("chunk_*.npz"):
                f.unlink()
        _atomic_write(
            man,
            json.dumps({"hash": digest, "num_chunks": nchunks, "chunk_size": cs, "config": config},
                       indent=2, default=_json_default),
        )  # fmt: skip

    xs = jax.device_put(x2, rep_sh)
    ys = jax.device_put(y, rep_sh)
    pshared = jax.device_put(params0, rep_sh) if shared else None
    results: dict[int, dict] = {}
    mine = [c for c in range(nchunks_padded) if c % nproc == pid]
    computed = []
    with ProgressBar(len(mine), "sweep", enabled=progress) as bar:
        for c in mine:
            path = chunk_dir / f"chunk_{c:04d}.npz" if chunk_dir is not None else None
            loaded = _load_chunk(path, cs) if path is not None and path.exists() else None
            if loaded is not None:
                results[c] = loaded
                bar.update(1, "loaded")
                continue
            lo = c * cs
            idx = np.clip(np.arange(lo, lo + cs), 0, R - 1)  # pad with the last run
            e = jax.device_put(etas[idx], run_sh)
            keys = jax.device_put(
                np.stack([np.asarray(jax.random.key_data(
                    jax.random.fold_in(jax.random.wrap_key_data(key_data), int(i))))
                    for i in idx]),
                run_sh,
            )  # fmt: skip
            if shared:
                p = pshared
            else:
                p = jax.device_put(ShallowParams(*(a[idx] for a in host_params)), run_sh)
            kd = jax.random.wrap_key_data(keys)
            in_jit = bool(flattest) and _FLATTEST_IN_JIT["ok"]
            try:
                out = _chunk(p, xs, ys, e, kd, cfg=cfg, flattest=in_jit, shared=shared)
            except Exception:  # flattest_implementation not traceable: compute it per run
                if not in_jit:
                    raise
                _FLATTEST_IN_JIT["ok"] = in_jit = False
                out = _chunk(p, xs, ys, e, kd, cfg=cfg, flattest=False, shared=shared)
            results[c] = _flatten_out(jax.device_get(out))
            if flattest and not in_jit:
                results[c]["flattest_sharpness"] = _flattest_eager(results[c], x2, y)
            if path is not None:
                _atomic_savez(path, results[c])
            computed.append(c)
            bar.update(1, f"chunk {c + 1}/{nchunks}")

    if nproc > 1:
        from jax.experimental import multihost_utils

        fields = sorted(results[mine[0]])
        local = {f: np.stack([results[c][f] for c in mine]) for f in fields}
        gathered = multihost_utils.process_allgather(local)  # (nproc, len(mine), cs, ...)
        results = {}
        for j in range(len(mine)):
            for q in range(nproc):
                results[j * nproc + q] = {f: np.asarray(gathered[f][q, j]) for f in fields}
    cat = {f: np.concatenate([results[c][f] for c in range(nchunks)])[:R] for f in results[0]}
    sweep.last_computed = computed  # chunks computed (not loaded) by the last call
    return SweepResult(
        etas=etas,
        params=ShallowParams(*(cat[f"params_{f}"] for f in ShallowParams._fields)),
        **{f: cat[f] for f in _ARRAY_FIELDS if f != "etas"},
        log=TrainLog(*(cat[f"log_{f}"] for f in TrainLog._fields)),
        x=np.asarray(x2[:, 0] if x2.shape[1] == 1 else x2),
        y=np.asarray(y),
        config=config,
    )


sweep.last_computed = []
