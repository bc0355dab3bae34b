import json

import pytest

from minstab import cli


@pytest.mark.run_bound  # 1.9 s at XLA's default optimization, 4.3 s at the suite's level 0
def test_reproduce_fig1(tmp_path):
    assert cli.main(["reproduce", "fig1", "--quick", "--out", str(tmp_path)]) == 0
    for name in ("fig1.png", "fig1.pdf", "fig1.json"):
        assert (tmp_path / name).stat().st_size > 0
    res = json.loads((tmp_path / "fig1.json").read_text())
    a, b = res["runs"]["A"], res["runs"]["B"]
    assert res["claims"] and all(res["claims"].values()), res["claim_details"]
    assert a["converged"] and b["converged"]
    # Theorem 1 in action: the 3x step ends at a smaller weighted curvature...
    assert b["weighted_curvature"] < a["weighted_curvature"]
    # ...and at a minimum flat enough for it (Lemma 1), which A's minimum is not.
    assert b["sharpness"] <= b["two_over_eta_final"] < a["sharpness"] <= a["two_over_eta_final"]
    # the switch makes the loss jump (the spike of seed 004 Fig. 1a)
    trace = b["loss_trace"]
    assert max(trace[len(trace) // 20 :]) > 100 * min(t for t in trace if t > 0)


def test_reproduce_fig1_a_false_claim_exits_1(tmp_path):
    """Factor 1: run B is run A, so 'the larger step ends smoother' is false: exit 1."""
    rc = cli.main(["reproduce", "fig1", "--factor", "1", "--out", str(tmp_path)])
    assert rc == 1
    res = json.loads((tmp_path / "fig1.json").read_text())
    assert res["claims"]["larger_step_ends_smoother"] is False
