"""Progress reporting for long jobs (training, evaluation): a rich bar on a terminal, plain periodic lines
otherwise (CI logs, pipes)."""
from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    """``with Progress(total, "training") as p: p.advance(1, loss=0.3)``."""

    def __init__(self, total: int, description: str, *, enabled: bool = True, stream: TextIO | None = None,
                 every: float = 5.0):
        self.total, self.description, self.enabled = total, description, enabled
        self.stream = stream or sys.stderr
        self.every = every
        self.done = 0
        self.info: dict[str, Any] = {}
        self._bar = self._task = None
        self._t0 = self._last = time.monotonic()

    def __enter__(self) -> "Progress":
        if self.enabled and self.stream.isatty():
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total, info="")
        return self

    def advance(self, n: int = 1, **info: Any) -> None:
        self.done += n
        self.info.update(info)
        text = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.info.items())
        if self._bar is not None:
            self._bar.update(self._task, advance=n, info=text)
        elif self.enabled:
            now = time.monotonic()
            if now - self._last >= self.every or self.done >= self.total:
                self._last = now
                rate = self.done / max(now - self._t0, 1e-9)
                print(f"{self.description}: {self.done}/{self.total} ({rate:.1f}/s) {text}", file=self.stream,
                      flush=True)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
