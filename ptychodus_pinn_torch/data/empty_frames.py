"""All-zero diffraction frames (beam off, detector dropout): dropped with a warning that names
how many and which, or kept so that validation refuses them (specs/DATA.md, DATA-124).

Real detector data has such frames; they carry no information about the object, and in the
Poisson loss an all-zero measurement only pushes the predicted intensity towards zero.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from ptychodus_pinn_torch.data.paging import iter_chunks
from ptychodus_pinn_torch.data.readers import ScanArrays

logger = logging.getLogger(__name__)


def empty_frame_indices(diff3d: np.ndarray) -> np.ndarray:
    """Indices ``(k,)`` int64 of the frames of ``diff3d`` ``(M, N, N)`` whose pixels are all
    zero; read chunk by chunk, so a memory-mapped stack is never loaded whole."""
    found: list[np.ndarray] = []
    for start, chunk in iter_chunks(diff3d):  # releases a mapped stack's pages (DATA-184)
        nonzero = np.any(chunk.reshape(chunk.shape[0], -1) != 0, axis=1)
        found.append(np.flatnonzero(~nonzero) + start)
    return np.concatenate(found).astype(np.int64) if found else np.zeros(0, np.int64)


def drop_empty_frames(scan: ScanArrays, where: str = "scan") -> ScanArrays:
    """``scan`` without its all-zero frames (positions, labels and scan indices alike).

    Args:
        scan: a reader's arrays (``diff3d`` ``(M, N, N)``, per-position ``(M,)`` fields).
        where: the file or scan name for the warning.

    Returns:
        ``scan`` itself when no frame is empty (or when every frame is: validation then refuses
        the scan by name), else a copy holding the ``M - k`` other positions; a warning names
        ``k`` and the first indices.
    """
    diff = scan.diff3d
    if getattr(diff, "ndim", 0) != 3 or diff.shape[0] == 0:
        return scan
    empty = empty_frame_indices(diff)
    m = int(diff.shape[0])
    if empty.size == 0 or empty.size == m:
        return scan
    keep = np.ones(m, bool)
    keep[empty] = False

    def take(value: np.ndarray | None) -> np.ndarray | None:
        if value is None:
            return None
        array = np.asarray(value)
        return array[keep] if array.ndim >= 1 and array.shape[0] == m else array

    shown = ", ".join(str(i) for i in empty[:10]) + (", ..." if empty.size > 10 else "")
    logger.warning(
        "%s: dropped %d of %d diffraction frames that are all zero (indices %s; beam off or "
        "detector dropout); pass --keep-empty-frames to refuse such a scan instead",
        where, empty.size, m, shown,
    )
    return dataclasses.replace(
        scan,
        xcoords=take(scan.xcoords), ycoords=take(scan.ycoords), diff3d=diff[keep],
        xcoords_start=take(scan.xcoords_start), ycoords_start=take(scan.ycoords_start),
        scan_index=take(scan.scan_index), Y=take(scan.Y),
        metadata={**scan.metadata, "dropped_empty_frames": int(empty.size)},
    )
