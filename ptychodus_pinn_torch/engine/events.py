"""What a training reports while it runs, and the callbacks that receive it.

The engine calls :class:`TrainCallbacks` (rank 0 only for the epoch and checkpoint events):
MLflow logging, GUI progress, archive-at-checkpoint and the command line's progress bar plug in
here instead of editing the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the archive imports torch and the model; only its type is needed here
    from ptychodus_pinn_torch.engine.archive import ModelBundle


@dataclass(frozen=True)
class EpochReport:
    """What one finished epoch reports to ``on_epoch`` (and to history.json).

    epoch is 1-based; epochs is the planned total; losses are means over groups; lr is the
    learning rate used during the epoch; seconds is its wall time; terms holds the weighted
    train-loss parts (``nll``, ``mae``, ``realspace``, or ``amp_mae``/``phase_mae``).
    """

    epoch: int
    epochs: int
    train_loss: float
    val_loss: float | None
    lr: float
    seconds: float
    terms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpochReport:
        return cls(
            epoch=int(data["epoch"]),
            epochs=int(data["epochs"]),
            train_loss=float(data["train_loss"]),
            val_loss=None if data.get("val_loss") is None else float(data["val_loss"]),
            lr=float(data["lr"]),
            seconds=float(data["seconds"]),
            terms={str(k): float(v) for k, v in dict(data.get("terms", {})).items()},
        )


@dataclass(frozen=True)
class BatchProgress:
    """One finished optimizer batch: ``batch`` of ``batches`` (1-based) in ``epoch`` of
    ``epochs`` (1-based), with the batch's loss (``loss``, already read from the device)."""

    epoch: int
    epochs: int
    batch: int
    batches: int
    loss: float


@dataclass(frozen=True)
class CheckpointEvent:
    """A checkpoint was written after ``report``'s epoch to ``path`` (``checkpoint.pt``).

    ``make_bundle()`` builds a :class:`~ptychodus_pinn_torch.engine.archive.ModelBundle` of the
    weights of that epoch (a CPU copy; built only when called), e.g. to save an archive at each
    checkpoint.
    """

    report: EpochReport
    path: Path
    make_bundle: Callable[[], ModelBundle]


EpochCallback = Callable[[EpochReport], None]
BatchCallback = Callable[[BatchProgress], None]
CheckpointCallback = Callable[[CheckpointEvent], None]


@dataclass(frozen=True)
class TrainCallbacks:
    """The hooks of one training.

    on_epoch: after every finished epoch, with its :class:`EpochReport` (rank 0 only).
    on_batch: after every optimizer batch, with its :class:`BatchProgress` (every rank).
    on_checkpoint: after every checkpoint written (rank 0 only; needs a checkpoint folder).
    should_stop: polled before every batch; True ends training within one batch, keeping the
        last finished epoch's weights (and checkpoint).
    """

    on_epoch: Sequence[EpochCallback] = ()
    on_batch: Sequence[BatchCallback] = ()
    on_checkpoint: Sequence[CheckpointCallback] = ()
    should_stop: Callable[[], bool] | None = None

    def epoch(self, report: EpochReport) -> None:
        for fn in self.on_epoch:
            fn(report)

    def batch(self, progress: BatchProgress) -> None:
        for fn in self.on_batch:
            fn(progress)

    def checkpoint(self, event: CheckpointEvent) -> None:
        for fn in self.on_checkpoint:
            fn(event)

    def stop_requested(self) -> bool:
        return self.should_stop is not None and bool(self.should_stop())

    def plus(self, other: TrainCallbacks) -> TrainCallbacks:
        """Both sets of hooks (this one's first); Stop is asked of either."""
        stops = [s for s in (self.should_stop, other.should_stop) if s is not None]
        should_stop = None
        if len(stops) == 1:
            should_stop = stops[0]
        elif stops:
            should_stop = lambda: any(s() for s in stops)  # noqa: E731 - tiny closure
        return TrainCallbacks(
            on_epoch=(*self.on_epoch, *other.on_epoch),
            on_batch=(*self.on_batch, *other.on_batch),
            on_checkpoint=(*self.on_checkpoint, *other.on_checkpoint),
            should_stop=should_stop,
        )


@dataclass
class TrainResult:
    """The outcome of a training.

    bundle: the trained model and everything needed to save it as ``wts.h5.zip``.
    history: one report per finished epoch (resumed epochs included).
    stopped: None when all epochs ran; otherwise why training ended early (user stop, early
        stopping, non-finite loss), one line.
    test_loss: the loss on the test data after training (None without test data).
    device: the device that trained.
    rank: this process's rank under torch.distributed (0 in a single process); rank 0 writes
        the outputs.
    """

    bundle: ModelBundle
    history: list[EpochReport]
    stopped: str | None = None
    test_loss: float | None = None
    device: str = "cpu"
    rank: int = 0


__all__ = [
    "BatchCallback",
    "BatchProgress",
    "CheckpointCallback",
    "CheckpointEvent",
    "EpochCallback",
    "EpochReport",
    "TrainCallbacks",
    "TrainResult",
]
