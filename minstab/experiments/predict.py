"""minstab predict: the smoothest interpolant of a data set and the largest stable step size.

Theorem 1 (seed 004) gives ``int |f''| g <= 1/eta - 1/2`` for every stable, twice-differentiable
interpolating minimum; with ``W* = min over interpolants of int |f''| g`` no GD run with
``eta > eta_max = 1 / (W* + 1/2)`` can converge to one. This command computes W*, eta_max and the
optimal interpolant (see :func:`minstab.smoothest_interpolant`) for ``--data FILE`` or, without
it, for the embedded toy set of ``minstab sweep`` (same ``--n``, ``--noise``, ``--seed``), and
reports the optimal interpolant's sharpness, as built and in its flattest implementation.
With ``--sweep DIR`` (a seed's directory ``seed_<k>`` written by ``minstab sweep``) it also
checks every run of that sweep against the prediction.

Checks (a false one exits 1): on univariate data, Lemma 4's order on the optimal interpolant
(1 + 2 int|f''|g <= sharpness of its flattest implementation <= sharpness as built); with
``--sweep``, Theorem 1 on the sweep (no twice-differentiable converged run with eta > eta_max).
No verdicts: the command states no empirical claim.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._cli_args import LIMITS, UsageError, existing_dir, existing_file, nonnegative_float
from . import sweep_1d
from .base import option
from .outcomes import check

__all__ = [
    "Config",
    "Result",
    "NAME",
    "run",
    "outcomes",
    "table",
    "plot",
    "to_json",
    "predict_data",
    "summary_rows",
]

_MAIN = sweep_1d.Config()  # the main job's toy data: its n, noise and first seed
ORDER_RTOL = 1e-6  # slack of Lemma 4's order (the flattest implementation is found numerically)


@dataclasses.dataclass(frozen=True)
class Config:
    """What to predict on (a file or the main job's toy data) and the optimizer's sizes."""

    data: Path | None = option(None, "CSV/TSV/TXT (columns x_1..x_d, y) or .npz (x, y)",
                               type=existing_file, metavar="FILE")  # fmt: skip
    n: int = option(
        _MAIN.n, "toy data: points", type=sweep_1d.bounded_int(2, LIMITS["n"].maximum, "n")
    )
    noise: float = option(_MAIN.noise, "toy data: noise level", type=nonnegative_float)
    seed: int = option(_MAIN.seed, "toy data: seed")
    grid: int = option(8, "d = 1: candidate knots per gap")
    refine: int = option(6, "d = 1: grid doublings at most")
    directions: int = option(64, "d > 1: dictionary directions")
    sweep: Path | None = option(None, "results directory of a 'minstab sweep' seed (seed_<k>)",
                                type=existing_dir, metavar="DIR")  # fmt: skip

    def __post_init__(self):
        for name in ("data", "sweep"):  # a path given as text (Python, TOML)
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))

    @classmethod
    def quick(cls, **kw) -> Config:
        """Same sizes as the default (a prediction takes seconds)."""
        return cls(**kw)


NAME = "predict"


def progress_total(config: Config) -> int:
    """One tick: the prediction."""
    return 1


def preflight(config: Config) -> None:
    """Read ``--data`` and ``--sweep`` before anything is computed (``ValueError`` naming them)."""
    x = _file_x(config.data) if config.data is not None else None
    if config.sweep is not None:
        _load_sweep(config, x)


class Result(NamedTuple):
    """The prediction on the data and, with ``--sweep``, its check against the sweep's runs."""

    config: Config
    x: np.ndarray  # (n, d)
    y: np.ndarray  # (n,)
    prediction: object  # minstab.shallow.predict.Prediction
    numbers: dict  # predict_data(...) without the prediction
    sweep_check: dict | None  # minstab.check_against_sweep(...), with --sweep
    sweep_converged: np.ndarray | None  # (R,) which runs of the sweep converged


# ----------------------------------------------------------------------------- data
def _file_x(path) -> np.ndarray:
    """The inputs ``x`` of a data file; ``ValueError("data: ...")`` when the file is bad."""
    import minstab as ms

    try:
        return ms.data.load_xy(path)[0]
    except ValueError as e:  # load_xy names the file and what it expected
        raise ValueError(f"data: {e}") from None


def _load_sweep(config: Config, x=None):
    """The ``--sweep`` results (numpy only), checked to be of the data predicted on."""
    import minstab as ms

    d = config.sweep
    missing = [f for f in ("results.npz", "results.json") if not (d / f).is_file()]
    if missing:
        raise ValueError(f"sweep: expected a directory written by 'minstab sweep --out', but {d} "
                         f"has no {' or '.join(missing)}")  # fmt: skip
    s = ms.load_sweep(d)
    if config.data is None:  # the toy set is defined by (n, noise, seed): compare before drawing
        cfg = s.config
        differ = [k for k in ("n", "noise", "seed") if k in cfg and cfg[k] != getattr(config, k)]
        if differ:
            got = ", ".join(f"{k} = {cfg[k]}" for k in differ)
            raise ValueError(f"sweep: {d} was run on other toy data ({got}); pass the same "
                             + " ".join(f"--{k}" for k in differ))  # fmt: skip
    if x is not None and not _same_data(s, x):
        raise ValueError(f"sweep: the data of {d} differ from the data predicted on")
    return s


def _same_data(s, x) -> bool:
    sx = np.asarray(s.x)
    return sx.size == x.size and np.allclose(sx.reshape(x.shape), x)


def _load(config: Config):
    """The data as float64 numpy arrays: the file, or the main job's toy set."""
    import jax

    import minstab as ms

    if config.data is not None:
        return ms.data.load_xy(config.data)
    x, y = ms.data.toy_1d(n=config.n, key=jax.random.key(config.seed), noise=config.noise)
    return np.asarray(x, np.float64)[:, None], np.asarray(y, np.float64)


# ----------------------------------------------------------------------------- running
def predict_data(x, y, *, grid=8, refine=6, directions=64) -> dict:
    """W*, eta_max and the optimal interpolant's sharpness (as built and flattest), as a dict."""
    import jax.numpy as jnp

    import minstab as ms

    pred = ms.smoothest_interpolant(x, y, grid=grid, refine=refine, num_directions=directions)
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    flat = ms.flattest_implementation(pred.params, xj, yj)
    return {
        "prediction": pred,
        "n": int(x.shape[0]),
        "d": int(x.shape[1]),
        "w_star": pred.w_star,
        "eta_max": pred.eta_max,
        "is_upper_bound": pred.is_upper_bound,
        "refinement_error": pred.refinement_error,
        "interpolation_error": pred.interpolation_error,
        "params_curvature": pred.params_curvature,
        "num_knots": int(len(pred.knots)),
        "sharpness_as_built": float(ms.sharpness(pred.params, xj, yj)),
        "sharpness_flattest": float(flat.sharpness),
        "flattest_gap": float(flat.gap),
        "lemma4_bound": 1 + 2 * pred.params_curvature,
    }


def run(config: Config, *, out_dir=None, progress=None) -> Result:
    """W* and eta_max of the data; with ``--sweep``, every run of the sweep checked against them."""
    import minstab as ms

    s = _load_sweep(config) if config.sweep is not None else None
    x, y = _load(config)
    if s is not None and not _same_data(s, x):  # toy data drawn otherwise than the sweep's
        raise UsageError(f"--sweep: the data of {config.sweep} differ from the data predicted on")
    r = predict_data(x, y, grid=config.grid, refine=config.refine, directions=config.directions)
    pred = r.pop("prediction")
    if progress is not None:
        progress.update(1)
    if s is None:
        return Result(config, x, y, pred, r, None, None)
    return Result(config, x, y, pred, r, ms.check_against_sweep(pred, s), np.asarray(s.converged))


# ----------------------------------------------------------------------------- outcomes
def outcomes(result: Result) -> tuple[dict, dict]:
    """Lemma 4's order on the optimal interpolant (d = 1) and Theorem 1 on ``--sweep``'s runs."""
    r, checks = result.numbers, {}
    if r["d"] == 1:
        ok = (r["lemma4_bound"] <= r["sharpness_flattest"] * (1 + ORDER_RTOL)
              and r["sharpness_flattest"] <= r["sharpness_as_built"] * (1 + ORDER_RTOL))  # fmt: skip
        checks["lemma4_order"] = check(
            ok, f"1 + 2 int|f''|g = {r['lemma4_bound']:.6g} <= flattest {r['sharpness_flattest']:.6g}"
            f" <= as built {r['sharpness_as_built']:.6g} on the optimal interpolant",
            covered=1, eligible=1,
        )  # fmt: skip
    if result.sweep_check is not None:
        checks["theorem1_sweep"] = _sweep_check(result.sweep_check, result.sweep_converged)
    return checks, {}


def _sweep_check(c: dict, converged: np.ndarray):
    """No twice-differentiable converged run of the sweep beyond eta_max (Theorem 1)."""
    eligible = converged & np.asarray(c["twice_differentiable"], bool)
    ne, bad = int(eligible.sum()), int(np.sum(~np.asarray(c["agrees"], bool)))
    why = ("no converged run of the sweep is twice differentiable (every one has a knot on a "
           "data point)" if converged.any() else f"no run of the sweep converged (of {converged.size})")  # fmt: skip
    return check(
        c["all_agree"], f"{bad} of {ne} twice-differentiable converged runs of the sweep beyond "
        f"eta_max = {c['eta_max']:.6g}", covered=ne, eligible=ne, why_none=why,
    )  # fmt: skip


# ----------------------------------------------------------------------------- reporting
def summary_rows(r: dict) -> list[tuple[str, str]]:
    """Label/value rows of the printed summary."""
    w = "W* (upper bound: hyperplane dictionary)" if r["is_upper_bound"] else "W* = min int |f''| g"
    return [
        ("data", f"n = {r['n']}, d = {r['d']}"),
        (w, f"{r['w_star']:.6g}"),
        ("eta_max = 1 / (W* + 1/2)", f"{r['eta_max']:.6g}"),
        ("refinement error of W*", f"{r['refinement_error']:.2g}"),
        ("optimal interpolant: knots", f"{r['num_knots']}"),
        ("  max |f(x_j) - y_j|", f"{r['interpolation_error']:.2g}"),
        ("  its weighted curvature", f"{r['params_curvature']:.6g}"),
        ("  sharpness as built", f"{r['sharpness_as_built']:.6g}"),
        ("  sharpness, flattest implementation", f"{r['sharpness_flattest']:.6g}"),
        ("  Lemma 4 bound 1 + 2 W = 2 / eta_max", f"{r['lemma4_bound']:.6g}"),
        ("  stable for GD up to eta = 2 / flattest", f"{2 / r['sharpness_flattest']:.6g}"),
    ]


def table(result: Result) -> str:
    """The summary rows and, with ``--sweep``, the sweep's largest converged eta."""
    rows = summary_rows(result.numbers)
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    c = result.sweep_check
    if c is not None:
        lines.append(
            f"\nsweep {result.config.sweep}: largest converged eta {c['largest_converged_eta']}, "
            f"eta_max {c['eta_max']:.6g}; every run agrees with the prediction: {c['all_agree']}"
        )
    return "\n".join(lines)


def to_json(result: Result) -> dict:
    """``predict.json``: the numbers of :func:`predict_data`, the knots and coefficients of the
    optimal interpolant and, with ``--sweep``, the sweep check."""
    out = dict(result.numbers)
    out["knots"] = np.asarray(result.prediction.knots).tolist()
    out["coefficients"] = np.asarray(result.prediction.coefficients).tolist()
    if result.sweep_check is not None:
        out["sweep_check"] = result.sweep_check
    return out


def plot(result: Result, out_dir) -> list[Path]:
    """The smoothest interpolant, the data, its knots and the weight g (d = 1 only)."""
    if result.x.shape[1] != 1:
        return []
    import jax.numpy as jnp
    import matplotlib.pyplot as plt

    import minstab as ms
    from minstab import plotting

    x, y, pred = result.x[:, 0], result.y, result.prediction
    pad = 0.15 * (x.max() - x.min())
    t = np.linspace(x.min() - pad, x.max() + pad, 800)
    f = np.asarray(ms.forward(pred.params, jnp.asarray(t)))
    g = np.asarray(ms.weight_1d(jnp.asarray(t), jnp.asarray(x)))
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(t, f, "C0", label="smoothest interpolant")
    ax.plot(x, y, "ko", ms=4, label="data")
    for k, c in zip(pred.knots, pred.coefficients, strict=True):
        ax.axvline(k, color="C3", lw=0.8 + 2 * abs(c) / np.abs(pred.coefficients).max(), alpha=0.4)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax2 = ax.twinx()
    ax2.plot(t, g, "C2--", lw=1, label="g (eqs. 22-23)")
    ax2.set_ylabel("g")
    ax.set_title(f"W* = {pred.w_star:.4g},  eta_max = {pred.eta_max:.4g}  (red: knots)")
    fig.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return plotting.save(fig, out_dir, "smoothest_interpolant")
