"""The live progress of an application's tasks: a bar on a terminal, periodic lines elsewhere.

    [##########----------]  16/32 done  2 running  1 failed  13 left  0.8/s  17 s left

On a terminal the line is redrawn in place a few times a second; in a log or a pipe (CI, `| tee`)
a plain line is printed every PRIMAGE_PROGRESS_INTERVAL seconds (default 10) and at the end.
Whatever runs the tasks (the local engine, a cluster's Job) hands it the same counts.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

from .model import Counts

TTY_INTERVAL = 0.2
BAR_WIDTH = 20


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    def __init__(self, label: str, stream=None, interactive: bool | None = None, interval: float | None = None):
        self.label = label
        self.stream = stream or sys.stderr
        self.interactive = self._is_tty() if interactive is None else interactive
        default = float(os.environ.get("PRIMAGE_PROGRESS_INTERVAL") or 10)
        self.interval = TTY_INTERVAL if self.interactive else (interval or default)
        self.started = time.monotonic()
        self.baseline = 0  # tasks already done when this run started: not part of the rate
        self.last_draw = 0.0
        self.width = 0
        self.counts = Counts()

    def _is_tty(self) -> bool:
        try:
            return self.stream.isatty() and os.environ.get("TERM") != "dumb"
        except (AttributeError, ValueError):
            return False

    def start(self, counts: Counts) -> None:
        self.baseline = counts.done + counts.failed
        self.started = time.monotonic()
        self.update(counts, force=True)

    def line(self, counts: Counts) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        finished_now = counts.done + counts.failed - self.baseline
        rate = finished_now / elapsed
        left = counts.left + counts.running
        eta = _duration(left / rate) if rate > 0 and left else ("0 s" if not left else "?")
        parts = [
            f"{counts.done}/{counts.total} done",
            f"{counts.running} running",
            f"{counts.failed} failed",
            f"{counts.left} left",
            f"{rate:.2f}/s" if rate < 10 else f"{rate:.0f}/s",
            f"{eta} left" if left else f"{_duration(elapsed)} in all",
        ]
        return f"{self.label}: " + "  ".join(parts)

    def bar(self, counts: Counts) -> str:
        total = max(counts.total, 1)
        done = round(BAR_WIDTH * counts.done / total)
        failed = min(BAR_WIDTH - done, round(BAR_WIDTH * counts.failed / total))
        return "[" + "#" * done + "!" * failed + "-" * (BAR_WIDTH - done - failed) + "] "

    def update(self, counts: Counts, force: bool = False) -> None:
        self.counts = counts
        moment = time.monotonic()
        if not force and moment - self.last_draw < self.interval:
            return
        self.last_draw = moment
        if self.interactive:
            columns = shutil.get_terminal_size((100, 24)).columns
            text = (self.bar(counts) + self.line(counts))[: columns - 1]
            self.stream.write("\r" + text + " " * max(0, self.width - len(text)))
            self.width = len(text)
        else:
            self.stream.write(self.line(counts) + "\n")
        self.stream.flush()

    def note(self, message: str) -> None:
        """A line of its own (a failed task), above the bar."""
        if self.interactive and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.width = 0
        self.stream.write(message + "\n")
        self.stream.flush()
        if self.interactive:
            self.update(self.counts, force=True)

    def finish(self, counts: Counts) -> None:
        self.update(counts, force=True)
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()
