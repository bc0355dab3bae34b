"""`minstab reproduce central-flow`: the measures on synthetic traces, outcomes, command line."""

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from minstab import cli
from minstab.engine.central_flow import FlowResult
from minstab.experiments import base
from minstab.experiments import central_flow as exp


def test_window_and_onset():
    t = np.arange(0, 1000, 5)
    eig = np.where(t >= 400, 19.5, 10.0)[:, None]
    on = exp.onset_step(t, eig, 0.1, 1.9)
    assert on == 400
    w = exp.window(on, 1000, 50.0)
    assert w[0] == 500 and w[-1] == 899
    assert exp.window(None, 1000, 50.0).size == 0
    assert exp.window(on, 1000, 50.0, trim_end=False)[-1] == 999


def _flow(loss, pred, mu, eta, k=2):
    steps = loss.shape[0]
    eig = np.stack([mu / eta, 0.5 * mu / eta], axis=1)
    return FlowResult(None, np.arange(steps), loss, pred, eig, eig[:, 0],
                      np.zeros((steps, k, k)), np.zeros(steps), np.ones(steps, bool),
                      np.zeros(steps), np.zeros(steps), np.full(steps, 10), np.full(steps, 12),
                      np.full(steps, 4), eta)  # fmt: skip


def _record(seed, *, err):
    """GD with a period-2 oscillation on a decaying loss; a flow predicting it to ``err``."""
    steps, eta = 1000, 0.1
    t = np.arange(steps)
    base = np.exp(-t / 500)
    gd = base * (1 + 0.2 * (-1) ** t)
    sm = gaussian_filter1d(gd, 50.0, mode="nearest")
    mu = np.minimum(2.0, 1.0 + t / 310)
    cf = _flow(base, sm * (1 + err), mu, eta)
    sf = _flow(base, base, 1.0 + t / 310, eta)
    gd_eig = (np.minimum(2.1, 1.0 + t / 310) / eta)[::5, None]
    return exp.RunRecord("swish", seed, eta, gd, t[::5], gd_eig, cf, sf, {},
                         {"gd": 0.0, "central_flow": 0.0, "stable_flow": 0.0})  # fmt: skip


def test_outcomes_measure_what_they_say():
    cfg = exp.Config(seeds=(0, 1, 2, 3))
    recs = [_record(0, err=0.01), _record(1, err=0.02), _record(2, err=0.3), _record(3, err=0.0)]
    result = exp.Result(cfg, recs, 0.0)
    checks, verdicts = exp.outcomes(result)
    rows = result.rows
    assert rows[0]["onset_step"] == 280  # first 5-step log with 1 + t/310 >= 1.9 (t >= 279)
    assert rows[0]["pred_err_median"] == pytest.approx(0.01, rel=1e-9)
    assert rows[2]["pred_err_max"] == pytest.approx(0.3, rel=1e-9)
    v = verdicts["prediction[swish]"]
    assert (v.seeds_shown, v.seeds) == (3, 4) and v.verdict == "reproduced"
    assert verdicts["flow_at_edge[swish]"].seeds_shown == 4
    # gradient flow's eta lambda passes 2.02, but its loss is GD's average here: not both bounds
    gf = verdicts["gradient_flow_leaves[swish]"]
    assert gf.seeds_shown == 0 and all(r["sf_mu1_max"] > 2.02 for r in gf.per_seed)
    assert all(c.holds for c in checks.values())


def test_bad_parts_exits_2(capsys):
    rc = cli.main(["reproduce", "central-flow", "--parts", "xz", "--quick"])
    assert rc == 2
    assert "--parts" in capsys.readouterr().err


@pytest.mark.paper
def test_reproduce_quick(tmp_path):
    assert cli.main(["reproduce", "central-flow", "--quick", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "central_flow.json").read_text())
    assert set(res) >= {"checks", "verdicts", "runs", "traces"}


def test_authors_draw_is_the_flax_notebooks():
    """keys="nnx": the arrays of the authors' notebook (flax nnx.Rngs(seed), nnx.Linear).

    The notebook runs without x64, where ``rngs.normal`` draws float32: asked for here.
    """
    nnx = pytest.importorskip("flax.nnx")
    import jax

    f32 = jax.numpy.float32
    cfg = exp.Config()
    for seed in (0, 5):
        rngs = nnx.Rngs(seed)
        n, d, m = cfg.n, cfg.d, cfg.width
        x = rngs.normal((n, d), dtype=f32)
        y = rngs.normal((n,), dtype=f32)
        layers = [nnx.Linear(d, m, rngs=rngs), nnx.Linear(m, m, rngs=rngs),
                  nnx.Linear(m, 1, rngs=rngs)]  # fmt: skip
        p = sum(a.size for lay in layers for a in (lay.kernel[...], lay.bias[...]))
        u0 = rngs.normal((p, cfg.k), dtype=f32)
        params, x2, y2 = exp.authors_problem(cfg, seed, dtype="float32")
        np.testing.assert_array_equal(x2, x)
        np.testing.assert_array_equal(y2, y)
        np.testing.assert_array_equal(exp.authors_u0(cfg, seed, dtype="float32"), u0)
        for (w, b), lay in zip(params, layers, strict=True):
            np.testing.assert_array_equal(w, lay.kernel[...])
            np.testing.assert_array_equal(b, lay.bias[...])
        assert x2.dtype == f32
        # cast to float64 (the default) the values stay the same
        np.testing.assert_array_equal(exp.authors_problem(cfg, seed)[1], x)
    v1 = exp.Config(protocol=exp.PROTOCOL_V1)
    assert exp.authors_u0(v1, 0) is None and exp.authors_problem(v1, 0)[1].dtype == np.float64


def test_protocol_options_are_checked():
    with pytest.raises(ValueError, match="gd_eig_at"):
        exp.Protocol(gd_eig_at="mid")
    with pytest.raises(ValueError, match="keys"):
        exp.Protocol(keys="torch")
    args = cli.build_parser().parse_args(["reproduce", "central-flow", "--protocol", "v1"])
    assert base.config_from_args(exp, args).protocol == exp.PROTOCOL_V1
    assert exp.Config(protocol="v1").protocol == exp.PROTOCOL_V1
    assert str(exp.PROTOCOL_V1) == "v1" and str(exp.Protocol()) == "authors"
    with pytest.raises(ValueError, match="^protocol: expected one of"):
        exp.Config(protocol="torch")


@pytest.mark.parametrize(
    "argv, expected",
    [([], dict(seeds=tuple(range(8)), toy_seeds=(0, 1, 2, 3), fm_seeds=(0, 1), activations=3)),
     (["--seeds", "3"], dict(seeds=(0, 1, 2), toy_seeds=(0, 1, 2))),
     (["--fm-seeds", "0"], dict(fm_seeds=())), (["--fm-seeds", "3"], dict(fm_seeds=(0, 1, 2))),
     (["--parts", "b"], dict(activations=0, toy_seeds=(), fm_seeds=(0, 1))),
     (["--parts", "ac", "--quick", "--seeds", "2"],
      dict(seeds=(0, 1), toy_seeds=(0, 1), fm_seeds=(), activations=1))],
)  # fmt: skip
def test_flags_set_the_seeds_and_parts_as_before(argv, expected, monkeypatch):
    """``--seeds N`` runs seeds 0..N-1 of (a) and (c); ``--parts`` leaves parts out."""
    monkeypatch.delenv("MINSTAB_QUICK", raising=False)
    args = cli.build_parser().parse_args(["reproduce", "central-flow", *argv])
    cfg = base.config_from_args(exp, args)
    for name, value in expected.items():
        got = getattr(cfg, name)
        assert (len(got) if isinstance(value, int) else got) == value, name


def test_bad_protocol_exits_2(capsys):
    with pytest.raises(SystemExit) as e:  # argparse's own error, while it reads the flag
        cli.main(["reproduce", "central-flow", "--protocol", "torch", "--quick"])
    assert e.value.code == 2
    assert "--protocol" in capsys.readouterr().err
