"""Progress of ``pinn-torch reconstruct``'s network pass on stderr (specs/ENGINE.md, ENG-128).

On a terminal a bar is redrawn in place with the batches done, the elapsed time and an estimate
of the time left; on a pipe or a log file one line is written every ``every_s`` seconds (and at
the end) so that a long run shows that it advances and when it should end. Scans of fewer
than ``min_batches`` batches print nothing.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ptychodus_pinn_torch.engine.progress import ProgressBar


class ReconstructProgress:
    """``on_batch(done, total)`` callback of :func:`engine.inference.reconstruct`."""

    def __init__(self, *, stream: TextIO | None = None, enabled: bool = True,
                 every_s: float = 10.0, min_batches: int = 4) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.every_s = float(every_s)
        self.min_batches = int(min_batches)
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty()) if callable(isatty) else False
        self._bar: ProgressBar | None = None
        self._start = time.perf_counter()
        self._last_line = self._start
        self.lines: list[str] = []

    def _eta(self, done: int, total: int) -> tuple[float, float]:
        elapsed = time.perf_counter() - self._start
        return elapsed, elapsed / done * (total - done) if done else float("nan")

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total < self.min_batches:
            return
        elapsed, left = self._eta(done, total)
        if self.tty:
            if self._bar is None:
                self._bar = ProgressBar(total, "reconstruct", stream=self.stream)
            self._bar.update(done - self._bar.count, postfix=f"~{left:.0f}s left")
            if done >= total:
                self._bar.close(f"{total / max(elapsed, 1e-9):.1f} batches/s")
            return
        now = time.perf_counter()
        if now - self._last_line >= self.every_s or done >= total:
            self._last_line = now
            line = (f"reconstruct: {done}/{total} batches ({done / total:.0%}), "
                    f"{elapsed:.0f}s elapsed"
                    + ("" if done >= total else f", about {left:.0f}s left"))
            self.lines.append(line)
            print(line, file=self.stream, flush=True)
