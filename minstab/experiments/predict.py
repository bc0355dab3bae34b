"""minstab predict: the smoothest interpolant of a data set and the largest stable step size.

Theorem 1 (seed 004) gives ``int |f''| g <= 1/eta - 1/2`` for every stable, twice-differentiable
interpolating minimum; with ``W* = min over interpolants of int |f''| g`` no GD run with
``eta > eta_max = 1 / (W* + 1/2)`` can converge to one. This command computes W*, eta_max and the
optimal interpolant (see :func:`minstab.smoothest_interpolant`) for ``--data FILE`` or, without
it, for the embedded toy set of ``minstab sweep`` (same ``--n``, ``--noise``, ``--seed``), and
reports the optimal interpolant's sharpness, as built and in its flattest implementation.
With ``--sweep DIR`` (a directory written by ``minstab sweep``) it also checks every run of that
sweep against the prediction.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["add_arguments", "main", "predict_data", "summary_rows"]


def add_arguments(parser) -> None:
    from minstab._cli_args import (
        existing_dir,
        existing_file,
        int_at_least,
        nonnegative_float,
        nonnegative_int,
        output_dir,
        positive_int,
    )

    from .sweep_1d import Config

    c = Config()
    a = parser.add_argument
    a("--data", type=existing_file, default=None, metavar="FILE",
      help="CSV/TSV/TXT (columns x_1..x_d, y) or .npz (x, y)")  # fmt: skip
    a("--n", type=int_at_least(2), default=c.n, help=f"toy data: points (default {c.n})")
    a("--noise", type=nonnegative_float, default=c.noise, help="toy data: noise level")
    a("--seed", type=nonnegative_int, default=c.seed, help="toy data: seed")
    a("--grid", type=positive_int, default=8, help="d = 1: candidate knots per gap")
    a("--refine", type=nonnegative_int, default=6, help="d = 1: grid doublings at most")
    a("--directions", type=positive_int, default=64, help="d > 1: dictionary directions")
    a("--sweep", type=existing_dir, default=None, metavar="DIR",
      help="results directory of a 'minstab sweep'")  # fmt: skip
    a("--out", type=output_dir, default="minstab-out/predict", help="output directory")
    parser.set_defaults(dtype="float64")


def _load(args):
    """The data as float64 numpy arrays; a bad ``--data`` file is a ``UsageError``."""
    import jax

    import minstab as ms
    from minstab._cli_args import UsageError

    if args.data:
        try:
            return ms.data.load_xy(args.data)
        except ValueError as e:  # load_xy names the file and what it expected
            raise UsageError(f"--data: {e}") from None
    x, y = ms.data.toy_1d(n=args.n, key=jax.random.key(args.seed), noise=args.noise)
    return np.asarray(x, np.float64)[:, None], np.asarray(y, np.float64)


def _load_sweep(args):
    """The ``--sweep`` results, read (numpy only) before anything is computed."""
    import minstab as ms
    from minstab._cli_args import UsageError

    d = Path(args.sweep)
    missing = [f for f in ("results.npz", "results.json") if not (d / f).is_file()]
    if missing:
        raise UsageError(
            f"--sweep: expected a directory written by 'minstab sweep --out', but {d} has no "
            f"{' or '.join(missing)}"
        )
    s = ms.load_sweep(d)
    if not args.data:  # the toy set is defined by (n, noise, seed): compare before drawing it
        cfg = s.config
        differ = [k for k in ("n", "noise", "seed") if k in cfg and cfg[k] != getattr(args, k)]
        if differ:
            got = ", ".join(f"{k} = {cfg[k]}" for k in differ)
            raise UsageError(
                f"--sweep: {d} was run on other toy data ({got}); pass the same "
                + " ".join(f"--{k}" for k in differ)
            )
    return s


def _check_sweep_data(args, s, x) -> None:
    from minstab._cli_args import UsageError

    sx = np.asarray(s.x)
    if sx.size != x.size or not np.allclose(sx.reshape(x.shape), x):
        raise UsageError(f"--sweep: the data of {args.sweep} differ from the data predicted on")


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


def _plot(x, y, pred, out: Path) -> list[Path]:
    import jax.numpy as jnp
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import minstab as ms

    xs = x[:, 0]
    lo, hi = xs.min(), xs.max()
    pad = 0.15 * (hi - lo)
    t = np.linspace(lo - pad, hi + pad, 800)
    f = np.asarray(ms.forward(pred.params, jnp.asarray(t)))
    g = np.asarray(ms.weight_1d(jnp.asarray(t), jnp.asarray(xs)))
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(t, f, "C0", label="smoothest interpolant")
    ax.plot(xs, y, "ko", ms=4, label="data")
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
    out.mkdir(parents=True, exist_ok=True)
    from minstab import plotting

    return plotting.save(fig, out, "smoothest_interpolant")


def main(args) -> int:
    import minstab as ms

    s = _load_sweep(args) if args.sweep else None
    x, y = _load(args)
    if s is not None:
        _check_sweep_data(args, s, x)
    r = predict_data(x, y, grid=args.grid, refine=args.refine, directions=args.directions)
    pred = r.pop("prediction")
    width = max(len(k) for k, _ in summary_rows(r))
    print("\n".join(f"{k:<{width}}  {v}" for k, v in summary_rows(r)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    r["knots"] = np.asarray(pred.knots).tolist()
    r["coefficients"] = np.asarray(pred.coefficients).tolist()
    paths = _plot(x, y, pred, out) if x.shape[1] == 1 else []
    if s is not None:
        check = ms.check_against_sweep(pred, s)
        r["sweep_check"] = check
        print(
            f"\nsweep {args.sweep}: largest converged eta {check['largest_converged_eta']}, "
            f"eta_max {check['eta_max']:.6g}; every run agrees with the prediction: "
            f"{check['all_agree']}"
        )
    (out / "predict.json").write_text(json.dumps(r, indent=1))
    print("\nwrote " + ", ".join(str(p) for p in [*paths, out / "predict.json"]))
    return 0
