"""Seed 000 at quick size: the bound on image data across step sizes, and the depth separation.

Every check here can fail: thresholds come from the lemmas (Lemma 1: sharpness <= 2/eta, Lemma 4:
1 + 2 R_g(f) <= flattest <= sharpness, Theorem 1: R_g(f) <= 1/eta - 1/2) or from an independent
computation, and each command is also run once with a setting under which a claim must be false.
"""

import argparse
import json
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from minstab import cli
from minstab.bounds import weight, weighted_curvature
from minstab.experiments import depth_separation, mnist
from minstab.images import FASHION_MNIST_DIR
from minstab.predict import minimal_budget


@pytest.fixture(scope="module")
def digits_result():
    pytest.importorskip("sklearn")
    return mnist.run(mnist.Config.quick_config(dataset="digits"))


def test_mnist_claims_on_digits(digits_result, tmp_path):
    r = digits_result
    c = r.converged
    assert c.sum() >= 3, "too few converged runs at quick size to check anything"
    # the flattest implementation exists for every converged run: never NaN (a NaN here would
    # mean flattest_implementation failed on a d > 1 minimum)
    assert np.all(np.isfinite(r.flattest[c])) and np.all(np.isnan(r.flattest[~c]))
    claims = mnist.check(r)
    # the theorems hold on every converged run (the step-size trend is an empirical claim of the
    # paper, checked at the edge of stability only; at this tiny size it may be left unchecked)
    for name in ("lemma4_bound_le_flattest_le_sharpness", "flattest_certified",
                 "theorem1_norm_within_budget"):  # fmt: skip
        assert claims[name].holds and claims[name].covered == c.sum(), (name, claims[name])
    # Lemma 1 covers exactly the converged runs whose next GD steps cross no kink (differentiable
    # minima); it may be unchecked when every run sits on a kink, but it must never be false
    l1 = claims["lemma1_sharpness_le_2_over_eta"]
    assert l1.holds is not False and l1.covered == int((c & ~r.crossing).sum()), l1
    # tightness ratios are the Lemma 4 bound over the two sharpnesses: in (0, 1]
    for t in (r.tightness[c], r.tightness_flattest[c]):
        assert np.all((t > 0) & (t <= 1 + 1e-8))
    assert all(p.exists() for p in mnist.plot(r, tmp_path))
    assert "R_g(f)" in mnist.table(r)


def test_mnist_trend_claim_fails_without_step_size_variation(tmp_path):
    # the same step size (at the edge of stability) three times: no trend in eta exists, so the
    # step-size claim must fail
    pytest.importorskip("sklearn")
    rc = cli.main(["reproduce", "mnist", "--quick", "--dataset", "digits", "--etas", "0.6", "0.6",
                   "0.6", "0.6", "--out", str(tmp_path)])  # fmt: skip
    assert rc == 1
    claims = json.loads((tmp_path / "mnist.json").read_text())["claims"]
    assert claims["norm_decreases_with_step_size"] is False


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_reproduce_mnist_quick_default(tmp_path):
    assert cli.main(["reproduce", "mnist", "--quick", "--out", str(tmp_path)]) == 0
    js = json.loads((tmp_path / "mnist.json").read_text())
    assert sum(js["claims"].values()) >= 4 and all(js["claims"].values()), js["claim_details"]
    c = np.asarray(js["converged"])
    assert np.all(np.isfinite(np.asarray(js["flattest_sharpness"], float)[c]))


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


def test_reproduce_depth_separation_quick(tmp_path):
    assert cli.main(["reproduce", "depth-separation", "--quick", "--out", str(tmp_path)]) == 0
    js = json.loads((tmp_path / "depth_separation.json").read_text())
    assert len(js["claims"]) == 6 and all(js["claims"].values()), js["claim_details"]
    assert not js["not_checked"]
    # the budgets are minimal budgets at the accuracies asked, on networks that meet them
    for k, err in js["max_error"].items():
        assert np.all(np.asarray(err) <= np.asarray(js["accuracies"]) + 1e-7), k
    assert all((tmp_path / f).stat().st_size > 0 for f in ("depth_separation.png",))


def test_depth_separation_fails_when_the_control_is_the_bump(tmp_path):
    # both targets the bump: the two behave alike, so "the control's budget converges" must fail
    rc = cli.main(["reproduce", "depth-separation", "--quick", "--control", "l1-bump",
                   "--out", str(tmp_path)])  # fmt: skip
    assert rc == 1
    claims = json.loads((tmp_path / "depth_separation.json").read_text())["claims"]
    assert claims["control_budget_converges"] is False


def test_cli_arguments(tmp_path):
    for mod in (mnist, depth_separation):
        parser = argparse.ArgumentParser()
        mod.add_arguments(parser)
        args = parser.parse_args(["--out", str(tmp_path), "--quick"])
        assert args.quick and args.dtype == "float64"
    with pytest.raises(ValueError, match="dim"):
        depth_separation.run(depth_separation.Config.quick_config(dim=1))
    out = _run_cli("reproduce", "depth-separation", "--quick", "--accuracies", "0.1", "0.2", "0.05")
    assert out.returncode == 2 and "--accuracies" in out.stderr and "Traceback" not in out.stderr
