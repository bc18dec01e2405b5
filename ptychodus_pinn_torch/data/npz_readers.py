"""NPZ readers: the upstream PtychoPINN contract and ptychodus' training export (DATA-005).

Both read through :func:`npz_io.read_npz` (no unpickling) and differ only in how ``diff3d`` and
the probe are taken. The export is recognized by its ``(modes, N, N)`` probe, which ptychodus'
``save_ptychopinn_training_data`` always writes and :meth:`RawData.to_file` never does, so a
contract file that carries a ``bad_pixels`` mask is not mistaken for an intensity export.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ptychodus_pinn_torch.data.errors import DataError
from ptychodus_pinn_torch.data.npz_io import read_npz
from ptychodus_pinn_torch.data.npz_limits import read_npy_header, read_npz_headers
from ptychodus_pinn_torch.data.paging import is_mapped, iter_chunks
from ptychodus_pinn_torch.data.readers import FunctionReader, PatternStream, ScanArrays

logger = logging.getLogger(__name__)

__all__ = [
    "READERS",
    "REQUIRED_KEYS",
    "metadata_from_npz",
    "npz_member_shape",
    "stream_npz",
]

REQUIRED_KEYS: tuple[str, ...] = ("xcoords", "ycoords", "diff3d", "probeGuess")


def npz_member_shape(path: Path, key: str) -> tuple[int, ...] | None:
    """The shape of NPZ member ``key`` from its ``.npy`` header (no data read), or None."""
    header = read_npz_headers(path).get(key)
    return None if header is None else header.shape


def _npz_keys(path: Path) -> set[str] | None:
    if not path.is_file() or not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    if not names or not all(n.endswith(".npy") for n in names):
        return None
    return {n[: -len(".npy")] for n in names}


def _is_export(path: Path) -> bool:
    keys = _npz_keys(path)
    if keys is None or "probeGuess" not in keys:
        return False
    shape = npz_member_shape(path, "probeGuess")
    return shape is not None and len(shape) == 3


def _is_npz(path: Path) -> bool:
    return _npz_keys(path) is not None


def metadata_from_npz(value: np.ndarray) -> dict[str, Any]:
    """The ``_metadata`` member (a 0-d JSON string array) as a dict; DataError otherwise."""
    text = value.item() if value.size == 1 and value.dtype.kind in "US" else None
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if not isinstance(text, str):
        raise DataError(
            f"NPZ key '_metadata' must be a JSON string, got dtype {value.dtype} shape "
            f"{value.shape}; store np.array(json.dumps({{...}}))"
        )
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"NPZ key '_metadata' is not valid JSON ({exc}); rewrite it") from exc
    if not isinstance(meta, dict):
        raise DataError(f"NPZ key '_metadata' must be a JSON object, got {type(meta).__name__}")
    return meta


def _contract_arrays(path: Path, widen: bool = False) -> dict[str, np.ndarray]:
    # stored diff3d/Y members are mapped, not read: RawData converts them chunk by chunk into
    # its float32 amplitudes and complex64 labels, the only copies held; with ``widen``,
    # deflated 8/16-bit counts are decoded straight into the float32 array RawData then takes
    # the sqrt of in place (DATA-240)
    arrays = read_npz(path, map_stored=("diff3d", "Y"),
                      widen_deflated=("diff3d",) if widen else ())
    missing = [key for key in REQUIRED_KEYS if key not in arrays]
    if missing:
        hint = ""
        if "diff3d" in missing and "diffraction" in arrays:
            hint = " (the file has 'diffraction': rename it to 'diff3d')"
        raise DataError(
            f"NPZ file {str(path)!r} is missing required key(s) {missing}{hint}; it has "
            f"{sorted(arrays)}. Required: {list(REQUIRED_KEYS)}."
        )
    return arrays


def _scan(path: Path, arrays: dict[str, np.ndarray], diff3d: np.ndarray,
          kind: str) -> ScanArrays:
    metadata = metadata_from_npz(arrays["_metadata"]) if "_metadata" in arrays else {}
    Y = arrays.get("Y")
    if Y is not None and (Y.ndim < 1 or Y.shape[0] != np.shape(diff3d)[0]):
        logger.warning("%s: ignoring 'Y' of shape %s (first axis is not M)", path, Y.shape)
        Y = None
    return ScanArrays(
        xcoords=arrays["xcoords"], ycoords=arrays["ycoords"], diff3d=diff3d,
        probeGuess=arrays["probeGuess"], xcoords_start=arrays.get("xcoords_start"),
        ycoords_start=arrays.get("ycoords_start"), scan_index=arrays.get("scan_index"),
        objectGuess=arrays.get("objectGuess"), Y=Y, bad_pixels=arrays.get("bad_pixels"),
        metadata=metadata, diffraction_kind=kind,  # type: ignore[arg-type]
        diff3d_private=True,  # read (or mapped) for this scan alone
    )


def read_contract(path: Path) -> ScanArrays:
    """The upstream NPZ contract: ``diff3d`` under the DATA-004 amplitude/intensity policy."""
    arrays = _contract_arrays(path, widen=True)
    return _scan(path, arrays, arrays["diff3d"], "auto")


def read_export(path: Path) -> ScanArrays:
    """ptychodus' ``save_ptychopinn_training_data`` NPZ: intensity ``diff3d`` in the source
    dtype (negative inpainting residue clipped to 0), ``(modes, N, N)`` probe (DATA-005)."""
    arrays = _contract_arrays(path)
    diff3d = arrays["diff3d"]
    logger.warning(
        "%s is in ptychodus' export layout (intensity diff3d %s, probe %s): converting "
        "to amplitude sqrt(I), first probe mode, float32/complex64",
        path, diff3d.dtype, arrays["probeGuess"].shape,
    )
    n_neg = _count_negative(diff3d) if diff3d.dtype.kind == "f" else 0
    if n_neg:
        logger.warning("%s: clipping %d negative intensities (inpainting) to 0", path, n_neg)
        diff3d = _clipped(diff3d)
    return _scan(path, arrays, diff3d, "intensity")


def _count_negative(diff3d: np.ndarray) -> int:
    """Negative values of ``(M, N, N)`` ``diff3d``, counted chunk by chunk."""
    return sum(int(np.count_nonzero(chunk < 0)) for _, chunk in iter_chunks(diff3d))


def _clipped(diff3d: np.ndarray) -> np.ndarray:
    """``diff3d`` with negative values set to 0, chunk by chunk: in place for the reader's own
    writable array, else into one new array (a read-only map of the file)."""
    private = diff3d.flags.writeable and not is_mapped(diff3d)
    out = diff3d if private else np.empty(diff3d.shape, diff3d.dtype)
    for lo, chunk in iter_chunks(diff3d):
        np.clip(chunk, 0, None, out=out[lo:lo + chunk.shape[0]])
    return out


def _member_header(fh: Any, key: str) -> tuple[tuple[int, ...], np.dtype]:
    shape, fortran, dtype = read_npy_header(fh)
    if dtype.hasobject:
        raise DataError(f"NPZ key {key!r} holds an object (pickled) array, which is never "
                        "loaded for safety; re-save it as a numeric array")
    if fortran and len(shape) > 1:
        raise DataError(f"NPZ key {key!r} is stored in Fortran order; re-save it with "
                        "np.ascontiguousarray")
    return shape, dtype


def _member_chunks(path: Path, key: str, rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """Sequential row chunks of NPZ member ``key`` (stored or deflated), never all at once."""
    with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as fh:
        shape, dtype = _member_header(fh, key)
        per_row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        for lo in range(0, shape[0], rows):
            hi = min(lo + rows, shape[0])
            data = fh.read((hi - lo) * per_row)
            if len(data) != (hi - lo) * per_row:
                raise DataError(f"NPZ key {key!r} in {str(path)!r} is truncated at pattern "
                                f"{lo}; re-save the file")
            yield lo, np.frombuffer(data, dtype=dtype).reshape((hi - lo, *shape[1:]))


def stream_npz(path: Path, fmt: str) -> tuple[ScanArrays, PatternStream]:
    """A contract NPZ (``fmt="npz"``) or ptychodus export (``"ptychodus-export"``) as its small
    arrays (``ScanArrays.diff3d`` is an empty placeholder) and a :class:`PatternStream` over
    ``diff3d`` (DATA-004/005 policy as :func:`read_contract` / :func:`read_export`). ``Y`` is
    not carried (a warning says so)."""
    headers = read_npz_headers(path)  # declared sizes checked against the members first
    with zipfile.ZipFile(path) as zf:
        names = set(headers)
        missing = [key for key in REQUIRED_KEYS if key not in names]
        if missing:
            raise DataError(
                f"NPZ file {str(path)!r} is missing required key(s) {missing}; it has "
                f"{sorted(names)}. Required: {list(REQUIRED_KEYS)}."
            )
        small: dict[str, np.ndarray] = {}
        for key in sorted(names - {"diff3d", "Y"}):
            with zf.open(f"{key}.npy") as fh:
                try:
                    small[key] = np.lib.format.read_array(fh, allow_pickle=False)
                except ValueError as exc:
                    raise DataError(f"NPZ key {key!r} in {str(path)!r} is unreadable or holds "
                                    f"a pickled array ({exc}); re-save it") from exc
        with zf.open("diff3d.npy") as fh:
            shape, dtype = _member_header(fh, "diff3d")
    if "Y" in names:
        logger.warning("%s: 'Y' is not carried into a streamed copy (supervised labels come "
                       "from objectGuess)", path)
    export = fmt == "ptychodus-export"
    stream = PatternStream(shape=shape, dtype=dtype, kind="intensity" if export else "auto",
                           chunks=lambda rows: _member_chunks(path, "diff3d", rows),
                           clip_negative=export)
    metadata = metadata_from_npz(small["_metadata"]) if "_metadata" in small else {}
    scan = ScanArrays(
        xcoords=small["xcoords"], ycoords=small["ycoords"],
        diff3d=np.empty((0, *shape[1:]), dtype), probeGuess=small["probeGuess"],
        xcoords_start=small.get("xcoords_start"), ycoords_start=small.get("ycoords_start"),
        scan_index=small.get("scan_index"), objectGuess=small.get("objectGuess"),
        bad_pixels=small.get("bad_pixels"), metadata=metadata, source=fmt,
    )
    return scan, stream


READERS = (
    FunctionReader("ptychodus-export",
                   "NPZ written by ptychodus' Export Training Data (intensity, (modes, N, N) "
                   "probe)", _is_export, read_export),
    FunctionReader("npz", "the PtychoPINN NPZ contract (xcoords, ycoords, diff3d amplitude, "
                   "probeGuess, ...)", _is_npz, read_contract),
)
