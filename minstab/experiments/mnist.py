"""Seed 000 on image data: the multivariate stability bound against GD's solutions, across step sizes.

Protocol. Two classes of (Fashion-)MNIST or scikit-learn's 8x8 digits, reduced to d dimensions,
targets +-1, quadratic loss. Per seed (the seed draws the images of each class and the
initialization), every run starts from one shared random initialization (the paper's protocol:
all initialized at the same point; no warm start, which would pin every small step size to the
warm-start minimum) and GD runs with each step size eta in one vmapped sweep
(:func:`minstab.engine.sweep.sweep`). ``seeds`` seeds (4 by default, in ``--quick`` too) are run one
after the other. For every converged run:

* the sharpness lambda_max reached at GD's final parameters;
* whether it sits on a kink: the next two GD steps switch the activation of some (point,
  neuron) pair. Then the loss is not twice differentiable at the minimum GD approaches, the
  printed sharpness is one mode's (seed 004 Lemmas 2-3), and the mode interval
  [lambda_lower, lambda_upper] with Lemma 2's delta is computed
  (:func:`minstab.shallow.modes.mode_interval`), counting as "on the kink" every pair at least as close
  to its kink (relative |z|) as the farthest pair that switched;
* the flattest implementation of the same function (:func:`minstab.flattest_implementation`,
  with its dual certificate);
* the weighted Radon-domain norm of the solution, R_g(f) = sum over hyperplanes |a| g(v, b)
  (THEORY §4; the "weighted L1 norm of the Laplacian" of seed 000, which in d > 1 is a measure on
  hyperplanes, not an L1 function), its Lemma 4 bound 1 + 2 R_g(f) <= lambda_max(flattest), and
  the budget of Theorem 1, R_g(f) <= 1/eta - 1/2;
* tightness: bound / sharpness and bound / flattest.

Checks (must hold on every eligible run; a false one exits 1): Lemma 1, lambda_max <= 2/eta, on
converged runs at twice-differentiable minima; Lemma 2's necessary condition
lambda_lower <= 2/eta + delta on every converged run on a kink; Lemma 4's order
bound <= flattest <= sharpness and the flattest certificate on every converged run; Theorem 1's
budget on every converged run. A run counts as converged when its loss stayed below ``tol`` for
``patience`` steps (10^4 in the full run, as in seed 004 Fig. 3), which resolves a curvature past
2/eta by a relative ln(100) / (4 patience): Lemmas 1 and 2 are checked with that slack.

Verdict ``norm_decreases_with_step_size`` (seed 000's abstract: "the bound accurately captures
the behaviour of the solutions as a function of the step size"), per seed, where the bound can
act: over the converged runs at the edge of stability (sharpness >= (1 - 0.05) 2/eta, the band of
seed 004 Fig. 3), R_g(f) decreases with eta: Kendall's tau < 0 at one-sided exact p <= 0.05. A
seed with fewer than four such runs is not judged (an exact one-sided p <= 0.05 needs four: 1/4!).
Below the edge the budget 1/eta - 1/2 does not constrain the solution and nothing is claimed.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .base import option, resume_seeds, stored_key
from .outcomes import Check, verdict
from .outcomes import check as make_check

NORM = "R_g(f)"  # the weighted Radon-domain norm sum |a| g(v, b)
NORM_TEX = r"$R_g(f)=\sum_i |a_i|\,g(v_i,b_i)$"
EOS_BAND = 0.05  # edge of stability: sharpness >= (1 - EOS_BAND) * 2/eta (seed 004 Fig. 3)
MIN_EDGE_RUNS = 4  # an exact one-sided Kendall p <= 0.05 needs at least 4 runs (1/4! = 0.042)
KINK_STEPS = 2  # GD steps from the final point that may switch an activation: "on a kink"


def _class_pair(value) -> tuple[int, int]:
    """Two class labels 0-9, ``A,B`` (a comma string or a TOML list)."""
    import argparse

    from .._cli_args import float_list, int_in_range

    pair = float_list(int_in_range(0, 9, "a class label 0-9"))(value)
    if len(pair) != 2:
        raise argparse.ArgumentTypeError(f"expected two class labels A,B, got {value!r}")
    return pair


@dataclasses.dataclass(frozen=True)
class Config:
    """Data, network, step sizes, stopping rule and seeds (module docstring)."""

    dataset: str = option(
        "fashion-mnist", "fashion-mnist (apt-get install dataset-fashion-mnist), mnist "
        "(MINSTAB_MNIST_DIR), digits (scikit-learn) or a directory of MNIST-format IDX files",
    )  # fmt: skip
    classes: tuple[int, int] = option((0, 1), "the two classes A,B", type=_class_pair)
    n_per_class: int = option(50, "samples per class")
    dim: int = option(20, "input dimension after PCA/downsampling")
    reduce: str = option("pca", "how to reduce the images", choices=("pca", "downsample"))
    width: int = option(128, "hidden neurons")
    etas: tuple[float, ...] = option((0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
                                     "step sizes, comma-separated")  # fmt: skip
    steps: int = option(40000, "GD steps per step size")
    tol: float = 1e-6
    patience: int = 10000  # steps the loss must stay below tol: a minimum, not a pass-through
    seed: int = option(0, "the first seed")
    seeds: int = option(4, "number of seeds: each draws its images and initialization")
    dtype: str = option("float64", "floating precision", choices=("float64", "float32"))

    def __post_init__(self):
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "etas", tuple(self.etas))
        if len(set(self.classes)) != 2 or not all(0 <= c <= 9 for c in self.classes):
            raise ValueError(f"classes: expected two different classes 0-9, got {self.classes}")
        for field, limit, why in _size_limits(self):
            if getattr(self, field) > limit:
                raise ValueError(f"{field}: expected at most {limit} ({why}), "
                                 f"got {getattr(self, field)}")  # fmt: skip
        if self.steps <= self.patience:
            raise ValueError(f"steps: expected more than the patience window ({self.patience} "
                             f"steps), got {self.steps}")  # fmt: skip

    @classmethod
    def quick(cls, **kw) -> Config:
        """Small sizes (seconds per seed), 4 seeds."""
        base = dict(n_per_class=15, dim=8, width=32, etas=(0.45, 0.5, 0.6, 0.7), steps=8000,
                    tol=1e-5, patience=200)  # fmt: skip
        base.update(kw)
        return cls(**base)

    @property
    def slack(self) -> float:
        """Relative resolution of the convergence test for a curvature past 2/eta.

        Past 2/eta by a relative delta, the top mode grows like (1 + 2 delta)^t, its loss like
        exp(4 delta t): a growth below 100x over the patience window can go unseen, so the test
        resolves delta down to ln(100) / (4 patience).
        """
        return float(np.log(100.0) / (4 * self.patience))


def _size_limits(config: Config) -> list[tuple[str, int, str]]:
    """(field, largest value, why) of the sizes the data allow: images per class, dimension."""
    rows = []
    if config.reduce == "pca":
        rows.append(("dim", 2 * config.n_per_class, "2 x n_per_class principal components"))
    if config.dataset == "digits":
        return rows + [("n_per_class", 170, "the digits data set has about 175 images a class"),
                       ("dim", 64, "the 8x8 digits")]  # fmt: skip
    return rows + [("n_per_class", 5421, "the smallest MNIST class"),
                   ("dim", 784, "28 x 28 images")]  # fmt: skip


NAME = "mnist"


def progress_total(config: Config) -> int:
    """One tick per seed."""
    return config.seeds


def preflight(config: Config) -> None:
    """The data set is there (and scikit-learn for ``digits``): ``ValueError("dataset: ...")``."""
    from ..data import images as images

    name = config.dataset
    if name == "digits":
        try:
            import sklearn  # noqa: F401
        except ImportError:
            raise ValueError('dataset: digits needs scikit-learn; install the extra: '
                             'pip install "minstab[data]"') from None  # fmt: skip
        return
    try:
        d = images.find_dataset(name)
        for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
            images.find_idx_file(d, stem)
    except FileNotFoundError as e:
        raise ValueError(f"dataset: {name}: {str(e).split(': ', 1)[-1]}") from None


class SeedResult(NamedTuple):
    """Every step size of one seed."""

    seed: int
    etas: np.ndarray
    sharpness: np.ndarray
    flattest: np.ndarray  # NaN only for runs that did not converge (not computed)
    flattest_gap: np.ndarray  # dual certificate: flattest - certified lower bound
    bound: np.ndarray  # Lemma 4: 1 + 2 R_g(f)
    norm: np.ndarray  # R_g(f)
    converged: np.ndarray
    crossing: np.ndarray  # converged runs whose next GD steps switch an activation (on a kink)
    lambda_lower: np.ndarray  # Lemma 2's min_m q^T H_m q on kinked runs (NaN elsewhere)
    lambda_upper: np.ndarray  # Lemma 3's max_m lambda_max(H_m) (a lower estimate if not exhaustive)
    mode_delta: np.ndarray  # Lemma 2's delta
    num_toggling: np.ndarray  # (point, neuron) pairs counted on the kink (-1: not on a kink)
    exhaustive: np.ndarray  # every mode evaluated (the interval is exact)
    diverged: np.ndarray
    status: list
    loss: np.ndarray
    x_shape: tuple[int, int]

    @property
    def budget(self) -> np.ndarray:
        """Theorem 1: a stable solution has R_g(f) <= 1/eta - 1/2."""
        return 1.0 / self.etas - 0.5

    @property
    def at_edge(self) -> np.ndarray:
        """Converged runs at the edge of stability, where Lemma 1 binds."""
        return self.converged & (self.sharpness >= (1 - EOS_BAND) * 2 / self.etas)

    @property
    def smooth(self) -> np.ndarray:
        """Converged runs at a twice-differentiable minimum (no activation switches)."""
        return self.converged & ~self.crossing

    @property
    def kinked(self) -> np.ndarray:
        """Converged runs on a kink."""
        return self.converged & self.crossing

    @property
    def tightness(self) -> np.ndarray:
        """Lemma 4 bound / sharpness reached (<= 1; 1 = tight). NaN if not converged."""
        return np.where(self.converged, self.bound / self.sharpness, np.nan)

    @property
    def tightness_flattest(self) -> np.ndarray:
        """Lemma 4 bound / flattest sharpness (<= 1). NaN if not converged."""
        return np.where(self.converged, self.bound / self.flattest, np.nan)


class Result(NamedTuple):
    seeds: list  # SeedResult per seed
    wall_s: float
    config: Config


def load_data(config: Config, seed: int | None = None):
    """The :class:`minstab.data.images.ImageSubset` a config describes (``seed``: the config's)."""
    from ..data import images as images

    kw = dict(classes=config.classes, n_per_class=config.n_per_class, dim=config.dim,
              reduce=config.reduce, seed=config.seed if seed is None else seed)  # fmt: skip
    if config.dataset == "digits":
        return images.load_digits_subset(**kw)
    im, lab = images.load_mnist(images.find_dataset(config.dataset), split="train")
    return images.two_class_subset(im, lab, **kw)


def _params_at(params, i):
    import jax.numpy as jnp

    from ..shallow.nets import ShallowParams

    return ShallowParams(*(jnp.asarray(a[i]) for a in params))


def _flattest_all(params, x, y, converged):
    """Flattest implementation of every converged run (eager, one compiled program)."""
    from ..shallow.flattest import flattest_implementation

    fl = np.full(converged.shape, np.nan)
    gap = np.full(converged.shape, np.nan)
    for i in np.flatnonzero(converged):
        r = flattest_implementation(_params_at(params, i), x, y)
        fl[i], gap[i] = float(r.sharpness), float(r.gap)
    return fl, gap


def relative_preactivations(params, x) -> np.ndarray:
    """(n, k) |z_ji| / (1 + |b1_i| + ||w1_i|| ||x_j||), the scale of :func:`minstab.shallow.modes.toggling_pairs`."""
    from ..shallow.nets import preactivations

    z = np.abs(np.asarray(preactivations(params, x)))
    w = np.linalg.norm(np.asarray(params.w1), axis=1)
    xn = np.linalg.norm(np.asarray(x).reshape(len(z), -1), axis=1)
    return z / (1 + np.abs(np.asarray(params.b1))[None, :] + xn[:, None] * w[None, :])


def _switching_pairs(x, y, steps: int):
    """A jitted ``(params, eta) -> (n, k)`` mask of pairs whose activation switches in ``steps``."""
    import jax
    import jax.numpy as jnp

    from ..shallow.losses import quadratic_loss
    from ..shallow.nets import preactivations

    @jax.jit
    def switches(p, eta):
        act0 = preactivations(p, x) > 0

        def step(q, _):
            g = jax.grad(quadratic_loss)(q, x, y)
            q2 = jax.tree.map(lambda a, b: a - eta * b, q, g)
            return q2, (preactivations(q2, x) > 0) != act0

        return jnp.any(jax.lax.scan(step, p, None, length=steps)[1], axis=0)

    return switches


def _kinks(params, x, y, etas, converged, steps: int = KINK_STEPS):
    """Per converged run: on a kink?, and its mode interval (Lemma 2's quantities) if it is."""
    import jax.numpy as jnp

    from ..shallow.modes import mode_interval

    r = len(converged)
    crossing = np.zeros(r, bool)
    lo, hi, delta = (np.full(r, np.nan) for _ in range(3))
    ntog, exh = np.full(r, -1), np.zeros(r, bool)
    switches = _switching_pairs(x, y, steps)
    for i in np.flatnonzero(converged):
        p = _params_at(params, i)
        sw = np.asarray(switches(p, jnp.asarray(etas[i], x.dtype)))
        if not sw.any():
            continue
        crossing[i] = True
        # every pair at least as close to its kink as the farthest pair that switched
        atol = float(relative_preactivations(p, x)[sw].max()) * (1 + 1e-9)
        m = mode_interval(p, x, atol=atol)
        lo[i], hi[i], delta[i] = m.lambda_lower, m.lambda_upper, m.delta
        ntog[i], exh[i] = m.num_toggling, m.exhaustive
    return crossing, lo, hi, delta, ntog, exh


def run_seed(config: Config, seed: int, *, progress=None) -> SeedResult:
    """One seed: one shared random initialization, GD for every eta, then per-run quantities."""
    import jax
    import jax.numpy as jnp

    from ..engine.sweep import sweep
    from ..shallow.nets import init_shallow

    dt = jnp.dtype(config.dtype)
    data = load_data(config, seed)
    x, y = jnp.asarray(data.x, dt), jnp.asarray(data.y, dt)
    p0 = init_shallow(jax.random.key(seed), x.shape[1], config.width, dtype=dt)
    res = sweep(p0, x, y, list(config.etas), steps=config.steps, tol=config.tol,
                patience=config.patience, progress=False, flattest=False)  # fmt: skip
    conv = np.asarray(res.converged) & ~np.asarray(res.diverged)
    etas = np.asarray(res.etas, float)
    fl, gap = _flattest_all(res.params, x, y, conv)
    crossing, lo, hi, delta, ntog, exh = _kinks(res.params, x, y, etas, conv)
    if progress is not None:
        progress.update(note=f"seed {seed}")
    return SeedResult(
        seed=seed, etas=etas, sharpness=np.asarray(res.sharpness, float), flattest=fl,
        flattest_gap=gap, bound=np.asarray(res.lower_bound, float),
        norm=np.asarray(res.weighted_curvature, float), converged=conv, crossing=crossing,
        lambda_lower=lo, lambda_upper=hi, mode_delta=delta, num_toggling=ntog, exhaustive=exh,
        diverged=np.asarray(res.diverged), status=list(res.status()),
        loss=np.asarray(res.loss, float), x_shape=tuple(x.shape),
    )  # fmt: skip


_ARRAYS = {"etas": float, "sharpness": float, "flattest_sharpness": float,
           "flattest_dual_gap": float, "lower_bound": float, "weighted_radon_norm": float,
           "converged": bool, "on_a_kink": bool, "lambda_lower": float, "lambda_upper": float,
           "mode_delta": float, "pairs_on_kink": int, "mode_interval_exact": bool,
           "diverged": bool, "loss": float}  # fmt: skip


def _seed_from_json(d: dict) -> SeedResult:
    a = {k: np.asarray([np.nan if v is None else v for v in d[k]], t) for k, t in _ARRAYS.items()}
    return SeedResult(
        seed=int(d["seed"]), etas=a["etas"], sharpness=a["sharpness"],
        flattest=a["flattest_sharpness"], flattest_gap=a["flattest_dual_gap"],
        bound=a["lower_bound"], norm=a["weighted_radon_norm"], converged=a["converged"],
        crossing=a["on_a_kink"], lambda_lower=a["lambda_lower"], lambda_upper=a["lambda_upper"],
        mode_delta=a["mode_delta"], num_toggling=a["pairs_on_kink"],
        exhaustive=a["mode_interval_exact"], diverged=a["diverged"], status=list(d["status"]),
        loss=a["loss"], x_shape=tuple(d["x_shape"]),
    )  # fmt: skip


def run(config: Config, *, out_dir=None, progress=None) -> Result:
    """Every seed of the protocol (module docstring); seeds stored in ``out_dir/seeds`` are reused."""
    import jax

    t0 = time.perf_counter()
    if config.dtype == "float64":
        jax.config.update("jax_enable_x64", True)

    def resumed(seed):
        if progress is not None:
            progress.update(note=f"seed {seed} (resumed)")

    seeds = resume_seeds(
        range(config.seed, config.seed + config.seeds), out_dir,
        lambda seed: run_seed(config, seed, progress=progress),
        key=lambda seed: stored_key(config, seed), encode=_seed_json, decode=_seed_from_json,
        resumed=resumed,
    )  # fmt: skip
    return Result(seeds, time.perf_counter() - t0, config)


def step_size_trend(etas, norm) -> tuple[float, float]:
    """Kendall's tau of R_g(f) against eta and its one-sided exact p-value (alternative: tau < 0)."""
    from scipy.stats import kendalltau

    if len(etas) < 2:
        return float("nan"), float("nan")
    r = kendalltau(etas, norm, alternative="less", method="exact" if len(etas) <= 12 else "auto")
    return float(r.statistic), float(r.pvalue)


def trend_of_seed(s: SeedResult) -> dict:
    """One seed's entry of the step-size verdict (module docstring)."""
    edge = s.at_edge
    ne = int(edge.sum())
    tau, p = step_size_trend(s.etas[edge], s.norm[edge])
    judged = ne >= MIN_EDGE_RUNS
    return {"seed": s.seed, "shown": bool(tau < 0 and p <= 0.05) if judged else None,
            "edge_runs": ne, "kendall_tau": tau, "p_value": p}  # fmt: skip


def verdicts(result: Result) -> dict:
    return {
        "norm_decreases_with_step_size": verdict(
            [trend_of_seed(s) for s in result.seeds],
            statement=f"at the edge of stability {NORM} of GD's solution decreases as eta grows",
            threshold=f"Kendall tau({NORM}, eta) < 0 at one-sided exact p <= 0.05 over the "
            f"converged runs with sharpness >= {1 - EOS_BAND:g} x 2/eta (>= {MIN_EDGE_RUNS} "
            "such runs to judge a seed)",
        )
    }


def _cat(result: Result, field: str) -> np.ndarray:
    return np.concatenate([np.asarray(getattr(s, field)) for s in result.seeds])


def _worst(a) -> str:
    return f"{np.max(a):.4f}" if a.size else "-"


def _resolution(config: Config) -> str:
    return (f"(<= 1 + {config.slack:.2g}, the resolution of a {config.patience}-step "
            "convergence test)")  # fmt: skip


def _lemma1_check(result: Result) -> Check:
    """Lemma 1, sharpness <= 2/eta (with the slack), on converged runs at smooth minima."""
    etas, smooth = _cat(result, "etas"), _cat(result, "smooth")
    nc, ns = int(_cat(result, "converged").sum()), int(smooth.sum())
    l1 = _cat(result, "sharpness")[smooth] * etas[smooth] / 2
    return make_check(
        bool(np.all(l1 <= 1 + result.config.slack)),
        f"max sharpness * eta / 2 = {_worst(l1)} over the converged runs at differentiable "
        f"minima {_resolution(result.config)}", covered=ns, eligible=ns,
        why_none=f"every one of the {nc} converged runs is on a kink (its next {KINK_STEPS} "
        "GD steps switch an activation): Lemma 2 is checked on them instead",
    )  # fmt: skip


def _lemma2_check(result: Result) -> Check:
    """Lemma 2, lambda_lower <= 2/eta + delta (with the slack), on converged runs on a kink."""
    kinked = _cat(result, "kinked")
    nc, nk = int(_cat(result, "converged").sum()), int(kinked.sum())
    ek = _cat(result, "etas")[kinked]
    lo, dl = _cat(result, "lambda_lower")[kinked], _cat(result, "mode_delta")[kinked]
    l2 = lo / (2 / ek + dl)  # Lemma 2: lambda_lower <= 2/eta + delta
    one_mode = _cat(result, "sharpness")[kinked] * ek / 2
    ntog = _cat(result, "num_toggling")[kinked]
    nexh = int(_cat(result, "exhaustive")[kinked].sum())
    return make_check(
        bool(np.all(l2 <= 1 + result.config.slack)),
        f"max lambda_lower / (2/eta + delta) = {_worst(l2)} {_resolution(result.config)} over "
        f"the converged runs on a kink (max lambda_lower * eta / 2 = {_worst(lo * ek / 2)}; one "
        f"mode's sharpness * eta / 2 up to {_worst(one_mode)}; {int(ntog.min()) if nk else 0}-"
        f"{int(ntog.max()) if nk else 0} pairs on the kink, {nexh} of {nk} intervals exact)",
        covered=nk, eligible=nk,
        why_none=f"none of the {nc} converged runs is on a kink (no activation switches in "
        f"{KINK_STEPS} GD steps): Lemma 1 is checked on them instead",
    )  # fmt: skip


def _converged_checks(result: Result) -> dict:
    """Lemma 4's order, the flattest certificate and Theorem 1's budget on every converged run."""
    c = _cat(result, "converged")
    total, nc = len(c), int(c.sum())
    s, fl = _cat(result, "sharpness")[c], _cat(result, "flattest")[c]
    b, w = _cat(result, "bound")[c], _cat(result, "norm")[c]
    bud = (1 / _cat(result, "etas") - 0.5)[c]
    gap = _cat(result, "flattest_gap")[c]
    why = f"no run of {total} converged"
    return {
        "lemma4_bound_le_flattest_le_sharpness": make_check(
            bool(np.all(b <= fl * (1 + 1e-6)) and np.all(fl <= s * (1 + 1e-6))),
            f"max bound/flattest {_worst(b / fl)}, max flattest/sharpness {_worst(fl / s)}",
            covered=nc, eligible=nc, why_none=why,
        ),
        "flattest_certified": make_check(
            bool(np.all(np.isfinite(fl)) and np.all(gap <= 1e-6 * fl)),
            "flattest finite with dual gap <= 1e-6 relative on every converged run (max "
            + (f"{np.max(gap / fl):.2e})" if nc else "-)"), covered=nc, eligible=nc, why_none=why,
        ),
        "theorem1_norm_within_budget": make_check(
            bool(np.all(w <= bud * (1 + 1e-6))),
            f"max {NORM} / (1/eta - 1/2) = {_worst(w / bud)} (<= 1) on every converged run",
            covered=nc, eligible=nc, why_none=why,
        ),
    }  # fmt: skip


def checks(result: Result) -> dict:
    """Lemma 1, Lemma 2, Lemma 4, the flattest certificate and Theorem 1 on every seed."""
    return {
        "lemma1_sharpness_le_2_over_eta": _lemma1_check(result),
        "lemma2_lambda_lower_le_2_over_eta_plus_delta": _lemma2_check(result),
        **_converged_checks(result),
    }


def outcomes(result: Result) -> tuple[dict, dict]:
    """``(checks, verdicts)`` of the :mod:`~minstab.experiments.base` protocol."""
    return checks(result), verdicts(result)


def table(result: Result) -> str:
    """The run header, one row per (seed, eta) run, and the summary line."""
    cfg, sm = result.config, summary(result)
    lines = [f"{cfg.dataset}: x {result.seeds[0].x_shape}, width {cfg.width}, {cfg.seeds} seeds, "
             f"one shared random initialization per seed, wall {result.wall_s:.1f} s"]  # fmt: skip
    lines += _rows(result)
    lines.append(
        f"{sm['converged']} of {sm['runs']} runs converged, {sm['at_edge']} at the edge, "
        f"{sm['kinked']} on a kink; bound/sharpness {sm['bound_over_sharpness'][0]:.3f} .. "
        f"{sm['bound_over_sharpness'][1]:.3f}, bound/flattest {sm['bound_over_flattest'][0]:.3f}"
        f" .. {sm['bound_over_flattest'][1]:.3f}, {NORM}/(1/eta - 1/2) "
        f"{sm['norm_over_budget'][0]:.3f} .. {sm['norm_over_budget'][1]:.3f}"
    )
    return "\n".join(lines)


def _rows(result: Result) -> list[str]:
    head = (f"{'seed':>4} {'eta':>5} {'2/eta':>6} {'sharp':>7} {'lam_lo':>7} {'delta':>6} "
            f"{'flattest':>8} {'bound':>6} {NORM:>7} {'1/eta-.5':>8} {'b/sh':>5} {'b/fl':>5} "
            f"{'loss':>7}  status")  # fmt: skip
    lines = [head, "-" * len(head)]
    for s in result.seeds:
        for i, e in enumerate(s.etas):
            lines.append(
                f"{s.seed:4d} {e:5.3g} {2 / e:6.4g} {s.sharpness[i]:7.4g} {s.lambda_lower[i]:7.4g} "
                f"{s.mode_delta[i]:6.3g} {s.flattest[i]:8.4g} {s.bound[i]:6.4g} {s.norm[i]:7.4f} "
                f"{s.budget[i]:8.4g} {s.tightness[i]:5.3f} {s.tightness_flattest[i]:5.3f} "
                f"{s.loss[i]:7.1e}  {s.status[i]}"
                + (", edge" if s.at_edge[i] else "")
                + (f", kink ({s.num_toggling[i]} pairs)" if s.crossing[i] else "")
            )
    lines.append(f"({NORM} = sum over hyperplanes |a| g(v, b), the weighted Radon-domain norm; "
                 "bound = 1 + 2 R_g(f), Lemma 4; lam_lo, delta: Lemma 2's mode interval on runs on a "
                 "kink; flattest: not computed for runs that did not converge)")  # fmt: skip
    return lines


def summary(result: Result) -> dict:
    """Numbers the notebook and README quote, read from the result."""
    c = _cat(result, "converged")
    edge = np.concatenate([s.at_edge for s in result.seeds])
    etas = _cat(result, "etas")
    frac = (_cat(result, "norm") / (1 / etas - 0.5))[c]
    frac_edge = (_cat(result, "norm") / (1 / etas - 0.5))[edge]
    tight = np.concatenate([s.tightness for s in result.seeds])[c]
    tight_fl = np.concatenate([s.tightness_flattest for s in result.seeds])[c]

    def rng(a):
        return (float(np.min(a)), float(np.max(a))) if a.size else (np.nan, np.nan)

    return {
        "runs": len(c), "converged": int(c.sum()), "at_edge": int(edge.sum()),
        "kinked": int(_cat(result, "kinked").sum()),
        "norm_over_budget": rng(frac), "norm_over_budget_at_edge": rng(frac_edge),
        "bound_over_sharpness": rng(tight), "bound_over_flattest": rng(tight_fl),
    }  # fmt: skip


def plot(result: Result, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.9))
    alle = _cat(result, "etas")
    grid = np.geomspace(alle.min() * 0.8, alle.max() * 1.25, 100)
    axes[0].plot(grid, 2 / grid, "k--", lw=1.2, label=r"$2/\eta$ (Lemma 1)")
    axes[1].plot(grid, np.maximum(1 / grid - 0.5, 1e-3), "k--", lw=1.2,
                 label=r"budget $1/\eta - 1/2$ (Theorem 1)")  # fmt: skip
    for k, s in enumerate(result.seeds):
        e, c = s.etas, s.converged
        first = k == 0
        axes[0].plot(e[c], s.sharpness[c], "o-", color="C0", ms=3, alpha=0.7,
                     label="sharpness reached by GD" if first else None)  # fmt: skip
        axes[0].plot(e[c], s.flattest[c], "s-", color="C2", ms=3, alpha=0.7,
                     label="flattest implementation" if first else None)  # fmt: skip
        axes[0].plot(e[c], s.bound[c], "^-", color="C3", ms=3, alpha=0.7,
                     label=r"$1 + 2\,R_g(f)$ (Lemma 4)" if first else None)  # fmt: skip
        axes[1].plot(e[c], s.norm[c], "o-", color="C3", ms=3, alpha=0.7,
                     label=NORM_TEX + " of GD's solution" if first else None)  # fmt: skip
    axes[0].set_ylabel(r"$\lambda_{\max}$")
    axes[1].set_ylabel("weighted Radon-domain norm")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"step size $\eta$")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, which="both")
    cfg = result.config
    n, d = result.seeds[0].x_shape
    fig.suptitle(f"{cfg.dataset}: classes {cfg.classes}, n={n}, d={d}, k={cfg.width}, "
                 f"{len(result.seeds)} seeds, one shared initialization per seed", fontsize=9)  # fmt: skip
    fig.tight_layout()
    from minstab import plotting

    return plotting.save(fig, out, "mnist_tightness")


def _seed_json(s: SeedResult) -> dict:
    return {
        "seed": s.seed, "x_shape": list(s.x_shape), "etas": s.etas, "two_over_eta": 2 / s.etas,
        "sharpness": s.sharpness, "lambda_lower": s.lambda_lower, "lambda_upper": s.lambda_upper,
        "mode_delta": s.mode_delta, "pairs_on_kink": s.num_toggling,
        "mode_interval_exact": s.exhaustive, "flattest_sharpness": s.flattest,
        "flattest_dual_gap": s.flattest_gap, "lower_bound": s.bound,
        "weighted_radon_norm": s.norm, "budget": s.budget,
        "tightness_bound_over_sharpness": s.tightness,
        "tightness_bound_over_flattest": s.tightness_flattest, "status": s.status,
        "converged": s.converged, "loss": s.loss, "at_edge_of_stability": s.at_edge,
        "on_a_kink": s.crossing, "diverged": s.diverged,
    }  # fmt: skip


def to_json(result: Result) -> dict:
    return {
        "config": dataclasses.asdict(result.config),
        "wall_s": result.wall_s,
        "summary": summary(result),
        "seeds": [_seed_json(s) for s in result.seeds],
    }
