"""The data boundary: a small registry of scan readers in front of the one ``RawData`` constructor.

Every way a scan enters the package is a *reader*: it recognizes its format from the path
(:meth:`ScanReader.sniff`, cheap: file names, zip member names, ``.npy`` headers, HDF5 keys,
never the pattern data) and turns it into :class:`ScanArrays`, the raw fields of one scan with
the diffraction convention it is stored in. :meth:`RawData.from_scan` is the only place that
validates and converts them (DATA-180). Formats, in detection order (first sniff that says yes):

- ``ptychodus-export``: NPZ from ptychodus' ``save_ptychopinn_training_data`` (``(modes, N, N)``
  ``probeGuess``; intensity ``diff3d``; DATA-005);
- ``npz``: the upstream PtychoPINN NPZ contract (and :meth:`RawData.to_file`);
- ``ptychodus-h5``: ptychodus' standard files ``diffraction.h5`` + ``product.h5``
  (:mod:`.ptychodus_files`; a folder holding both, or either file with the other beside it).

Adding a format is one class with ``name``, ``description``, ``sniff`` and ``read`` and one
:func:`register_reader` call.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ptychodus_pinn_torch.data.errors import DataError
from ptychodus_pinn_torch.data.validation import DiffractionKind

__all__ = [
    "AUTO",
    "FunctionReader",
    "PatternStream",
    "ScanArrays",
    "ScanReader",
    "detect_format",
    "read_scan_arrays",
    "reader_names",
    "register_reader",
    "unregister_reader",
]

#: the ``format`` value that asks the registry to detect the format.
AUTO = "auto"


@dataclass(frozen=True)
class ScanArrays:
    """The raw fields of one scan as a reader found them, before validation.

    Attributes:
        xcoords, ycoords: ``(M,)`` positions in object pixels (x = column, y = row).
        diff3d: ``(M, N, N)`` real diffraction data in the convention ``diffraction_kind``
            (``"amplitude"`` sqrt(counts), ``"intensity"`` counts, or ``"auto"``: DATA-004).
            May be an ``np.memmap`` (read lazily).
        probeGuess: ``(N, N)`` or ``(modes, N, N)`` complex probe.
        xcoords_start, ycoords_start, scan_index, objectGuess, Y, bad_pixels: optional
            contract fields (shapes as :class:`RawData`).
        metadata: JSON-able dict (e.g. ``{"nphotons": 1e6}``).
        diffraction_kind: how to read ``diff3d``.
        source: the reader's format name (recorded for messages and archives).
        diff3d_private: ``diff3d`` and ``Y`` were made by the reader for this scan alone
            (fresh arrays, or read-only maps of stored NPZ members): :class:`RawData` keeps
            float32 amplitudes (complex64 labels) without copying them, takes the square root
            of float32 counts in place (the ScanArrays is then spent) and reads a map into
            memory chunk by chunk instead of keeping it (DATA-240). False for arrays a caller
            may still hold, and for mapped scans.
    """

    xcoords: np.ndarray
    ycoords: np.ndarray
    diff3d: np.ndarray
    probeGuess: np.ndarray
    xcoords_start: np.ndarray | None = None
    ycoords_start: np.ndarray | None = None
    scan_index: np.ndarray | None = None
    objectGuess: np.ndarray | None = None
    Y: np.ndarray | None = None
    bad_pixels: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    diffraction_kind: DiffractionKind = "auto"
    source: str = ""
    diff3d_private: bool = False


@dataclass(frozen=True)
class PatternStream:
    """The patterns of a source, readable in row chunks more than once (for conversions that
    never hold all patterns in memory).

    Attributes:
        shape: ``(M, N, N)``; dtype: the stored dtype.
        kind: ``"amplitude"``, ``"intensity"`` or ``"auto"`` (DATA-004) for what ``chunks``
            yields.
        chunks: ``chunks(rows)`` yields ``(start, array (<= rows, N, N))`` in order.
        clip_negative: clip negative values to 0 first (ptychodus' inpainting residue).
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    kind: DiffractionKind
    chunks: Callable[[int], Iterator[tuple[int, np.ndarray]]]
    clip_negative: bool = False


class ScanReader(Protocol):
    """One input format. ``sniff`` must be cheap and never raise for a foreign file."""

    name: str
    description: str

    def sniff(self, path: Path) -> bool:
        """True if ``path`` is in this reader's format."""
        ...

    def read(self, path: Path) -> ScanArrays:
        """The scan at ``path``; raises :class:`DataError` naming the key and the fix."""
        ...


_READERS: dict[str, ScanReader] = {}


def register_reader(reader: ScanReader, *, before: str | None = None) -> None:
    """Add ``reader`` to the registry (detection order = registration order, or just before
    the reader named ``before``). Re-registering a name replaces it in place."""
    _ensure_builtin()
    if reader.name == AUTO or not reader.name:
        raise ValueError(f"reader name {reader.name!r} is reserved; pick another")
    if reader.name in _READERS or before is None:
        _READERS[reader.name] = reader
        return
    if before not in _READERS:
        raise ValueError(f"before={before!r} names no registered reader; have {reader_names()}")
    items = list(_READERS.items())
    at = [name for name, _ in items].index(before)
    items.insert(at, (reader.name, reader))
    _READERS.clear()
    _READERS.update(items)


def unregister_reader(name: str) -> None:
    """Remove the reader called ``name`` (KeyError if there is none)."""
    _ensure_builtin()
    del _READERS[name]


def reader_names() -> list[str]:
    """Registered format names, in detection order."""
    _ensure_builtin()
    return list(_READERS)


def detect_format(path: str | Path) -> str:
    """The name of the first registered reader whose ``sniff`` accepts ``path``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataError: no reader recognizes it (the message lists the formats).
    """
    _ensure_builtin()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist; check the path")
    for name, reader in _READERS.items():
        if reader.sniff(path):
            return name
    if path.is_file() and not zipfile.is_zipfile(path) and path.suffix.lower() == ".npz":
        raise DataError(
            f"{str(path)!r} is not an NPZ file (not a zip archive); write it with numpy.savez "
            "or numpy.savez_compressed, or with RawData.to_file"
        )
    formats = "; ".join(f"{n}: {r.description}" for n, r in _READERS.items())
    raise DataError(
        f"{str(path)!r} is in no known scan format. Known formats: {formats}. Convert the file "
        "to the NPZ contract (RawData.to_file) or pass format= explicitly"
    )


def read_scan_arrays(path: str | Path, format: str = AUTO) -> ScanArrays:  # noqa: A002
    """Read ``path`` with the reader named ``format`` (``"auto"``: :func:`detect_format`)."""
    _ensure_builtin()
    path = Path(path)
    if format == AUTO:
        format = detect_format(path)  # noqa: A001
    elif format not in _READERS:
        raise DataError(f"format={format!r} is not a known scan format; use one of "
                        f"{[AUTO, *_READERS]}")
    elif not path.exists():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist; check the path")
    arrays = _READERS[format].read(path)
    return arrays if arrays.source else replace(arrays, source=format)


_builtin_loaded = False


def _ensure_builtin() -> None:
    """Register the built-in readers on first use (their modules import this one)."""
    global _builtin_loaded
    if _builtin_loaded:
        return
    _builtin_loaded = True
    from ptychodus_pinn_torch.data import mapped, npz_readers, ptychodus_files

    for reader in (*npz_readers.READERS, *ptychodus_files.READERS, *mapped.READERS):
        if reader.name not in _READERS:
            register_reader(reader)


@dataclass(frozen=True)
class FunctionReader:
    """A :class:`ScanReader` made of two functions; ``sniff`` answers False where the sniff
    function raises on a foreign file."""

    name: str
    description: str
    sniff_fn: Callable[[Path], bool]
    read_fn: Callable[[Path], ScanArrays]

    def sniff(self, path: Path) -> bool:
        try:
            return bool(self.sniff_fn(path))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return False

    def read(self, path: Path) -> ScanArrays:
        return self.read_fn(path)
