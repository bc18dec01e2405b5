"""What a running training shows its user: epoch k / n, losses so far, batch progress, time left.

One :class:`TrainingStatus` per reconstructor. The training generator (ptychodus' background
thread) feeds it from the worker's ``epoch``/``batch`` messages; the GUI (the controller
fix-ups, on the Qt thread) reads :meth:`TrainingStatus.snapshot` to draw the loss curve, the
progress bar and the status line while the training runs. ptychodus 1.7 itself reads only
``TrainOutput.progress`` (reference ptychodus-host.md §3), so without this the loss plot stays
empty until Infer. No Qt and no ptychodus import here: batch mode uses the same lines.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "TrainingSnapshot",
    "TrainingState",
    "TrainingStatus",
    "format_duration",
    "format_epoch_line",
]

TrainingState = Literal["idle", "running", "finished", "stopped", "failed"]


def format_duration(seconds: float | None) -> str:
    """``"42 s"``, ``"3 min 05 s"``, ``"2 h 07 min"``; ``"?"`` for None or a non-finite value."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def format_epoch_line(epoch: int, epochs: int, train_loss: float, val_loss: float | None,
                      seconds_left: float | None) -> str:
    """The per-epoch line of the GUI log, the status line and ``ptychodus -b train``.

    ``"epoch 3 / 50: loss -1.2345, validation -1.2001, about 1 min 05 s left"``.
    """
    text = f"epoch {epoch} / {epochs}: loss {train_loss:.6g}"
    if val_loss is not None:
        text += f", validation {val_loss:.6g}"
    if epoch < epochs:
        text += f", about {format_duration(seconds_left)} left"
    else:
        text += ", done"
    return text


@dataclass(frozen=True)
class TrainingSnapshot:
    """A consistent copy of a :class:`TrainingStatus` (safe to read on any thread).

    ``train_losses``/``val_losses`` are ``(epoch, value)`` pairs, one per finished epoch;
    ``batch``/``batches`` the batch reached inside the running epoch (0/0 before the first);
    ``fraction`` is the finished share of the planned work in [0, 1] (epochs plus the running
    epoch's batches); ``line`` is the status line to show; ``version`` grows with every change,
    ``run`` with every training started; ``batch_reports`` counts the batch reports of this run.
    """

    state: TrainingState
    run: int
    version: int
    epochs_planned: int
    epochs_done: int
    batch: int
    batches: int
    train_losses: tuple[tuple[int, float], ...]
    val_losses: tuple[tuple[int, float], ...]
    elapsed_s: float
    seconds_left: float | None
    fraction: float
    line: str
    batch_reports: int = 0


class TrainingStatus:
    """Thread-safe progress of the current (or last) training of one reconstructor."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._state: TrainingState = "idle"
        self._run = 0
        self._version = 0
        self._epochs_planned = 0
        self._epochs_done = 0
        self._batch = 0
        self._batches = 0
        self._train: list[tuple[int, float]] = []
        self._val: list[tuple[int, float]] = []
        self._started = 0.0
        self._ended: float | None = None
        self._line = ""
        self._epoch_walls: list[float] = []  # wall seconds of each finished epoch
        self._last_epoch_at: float | None = None  # clock at the last finished epoch
        self._first_batch: tuple[float, int] | None = None  # (clock, batch) of the epoch
        self._batch_reports = 0

    # ------------------------------------------------------------------ writers
    def start(self, epochs_planned: int) -> None:
        """A new training of ``epochs_planned`` epochs begins (clears the previous one)."""
        with self._lock:
            self._state = "running"
            self._run += 1
            self._version += 1
            self._epochs_planned = int(epochs_planned)
            self._epochs_done = 0
            self._batch = self._batches = 0
            self._train = []
            self._val = []
            self._started = self._clock()
            self._ended = None
            self._epoch_walls = []
            self._last_epoch_at = None
            self._first_batch = None
            self._batch_reports = 0
            self._line = f"training: starting ({self._epochs_planned} epochs planned)"

    def on_batch(self, batch: int, batches: int) -> None:
        """Batch ``batch`` (1-based) of ``batches`` of the running epoch finished."""
        with self._lock:
            self._batch, self._batches = int(batch), int(batches)
            self._batch_reports += 1
            if self._first_batch is None:
                self._first_batch = (self._clock(), self._batch)
            self._version += 1
            left = self._seconds_left_locked()
            self._line = (f"epoch {self._epochs_done + 1} / {self._epochs_planned}: batch "
                          f"{self._batch} / {self._batches}, about {format_duration(left)} left")
            if self._train:
                self._line += f" (last loss {self._train[-1][1]:.6g})"

    def on_epoch(self, report: Mapping[str, Any]) -> str:
        """An epoch finished (``EpochReport.to_dict()``); returns its :func:`format_epoch_line`."""
        with self._lock:
            epoch = int(report["epoch"])
            self._epochs_planned = int(report.get("epochs", self._epochs_planned))
            self._epochs_done = epoch
            self._batch = self._batches = 0
            now = self._clock()
            if self._last_epoch_at is None:  # the worker's own epoch time (no start-up)
                self._epoch_walls.append(float(report.get("seconds", now - self._started)))
            else:  # wall time between epochs: validation and checkpoints included
                self._epoch_walls.append(now - self._last_epoch_at)
            self._last_epoch_at = now
            self._first_batch = None
            train = float(report["train_loss"])
            val = report.get("val_loss")
            val_f = None if val is None else float(val)
            self._train.append((epoch, train))
            if val_f is not None:
                self._val.append((epoch, val_f))
            self._version += 1
            self._line = format_epoch_line(epoch, self._epochs_planned, train, val_f,
                                           self._seconds_left_locked())
            return self._line

    def finish(self, state: TrainingState, line: str) -> None:
        """The training ended (``finished``, ``stopped`` or ``failed``); ``line`` says how."""
        with self._lock:
            self._state = state
            self._ended = self._clock()
            self._version += 1
            self._line = line

    # ------------------------------------------------------------------ reader
    def _fraction_locked(self) -> float:
        if self._epochs_planned <= 0:
            return 0.0
        within = self._batch / self._batches if self._batches else 0.0
        return min(1.0, (self._epochs_done + within) / self._epochs_planned)

    def _seconds_left_locked(self) -> float | None:
        """Mean wall time of the last (up to 5) epochs x the epochs still to run; during the
        first epoch, the batch rate since its first batch report; None before that."""
        within = self._batch / self._batches if self._batches else 0.0
        remaining = max(0.0, self._epochs_planned - self._epochs_done - within)
        if self._epoch_walls:
            recent = self._epoch_walls[-5:]
            return sum(recent) / len(recent) * remaining
        if self._first_batch is not None and self._batch > self._first_batch[1]:
            t0, b0 = self._first_batch
            per_batch = (self._clock() - t0) / (self._batch - b0)
            return per_batch * self._batches * remaining
        return None

    def snapshot(self) -> TrainingSnapshot:
        with self._lock:
            end = self._ended if self._ended is not None else self._clock()
            return TrainingSnapshot(
                state=self._state, run=self._run, version=self._version,
                epochs_planned=self._epochs_planned, epochs_done=self._epochs_done,
                batch=self._batch, batches=self._batches,
                train_losses=tuple(self._train), val_losses=tuple(self._val),
                elapsed_s=(end - self._started) if self._run else 0.0,
                seconds_left=self._seconds_left_locked() if self._state == "running" else None,
                fraction=self._fraction_locked(), line=self._line,
                batch_reports=self._batch_reports,
            )
