"""A small text progress bar for the command line (stderr, no third-party dependency)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """``label [#####-----] 12/40 3.1s loss=...``, redrawn in place on a terminal.

    On a terminal the bar is redrawn at most every ``min_interval`` seconds (and always at the
    end); on a pipe or file only the finished line is written, so logs stay short.
    """

    def __init__(
        self,
        total: int,
        label: str = "",
        *,
        stream: TextIO | None = None,
        width: int = 24,
        min_interval: float = 0.1,
        enabled: bool = True,
    ) -> None:
        if total < 0:
            raise ValueError(f"progress total must be >= 0, got {total}")
        self.total = int(total)
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.width = int(width)
        self.min_interval = float(min_interval)
        self.enabled = enabled
        self.count = 0
        self.postfix = ""
        self._start = time.perf_counter()
        self._last_draw = 0.0
        self._closed = False
        isatty = getattr(self.stream, "isatty", None)
        self._tty = bool(isatty()) if callable(isatty) else False

    def render(self) -> str:
        """The bar as one line of text, without carriage return or newline."""
        frac = 1.0 if self.total == 0 else min(1.0, self.count / self.total)
        filled = int(round(frac * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.perf_counter() - self._start
        text = f"{self.label} [{bar}] {self.count}/{self.total} {elapsed:.1f}s"
        return f"{text} {self.postfix}".rstrip()

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        """Advance by ``n`` steps and optionally replace the trailing text."""
        self.count += int(n)
        if postfix is not None:
            self.postfix = postfix
        if not self.enabled or not self._tty:
            return
        now = time.perf_counter()
        if now - self._last_draw >= self.min_interval or self.count >= self.total:
            self._last_draw = now
            self.stream.write("\r" + self.render() + "\x1b[K")
            self.stream.flush()

    def close(self, postfix: str | None = None) -> None:
        """Write the final line (once) followed by a newline."""
        if self._closed:
            return
        self._closed = True
        if postfix is not None:
            self.postfix = postfix
        if not self.enabled:
            return
        prefix = "\r" if self._tty else ""
        suffix = "\x1b[K\n" if self._tty else "\n"
        self.stream.write(prefix + self.render() + suffix)
        self.stream.flush()
