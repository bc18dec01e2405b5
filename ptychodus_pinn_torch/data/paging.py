"""Passes over memory-mapped pattern stacks that keep the resident set bounded (DATA-184).

A read-only ``np.memmap`` counts every page it has touched in the process's resident set until
the mapping goes away, so one pass over a 3 GB stack would leave 3 GB resident. The passes here
read ``(M, N, N)`` stacks in chunks of about :data:`CHUNK_BYTES` and, after each chunk, drop the
touched pages from the process with ``madvise(MADV_DONTNEED)`` (:func:`release_pages`); the
data stays in the OS page cache, so reading it again costs no disk I/O while memory is free.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from typing import Any

import numpy as np

from ptychodus_pinn_torch.data.errors import DataError

__all__ = [
    "CHUNK_BYTES",
    "check_mapped",
    "chunk_rows",
    "is_mapped",
    "iter_chunks",
    "pattern_totals",
    "release_pages",
]

#: bytes of patterns handled per chunk by every streaming pass (64 MiB).
CHUNK_BYTES = 64 * 2**20


def _mapping(array: Any) -> mmap.mmap | None:
    base: Any = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    return base if isinstance(base, mmap.mmap) else None


def is_mapped(array: Any) -> bool:
    """True if ``array`` is (a view of) a memory-mapped file."""
    return _mapping(array) is not None


def release_pages(array: np.ndarray) -> None:
    """Drop the resident pages of a memory-mapped ``array`` from this process (no-op for an
    in-memory array). The data stays in the OS page cache; the next access maps it again."""
    mapping = _mapping(array)
    if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


def chunk_rows(shape: tuple[int, ...], itemsize: int) -> int:
    """Rows of an array of ``shape`` (items of ``itemsize`` bytes) in one chunk (>= 1)."""
    per_row = int(np.prod(shape[1:], dtype=np.int64)) * itemsize
    return max(1, CHUNK_BYTES // max(per_row, 1))


def iter_chunks(array: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, rows)`` chunks of ``array`` along axis 0 (about :data:`CHUNK_BYTES` each); the
    pages of a memory-mapped array are released after each chunk."""
    step = chunk_rows(array.shape, array.dtype.itemsize)
    for lo in range(0, array.shape[0], step):
        yield lo, np.asarray(array[lo:lo + step])
        release_pages(array)


def check_mapped(array: np.ndarray, key: str = "diff3d") -> None:
    """DATA-003 checks of ``(M, N, N)`` amplitudes, chunk by chunk: finite, not negative, no
    all-zero pattern. Raises :class:`DataError` naming the key and the patterns."""
    zero: list[int] = []
    for lo, chunk in iter_chunks(array):
        flat = chunk.reshape(chunk.shape[0], -1)
        if chunk.dtype.kind == "f" and not np.isfinite(flat).all():
            first = lo + int(np.flatnonzero(~np.isfinite(flat).all(axis=1))[0])
            raise DataError(f"{key} has non-finite values (first in pattern {first}); mask or "
                            "inpaint those pixels and convert again")
        if chunk.dtype.kind != "u" and flat.min() < 0:
            first = lo + int(np.flatnonzero((flat < 0).any(axis=1))[0])
            raise DataError(f"{key} has negative values (first in pattern {first}); diffraction "
                            "must be amplitude sqrt(counts) >= 0")
        zero.extend((lo + np.flatnonzero(~flat.any(axis=1))).tolist())
    if zero:
        raise DataError(f"{key} has {len(zero)} all-zero patterns (indices {zero[:10]}); drop "
                        "them (RawData.subset) or check the detector data")


def pattern_totals(array: np.ndarray) -> np.ndarray:
    """``(M,)`` float64 per-pattern total intensity ``sum(x**2)`` of ``(M, N, N)`` amplitudes,
    computed chunk by chunk (normalization of grouped data without loading the patterns)."""
    totals = np.empty(array.shape[0], dtype=np.float64)
    for lo, chunk in iter_chunks(array):
        totals[lo:lo + chunk.shape[0]] = np.sum(np.square(chunk, dtype=np.float64), axis=(1, 2))
    return totals
