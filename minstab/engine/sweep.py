"""Step-size sweeps: every run in one compiled ``jit(vmap(scan))`` program, chunked, sharded, resumable.

A sweep trains one network per step size eta (seed 004 Fig. 3) from a shared initialization
(or one initialization per run), then evaluates per run: the sharpness lambda_max (Lemma 1 says
a stable minimum has lambda_max <= 2/eta), the Lemma 4 lower bound 1 + 2 int |f''| g, the
weighted curvature int |f''| g (Theorem 1: <= 1/eta - 1/2 without knots on data points) and the
sharpness of the flattest implementation (THEORY §3). Any model works (``model=apply``, see
:mod:`minstab.engine.objective`); the shallow-net quantities are then NaN.

The eta axis is cut into chunks of static size (padded), so new step-size values never
recompile; each chunk is placed on a ``jax.sharding.Mesh`` over the devices with one axis
``"runs"``. With ``out_dir``, every finished chunk is written atomically to
``out_dir/chunks/chunk_XXXX.npz`` next to a manifest keyed by a hash of the sweep; rerunning the
same sweep loads finished chunks instead of recomputing them. Under ``jax.distributed`` with
several processes, each process computes every ``process_count``-th chunk and the results are
gathered with ``multihost_utils.process_allgather``.

The pieces: :func:`_plan` (what to run where), :class:`ChunkStore` (manifest, atomic writes,
resume), :func:`_run_chunk` (one compiled chunk), :func:`_gather` (across processes) and
:func:`_assemble` (the :class:`SweepResult`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from .._io import atomic_savez, to_jsonable, write_json
from .._validate import ArgumentTypeError, check_bool, check_choice, check_int
from ..progress import ProgressBar
from .config import TrainConfig, train_config
from .objective import Objective
from .problem import builtin
from .train import TrainLog, check_run_size, train_run

__all__ = ["SweepResult", "ChunkStore", "sweep", "load_sweep"]


class SweepResult(NamedTuple):
    """Per-run results of a step-size sweep (leading axis = runs).

    Attributes
    ----------
    etas : (R,) step sizes.
    params : the parameters with a leading (R,) axis (ShallowParams, or the user's pytree).
    loss, converged, diverged, diverged_at, converged_at, steps_run : as in
        :class:`minstab.engine.train.TrainResult`.
    sharpness : lambda_max at the final point (NaN for diverged runs): the Gram form (eq. 28)
        for the shallow net on the quadratic loss, Lanczos on the exact Hessian otherwise.
    sharpness_residual : for the Gram form a bound on its error, ||H - Phi Phi^T/n||_2; for
        Lanczos its residual ||H v - lambda v||.
    lower_bound : Lemma 4 bound 1 + 2 int |f''| g (seed 004 eq. 30). Shallow net only.
    flattest_sharpness : lambda_max of the flattest rescaling (THEORY §3). Shallow net only.
    weighted_curvature : int |f''| g (eq. 21). Shallow net only.
    log : :class:`minstab.engine.train.TrainLog` with a leading (R,) axis.
    x, y : training data.
    config : dict of the sweep options (JSON-serializable).
    lambda_lower, lambda_upper : (R,) ends of the mode interval of Lemma 2/3 at converged runs
        (:func:`minstab.shallow.modes.mode_interval`; equal to the sharpness at twice-differentiable
        minima, NaN elsewhere); ``mode_delta`` is Lemma 2's delta. None until
        :meth:`with_mode_intervals` fills them.
    computed : (R,) bool, set by :func:`sweep`: True where this call trained the run; False
        where its chunk was loaded from a finished earlier call (``out_dir``, resumed) or was
        another process's. None for a result read back with :func:`load_sweep` (not saved).

    The shallow-only fields (``lower_bound``, ``flattest_sharpness``, ``weighted_curvature``)
    are NaN for a user ``model`` or ``loss`` (``config["model"] != "shallow"``).
    """

    etas: np.ndarray
    params: object
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
    computed: np.ndarray | None = None

    @property
    def two_over_eta(self) -> np.ndarray:
        """2/eta, the Lemma 1 stability threshold for each run."""
        return 2.0 / np.asarray(self.etas)

    @property
    def threshold(self) -> np.ndarray:
        """Each run's stability threshold: 2/eta for GD, (2 + 2 beta)/eta for heavy ball, ...

        :func:`minstab.stability_threshold` of the sweep's optimizer (issue 33); for Adam,
        RMSProp and :func:`minstab.preconditioned_gd` it bounds the preconditioned sharpness.
        NaN for an optimizer without a derived threshold.
        """
        factor = self.config.get("threshold_factor", 2.0)  # results saved before issue 33: GD
        return np.full(self.num_runs, np.nan) if factor is None else factor / np.asarray(self.etas)

    @property
    def edge_ratio(self) -> np.ndarray:
        """The final sharpness over the threshold (eta lambda / (eta threshold)), per run.

        For an optimizer whose threshold bounds the preconditioned sharpness, lambda is the last
        logged value of ``log_sharpness="preconditioned"`` (NaN if the sweep did not log it).
        """
        if self.config.get("threshold_on") == "preconditioned":
            pre = self.config.get("log_sharpness") == "preconditioned" and self.log.sharpness.size
            lam = np.asarray(self.log.sharpness)[:, -1] if pre else np.full(self.num_runs, np.nan)
        else:
            lam = np.asarray(self.sharpness)
        return lam / self.threshold

    @property
    def num_runs(self) -> int:
        """Number of runs R."""
        return int(np.shape(self.etas)[0])

    @property
    def shallow(self) -> bool:
        """The runs trained the built-in shallow ReLU net (``model=None``)."""
        return self.config.get("model", "shallow") == "shallow"

    def select(self, idx) -> SweepResult:
        """The runs ``idx`` (an index array) as a sweep of their own.

        With one data set per run (``per_run_data``) the runs selected must share theirs, and
        the result carries it without the runs axis, like a sweep over shared data.
        """
        idx = np.asarray(idx)
        take = lambda a: None if a is None else np.asarray(a)[idx]  # noqa: E731
        x, y = np.asarray(self.x), np.asarray(self.y)
        config = dict(self.config, num_runs=int(idx.size))
        if self.config.get("per_run_data"):
            if not (np.all(x[idx] == x[idx[0]]) and np.all(y[idx] == y[idx[0]])):
                raise ValueError("select: the runs selected have different data sets")
            x, y = x[idx[0]], y[idx[0]]
            config.pop("per_run_data")
        return self._replace(
            **{f: take(getattr(self, f)) for f in _ARRAY_FIELDS},
            params=jax.tree_util.tree_map(lambda a: np.asarray(a)[idx], self.params),
            log=TrainLog(*(np.asarray(a)[idx] for a in self.log)),
            x=x, y=y, config=config, lambda_lower=take(self.lambda_lower),
            lambda_upper=take(self.lambda_upper), mode_delta=take(self.mode_delta),
            computed=take(self.computed),
        )  # fmt: skip

    def params_at(self, i: int):
        """Final parameters of run ``i`` (the same pytree as the initial parameters)."""
        return jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a)[i]), self.params)

    def with_mode_intervals(self, *, atol: float = 1e-6) -> SweepResult:
        """Return a copy with ``lambda_lower``/``lambda_upper``/``mode_delta`` of converged runs.

        At a minimum with knots on data points the Hessian depends on the mode (seed 004 §2.2):
        Lemma 2 needs lambda_lower <= 2/eta + delta (necessary) and Lemma 3 lambda_upper <= 2/eta
        (sufficient). Computed on the host with n x n Gram matrices per mode
        (:func:`minstab.shallow.modes.mode_interval`). ``atol`` (relative) decides which knots sit on a
        data point: GD approaches such a kink at a linear rate, and when the loss first stays
        below ~1e-11 the knots are still up to ~1e-7 short of it, while knots that stay off
        the data are typically >= 1e-4 away; 1e-6 separates the two. Shallow net only.
        """
        if not self.shallow:
            raise ValueError("mode intervals need the shallow ReLU net (this sweep used a model)")
        lo, hi, delta = (np.full(self.num_runs, np.nan) for _ in range(3))
        x = np.asarray(self.x)
        for i in np.flatnonzero(np.asarray(self.converged)):
            m = builtin().mode_interval(self.params_at(int(i)), jnp.asarray(x), atol=atol)
            lo[i], hi[i], delta[i] = m.lambda_lower, m.lambda_upper, m.delta
        return self._replace(lambda_lower=lo, lambda_upper=hi, mode_delta=delta)

    def uncovered_point(self) -> np.ndarray:
        """(R,) bool: some training point has every ReLU off (pre-activation <= 0).

        Such a point is fitted only by the output bias b2 and no gradient reaches the first
        layer through it, so GD sits at (or drifts to) a non-interpolating stationary point.
        Always False for leaky ReLU nets and user models.
        """
        if not self.shallow or float(self.config.get("negative_slope", 0.0) or 0.0) != 0.0:
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

    def counts(self) -> dict[str, int]:
        """How many runs ended in each :meth:`status` (every status, zeros included)."""
        st = self.status()
        return {k: st.count(k) for k in ("converged", "diverged", "stalled", "not converged")}

    def summary(self) -> str:
        """One paragraph: how many runs converged, diverged (at which step sizes), stalled.

        A diverged run's ``loss`` is where it was stopped (above ``diverge_above`` or not
        finite) and its sharpness is NaN: it is no result, and this says so.
        """
        st = np.asarray(self.status())
        etas, loss = np.asarray(self.etas, float), np.asarray(self.loss, float)
        parts = [f"{self.num_runs} runs"]
        for k, c in self.counts().items():
            if not c:
                continue
            e, l = etas[st == k], loss[st == k]
            span = f"eta {e.min():.4g}" + (f" to {e.max():.4g}" if c > 1 else "")
            if k == "diverged":
                at = np.asarray(self.diverged_at)[st == k]
                what = f"{span}, stopped at steps {at.min()}-{at.max()}; loss and sharpness are no result"
            else:
                what = f"{span}, final loss {l.min():.3g}" + (f" to {l.max():.3g}" if c > 1 else "")
            parts.append(f"{c} {k} ({what})")
        return "; ".join(parts)

    def table(self) -> str:
        """Summary table: eta, 2/eta, loss, sharpness, eta lambda/2, ..., steps, status.

        The shallow-net columns (flattest, bound, curv) appear for the shallow net only; a
        diverged run's loss is where it was stopped and its status says so.
        """
        shallow = self.shallow
        head = (f"{'eta':>9} {'2/eta':>9} {'loss':>9} {'sharpness':>10} {'eta*lam/2':>9} "
                + (f"{'flattest':>9} {'bound':>9} {'curv':>8} " if shallow else "")
                + f"{'steps':>7}  status")  # fmt: skip
        lines = [head, "-" * len(head)]
        for i, st in enumerate(self.status()):
            d = st == "diverged"
            at = int(self.diverged_at[i]) if d else int(self.converged_at[i])
            edge = float(self.etas[i]) * float(self.sharpness[i]) / 2
            extra = (f"{float(self.flattest_sharpness[i]):9.4g} {float(self.lower_bound[i]):9.4g} "
                     f"{float(self.weighted_curvature[i]):8.4g} ") if shallow else ""  # fmt: skip
            lines.append(
                f"{float(self.etas[i]):9.4g} {float(self.two_over_eta[i]):9.4g} "
                f"{float(self.loss[i]):9.2e} {float(self.sharpness[i]):10.4g} {edge:9.4g} "
                f"{extra}{at if at >= 0 else '-':>7}  {st}" + (f" at step {at}" if d else "")
            )
        return "\n".join(lines)

    def _run_summary(self, i: int, status: str) -> dict:
        out = {
            "eta": self.etas[i], "two_over_eta": self.two_over_eta[i], "loss": self.loss[i],
            "status": status, "diverged_at": self.diverged_at[i],
            "converged_at": self.converged_at[i], "sharpness": self.sharpness[i],
            "flattest_sharpness": self.flattest_sharpness[i], "lower_bound": self.lower_bound[i],
            "weighted_curvature": self.weighted_curvature[i],
        }  # fmt: skip
        if self.lambda_lower is not None:
            out.update(lambda_lower=self.lambda_lower[i], lambda_upper=self.lambda_upper[i],
                       mode_delta=self.mode_delta[i])  # fmt: skip
        return out

    def save(self, directory) -> None:
        """Write ``results.npz`` (arrays) and ``results.json`` (config and scalars); no pickle."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        atomic_savez(d / "results.npz", _to_arrays(self))
        runs = [self._run_summary(i, st) for i, st in enumerate(self.status())]
        write_json(d / "results.json", {"config": self.config, "runs": runs})

    @classmethod
    def load(cls, directory, *, like=None) -> SweepResult:
        """Inverse of :meth:`save` (see :func:`load_sweep`)."""
        return load_sweep(directory, like=like)


_ARRAY_FIELDS = (
    "etas", "loss", "converged", "diverged", "diverged_at", "converged_at", "steps_run",
    "sharpness", "sharpness_residual", "lower_bound", "flattest_sharpness",
    "weighted_curvature",
)  # fmt: skip
_SHALLOW_ONLY = ("lower_bound", "flattest_sharpness", "weighted_curvature")


def _leaf_names(params) -> list[str]:
    """Npz names of the parameter leaves: ShallowParams fields, else ``jax.tree_util.keystr``."""
    params_type = builtin().params_type
    if isinstance(params, params_type):
        return list(params_type._fields)
    return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


def _flat_arrays(params, log, fields: dict) -> dict:
    """One flat dict of host arrays: ``params_<leaf>``, ``log_<field>`` and the per-run fields."""
    out = {k: np.asarray(v) for k, v in fields.items()}
    leaves = jax.tree_util.tree_leaves(params)
    out.update({f"params_{k}": np.asarray(a) for k, a in zip(_leaf_names(params), leaves,
                                                             strict=True)})  # fmt: skip
    out.update({f"log_{f}": np.asarray(a) for f, a in zip(TrainLog._fields, log, strict=True)})
    return out


def _to_arrays(r: SweepResult) -> dict:
    out = _flat_arrays(r.params, r.log, {f: getattr(r, f) for f in _ARRAY_FIELDS})
    out["x"], out["y"] = np.asarray(r.x), np.asarray(r.y)
    if r.lambda_lower is not None:
        out["lambda_lower"], out["lambda_upper"] = r.lambda_lower, r.lambda_upper
        out["mode_delta"] = r.mode_delta
    return out


def _unflatten_params(arrays: dict, config: dict, like=None):
    if config.get("model", "shallow") == "shallow":
        params_type = builtin().params_type
        return params_type(*(arrays[f"params_{f}"] for f in params_type._fields))
    names = config.get("param_leaves") or []
    if like is None:
        return {name: arrays[f"params_{name}"] for name in names}
    treedef = jax.tree_util.tree_structure(like)
    return jax.tree_util.tree_unflatten(treedef, [arrays[f"params_{name}"] for name in names])


def load_sweep(directory, *, like=None) -> SweepResult:
    """Load a :class:`SweepResult` written by :meth:`SweepResult.save` (``allow_pickle=False``).

    For a user model, the parameters come back in the pytree structure of ``like`` (e.g. the
    initial parameters); without it, as a dict keyed by ``jax.tree_util.keystr`` paths.
    """
    d = Path(directory)
    with np.load(d / "results.npz", allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    cfg = json.loads((d / "results.json").read_text())["config"]
    return SweepResult(
        **{f: a[f] for f in _ARRAY_FIELDS},
        params=_unflatten_params(a, cfg, like),
        log=TrainLog(*(a[f"log_{f}"] for f in TrainLog._fields)),
        x=a["x"],
        y=a["y"],
        config=cfg,
        lambda_lower=a.get("lambda_lower"),
        lambda_upper=a.get("lambda_upper"),
        mode_delta=a.get("mode_delta"),
    )


# ----------------------------------------------------------------------------- per-run kernel


def _diagnostics(obj: Objective, p, x, y, *, flattest: bool | None) -> dict:
    """End-of-run quantities of one run (before masking diverged runs); ``None``: all NaN."""
    nan = jnp.array(jnp.nan, x.dtype)
    if flattest is None:
        return {f: nan for f in ("sharpness", "sharpness_residual", *_SHALLOW_ONLY)}
    if not obj.closed_form:
        v0 = obj.start_vector(p)
        value, _, res = obj.sharpness(p, x, y, v0, method="lanczos", num_iters=None, tol=None)
        return dict(sharpness=value, sharpness_residual=res, **{f: nan for f in _SHALLOW_ONLY})
    # the built-in model's closed forms (registered by minstab.shallow: Gram sharpness, its
    # certificate, Lemma 4's bound, the flattest implementation)
    return builtin().diagnostics(obj, p, x, y, flattest=flattest)


def _per_run(params, x, y, eta, key, *, config, objective, flattest, sequential):
    r = train_run(params, x, y, eta, key, config=config, objective=objective,
                  sequential=sequential)  # fmt: skip
    return _finish_run(r, x, y, objective=objective, flattest=flattest)


def _finish_run(r, x, y, *, objective, flattest):
    """The end-of-run quantities of a trained run (NaN where it diverged) and its results."""
    diag = _diagnostics(objective, r.params, x, y, flattest=flattest)
    nan = jnp.array(jnp.nan, x.dtype)
    out = {k: jnp.where(r.diverged, nan, v) for k, v in diag.items()}
    out.update(
        params=r.params, loss=r.loss, converged=r.converged, diverged=r.diverged,
        diverged_at=r.diverged_at, converged_at=r.converged_at, steps_run=r.steps_run, log=r.log,
    )  # fmt: skip
    return out


class _ChunkSpec(NamedTuple):
    """Static description of one compiled chunk (hashable)."""

    config: TrainConfig
    objective: Objective
    flattest: bool | None
    shared: bool  # one initialization for every run
    layout: str  # "batched" or "sequential"
    mesh: Mesh
    per_run_data: bool = False  # x, y carry a leading runs axis


@functools.partial(jax.jit, static_argnames=("spec",))
def _chunk(params, x, y, etas, keys, *, spec: _ChunkSpec):
    """One chunk of runs, each device of ``spec.mesh`` taking its share (``shard_map``).

    A device runs its runs as one vmapped program (``"batched"``) or one after another
    (``"sequential"``, ``lax.map``). With ``per_run_data`` every run has its own ``x``, ``y``
    (leading runs axis, sharded like the step sizes).
    """
    config, objective, flattest, shared, layout, mesh, per_run_data = spec
    f = functools.partial(_per_run, config=config, objective=objective, flattest=flattest,
                          sequential=layout == "sequential")  # fmt: skip
    train = functools.partial(train_run, config=config, objective=objective, sequential=False)
    finish = functools.partial(_finish_run, objective=objective, flattest=flattest)

    def local(params, x, y, etas, keys):
        if layout == "batched":
            # the runs train as one vmapped program; their end-of-run quantities follow one
            # run at a time (lax.map): a vmapped eigh is one batched LAPACK call that splits
            # its batch over XLA:CPU's intra-op thread pool and waits for it, and with two CPU
            # devices executing at once both pool threads were seen waiting, for ever (0 %
            # CPU; the phase diagram's n = 16 cells, jaxlib 0.10.2, 2026-12-07)
            d = 0 if per_run_data else None
            in_axes = (None if shared else 0, d, d, 0, 0)
            r = jax.vmap(train, in_axes=in_axes)(params, x, y, etas, keys)
            if per_run_data:
                return jax.lax.map(lambda a: finish(a[0], a[1], a[2]), (r, x, y))
            return jax.lax.map(lambda a: finish(a, x, y), r)
        if per_run_data:
            return jax.lax.map(lambda run: f(*run), (params, x, y, etas, keys))
        if shared:
            return jax.lax.map(lambda run: f(params, x, y, *run), (etas, keys))
        return jax.lax.map(lambda run: f(run[0], x, y, *run[1:]), (params, etas, keys))

    runs, rep = P("runs"), P()
    data = runs if per_run_data else rep
    specs = (rep if shared else runs, data, data, runs, runs)
    sharded = jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=runs, check_vma=False)
    return sharded(params, x, y, etas, keys)


# ----------------------------------------------------------------------------- planning


class _Plan(NamedTuple):
    """What runs where: chunks of ``chunk_size`` runs, this process's share, the hash."""

    etas: np.ndarray
    chunk_size: int
    num_chunks: int
    mine: list  # chunk indices this process computes (padded to a multiple of process_count)
    shared: bool  # one initialization for every run
    mesh: Mesh
    layout: str  # "batched" or "sequential"
    threads: int  # host threads, each computing a contiguous share of a chunk
    digest: str
    config: dict  # JSON-ready options stored with the result
    per_run_data: bool = False  # x, y carry a leading runs axis (one data set per run)


def _hash(parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str(p.dtype).encode() + str(p.shape).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
    return h.hexdigest()


def _check_etas(etas, dtype, num_inits) -> np.ndarray:
    if np.ndim(etas) > 1:
        raise ValueError(f"etas must be a 1-D sequence of step sizes, got shape {np.shape(etas)}")
    try:
        etas = np.asarray(etas, dtype=np.dtype(dtype)).reshape(-1)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"etas must be a sequence of numbers, got {etas!r}") from None
    if etas.size == 0 or not np.all(np.isfinite(etas)) or np.any(etas <= 0):
        raise ValueError("etas must be a non-empty array of positive, finite step sizes")
    if num_inits is not None and num_inits != etas.size:
        raise ValueError(
            f"params0 has a batch axis of {num_inits} but etas has {etas.size} entries"
        )
    return etas


class _PlanOptions(NamedTuple):
    """The keywords of :func:`sweep` that decide the plan (checked by the caller)."""

    shared: bool
    seed: int
    chunk_size: int
    flattest: bool | None
    devices: list | None
    layout: str
    threads: int | None
    extra_config: dict | None
    per_run_data: bool = False


def _plan(obj, cfg, params0, x, y, etas, opts: _PlanOptions) -> _Plan:
    """Chunks, layout, threads, the stored config and the hash of a sweep."""
    shared, seed, chunk_size, flattest, devices, layout, threads, extra_config, per_run_data = opts
    xall, x = x, (x[0] if per_run_data else x)  # layout and sizes from one run's data
    devices = list(jax.local_devices() if devices is None else devices)
    first = params0 if shared else jax.tree_util.tree_map(lambda a: a[0], params0)
    layout = _choose_layout(layout, obj, first, x, devices)
    num_chunks, cs = _chunking(etas.size, int(chunk_size), len(devices))
    # equal shares of a chunk (one compiled program), never a different chunking
    threads = _choose_threads(threads, obj, first, x, devices)
    threads = max(t for t in range(threads, 0, -1) if cs % t == 0)
    nproc, pid = jax.process_count(), jax.process_index()
    mine = [c for c in range(-(-num_chunks // nproc) * nproc) if c % nproc == pid]
    config = dict(
        **cfg.to_dict(), **obj.describe(), seed=int(seed), chunk_size=cs, flattest=bool(flattest),
        diagnostics=flattest is not None,
        dtype=str(x.dtype), n=int(x.shape[0]), num_runs=int(etas.size), layout=layout,
    )  # fmt: skip
    if obj.shallow:
        config["width"] = int(first.w1.shape[0])
    else:
        config["param_leaves"] = _leaf_names(first)
    config.update(_threshold_config(cfg))
    config.update(extra_config or {})
    host = [np.asarray(a) for a in jax.tree_util.tree_leaves(params0)]
    # a user model is named by module and qualified name only: its predictions tell two apart
    fingerprint = [] if obj.shallow else [np.asarray(obj.apply(first, x))]
    digest = _hash([*host, *fingerprint, np.asarray(xall), np.asarray(y), etas,
                    repr(cfg.to_dict()), obj.describe(), flattest, cs, int(seed), layout])  # fmt: skip
    if per_run_data:
        config["per_run_data"] = True
    mesh = Mesh(np.array(devices), ("runs",))
    return _Plan(etas, cs, num_chunks, mine, shared, mesh, layout, threads, digest, config,
                 per_run_data)  # fmt: skip


def _threshold_config(cfg: TrainConfig) -> dict:
    """What the result stores about the optimizer's stability threshold (issue 33).

    ``threshold_factor``: eta times the threshold (None if not derived); ``threshold_on``:
    what it bounds, ``"sharpness"`` or ``"preconditioned"``.
    """
    from .optimizers import preconditioned_spec, threshold_for

    try:
        factor = float(threshold_for(cfg, 1.0))
    except ValueError:
        factor = None
    pre = not cfg.plain_gd and preconditioned_spec(cfg.optimizer)
    return {"threshold_factor": factor, "threshold_on": "preconditioned" if pre else "sharpness"}


def _chunking(num_runs: int, chunk_size: int, num_devices: int) -> tuple[int, int]:
    """``(num_chunks, runs per chunk)``: the fewest, equal chunks of at most ``chunk_size`` runs.

    ``chunk_size`` is rounded up to a multiple of the device count, and so is a chunk. A chunk
    is one compiled program of a fixed number of runs, the last chunk padded with repeats of
    the last run; even chunks keep the padding below one run per device and chunk (8 runs with
    ``chunk_size=32`` are one chunk of 8, not 32 runs of which 24 are padding; 40 runs are two
    chunks of 20, not 32 + 32).
    """
    cap = -(-chunk_size // num_devices) * num_devices
    num_chunks = -(-num_runs // cap)
    per_chunk = -(-num_runs // num_chunks)
    return num_chunks, -(-per_chunk // num_devices) * num_devices


LAYOUTS = ("auto", "batched", "sequential")


def _small_step(obj: Objective, first, x) -> bool:
    """A step of one run is too small for XLA's intra-op threads (n k d <= 2^16, shallow net)."""
    if not obj.shallow:
        return False
    k, d = first.w1.shape
    return x.shape[0] * k * d <= 2**16


def _choose_layout(layout: str, obj: Objective, first, x, devices) -> str:
    """``"auto"`` on CPU: one vmapped program unless one loop per run is measurably faster.

    Measured on a 2-core CPU (runs x steps per second, interleaved in one process): a step of
    a tiny net (n k = 128, the main job) costs little more than the XLA:CPU per-operation
    overhead, so 40 runs in one vmapped program are 2.9x faster than one loop per run; at
    n k = 2000, d = 1 (n = 20, k = 100) the vmapped activations (runs x n x k) leave the cache
    and one loop per run is 2.1x faster; with images (d = 784) the vmapped program folds the
    runs into one large matmul, 1.2-1.3x faster at n = 200, k = 64, while at n = 1000, k = 256
    each run's matmuls are large already and one loop per run is 1.12x faster. On GPU/TPU the
    batched program is the one to use; so it is for a user ``model`` on CPU, unless it
    convolves: ``vmap`` over runs turns a convolution with per-run kernels into one grouped
    convolution, which XLA:CPU runs far slower than the runs' own convolutions (notebook 05's
    CNN, a 3x3 convolution with 8 channels on 256 14x14 images, 16 runs x 300 steps: 53 s
    batched against 22 s one loop per run; 4 runs on 64 images: 1.1 s against 1.3 s). For any
    other model the cost is unknown here: force ``layout`` to compare.
    """
    check_choice(layout, "layout", LAYOUTS)
    if layout != "auto":
        return layout
    if devices[0].platform != "cpu":
        return "batched"
    if not obj.shallow:
        return "sequential" if _convolves(obj.model, first, x) else "batched"
    n, (k, d) = x.shape[0], first.w1.shape
    small = n * k >= 1024 and _small_step(obj, first, x)
    return "sequential" if small or n * k * d >= 2**27 else "batched"


def _convolves(model, params, x) -> bool:
    """Whether ``model(params, x)`` contains a convolution (in any nested jaxpr)."""
    jaxpr = jax.make_jaxpr(model)(params, x).jaxpr

    def walk(jp) -> bool:
        for eqn in jp.eqns:
            if eqn.primitive.name == "conv_general_dilated":
                return True
            for v in eqn.params.values():
                for sub in v if isinstance(v, (tuple, list)) else (v,):
                    inner = getattr(sub, "jaxpr", sub)  # ClosedJaxpr -> Jaxpr
                    if hasattr(inner, "eqns") and walk(inner):
                        return True
        return False

    return walk(jaxpr)


def _choose_threads(threads, obj: Objective, first, x, devices) -> int:
    """Host threads sharing each chunk on a single CPU device (default 1: off).

    A program of small steps keeps one core busy (XLA:CPU splits an operation over threads
    only when it is large), and programs launched from several host threads can run
    concurrently. It is opt-in only: two such executions on one XLA:CPU client were seen to
    deadlock under load (both threads parked in ``BlockUntilReady``, 0 % CPU; jaxlib 0.10.2,
    2 cores), so ``threads > 1`` is for a user who has checked it on their machine. Several
    CPU devices (:func:`minstab.use_cpu_cores` before JAX starts) give the same concurrency
    through the ``"runs"`` mesh, which is the supported way.
    """
    if threads is None:
        return 1
    if int(threads) != threads or int(threads) < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads}")
    return int(threads)


# ----------------------------------------------------------------------------- chunk store


class ChunkStore:
    """Finished chunks on disk: ``DIR/chunks/chunk_XXXX.npz`` and a manifest keyed by a hash.

    Writes are atomic (a temporary file and ``os.replace``), so a killed job never leaves a
    half-written chunk; a manifest with another hash means another sweep, whose chunks are
    deleted. Every chunk carries what it is (:data:`META_KEY`, a JSON string): its index, its
    run indices, the sweep's fingerprint, the dtype and shape of every array and a SHA-256
    checksum of their bytes. A chunk is trusted only when all of these match the sweep and
    its arrays (a chunk copied over another's index, an edited value, float32 arrays in a
    float64 sweep, a NaN loss of a run that did not diverge, a missing field, another run
    count), and is readable; otherwise it is recomputed with a warning naming the file. A
    directory in a chunk's place is moved aside (``chunk_XXXX.npz.bad``). An unreadable
    manifest recomputes every chunk. ``ChunkStore(None, ...)`` stores nothing.
    """

    #: npz entry of a chunk's description (one JSON string in a unicode array: no pickle)
    META_KEY = "__chunk__"

    def __init__(self, out_dir, digest: str, manifest: dict):
        self.dir = None if out_dir is None else Path(out_dir) / "chunks"
        self.runs = int(manifest["chunk_size"])
        cfg = manifest.get("config") or {}
        self.num_runs = int(cfg.get("num_runs", manifest.get("num_chunks", 1) * self.runs))
        self.dtype = cfg.get("dtype")  # floating arrays of the sweep
        self.digest = digest
        self.fields = None  # field names of a complete chunk, from the first one saved/read
        if self.dir is None:
            return
        if self.dir.exists() and not self.dir.is_dir():
            raise ValueError(f"out_dir: {self.dir} exists and is not a directory")
        self.dir.mkdir(parents=True, exist_ok=True)
        man = self.dir / "manifest.json"
        old = _read_manifest(man)
        if old.get("hash") != digest:  # a different sweep: its chunks are not ours
            for f in self.dir.glob("chunk_*.npz"):
                if f.is_file():
                    f.unlink()
        else:
            self.fields = set(old.get("fields") or ()) or None
        self._manifest = {"hash": digest, **manifest}
        write_json(man, {**self._manifest, "fields": sorted(self.fields or ())})

    def _path(self, c: int) -> Path | None:
        return None if self.dir is None else self.dir / f"chunk_{c:04d}.npz"

    def run_indices(self, c: int) -> list[int]:
        """Run indices of chunk ``c`` (the last chunk padded with repeats of the last run)."""
        idx = np.clip(np.arange(c * self.runs, (c + 1) * self.runs), 0, self.num_runs - 1)
        return [int(i) for i in idx]

    def describe(self, c: int, arrays: dict) -> dict:
        """What chunk ``c`` holds: index, runs, fingerprint, dtypes, shapes and checksum."""
        return {
            "chunk": int(c),
            "runs": self.run_indices(c),
            "sweep": self.digest,
            "dtype": {k: str(np.asarray(a).dtype) for k, a in sorted(arrays.items())},
            "shape": {k: list(np.shape(a)) for k, a in sorted(arrays.items())},
            "sha256": checksum(arrays),
        }

    def load(self, c: int) -> dict | None:
        """The arrays of chunk ``c``; None when it is not on disk or does not match (warned)."""
        import zipfile

        path = self._path(c)
        if path is None or not (path.exists() or path.is_symlink()):
            return None
        if path.is_dir():
            bad = path.with_name(path.name + ".bad")
            n = 0
            while bad.exists():
                n += 1
                bad = path.with_name(f"{path.name}.bad{n}")
            path.rename(bad)
            warnings.warn(f"{path}: a directory, not a chunk (moved to {bad.name}); recomputing it",
                          stacklevel=3)  # fmt: skip
            return None
        try:  # our own file handle: np.load leaks its own when the archive is truncated
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                if not hasattr(z, "files"):  # a bare .npy under the chunk's name
                    raise ValueError("not an npz archive")
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            warnings.warn(f"{path}: unreadable chunk ({e}); recomputing it", stacklevel=3)
            return None
        meta_raw = arrays.pop(self.META_KEY, None)
        whole = all(np.shape(a)[:1] == (self.runs,) for a in arrays.values())
        if not whole or (self.fields is not None and set(arrays) != self.fields):
            warnings.warn(
                f"{path}: incomplete chunk (fields or run count differ); recomputing it",
                stacklevel=3,
            )
            return None
        why = self._mismatch(c, arrays, meta_raw)
        if why:
            warnings.warn(f"{path}: chunk does not match this sweep ({why}); recomputing it",
                          stacklevel=3)  # fmt: skip
            return None
        return arrays

    def _mismatch(self, c: int, arrays: dict, meta_raw) -> str | None:
        """Why chunk ``c`` cannot be trusted, or None."""
        try:
            raw = np.asarray(meta_raw).reshape(-1) if meta_raw is not None else ()
            meta = json.loads(str(raw[0])) if len(raw) == 1 else None
        except ValueError:
            meta = None
        if not isinstance(meta, dict):
            return "no valid description of its runs and checksum"
        if meta.get("sweep") != self.digest:
            return "written by another sweep"
        if meta.get("chunk") != c or meta.get("runs") != self.run_indices(c):
            return f"it holds chunk {meta.get('chunk')}, runs {meta.get('runs')}"
        want = self.describe(c, arrays)
        for key in ("dtype", "shape"):
            if meta.get(key) != want[key]:
                diff = sorted(k for k in want[key] if (meta.get(key) or {}).get(k) != want[key][k])
                return f"{key} of {', '.join(diff) or 'its arrays'} changed"
        if meta.get("sha256") != want["sha256"]:
            return "checksum mismatch: its values were changed"
        if self.dtype is not None:
            other = sorted(k for k, a in arrays.items()
                           if a.dtype.kind == "f" and str(a.dtype) != self.dtype)  # fmt: skip
            if other:
                return f"{', '.join(other)} not {self.dtype}"
        loss, diverged = arrays.get("loss"), arrays.get("diverged")
        if loss is not None and diverged is not None:
            bad = ~np.isfinite(loss) & ~diverged.astype(bool)
            if np.any(bad):
                return f"a non-finite loss for {int(bad.sum())} run(s) that did not diverge"
        return None

    def save(self, c: int, arrays: dict) -> None:
        """Write chunk ``c`` and its description atomically (no-op without a directory)."""
        path = self._path(c)
        if path is None:
            return
        if self.fields is None:  # record what a complete chunk holds
            self.fields = set(arrays)
            write_json(self.dir / "manifest.json", {**self._manifest, "fields": sorted(arrays)})
        meta = np.array([json.dumps(self.describe(c, arrays))])
        atomic_savez(path, {**arrays, self.META_KEY: meta})


def checksum(arrays: dict) -> str:
    """SHA-256 of named arrays: each name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _read_manifest(man: Path) -> dict:
    """The chunk manifest, or {} (every chunk recomputed) when missing or unreadable."""
    if not man.exists():
        return {}
    try:
        old = json.loads(man.read_text())
    except (OSError, ValueError) as e:
        warnings.warn(f"{man}: unreadable manifest ({e}); recomputing every chunk", stacklevel=4)
        return {}
    return old if isinstance(old, dict) else {}


# ----------------------------------------------------------------------------- running


@jax.jit
def _fold_keys(seed, idx):
    """Key data of ``fold_in(key(seed), i)`` for every run index i (SGD batches of run i)."""
    base = jax.random.key(seed)
    return jax.vmap(lambda i: jax.random.key_data(jax.random.fold_in(base, i)))(idx)


def _chunk_keys(seed: int, idx: np.ndarray):
    return _fold_keys(np.uint32(seed), np.asarray(idx, np.uint32))


def _run_chunk(plan: _Plan, c: int, *, params0, x, y, seed, cfg, obj, flattest) -> dict:
    """Compute chunk ``c`` (runs padded with the last one) and return its host arrays."""
    cs, R = plan.chunk_size, plan.etas.size
    idx = np.clip(np.arange(c * cs, (c + 1) * cs), 0, R - 1)
    parts = np.split(idx, plan.threads)
    run = functools.partial(_run_part, plan, params0=params0, x=x, y=y, seed=seed, cfg=cfg,
                            obj=obj, flattest=flattest)  # fmt: skip
    if plan.threads == 1:
        out = run(idx)
    else:
        with ThreadPoolExecutor(plan.threads) as pool:
            outs = list(pool.map(run, parts))
        out = jax.tree_util.tree_map(lambda *a: np.concatenate(a), *outs)
    params, log = out.pop("params"), out.pop("log")
    return _flat_arrays(params, log, out)


def _run_part(plan: _Plan, idx, *, params0, x, y, seed, cfg, obj, flattest) -> dict:
    run_sh = NamedSharding(plan.mesh, P("runs"))
    rep_sh = NamedSharding(plan.mesh, P())
    etas = jax.device_put(plan.etas[idx], run_sh)
    keys = jax.random.wrap_key_data(jax.device_put(_chunk_keys(seed, idx), run_sh))
    if plan.shared:
        p = jax.device_put(params0, rep_sh)
    else:
        p = jax.device_put(jax.tree_util.tree_map(lambda a: np.asarray(a)[idx], params0), run_sh)
    if plan.per_run_data:
        xs, ys = jax.device_put(x[idx], run_sh), jax.device_put(y[idx], run_sh)
    else:
        xs, ys = jax.device_put(x, rep_sh), jax.device_put(y, rep_sh)
    spec = _ChunkSpec(cfg, obj, flattest, plan.shared, plan.layout, plan.mesh, plan.per_run_data)
    out = _chunk(p, xs, ys, etas, keys, spec=spec)
    return jax.device_get(out)


def _gather(results: dict, plan: _Plan) -> dict:
    """Every chunk on every process (``process_allgather``); identity for one process."""
    nproc = jax.process_count()
    if nproc == 1:
        return results
    from jax.experimental import multihost_utils

    mine = plan.mine
    fields = sorted(results[mine[0]])
    local = {f: np.stack([results[c][f] for c in mine]) for f in fields}
    gathered = multihost_utils.process_allgather(local)  # (nproc, len(mine), cs, ...)
    return {
        j * nproc + q: {f: np.asarray(gathered[f][q, j]) for f in fields}
        for j in range(len(mine))
        for q in range(nproc)
    }


def _assemble(results: dict, plan: _Plan, params0, x, y) -> SweepResult:
    R = plan.etas.size
    cat = {f: np.concatenate([results[c][f] for c in range(plan.num_chunks)])[:R]
           for f in results[0]}  # fmt: skip
    like = params0 if plan.shared else jax.tree_util.tree_map(lambda a: a[0], params0)
    treedef = jax.tree_util.tree_structure(like)
    params = jax.tree_util.tree_unflatten(treedef, [cat[f"params_{k}"] for k in _leaf_names(like)])
    shallow_x = plan.config["model"] == "shallow" and x.shape[-1] == 1
    return SweepResult(
        etas=plan.etas,
        params=params,
        **{f: cat[f] for f in _ARRAY_FIELDS if f != "etas"},
        log=TrainLog(*(cat[f"log_{f}"] for f in TrainLog._fields)),
        x=np.asarray(x[..., 0] if shallow_x else x),
        y=np.asarray(y),
        config=plan.config,
    )


def sweep(
    params0,
    x: jax.Array,
    y: jax.Array,
    etas,
    *,
    model: Callable | None = None,
    loss: Callable | None = None,
    config: TrainConfig | None = None,
    batched: bool | None = None,
    seed: int = 0,
    chunk_size: int = 32,
    flattest: bool | None = None,
    out_dir=None,
    devices=None,
    layout: str = "auto",
    threads: int | None = None,
    diagnostics: bool = True,
    progress: bool = True,
    extra_config: dict | None = None,
    per_run_data: bool = False,
    **options,
) -> SweepResult:
    """Train one network per step size in a single compiled program (seed 004 Fig. 3).

    Parameters
    ----------
    params0 : initial parameters, shared by every run, or a batch with leading axis R (one
        initialization per run, e.g. several seeds; then ``len(etas) == R``).
    x, y : training data.
    etas : (R,) step sizes (positive). New values reuse the compiled program.
    model, loss : as in :func:`minstab.engine.train.train` (None: the shallow ReLU net on the
        quadratic loss; its closed-form gradient, Gram sharpness, Lemma 4 bound, curvature and
        flattest implementation are the fast path; with a model they are NaN, except the
        sharpness, which then comes from Lanczos on the exact Hessian).
    config, **options : a :class:`minstab.engine.config.TrainConfig` and/or its fields as keywords
        (``steps=...``, ``tol=...``, ``patience=...``, ``log_every=...``, ``optimizer=...``).
    batched : whether ``params0`` carries a leading runs axis (default: inferred from the
        shape of ``w1`` for the shallow net, False for a model).
    seed : SGD batches of run i use ``fold_in(key(seed), i)``.
    chunk_size : at most this many runs per compiled chunk (bounds memory), rounded up to a
        multiple of the device count; the runs are split into the fewest such chunks, of equal
        size (``result.config["chunk_size"]``).
    flattest : compute the flattest implementation's sharpness (default: for the shallow net on
        the quadratic loss; a ``ValueError`` otherwise). Errors are raised, never hidden.
    out_dir : if given, finished chunks are written to ``out_dir/chunks`` and reused on rerun.
    devices : devices of the ``"runs"`` mesh axis (default: this process's devices). On a CPU,
        JAX has one device unless told otherwise, and a program of small steps keeps one core
        busy: call :func:`minstab.use_cpu_cores` right after ``import jax`` to make every core a
        device (the ``minstab`` command line does), so each takes a share of the runs.
    layout : ``"batched"`` (the runs of a device in one vmapped program), ``"sequential"``
        (one loop per run, so a run that stops early costs nothing more) or ``"auto"``: on
        CPU by problem size, and for a model sequential if it convolves, batched otherwise
        (see :func:`_choose_layout`); batched on GPU/TPU.
    threads : at most this many host threads share each chunk, in equal parts (default 1;
        opt-in, see :func:`_choose_threads`: concurrent XLA:CPU executions have deadlocked
        under load); the chunking is unchanged.
    diagnostics : compute the end-of-run quantities (sharpness, bound, curvature, flattest);
        False leaves them NaN and times the training alone.
    progress : show a progress bar on stderr.
    extra_config : JSON-serializable entries stored in ``result.config``.
    per_run_data : ``x`` and ``y`` carry a leading axis of R runs (one data set per run, e.g.
        one toy set per seed); needs a batched ``params0``. The result's ``x``, ``y`` keep that
        axis: :meth:`SweepResult.select` cuts out the runs of one data set.

    Returns
    -------
    SweepResult
    """
    cfg = train_config(config, **options)
    seed, chunk_size, threads = _check_sweep_options(
        seed=seed,
        chunk_size=chunk_size,
        threads=threads,
        batched=batched,
        flattest=flattest,
        diagnostics=diagnostics,
        progress=progress,
        out_dir=out_dir,
        extra_config=extra_config,
        devices=devices,
    )
    obj = Objective.of(model, loss, cfg)
    flattest = _end_of_run(obj, flattest, diagnostics)
    if batched is None:
        batched = obj.shallow and np.ndim(params0.w1) == 3
    first = jax.tree_util.tree_map(lambda a: a[0], params0) if batched else params0
    num_inits = jax.tree_util.tree_leaves(params0)[0].shape[0] if batched else None
    if per_run_data:
        x, y, dtype = _check_per_run_data(obj, first, x, y, num_inits)
    else:
        x, y, dtype = obj.check(first, x, y)
    etas = _check_etas(etas, dtype, num_inits)
    check_run_size(cfg, x.shape[1] if per_run_data else x.shape[0], dtype, runs=etas.size)
    opts = _PlanOptions(not batched, seed, chunk_size, flattest, devices, layout, threads,
                        extra_config, bool(per_run_data))  # fmt: skip
    plan = _plan(obj, cfg, params0, x, y, etas, opts)
    store = ChunkStore(out_dir, plan.digest, {"num_chunks": plan.num_chunks,
                                              "chunk_size": plan.chunk_size,
                                              "config": plan.config})  # fmt: skip
    run = functools.partial(_run_chunk, plan, params0=jax.tree_util.tree_map(np.asarray, params0),
                            x=x, y=y, seed=seed, cfg=cfg, obj=obj, flattest=flattest)  # fmt: skip
    results, computed = _compute(plan, store, run, progress)
    res = _assemble(_gather(results, plan), plan, params0, x, y)
    return res._replace(computed=_runs_of_chunks(computed, plan))


def _check_per_run_data(obj: Objective, first, x, y, num_inits):
    """``x``, ``y`` with a leading runs axis: each run's data checked like shared data."""
    if num_inits is None:
        raise ValueError("per_run_data needs params0 with a leading runs axis (batched)")
    if np.shape(x)[:1] != (num_inits,) or np.shape(y)[:1] != (num_inits,):
        raise ValueError(
            f"per_run_data: x and y need a leading axis of {num_inits} runs, got shapes "
            f"{np.shape(x)} and {np.shape(y)}"
        )
    checked = [obj.check(first, x[i], y[i]) for i in range(num_inits)]
    xs = jnp.stack([c[0] for c in checked])
    ys = jnp.stack([c[1] for c in checked])
    return xs, ys, checked[0][2]


def _check_sweep_options(*, seed, chunk_size, threads, batched, flattest, diagnostics, progress,
                         out_dir, extra_config, devices):  # fmt: skip
    """Check the options of :func:`sweep` before anything is traced; (seed, chunk_size, threads)."""
    seed = check_int(seed, "seed", minimum=0, maximum=2**32 - 1)  # key(seed) is 32-bit
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    threads = check_int(threads, "threads", minimum=1, none=True)
    for name, v in (("batched", batched), ("flattest", flattest)):
        if v is not None:
            check_bool(v, name)
    check_bool(diagnostics, "diagnostics")
    check_bool(progress, "progress")
    if out_dir is not None:
        d = Path(out_dir)
        if d.exists() and not d.is_dir():
            raise ValueError(
                f"out_dir must be a directory, got {str(out_dir)!r} (an existing file)"
            )
        for parent in d.absolute().parents:
            if parent.exists():
                if not parent.is_dir():
                    raise ValueError(f"out_dir: {parent} is a file, not a directory")
                break
    if extra_config is not None:
        if not isinstance(extra_config, dict):
            raise ArgumentTypeError(
                f"extra_config must be a dict, got {type(extra_config).__name__}"
            )
        try:
            json.dumps(to_jsonable(extra_config))
        except (TypeError, ValueError) as e:
            raise ValueError(f"extra_config must be JSON-serializable ({e})") from None
    if devices is not None and (isinstance(devices, (str, bytes)) or not len(list(devices))):
        raise ValueError(f"devices must be a non-empty list of jax devices, got {devices!r}")
    return seed, chunk_size, threads


def _end_of_run(obj: Objective, flattest, diagnostics: bool):
    """The per-run kernel's ``flattest``: True/False, or None for no end-of-run quantity."""
    if flattest and not obj.closed_form:
        raise ValueError("flattest needs the shallow ReLU net on the quadratic loss (model=None)")
    if not diagnostics:
        return None
    return obj.closed_form if flattest is None else bool(flattest)


def _compute(plan: _Plan, store: ChunkStore, run: Callable, progress: bool):
    """Chunks of this process: loaded from the store when finished, else run and stored."""
    results, computed = {}, []
    with ProgressBar(len(plan.mine), "sweep", enabled=progress) as bar:
        for c in plan.mine:
            results[c] = store.load(c)
            if results[c] is not None:
                bar.update(1, "loaded")
                continue
            results[c] = run(c)
            store.save(c, results[c])
            computed.append(c)
            bar.update(1, f"chunk {c + 1}/{plan.num_chunks}")
    return results, computed  # computed: the chunks computed (not loaded) by this call


def _runs_of_chunks(chunks, plan: _Plan) -> np.ndarray:
    """(R,) bool: the runs of ``chunks`` (chunk c holds runs c cs .. (c+1) cs - 1, as assembled)."""
    mask = np.zeros(plan.etas.size, bool)
    for c in chunks:
        mask[c * plan.chunk_size : (c + 1) * plan.chunk_size] = True
    return mask
