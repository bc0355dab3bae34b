"""`minstab reproduce eos`: the edge-of-stability picture on Fashion-MNIST, judged per run over seeds."""

import json

import numpy as np
import pytest

from minstab import cli
from minstab.experiments import eos


@pytest.mark.run_bound
def test_reproduce_eos_quick(tmp_path, monkeypatch):
    assert cli.main(["reproduce", "eos", "--quick", "--out", str(tmp_path)]) == 0
    for name in ("eos.png", "eos.pdf", "eos.json"):
        assert (tmp_path / name).stat().st_size > 0
    res = json.loads((tmp_path / "eos.json").read_text())
    assert res["checks"] == {} and "claims" not in res
    v = res["verdicts"]["hovers_at_edge"]
    assert v["seeds_run"] == 4 and [(r["seed"], r["eta"]) for r in v["per_seed"]] == [
        (0, 0.2), (0, 0.3), (1, 0.2), (1, 0.3)]  # fmt: skip
    assert v["verdict"] in ("reproduced", "partly", "not reproduced", "inconclusive")
    # the verdict's fractions are the summary's, and the two seeds start from different points
    assert [r["fraction_in_band"] for r in v["per_seed"]] == [s["in_band"] for s in res["summary"]]
    assert res["runs"][0]["sharpness"][0] != res["runs"][2]["sharpness"][0]
    for run in res["runs"]:
        assert run["step"][0] == 0 and np.all(np.diff(run["step"]) == res["config"]["log_every"])
    # a rerun resumes every (seed, eta) from runs/seed_S/ and reports the same numbers
    first = res["summary"]

    def boom(*a, **k):
        raise AssertionError("a stored run was trained again")

    monkeypatch.setattr(eos, "_train_one", boom)
    assert cli.main(["reproduce", "eos", "--quick", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "eos.json").read_text())["summary"] == first


def _run(eta, sharpness, loss=None, seed=0, diverged=False):
    n = len(sharpness)
    loss = np.linspace(1, 0.1, n) if loss is None else loss
    return eos.Run(eta, seed, np.arange(n) * 10, np.asarray(loss, float),
                   np.asarray(sharpness, float), diverged, 0.0)  # fmt: skip


def _verdicts(*runs):
    etas = tuple(sorted({r.eta for r in runs}))
    res = eos.Result(eos.Config.quick(etas=etas), list(runs), {}, 0.0)
    return eos.verdicts(res)


RISE = np.linspace(4, 9.5, 10)  # 2/eta = 10 at eta = 0.2: reaches 0.9 x 2/eta at the 10th log
HOVER = np.r_[RISE, 10 + 0.5 * np.sin(np.arange(30))]  # all 31 values after the reach in band
FALLS = np.r_[RISE, np.full(30, 3.0)]  # reaches the edge, then falls to a third of it
OVERSHOOT = np.r_[RISE, np.full(30, 11.5)]  # hovers at 1.15 x 2/eta: outside [0.9, 1.1]
NEVER = np.linspace(4, 8.5, 40)  # never reaches 9 = 0.9 x 2/eta


def test_hovers_per_run():
    c = eos.Config.quick()
    s = [eos.summarize_run(_run(0.2, t), c) for t in (HOVER, FALLS, OVERSHOOT, NEVER)]
    assert [eos.hovers(r, c)["shown"] for r in s] == [True, False, False, None]
    assert s[0].in_band == 1.0 and s[1].in_band == pytest.approx(1 / 31)
    # 70 % is the threshold: 22 of 31 values in band shows it, 21 does not
    edge = np.r_[RISE, np.full(21, 10.0), np.full(9, 13.0)]
    assert eos.hovers(eos.summarize_run(_run(0.2, edge), c), c)["shown"] is True
    edge = np.r_[RISE, np.full(20, 10.0), np.full(10, 13.0)]
    assert eos.hovers(eos.summarize_run(_run(0.2, edge), c), c)["shown"] is False


@pytest.mark.parametrize(
    "traces, label",
    [
        ([HOVER] * 4, "reproduced"),
        ([HOVER, HOVER, FALLS, OVERSHOOT], "partly"),
        ([FALLS, OVERSHOOT, FALLS, HOVER], "partly"),  # 1 of 4 = 25 %
        ([FALLS, OVERSHOOT, FALLS, OVERSHOOT], "not reproduced"),
        ([HOVER, HOVER, HOVER, NEVER], "inconclusive"),  # 3 judged runs, 4 needed
    ],
)
def test_hovers_verdict_outcomes(traces, label):
    runs = [_run(0.2, t, seed=i) for i, t in enumerate(traces)]
    assert _verdicts(*runs)["hovers_at_edge"].verdict == label


@pytest.mark.parametrize(
    "traces, label",
    [
        ([HOVER] * 4, "reproduced"),
        ([HOVER, HOVER, NEVER, NEVER], "partly"),
        ([NEVER] * 4, "not reproduced"),
        # a run starting at the edge (initial sharpness 9.5 > 10 / 1.1) is not eligible
        ([HOVER, HOVER, HOVER, np.full(40, 9.5)], "inconclusive"),
    ],
)
def test_progressive_sharpening_verdict_outcomes(traces, label):
    runs = [_run(0.2, t, seed=i) for i, t in enumerate(traces)]
    assert _verdicts(*runs)["progressive_sharpening"].verdict == label


def test_a_diverged_run_neither_hovers_nor_sharpens():
    c = eos.Config.quick()
    r = eos.summarize_run(_run(0.2, HOVER, diverged=True), c)
    assert eos.hovers(r, c)["shown"] is None and eos.sharpens(r)["shown"] is False


def test_describe_states_the_verdicts():
    res = eos.Result(eos.Config.quick(etas=(0.2,)), [_run(0.2, HOVER, seed=s) for s in range(4)],
                     {"num_params": 10, "n": 5, "dtype": "float32"}, 0.0)  # fmt: skip
    text = eos.describe(res)
    assert "hovers_at_edge: reproduced (4 of 4 judged runs)" in text
    assert "100 % of the logged values lie in [0.9, 1.1]" in text


@pytest.mark.parametrize(
    "flags, word",
    [(["--steps", "0"], "--steps"), (["--etas", "0.1,-1"], "--etas"),
     (["--log-every", "900"], "--log-every"), (["--log-every", "0"], "--log-every"), (["--n", "70000"], "--n"),
     (["--dtype", "float16"], "--dtype"), (["--seed", "-1"], "--seed"),
     (["--seeds", "0"], "--seeds"), (["--hidden", "0"], "--hidden")],
)  # fmt: skip
def test_bad_flags_exit_2(flags, word, capsys, monkeypatch):
    monkeypatch.setattr(eos, "_train_one", None)  # never reached
    with pytest.raises(SystemExit) as e:
        rc = cli.main(["reproduce", "eos", "--quick", *flags])
        raise SystemExit(rc)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0], err


def test_out_is_an_existing_file_exits_2(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SystemExit) as e:
        raise SystemExit(cli.main(["reproduce", "eos", "--quick", "--out", str(f)]))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0], err
