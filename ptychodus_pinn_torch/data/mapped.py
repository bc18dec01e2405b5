"""A scan larger than memory: a folder of ``.npy`` files read as memory maps (DATA-182..184).

Layout of a *mapped scan* folder::

    manifest.json      {"format": FORMAT, "version": 1, "n_positions": M, "N": N,
                        "arrays": {name: {"file", "shape", "dtype"}}, "metadata": {...},
                        "source": "...", "source_format": "..."}
    diff3d.npy         (M, N, N) float32 amplitude sqrt(counts)  -- opened with mmap_mode="r"
    xcoords.npy, ycoords.npy, xcoords_start.npy, ycoords_start.npy   (M,) float64
    scan_index.npy     (M,) int64
    probeGuess.npy     (N, N) complex64
    objectGuess.npy    (H, W) complex64            (optional)
    Y.npy              (M, N, N) complex64          (optional; memory-mapped too)
    bad_pixels.npy     (N, N) bool                  (optional)

:func:`write_mapped` converts any readable scan in chunks of patterns (the NPZ contract and
ptychodus' export streamed member by member, ptychodus' HDF5 files slice by slice, anything
else through its reader), so the patterns are never all in memory. The ``mapped`` reader
(:data:`READERS`) hands ``diff3d`` to ``RawData`` as an ``np.memmap``, which
:mod:`.paging` validates chunk by chunk, releasing the pages each pass touched.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ptychodus_pinn_torch.data.atomic_file import atomic_write
from ptychodus_pinn_torch.data.errors import DataError
from ptychodus_pinn_torch.data.paging import (
    CHUNK_BYTES,
    check_mapped,
    chunk_rows,
    release_pages,
)
from ptychodus_pinn_torch.data.readers import (
    AUTO,
    FunctionReader,
    PatternStream,
    ScanArrays,
    detect_format,
    read_scan_arrays,
)

logger = logging.getLogger(__name__)

__all__ = [
    "CHUNK_BYTES",
    "FORMAT",
    "MANIFEST",
    "READERS",
    "read_mapped",
    "write_mapped",
]

FORMAT = "ptychodus-pinn-torch-mapped"
VERSION = 1
MANIFEST = "manifest.json"


# --------------------------------------------------------------------------- reading


def _manifest_path(path: Path) -> Path | None:
    candidate = path / MANIFEST if path.is_dir() else path
    if candidate.name != MANIFEST or not candidate.is_file():
        return None
    return candidate


def _load_manifest(path: Path) -> tuple[Path, dict[str, Any]]:
    manifest_path = _manifest_path(path)
    if manifest_path is None:
        raise DataError(f"{str(path)!r} is not a mapped scan (no {MANIFEST}); write one with "
                        "pinn-torch convert")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{manifest_path}: unreadable manifest ({exc}); convert again") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{manifest_path}: not a {FORMAT} manifest")
    if manifest.get("version") != VERSION:
        raise DataError(f"{manifest_path}: version {manifest.get('version')!r} is not "
                        f"supported (this package reads version {VERSION}); convert again")
    return manifest_path.parent, manifest


def _is_mapped(path: Path) -> bool:
    manifest_path = _manifest_path(path)
    if manifest_path is None:
        return False
    try:
        return json.loads(manifest_path.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _open_array(folder: Path, name: str, entry: dict[str, Any], mapped: bool) -> np.ndarray:
    file = folder / str(entry.get("file", ""))
    if file.parent != folder or not file.is_file():
        raise DataError(f"{folder}: array {name!r} file {entry.get('file')!r} is missing; "
                        "convert the scan again")
    try:
        array = np.load(file, mmap_mode="r" if mapped else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{file}: unreadable .npy ({exc}); convert the scan again") from exc
    if list(array.shape) != list(entry.get("shape", [])) or str(array.dtype) != entry.get("dtype"):
        raise DataError(f"{file}: shape {array.shape} dtype {array.dtype} differ from the "
                        f"manifest ({entry.get('shape')}, {entry.get('dtype')}); convert again")
    return array


def read_mapped(path: Path) -> ScanArrays:
    """A mapped scan folder (or its ``manifest.json``) as :class:`ScanArrays` whose ``diff3d``
    (and ``Y``) are read-only ``np.memmap``; the small arrays are read into memory."""
    folder, manifest = _load_manifest(path)
    arrays = manifest.get("arrays", {})
    for key in ("diff3d", "xcoords", "ycoords", "probeGuess"):
        if key not in arrays:
            raise DataError(f"{folder}: manifest lists no {key!r} array; convert again")
    loaded = {name: _open_array(folder, name, entry, mapped=name in ("diff3d", "Y"))
              for name, entry in arrays.items()}
    return ScanArrays(
        xcoords=loaded["xcoords"], ycoords=loaded["ycoords"], diff3d=loaded["diff3d"],
        probeGuess=loaded["probeGuess"], xcoords_start=loaded.get("xcoords_start"),
        ycoords_start=loaded.get("ycoords_start"), scan_index=loaded.get("scan_index"),
        objectGuess=loaded.get("objectGuess"), Y=loaded.get("Y"),
        bad_pixels=loaded.get("bad_pixels"), metadata=dict(manifest.get("metadata") or {}),
        diffraction_kind="amplitude", source="mapped",
    )


READERS = (
    FunctionReader("mapped", f"a folder with {MANIFEST} and memory-mapped .npy files "
                   "(pinn-torch convert; scans larger than memory)", _is_mapped, read_mapped),
)


# --------------------------------------------------------------------------- writing


def _stream(source_path: Path, fmt: str) -> tuple[ScanArrays, PatternStream]:
    if fmt in ("npz", "ptychodus-export"):
        from ptychodus_pinn_torch.data.npz_readers import stream_npz

        return stream_npz(source_path, fmt)
    if fmt == "ptychodus-h5":
        from ptychodus_pinn_torch.data.ptychodus_files import stream_standard_files

        return stream_standard_files(source_path)
    scan = read_scan_arrays(source_path, fmt)  # other formats: read whole, then chunked
    held = np.asarray(scan.diff3d)

    def chunks(rows: int) -> Iterator[tuple[int, np.ndarray]]:
        for lo in range(0, held.shape[0], rows):
            yield lo, held[lo:lo + rows]

    return scan, PatternStream(held.shape, held.dtype, scan.diffraction_kind, chunks)


def write_mapped(source_path: str | Path, folder: str | Path, *, format: str = AUTO,  # noqa: A002
                 overwrite: bool = False) -> Path:
    """Convert the scan at ``source_path`` into a mapped scan ``folder`` (DATA-183).

    Patterns are read, converted to float32 amplitude (the source format's policy: DATA-004,
    DATA-005, DATA-181) and checked in chunks of about :data:`CHUNK_BYTES`; the other arrays
    are small and validated as ``RawData`` validates them. The folder is written under a
    temporary name and renamed when complete.

    Raises:
        FileExistsError: ``folder`` exists and ``overwrite`` is False.
        DataError: unreadable or invalid source (as the readers).
    """
    source_path, folder = Path(source_path), Path(folder)
    if folder.exists() and not overwrite:
        raise FileExistsError(f"{folder} exists; pick a new folder or pass --overwrite")
    fmt = detect_format(source_path) if format == AUTO else format
    if fmt == "mapped":
        raise DataError(f"{source_path} is already a mapped scan; nothing to convert")
    scan, stream = _stream(source_path, fmt)
    tmp = folder.with_name(f".{folder.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        _write_folder(tmp, scan, stream, source_path, fmt)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _amplitude_kind(stream: PatternStream, rows: int, source_path: Path) -> str:
    """DATA-004 on a stream: integer dtypes are intensity; float data under ``"auto"`` is
    intensity when every value is an integer and the maximum exceeds 1 (one extra pass)."""
    if stream.kind != "auto":
        return stream.kind
    if stream.dtype.kind in "iu":
        counts = True
    else:
        all_integer, peak = True, -np.inf
        for _, chunk in stream.chunks(rows):
            all_integer = all_integer and bool(np.all(np.floor(chunk) == chunk))
            peak = max(peak, float(np.max(chunk)))
        counts = all_integer and peak > 1.0
    if counts:
        logger.warning("%s: diff3d looks like intensity (dtype %s, integer values): converting "
                       "to amplitude with sqrt", source_path, stream.dtype)
    return "intensity" if counts else "amplitude"


def _small_arrays(scan: ScanArrays, M: int, N: int) -> dict[str, np.ndarray]:
    """The per-position and per-scan arrays, validated by the functions RawData uses."""
    from ptychodus_pinn_torch.data import validation as check

    x = check.coordinates("xcoords", scan.xcoords)
    y = check.coordinates("ycoords", scan.ycoords)
    if x.shape != (M,) or y.shape != (M,):
        raise DataError(f"xcoords/ycoords have {x.shape[0]}/{y.shape[0]} positions but diff3d "
                        f"has {M} patterns; give exactly one position per pattern")
    small: dict[str, np.ndarray] = {
        "xcoords": x, "ycoords": y,
        "xcoords_start": x if scan.xcoords_start is None
        else check.coordinates("xcoords_start", scan.xcoords_start),
        "ycoords_start": y if scan.ycoords_start is None
        else check.coordinates("ycoords_start", scan.ycoords_start),
        "scan_index": check.scan_index(scan.scan_index, M),
        "probeGuess": check.probe(scan.probeGuess, N),
    }
    obj = check.object_guess(scan.objectGuess)
    if obj is not None:
        small["objectGuess"] = obj
    bad = check.bad_pixel_mask(scan.bad_pixels, N)
    if bad is not None:
        small["bad_pixels"] = bad
    return small


def _write_folder(tmp: Path, scan: ScanArrays, stream: PatternStream, source_path: Path,
                  fmt: str) -> None:
    shape = stream.shape
    if len(shape) != 3 or shape[1] != shape[2] or shape[0] == 0:
        raise DataError(f"diff3d must be (M, N, N) square with M > 0, got shape {shape}; "
                        "crop the patterns to a square")
    M, N = int(shape[0]), int(shape[1])
    small = _small_arrays(scan, M, N)
    rows = chunk_rows(shape, max(stream.dtype.itemsize, 4))
    kind = _amplitude_kind(stream, rows, source_path)
    out = np.lib.format.open_memmap(tmp / "diff3d.npy", mode="w+", dtype=np.float32,
                                    shape=(M, N, N))
    try:
        for lo, chunk in stream.chunks(rows):
            data = np.asarray(chunk)
            if stream.clip_negative and data.dtype.kind == "f":
                data = np.clip(data, 0, None)
            if kind == "intensity":
                data = np.sqrt(data.astype(np.float64))
            out[lo:lo + data.shape[0]] = data
            out.flush()
            release_pages(out)
        check_mapped(out)
    finally:
        out.flush()
        del out
    entries: dict[str, dict[str, Any]] = {
        "diff3d": {"file": "diff3d.npy", "shape": [M, N, N], "dtype": "float32"}}
    for name, array in small.items():
        np.save(tmp / f"{name}.npy", array, allow_pickle=False)
        entries[name] = {"file": f"{name}.npy", "shape": list(array.shape),
                         "dtype": str(array.dtype)}
    manifest = {
        "format": FORMAT, "version": VERSION, "n_positions": M, "N": N, "arrays": entries,
        "metadata": scan.metadata, "source": str(source_path), "source_format": fmt,
    }
    with atomic_write(tmp / MANIFEST) as fh:
        fh.write(json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
