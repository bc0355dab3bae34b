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
``OUT/cells/<cell>/chunks``); rerunning resumes from them.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import NamedTuple

from .._cli_args import quick_requested
from . import sweep_1d
from .outcomes import exit_status, format_checks, format_verdicts, to_json

__all__ = ["Config", "Result", "run", "choose_cell", "cell_table", "sentence", "main"]


@dataclasses.dataclass(frozen=True)
class Config:
    """The phase diagram: cells x seeds, each cell the main job's protocol."""

    widths: tuple = (16, 64, 256)
    output_scales: tuple = (0.25, 1.0, 4.0)
    init_scale: float = 1.0
    ns: tuple = (8, 16)
    seeds: int = 8
    seed_offset: int = 0
    num_etas: int = 40
    eta_rel_lo: float = 0.35
    eta_rel_hi: float = 2.8
    steps: int = 100_000
    out: str = "minstab-out/fig3"
    quiet: bool = False
    quick: bool = False

    @classmethod
    def quick_config(cls, **kw) -> Config:
        """One cell (width 16, output scale 4, n 8), 4 seeds x 12 step sizes, 60 000 steps."""
        base = dict(widths=(16,), output_scales=(4.0,), ns=(8,), seeds=4, num_etas=12,
                    eta_rel_lo=0.6, eta_rel_hi=2.5, steps=60_000, quick=True)  # fmt: skip
        base.update(kw)
        return cls(**base)

    def cells(self) -> list[tuple]:
        """(width, output_scale, n) of every cell, in the order they run."""
        return [(w, s, n) for w in self.widths for s in self.output_scales for n in self.ns]

    def cell_config(self, width, output_scale, n) -> sweep_1d.Config:
        """The main job's config of one cell (its chunks and results under the cell's folder)."""
        return sweep_1d.Config(
            width=int(width), output_scale=float(output_scale), init_scale=self.init_scale,
            n=int(n), seeds=self.seeds, seed_offset=self.seed_offset, num_etas=self.num_etas,
            eta_rel_lo=self.eta_rel_lo, eta_rel_hi=self.eta_rel_hi, steps=self.steps,
            chunk_size=40, out=str(Path(self.out) / "cells" / cell_name(width, output_scale, n)),
            quiet=True,
        )  # fmt: skip


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
    d.pop("quiet")
    d["tol"] = cfg.tolerance()
    return d


def run_cell(cfg: sweep_1d.Config) -> dict:
    """One cell: the main job's sweep over its seeds, reduced to rows and per-seed statistics."""
    t0 = time.perf_counter()
    res = sweep_1d.run(cfg, progress=False)
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


def run(config: Config, progress=None) -> Result:
    """Every cell, each written as it finishes and loaded when already there."""
    from minstab._io import write_json

    t0 = time.perf_counter()
    cells = []
    for w, s, n in config.cells():
        cfg = config.cell_config(w, s, n)
        path = Path(cfg.out) / "cell.json"
        cell = _load_cell(path, cfg)
        note = "loaded"
        if cell is None:
            cell = run_cell(cfg)
            write_json(path, cell)
            cell = json.loads(path.read_text())  # the same numbers whether run or loaded
            note = f"{cell['wall_time_s']:.0f} s"
        cells.append(cell)
        if progress is not None:
            progress.update(1, f"{cell_name(w, s, n)} {note}")
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
    lines = [head, "-" * len(head)]
    for c in cells:
        v = {k: x if isinstance(x, str) else x["verdict"] for k, x in c["verdicts"].items()}
        lines.append(
            f"{c['width']:>5} {c['output_scale']:>9g} {c['n']:>3} "
            f"{c['converged']:>4}/{c['runs']:<4} {c['judged']:>3}/{c['seeds']:<2} "
            f"{c['edge_fraction']:5.2f} {c['smoother_fraction']:8.2f} {c['both_fraction']:5.2f}  "
            f"{v['edge']} / {v['smoother']}"
        )
    return "\n".join(lines)


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


def to_json_dict(result: Result, chk: dict) -> dict:
    """``phase_diagram.json``: the checks, per cell fractions, verdicts and per-seed numbers."""
    verd = verdicts(result.cells)
    cells = []
    for c in result.cells:
        name = cell_name(c["width"], c["output_scale"], c["n"])
        cells.append({**{k: v for k, v in c.items() if k != "rows"},
                      **to_json({}, verd[name])})  # fmt: skip
    ch = choose_cell(result.cells)
    return {
        "config": dataclasses.asdict(result.config),
        **to_json(chk, {}),
        "cells": cells,
        "chosen_cell": {
            k: ch[k]
            for k in (
                "width",
                "output_scale",
                "init_scale",
                "n",
                "both_fraction",
                "edge_fraction",
                "smoother_fraction",
            )
        },  # fmt: skip
        "rule": "highest fraction of seeds showing both; ties: smaller width, then smaller n, "
        "then smaller output scale",
        "sentence": sentence(result.cells),
        "wall_time_s": result.wall_time,
    }


def plot(result: Result, out) -> list:
    """Heatmaps of the fractions of seeds showing edge, smoother, both (PNG + PDF)."""
    from minstab import plotting

    return plotting.phase_diagram(result.cells, out)


def add_arguments(parser) -> None:
    """Flags of ``minstab reproduce fig3``."""
    from minstab._cli_args import output_dir

    from .sweep_1d import bounded_int

    parser.add_argument("--out", type=output_dir, default=None,
                        help=f"output directory (default {Config.out})")  # fmt: skip
    parser.add_argument("--seeds", type=bounded_int(1, 64), default=None,
                        help="seeds per cell, 0..N-1 (default 8; --quick 4)")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="one cell, 4 seeds x 12 step sizes (CI; also MINSTAB_QUICK=1)")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(dtype="float64")


def main(args) -> int:
    """Run the phase diagram, print the table, checks and sentence; write JSON and heatmaps."""
    from minstab._io import write_json

    from ..progress import ProgressBar

    quick = quick_requested(args)
    kw = {"quiet": bool(args.quiet)}
    if args.out is not None:
        kw["out"] = str(args.out)
    if args.seeds:
        kw["seeds"] = args.seeds
    cfg = Config.quick_config(**kw) if quick else Config(**kw)
    with ProgressBar(len(cfg.cells()), "fig3 cells", enabled=not cfg.quiet) as bar:
        result = run(cfg, progress=bar)
    out = Path(cfg.out)
    chk = checks(result.cells)
    data = to_json_dict(result, chk)
    write_json(out / "phase_diagram.json", data)
    paths = plot(result, out)
    print("\n" + cell_table(result.cells))
    print("\n" + data["sentence"])
    print(format_checks(chk))
    ch = data["chosen_cell"]
    name = cell_name(ch["width"], ch["output_scale"], ch["n"])
    print(f"chosen cell {name}:")
    print(format_verdicts(verdicts(result.cells)[name]))
    print(f"wall time {result.wall_time:.1f} s; wrote {out / 'phase_diagram.json'}, "
          + ", ".join(p.name for p in paths if p.suffix == ".png") + " and cells/<cell>/")  # fmt: skip
    return exit_status(chk)
