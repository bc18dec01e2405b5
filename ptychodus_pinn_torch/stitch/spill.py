"""Patches kept on disk instead of in memory: the stitched crops of a large scan (STITCH-250).

Inference keeps one stitched crop per scan position for phase synchronization and stitching
(``(crop + 2)²`` complex64, ~9 KB at N = 64); 200,000 positions would hold 1.85 GB. Above a
memory budget, :class:`SpilledPatches` writes them with ordinary file writes to an anonymous
temporary file (``tempfile.TemporaryFile``: unlinked as soon as it is created on POSIX, so
nothing is left behind even when the process is killed; its space is freed when it is closed)
and reads them back in chunks through a read-only memory map whose touched pages are released
after every chunk (``data.paging.release_pages``): the resident set holds one chunk, the file's
pages stay in the OS page cache.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType

import numpy as np
import torch

from ptychodus_pinn_torch.data.paging import release_pages

__all__ = ["DISK_RESERVE_BYTES", "SpilledPatches", "check_spill_space"]

#: free space left on the spill folder's disk beyond the patches themselves (64 MiB)
DISK_RESERVE_BYTES = 64 * 2**20


def check_spill_space(directory: Path, need: int, setting: str = "spill_dir") -> None:
    """Raise a one-line ValueError unless ``directory`` exists and its file system has ``need``
    bytes plus :data:`DISK_RESERVE_BYTES` free. ``setting`` names the option that picks it."""
    if not directory.is_dir():
        raise ValueError(
            f"{setting} {str(directory)!r} is not a folder; pass an existing folder for the "
            f"temporary patch file"
        )
    free = shutil.disk_usage(directory).free
    if free < need + DISK_RESERVE_BYTES:
        raise ValueError(
            f"keeping the patches on disk needs {need / 2**20:.0f} MiB in {str(directory)!r} "
            f"(the {setting}) but only {free / 2**20:.0f} MiB are free; free space there, "
            f"point {setting} (--spill-dir, $TMPDIR) at a larger disk, or raise the patch "
            f"memory (patch_memory, --patch-memory) to keep them in memory"
        )


class SpilledPatches:
    """``(n, h, w)`` complex64 patches in a temporary file, written in order, then read in chunks.

    Use as a context manager (the file is closed, and so deleted, on exit, also on an error).

    Args:
        shape: ``(n, h, w)`` of the whole stack.
        directory: folder of the temporary file; its disk must hold ``n h w 8`` bytes
            (checked here, before anything is written: :func:`check_spill_space`).
        setting: the name of the option that chose ``directory`` (for the error message).
    """

    def __init__(self, shape: tuple[int, int, int], directory: str | Path,
                 setting: str = "spill_dir") -> None:
        n, h, w = (int(s) for s in shape)
        self.shape = (n, h, w)
        self.nbytes = n * h * w * 8
        self.directory = Path(directory)
        check_spill_space(self.directory, self.nbytes, setting)
        self._file = tempfile.TemporaryFile(prefix="pinn-torch-patches-", dir=self.directory)
        self._written = 0
        self._map: np.memmap | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __enter__(self) -> SpilledPatches:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Unmap and close the file (which deletes it); idempotent."""
        self._map = None  # the mmap closes when its last view is gone
        if not self._file.closed:
            self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def append(self, patches: torch.Tensor | np.ndarray) -> None:
        """Write the next ``(b, h, w)`` patches (any device; copied to the CPU as complex64)."""
        if self._map is not None:
            raise RuntimeError("SpilledPatches: append after the first read")
        if isinstance(patches, torch.Tensor):
            arr = patches.detach().to("cpu", torch.complex64).numpy()
        else:
            arr = np.asarray(patches, np.complex64)
        if arr.ndim != 3 or tuple(arr.shape[1:]) != self.shape[1:]:
            raise ValueError(f"patches: expected (b, {self.shape[1]}, {self.shape[2]}), got "
                             f"{tuple(arr.shape)}")
        if self._written + arr.shape[0] > self.shape[0]:
            raise ValueError(f"patches: more than the {self.shape[0]} declared")
        self._file.write(np.ascontiguousarray(arr).view(np.uint8).reshape(-1).data)
        self._written += arr.shape[0]

    def _mapped(self) -> np.memmap:
        if self._map is None:
            if self._written != self.shape[0]:
                raise RuntimeError(f"SpilledPatches: {self._written} of {self.shape[0]} "
                                   "patches written before the first read")
            self._file.flush()
            self._map = np.memmap(self._file, dtype=np.complex64, mode="r", shape=self.shape)
        return self._map

    def read(self, start: int, stop: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """Patches ``[start, stop)`` as a ``(stop - start, h, w)`` complex64 tensor on
        ``device`` (a copy; the map's pages are released)."""
        mapped = self._mapped()
        out = torch.from_numpy(np.array(mapped[start:stop]))
        release_pages(mapped)
        return out.to(device)

    def gather(self, index: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
        """Patches ``index`` ``(k,)`` int (repeats allowed) as a ``(k, h, w)`` complex64 tensor
        on ``device`` (a copy; the map's pages are released)."""
        mapped = self._mapped()
        rows = np.take(mapped, np.asarray(index, np.int64), axis=0)
        release_pages(mapped)
        return torch.from_numpy(np.asarray(rows)).to(device)
