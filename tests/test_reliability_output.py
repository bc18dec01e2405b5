"""Reliability of a training's output folder (ENG-123..127): concurrent writers, stale locks,
unwritable folders, orphan temporaries, a full disk, kill -9 and SIGTERM during training.

Each test creates the situation for real (second process, dead pid, killed process) or, for the
full disk, makes the file write raise ENOSPC, and asserts the outcome: one line and exit 2, the
lock taken over, the temporaries gone, a loadable model of the last finished epoch.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ptychodus_pinn_torch.cli.main import main
from ptychodus_pinn_torch.conformance.helpers import (
    TINY_TRAIN_FLAGS,
    tiny_engine,
    tiny_scan_file,
)
from ptychodus_pinn_torch.data import RawData, atomic_file
from ptychodus_pinn_torch.engine.archive import load_archive
from ptychodus_pinn_torch.engine.events import TrainCallbacks
from ptychodus_pinn_torch.engine.output_folder import (
    LOCK_NAME,
    OutputFolderBusy,
    OutputLock,
    check_writable,
    clean_orphan_temps,
)
from ptychodus_pinn_torch.engine.run import run_training

TRAIN_FLAGS = list(TINY_TRAIN_FLAGS)


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_scan_file(tmp_path_factory.mktemp("scan"))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_writer_fails_naming_the_first(tmp_path: Path) -> None:
    with OutputLock(tmp_path) as first:
        with pytest.raises(OutputFolderBusy) as info:
            OutputLock(tmp_path).acquire()
        text = str(info.value)
        assert "\n" not in text
        assert f"pid {os.getpid()} on {first.info['host']}" in text
        assert f"started {first.info['started_utc']}" in text and LOCK_NAME in text
    assert not (tmp_path / LOCK_NAME).exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    import socket

    dead = _dead_pid()
    (tmp_path / LOCK_NAME).write_text(json.dumps(
        {"pid": dead, "host": socket.gethostname(), "started_utc": "2026-01-01T00:00:00Z",
         "command": "pinn-torch train"}))
    with OutputLock(tmp_path) as lock:
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
        assert lock.held
    assert f"taking over the stale lock of {tmp_path} (pid {dead}" in caplog.text


def test_lock_of_another_host_is_respected(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text(json.dumps(
        {"pid": 1, "host": "elsewhere.example", "started_utc": "x", "command": "c"}))
    with pytest.raises(OutputFolderBusy, match="pid 1 on elsewhere.example"):
        OutputLock(tmp_path).acquire()


def test_two_cli_trainings_into_one_folder(scan: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A real second `pinn-torch train --out SAME` while the first runs: exit 2 at once, one
    line naming the first's pid; the first finishes untouched."""
    out = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "ptychodus_pinn_torch.cli.main", "train", "--train", str(scan),
         "--out", str(out), "--epochs", "200", *TRAIN_FLAGS],
        env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / LOCK_NAME).exists() and first.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        t0 = time.monotonic()
        rc = main(["train", "--train", str(scan), "--out", str(out), "--epochs", "1",
                   *TRAIN_FLAGS])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1, err
        assert f"in use by another training (pid {first.pid} on" in err[0]
        assert time.monotonic() - t0 < 10  # at once, not after training
        _wait_for_epochs(out, first, 1)
    finally:
        first.send_signal(signal.SIGTERM)  # ENG-126: stops after the batch, writes the model
        _, stderr = first.communicate(timeout=120)
    assert first.returncode == 143, stderr  # CFG-262: saved, then 128 + SIGTERM
    assert "stopped by SIGTERM" in stderr and str(out / "wts.h5.zip") in stderr
    assert "SIGTERM" in json.loads((out / "history.json").read_text())["stopped"]
    assert not (out / LOCK_NAME).exists()


def test_unwritable_folder_refused_before_training(scan: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    epochs: list[Any] = []
    with pytest.raises(OSError, match=r"output folder .* is not writable .* before training"):
        run_training(RawData.from_file(scan), tiny_engine(1), blocker / "out",
                     callbacks=TrainCallbacks(on_epoch=(epochs.append,)))
    assert epochs == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OSError, match="is not writable"):
            check_writable(folder)
    finally:
        folder.chmod(0o700)


def test_orphan_temporaries_cleaned_at_start(scan: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    orphans = [out / ".wts.h5.zip.k3j2_x.tmp", out / "checkpoints" / ".checkpoint.pt.abcd.tmp",
               out / ".history.json.zz.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"partial")
    (out / "notes.tmp").write_text("the user's own file")  # not ours: kept
    assert clean_orphan_temps(tmp_path / "missing") == []
    run_training(RawData.from_file(scan), tiny_engine(1), out)
    assert not any(o.exists() for o in orphans)
    assert (out / "notes.tmp").exists()
    assert (out / "wts.h5.zip").is_file()


def test_full_disk_during_checkpoint_is_one_line(scan: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The checkpoint write fails with ENOSPC: exit 2, one line naming the file and the cause,
    no temporary left behind."""
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, fh: Any, name: str) -> None:
            self.fh, self.name = fh, name

        def write(self, data: Any) -> int:
            if "checkpoint.pt" in self.name:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return int(self.fh.write(data))

        def __getattr__(self, attr: str) -> Any:
            return getattr(self.fh, attr)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        name = os.readlink(f"/proc/self/fd/{fd}") if Path("/proc/self/fd").is_dir() else ""
        return FullDisk(real_fdopen(fd, *args, **kwargs), name)

    monkeypatch.setattr(atomic_file.os, "fdopen", fdopen)
    out = tmp_path / "run"
    rc = main(["train", "--train", str(scan), "--out", str(out), "--epochs", "2", *TRAIN_FLAGS])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "No space left on device; writing" in err[0] and "checkpoint.pt" in err[0]
    assert list(out.rglob("*.tmp")) == []
    assert not (out / LOCK_NAME).exists()


def _train_in_child(scan: Path, out: Path, epochs: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ptychodus_pinn_torch.cli.main", "train", "--train", str(scan),
         "--out", str(out), "--epochs", str(epochs), *TRAIN_FLAGS],
        env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )


def _wait_for_epochs(out: Path, proc: subprocess.Popen[str], epochs: int) -> int:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            done = len(json.loads((out / "history.json").read_text())["epochs"])
        except (OSError, ValueError, KeyError):
            done = 0
        if done >= epochs:
            return done
        time.sleep(0.05)
    raise AssertionError(f"training did not reach {epochs} epochs: {proc.poll()}")


def test_kill_9_leaves_a_loadable_model(scan: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    proc = _train_in_child(scan, out, 500)
    try:
        _wait_for_epochs(out, proc, 2)
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    bundle = load_archive(out)  # the model of the last checkpointed epoch
    history = json.loads((out / "history.json").read_text())
    assert len(bundle.history) == len(history["epochs"]) >= 2
    assert "in progress" in history["stopped"]
    assert all(np.isfinite(p.detach().numpy()).all() for p in bundle.model.parameters())
    # the stale lock of the killed run does not block the next run in that folder, and the
    # killed run's model reconstructs from the command line
    rc = main(["reconstruct", "--model", str(out), "--data", str(scan), "--out",
               str(tmp_path / "obj.npz"), "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    rc = main(["train", "--train", str(scan), "--out", str(out), "--epochs", "1", *TRAIN_FLAGS])
    assert rc == 0, capsys.readouterr().err


def test_lock_of_a_reused_pid_is_taken_over(tmp_path: Path) -> None:
    """After a reboot the recorded pid may belong to an unrelated live process: its start time
    differs from the one recorded, so the lock is stale."""
    import socket

    (tmp_path / LOCK_NAME).write_text(json.dumps(
        {"pid": os.getppid(), "host": socket.gethostname(), "started_utc": "x", "command": "c",
         "pid_start": 1}))
    with OutputLock(tmp_path) as lock:
        assert lock.held
    start = int(Path(f"/proc/{os.getppid()}/stat").read_text().rsplit(")", 1)[1].split()[19])
    (tmp_path / LOCK_NAME).write_text(json.dumps(
        {"pid": os.getppid(), "host": socket.gethostname(), "started_utc": "x", "command": "c",
         "pid_start": start}))
    with pytest.raises(OutputFolderBusy, match=f"pid {os.getppid()}"):
        OutputLock(tmp_path).acquire()  # the same live process: respected


def test_train_memory_budget_flag(scan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    from ptychodus_pinn_torch.data.npz_limits import MEMORY_BUDGET_ENV

    monkeypatch.setenv(MEMORY_BUDGET_ENV, "64G")  # restored after the test
    rc = main(["train", "--train", str(scan), "--out", str(tmp_path / "o"), "--memory-budget",
               "100K"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "above the memory budget of 0.1 MiB" in err[0]
