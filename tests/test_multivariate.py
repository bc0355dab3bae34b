"""Seed 000 at quick size: the bound on image data across step sizes, and the depth separation.

Every check here can fail: thresholds come from the lemmas (Lemma 1: sharpness <= 2/eta, Lemma 2:
lambda_lower <= 2/eta + delta, Lemma 4: 1 + 2 R_g(f) <= flattest <= sharpness, Theorem 1:
R_g(f) <= 1/eta - 1/2) or from an independent computation; each check is made false on a
constructed input, and each verdict is computed on constructed seeds for every outcome.
"""

import json
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from minstab import cli
from minstab.data.images import FASHION_MNIST_DIR
from minstab.experiments import depth_separation, mnist
from minstab.shallow.bounds import weight, weighted_curvature
from minstab.shallow.predict import minimal_budget


def _dataset():
    return "fashion-mnist" if FASHION_MNIST_DIR.is_dir() else "digits"


@pytest.fixture(scope="module")
def mnist_quick(tmp_path_factory):
    """`minstab reproduce mnist --quick` end to end (4 seeds), its JSON and its output directory."""
    if _dataset() == "digits":
        pytest.importorskip("sklearn")
    out = tmp_path_factory.mktemp("mnist")
    rc = cli.main(["reproduce", "mnist", "--quick", "--dataset", _dataset(), "--out", str(out)])
    return rc, json.loads((out / "mnist.json").read_text()), out


def test_reproduce_mnist_quick(mnist_quick):
    rc, js, out = mnist_quick
    assert rc == 0, js["checks"]
    assert set(js) >= {"checks", "verdicts"} and "claims" not in js
    checks = js["checks"]
    assert not [k for k, c in checks.items() if c["holds"] is False], checks
    seeds = js["seeds"]
    assert len(seeds) == 4 and [s["seed"] for s in seeds] == [0, 1, 2, 3]
    conv = np.concatenate([s["converged"] for s in seeds])
    kink = np.concatenate([s["on_a_kink"] for s in seeds])
    # Lemma 2 covers every converged run on a kink and Lemma 1 every other converged run: the
    # two together cover every converged run, and at least one run is covered at all
    l1, l2 = (
        checks["lemma1_sharpness_le_2_over_eta"],
        checks["lemma2_lambda_lower_le_2_over_eta_plus_delta"],
    )
    assert l2["covered"] == int((conv & kink).sum()) and l1["covered"] == int((conv & ~kink).sum())
    assert l1["covered"] + l2["covered"] == conv.sum() > 0
    for c in (l1, l2):
        assert c["holds"] is True or (c["covered"] == 0 and c["why_none"]), c
    # a kinked run has a mode interval with lambda_lower <= lambda_upper and delta >= 0
    for s in seeds:
        k = np.asarray(s["on_a_kink"])
        lo, hi = (np.asarray(s[f], float)[k] for f in ("lambda_lower", "lambda_upper"))
        assert np.all(lo <= hi * (1 + 1e-12)) and np.all(np.asarray(s["mode_delta"], float)[k] >= 0)
        c = np.asarray(s["converged"])
        assert np.all(np.isfinite(np.asarray(s["flattest_sharpness"], float)[c]))
    v = js["verdicts"]["norm_decreases_with_step_size"]
    assert v["seeds_run"] == 4 and len(v["per_seed"]) == 4
    assert v["verdict"] in ("reproduced", "partly", "not reproduced", "inconclusive")
    assert (out / "mnist_tightness.png").stat().st_size > 0
    assert sorted(p.name for p in (out / "seeds").iterdir()) == [f"seed_{i}.json" for i in range(4)]


def test_reproduce_mnist_quick_resumes(mnist_quick, monkeypatch):
    rc, js, out = mnist_quick

    def boom(*a, **k):
        raise AssertionError("a stored seed was computed again")

    monkeypatch.setattr(mnist, "run_seed", boom)
    assert (
        cli.main(["reproduce", "mnist", "--quick", "--dataset", _dataset(), "--out", str(out)])
        == rc
    )
    again = json.loads((out / "mnist.json").read_text())
    assert again["checks"] == js["checks"] and again["verdicts"] == js["verdicts"]


def _seed(*, etas, sharpness, norm, converged=None, kink=None, lambda_lower=None, delta=None,
          flattest=None, bound=None, gap=None, seed=0):  # fmt: skip
    """A constructed mnist.SeedResult (only what checks and verdicts read)."""
    etas = np.asarray(etas, float)
    r = len(etas)
    conv = np.ones(r, bool) if converged is None else np.asarray(converged)
    kink = np.zeros(r, bool) if kink is None else np.asarray(kink, bool)
    sharp = np.asarray(sharpness, float)
    nan = np.full(r, np.nan)
    norm = np.asarray(norm, float)
    bound = 1 + 2 * norm if bound is None else np.asarray(bound, float)
    flat = (bound + sharp) / 2 if flattest is None else np.asarray(flattest, float)
    return mnist.SeedResult(
        seed=seed, etas=etas, sharpness=sharp, flattest=flat,
        flattest_gap=np.zeros(r) if gap is None else np.asarray(gap, float), bound=bound,
        norm=norm, converged=conv, crossing=kink,
        lambda_lower=nan if lambda_lower is None else np.asarray(lambda_lower, float),
        lambda_upper=nan, mode_delta=nan if delta is None else np.asarray(delta, float),
        num_toggling=np.where(kink, 3, -1), exhaustive=kink.copy(), diverged=np.zeros(r, bool),
        status=["converged"] * r, loss=np.zeros(r), x_shape=(30, 8),
    )  # fmt: skip


ETAS = (0.4, 0.5, 0.6, 0.7)
EDGE = tuple(2 / e for e in ETAS)  # every run exactly at the edge


def _mresult(*seeds, patience=10000):
    return mnist.Result(list(seeds), 0.0, mnist.Config(patience=patience))


def test_mnist_checks_hold_on_a_constructed_sweep():
    s = _seed(etas=ETAS, sharpness=EDGE, norm=[0.9, 0.7, 0.5, 0.3], kink=[0, 1, 1, 0],
              lambda_lower=[np.nan, 3.9, 3.3, np.nan], delta=[np.nan, 0.01, 0.01, np.nan])  # fmt: skip
    c = mnist.checks(_mresult(s))
    assert all(x.holds is True for x in c.values()), c
    assert c["lemma1_sharpness_le_2_over_eta"].covered == 2
    assert c["lemma2_lambda_lower_le_2_over_eta_plus_delta"].covered == 2


@pytest.mark.parametrize(
    "name, change",
    [
        # a differentiable minimum 5 % past 2/eta (the slack at patience 10^4 is 1.2e-4)
        ("lemma1_sharpness_le_2_over_eta", dict(sharpness=[2 / 0.4 * 1.05, *EDGE[1:]])),
        # a kinked minimum whose smallest mode curvature exceeds 2/eta + delta by 1 %
        ("lemma2_lambda_lower_le_2_over_eta_plus_delta",
         dict(kink=[0, 1, 0, 0], lambda_lower=[np.nan, 4.05, np.nan, np.nan],
              delta=[np.nan, 0.0, np.nan, np.nan])),
        # the Lemma 4 bound above the flattest implementation
        ("lemma4_bound_le_flattest_le_sharpness",
         dict(bound=[2.0, 2.0, 2.0, 2.0], flattest=[1.9, 1.9, 1.9, 1.9])),
        # a dual gap of 1 % of the flattest sharpness
        ("flattest_certified", dict(gap=[0.05, 0.0, 0.0, 0.0])),
        # R_g(f) above the budget 1/eta - 1/2 (= 2 at eta = 0.4). At a differentiable minimum
        # Lemmas 1 and 4 imply Theorem 1, so the run sits on a kink: one mode's sharpness 5.5
        # above 2/eta = 5 while Lemma 2 holds (lambda_lower 4.9)
        ("theorem1_norm_within_budget",
         dict(norm=[2.1, 0.7, 0.5, 0.3], sharpness=[5.5, *EDGE[1:]], kink=[1, 0, 0, 0],
              lambda_lower=[4.9, np.nan, np.nan, np.nan], delta=[0.0, np.nan, np.nan, np.nan])),
    ],
)  # fmt: skip
def test_each_mnist_check_can_fail(name, change):
    kw = dict(etas=ETAS, sharpness=EDGE, norm=[0.9, 0.7, 0.5, 0.3])
    kw.update(change)
    c = mnist.checks(_mresult(_seed(**kw)))
    assert c[name].holds is False, c[name]
    assert [k for k, x in c.items() if x.holds is False] == [name]


def test_mnist_checks_over_no_run_say_why():
    c = mnist.checks(_mresult(_seed(etas=ETAS, sharpness=EDGE, norm=[0.9, 0.7, 0.5, 0.3],
                                    kink=[1, 1, 1, 1], lambda_lower=[4.9, 3.9, 3.3, 2.8],
                                    delta=[0.0] * 4)))  # fmt: skip
    l1 = c["lemma1_sharpness_le_2_over_eta"]
    assert l1.holds is None and l1.covered == 0 and "kink" in l1.why_none


DOWN, UP = [0.9, 0.7, 0.5, 0.3], [0.3, 0.5, 0.7, 0.9]


@pytest.mark.parametrize(
    "norms, label",
    [
        ([DOWN] * 4, "reproduced"),  # 4 of 4 seeds
        ([DOWN, DOWN, UP, UP], "partly"),  # 2 of 4
        ([UP, UP, UP, DOWN], "partly"),  # 1 of 4 = 25 %
        ([UP] * 4, "not reproduced"),
        ([DOWN, DOWN, DOWN, None], "inconclusive"),  # a seed with fewer than 4 edge runs
    ],
)
def test_mnist_trend_verdict_outcomes(norms, label):
    seeds = []
    for i, n in enumerate(norms):
        if n is None:  # runs below the edge (sharpness 0.8 x 2/eta): the seed is not judged
            seeds.append(_seed(etas=ETAS, sharpness=[0.8 * e for e in EDGE], norm=DOWN, seed=i))
        else:
            seeds.append(_seed(etas=ETAS, sharpness=EDGE, norm=n, seed=i))
    v = mnist.verdicts(_mresult(*seeds))["norm_decreases_with_step_size"]
    assert v.verdict == label, v
    assert v.seeds_run == 4


def test_mnist_trend_of_a_seed():
    t = mnist.trend_of_seed(_seed(etas=ETAS, sharpness=EDGE, norm=DOWN))
    assert t["shown"] is True and t["kendall_tau"] == -1 and t["p_value"] == pytest.approx(1 / 24)
    # one step size repeated: no trend (tau is NaN), so the seed does not show it
    same = mnist.trend_of_seed(_seed(etas=(0.6,) * 4, sharpness=(2 / 0.6,) * 4, norm=DOWN))
    assert same["shown"] is False


@pytest.mark.parametrize(
    "flags, word",
    [
        (["--classes", "0,12"], "--classes"), (["--classes", "3,3"], "--classes"),
        (["--classes", "a,1"], "--classes"), (["--classes", "0"], "--classes"),
        (["--n-per-class", "0"], "--n-per-class"),
        (["--n-per-class", "9000"], "--n-per-class"), (["--dim", "0"], "--dim"),
        (["--dim", "100"], "--dim"), (["--width", "-1"], "--width"),
        (["--etas", "0.1,-1"], "--etas"), (["--etas", "nan"], "--etas"),
        (["--steps", "0"], "--steps"), (["--steps", "150"], "--steps"),
        (["--seed", "-1"], "--seed"), (["--seeds", "0"], "--seeds"),
        (["--reduce", "svd"], "--reduce"), (["--dtype", "float16"], "--dtype"),
        (["--dataset", "/nope"], "--dataset"),
    ],
)  # fmt: skip
def test_mnist_bad_flags_exit_2_before_computing(flags, word, capsys, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("computed before checking the command line")

    monkeypatch.setattr(mnist, "run_seed", boom)
    with pytest.raises(SystemExit) as e:
        raise SystemExit(cli.main(["reproduce", "mnist", "--quick", *flags]))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0] and "Traceback" not in err[0], err


def test_mnist_out_is_an_existing_file_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(mnist, "run_seed", None)  # never reached
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SystemExit) as e:
        raise SystemExit(cli.main(["reproduce", "mnist", "--quick", "--out", str(f)]))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0], err


def _run_cli(*argv, pre=""):
    code = f"{pre}import sys; from minstab.cli import main; sys.exit(main({list(argv)!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_mnist_missing_dataset_directory_exits_2(tmp_path):
    out = _run_cli("reproduce", "mnist", "--quick", "--dataset", "/nope", "--out", str(tmp_path))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "--dataset" in out.stderr and "/nope" in out.stderr


def test_mnist_digits_without_scikit_learn_names_the_extra(tmp_path):
    pre = "import sys; sys.modules['sklearn'] = None; "  # as if scikit-learn were not installed
    out = _run_cli("reproduce", "mnist", "--quick", "--dataset", "digits", "--out", str(tmp_path),
                   pre=pre)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert 'pip install "minstab[data]"' in out.stderr


# ------------------------------------------------------------------------- minimal budget (LP)


def _grid(s):
    g = np.linspace(-1.5, 1.5, s)
    return np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)


def test_minimal_budget_against_independent_weighted_norm():
    # the LP's network, measured by bounds.weighted_curvature (separate code: merges hyperplanes,
    # weights each by g), must have exactly the LP's objective and meet the accuracy
    x = np.random.default_rng(0).uniform(-1.5, 1.5, (60, 2))
    y = np.maximum(1 - np.abs(x).sum(1), 0)
    r = minimal_budget(x, y, accuracy=0.05, num_directions=12, num_offsets=12)
    assert r.max_error <= 0.05 + 1e-7
    w = float(weighted_curvature(r.params, jnp.asarray(x)))
    assert w == pytest.approx(r.budget, rel=1e-6)
    assert r.eta_max == pytest.approx(1 / (r.budget + 0.5))


def test_minimal_budget_of_a_dictionary_plane_and_monotonicity():
    x = _grid(7)
    r0 = minimal_budget(x, 0.3 * x[:, 1] + 2, accuracy=0.0, num_directions=8, num_offsets=8)
    assert r0.budget == pytest.approx(0.0, abs=1e-12)  # linear: free
    # one plane of the dictionary (direction 0 of 8, offset 3 of 8) with mass 2: feasible at
    # accuracy 0 with cost 2 g(v, b), so the minimum is at most that
    t = np.pi * 0.5 / 8
    v = np.array([np.cos(t), np.sin(t)])
    p = x @ v
    b = p.min() + np.ptp(p) * 3.5 / 8
    y = 2 * np.maximum(p - b, 0)
    r = minimal_budget(x, y, accuracy=0.0, num_directions=8, num_offsets=8)
    g = float(weight(jnp.asarray(v[None]), jnp.asarray([b]), jnp.asarray(x))[0])
    assert r.budget <= 2 * g * (1 + 1e-9)
    budgets = [minimal_budget(x, y, accuracy=e, num_directions=8, num_offsets=8).budget
               for e in (0.3, 0.1, 0.0)]  # fmt: skip
    assert budgets[0] <= budgets[1] <= budgets[2]  # a tighter accuracy never costs less


# ------------------------------------------------------------------------- depth separation


@pytest.fixture(scope="module")
def depth_quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("depth")
    rc = cli.main(["reproduce", "depth-separation", "--quick", "--out", str(out)])
    return rc, json.loads((out / "depth_separation.json").read_text()), out


def test_reproduce_depth_separation_quick(depth_quick):
    rc, js, out = depth_quick
    assert rc == 0 and "claims" not in js
    assert all(c["holds"] is True for c in js["checks"].values()), js["checks"]
    assert js["dictionaries"] == [32, 64] and len(js["seeds"]) == 4
    # the budgets are minimal budgets at the accuracies asked, on networks that meet them
    for s in js["seeds"]:
        for k, err in s["max_error"].items():
            assert np.all(np.asarray(err) <= np.asarray(js["accuracies"])[None, :] + 1e-7), k
    v = js["verdicts"]["depth_separation"]
    assert v["seeds_run"] == 4 and len(v["per_seed"]) == 4
    assert v["verdict"] in ("reproduced", "partly", "not reproduced", "inconclusive")
    assert (out / "depth_separation.png").stat().st_size > 0


def test_reproduce_depth_separation_resumes(depth_quick, monkeypatch):
    rc, js, out = depth_quick

    def boom(*a, **k):
        raise AssertionError("a stored seed was computed again")

    monkeypatch.setattr(depth_separation, "run_seed", boom)
    assert cli.main(["reproduce", "depth-separation", "--quick", "--out", str(out)]) == rc
    again = json.loads((out / "depth_separation.json").read_text())
    assert again["verdicts"] == js["verdicts"] and again["checks"] == js["checks"]


ACC = np.array([0.1, 0.05, 0.025, 0.0125])
GROWS = np.array([0.5, 0.7, 0.88, 1.05])  # increments 0.2, 0.18, 0.17: keep >= half the first
SETTLES = np.array([0.4, 0.55, 0.62, 0.65])  # increments 0.15, 0.07, 0.03: last < half the first


def _dseed(bump, control, *, seed=0, err=None, lam=1.2, lam_l=None, ratios=(1e-6, 1e4)):
    """A constructed depth_separation.SeedResult over dictionaries 32^2, 64^2 (rows)."""
    b = {"l1-bump": np.asarray(bump, float), "control": np.asarray(control, float)}
    b = {k: v if v.ndim == 2 else np.stack([v, v]) for k, v in b.items()}
    e = {k: np.zeros_like(v) if err is None else np.asarray(err, float) for k, v in b.items()}
    return depth_separation.SeedResult(seed, b, e, lam, lam if lam_l is None else lam_l, 0.0,
                                       dict(zip(depth_separation.STEP_FACTORS, ratios, strict=True)))  # fmt: skip


def _dresult(*seeds):
    cfg = depth_separation.Config.quick(seeds=len(seeds))
    return depth_separation.Result(ACC, np.array([32, 64]), list(seeds), 0.0, cfg)


@pytest.mark.parametrize(
    "kinds, label",
    [
        (["sep"] * 4, "reproduced"),
        (["sep", "sep", "alike", "alike"], "partly"),
        (["alike"] * 4, "not reproduced"),  # the control is the bump: no separation
        (["sep"] * 3, "inconclusive"),  # fewer than 4 seeds
    ],
)
def test_depth_separation_verdict_outcomes(kinds, label):
    seeds = [_dseed(GROWS, SETTLES if k == "sep" else GROWS, seed=i) for i, k in enumerate(kinds)]
    v = depth_separation.verdicts(_dresult(*seeds))["depth_separation"]
    assert v.verdict == label, v


def test_depth_separation_per_seed_criterion():
    sep = depth_separation.separation
    assert sep(_dseed(GROWS, SETTLES))["shown"] is True
    # the bump's increments shrink like the control's: not shown
    assert sep(_dseed(SETTLES, SETTLES))["shown"] is False
    # at the finest dictionary the bump's last increment is below half the first: not shown
    bump = np.stack([GROWS, [0.5, 0.7, 0.8, 0.85]])
    assert sep(_dseed(bump, SETTLES))["shown"] is False
    # the control keeps growing at the coarser of the two dictionaries: not shown
    assert sep(_dseed(GROWS, np.stack([GROWS, SETTLES])))["shown"] is False


@pytest.mark.parametrize(
    "name, kw",
    [
        ("lp_meets_accuracy", dict(err=np.stack([ACC, ACC + [0, 0, 0, 1e-3]]))),
        ("budget_never_falls_as_eps_tightens", dict(bump=[0.5, 0.7, 0.69, 1.05])),
        ("deep_sharpness_dense_matches_lanczos", dict(lam_l=1.2 * (1 + 1e-4))),
        ("deep_net_stable_below_2_over_lambda", dict(ratios=(1.5, 1e4))),
        ("deep_net_leaves_above_2_over_lambda", dict(ratios=(1e-6, 0.5))),
    ],
)  # fmt: skip
def test_each_depth_check_can_fail(name, kw):
    args = dict(bump=GROWS, control=SETTLES)
    args.update(kw)
    c = depth_separation.checks(_dresult(_dseed(args.pop("bump"), args.pop("control"), **args)))
    assert c[name].holds is False, c[name]
    assert [k for k, x in c.items() if x.holds is False] == [name]


def test_depth_check_deep_net_exact_can_fail():
    s = _dseed(GROWS, SETTLES)._replace(deep_error=1e-3)
    assert depth_separation.checks(_dresult(s))["deep_net_exact"].holds is False


@pytest.mark.parametrize(
    "flags, word",
    [
        (["--dim", "1"], "--dim"), (["--n", "0"], "--n"), (["--n", "x"], "--n"),
        (["--accuracies", "0.1,0.2,0.05"], "--accuracies"),
        (["--accuracies", "0.1,-1,0.01"], "--accuracies"),
        (["--accuracies", "0.1,0.05"], "--accuracies"),
        (["--dictionaries", "64,32"], "--dictionaries"),
        (["--dictionaries", "32"], "--dictionaries"), (["--dictionaries", "0,8"], "--dictionaries"),
        (["--seed", "-1"], "--seed"), (["--seeds", "0"], "--seeds"),
        (["--control", "sine"], "--control"),
    ],
)  # fmt: skip
def test_depth_bad_flags_exit_2_before_computing(flags, word, capsys, monkeypatch):
    monkeypatch.setattr(depth_separation, "run_seed", None)  # never reached
    with pytest.raises(SystemExit) as e:
        raise SystemExit(cli.main(["reproduce", "depth-separation", "--quick", *flags]))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0], err


def test_depth_out_is_an_existing_file_exits_2(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    out = _run_cli("reproduce", "depth-separation", "--quick", "--out", str(f))
    assert out.returncode == 2 and "--out" in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1


def test_depth_separation_needs_two_dimensions():
    with pytest.raises(ValueError, match="dim"):
        depth_separation.run(depth_separation.Config.quick(dim=1))
