"""`minstab reproduce eos`: the edge-of-stability picture on Fashion-MNIST, and claims that can fail."""

import json

import numpy as np
import pytest

from minstab import cli
from minstab.experiments import eos


@pytest.mark.run_bound
def test_reproduce_eos_quick(tmp_path):
    assert cli.main(["reproduce", "eos", "--quick", "--out", str(tmp_path)]) == 0
    for name in ("eos.png", "eos.pdf", "eos.json"):
        assert (tmp_path / name).stat().st_size > 0
    res = json.loads((tmp_path / "eos.json").read_text())
    assert res["claims"] and all(res["claims"].values()), res["claim_details"]
    assert not res["not_checked"], res["not_checked"]
    for run, s in zip(res["runs"], res["summary"], strict=True):
        sharp, edge = np.asarray(run["sharpness"]), 2 / run["eta"]
        # progressive sharpening from below the edge, then the sharpness stays near 2/eta
        assert sharp[0] < 0.75 * edge
        assert abs(s["final_sharpness"] / edge - 1) < 0.2
        assert run["step"][0] == 0 and np.all(np.diff(run["step"]) == res["config"]["log_every"])
    # a rerun resumes every step size from runs/ and reports the same numbers
    first = res["summary"]
    assert cli.main(["reproduce", "eos", "--quick", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "eos.json").read_text())["summary"] == first


def test_reproduce_eos_too_few_steps_exits_1(tmp_path):
    """100 steps: the sharpness cannot rise to 2/eta, so progressive sharpening is false."""
    argv = [
        "reproduce",
        "eos",
        "--quick",
        "--steps",
        "100",
        "--etas",
        "0.2",
        "--out",
        str(tmp_path),
    ]
    assert cli.main(argv) == 1
    res = json.loads((tmp_path / "eos.json").read_text())
    assert res["claims"]["progressive_sharpening"] is False
    # the claims about runs at the edge covered no run, and say so
    assert "hovers_at_edge" in res["not_checked"]


def _run(eta, sharpness, loss):
    n = len(sharpness)
    return eos.Run(eta, np.arange(n) * 10, np.asarray(loss, float), np.asarray(sharpness, float),
                   False, 0.0)  # fmt: skip


def _claims(*runs):
    res = eos.Result(eos.Config.quick(etas=tuple(r.eta for r in runs)), list(runs), {}, 0.0)
    return eos.check(res)


def test_claims_hold_on_an_eos_trace():
    rise = np.linspace(4, 9.5, 10)
    hover = 10 + 0.5 * np.sin(np.arange(30))
    loss = np.concatenate(
        [np.linspace(1, 0.3, 10), 0.3 - 0.005 * np.arange(30) + 0.01 * (np.arange(30) % 2)]
    )
    c = _claims(_run(0.2, np.concatenate([rise, hover]), loss))
    assert all(v.holds for k, v in c.items() if k != "sharpness_follows_eta")
    assert c["sharpness_follows_eta"].holds is None  # one run: nothing to order


@pytest.mark.parametrize(
    "name, sharpness, loss",
    [
        # never reaches 0.9 x 2/eta = 9
        ("progressive_sharpening", np.linspace(4, 8.5, 40), np.linspace(1, 0.1, 40)),
        # reaches the edge, then falls back to a third of it (stable, not at the edge)
        ("hovers_at_edge", np.r_[np.linspace(4, 10, 10), np.full(30, 3.0)],
         np.r_[np.linspace(1, 0.3, 10), 0.3 + 0.01 * (np.arange(30) % 2)]),
        # at the edge, but the loss rises overall
        ("loss_keeps_falling", np.r_[np.linspace(4, 10, 10), np.full(30, 10.0)],
         np.r_[np.linspace(1, 0.3, 10), np.linspace(0.3, 0.6, 30)]),
        # at the edge with a monotone loss
        ("loss_non_monotone", np.r_[np.linspace(4, 10, 10), np.full(30, 10.0)],
         np.linspace(1, 0.1, 40)),
    ],
)  # fmt: skip
def test_each_claim_can_fail(name, sharpness, loss):
    c = _claims(_run(0.2, sharpness, loss))
    assert c[name].holds is False, c[name]


def test_sharpness_must_fall_as_eta_grows():
    up = np.r_[np.linspace(4, 10, 10), np.full(30, 10.0)]
    loss = np.r_[np.linspace(1, 0.3, 10), 0.3 - 0.005 * np.arange(30) + 0.01 * (np.arange(30) % 2)]
    ok = _claims(_run(0.2, up, loss), _run(0.25, up * 0.8, loss))
    assert ok["sharpness_follows_eta"].holds is True
    bad = _claims(_run(0.2, up, loss), _run(0.19, up * 0.98, loss))  # smaller eta, lower end
    assert bad["sharpness_follows_eta"].holds is False


@pytest.mark.parametrize(
    "flags, word",
    [(["--steps", "0"], "--steps"), (["--etas", "0.1,-1"], "--etas"),
     (["--log-every", "900"], "--log-every"), (["--n", "70000"], "--n"),
     (["--dtype", "float16"], "--dtype")],
)  # fmt: skip
def test_bad_flags_exit_2(flags, word, capsys):
    with pytest.raises(SystemExit) as e:
        rc = cli.main(["reproduce", "eos", "--quick", *flags])
        raise SystemExit(rc)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0], err
