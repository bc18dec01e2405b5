"""The one training pipeline: data files (or scans) in; trained archive, history.json and
checkpoints out. ``pinn-torch train``, the ptychodus training job and the benchmarks all call
:func:`run_training`.

Output layout of a training folder ``OUT``::

    OUT/wts.h5.zip                 the model archive (or the path given as ``archive_path``)
    OUT/history.json               one record per finished epoch plus the run's summary
    OUT/checkpoints/checkpoint.pt  rewritten every ``checkpoint_every`` epochs; resume reads it

Under torch.distributed every rank trains and only rank 0 writes. When no epoch finished (Stop
before the first epoch ended) no archive and no history are written: there is no trained model
to keep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ptychodus_pinn_torch.config.choices import ARCHIVE_NAME, CHECKPOINT_DIR_NAME, HISTORY_NAME
from ptychodus_pinn_torch.config.engine import EngineConfig
from ptychodus_pinn_torch.data import RawData
from ptychodus_pinn_torch.engine.events import TrainCallbacks, TrainResult


@dataclass(frozen=True)
class TrainingRun:
    """What :func:`run_training` produced.

    result: the engine's :class:`~ptychodus_pinn_torch.engine.events.TrainResult`.
    archive / history: the files written (None on ranks > 0 and when no epoch finished).
    checkpoint_dir: the folder holding ``checkpoint.pt``.
    seconds: wall time of the training, data loading included.
    """

    result: TrainResult
    archive: Path | None
    history: Path | None
    checkpoint_dir: Path
    seconds: float


def checkpoint_dir_of(out_dir: Path) -> Path:
    """Where a training folder keeps its checkpoint (``OUT/checkpoints``)."""
    return Path(out_dir) / CHECKPOINT_DIR_NAME


def load_scan(source: RawData | str | Path) -> RawData:
    """A scan from an NPZ path (upstream contract or ptychodus export), or the scan itself."""
    return source if isinstance(source, RawData) else RawData.from_file(source)


def run_training(
    train: RawData | str | Path,
    config: EngineConfig,
    out_dir: Path,
    *,
    test: RawData | str | Path | None = None,
    resume: bool = False,
    callbacks: TrainCallbacks | None = None,
    archive_path: Path | None = None,
) -> TrainingRun:
    """Train on ``train`` with ``config`` and write the outputs of ``out_dir`` (layout above).

    test: a scan whose loss is measured after training (written to history.json).
    resume: continue from ``OUT/checkpoints/checkpoint.pt``.
    callbacks: epoch/batch/checkpoint hooks and the Stop poll.
    archive_path: where the archive goes (default ``OUT/wts.h5.zip``).
    Raises ValueError (or FileNotFoundError) for data or settings that cannot train.
    """
    from ptychodus_pinn_torch.engine.archive import save_archive
    from ptychodus_pinn_torch.engine.reporting import write_history
    from ptychodus_pinn_torch.engine.training import train_model

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    raw = load_scan(train)
    test_raw = None if test is None else load_scan(test)
    ckpt_dir = checkpoint_dir_of(out_dir)
    result = train_model(raw, config, test_data=test_raw, callbacks=callbacks,
                         checkpoint_dir=ckpt_dir, resume=resume)
    seconds = time.perf_counter() - t0
    if result.rank != 0 or not result.history:
        return TrainingRun(result, None, None, ckpt_dir, seconds)
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = save_archive(archive_path or out_dir / ARCHIVE_NAME, result.bundle)
    history = write_history(
        out_dir / HISTORY_NAME,
        result.history,
        stopped=result.stopped,
        test_loss=result.test_loss,
        device=result.device,
        seconds=seconds,
        nphotons=config.training.nphotons,
        N=config.model.N,
        gridsize=config.model.gridsize,
    )
    return TrainingRun(result, Path(archive), history, ckpt_dir, seconds)


__all__ = ["TrainingRun", "checkpoint_dir_of", "load_scan", "run_training"]
