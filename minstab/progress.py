"""A dependency-free progress bar for long jobs (one tick per finished chunk)."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """Minimal text progress bar on stderr: ``with ProgressBar(total, "sweep") as bar: bar.update()``.

    Disabled when ``enabled`` is False (e.g. ``--quiet``); redraws in place on a terminal and
    prints one line per update otherwise (CI logs).
    """

    def __init__(self, total: int, desc: str = "", *, enabled: bool = True, stream=None):
        self.total, self.desc, self.enabled = max(int(total), 1), desc, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.count, self.start = 0, time.perf_counter()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __enter__(self):
        self._draw()
        return self

    def __exit__(self, *exc):
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def update(self, n: int = 1, note: str = "") -> None:
        """Advance by ``n`` finished units and redraw."""
        self.count = min(self.count + n, self.total)
        self._draw(note)

    def _draw(self, note: str = "") -> None:
        if not self.enabled:
            return
        frac = self.count / self.total
        width = 28
        fill = int(round(frac * width))
        elapsed = time.perf_counter() - self.start
        eta = elapsed / frac - elapsed if frac > 0 else float("nan")
        line = (
            f"{self.desc} [{'#' * fill}{'.' * (width - fill)}] {self.count}/{self.total} "
            f"{elapsed:6.1f}s elapsed"
            + (f", ~{eta:.0f}s left" if frac > 0 and self.count < self.total else "")
            + (f"  {note}" if note else "")
        )
        if self.tty:
            self.stream.write("\r" + line)
        elif self.count in (0, self.total) or self.count > 0:
            self.stream.write(line + "\n")
        self.stream.flush()
