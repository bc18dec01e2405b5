"""Atomic file replacement: every file this package writes for the user goes through here.

:func:`atomic_write` hands out a temporary file next to the target; only when the ``with`` block
ends without an exception is the file flushed, fsynced, given the permission bits of the file it
replaces (else ``0o666`` less the umask, like ``open``) and renamed over the target, and the
folder fsynced. A reader therefore sees the old file or the new one, never a partial one, and a
failed or interrupted write leaves the old file and no temporary behind. Stdlib only.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "file_mode"]


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a binary file whose content replaces ``path`` atomically when the block succeeds.

    Parent folders are created. Use as ``with atomic_write(p) as fh: fh.write(...)``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.chmod(tmp_name, file_mode(target))  # mkstemp makes 0600
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException as exc:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            # name the file and the cause (e.g. ENOSPC: no space left on device) in one line
            raise OSError(
                exc.errno, f"{exc.strerror or exc}; writing {str(target)!r} failed and the "
                f"previous file (if any) is unchanged"
            ) from exc
        raise
    _fsync_dir(target.parent)


def file_mode(target: Path) -> int:
    """Permission bits for a new file at ``target``: those of the file it replaces, else 0o666
    less the process umask (read without changing it, so that other threads are not affected)."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        pass
    umask = 0o022
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
                break
    except (OSError, ValueError, IndexError):
        pass
    return 0o666 & ~umask


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (best effort: some platforms cannot open folders)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
