"""A training's output folder, protected (specs/ENGINE.md, ENG-123..126).

- :class:`OutputLock`: one writer per folder. ``OUT/.pinn-torch.lock`` holds the writer's pid,
  host, start time and command; a second writer fails at once naming them. A lock left by a
  process that no longer runs on this host (kill -9, power loss) is taken over with a warning.
- :func:`check_writable`: the folder (and its checkpoint folder) must accept a file before
  training starts, not after the first epoch.
- :func:`clean_orphan_temps`: temporary files of an interrupted atomic write
  (``.NAME.XXXX.tmp``, :func:`data.atomic_file.atomic_write`) are removed at the next start.
- :class:`StopOnSignal`: SIGTERM and SIGINT end the training like Stop (within one batch, keeping
  the last finished epoch), so the archive is written; a second signal interrupts at once.
- :class:`ArchiveAtCheckpoint`: a checkpoint callback writing ``wts.h5.zip`` (and history.json)
  from the weights of each checkpoint, so a training killed after N epochs leaves a loadable model
  of its last checkpointed epoch.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import signal
import socket
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ptychodus_pinn_torch.engine.events import CheckpointEvent

logger = logging.getLogger(__name__)

#: Lock file inside an output folder.
LOCK_NAME = ".pinn-torch.lock"


class OutputFolderBusy(ValueError):
    """Another process writes to this output folder."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, ``/proc/PID/stat`` field 22), or None; a
    reused pid (after a reboot) has another start time."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _pid_is_stopped_zombie(pid: int) -> bool:
    """True when ``pid`` is a zombie (dead, not yet reaped): its lock is stale too."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return bool(fields) and fields[0] == "Z"


class OutputLock:
    """The lock of one output folder; use as a context manager or call acquire/release.

    Attributes:
        path: ``OUT/.pinn-torch.lock``.
        info: what this process wrote into it (pid, host, started_utc, command).
    """

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.path = Path(out_dir) / LOCK_NAME
        self.info: dict[str, Any] = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": " ".join(sys.argv)[:300],
            "pid_start": _start_ticks(os.getpid()),
        }
        self.held = False

    def _holder(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _describe(self, holder: dict[str, Any]) -> str:
        return (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
                f"{holder.get('started_utc', '?')}: {holder.get('command', '?')!r}")

    def _stale(self, holder: dict[str, Any]) -> bool:
        pid = holder.get("pid")
        if holder.get("host") != self.info["host"] or not isinstance(pid, int):
            return False  # another machine's process cannot be checked: not stale
        if pid == os.getpid():
            return False
        if not _pid_alive(pid) or _pid_is_stopped_zombie(pid):
            return True
        recorded, now = holder.get("pid_start"), _start_ticks(pid)
        return isinstance(recorded, int) and now is not None and recorded != now  # pid reused

    def acquire(self) -> OutputLock:
        """Take the lock.

        Raises:
            OutputFolderBusy: a live process (or one on another host) holds it; the message
                names its pid, host, start time and command, and the lock file.
            OSError: the folder cannot be created or written.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(self.info).encode()
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is None:
                    continue  # released meanwhile: try again
                if holder and self._stale(holder):
                    logger.warning("taking over the stale lock of %s (%s): that process is "
                                   "gone", self.path.parent, self._describe(holder))
                    self.path.unlink(missing_ok=True)
                    continue
                who = self._describe(holder) if holder else "an unreadable lock"
                raise OutputFolderBusy(
                    f"output folder {str(self.path.parent)!r} is in use by another training "
                    f"({who}); wait for it to finish, pick another output folder, or delete "
                    f"{str(self.path)!r} if that run is gone"
                ) from None
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            self.held = True
            return self
        raise OutputFolderBusy(
            f"output folder {str(self.path.parent)!r}: could not take {LOCK_NAME} (other "
            f"processes keep taking it); pick another output folder"
        )

    def release(self) -> None:
        """Remove the lock if this process holds it."""
        if not self.held:
            return
        self.held = False
        holder = self._holder()
        if holder and holder.get("pid") == self.info["pid"] and (
                holder.get("host") == self.info["host"]):
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def check_writable(*folders: str | os.PathLike[str]) -> None:
    """Create each folder and write (then remove) a probe file in it.

    Raises:
        OSError: one line naming the folder, the reason and the fix.
    """
    for folder in folders:
        path = Path(folder)
        probe = path / f".pinn-torch-write-test.{os.getpid()}.tmp"
        try:
            path.mkdir(parents=True, exist_ok=True)
            with open(probe, "wb") as fh:
                fh.write(b"ok")
                fh.flush()
                os.fsync(fh.fileno())
            probe.unlink()
        except OSError as exc:
            raise OSError(
                exc.errno, f"output folder {str(path)!r} is not writable ({exc.strerror or exc});"
                f" choose another output folder or fix its permissions, before training starts"
            ) from exc


def clean_orphan_temps(*folders: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries that an interrupted :func:`atomic_write` left (``.NAME.*.tmp``)
    and stale write probes; call only while holding the folder's :class:`OutputLock`.

    Returns:
        The files removed (a log line names how many).
    """
    removed: list[Path] = []
    for folder in folders:
        path = Path(folder)
        if not path.is_dir():
            continue
        for candidate in path.glob(".*.tmp"):
            if candidate.is_file():
                try:
                    candidate.unlink()
                except OSError:
                    continue
                removed.append(candidate)
    if removed:
        logger.warning("removed %d temporary file(s) of an interrupted write: %s", len(removed),
                       ", ".join(p.name for p in removed[:5]))
    return removed


class StopOnSignal:
    """While active (in the main thread only), SIGTERM and SIGINT ask the training to stop
    after the current batch instead of killing it; a second signal raises KeyboardInterrupt.

    ``requested()`` is the ``should_stop`` poll; ``signal_name`` names the signal received.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def requested(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum: int, frame: types.FrameType | None) -> None:
        if self.signal_name is not None:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        logger.warning("%s received: stopping after the current batch and writing the model of "
                       "the last finished epoch (send it again to interrupt at once)",
                       self.signal_name)

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()


class ArchiveAtCheckpoint:
    """Checkpoint callback: write the archive (and history) of each checkpoint's weights.

    Args:
        write: ``write(bundle, event)`` saves the archive and history (the pipeline's writer).
    """

    def __init__(self, write: Callable[[Any, CheckpointEvent], None]) -> None:
        self.write = write
        self.written_epochs: list[int] = []

    def __call__(self, event: CheckpointEvent) -> None:
        self.write(event.make_bundle(), event)
        self.written_epochs.append(event.report.epoch)


__all__ = [
    "LOCK_NAME",
    "ArchiveAtCheckpoint",
    "OutputFolderBusy",
    "OutputLock",
    "StopOnSignal",
    "check_writable",
    "clean_orphan_temps",
]
