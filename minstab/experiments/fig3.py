"""Seed 004 Fig. 3's protocol as a phase diagram: where does GD visibly reach the edge of
stability and find smoother functions as eta grows?

Every cell is the main job's protocol (:mod:`minstab.experiments.sweep_1d`: one shared random
initialization per seed, GD with ``num_etas`` step sizes eta lambda_0/2 geometric in [0.35,
2.8], lambda_0 the seed's initial sharpness) at one (width, output-layer init scale, n), with
the first-layer init scale fixed at 1.0, on seeds 0-7. The full diagram is width in {16, 64,
256} x output scale in {0.25, 1, 4} x n in {8, 16}: 18 cells x 8 seeds x 40 step sizes.

Per seed the two criteria of issue 29 (fixed, see :mod:`sweep_1d`): *edge* (>= 5 converged
runs with 2/eta below the sharpness at the smallest eta, median plain |eta lambda/2 - 1| <=
0.05) and *smoother* (Spearman(eta, int|f''|g) <= -0.5). Per cell: the fraction of seeds run
that show edge, smoother and both (a seed with fewer than 5 converged runs is not judged and
counts as not showing), the verdicts over the judged seeds, and heatmaps of the fractions.
The theorem checks of the main job run over every run of every cell; a false one exits 1.

The cell the main job runs is chosen from this diagram by a fixed rule: the highest fraction
of seeds showing both (ties: smaller width, then smaller n, then smaller output scale).

Each finished cell is written to ``OUT/cells/<cell>/cell.json`` (and its chunks under
``OUT/cells/<cell>/chunks``); rerunning resumes from them. The diagram goes to
``OUT/phase_diagram.json`` and the heatmaps to ``OUT/fig3_phase_diagram.png``/``.pdf``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import NamedTuple

from .. import plotting
from .._cli_args import int_in_range
from . import sweep_1d
from .base import option
from .outcomes import to_json as outcomes_json

__all__ = ["Config", "Result", "run", "choose_cell", "cell_table", "sentence", "outcomes",
           "table", "plot", "to_json"]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Config:
    """The phase diagram: cells x seeds, each cell the main job's protocol."""

    widths: tuple[int, ...] = (16, 64, 256)
    output_scales: tuple[float, ...] = (0.25, 1.0, 4.0)
    init_scale: float = 1.0
    ns: tuple[int, ...] = (8, 16)
    seeds: int = option(8, "seeds per cell, 0..N-1", type=int_in_range(1, 64))
    seed_offset: int = 0
    num_etas: int = 40
    eta_rel_lo: float = 0.35
    eta_rel_hi: float = 2.8
    steps: int = 100_000

    def __post_init__(self):
        if self.eta_rel_lo >= self.eta_rel_hi:
            raise ValueError(f"eta_rel_lo: expected below eta_rel_hi ({self.eta_rel_hi}), got "
                             f"{self.eta_rel_lo}")  # fmt: skip

    @classmethod
    def quick(cls, **kw) -> Config:
        """One cell (width 16, output scale 4, n 8), 4 seeds x 12 step sizes, 60 000 steps."""
        base = dict(widths=(16,), output_scales=(4.0,), ns=(8,), seeds=4, num_etas=12,
                    eta_rel_lo=0.6, eta_rel_hi=2.5, steps=60_000)  # fmt: skip
        base.update(kw)
        return cls(**base)

    def cells(self) -> list[tuple]:
        """(width, output_scale, n) of every cell, in the order they run."""
        return [(w, s, n) for w in self.widths for s in self.output_scales for n in self.ns]

    def cell_config(self, width, output_scale, n) -> sweep_1d.Config:
        """The main job's config of one cell."""
        return sweep_1d.Config(
            width=int(width), output_scale=float(output_scale), init_scale=self.init_scale,
            n=int(n), seeds=self.seeds, seed_offset=self.seed_offset, num_etas=self.num_etas,
            eta_rel_lo=self.eta_rel_lo, eta_rel_hi=self.eta_rel_hi, steps=self.steps,
            chunk_size=40,
        )  # fmt: skip


NAME = "fig3"
JSON_NAME = "phase_diagram"


def progress_total(config: Config) -> int:
    """One tick per cell."""
    return len(config.cells())


def cell_name(width, output_scale, n) -> str:
    """Folder name of a cell, e.g. ``w16_s4_n8``."""
    return f"w{int(width)}_s{float(output_scale):g}_n{int(n)}"


class Result(NamedTuple):
    """Per cell: its parameters, per-run rows, per-seed statistics and fractions."""

    cells: list  # [dict]
    config: Config
    wall_time: float


def _protocol(cfg: sweep_1d.Config) -> dict:
    d = dataclasses.asdict(cfg)
    d["tol"] = cfg.tolerance()
    return d


def _sweep(cfg: sweep_1d.Config, out_dir):
    """The main job's sweep of one cell, its chunks under ``out_dir`` (None: not stored)."""
    return sweep_1d.run(cfg, out_dir=out_dir, progress=False)


def run_cell(cfg: sweep_1d.Config, out_dir=None) -> dict:
    """One cell: the main job's sweep over its seeds, reduced to rows and per-seed statistics."""
    t0 = time.perf_counter()
    res = _sweep(cfg, out_dir)
    rows = sweep_1d.runs_table(res)
    stats = sweep_1d.per_seed_stats(rows, {sr.seed: sr.init_sharpness for sr in res.seeds})
    return _cell_summary(cfg, rows, stats, time.perf_counter() - t0)


def _cell_summary(cfg: sweep_1d.Config, rows: list, stats: list, wall: float) -> dict:
    n_seeds = len(stats)
    frac = {k: sum(s[k] is True for s in stats) / n_seeds for k in ("edge", "smoother", "both")}
    v = sweep_1d.verdicts(stats)
    return {
        "width": cfg.width, "output_scale": cfg.output_scale, "init_scale": cfg.init_scale,
        "n": cfg.n, "seeds": n_seeds,
        "edge_fraction": frac["edge"], "smoother_fraction": frac["smoother"],
        "both_fraction": frac["both"],
        "judged": sum(s["edge"] is not None for s in stats),
        "converged": sum(s["converged"] for s in stats), "runs": len(rows),
        "verdicts": {k: x.verdict for k, x in v.items()},
        "per_seed": stats, "rows": rows, "wall_time_s": wall, "protocol": _protocol(cfg),
    }  # fmt: skip


def _load_cell(path: Path, cfg: sweep_1d.Config) -> dict | None:
    """A finished cell from disk, if it was run with this protocol (else None: recompute)."""
    if not path.is_file():
        return None
    try:
        cell = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    want = json.loads(json.dumps(_protocol(cfg)))
    return cell if cell.get("protocol") == want else None


def _cell(cfg: sweep_1d.Config, cell_dir) -> tuple[dict, str]:
    """One cell, loaded from ``cell_dir/cell.json`` or run (and written there); and how."""
    from .._io import to_jsonable, write_json

    path = None if cell_dir is None else Path(cell_dir) / "cell.json"
    cell = None if path is None else _load_cell(path, cfg)
    if cell is not None:
        return cell, "loaded"
    cell = run_cell(cfg, cell_dir)
    if path is not None:
        write_json(path, cell)
    # the same numbers whether run or loaded
    return json.loads(json.dumps(to_jsonable(cell))), f"{cell['wall_time_s']:.0f} s"


def run(config: Config, *, out_dir=None, progress=None) -> Result:
    """Every cell, each written to ``out_dir/cells/<cell>`` as it finishes and loaded from there
    when already run with the same protocol (``out_dir=None``: nothing is stored)."""
    t0 = time.perf_counter()
    cells = []
    for w, s, n in config.cells():
        name = cell_name(w, s, n)
        cell_dir = None if out_dir is None else Path(out_dir) / "cells" / name
        cell, note = _cell(config.cell_config(w, s, n), cell_dir)
        cells.append(cell)
        if progress is not None:
            progress.update(1, f"{name} {note}")
    return Result(cells, config, time.perf_counter() - t0)


def choose_cell(cells: list) -> dict:
    """The cell with the highest fraction of seeds showing both (issue 29's rule).

    Ties: smaller width, then smaller n, then smaller output scale.
    """
    return min(cells, key=lambda c: (-c["both_fraction"], c["width"], c["n"], c["output_scale"]))


def all_rows(cells: list) -> list:
    """Every run of every cell."""
    return [r for c in cells for r in c["rows"]]


def checks(cells: list) -> dict:
    """The main job's theorem checks over every run of every cell."""
    return sweep_1d.theorem_checks(sweep_1d.columns(all_rows(cells)))


def verdicts(cells: list) -> dict:
    """Per cell, edge and smoother over its seeds (``{cell: {"edge": V, "smoother": V}}``)."""
    return {cell_name(c["width"], c["output_scale"], c["n"]): sweep_1d.verdicts(c["per_seed"])
            for c in cells}  # fmt: skip


def cell_table(cells: list) -> str:
    """One line per cell: fractions of seeds showing edge, smoother, both; converged runs."""
    head = (f"{'width':>5} {'out scale':>9} {'n':>3} {'conv':>9} {'judged':>6} {'edge':>5} "
            f"{'smoother':>8} {'both':>5}  verdicts (edge / smoother)")  # fmt: skip
    return "\n".join([head, "-" * len(head), *map(_cell_row, cells)])


def _cell_row(c: dict) -> str:
    v = {k: x if isinstance(x, str) else x["verdict"] for k, x in c["verdicts"].items()}
    return (
        f"{c['width']:>5} {c['output_scale']:>9g} {c['n']:>3} "
        f"{c['converged']:>4}/{c['runs']:<4} {c['judged']:>3}/{c['seeds']:<2} "
        f"{c['edge_fraction']:5.2f} {c['smoother_fraction']:8.2f} {c['both_fraction']:5.2f}  "
        f"{v['edge']} / {v['smoother']}"
    )


def sentence(cells: list) -> str:
    """What the diagram shows, generated from the fractions."""

    def where(key):
        best = max(c[key] for c in cells)
        at = [c for c in cells if c[key] == best]
        names = ", ".join(f"width {c['width']}/scale {c['output_scale']:g}/n {c['n']}"
                          for c in at[:4]) + (f" and {len(at) - 4} more" if len(at) > 4 else "")  # fmt: skip
        return best, names, len(at)

    n = len(cells)
    parts = []
    for key, word in (("edge_fraction", "the edge of stability"),
                      ("smoother_fraction", "smoother functions at larger eta"),
                      ("both_fraction", "both")):  # fmt: skip
        best, names, _ = where(key)
        some = sum(c[key] > 0 for c in cells)
        half = sum(c[key] >= 0.5 for c in cells)
        parts.append(
            f"{word} shows on some seed in {some} of {n} cells and on at least half the seeds in "
            f"{half}; the most is {best:.2f} of the seeds ({names})"
        )
    ch = choose_cell(cells)
    return (
        "; ".join(parts) + f". The chosen cell (highest fraction showing both; ties: smaller "
        f"width, then smaller n, then smaller output scale) is width {ch['width']}, output scale {ch['output_scale']:g}, "
        f"n {ch['n']}, with {ch['both_fraction']:.2f} of its seeds showing both."
    )


def outcomes(result: Result) -> tuple[dict, dict]:
    """``(checks, verdicts)``: the theorem checks over every run of every cell, and every cell's
    verdicts as ``KIND[CELL]`` (``edge[w16_s4_n8]``, ``smoother[w16_s4_n8]``)."""
    flat = {f"{kind}[{name}]": v for name, per in verdicts(result.cells).items()
            for kind, v in per.items()}  # fmt: skip
    return checks(result.cells), flat


def table(result: Result) -> str:
    """The cell table, the sentence, the chosen cell and the wall time."""
    ch = choose_cell(result.cells)
    return "\n".join([
        cell_table(result.cells), "", sentence(result.cells),
        f"chosen cell {cell_name(ch['width'], ch['output_scale'], ch['n'])}; wall time "
        f"{result.wall_time:.1f} s; every cell's rows in cells/<cell>/cell.json",
    ])  # fmt: skip


def to_json(result: Result) -> dict:
    """``phase_diagram.json`` but the config, checks and verdicts (the driver adds them): per
    cell its fractions, verdicts and per-seed numbers (the rows stay in its cell.json), the
    chosen cell, the rule and the sentence."""
    verd = verdicts(result.cells)
    cells = []
    for c in result.cells:
        name = cell_name(c["width"], c["output_scale"], c["n"])
        cells.append({**{k: v for k, v in c.items() if k != "rows"},
                      **outcomes_json({}, verd[name])})  # fmt: skip
    ch = choose_cell(result.cells)
    keys = ("width", "output_scale", "init_scale", "n", "both_fraction", "edge_fraction",
            "smoother_fraction")  # fmt: skip
    return {
        "cells": cells,
        "chosen_cell": {k: ch[k] for k in keys},
        "rule": "highest fraction of seeds showing both; ties: smaller width, then smaller n, "
        "then smaller output scale",
        "sentence": sentence(result.cells),
        "wall_time_s": result.wall_time,
    }


def plot(result: Result, out_dir) -> list[Path]:
    """Heatmaps of the fractions of seeds showing edge, smoother, both (PNG + PDF)."""
    return plotting.phase_diagram(result.cells, out_dir)
