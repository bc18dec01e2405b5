"""Sizes an NPZ file declares, checked before any array is inflated (specs/DATA.md, DATA-120).

Every member of an NPZ is a ``.npy`` file whose header states its shape and dtype. The headers are
read here without decompressing the data (a few hundred bytes per member), and the file is refused
when a member's data cannot be what the zip declares, when a large member compresses better than
any detector data does (a zip bomb: 2 MB of deflated ones declaring 2 GiB), when the scan exceeds
the pattern-count or pattern-size limits, or when the arrays and their float32 working copy would
not fit the memory budget. ``pinn-torch reconstruct`` also checks the pattern size against the
model's N here, before reading the scan.

The memory budget defaults to half of the physical memory (or of the cgroup limit, whichever is
smaller) and is set with the environment variable ``PINN_TORCH_MEMORY_BUDGET`` (bytes, or a number
with a K/M/G/T suffix, e.g. ``24G``) or ``--memory-budget`` of the command line.
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ptychodus_pinn_torch.data.errors import DataError

__all__ = [
    "MEMORY_BUDGET_ENV",
    "DataLimits",
    "NpyHeader",
    "check_npz_file",
    "default_memory_budget",
    "parse_bytes",
    "read_npz_headers",
]

#: Environment variable holding the memory budget (bytes or e.g. "24G").
MEMORY_BUDGET_ENV = "PINN_TORCH_MEMORY_BUDGET"
_GiB = 1 << 30
_MiB = 1 << 20
#: Largest ``.npy`` header read (bytes); numpy's own default limit.
MAX_NPY_HEADER_BYTES = 10_000
_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)


def parse_bytes(text: str, name: str = MEMORY_BUDGET_ENV) -> int:
    """``"24G"``, ``"512M"``, ``"1.5T"`` or ``"1000000"`` as a positive number of bytes
    (K/M/G/T are powers of 1024). Raises DataError naming ``name`` otherwise."""
    match = _SIZE_RE.match(text)
    if not match:
        raise DataError(
            f"{name}={text!r} is not a size; give bytes or a number with K, M, G or T "
            f"(e.g. 24G)"
        )
    unit = (match.group(2) or "B")[0].upper()
    value = float(match.group(1)) * {"B": 1, "K": 1 << 10, "M": _MiB, "G": _GiB, "T": 1 << 40}[unit]
    if not value >= 1:
        raise DataError(f"{name}={text!r} must be at least 1 byte")
    return int(value)


def _physical_memory() -> int:
    """Bytes of physical memory, bounded by a cgroup v2/v1 limit when one is set."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for limit_file in ("/sys/fs/cgroup/memory.max",
                       "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:
            total = int(text)
    return int(total)


def default_memory_budget() -> int:
    """``PINN_TORCH_MEMORY_BUDGET`` if set, else half of the physical (or cgroup) memory."""
    text = os.environ.get(MEMORY_BUDGET_ENV, "").strip()
    if text:
        return parse_bytes(text)
    return _physical_memory() // 2


@dataclass(frozen=True)
class DataLimits:
    """What a scan file may declare.

    Attributes:
        memory_budget: bytes the declared arrays plus a float32 copy of ``diff3d`` may take.
        max_patterns: most diffraction patterns M.
        max_pattern_size: largest pattern side N (pixels).
        max_ratio: highest uncompressed/compressed ratio of a member above ``ratio_min_bytes``.
        ratio_min_bytes: members at most this large are not ratio-checked.
    """

    memory_budget: int
    max_patterns: int = 10_000_000
    max_pattern_size: int = 4096
    max_ratio: float = 500.0
    ratio_min_bytes: int = 64 * _MiB

    @staticmethod
    def default() -> DataLimits:
        """Limits with :func:`default_memory_budget`."""
        return DataLimits(memory_budget=default_memory_budget())


@dataclass(frozen=True)
class NpyHeader:
    """One NPZ member as declared: ``shape``, ``dtype``, ``nbytes`` (data bytes the header
    implies), ``stored_bytes`` (uncompressed member size the zip declares) and
    ``compressed_bytes``."""

    key: str
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int
    stored_bytes: int
    compressed_bytes: int


def read_npy_header(fh: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of the ``.npy`` header at ``fh``'s position (version
    1.0 or 2.0, at most :data:`MAX_NPY_HEADER_BYTES`); leaves ``fh`` at the array data.

    Raises:
        ValueError, EOFError: not a ``.npy`` header (numpy's own errors).
    """
    version = np.lib.format.read_magic(fh)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = read_header(fh, max_header_size=MAX_NPY_HEADER_BYTES)
    return tuple(int(n) for n in shape), bool(fortran), dtype


def _human(n: float) -> str:
    return f"{n / _GiB:.2f} GiB" if n >= _GiB else f"{n / _MiB:.1f} MiB"


def read_npz_headers(path: str | Path) -> dict[str, NpyHeader]:
    """The declared shape, dtype and sizes of every ``.npy`` member, reading only the headers.

    Args:
        path: an NPZ (zip) file.

    Returns:
        ``{key: NpyHeader}`` (key = member name without ``.npy``); members not ending in
        ``.npy`` are skipped.

    Raises:
        DataError: a member header that is not a ``.npy`` header, declares an object dtype, or
            declares more data than the member holds (corrupt or hostile).
    """
    path = Path(path)
    headers: dict[str, NpyHeader] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                key = info.filename[: -len(".npy")]
                with zf.open(info) as fh:
                    try:
                        shape, _, dtype = read_npy_header(fh)
                    except (ValueError, EOFError) as exc:
                        raise DataError(
                            f"NPZ key {key!r} in {str(path)!r} has no valid .npy header "
                            f"({str(exc)[:100]}); re-save the file"
                        ) from exc
                    header_end = fh.tell()
                if dtype.hasobject:
                    raise DataError(
                        f"NPZ key {key!r} in {str(path)!r} holds an object (pickled) array, "
                        "which is never loaded for safety; re-save it as a numeric array"
                    )
                count = math.prod(int(s) for s in shape)
                nbytes = count * dtype.itemsize
                if header_end + nbytes > info.file_size:
                    raise DataError(
                        f"NPZ key {key!r} in {str(path)!r} declares shape {tuple(shape)} "
                        f"{dtype} ({nbytes} bytes) in a {info.file_size}-byte member; the file is "
                        "corrupt or hostile, re-save it"
                    )
                headers[key] = NpyHeader(key, tuple(int(s) for s in shape), dtype, nbytes,
                                         info.file_size, info.compress_size)
    except DataError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise DataError(f"{str(path)!r} could not be opened as NPZ ({exc}); re-save it") from exc
    return headers


def check_npz_file(
    path: str | Path,
    limits: DataLimits | None = None,
    *,
    expected_n: int | None = None,
    headers: Mapping[str, NpyHeader] | None = None,
) -> dict[str, NpyHeader]:
    """Refuse an NPZ scan whose declared sizes break ``limits``, before anything is inflated.

    Args:
        path: the NPZ file.
        limits: defaults to :meth:`DataLimits.default`.
        expected_n: the model's N (reconstruct): ``diff3d`` patterns must be N x N.
        headers: already-read headers (else :func:`read_npz_headers`).

    Returns:
        The headers.

    Raises:
        DataError: one line naming the key, the declared size and the limit or fix, for a member
            compressed beyond ``max_ratio``; ``diff3d`` with more than ``max_patterns``
            patterns, patterns larger than ``max_pattern_size`` or not ``expected_n``; arrays
            (plus a float32 copy of ``diff3d``) above ``memory_budget``.
    """
    limits = limits or DataLimits.default()
    headers = dict(headers) if headers is not None else read_npz_headers(path)
    where = f"{str(Path(path))!r}"
    for h in headers.values():
        if h.stored_bytes > limits.ratio_min_bytes and (
            h.stored_bytes > limits.max_ratio * max(h.compressed_bytes, 1)
        ):
            raise DataError(
                f"NPZ key {h.key!r} in {where} declares {_human(h.stored_bytes)} from "
                f"{_human(h.compressed_bytes)} compressed (ratio "
                f"{h.stored_bytes / max(h.compressed_bytes, 1):.0f}, above "
                f"{limits.max_ratio:.0f}), which no detector data compresses to; refused as a zip "
                "bomb (if the data is genuine, re-save it uncompressed with numpy.savez)"
            )
    diff = headers.get("diff3d")
    if diff is not None and len(diff.shape) == 3:
        m, n1, n2 = diff.shape
        if m > limits.max_patterns:
            raise DataError(
                f"diff3d in {where} declares {m} patterns, above the limit of "
                f"{limits.max_patterns}; split the scan into smaller files"
            )
        if max(n1, n2) > limits.max_pattern_size:
            raise DataError(
                f"diff3d in {where} declares {n1} x {n2} patterns, above the "
                f"{limits.max_pattern_size}-pixel limit; crop or bin the detector frames"
            )
        if expected_n is not None and (n1, n2) != (expected_n, expected_n):
            raise DataError(
                f"diff3d in {where} holds {n1} x {n2} patterns, but the model expects "
                f"N = {expected_n}; crop or bin the frames to {expected_n} x {expected_n}, or "
                f"use a model trained at N = {n1}"
            )
    working = 0 if diff is None else math.prod(diff.shape) * 4  # the float32 amplitudes
    need = sum(h.nbytes for h in headers.values()) + working
    if need > limits.memory_budget:
        biggest = max(headers.values(), key=lambda h: h.nbytes)
        raise DataError(
            f"{where} declares {_human(need)} of arrays and working copies (largest: "
            f"{biggest.key} {biggest.shape} {biggest.dtype}, {_human(biggest.nbytes)}), above "
            f"the memory budget of {_human(limits.memory_budget)}; raise it with "
            f"{MEMORY_BUDGET_ENV} (e.g. {MEMORY_BUDGET_ENV}=64G) or --memory-budget, or split "
            "the scan"
        )
    return headers
