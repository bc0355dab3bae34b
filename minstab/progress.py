"""Progress bars for long jobs (one tick per finished chunk), drawn by tqdm on stderr."""

from __future__ import annotations

import sys

from tqdm import tqdm

__all__ = ["ProgressBar"]


class ProgressBar:
    """``with ProgressBar(total, "sweep") as bar: bar.update(1, "chunk 1/4")``.

    A thin wrapper over ``tqdm`` that keeps the notes of each update as its postfix; disabled
    (draws nothing) when ``enabled`` is False, e.g. ``--quiet``. ``total=None`` counts without
    a known end (e.g. batches of an iterative solver that stops when it converges).
    """

    def __init__(
        self, total: int | None, desc: str = "", *, enabled: bool = True, stream=None,
        unit: str = "it",
    ):  # fmt: skip
        # total=None: an open-ended count (tqdm shows the count and the rate, no bar)
        self._bar = tqdm(
            total=None if total is None else max(int(total), 1), desc=desc, disable=not enabled,
            file=sys.stderr if stream is None else stream, dynamic_ncols=True, unit=unit,
        )  # fmt: skip

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._bar.close()

    def update(self, n: int = 1, note: str = "") -> None:
        """Advance by ``n`` finished units (with an optional note after the bar)."""
        if note:
            self._bar.set_postfix_str(note, refresh=False)
        self._bar.update(n)
