"""Named claims of an experiment: checked on its own output, written to its JSON, and the exit code.

Every experiment ends with a mapping ``{name: Claim}``. A claim holds or not, and says how many
cases it covered: a check over zero eligible cases is neither a pass nor a failure, and it is
reported as such ("0 of 36 runs eligible") instead of printing True. The command exits 1 when a
claim is false, after every output has been written.

Examples
--------
>>> from minstab.experiments.claims import claim, exit_status, to_json
>>> c = {"lemma1": claim(True, covered=12, total=36), "theorem1": claim(True, covered=0, total=36)}
>>> to_json(c)["claims"], to_json(c)["not_checked"]
({'lemma1': True}, {'theorem1': '0 of 36 eligible'})
>>> exit_status(c)
0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

__all__ = ["Claim", "claim", "to_json", "format_claims", "exit_status", "failed"]


class Claim(NamedTuple):
    """One checked statement.

    Attributes
    ----------
    holds : True / False, or None when no case was eligible (nothing was checked).
    covered : number of cases the check looked at (None: not a per-case check).
    total : number of cases there were (e.g. runs of a sweep).
    detail : the measured numbers behind the verdict, one short line.
    """

    holds: bool | None
    covered: int | None = None
    total: int | None = None
    detail: str = ""


def claim(
    holds, detail: str = "", *, covered: int | None = None, total: int | None = None
) -> Claim:
    """A :class:`Claim`; with ``covered == 0`` it is 'not checked' whatever ``holds`` says."""
    if covered is not None and int(covered) == 0:
        return Claim(None, 0, None if total is None else int(total), detail)
    return Claim(
        bool(holds),
        None if covered is None else int(covered),
        None if total is None else int(total),
        detail,
    )


def _coverage(c: Claim) -> str:
    if c.covered is None:
        return ""
    return f"{c.covered} of {c.total}" if c.total is not None else f"{c.covered}"


def to_json(claims: Mapping[str, Claim]) -> dict:
    """``{"claims": {name: bool}, "claim_details": {...}, "not_checked": {name: why}}``."""
    checked = {k: bool(c.holds) for k, c in claims.items() if c.holds is not None}
    details = {
        k: {"holds": c.holds, "covered": c.covered, "total": c.total, "detail": c.detail}
        for k, c in claims.items()
    }
    skipped = {k: f"{_coverage(c) or '0'} eligible" for k, c in claims.items() if c.holds is None}
    return {"claims": checked, "claim_details": details, "not_checked": skipped}


def format_claims(claims: Mapping[str, Claim]) -> str:
    """One line per claim: ``PASS``/``FAIL``/``NONE``, name, coverage and detail."""
    lines = ["claims:"]
    for k, c in claims.items():
        tag = "NONE" if c.holds is None else "PASS" if c.holds else "FAIL"
        cov = _coverage(c)
        cov = f" ({cov} eligible)" if cov else ""
        lines.append(f"  {tag}  {k}{cov}" + (f": {c.detail}" if c.detail else ""))
    return "\n".join(lines)


def failed(claims: Mapping[str, Claim]) -> list[str]:
    """Names of the claims that are false."""
    return [k for k, c in claims.items() if c.holds is False]


def exit_status(claims: Mapping[str, Claim]) -> int:
    """1 if any claim is false, else 0 (unchecked claims do not fail a run)."""
    return 1 if failed(claims) else 0
