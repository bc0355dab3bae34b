"""Write notebooks/data/protocol_history.json (the protocol changes, verdicts before and after).

Every protocol change of the main job and of ``minstab reproduce fig3``, its reason, and the
verdicts before and after, each number read from a committed output file (notebook 01 prints
the table).

    python scripts/protocol_history.py

Inputs (notebooks/data/): fig3_search_e74711e.jsonl and main_job_summary_e74711e.json (the
withdrawn defaults, as committed at e74711e), old_defaults_summary.json (``minstab sweep
--seeds 8 --seed-offset 0 --etas 0.05:0.4:40`` at the old cell: the old protocol judged with
issue 29's criteria), fig3_phase_diagram.json (``minstab reproduce fig3``), and
main_job_summary.json (``minstab sweep``).
"""

import json
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "notebooks" / "data"


def _load(name):
    return json.loads((DATA / name).read_text())


def _v(verdicts) -> str:
    """'edge: partly (2/7), smoother: partly (3/7)' from an outcomes JSON ``verdicts``."""
    return ", ".join(f"{k}: {v['verdict']} ({v['seeds_shown']}/{v['seeds']} judged seeds)"
                     for k, v in verdicts.items())  # fmt: skip


def main() -> None:
    """Read the committed outputs and write protocol_history.json."""
    search = [json.loads(ln) for ln in (DATA / "fig3_search_e74711e.jsonl").read_text().split("\n")
              if ln.strip()]  # fmt: skip

    def full(r):  # the setting with the search's defaults filled in (the default row counts once)
        return json.dumps({"seed": 0, **r.get("defaults", {}), **r["setting"]}, sort_keys=True)

    distinct = {full(r) for r in search}
    passing = sorted({json.dumps(r["setting"], sort_keys=True) for r in search
                      if r["all_targets_met"] and r["setting"] != {"seed": 0}})  # fmt: skip
    n_pass = len({full(r) for r in search if r["all_targets_met"]})
    old = _load("main_job_summary_e74711e.json")
    band = [r for r in old["runs"] if r["in_edge_band"]]
    clipped = np.array([r["edge_dev"] for r in band])
    rel = np.array([r["eta"] * r["sharpness"] / 2 for r in band])
    plain = np.abs(rel - 1)
    olddef = _load("old_defaults_summary.json")
    pd = _load("fig3_phase_diagram.json")
    main = _load("main_job_summary.json")
    ch = pd["chosen_cell"]
    same = [c for c in pd["cells"] if (c["width"], c["output_scale"], c["n"]) == (16, 4.0, 8)]
    cell_old_grid_new = same[0] if same else None
    chosen = [c for c in pd["cells"]
              if (c["width"], c["output_scale"], c["n"]) == (ch["width"], ch["output_scale"],
                                                             ch["n"])][0]  # fmt: skip
    changes = [
        {
            "setting": "defaults (width 16, output scale 4, n 8, seed 0, eta in [0.05, 0.4]) "
            "found by scripts/fig3_regime_search.py, whose pass criterion was 'every claim "
            "holds': withdrawn",
            "reason": "a setting searched until it passes on the seed it is judged on tells "
            "nothing (issue 29)",
            "before": f"{n_pass} distinct passing settings of {len(distinct)} distinct settings "
            f"in {len(search)} rows, all at seed 0: {', '.join(passing)}; "
            "`reproduce fig3` on seeds 0-7 exited 1",
            "after": f"the phase-diagram cell with the highest fraction of seeds 0-7 showing "
            f"both (width {ch['width']}, output scale {ch['output_scale']:g}, n {ch['n']}: "
            f"{ch['both_fraction']:.2f}), judged on seeds 8-15: {_v(main['verdicts'])}",
        },
        {
            "setting": "edge distance: 2/eta clipped into the mode interval -> plain "
            "|eta lambda/2 - 1|, lambda the sharpness at GD's final parameters",
            "reason": "clipping scores 0 whenever the interval contains 2/eta; the interval "
            "is reported beside the plain value",
            "before": f"old default, seed 0: median {np.median(clipped):.2g} over its "
            f"{len(band)} band runs ({int(np.sum(clipped == 0))} exactly 0)",
            "after": f"median {np.median(plain):.2g}; {int(np.sum(rel < 0.95))} of {len(band)} "
            "band runs end more than 5 % below 2/eta",
        },
        {
            "setting": "claims on one seed (>= 20 converged, a band of >= 10 runs over a factor "
            ">= 2, clipped median <= 0.05, Spearman <= -0.7) -> issue 29's per-seed criteria "
            "(>= 5 band runs at plain median <= 0.05; Spearman <= -0.5) over 8 seeds",
            "reason": "empirical claims are verdicts over seeds, thresholds fixed before looking",
            "before": "old default, seed 0: every claim held",
            "after": f"old default cell and grid on seeds 0-7: {_v(olddef['verdicts'])}",
        },
        {
            "setting": "step sizes: eta in [0.05, 0.4] -> eta lambda_0/2 in [0.35, 2.8] per seed "
            "(lambda_0: the seed's initial sharpness; the same range for seed 0, where "
            "2/lambda_0 = 0.144), decided before the phase diagram was run",
            "reason": "one grid for every cell and seed, not tuned per cell",
            "before": f"width 16, output scale 4, n 8, seeds 0-7: {_v(olddef['verdicts'])}",
            "after": "same cell, relative grid: "
            + (
                f"edge {cell_old_grid_new['verdicts']['edge']['verdict']}, smoother "
                f"{cell_old_grid_new['verdicts']['smoother']['verdict']} (fractions of seeds "
                f"showing edge {cell_old_grid_new['edge_fraction']:.2f}, smoother "
                f"{cell_old_grid_new['smoother_fraction']:.2f})"
                if cell_old_grid_new
                else "-"
            ),
        },
        {
            "setting": f"cell: width 16, output scale 4, n 8 -> width {ch['width']}, output "
            f"scale {ch['output_scale']:g}, n {ch['n']} (the rule above); seeds 0 -> 8-15",
            "reason": "the cell is chosen on seeds 0-7 and judged on others",
            "before": f"chosen cell on seeds 0-7: edge {chosen['verdicts']['edge']['verdict']}, "
            f"smoother {chosen['verdicts']['smoother']['verdict']}",
            "after": f"seeds 8-15: {_v(main['verdicts'])}",
        },
    ]
    out = {"changes": changes}
    (DATA / "protocol_history.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
