"""What an experiment reports: theorem *checks* apart from the papers' empirical *verdicts*.

Two kinds of statements, never mixed (the contract of every ``minstab reproduce`` command and
of the main job):

* A :class:`Check` must hold on every eligible run if the code and the theorems are right
  (Lemma 1 on differentiable minima, Lemma 2 on kinked ones, Lemma 4's order, Theorems 1/2, KKT
  conditions, dual gaps). A false check is a bug or a counterexample: the command exits 1. A
  check that covered no run is not a pass: it must say why no eligible run can exist
  (``why_none``), and building one without that reason is a programming error.
* A :class:`Verdict` is a paper's empirical statement (GD ends at the edge of stability; the
  function gets smoother as eta grows; ...), measured per seed with a criterion fixed before
  looking, over many seeds: ``"reproduced"`` when it shows in at least 75 % of the judged
  seeds, ``"partly"`` from 25 % to 75 %, ``"not reproduced"`` below 25 %, and
  ``"inconclusive"`` when fewer than ``min_seeds`` seeds qualify to be judged. A verdict never
  changes the exit status: it is the result.

Examples
--------
>>> from minstab.experiments.outcomes import check, verdict, exit_status, to_json
>>> c = {"lemma4": check(True, "12 of 12 converged runs", covered=12, eligible=12)}
>>> v = {"edge": verdict([{"seed": s, "shown": s != 3} for s in range(8)],
...                      statement="GD ends at the edge", threshold="median dev <= 0.05")}
>>> v["edge"].verdict, v["edge"].seeds_shown, v["edge"].seeds
('reproduced', 7, 8)
>>> exit_status(c)
0
>>> sorted(to_json(c, v))
['checks', 'verdicts']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

__all__ = [
    "Check",
    "Verdict",
    "check",
    "verdict",
    "classify",
    "to_json",
    "format_checks",
    "format_verdicts",
    "format_outcomes",
    "failed",
    "exit_status",
    "REPRODUCED",
    "PARTLY",
    "NOT_REPRODUCED",
    "INCONCLUSIVE",
]

REPRODUCED, PARTLY, NOT_REPRODUCED, INCONCLUSIVE = (
    "reproduced",
    "partly",
    "not reproduced",
    "inconclusive",
)
_SHOWN_FOR_REPRODUCED, _SHOWN_FOR_PARTLY = 0.75, 0.25


class Check(NamedTuple):
    """A statement that must hold on every eligible run (a false one exits 1).

    Attributes
    ----------
    holds : True / False; None only when no run was eligible (then ``why_none`` says why).
    covered : runs the check looked at.
    eligible : runs its hypothesis applies to (``covered <= eligible``).
    detail : the measured numbers behind it, one short line.
    why_none : with ``covered == 0``, why the protocol has no eligible run.
    """

    holds: bool | None
    covered: int
    eligible: int
    detail: str = ""
    why_none: str | None = None


def check(
    holds, detail: str = "", *, covered: int, eligible: int | None = None, why_none=None
) -> Check:
    """A :class:`Check`; ``covered == 0`` needs ``why_none`` (a check over nothing is no pass)."""
    covered = int(covered)
    eligible = covered if eligible is None else int(eligible)
    if covered < 0 or eligible < covered:
        raise ValueError(f"check: expected 0 <= covered <= eligible, got {covered}, {eligible}")
    if covered == 0:
        if not why_none:
            raise ValueError(
                "check: covered == 0 needs why_none (why no eligible run can exist); a check "
                "over no run is a design defect, not a pass"
            )
        return Check(None, 0, eligible, detail, str(why_none))
    return Check(bool(holds), covered, eligible, detail, None)


class Verdict(NamedTuple):
    """A paper's empirical statement, judged per seed.

    Attributes
    ----------
    verdict : ``"reproduced"``, ``"partly"``, ``"not reproduced"`` or ``"inconclusive"``.
    seeds_shown : seeds on which the statement showed.
    seeds : seeds judged (those that qualified).
    seeds_run : every seed of the run, judged or not.
    per_seed : one dict per seed: ``seed``, ``shown`` (True / False / None = not judged) and
        the measures behind it.
    threshold : the per-seed criterion, fixed before looking.
    statement : the paper's claim in words.
    min_seeds : fewer judged seeds than this is ``"inconclusive"``.
    """

    verdict: str
    seeds_shown: int
    seeds: int
    seeds_run: int
    per_seed: list
    threshold: str
    statement: str
    min_seeds: int

    @property
    def fraction(self) -> float:
        """Share of the judged seeds on which the statement showed (NaN if none judged)."""
        return self.seeds_shown / self.seeds if self.seeds else math.nan


def classify(shown: int, judged: int, *, min_seeds: int) -> str:
    """The verdict for ``shown`` of ``judged`` seeds (>= 75 %, 25-75 %, < 25 %, too few)."""
    if judged < max(int(min_seeds), 1):
        return INCONCLUSIVE
    frac = shown / judged
    if frac >= _SHOWN_FOR_REPRODUCED:
        return REPRODUCED
    if frac >= _SHOWN_FOR_PARTLY:
        return PARTLY
    return NOT_REPRODUCED


def verdict(
    per_seed: Sequence[Mapping],
    *,
    statement: str,
    threshold: str,
    min_seeds: int = 4,
) -> Verdict:
    """Judge a statement from per-seed outcomes (``shown`` True / False, or None: not judged).

    Parameters
    ----------
    per_seed : one mapping per seed with at least ``seed`` and ``shown``; the rest (the
        measured numbers) is kept as it is for the JSON.
    statement : the paper's claim, in words.
    threshold : the per-seed criterion, in words (fixed by the protocol, never tuned).
    min_seeds : the verdict is ``"inconclusive"`` when fewer seeds than this qualify.
    """
    rows = [dict(r) for r in per_seed]
    for r in rows:
        if str(getattr(r.get("shown"), "dtype", "")) == "bool":  # a numpy bool is a bool here
            r["shown"] = bool(r["shown"])
        if "shown" not in r or not any(r["shown"] is v for v in (True, False, None)):
            raise ValueError(f"verdict: every per_seed entry needs shown True/False/None: {r}")
    judged = [r for r in rows if r["shown"] is not None]
    shown = sum(r["shown"] is True for r in judged)
    label = classify(shown, len(judged), min_seeds=min_seeds)
    return Verdict(label, shown, len(judged), len(rows), rows, str(threshold), str(statement),
                   int(min_seeds))  # fmt: skip


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        return _jsonable(v.item())
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v


def to_json(checks: Mapping[str, Check], verdicts: Mapping[str, Verdict]) -> dict:
    """``{"checks": {name: {...}}, "verdicts": {name: {...}}}`` for an experiment's JSON."""
    return {
        "checks": {k: _jsonable(c._asdict()) for k, c in checks.items()},
        "verdicts": {
            k: _jsonable({**v._asdict(), "fraction": v.fraction}) for k, v in verdicts.items()
        },
    }


def format_checks(checks: Mapping[str, Check]) -> str:
    """One line per check: ``PASS`` / ``FAIL`` / ``NONE``, name, coverage and detail."""
    lines = ["checks (must hold on every eligible run; a false one exits 1):"]
    for k, c in checks.items():
        tag = "NONE" if c.holds is None else "PASS" if c.holds else "FAIL"
        cov = f"{c.covered} of {c.eligible} eligible"
        why = f" [none eligible: {c.why_none}]" if c.holds is None else ""
        lines.append(f"  {tag}  {k} ({cov})" + (f": {c.detail}" if c.detail else "") + why)
    return "\n".join(lines)


def format_verdicts(verdicts: Mapping[str, Verdict]) -> str:
    """A table: statement, verdict, seeds shown / judged / run, and the per-seed criterion."""
    if not verdicts:
        return "verdicts: none"
    w = max(len(k) for k in verdicts)
    head = f"  {'verdict':<{w}}  {'result':<15} {'shown':>11}  criterion per seed"
    lines = ["verdicts (the papers' empirical claims, per seed; any result exits 0):", head]
    for k, v in verdicts.items():
        frac = f"{v.seeds_shown}/{v.seeds}" + (
            f" of {v.seeds_run}" if v.seeds_run != v.seeds else ""
        )
        lines.append(f"  {k:<{w}}  {v.verdict:<15} {frac:>11}  {v.threshold}")
    return "\n".join(lines)


def format_outcomes(checks: Mapping[str, Check], verdicts: Mapping[str, Verdict]) -> str:
    """Checks, then the verdict table."""
    return format_checks(checks) + "\n" + format_verdicts(verdicts)


def failed(checks: Mapping[str, Check]) -> list[str]:
    """Names of the checks that are false."""
    return [k for k, c in checks.items() if c.holds is False]


def exit_status(checks: Mapping[str, Check]) -> int:
    """1 if a check is false, else 0 (verdicts never change it)."""
    return 1 if failed(checks) else 0
