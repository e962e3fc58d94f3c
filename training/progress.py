"""A one-line progress report on stderr: ``synthesize 120/1800 clips  9.8/s  ETA 2m51s``.

On a terminal the line is rewritten in place; elsewhere (CI logs) a line is printed about
every 10 % so logs stay short.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class ProgressLine:
    def __init__(self, label: str, total: int, stream: TextIO | None = None,
                 min_interval_s: float = 0.5):
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.min_interval_s = min_interval_s
        self.started = time.monotonic()
        self.done = 0
        self._last_print = 0.0
        self._last_decile = -1
        self._tty = self.stream.isatty()

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self._tty:
            if now - self._last_print >= self.min_interval_s or self.done == self.total:
                self._last_print = now
                self.stream.write("\r" + self._line(now))
                self.stream.flush()
        else:
            decile = 10 * self.done // max(self.total, 1)
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(self._line(now) + "\n")
                self.stream.flush()

    def close(self) -> float:
        """End the line; returns the elapsed seconds."""
        elapsed = time.monotonic() - self.started
        if self._tty:
            self.stream.write("\r" + self._line(time.monotonic()) + "\n")
            self.stream.flush()
        return elapsed

    def _line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        return (f"{self.label} {self.done}/{self.total} clips  {rate:.1f}/s  "
                f"elapsed {_duration(elapsed)}  ETA {_duration(eta)}   ")
