"""The one progress display for long jobs (bake, training, evaluation): a rich bar on a terminal, plain
periodic lines otherwise (CI logs, pipes).

``with Progress(total, "training") as p: p.advance(1, loss=0.3)``; a resumed job passes ``done=`` (what was
finished before) and a ``unit`` for its lines (``Progress(total, "baked", unit="assets", done=n)``).
"""
from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    """Counts ``done`` out of ``total``; shows rate and time left.

    :param total: units of work in all.
    :param description: what is being done (the bar's label, the start of each plain line).
    :param done: units already done before this run (a resumed bake); the rate counts only new ones.
    :param unit: a word for the units in plain lines (``"assets"``), or none.
    :param enabled: False shows nothing (the counts still advance).
    :param stream: where to write (default stderr); a bar only when it is a terminal.
    :param every: seconds between plain lines (the last one is always written).
    """

    def __init__(self, total: int, description: str, *, done: int = 0, unit: str = "", enabled: bool = True,
                 stream: TextIO | None = None, every: float = 5.0):
        self.total, self.description, self.enabled = total, description, enabled
        self.unit = unit
        self.stream = stream or sys.stderr
        self.every = every
        self.done = self.start_done = done
        self.info: dict[str, Any] = {}
        self._bar = self._task = None
        self._t0 = self._last = time.monotonic()

    def start(self) -> "Progress":
        """Show the bar (a terminal only); ``with Progress(...)`` calls it."""
        if self.enabled and self._bar is None and getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                     TextColumn("{task.fields[info]}"), console=Console(file=self.stream))
            self._task = self._bar.add_task(self.description, total=self.total, completed=self.done, rate="",
                                            info="")
            self._bar.start()
        return self

    __enter__ = start

    def rate(self) -> float:
        """New units per second since this display started."""
        dt = time.monotonic() - self._t0
        return (self.done - self.start_done) / dt if dt > 0 else 0.0

    def advance(self, n: int = 1, **info: Any) -> None:
        """Count ``n`` more units; ``info`` (e.g. ``loss=0.3``) is shown beside the count."""
        self.done += n
        self.info.update(info)
        if not self.enabled:
            return
        text = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.info.items())
        unit = f" {self.unit}" if self.unit else ""
        r = self.rate()
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, rate=f"{r:,.1f}{unit}/s", info=text)
            return
        now = time.monotonic()
        if now - self._last >= self.every or self.done >= self.total:
            self._last = now
            left = self.total - self.done
            eta = f"{left / r:.0f}s" if r > 0 else "?"
            print(f"{self.description}: {self.done}/{self.total}{unit} "
                  f"({100 * self.done / max(1, self.total):.0f}%, {r:,.1f}{unit}/s, ETA {eta})"
                  + (f" {text}" if text else ""), file=self.stream, flush=True)

    def close(self) -> None:
        """Stop the bar (the plain lines need nothing)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __exit__(self, *exc) -> None:
        self.close()
