"""`minstab reproduce fig3 --quick`: one cell of the phase diagram, its fractions, checks over
every run recomputed from the cell's rows, heatmaps, and resuming from finished cells."""

import contextlib
import io
import json

import numpy as np
import pytest

from minstab import cli
from minstab.experiments import fig3, sweep_1d


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("fig3")
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        rc = cli.main(["reproduce", "fig3", "--quick", "--quiet", "--out", str(out)])
    return rc, out, json.loads((out / "phase_diagram.json").read_text()), text.getvalue()


def test_writes_heatmaps_cells_and_sentence(quick):
    rc, out, data, text = quick
    assert rc == 0, data["checks"]
    for ext in ("png", "pdf"):
        assert (out / f"fig3_phase_diagram.{ext}").stat().st_size > 5_000
    q = fig3.Config.quick()
    assert len(data["cells"]) == len(q.cells()) == 1
    c = data["cells"][0]
    assert (c["width"], c["output_scale"], c["n"]) == q.cells()[0]
    assert set(c["verdicts"]) == {"edge", "smoother"}
    assert data["sentence"] in " ".join(text.split()) or data["sentence"][:60] in text
    assert data["chosen_cell"]["width"] == c["width"]


def test_fractions_and_checks_from_the_cell_rows(quick):
    """Fractions of seeds showing edge / smoother / both, and the theorem checks, recomputed
    from cells/<cell>/cell.json (rows of every run)."""
    _, out, data, _ = quick
    c = data["cells"][0]
    cell = json.loads((out / "cells" / fig3.cell_name(c["width"], c["output_scale"], c["n"])
                       / "cell.json").read_text())  # fmt: skip
    stats = sweep_1d.per_seed_stats(cell["rows"])
    assert len(stats) == c["seeds"] == 4
    for key in ("edge", "smoother", "both"):
        assert c[f"{key}_fraction"] == sum(s[key] is True for s in stats) / 4
    conv = np.array([r["status"] == "converged" for r in cell["rows"]])
    chk = data["checks"]
    assert chk["lemma4_order"]["covered"] == conv.sum()
    kinked = conv & ~np.array([r["twice_differentiable"] for r in cell["rows"]])
    assert chk["lemma2_kinked"]["covered"] == kinked.sum()
    for name, v in chk.items():
        assert v["holds"] is not False and (v["covered"] > 0 or v["why_none"]), name


def test_resumes_from_finished_cells(quick, monkeypatch):
    """A second run loads the cell; a cell written with another protocol is recomputed."""
    _, out, data, _ = quick
    q = fig3.Config.quick()

    def no_training(cfg, out_dir=None):
        raise AssertionError(f"cell {out_dir} recomputed")

    monkeypatch.setattr(fig3, "run_cell", no_training)
    res = fig3.run(q, out_dir=out)
    assert res.cells[0]["both_fraction"] == data["cells"][0]["both_fraction"]
    path = out / "cells" / fig3.cell_name(*q.cells()[0]) / "cell.json"
    assert fig3._load_cell(path, q.cell_config(*q.cells()[0])) is not None
    other = fig3.Config.quick(steps=50_000)
    assert fig3._load_cell(path, other.cell_config(*other.cells()[0])) is None
