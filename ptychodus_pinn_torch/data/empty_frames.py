"""All-zero diffraction frames (beam off, detector dropout): dropped with a warning that names
how many and which, or kept so that validation refuses them (specs/DATA.md, DATA-124).

Real detector data has such frames; they carry no information about the object, and in the
Poisson loss an all-zero measurement only pushes the predicted intensity towards zero.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

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


def keep_mask(diff3d: np.ndarray, where: str = "scan") -> np.ndarray | None:
    """``(M,)`` bool mask of the frames to keep, or None when none (or every one) is empty
    (validation then refuses an all-empty scan by name); a warning names the dropped ones."""
    if getattr(diff3d, "ndim", 0) != 3 or diff3d.shape[0] == 0:
        return None
    empty = empty_frame_indices(diff3d)
    m = int(diff3d.shape[0])
    if empty.size == 0 or empty.size == m:
        return None
    keep = np.ones(m, bool)
    keep[empty] = False
    shown = ", ".join(str(i) for i in empty[:10]) + (", ..." if empty.size > 10 else "")
    logger.warning(
        "%s: dropped %d of %d diffraction frames that are all zero (indices %s; beam off or "
        "detector dropout; pinn-torch --keep-empty-frames refuses such a scan instead)",
        where, empty.size, m, shown,
    )
    return keep


#: The per-position entries of a scan (first axis M).
PER_POSITION_KEYS = ("xcoords", "ycoords", "xcoords_start", "ycoords_start", "diff3d",
                     "scan_index", "Y")


def take_rows(array: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The rows of ``array`` ``(M, ...)`` where the ``(M,)`` bool mask ``keep`` is True, as a new
    in-memory array, read chunk by chunk (a memory map's pages are released after each)."""
    out = np.empty((int(np.count_nonzero(keep)), *array.shape[1:]), array.dtype)
    at = 0
    for start, chunk in iter_chunks(array):
        part = chunk[keep[start:start + chunk.shape[0]]]
        out[at:at + part.shape[0]] = part
        at += part.shape[0]
    return out


def take_positions(arrays: dict[str, Any], keep: np.ndarray) -> dict[str, Any]:
    """``arrays`` with its per-position entries (:data:`PER_POSITION_KEYS`) restricted to the
    ``(M,)`` mask ``keep``; other entries (probe, object, mask, metadata) unchanged."""
    def take(v: Any) -> Any:
        return take_rows(v, keep) if getattr(v, "ndim", 0) >= 3 else v[keep]

    return {k: (take(v) if k in PER_POSITION_KEYS and v is not None else v)
            for k, v in arrays.items()}


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
    keep = keep_mask(scan.diff3d, where)
    if keep is None:
        return scan
    fields = {"xcoords": scan.xcoords, "ycoords": scan.ycoords, "diff3d": scan.diff3d,
              "xcoords_start": scan.xcoords_start, "ycoords_start": scan.ycoords_start,
              "scan_index": scan.scan_index, "Y": scan.Y}
    taken = take_positions({k: v for k, v in fields.items() if v is not None}, keep)
    return dataclasses.replace(
        scan, **{k: taken.get(k) for k in fields},
        metadata={**scan.metadata, "dropped_empty_frames": int((~keep).sum())},
    )
