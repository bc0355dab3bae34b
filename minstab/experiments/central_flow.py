"""Central flows (Cohen, Damian, Talwalkar, Kolter & Lee, ICLR 2025): does the flow predict GD?

Three settings, each run per seed with GD (its top-k Hessian eigenvalues every ``every`` steps,
LOBPCG warm-started along the run), the central flow (:func:`minstab.central_flow`) and gradient
flow (:func:`minstab.stable_flow`) from the same initialization:

(a) the authors' example (``examples/mlp.ipynb`` of github.com/alex-damian/central_flows_jax):
    n = 128, d = 8, x and y standard Gaussian, an MLP 8-16-16-1 with swish, loss
    mean((f - y)^2), eta = 0.1, 1 000 steps, k = 5, 4 substeps; and the same with tanh and GELU
    activations (the issue's "two other small models"). How it is drawn, in which dtype GD
    runs and where GD's eigenvalues are taken is the :class:`Protocol` (history below);
(b) the tanh MLP of ``reproduce eos`` on a Fashion-MNIST subset (784-h-h-10, quadratic loss);
(c) the shallow ReLU net of the main job (:func:`minstab.data.toy.toy_1d`,
    :func:`minstab.init_shallow`) at three step sizes: the flow's end point against GD's
    (sharpness, int |f''| g by :func:`minstab.weighted_curvature`).

Measures (fixed before any run; the issue's targets). GD's loss is smoothed by a Gaussian filter
of ``sigma`` steps (scipy ``gaussian_filter1d``, mode "nearest"). EoS begins at the first logged
step with eta lambda_1(GD) >= ``onset`` (1.9); the comparison window is
[onset step + 2 sigma, steps - 2 sigma): the first bound is the issue's, the second keeps the
window where the filter is two-sided (protocol choice of this module, made before looking; the
errors up to the last step are reported too). Relative error |predicted - smoothed| / smoothed.

Checks (must hold on every run): every SDCP solve converged, with |<X, S>| <= 1e-8 ||A|| and
eigenvalues of X and S >= -1e-8 (scaled); before the first substep with X != 0 the central flow
equals gradient flow (same integrator, relative loss difference <= 1e-8); eigen-residuals of
the tracked pairs <= 1e-2 |lambda_1|.

Protocol of (a) (:class:`Protocol`; ``Protocol()`` is the current one, ``PROTOCOL_V1`` the first).
The authors' notebook draws x, y, the weights and the start vectors U0 of the eigensolver from
one ``flax.nnx.Rngs(seed)`` stream (keys ``fold_in(key(seed), c)``: x c = 0, y 1, the three
kernels 2, 4, 6 (3, 5, 7 go to the zero biases), U0 8), weights by ``nnx.Linear``'s default
truncated LeCun normal (``jax.nn.initializers.lecun_normal``), all in JAX's default float32;
GD's eigenvalues every step at the midpoint (w_t + w_{t+1}) / 2 (``Flow.discrete(...,
midpoint=True)``), its loss at w_t; LOBPCG to relative tolerance 1e-5 with up to 100 iterations
for GD and both flows; the three runs from the same point and U0; gradient flow with
ceil(eta lambda_1 / 0.5) Euler substeps per step (at least 1). Two differences stay. Gradient
flow keeps at least 4 substeps (``sf_substeps``), the central flow's, so that the check
"before X != 0 the central flow is gradient flow" compares one integrator with itself. The flows stay in float64 (the
authors' run them in float32 and solve each SDCP in float64 with CVXOPT): the central flow
is a deterministic ODE, and float64 only removes rounding from its integration. In float32 our
interior-point SDCP solver stops at |<X, S>| = 6e-3 ||A|| and on seed 0 the flow's predicted
loss then wanders up to 50 % from the float64 flow's (measured once, 2026-12-07). GD runs in float32, where the
rounding seeds the oscillation along the top eigenvector (in float64 that seed is 1e-9 times
smaller, GD overshoots further past 2/eta and catapults). The authors' predicted loss is
L + tr X; ours is L + 1/2 sum_i mu_i X_ii (equal where the active mu_i = 2; the largest
difference is reported per run).

Protocol history.

* 2026-12-07, first protocol (``PROTOCOL_V1``): keys split from key(seed), weights
  N(0, 1/fan_in) untruncated, everything float64, GD's eigenvalues at w_t every 5 steps, the
  flows' LOBPCG to 1e-3 in at most 30 iterations (GD's to 1e-5), fixed start vectors. Result (4 seeds): the prediction met the bound on 2 of 12
  seeds; GD overshot to eta lambda_1 = 2.4-4.9 and catapulted in a sawtooth.
* 2026-12-07 (issue 34, later that day): match the authors' protocol, as read from their code
  (the list above, with its two stated differences), fixed from the code before any run. Then, before the judged run, seed 0
  (the authors' own draw) was run once by hand to see that it reproduces their figure: GD in
  float32 reaches eta lambda_1 = 1.9 at step 336, peaks at 2.53 and settles at the edge, as in
  their figure (in float64 from the same draw it peaks at 2.99; eigenvalues at the iterates in
  that probe, 2.46 and 2.78 at the midpoints); its errors against the central
  flow (swish, float64 flow, the old LOBPCG settings) were 1.2 % median / 1.5 % max (float32
  GD) and 3.2 % / 4.5 % (float64 GD). Nothing was changed after it. Seeds: the same numbers 0-3
  (new draws under the new key stream) and 4 new ones, 4-7; thresholds, window and measures
  unchanged. Result (8 seeds): the bound met on swish 8/8, GELU 6/8, tanh 2/8; GD peaks at
  eta lambda_1 = 2.17-2.99 at the midpoints and settles at the edge. GD rerun in float64 from
  the same draws (:func:`gd_dtype_ablation`): 7 of 24 (swish 4, tanh 1, GELU 2), peaks
  2.27-3.67.

Verdicts (per seed, per model): ``prediction``: median error <= 5 % and max <= 15 % in the
window; ``flow_at_edge``: the central flow's max eta lambda_1 <= 2.02 (seeds where it reaches
1.9); ``gradient_flow_leaves``: gradient flow's max eta lambda_1 in the window > 2.02 *and* its
max loss error > 15 %; ``toy_endpoint``: at every eta of (c) the flow's final sharpness and
int |f''| g are within 10 % of GD's (GD's sharpness: median of the last tenth of its log).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._cli_args import choice
from .base import option, seed_count, seed_tuple
from .outcomes import check, verdict

__all__ = [
    "Config",
    "Protocol",
    "PROTOCOL_V1",
    "RunRecord",
    "Result",
    "authors_problem",
    "authors_u0",
    "run",
    "outcomes",
    "checks",
    "verdicts",
    "table",
    "rows_table",
    "plot",
    "to_json",
    "smoothed",
    "window",
]

ACTIVATIONS = ("swish", "tanh", "gelu")


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How part (a) is drawn, run and measured (module docstring, "Protocol of (a)").

    Attributes
    ----------
    keys : "nnx": x, y, kernels and U0 from fold_in(key(seed), c), c = 0, 1, 2/4/6, 8, drawn in
        float32 (flax ``nnx.Rngs(seed)`` in the authors' notebook); "split": split(key(seed), 3)
        for x, y, weights, drawn in float64, fixed start vectors (the first protocol).
    init : "lecun_truncated" (``jax.nn.initializers.lecun_normal``, flax ``nnx.Linear``'s
        default) or "normal" (N(0, 1/fan_in)); biases are zero either way.
    gd_dtype, flow_dtype : dtype of GD's run and of both flows' runs (the drawn arrays are cast).
    gd_eig_at : "midpoint" or "iterate" (:func:`minstab.engine.central_flow.gd_trajectory`).
    every : GD's eigenvalues every ``every`` steps.
    eig_tol, eig_iters : LOBPCG's relative tolerance and iteration cap for GD and both flows
        (None: each function's default, 1e-3 / 30 for the flows and 1e-5 / 30 for GD).
    sf_substeps : gradient flow's minimum Euler substeps per step (it takes
        max(sf_substeps, ceil(eta lambda_1 / 0.5)); the authors' 1, here 4 as the central
        flow's, for the check that both are one integrator until X != 0).
    """

    keys: str = "nnx"
    init: str = "lecun_truncated"
    gd_dtype: str = "float32"
    flow_dtype: str = "float64"
    gd_eig_at: str = "midpoint"
    every: int = 1
    eig_tol: float | None = 1e-5
    eig_iters: int | None = 100
    sf_substeps: int = 4

    def __str__(self) -> str:
        """Its name in :data:`PROTOCOLS` (``authors``, ``v1``), else the full repr."""
        return next((k for k, v in PROTOCOLS.items() if v == self), repr(self))

    def __post_init__(self):
        choices = dict(keys=("nnx", "split"), init=("lecun_truncated", "normal"),
                       gd_dtype=("float32", "float64"), flow_dtype=("float32", "float64"),
                       gd_eig_at=("midpoint", "iterate"))  # fmt: skip
        for name, ok in choices.items():
            if getattr(self, name) not in ok:
                raise ValueError(f"{name} must be one of {ok}, got {getattr(self, name)!r}")


PROTOCOL_V1 = Protocol(keys="split", init="normal", gd_dtype="float64", flow_dtype="float64",
                       gd_eig_at="iterate", every=5, eig_tol=None, eig_iters=None,
                       sf_substeps=4)  # fmt: skip
PROTOCOLS = {"authors": Protocol(), "v1": PROTOCOL_V1}


@dataclasses.dataclass(frozen=True)
class Config:
    """Parts (a), (b), (c), their sizes and the issue's thresholds.

    ``seeds`` given as a count ``N`` (``--seeds N``) runs seeds 0..N-1 in (a) *and* (c); given as
    seeds it sets (a) only. ``fm_seeds`` as a count ``N``: seeds 0..N-1 of (b) (0 skips it).
    ``protocol``: a :class:`Protocol` or its name in :data:`PROTOCOLS`. ``parts`` leaves out the
    parts whose letter it lacks (their seeds or activations become empty).
    """

    seeds: tuple[int, ...] = option((0, 1, 2, 3, 4, 5, 6, 7),
                                    "the seeds of (a) and (c), given as their number N (0..N-1)")  # fmt: skip
    protocol: Protocol = option(Protocol(), "protocol of (a): 'authors' (the authors' code) or "
                                "'v1' (the first one)")  # fmt: skip
    activations: tuple[str, ...] = ACTIVATIONS
    n: int = 128
    d: int = 8
    width: int = 16
    eta: float = 0.1
    steps: int = option(1000, "GD steps of (a)")
    k: int = 5
    substeps: int = 4
    sigma: float = 50.0
    every: int = 5
    # (b) Fashion-MNIST tanh MLP
    fm_seeds: tuple[int, ...] = option(
        (0, 1), "the seeds of (b), given as their number N (0 skips it)"
    )
    fm_n: int = 256
    fm_hidden: int = 32
    fm_eta: float = 0.2
    fm_steps: int = 1000
    # (c) shallow ReLU net on toy_1d
    toy_seeds: tuple[int, ...] = (0, 1, 2, 3)
    toy_n: int = 20
    toy_width: int = 16
    toy_etas: tuple[float, ...] = (0.06, 0.09, 0.12)
    toy_steps: int = 10000
    toy_k: int = 3
    # thresholds (the issue's)
    onset: float = 1.9
    median_tol: float = 0.05
    max_tol: float = 0.15
    edge_tol: float = 0.02
    toy_tol: float = 0.10
    parts: str = option("abc", "which parts to run, letters of abc")

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        if isinstance(self.protocol, str):
            if self.protocol not in PROTOCOLS:
                raise ValueError(f"protocol: expected one of {sorted(PROTOCOLS)}, "
                                 f"got {self.protocol!r}")  # fmt: skip
            put("protocol", PROTOCOLS[self.protocol])
        if isinstance(self.seeds, int) and not isinstance(self.seeds, bool):
            put("toy_seeds", seed_tuple(self.seeds))  # a count: (a) and (c)
        for name in ("seeds", "fm_seeds", "toy_seeds"):
            put(name, seed_tuple(getattr(self, name)))
        for name in ("activations", "toy_etas"):
            put(name, tuple(getattr(self, name)))
        if not self.parts or set(self.parts) - set("abc"):
            raise ValueError(f"parts: expected letters of 'abc', got {self.parts!r}")
        for letter, name in (("a", "activations"), ("b", "fm_seeds"), ("c", "toy_seeds")):
            if letter not in self.parts:
                put(name, ())

    @classmethod
    def quick(cls, **kw) -> Config:
        """One seed, swish only, 300 steps (CI)."""
        base = dict(seeds=(0,), activations=("swish",), n=64, steps=300, sigma=20.0,
                    fm_seeds=(), toy_seeds=(0,), toy_etas=(0.12,), toy_steps=300)  # fmt: skip
        base.update(kw)
        return cls(**base)


NAME = "central_flow"
CONFIG_TYPES = {"seeds": seed_count(), "fm_seeds": seed_count(0),
                "protocol": choice(*PROTOCOLS)}  # fmt: skip


def progress_total(config: Config) -> int:
    """One tick per run of (a), (b) and (c)."""
    return (len(config.activations) * len(config.seeds) + len(config.fm_seeds)
            + len(config.toy_seeds) * len(config.toy_etas))  # fmt: skip


class RunRecord(NamedTuple):
    family: str  # "swish", "tanh", "gelu", "fmnist-tanh", "toy"
    seed: int
    eta: float
    gd_loss: np.ndarray  # (steps,)
    gd_eig_time: np.ndarray
    gd_eig: np.ndarray  # (L, k)
    cf: object  # FlowResult
    sf: object  # FlowResult
    extra: dict
    wall_s: dict


# --------------------------------------------------------------------------- models and data
def mlp_apply(activation: str):
    """f(x) = W3 act(W2 act(W1 x + b1) + b2) + b3 (one output column squeezed if single)."""
    import jax
    import jax.numpy as jnp

    act = {"swish": jax.nn.swish, "tanh": jnp.tanh, "gelu": jax.nn.gelu}[activation]

    def apply(params, x):
        for w, b in params[:-1]:
            x = act(x @ w + b[None, :])
        w, b = params[-1]
        out = x @ w + b[None, :]
        return out[:, 0] if out.shape[1] == 1 else out

    apply.__name__ = f"mlp_{activation}"
    return apply


_APPLY = {}


def _apply(activation):
    if activation not in _APPLY:  # one function object per activation (one compilation)
        _APPLY[activation] = mlp_apply(activation)
    return _APPLY[activation]


def mean_squared(pred, y):
    """The authors' loss mean((f - y)^2) (no 1/2)."""
    import jax.numpy as jnp

    return jnp.mean((pred - y) ** 2)


def _kernel(key, m, n, init, dtype):
    import jax

    if init == "lecun_truncated":  # truncated at 2 std, rescaled to variance 1/fan_in
        return jax.nn.initializers.lecun_normal()(key, (m, n), dtype)
    return jax.random.normal(key, (m, n), dtype) / np.sqrt(m)


def init_mlp(key, sizes, *, init="normal", dtype="float64", kernel_keys=None):
    """Kernels by ``init`` ("normal": N(0, 1/fan_in); "lecun_truncated"), zero biases.

    ``kernel_keys`` (one per layer) replaces ``split(key, layers)``.
    """
    import jax
    import jax.numpy as jnp

    keys = jax.random.split(key, len(sizes) - 1) if kernel_keys is None else kernel_keys
    return [
        (_kernel(k, m, n, init, dtype), jnp.zeros(n, dtype))
        for k, m, n in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def _draw(config: Config, seed: int):
    """(params, x, y, u0) as drawn under ``config.protocol`` (module docstring)."""
    import jax
    from jax.flatten_util import ravel_pytree

    proto, sizes = config.protocol, [config.d, config.width, config.width, 1]
    if proto.keys == "nnx":  # flax nnx.Rngs(seed): the c-th key is fold_in(key(seed), c)
        key = jax.random.key(seed)
        c = lambda i: jax.random.fold_in(key, i)  # noqa: E731
        x = jax.random.normal(c(0), (config.n, config.d), "float32")
        y = jax.random.normal(c(1), (config.n,), "float32")
        params = init_mlp(None, sizes, init=proto.init, dtype="float32",
                          kernel_keys=[c(2), c(4), c(6)])  # fmt: skip
        u0 = jax.random.normal(c(8), (ravel_pytree(params)[0].shape[0], config.k), "float32")
        return params, x, y, u0
    kx, ky, kp = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(kx, (config.n, config.d), "float64")
    y = jax.random.normal(ky, (config.n,), "float64")
    return init_mlp(kp, sizes, init=proto.init), x, y, None


def authors_problem(config: Config, seed: int, *, dtype: str = "float64"):
    """(params, x, y) of one seed of (a), drawn under ``config.protocol`` and cast to ``dtype``.

    With ``keys="nnx"`` the values are the authors' float32 draw (exactly representable in
    float64).
    """
    params, x, y, _ = _draw(config, seed)
    return _cast(params, dtype), x.astype(dtype), y.astype(dtype)


def authors_u0(config: Config, seed: int, *, dtype: str = "float64"):
    """The eigensolver's start vectors (P, k) of the seed (None: the functions' default)."""
    return _cast(_draw(config, seed)[3], dtype)


def _cast(tree, dtype):
    import jax

    return None if tree is None else jax.tree.map(lambda a: a.astype(dtype), tree)


# --------------------------------------------------------------------------- measures
def smoothed(loss, sigma):
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(np.asarray(loss, float), sigma, mode="nearest")


def onset_step(eig_time, eig, eta, level):
    hit = np.nonzero(eta * eig[:, 0] >= level)[0]
    return int(eig_time[hit[0]]) if hit.size else None


def window(onset, steps, sigma, *, trim_end=True):
    """Indices of the comparison window (empty if EoS never began)."""
    if onset is None:
        return np.arange(0)
    lo = int(np.ceil(onset + 2 * sigma))
    hi = int(steps - 2 * sigma) if trim_end else steps
    return np.arange(lo, max(lo, hi))


def _errors(pred, ref, idx):
    if idx.size == 0:
        return None, None
    e = np.abs(pred[idx] - ref[idx]) / np.abs(ref[idx])
    return float(np.median(e)), float(np.max(e))


def measures(rec: RunRecord, config: Config, sigma: float) -> dict:
    steps = rec.gd_loss.shape[0]
    sm = smoothed(rec.gd_loss, sigma)
    on = onset_step(rec.gd_eig_time, rec.gd_eig, rec.eta, config.onset)
    idx = window(on, steps, sigma)
    idx_end = window(on, steps, sigma, trim_end=False)
    med, mx = _errors(rec.cf.predicted_loss, sm, idx)
    med_end, mx_end = _errors(rec.cf.predicted_loss, sm, idx_end)
    gmed, gmx = _errors(rec.sf.loss, sm, idx)
    mu_cf = rec.eta * rec.cf.sharpness
    mu_sf = rec.eta * rec.sf.sharpness
    return {
        "family": rec.family,
        "seed": rec.seed,
        "eta": rec.eta,
        "onset_step": on,
        "window": [int(idx[0]), int(idx[-1]) + 1] if idx.size else None,
        "pred_err_median": med,
        "pred_err_max": mx,
        "pred_err_median_to_end": med_end,
        "pred_err_max_to_end": mx_end,
        "gf_err_median": gmed,
        "gf_err_max": gmx,
        "cf_mu1_max": float(np.max(mu_cf)),
        "cf_mu_k_max": float(np.max(rec.eta * rec.cf.eigenvalues[:, -1])),
        "sf_mu1_max_window": float(np.max(mu_sf[idx])) if idx.size else None,
        "gd_mu1_max": float(np.max(rec.eta * rec.gd_eig[:, 0])),
        "gd_final_loss": float(rec.gd_loss[-1]),
        "cf_final_loss": float(rec.cf.loss[-1]),
        "hvp_per_step": float(np.mean(rec.cf.hvp_count)),
        "third_per_step": float(np.mean(rec.cf.third_count)),
        "wall_s": rec.wall_s,
        "extra": rec.extra,
    }


# --------------------------------------------------------------------------- running
class Problem(NamedTuple):
    """A start point and what it is trained on (``model=None``: the shallow ReLU net)."""

    params: object
    x: object
    y: object
    model: object = None
    loss: object = None
    u0: object = None  # the eigensolver's start vectors (None: the functions' default)

    def at(self, dtype: str | None) -> dict:
        """params, x, y, u0 cast to ``dtype`` (None: as they are)."""
        if dtype is None:
            return dict(params=self.params, x=self.x, y=self.y, u0=self.u0)
        return dict(params=_cast(self.params, dtype), x=self.x.astype(dtype),
                    y=self.y.astype(dtype), u0=_cast(self.u0, dtype))  # fmt: skip


class Schedule(NamedTuple):
    """Step size, steps, tracked eigenpairs, flow substeps and GD's eigenvalue stride."""

    eta: float
    steps: int
    k: int
    substeps: int
    every: int


def _timed(wall: dict, name: str, fn, **kw):
    t = time.perf_counter()
    out = fn(**kw)
    wall[name] = time.perf_counter() - t
    return out


def _three(problem: Problem, sched: Schedule, protocol: Protocol | None = None):
    """GD, central flow and gradient flow from one point (``protocol``: dtypes and solvers)."""
    import minstab as ms
    from minstab.engine.central_flow import gd_trajectory

    kw = dict(eta=sched.eta, steps=sched.steps, model=problem.model, loss=problem.loss,
              k=sched.k)  # fmt: skip
    gd_kw, flow_kw = {"every": sched.every}, {}
    gd_dt = flow_dt = None
    sf_substeps = sched.substeps
    if protocol is not None:
        gd_dt, flow_dt = protocol.gd_dtype, protocol.flow_dtype
        gd_kw.update(every=protocol.every, eig_at=protocol.gd_eig_at)
        sf_substeps = protocol.sf_substeps
        for name in ("eig_tol", "eig_iters"):
            if getattr(protocol, name) is not None:
                flow_kw[name] = gd_kw[name] = getattr(protocol, name)
    wall = {}
    gd = _timed(wall, "gd", gd_trajectory, **problem.at(gd_dt), **gd_kw, **kw)
    cf = _timed(wall, "central_flow", ms.central_flow, **problem.at(flow_dt),
                substeps=sched.substeps, **flow_kw, **kw)  # fmt: skip
    sf = _timed(wall, "stable_flow", ms.stable_flow, **problem.at(flow_dt),
                substeps=sf_substeps, **flow_kw, **kw)  # fmt: skip
    return gd, cf, sf, wall


def run_authors(config: Config, activation: str, seed: int) -> RunRecord:
    params, x, y, u0 = _draw(config, seed)
    problem = Problem(params, x, y, _apply(activation), mean_squared, u0)
    sched = Schedule(config.eta, config.steps, config.k, config.substeps, config.every)
    gd, cf, sf, wall = _three(problem, sched, config.protocol)
    # the authors' predicted loss L + tr X against ours, L + 1/2 sum_i mu_i X_ii
    trace_pred = cf.loss + np.trace(cf.X, axis1=1, axis2=2)
    extra = {"pred_trace_vs_ours_max_rel": float(np.max(np.abs(trace_pred - cf.predicted_loss)
                                                        / cf.predicted_loss))}  # fmt: skip
    return RunRecord(activation, seed, config.eta, gd.loss, gd.eig_time, gd.eigenvalues, cf, sf,
                     extra, wall)  # fmt: skip


def run_fmnist(config: Config, seed: int) -> RunRecord:
    import jax

    from . import eos

    x, y = eos.load_data(eos.Config(n=config.fm_n, dtype="float64"))
    sizes = [x.shape[1], config.fm_hidden, config.fm_hidden, 10]
    params = init_mlp(jax.random.key(seed), sizes)
    sched = Schedule(config.fm_eta, config.fm_steps, config.k, config.substeps, config.every)
    gd, cf, sf, wall = _three(Problem(params, x, y, _apply("tanh")), sched)
    return RunRecord("fmnist-tanh", seed, config.fm_eta, gd.loss, gd.eig_time, gd.eigenvalues,
                     cf, sf, {}, wall)  # fmt: skip


def run_toy(config: Config, seed: int, eta: float) -> RunRecord:
    import jax

    import minstab as ms

    x, y = ms.data.toy_1d(n=config.toy_n, key=jax.random.key(seed), dtype="float64")
    params = ms.init_shallow(jax.random.key(seed + 1000), 1, config.toy_width, dtype="float64")
    sched = Schedule(eta, config.toy_steps, config.toy_k, config.substeps, config.every)
    gd, cf, sf, wall = _three(Problem(params, x, y), sched)
    tail = max(1, gd.eigenvalues.shape[0] // 10)
    extra = {
        "gd_sharpness_end": float(np.median(gd.eigenvalues[-tail:, 0])),
        "cf_sharpness_end": float(cf.sharpness[-1]),
        "sf_sharpness_end": float(sf.sharpness[-1]),
        "gd_curvature_end": float(ms.weighted_curvature(gd.params, x)),
        "cf_curvature_end": float(ms.weighted_curvature(cf.params, x)),
        "sf_curvature_end": float(ms.weighted_curvature(sf.params, x)),
        "edge": 2.0 / eta,
    }
    return RunRecord("toy", seed, eta, gd.loss, gd.eig_time, gd.eigenvalues, cf, sf, extra,
                     wall)  # fmt: skip


class Result(NamedTuple):
    """Every run, in the order (a), (c), (b)."""

    config: Config
    records: list  # RunRecord per run
    wall_s: float

    @property
    def rows(self) -> list[dict]:
        """:func:`measures` of every run (the JSON's ``runs``)."""
        return [measures(r, self.config, self.config.sigma) for r in self.records]


def _jobs(config: Config) -> list:
    """``(part, activation or eta, seed)`` of every run, in the order they run."""
    jobs = [("a", a, s) for a in config.activations for s in config.seeds]
    jobs += [("c", e, s) for s in config.toy_seeds for e in config.toy_etas]
    return jobs + [("b", None, s) for s in config.fm_seeds]


def _log(path, record: RunRecord, config: Config) -> None:
    """One line of measures per finished run (partial results)."""
    import json

    from .._io import to_jsonable

    with open(path, "a") as fh:
        fh.write(json.dumps(to_jsonable(measures(record, config, config.sigma))) + "\n")


def run(config: Config, *, out_dir=None, progress=None) -> Result:
    """Every run of the config; with ``out_dir``, a line per run in ``out_dir/runs.jsonl``."""
    import jax

    jax.config.update("jax_enable_x64", True)
    t0 = time.perf_counter()
    log_path = None
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        log_path = Path(out_dir) / "runs.jsonl"
    out = []
    for part, arg, seed in _jobs(config):
        if part == "a":
            r = run_authors(config, arg, seed)
        elif part == "b":
            r = run_fmnist(config, seed)
        else:
            r = run_toy(config, seed, arg)
        out.append(r)
        if log_path is not None:
            _log(log_path, r, config)
        if progress is not None:
            progress.update(1, f"{r.family} seed {r.seed} eta {r.eta:g}")
    return Result(config, out, time.perf_counter() - t0)


# --------------------------------------------------------------------------- outcomes
def _gradient_flow_check(records) -> object:
    """Before X first becomes non-zero the central flow is gradient flow (same integrator)."""
    diffs = []
    for r in records:
        active = np.nonzero(np.trace(r.cf.X, axis1=1, axis2=2) > 0)[0]
        stop = int(active[0]) if active.size else r.cf.loss.shape[0]
        if stop > 0:
            d = np.abs(r.cf.loss[:stop] - r.sf.loss[:stop]) / np.abs(r.sf.loss[:stop])
            diffs.append(float(np.max(d)))
    return check(
        all(d <= 1e-8 for d in diffs),
        f"max relative loss difference before X first becomes non-zero: "
        f"{max(diffs) if diffs else float('nan'):.1e}",
        covered=len(diffs),
        eligible=len(records),
        why_none="every run had an unstable direction at t = 0",
    )


def checks(result: Result) -> dict:
    """The SDCP conditions, the gradient-flow start and the eigen-residuals on every run."""
    records = result.records
    n = len(records)
    conv = [bool(np.all(r.cf.sdcp_converged)) for r in records]
    comp = max(float(np.max(r.cf.sdcp_complementarity)) for r in records)
    mine = min(float(np.min(r.cf.sdcp_min_eig)) for r in records)
    res = max(float(np.max(r.cf.eig_residual)) for r in records)
    return {
        "sdcp_conditions": check(
            all(conv) and comp <= 1e-8 and mine >= -1e-8,
            f"{sum(conv)}/{n} runs with every SDCP converged; max |<X,S>|/||A|| = {comp:.1e}, "
            f"min scaled eigenvalue of X, S = {mine:.1e}",
            covered=n,
        ),
        "no_unstable_direction_is_gradient_flow": _gradient_flow_check(records),
        "eigen_residuals": check(
            res <= 1e-2, f"max ||H u - lambda u|| / |lambda_1| = {res:.1e}", covered=n
        ),
    }


def _prediction_shown(r: dict, config: Config):
    if r["pred_err_median"] is None:
        return None
    return r["pred_err_median"] <= config.median_tol and r["pred_err_max"] <= config.max_tol


def _edge_shown(r: dict, config: Config):
    return None if r["cf_mu1_max"] < config.onset else r["cf_mu1_max"] <= 2 + config.edge_tol


def _leaves_shown(r: dict, config: Config):
    if r["gf_err_max"] is None:
        return None
    return r["sf_mu1_max_window"] > 2 + config.edge_tol and r["gf_err_max"] > config.max_tol


def _family_verdicts(fam: str, fr: list[dict], config: Config) -> dict:
    """The three verdicts of one model of (a) or (b), one row per seed."""
    c, m = config, min(2, len(fr))
    return {
        f"prediction[{fam}]": verdict(
            [dict(seed=r["seed"], shown=_prediction_shown(r, c), median=r["pred_err_median"],
                  max=r["pred_err_max"], onset=r["onset_step"]) for r in fr],
            statement="the central flow's predicted loss follows GD's smoothed loss at EoS",
            threshold=f"median rel. error <= {c.median_tol}, max <= {c.max_tol} over "
            "[onset + 2 sigma, steps - 2 sigma)", min_seeds=m,
        ),
        f"flow_at_edge[{fam}]": verdict(
            [dict(seed=r["seed"], shown=_edge_shown(r, c), cf_mu1_max=r["cf_mu1_max"])
             for r in fr],
            statement="the central flow's eta lambda_1 stays at or below 2",
            threshold=f"max eta lambda_1 <= {2 + c.edge_tol} (seeds where it reaches {c.onset})",
            min_seeds=m,
        ),
        f"gradient_flow_leaves[{fam}]": verdict(
            [dict(seed=r["seed"], shown=_leaves_shown(r, c), sf_mu1_max=r["sf_mu1_max_window"],
                  gf_err_max=r["gf_err_max"]) for r in fr],
            statement="gradient flow leaves both bounds (contrast)",
            threshold=f"max eta lambda_1 > {2 + c.edge_tol} and max loss error > {c.max_tol} in "
            "the window", min_seeds=m,
        ),
    }  # fmt: skip


def _toy_verdict(toy: list[RunRecord], config: Config):
    """(c): the flow's end point against GD's, per seed over every eta."""
    per_seed = []
    for s in sorted({r.seed for r in toy}):
        rs = [r for r in toy if r.seed == s]
        errs = [(abs(r.extra["cf_sharpness_end"] / r.extra["gd_sharpness_end"] - 1),
                 abs(r.extra["cf_curvature_end"] / r.extra["gd_curvature_end"] - 1))
                for r in rs]  # fmt: skip
        ok = all(np.isfinite(v).all() for v in errs)
        per_seed.append(dict(
            seed=s, shown=None if not ok else all(max(v) <= config.toy_tol for v in errs),
            sharpness_rel_err=[v[0] for v in errs], curvature_rel_err=[v[1] for v in errs],
            etas=[r.eta for r in rs]))  # fmt: skip
    return verdict(
        per_seed,
        statement="the central flow's end point has GD's sharpness and int |f''| g",
        threshold=f"relative difference <= {config.toy_tol} at every eta, both measures",
        min_seeds=min(2, len(per_seed)),
    )


def verdicts(result: Result) -> dict:
    """Per model of (a) and (b): prediction, flow at the edge, gradient flow leaves; (c)'s."""
    rows, c = result.rows, result.config
    out = {}
    for fam in sorted({r["family"] for r in rows if r["family"] != "toy"}, key=str):
        out.update(_family_verdicts(fam, [r for r in rows if r["family"] == fam], c))
    toy = [r for r in result.records if r.family == "toy"]
    if toy:
        out["toy_endpoint"] = _toy_verdict(toy, c)
    return out


def outcomes(result: Result) -> tuple[dict, dict]:
    """``(checks, verdicts)`` of the module docstring."""
    return checks(result), verdicts(result)


def config_from_json(d: dict) -> Config:
    """The :class:`Config` stored in a result JSON (lists back to tuples)."""
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    if isinstance(kw.get("protocol"), dict):
        kw["protocol"] = Protocol(**kw["protocol"])
    return Config(**kw)


def gd_dtype_ablation(stored: dict, *, dtype: str = "float64", progress=None) -> list[dict]:
    """GD of every stored run of (a) again in ``dtype``, against the stored central flow.

    Only GD is rerun (the flows do not depend on GD's dtype). The stored traces keep the flow's
    predicted loss every few steps (``traces``), so both GDs, the stored one and this one, are
    measured on those steps of their windows; the onset is each GD's own. One row per run.
    """
    from minstab.engine.central_flow import gd_trajectory

    config = config_from_json(stored["config"])
    proto = config.protocol
    eig_kw = {n: getattr(proto, n) for n in ("eig_tol", "eig_iters") if getattr(proto, n)}
    out = []
    for tr in stored["traces"]:
        if tr["family"] not in ACTIVATIONS:
            continue
        params, x, y = authors_problem(config, tr["seed"], dtype=dtype)
        g = gd_trajectory(params, x, y, eta=config.eta, steps=config.steps,
                          model=_apply(tr["family"]), loss=mean_squared, k=config.k,
                          every=proto.every, eig_at=proto.gd_eig_at,
                          u0=authors_u0(config, tr["seed"], dtype=dtype), **eig_kw)  # fmt: skip
        t = np.asarray(tr["t"])
        pred = np.asarray(tr["cf_predicted"], float)
        row = {"family": tr["family"], "seed": tr["seed"], "dtype": dtype}
        run_row = next(r for r in stored["runs"]
                       if r["family"] == tr["family"] and r["seed"] == tr["seed"])  # fmt: skip
        for name, sm, on, mu_max in (
            ("stored", np.asarray(tr["gd_smoothed"], float), run_row["onset_step"],
             run_row["gd_mu1_max"]),
            ("rerun", smoothed(g.loss, config.sigma)[t],
             onset_step(g.eig_time, g.eigenvalues, config.eta, config.onset),
             float(np.max(config.eta * g.eigenvalues[:, 0]))),
        ):  # fmt: skip
            w = window(on, config.steps, config.sigma)
            sel = np.isin(t, w)
            med, mx = _errors(pred[sel], sm[sel], np.arange(int(sel.sum())))
            row[name] = {"onset_step": on, "gd_mu1_max": mu_max, "pred_err_median": med,
                         "pred_err_max": mx}  # fmt: skip
        out.append(row)
        if progress is not None:
            progress.update(1, f"{tr['family']} seed {tr['seed']}")
    return out


def write_gd_dtype_ablation(out_dir, *, dtype: str = "float64") -> Path:
    """:func:`gd_dtype_ablation` of ``out_dir/central_flow.json`` to ``gd_dtype_ablation.json``.

    ``python -c "from minstab.experiments import central_flow as e;
    e.write_gd_dtype_ablation('notebooks/data/central_flow/authors')"``
    """
    import json

    import jax

    from .._io import write_json
    from ..progress import ProgressBar

    jax.config.update("jax_enable_x64", True)
    out_dir = Path(out_dir)
    stored = json.loads((out_dir / "central_flow.json").read_text())
    n = sum(tr["family"] in ACTIVATIONS for tr in stored["traces"])
    t = time.perf_counter()
    with ProgressBar(n, "gd-dtype-ablation") as bar:
        rows = gd_dtype_ablation(stored, dtype=dtype, progress=bar)
    path = out_dir / "gd_dtype_ablation.json"
    write_json(path, {"dtype": dtype, "wall_s": time.perf_counter() - t, "rows": rows})
    print(ablation_table(rows))
    return path


def ablation_table(rows) -> str:
    f = lambda v: "  -  " if v is None else f"{v:.3f}"  # noqa: E731
    lines = ["family  seed  | stored GD: onset  peak ηλ1  med    max   | rerun in DTYPE: onset  "
             "peak ηλ1  med    max"]  # fmt: skip
    for r in rows:
        a, b = r["stored"], r["rerun"]
        lines.append(f"{r['family']:<6} {r['seed']:>5}  | {str(a['onset_step']):>16}  "
                     f"{a['gd_mu1_max']:>8.3f}  {f(a['pred_err_median'])}  {f(a['pred_err_max'])} | "
                     f"{str(b['onset_step']):>21}  {b['gd_mu1_max']:>8.3f}  "
                     f"{f(b['pred_err_median'])}  {f(b['pred_err_max'])}")  # fmt: skip
    return "\n".join(lines).replace("DTYPE", rows[0]["dtype"] if rows else "")


# --------------------------------------------------------------------------- output
def traces(rec: RunRecord, config: Config, stride: int | None = None) -> dict:
    """Traces for the JSON, about 200 points each (``stride`` steps apart)."""
    steps = rec.gd_loss.shape[0]
    stride = max(5, steps // 200) if stride is None else stride
    sl = slice(None, None, stride)
    esl = slice(None, None, max(1, rec.gd_eig_time.shape[0] // 200))
    sm = smoothed(rec.gd_loss, config.sigma)
    return {
        "family": rec.family,
        "seed": rec.seed,
        "eta": rec.eta,
        "t": np.arange(rec.gd_loss.shape[0])[sl],
        "gd_loss": rec.gd_loss[sl],
        "gd_smoothed": sm[sl],
        "cf_loss": rec.cf.loss[sl],
        "cf_predicted": rec.cf.predicted_loss[sl],
        "sf_loss": rec.sf.loss[sl],
        "gd_eig_time": rec.gd_eig_time[esl],
        "gd_mu": (rec.eta * rec.gd_eig)[esl],
        "cf_mu": (rec.eta * rec.cf.eigenvalues)[sl],
        "sf_mu": (rec.eta * rec.sf.eigenvalues)[sl],
        "extra": rec.extra,
    }


def to_json(result: Result) -> dict:
    """Config, wall time, the measures of every run and its traces."""
    return {
        "config": dataclasses.asdict(result.config),
        "wall_s": result.wall_s,
        "runs": result.rows,
        "traces": [traces(r, result.config) for r in result.records],
    }


def _run_panels(ax, bx, r: RunRecord, config: Config, *, labels: bool) -> None:
    """One run's loss (GD, smoothed, predicted, gradient flow) over its eta lambda_i."""
    tr = traces(r, config, stride=1)
    ax.plot(tr["t"], tr["gd_loss"], color="0.75", lw=0.6, label="GD")
    ax.plot(tr["t"], tr["gd_smoothed"], color="k", lw=1.2,
            label=f"GD smoothed (σ={config.sigma:g})")  # fmt: skip
    ax.plot(tr["t"], tr["cf_predicted"], color="C3", lw=1.2, ls="--",
            label="central flow (predicted)")  # fmt: skip
    ax.plot(tr["t"], tr["sf_loss"], color="C0", lw=1, label="gradient flow")
    ax.set_yscale("log")
    ax.set_title(f"{r.family}, seed {r.seed}, η = {r.eta:g}", fontsize=9)
    bx.plot(tr["gd_eig_time"], tr["gd_mu"][:, 0], color="0.6", lw=0.7, label="GD ηλ₁")
    bx.plot(tr["t"], tr["cf_mu"][:, 0], color="C3", lw=1.2, label="central flow ηλ₁")
    bx.plot(tr["t"], tr["cf_mu"][:, 1:], color="C3", lw=0.5, alpha=0.6)
    bx.plot(tr["t"], tr["sf_mu"][:, 0], color="C0", lw=1, label="gradient flow ηλ₁")
    bx.axhline(2, color="k", ls=":", lw=0.8)
    bx.set_ylim(0, 4)
    bx.set_xlabel("step")
    if labels:
        ax.legend(fontsize=7)
        bx.legend(fontsize=7)
        ax.set_ylabel("training loss")
        bx.set_ylabel("effective eigenvalues ηλᵢ")


def _toy_panels(ax, bx, toy: list[RunRecord]) -> None:
    """(c): median end-point sharpness and int |f''| g of GD and both flows against eta."""
    etas = sorted({r.eta for r in toy})
    for key, m, lab in (("gd", "o", "GD"), ("cf", "x", "central flow"),
                        ("sf", "+", "gradient flow")):  # fmt: skip
        ax.plot(etas, [np.median([r.extra[f"{key}_sharpness_end"] for r in toy if r.eta == e])
                       for e in etas], marker=m, label=lab)  # fmt: skip
        bx.plot(etas, [np.median([r.extra[f"{key}_curvature_end"] for r in toy if r.eta == e])
                       for e in etas], marker=m, label=lab)  # fmt: skip
    ax.plot(etas, [2 / e for e in etas], "k:", lw=0.8, label="2/η")
    ax.set_title("shallow ReLU (toy_1d): end points, median over seeds", fontsize=9)
    ax.set_ylabel("sharpness")
    bx.set_ylabel("∫|f''| g")
    bx.set_xlabel("η")
    ax.legend(fontsize=7)


def plot(result: Result, out_dir) -> list[Path]:
    """Per model of (a)/(b) its first seed's loss and eta lambda_i; (c)'s end points."""
    import matplotlib.pyplot as plt

    from minstab import plotting

    records = result.records
    fams = [f for f in dict.fromkeys(r.family for r in records) if f != "toy"]
    toy = [r for r in records if r.family == "toy"]
    cols = max(len(fams) + (1 if toy else 0), 1)
    fig, axes = plt.subplots(2, cols, figsize=(4.2 * cols, 6.5), squeeze=False)
    for c, fam in enumerate(fams):
        r = next(r for r in records if r.family == fam)
        _run_panels(axes[0, c], axes[1, c], r, result.config, labels=c == 0)
    if toy:
        _toy_panels(axes[0, -1], axes[1, -1], toy)
    fig.tight_layout()
    return plotting.save(fig, out_dir, "central_flow")


def table(result: Result) -> str:
    """The wall time, one row of measures per run, and (c)'s end points."""
    lines = [f"wall {result.wall_s:.1f} s ({os.cpu_count()} CPUs visible)", rows_table(result.rows)]
    for r in result.records:
        if r.family == "toy":
            e = r.extra
            lines.append(
                f"toy seed {r.seed} eta {r.eta:g}: sharpness GD {e['gd_sharpness_end']:.3f} "
                f"CF {e['cf_sharpness_end']:.3f} GF {e['sf_sharpness_end']:.3f} (2/eta "
                f"{e['edge']:.3f}); int|f''|g GD {e['gd_curvature_end']:.4f} CF "
                f"{e['cf_curvature_end']:.4f} GF {e['sf_curvature_end']:.4f}"
            )
    return "\n".join(lines)


def rows_table(rows) -> str:
    """One line per run's measures (``rows``: :attr:`Result.rows` or the JSON's ``runs``)."""
    lines = [
        "family        seed  eta    onset  pred med  pred max  GF max  CF max ηλ1  GF max ηλ1  CF wall s"
    ]
    for r in rows:
        f = lambda v, p=3: "  -  " if v is None else f"{v:.{p}f}"  # noqa: E731
        lines.append(
            f"{r['family']:<13} {r['seed']:>4}  {r['eta']:<5g}  {str(r['onset_step']):>5}  "
            f"{f(r['pred_err_median']):>8}  {f(r['pred_err_max']):>8}  {f(r['gf_err_max']):>6}  "
            f"{r['cf_mu1_max']:>10.4f}  {f(r['sf_mu1_max_window']):>10}  "
            f"{r['wall_s']['central_flow']:>9.1f}"
        )
    return "\n".join(lines)
