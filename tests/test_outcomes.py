"""Checks and verdicts: every verdict outcome on constructed per-seed results; checks over nothing."""

import json

import pytest

from minstab.experiments import outcomes as oc


def _seeds(shown):
    return [{"seed": i, "shown": s, "measure": 0.1 * i} for i, s in enumerate(shown)]


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        ([True] * 6 + [False] * 2, "reproduced"),  # 75 %: the boundary counts as reproduced
        ([True] * 5 + [False] * 3, "partly"),  # 62.5 %
        ([True] * 2 + [False] * 6, "partly"),  # 25 %: the boundary counts as partly
        ([True] * 1 + [False] * 7, "not reproduced"),  # 12.5 %
        ([False] * 8, "not reproduced"),
        ([True] * 3 + [None] * 5, "inconclusive"),  # 3 judged < 4
        ([None] * 8, "inconclusive"),
    ],
)
def test_verdict_outcomes(shown, expected):
    v = oc.verdict(_seeds(shown), statement="s", threshold="t")
    assert v.verdict == expected
    judged = [s for s in shown if s is not None]
    assert (v.seeds_shown, v.seeds, v.seeds_run) == (sum(judged), len(judged), len(shown))


def test_unjudged_seeds_leave_the_denominator():
    v = oc.verdict(_seeds([True] * 4 + [None] * 4 + [False]), statement="s", threshold="t")
    assert (v.verdict, v.seeds_shown, v.seeds) == ("reproduced", 4, 5)


def test_min_seeds_is_the_inconclusive_line():
    rows = _seeds([True, True])
    assert oc.verdict(rows, statement="s", threshold="t", min_seeds=2).verdict == "reproduced"
    assert oc.verdict(rows, statement="s", threshold="t", min_seeds=3).verdict == "inconclusive"


def test_verdict_rejects_a_seed_without_outcome():
    with pytest.raises(ValueError, match="shown"):
        oc.verdict([{"seed": 0}], statement="s", threshold="t")
    with pytest.raises(ValueError, match="shown"):
        oc.verdict([{"seed": 0, "shown": 1.0}], statement="s", threshold="t")


def test_verdicts_never_change_the_exit_status():
    v = {"x": oc.verdict(_seeds([False] * 8), statement="s", threshold="t")}
    c = {"lemma": oc.check(True, covered=3, eligible=3)}
    assert v["x"].verdict == "not reproduced" and oc.exit_status(c) == 0


def test_a_false_check_exits_1():
    c = {"ok": oc.check(True, covered=2), "bad": oc.check(False, "1 of 2", covered=2)}
    assert oc.failed(c) == ["bad"] and oc.exit_status(c) == 1
    assert "FAIL  bad" in oc.format_checks(c)


def test_a_check_over_no_run_needs_a_reason():
    with pytest.raises(ValueError, match="why_none"):
        oc.check(True, covered=0, eligible=0)
    c = oc.check(False, covered=0, eligible=0, why_none="no kinked run can exist here")
    assert c.holds is None and oc.exit_status({"c": c}) == 0
    assert "none eligible: no kinked run" in oc.format_checks({"c": c})


def test_check_rejects_more_covered_than_eligible():
    with pytest.raises(ValueError, match="covered <= eligible"):
        oc.check(True, covered=3, eligible=2)


def test_json_round_trip_with_nan_and_numpy():
    import numpy as np

    v = oc.verdict([{"seed": 0, "shown": True, "rho": np.float64("nan"), "n": np.int64(3)}],
                   statement="s", threshold="t", min_seeds=1)  # fmt: skip
    d = json.loads(json.dumps(oc.to_json({"c": oc.check(True, covered=1)}, {"v": v})))
    assert d["verdicts"]["v"]["per_seed"][0] == {"seed": 0, "shown": True, "rho": None, "n": 3}
    assert d["verdicts"]["v"]["verdict"] == "reproduced" and d["verdicts"]["v"]["fraction"] == 1.0
    assert d["checks"]["c"] == {"holds": True, "covered": 1, "eligible": 1, "detail": "",
                                "why_none": None}  # fmt: skip
    table = oc.format_verdicts({"v": v})
    assert "reproduced" in table and "1/1" in table


def test_numpy_bools_count():
    import numpy as np

    v = oc.verdict([{"seed": i, "shown": np.bool_(i < 3)} for i in range(4)], statement="s",
                   threshold="t")  # fmt: skip
    assert (v.verdict, v.seeds_shown) == ("reproduced", 3)
