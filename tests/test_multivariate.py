"""Seed 000 claims on quick-size experiments: Lemma 4 bound on converged runs, depth separation."""

import dataclasses

import numpy as np
import pytest

from minstab.experiments import depth_separation, mnist


@pytest.fixture(scope="module")
def digits_result():
    pytest.importorskip("sklearn")
    return mnist.run(dataclasses.replace(mnist.Config.quick(), dataset="digits"))


def test_bounds_hold_on_every_converged_run(digits_result, tmp_path):
    r = digits_result
    c = r.converged
    assert np.any(c), "no run converged at quick size"
    # Lemma 4 (multivariate): 1 + 2 ||Delta f||_{L1(g)} <= lambda_max; Lemma 1: lambda_max <= 2/eta
    assert np.all(r.bound[c] <= r.sharpness[c] * (1 + 1e-8))
    assert np.all(r.sharpness[c] <= r.two_over_eta[c] * (1 + 1e-6))
    fl = r.flattest[c]
    ok = np.isfinite(fl)
    assert np.all(r.bound[c][ok] <= fl[ok] * (1 + 1e-6))
    assert np.all(fl[ok] <= r.sharpness[c][ok] * (1 + 1e-6))
    assert np.all((r.tightness[c] > 0) & (r.tightness[c] <= 1 + 1e-8))
    paths = mnist.plot(r, tmp_path)
    assert all(p.exists() for p in paths)
    assert "converged" in mnist.table(r)


@pytest.fixture(scope="module")
def depth_result():
    return depth_separation.run(depth_separation.Config.quick())


def test_depth_separation_claims(depth_result, tmp_path):
    r = depth_result
    # the deep net fits the bump exactly with a finite sharpness below 2/eta at the chosen eta
    assert r.deep_error < 1e-12
    assert np.isfinite(r.deep_sharpness) and r.deep_sharpness > 0
    assert r.deep_sharpness < 2 / r.deep_eta
    assert r.deep_sharpness_lanczos == pytest.approx(r.deep_sharpness, rel=1e-6)
    # shallow fits of the bump: better training fit needs a larger budget 1/eta - 1/2
    b, e = r.budget["l1-bump"], r.train_error["l1-bump"]
    assert e[-1] < e[0]
    assert b[-1] > b[0]
    paths = depth_separation.plot(r, tmp_path)
    assert all(p.exists() for p in paths)


def test_cli_arguments(tmp_path):
    import argparse

    for mod in (mnist, depth_separation):
        parser = argparse.ArgumentParser()
        mod.add_arguments(parser)
        args = parser.parse_args(["--out", str(tmp_path), "--quick"])
        assert args.quick and args.dtype == "float64"
    with pytest.raises(ValueError, match="dim"):
        depth_separation.run(depth_separation.Config.quick(dim=1))
