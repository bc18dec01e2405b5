"""What a user sees of a training (host.training_status) and how models are kept (host.model_files).

Pure Python: a fake clock drives :class:`TrainingStatus`; files in tmp_path test the backups.
The reconstructor-level behaviour (a real training) is in the conformance rules HOST-140/141.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ptychodus_pinn_torch.host.model_files import numbered_backups, restore_backup, set_aside
from ptychodus_pinn_torch.host.training_status import (
    TrainingStatus,
    format_duration,
    format_epoch_line,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _report(epoch: int, epochs: int, loss: float, val: float | None, seconds: float) -> dict:
    return {"epoch": epoch, "epochs": epochs, "train_loss": loss, "val_loss": val,
            "lr": 1e-3, "seconds": seconds, "terms": {}}


def test_durations_and_the_epoch_line() -> None:
    assert format_duration(None) == "?" and format_duration(float("nan")) == "?"
    assert format_duration(42.4) == "42 s"
    assert format_duration(185) == "3 min 05 s"
    assert format_duration(7620) == "2 h 07 min"
    assert format_epoch_line(3, 50, -1.23456789, -1.2001, 65.0) == (
        "epoch 3 / 50: loss -1.23457, validation -1.2001, about 1 min 05 s left")
    assert format_epoch_line(50, 50, 0.5, None, 0.0) == "epoch 50 / 50: loss 0.5, done"


def test_status_counts_epochs_batches_and_time_left() -> None:
    clock = Clock()
    status = TrainingStatus(clock)
    assert status.snapshot().run == 0 and status.snapshot().state == "idle"
    status.start(4)
    snap = status.snapshot()
    assert (snap.state, snap.run, snap.epochs_planned, snap.fraction) == ("running", 1, 4, 0.0)
    assert snap.seconds_left is None  # nothing measured yet
    # first epoch: 10 batches, 1 s each, reported from batch 2 on
    clock.now += 5.0  # worker start-up: must not count as training time
    status.on_batch(2, 10)
    clock.now += 3.0
    status.on_batch(5, 10)
    snap = status.snapshot()
    assert snap.batch == 5 and snap.batches == 10
    assert snap.fraction == pytest.approx(0.5 / 4)
    # 1 s per batch x 10 batches x 3.5 epochs left
    assert snap.seconds_left == pytest.approx(35.0)
    assert snap.line.startswith("epoch 1 / 4: batch 5 / 10, about 35 s left")
    clock.now += 5.0
    line = status.on_epoch(_report(1, 4, -2.0, -1.5, seconds=10.0))
    assert line == "epoch 1 / 4: loss -2, validation -1.5, about 30 s left"
    clock.now += 12.0  # epoch 2 took 12 s of wall time (validation included)
    status.on_epoch(_report(2, 4, -3.0, None, seconds=11.0))
    snap = status.snapshot()
    assert snap.train_losses == ((1, -2.0), (2, -3.0)) and snap.val_losses == ((1, -1.5),)
    assert snap.epochs_done == 2 and snap.fraction == pytest.approx(0.5)
    assert snap.seconds_left == pytest.approx(11.0 * 2)  # mean of 10 and 12 s x 2 epochs
    version = snap.version
    status.finish("stopped", "stopped at epoch 2 of 4: kept epoch 2's weights in m.zip")
    snap = status.snapshot()
    assert snap.state == "stopped" and snap.version > version and snap.seconds_left is None
    assert snap.line.endswith("m.zip")
    elapsed = snap.elapsed_s
    clock.now += 100.0
    assert status.snapshot().elapsed_s == elapsed  # the clock stops with the training
    status.start(2)  # the next training starts from scratch
    snap = status.snapshot()
    assert snap.run == 2 and snap.train_losses == () and snap.epochs_done == 0


def test_previous_models_become_numbered_backups_and_come_back(tmp_path: Path) -> None:
    model = tmp_path / "model.zip"
    assert set_aside(model) is None  # nothing to keep
    model.write_bytes(b"first")
    first = set_aside(model)
    assert first == tmp_path / "model.1.zip" and first.read_bytes() == b"first"
    assert not model.exists()
    model.write_bytes(b"second")
    second = set_aside(model)
    assert second == tmp_path / "model.2.zip" and second.read_bytes() == b"second"
    (tmp_path / "model.x.zip").write_bytes(b"not a backup")
    (tmp_path / "other.3.zip").write_bytes(b"not ours")
    assert numbered_backups(model) == [first, second]
    # a training that saved nothing: the newest backup moves back
    assert restore_backup(model, second) is True
    assert model.read_bytes() == b"second" and not second.exists()
    # never over a model that the new training did write
    assert restore_backup(model, first) is False and first.is_file()
    model.unlink()
    (tmp_path / "model.9.zip").write_bytes(b"old")
    assert set_aside(tmp_path / "model.zip") is None
    model.write_bytes(b"new")
    assert set_aside(model) == tmp_path / "model.10.zip"  # after the highest number
