"""SGD mean-square stability threshold, non-uniformity and SGD simulations (THEORY §6)."""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import minstab as ms
from minstab.shallow import sgd
from minstab.shallow.sgd import (
    mean_square_trajectory,
    non_uniformity,
    sgd_stability_threshold,
    simulate_linear_sgd,
    simulate_sgd,
)
from tests.helpers import interpolating_net


@pytest.fixture(scope="module")
def net():
    """The experiment's interpolating net (n = 8, width 16): compiled programs are shared."""
    from minstab.experiments.sgd_threshold import Config, _network

    return _network(Config())


def brute(p, x, y, b, replacement):
    """Dense P^2 x P^2 reference with E[H_hat (x) H_hat] from all batches enumerated."""
    j = np.asarray(ms.jacobian(p, x))
    n, pp = j.shape
    hs = [np.outer(j[i], j[i]) for i in range(n)]
    h = sum(hs) / n
    batches = (
        list(itertools.product(range(n), repeat=b))
        if replacement
        else list(itertools.combinations(range(n), b))
    )
    e = sum(np.kron(sum(hs[i] for i in bt) / b, sum(hs[i] for i in bt) / b) for bt in batches)
    e = e / len(batches)
    eye = np.eye(pp)
    c = 0.5 * (np.kron(h, eye) + np.kron(eye, h))
    # C and E are symmetric, C PSD: lambda(C^+ E) = lambda(C^{+1/2} E C^{+1/2}). jnp (XLA) instead
    # of numpy's LAPACK, whose threads contend with XLA's on small machines.
    cv, cu = jnp.linalg.eigh(jnp.asarray(c))
    keep = cv > 1e-10 * cv[-1]
    half = (cu * jnp.where(keep, 1 / jnp.sqrt(jnp.where(keep, cv, 1)), 0)[None, :]) @ cu.T
    return 2 / float(jnp.linalg.eigvalsh(half @ jnp.asarray(e) @ half)[-1])


@pytest.mark.parametrize("b,repl", [(1, False), (2, False), (3, False), (2, True), (3, True)])
def test_threshold_matches_brute_force(getkey, b, repl):
    p, x, y = interpolating_net(getkey(), n=4, d=1, k=4)
    ref = brute(p, x, y, b, repl)
    r = sgd_stability_threshold(p, x, y, b, replacement=repl)  # iterative == dense: below
    np.testing.assert_allclose(float(r.eta_star), ref, rtol=1e-7)
    assert bool(r.converged) and float(r.fit_residual) < 1e-10


def test_full_batch_monotone_and_iterative_equals_dense(net):
    p, x, y = net
    n = x.shape[0]
    s = float(jnp.linalg.eigvalsh(ms.hessian(p, x, y))[-1])
    etas = {}
    for repl in (False, True):
        etas[repl] = []
        for b in range(1, n + 1):
            dense = sgd_stability_threshold(p, x, y, b, replacement=repl)
            for m in ("lanczos", "power"):
                it = sgd_stability_threshold(p, x, y, b, replacement=repl, method=m)
                np.testing.assert_allclose(float(it.eta_star), float(dense.eta_star), rtol=1e-8)
                assert bool(it.converged)
            etas[repl].append(float(dense.eta_star))
        e = np.array(etas[repl])
        assert np.all(np.diff(e) >= -1e-12 * e[1:]), (repl, e)  # non-decreasing in B
    # B = n without replacement is full-batch GD: eta* = 2 / sharpness
    np.testing.assert_allclose(etas[False][-1], 2 / s, rtol=1e-8)
    # B = 1 draws one index either way; with replacement is noisier for B > 1
    np.testing.assert_allclose(etas[True][0], etas[False][0], rtol=1e-10)
    assert all(a <= b * (1 + 1e-10) for a, b in zip(etas[True], etas[False], strict=True))
    assert etas[True][-1] < etas[False][-1]


def test_mean_square_rate_crosses_one_at_eta_star(net):
    p, x, y = net
    for b, repl in ((1, False), (3, False), (3, True), (8, False)):
        e = float(sgd_stability_threshold(p, x, y, b, replacement=repl).eta_star)
        lo, at, hi = (
            float(sgd.mean_square_rate(p, x, y, f * e, b, replacement=repl))
            for f in (0.95, 1.0, 1.05)
        )
        assert lo < 1 < hi and abs(at - 1) < 1e-9, (b, repl, lo, at, hi)


def _per_sample_reference(p, x, y):
    """Dense reference: P x P Hessians of every per-sample loss with jax.hessian."""
    k, d = p.w1.shape
    th = ms.flatten(p)
    x2 = x[:, None] if x.ndim == 1 else x

    def loss_i(t, xi, yi):
        r = ms.forward(ms.unflatten(t, k, d), xi[None, :])[0] - yi
        return 0.5 * r * r

    hs = np.asarray(jax.vmap(jax.hessian(loss_i), in_axes=(None, 0, 0))(th, x2, y))
    h = hs.mean(axis=0)
    np.testing.assert_allclose(h, np.asarray(ms.hessian(p, x, y)), atol=1e-10)  # H = mean H_i
    a = np.einsum("nij,njk->ik", hs, hs) / hs.shape[0] - h @ h
    return float(np.sqrt(np.linalg.eigvalsh(a)[-1]))


def test_non_uniformity_matches_dense_reference(getkey, net):
    p, x, y = net
    ref = _per_sample_reference(p, x, y)
    for m in sgd.NON_UNIFORMITY_METHODS:  # at an interpolating minimum all three agree
        r = non_uniformity(p, x, y, method=m)
        np.testing.assert_allclose(float(r.value), ref, rtol=1e-8)
        assert bool(r.converged), m
    # away from interpolation H_i has the residual term; the HVP method still matches
    q = ms.init_shallow(getkey(), 1, 16, dtype=jnp.float64)
    ref = _per_sample_reference(q, x, y)
    np.testing.assert_allclose(float(non_uniformity(q, x, y).value), ref, rtol=1e-7)


def _horizons(p, x, y, etas, bs, repl, growth=4.0):
    out = []
    for e, b in zip(etas, bs, strict=True):
        t = np.asarray(mean_square_trajectory(p, x, y, e, b, steps=64, replacement=repl))
        hit = np.flatnonzero(t >= growth)
        out.append(int(np.clip(hit[0] + 1 if hit.size else 64, 5, 64)))
    return out


def test_linear_and_real_sgd_bounded_below_grow_above(getkey, net):
    """0.9 eta* and 1.1 eta* for every B, with and without replacement, 512 seeds each."""
    from minstab.engine.train import train

    p, x, y = net
    n = x.shape[0]
    cf = [(r, f, b) for r in (False, True) for f in (0.9, 1.1) for b in range(1, n + 1)]
    es = {
        (r, b): float(sgd_stability_threshold(p, x, y, b, replacement=r).eta_star)
        for r in (False, True)
        for b in range(1, n + 1)
    }
    etas = np.array([f * es[r, b] for r, f, b in cf])
    hz = {(r, b): _horizons(p, x, y, [1.1 * es[r, b]], [b], r)[0] for r, _, b in cf}
    steps = [hz[r, b] for r, _, b in cf]
    bs, repl = [b for _, _, b in cf], [r for r, _, _ in cf]
    keys = jax.random.split(getkey(), 512)
    lin = simulate_linear_sgd(p, x, y, etas, bs, keys, steps=steps, replacement=repl)
    real = simulate_sgd(p, x, y, etas, bs, keys, steps=steps, replacement=repl)
    below = np.array([f < 1 for _, f, _ in cf])
    for r in (lin, real):
        ratio = np.asarray(r.ratio)
        assert np.all(ratio[below] < 1) and np.all(ratio[~below] > 1), ratio
        assert list(r.verdict) == ["bounded" if bl else "grows" for bl in below]
    pred = np.asarray(lin.predicted)
    assert np.all(pred[below] < 1) and np.all(pred[~below] >= 4 * (1 - 1e-9))
    # near the minimum (radius 1e-4) real SGD follows its linearization
    np.testing.assert_allclose(np.asarray(real.final), np.asarray(lin.final), rtol=1e-2)
    assert not np.any(np.asarray(real.diverged))

    # seed 0 of (1.1 eta*, B = 3) is exactly minstab.engine.train.train's SGD run, in both modes
    for rp in (False, True):
        _check_against_train(p, x, y, cf.index((rp, 1.1, 3)), etas, steps, keys, real, rp, train)


def _check_against_train(p, x, y, c, etas, steps, keys, real, repl, train):
    n = x.shape[0]
    radius = 1e-4
    th = ms.flatten(p)
    pb = jnp.asarray(sgd.batch_noise_p(n, 3, repl))
    fac = sgd._initial(ms.jacobian(p, x), pb, "critical")[0]
    z = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 0), (n,), jnp.float64))(keys)
    e0s = radius * z @ fac.T
    t = train(
        ms.unflatten(th + e0s[0], p.w1.shape[0], 1), x, y, etas[c], steps=steps[c],
        key=jax.random.fold_in(keys[0], 1), batch_size=3, replace=repl, log_sharpness="none",
        tol=1e-300,
    )  # fmt: skip
    d2 = float(jnp.sum((ms.flatten(t.params) - th) ** 2))
    mean0 = float(jnp.mean(jnp.sum(e0s**2, axis=1)))
    np.testing.assert_allclose(float(real.final[c, 0]) * mean0, d2, rtol=1e-9)


def test_input_validation(getkey):
    p, x, y = interpolating_net(getkey(), n=4, d=1, k=4)
    keys = jax.random.split(getkey(), 4)
    bad = [
        (lambda: sgd_stability_threshold(p, x, y, 0), "batch_size"),
        (lambda: sgd_stability_threshold(p, x, y, 5), "batch_size"),
        (lambda: sgd_stability_threshold(p, x, y, 2.5), "batch_size"),
        (lambda: sgd_stability_threshold(p, x, y, True), "batch_size"),
        (lambda: sgd_stability_threshold(p, x, y, 5, replacement=True), "batch_size"),
        (lambda: sgd_stability_threshold(p, x, y, 2, method="eig"), "method"),
        (lambda: sgd_stability_threshold(p, x, y[:3], 2), "y"),
        (lambda: sgd_stability_threshold(p, x.at[0].set(jnp.nan), y, 2), "x"),
        (lambda: sgd_stability_threshold(p, x[:, None, None], y, 2), "x"),
        (lambda: sgd_stability_threshold(p._replace(w2=p.w2[:2]), x, y, 2), "params.w2"),
        (lambda: sgd_stability_threshold(p, x.astype(jnp.float32), y, 2), "dtype"),
        (lambda: non_uniformity(p, x, y, method="dense"), "method"),
        (lambda: non_uniformity(p, x, y.at[1].set(jnp.inf)), "y"),
        (lambda: sgd.mean_square_rate(p, x, y, 0.0, 2), "eta"),
        (lambda: sgd.mean_square_rate(p, x, y, jnp.ones(2), 2), "eta"),
        (lambda: simulate_linear_sgd(p, x, y, -0.1, 2, keys), "eta"),
        (lambda: simulate_linear_sgd(p, x, y, jnp.nan, 2, keys), "eta"),
        (lambda: simulate_linear_sgd(p, x, y, 0.1, 0, keys), "batch_size"),
        (lambda: simulate_linear_sgd(p, x, y, 0.1, [1, 9], keys), "batch_size"),
        (lambda: simulate_linear_sgd(p, x, y, 0.1, 2, keys, steps=0), "steps"),
        (lambda: simulate_linear_sgd(p, x, y, 0.1, 2, jnp.zeros(3)), "keys"),
        (lambda: simulate_linear_sgd(p, x, y, 0.1, 2, keys, init="x"), "init"),
        (lambda: simulate_sgd(p, x, y, jnp.ones(3) * 0.1, [1, 2], keys), "common length"),
        (lambda: simulate_sgd(p, x, y, 0.1, 2, keys, radius=0.0), "radius"),
        (lambda: ms.batch_noise_p(4, 7), "batch_size"),
    ]
    for f, name in bad:
        with pytest.raises(ValueError, match=name):
            f()
    assert ms.batch_noise_p(4, 4) == 0.0 and ms.batch_noise_p(4, 1) == 1.0
    assert ms.batch_noise_p(4, 2, replacement=True) == 0.5


def test_reproduce_quick(tmp_path):
    """``minstab reproduce sgd-threshold --quick``: files, checks and verdicts in its JSON."""
    from minstab import cli

    assert (
        cli.main(["reproduce", "sgd-threshold", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    )
    for f in ("sgd_threshold.png", "sgd_threshold.pdf", "sgd_sweep.png", "sgd_sweep.pdf"):
        assert (tmp_path / f).stat().st_size > 0
    r = json.loads((tmp_path / "sgd_threshold.json").read_text())
    es, er = np.array(r["eta_star"]), np.array(r["eta_star_replacement"])
    np.testing.assert_allclose(es[-1], r["gd_limit"], rtol=1e-8)
    np.testing.assert_allclose(2 / r["sharpness"], r["gd_limit"], rtol=1e-12)
    assert np.all(np.diff(es) >= 0) and np.all(np.diff(er) >= -1e-12 * er[1:])
    for mode in ("without", "with"):
        s = r["sims"][mode]["linear"]
        assert max(s["below"]) < 1 < min(s["above"]), (mode, s)
    sw = r["sweep"]
    assert set(sw) == {"1", "2", str(len(es))}
    n = len(es)
    for b, s in sw.items():
        e = np.array(s["etas"])
        conv = np.array([st == "converged" for st in s["status"]])
        sharp = np.array(s["sharpness"], dtype=float)
        if int(b) == n:  # GD, Lemma 1
            assert np.all(sharp[conv] <= 2 / e[conv] * (1 + 1e-3))
    assert len(r["checks"]) == 7 and all(c["holds"] for c in r["checks"].values()), r["checks"]
    v = r["verdicts"]
    assert len(v["real_sgd_follows_threshold"]["per_seed"]) == 2 * n
    assert len(v["sweep_returns_below_threshold"]["per_seed"]) == 3


def test_reproduce_fails_when_the_above_factor_is_stable(tmp_path):
    """Simulating at 0.95 eta* instead of 1.1 eta*: linearized SGD is mean-square stable there,
    so the check that its second moment grows above the threshold is false: exit 1."""
    from minstab import cli

    argv = ["reproduce", "sgd-threshold", "--quick", "--quiet", "--out", str(tmp_path),
            "--factors", "0.9,0.95", "--sweep-batch-sizes", "8"]  # fmt: skip
    assert cli.main(argv) == 1
    checks = json.loads((tmp_path / "sgd_threshold.json").read_text())["checks"]
    assert checks["linear_sgd_bounded_below_grows_above"]["holds"] is False


def _sgd_result(real_below, real_above, back=(True, True, True), **over):
    from minstab.experiments import sgd_threshold as ex

    n = len(real_below)
    es = list(np.linspace(0.02, 0.08, n))
    sims = {m: {"linear": {"below": [0.5] * n, "above": [2.0] * n},
                "real": {"below": list(real_below), "above": list(real_above)}}
            for m in ("without", "with")}  # fmt: skip
    sweep = {}
    keys = sorted({1, min(2, n), n})
    for b, ok in zip(keys, back[: len(keys)], strict=True):
        sweep[str(b)] = dict(etas=[0.5 * es[b - 1], 2 * es[b - 1]],
                             status=["converged" if ok else "not converged", "diverged"],
                             sharpness=[25.0, float("nan")], eta_star_start=es[b - 1])  # fmt: skip
    kw = dict(batch_sizes=list(range(1, n + 1)), eta_star=es, eta_star_replacement=es,
              gd_limit=es[-1], sharpness=2 / es[-1], non_uniformity=3.0,
              non_uniformity_gram=3.0, wme=[], horizon={}, sims=sims, sweep=sweep,
              config={"factors": (0.9, 1.1), "seed": 0}, wall_time=0.0)  # fmt: skip
    kw.update(over)
    return ex.Result(**kw)


def test_sgd_verdicts_every_outcome():
    from minstab.experiments import sgd_threshold as ex

    def real(below, above):
        return ex.verdicts(_sgd_result(below, above))["real_sgd_follows_threshold"].verdict

    assert real([0.5] * 4, [2.0] * 4) == "reproduced"
    assert real([0.5, 0.5, 1.5, 1.5], [2.0] * 4) == "partly"
    assert real([1.5] * 4, [2.0, 0.5, 0.5, 0.5]) == "not reproduced"
    v = ex.verdicts(_sgd_result([0.5] * 4, [2.0] * 4, back=(True, False, False)))
    assert v["sweep_returns_below_threshold"].verdict == "partly"
    v = ex.verdicts(_sgd_result([0.5] * 4, [2.0] * 4, back=(False, False, False)))
    assert v["sweep_returns_below_threshold"].verdict == "not reproduced"
    none = _sgd_result([0.5] * 4, [2.0] * 4)
    for sw in none.sweep.values():  # no run below 0.95 eta*(B): no batch size can be judged
        sw["etas"] = [2 * sw["eta_star_start"]] * 2
    assert ex.verdicts(none)["sweep_returns_below_threshold"].verdict == "inconclusive"
    one = _sgd_result([0.5], [2.0])  # n = 1: 2 configurations, fewer than the minimum of 4
    assert ex.verdicts(one)["real_sgd_follows_threshold"].verdict == "inconclusive"


def test_sgd_checks_hold_and_each_can_fail():
    from minstab.experiments import sgd_threshold as ex

    ok = _sgd_result([0.5] * 4, [2.0] * 4)
    assert all(c.holds for c in ex.checks(ok).values()), ex.checks(ok)
    es = ok.eta_star
    bad = {
        "eta_star_at_n_is_2_over_sharpness": dict(gd_limit=1.01 * es[-1]),
        "eta_star_nondecreasing_in_B": dict(eta_star=es[::-1]),
        "eta_star_replacement_nondecreasing_in_B": dict(eta_star_replacement=es[::-1]),
        "replacement_le_without": dict(eta_star_replacement=[1.1 * e for e in es]),
        "non_uniformity_hvp_matches_gram": dict(non_uniformity=3.1),
        "linear_sgd_bounded_below_grows_above": dict(sims={
            m: {"linear": {"below": [0.5] * 4, "above": [0.9] * 4}} for m in ("without", "with")
        }),
        "sweep_gd_converged_sharpness_le_2_over_eta": dict(sharpness=2 / es[-1], sweep={
            "4": dict(etas=[0.1], status=["converged"], sharpness=[25.0], eta_star_start=es[-1])
        }),
    }  # fmt: skip
    for name, over in bad.items():
        assert ex.checks(ok._replace(**over))[name].holds is False, name


def test_reproduce_bad_flags_exit_2(tmp_path, capsys):
    from minstab import cli

    (tmp_path / "file").write_text("x")
    for flags, name in ((["--factors", "1.1,0.9"], "--factors"),
                        (["--factors", "0,1"], "--factors"), (["--factors", "0.9"], "--factors"),
                        (["--n", "1"], "--n"), (["--n", "20", "--width", "5"], "--width"),
                        (["--width", "0"], "--width"), (["--seeds", "0"], "--seeds"),
                        (["--sweep-batch-sizes", "0"], "--sweep-batch-sizes"),
                        (["--sweep-batch-sizes", "9"], "--sweep-batch-sizes"),
                        (["--seed", "-1"], "--seed"),
                        (["--out", str(tmp_path / "file")], "--out")):  # fmt: skip
        code = None
        try:
            code = cli.main(["reproduce", "sgd-threshold", "--quick", *flags])
        except SystemExit as e:  # argparse's own errors
            code = e.code
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and name in err, (flags, err)
        assert "Traceback" not in err
