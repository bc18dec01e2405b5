"""Checks and conversions of the arrays of the NPZ contract (upstream reference §1.1-1.3).

Every check raises :class:`DataError` naming the key, the value seen and the fix. The
amplitude/intensity policy for ``diff3d`` lives here (see specs/DATA.md, DATA-004).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ptychodus_pinn_torch.data.errors import DataError
from ptychodus_pinn_torch.data.paging import check_mapped, chunk_rows, is_mapped, release_pages

logger = logging.getLogger(__name__)

DiffractionKind = Literal["auto", "amplitude", "intensity"]
DIFFRACTION_KINDS: tuple[str, ...] = ("auto", "amplitude", "intensity")


def _real_numeric(key: str, value: object) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == object:
        raise DataError(f"{key} has dtype object; pass a numeric array")
    if array.dtype.kind not in "iuf":
        raise DataError(
            f"{key} must be a real numeric array, got dtype {array.dtype}; convert it "
            "(e.g. np.asarray(value, dtype=np.float64))"
        )
    return array


def coordinates(key: str, value: object) -> np.ndarray:
    """A 1-D finite coordinate array as float64 ``(M,)`` (object pixels)."""
    array = _real_numeric(key, value)
    if array.ndim != 1:
        raise DataError(f"{key} must be 1-D (M,), got shape {array.shape}; flatten it")
    array = array.astype(np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{key} has {int(bad.sum())} non-finite values (first at index {first}: "
            f"{array[first]}); remove or fix those positions"
        )
    return array


def _conversion_rows(shape: tuple[int, ...]) -> int:
    """Rows per chunk of the passes below: about ``CHUNK_BYTES`` of float64 working copy."""
    return chunk_rows(shape, 8)


def _row_chunks(array: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, rows)`` chunks of ``array`` along axis 0; a memory map's pages are released
    after each chunk (DATA-184)."""
    step = _conversion_rows(array.shape)
    for lo in range(0, array.shape[0], step):
        yield lo, np.asarray(array[lo:lo + step])
        release_pages(array)


@dataclass
class _PatternStats:
    """What one chunked pass over ``(M, N, N)`` diffraction data found (DATA-003/004)."""

    nonfinite: int = 0
    first_nonfinite: int = -1
    minimum: np.number | None = None
    negative_patterns: list[int] = field(default_factory=list)
    zero_patterns: list[int] = field(default_factory=list)
    maximum: np.number | None = None
    integer_valued: bool = True


def _pattern_stats(array: np.ndarray, want_integers: bool) -> _PatternStats:
    """One chunked pass: non-finite count and first pattern, minimum and the first negative
    patterns, all-zero patterns, maximum and (``want_integers``) whether every value is an
    integer. Temporaries are chunk-sized, never the size of ``array``."""
    stats = _PatternStats()
    floating = array.dtype.kind == "f"
    for lo, chunk in _row_chunks(array):
        flat = chunk.reshape(chunk.shape[0], -1)
        if floating:
            finite = np.isfinite(flat)
            if not finite.all():
                bad_rows = ~finite.all(axis=1)
                stats.nonfinite += int(flat.size - np.count_nonzero(finite))
                if stats.first_nonfinite < 0:
                    stats.first_nonfinite = lo + int(np.flatnonzero(bad_rows)[0])
                continue  # the pass goes on only to count; DATA-003 refuses the data
            del finite
        if stats.nonfinite:
            continue
        lowest, highest = flat.min(), flat.max()  # numpy scalars: messages print as before
        if stats.minimum is None or lowest < stats.minimum:
            stats.minimum = lowest
        if stats.maximum is None or highest > stats.maximum:
            stats.maximum = highest
        if array.dtype.kind != "u" and lowest < 0 and len(stats.negative_patterns) < 5:
            rows = np.flatnonzero((flat < 0).any(axis=1))
            stats.negative_patterns.extend((lo + rows[:5]).tolist())
            del stats.negative_patterns[5:]
        totals = np.sum(flat, axis=1, dtype=np.float64)
        stats.zero_patterns.extend((lo + np.flatnonzero(totals == 0)).tolist())
        if want_integers and stats.integer_valued:
            stats.integer_valued = bool(np.all(np.floor(flat) == flat))
    return stats


def _converted(array: np.ndarray, kind: str, key: str, in_place: bool) -> np.ndarray:
    """float32 amplitudes of ``array`` (``kind`` "intensity": ``sqrt`` in float64 first),
    written chunk by chunk into one preallocated ``(M, N, N)`` array, or (``in_place``, for a
    private writable C-contiguous float32 ``array``) into ``array`` itself; values that overflow
    float32 are refused as in :func:`_finite_after_cast` (DATA-121)."""
    out = array if in_place else np.empty(array.shape, dtype=np.float32)
    may_overflow = not (array.dtype.itemsize <= 4 and array.dtype.kind == "f")
    overflow = 0
    first: tuple[int, ...] | None = None
    for lo, chunk in _row_chunks(array):
        target = out[lo:lo + chunk.shape[0]]
        if kind == "intensity":
            np.sqrt(chunk, out=target, dtype=np.float64, casting="unsafe")
        else:
            target[...] = chunk
        if may_overflow:
            bad = ~np.isfinite(target)
            if bad.any():
                overflow += int(bad.sum())
                if first is None:
                    at = np.unravel_index(int(np.flatnonzero(bad)[0]), target.shape)
                    first = (lo + int(at[0]), *(int(i) for i in at[1:]))
    if first is not None:
        raise DataError(
            f"{key} has {overflow} values that are finite in {array.dtype} but overflow "
            f"{out.dtype} (first at index {first}: {array[first]!r}; the largest float32 is "
            "3.4e38); rescale the data"
        )
    return out


def looks_like_counts(array: np.ndarray) -> bool:
    """True if ``array`` holds integer-valued floats above 1 (detector counts, not amplitudes).

    Amplitudes ``sqrt(counts)`` are integer-valued only where the counts are perfect squares,
    so an integer-valued array with a maximum above 1 is taken as intensity.
    """
    if array.dtype.kind in "iu":
        return True
    if array.size == 0:
        return False
    return bool(np.max(array) > 1.0 and np.all(np.floor(array) == array))


def diffraction_amplitude(
    value: object, kind: DiffractionKind = "auto", key: str = "diff3d", *,
    private: bool = False,
) -> np.ndarray:
    """Validate diffraction data and return float32 amplitudes ``(M, N, N)``.

    Every pass reads ``value`` in chunks of rows (about ``paging.CHUNK_BYTES`` of float64
    working copy), so besides the result no temporary is larger than a chunk (DATA-240).

    Args:
        value: ``(M, N, N)`` real array, amplitude ``sqrt(counts)`` or intensity (counts).
        kind: ``"amplitude"`` (take as is), ``"intensity"`` (apply sqrt), or ``"auto"``:
            integer dtypes and integer-valued float data with maximum > 1 are intensity and are
            converted with a logged warning; everything else is amplitude.
        key: name used in messages.
        private: ``value`` belongs to the caller alone (a reader's fresh array): an in-memory
            C-contiguous float32 amplitude array is returned itself instead of copied, and a
            memory map is read into memory (never kept). False (default): the result never
            shares memory with ``value``, except a float32 memory map of amplitudes (given as
            ``"amplitude"`` or found so by ``"auto"``), which is kept mapped (DATA-184/241).

    Returns:
        ``(M, N, N)`` float32 amplitudes.

    Raises:
        DataError: not 3-D, not square, empty, non-finite, negative, or an all-zero pattern.
    """
    if kind not in DIFFRACTION_KINDS:
        raise DataError(f"diffraction kind must be one of {DIFFRACTION_KINDS}, got {kind!r}")
    array = _real_numeric(key, value)
    if array.ndim != 3:
        raise DataError(
            f"{key} must be 3-D (M, N, N) with one pattern per scan position, got shape "
            f"{array.shape}; stack the patterns along the first axis"
        )
    if array.shape[1] != array.shape[2]:
        raise DataError(
            f"{key} patterns must be square N x N, got {array.shape[1]} x {array.shape[2]}; "
            "crop the detector frames to a square"
        )
    if array.shape[0] == 0:
        raise DataError(f"{key} holds no patterns (shape {array.shape}); pass at least one")
    mapped = is_mapped(array)
    keep_map = mapped and array.dtype == np.float32 and not private
    if kind == "amplitude" and keep_map:
        check_mapped(array, key)  # chunk by chunk; the memory map is kept (DATA-184)
        return value if isinstance(value, np.memmap) else array
    stats = _pattern_stats(array, want_integers=kind == "auto" and array.dtype.kind == "f")
    if stats.nonfinite:
        raise DataError(
            f"{key} has {stats.nonfinite} non-finite values (first in pattern "
            f"{stats.first_nonfinite}); mask or inpaint those pixels"
        )
    if stats.negative_patterns:
        raise DataError(
            f"{key} has negative values (minimum {stats.minimum}, in patterns "
            f"{stats.negative_patterns}...); diffraction must be amplitude sqrt(counts) >= 0, "
            "clip or re-process the data"
        )
    if stats.zero_patterns:
        zero = stats.zero_patterns
        raise DataError(
            f"{key} has {len(zero)} all-zero patterns (indices {zero[:10]}); drop them "
            "(pinn-torch train/reconstruct do unless --keep-empty-frames; in Python "
            "RawData.from_file(..., drop_empty_frames=True)) or check the detector data"
        )
    if kind == "auto":
        counts = array.dtype.kind in "iu" or bool(stats.maximum > 1.0 and stats.integer_valued)
        if counts:
            logger.warning(
                "%s looks like intensity (dtype %s, integer values, max %s): converting to "
                "amplitude with sqrt. Pass diffraction_kind='amplitude' to keep it as is.",
                key, array.dtype, stats.maximum,
            )
            kind = "intensity"
        else:
            kind = "amplitude"
    if kind == "amplitude" and keep_map:  # "auto" found amplitudes: the map is kept (DATA-241)
        return value if isinstance(value, np.memmap) else array
    own = (private and not mapped and array.dtype == np.float32 and array.flags.c_contiguous
           and array.flags.writeable)
    if kind == "amplitude" and own:
        return array  # the caller's own fresh copy: no second one (DATA-240)
    return _converted(array, kind, key, in_place=own)


def _finite_after_cast(key: str, cast: np.ndarray, source: np.ndarray) -> None:
    """Refuse values that were finite in ``source`` but overflow the float32/complex64 ``cast``
    (e.g. 1e300 -> inf); DATA-121."""
    if source.dtype.itemsize <= cast.dtype.itemsize and source.dtype.kind == cast.dtype.kind:
        return  # the cast cannot overflow
    bad = ~np.isfinite(cast)
    if bad.any():
        count = int(bad.sum())
        first = np.unravel_index(int(np.flatnonzero(bad)[0]), cast.shape)
        raise DataError(
            f"{key} has {count} values that are finite in {source.dtype} but overflow "
            f"{cast.dtype} (first at index {tuple(int(i) for i in first)}: "
            f"{source[first]!r}; the largest float32 is 3.4e38); rescale the data"
        )


def probe(value: object, N: int, key: str = "probeGuess") -> np.ndarray:
    """Validate a probe and return it as complex64 ``(N, N)``.

    A ``(modes, N, N)`` stack (ptychodus' export) is reduced to its first mode with a logged note.
    """
    array = np.asarray(value)
    if array.dtype.kind not in "iufc":  # (object arrays have kind "O")
        raise DataError(f"{key} must be a numeric (complex) array, got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[0] == 0:
        raise DataError(
            f"{key} has shape {array.shape}: a stack of zero probe modes; pass at least one "
            f"({N}, {N}) mode"
        )
    if array.ndim == 3:
        logger.info(
            "%s has %d modes (shape %s): using the first mode (ptychodus export layout)",
            key, array.shape[0], array.shape,
        )
        if array.shape[0] > 1:
            logger.warning("%s: dropping %d incoherent probe modes", key, array.shape[0] - 1)
        array = array[0]
    if array.ndim != 2 or array.shape != (N, N):
        raise DataError(
            f"{key} must be 2-D N x N = ({N}, {N}) matching the diffraction patterns, got shape "
            f"{np.asarray(value).shape}; pass the probe sampled on the detector grid"
        )
    if not np.all(np.isfinite(array)):
        raise DataError(f"{key} has non-finite values; fix the probe")
    if not np.any(array != 0):
        raise DataError(f"{key} is all zeros; pass the illumination (probe) estimate")
    out = array.astype(np.complex64)
    _finite_after_cast(key, out, array)
    return out


def object_guess(value: object, key: str = "objectGuess") -> np.ndarray | None:
    """Validate an optional object and return it as complex64 ``(H, W)`` or None."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype.kind not in "iufc":  # (object arrays have kind "O")
        raise DataError(f"{key} must be a numeric (complex) array, got dtype {array.dtype}")
    if array.ndim != 2:
        raise DataError(f"{key} must be 2-D (H, W), got shape {array.shape}; pass one layer")
    if not np.all(np.isfinite(array)):
        raise DataError(f"{key} has non-finite values; fix or omit the object")
    out = array.astype(np.complex64)
    _finite_after_cast(key, out, array)
    return out


def scan_index(value: object, M: int, key: str = "scan_index") -> np.ndarray:
    """Validate ``scan_index`` and return int64 ``(M,)`` (zeros when None)."""
    if value is None:
        return np.zeros(M, dtype=np.int64)
    array = np.asarray(value)
    if array.dtype.kind not in "iu" and not (
        array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.floor(array))
    ):
        raise DataError(f"{key} must hold integers, got dtype {array.dtype}")
    if array.shape != (M,):
        raise DataError(
            f"{key} must be 1-D with one entry per pattern ({M},), got shape {array.shape}"
        )
    return array.astype(np.int64)


def ground_truth_patches(
    value: object, M: int, N: int, key: str = "Y", *, private: bool = False,
) -> np.ndarray | None:
    """Validate optional per-pattern ground truth ``(M, N, N)`` or ``(M, N, N, 1)`` -> complex64
    ``(M, N, N)``, checked and cast chunk by chunk (no whole-array temporary; DATA-240).

    ``private`` as in :func:`diffraction_amplitude`: a reader's own in-memory complex64 stack is
    kept without a copy and a memory map of a file member is read into memory; otherwise a
    mapped complex64 stack stays mapped (DATA-184) and anything else is copied."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.shape != (M, N, N):
        raise DataError(
            f"{key} must be (M, N, N) = ({M}, {N}, {N}) complex patches, got shape "
            f"{np.asarray(value).shape}; omit it or extract one patch per pattern"
        )
    if array.dtype.kind not in "iufc":  # (object arrays have kind "O")
        raise DataError(f"{key} must be numeric, got dtype {array.dtype}")
    mapped = is_mapped(array)
    if array.dtype == np.complex64 and mapped and not private:
        # a memory-mapped label stack stays mapped (DATA-184)
        return value if isinstance(value, np.memmap) and value.ndim == 3 else array
    keep = (private and not mapped and array.dtype == np.complex64
            and array.flags.c_contiguous and array.flags.writeable)
    out = array if keep else np.empty(array.shape, np.complex64)
    bad_count, bad_patterns = 0, []
    for lo, chunk in _row_chunks(array):
        target = out[lo:lo + chunk.shape[0]]
        if not keep:
            target[...] = chunk
        finite = np.isfinite(target).reshape(target.shape[0], -1)
        if not finite.all():
            bad_count += int(finite.size - np.count_nonzero(finite))
            bad_patterns.extend((lo + np.flatnonzero(~finite.all(axis=1))).tolist())
    if bad_count:
        raise DataError(
            f"{key} has {bad_count} NaN/Inf values (after the complex64 cast) in patterns "
            f"{bad_patterns[:10]}; fix the labels or omit {key} (it is only used for "
            f"supervised training and evaluation)"
        )
    return out


def bad_pixel_mask(value: object, N: int, key: str = "bad_pixels") -> np.ndarray | None:
    """Validate an optional ``(N, N)`` bad-pixel mask and return it as bool or None."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.shape != (N, N):
        raise DataError(f"{key} must be ({N}, {N}) like one pattern, got shape {array.shape}")
    if array.dtype.kind not in "biu":
        raise DataError(f"{key} must be a boolean mask, got dtype {array.dtype}")
    return array.astype(bool)


def metadata(value: dict[str, object] | None) -> dict[str, object]:
    """A copy of the scan metadata with ``nphotons``, when present, checked to be a finite
    number > 0 (photons per pattern; DATA-122)."""
    meta = dict(value or {})
    if "nphotons" in meta:
        n = meta["nphotons"]
        ok = isinstance(n, int | float) and not isinstance(n, bool) and np.isfinite(n) and n > 0
        if not ok:
            raise DataError(
                f"metadata nphotons={n!r} is not a photon count: it must be a finite number > 0 "
                "(photons per pattern); fix or remove it in the '_metadata' JSON, or pass "
                "--nphotons"
            )
    return meta


def warn_duplicate_positions(x: np.ndarray, y: np.ndarray) -> int:
    """Warn (DATA-123) when scan positions repeat; returns how many positions repeat an earlier
    one (0 when all differ)."""
    if x.size < 2:
        return 0
    unique = np.unique(np.stack([x, y], axis=1), axis=0)
    repeats = int(x.size - unique.shape[0])
    if repeats:
        what = (
            f"all {x.size} scan positions are identical ({x[0]:g}, {y[0]:g})"
            if unique.shape[0] == 1
            else f"{repeats} of {x.size} scan positions repeat an earlier one"
        )
        logger.warning(
            "%s: the overlap between neighbouring patterns is lost there and stitching "
            "averages the same spot; check xcoords/ycoords", what,
        )
    return repeats
