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
from pathlib import Path
from typing import Any

import numpy as np

from ptychodus_pinn_torch.data.errors import DataError
from ptychodus_pinn_torch.data.npz_io import read_npz
from ptychodus_pinn_torch.data.readers import FunctionReader, ScanArrays

logger = logging.getLogger(__name__)

__all__ = ["READERS", "REQUIRED_KEYS", "npz_member_shape"]

REQUIRED_KEYS: tuple[str, ...] = ("xcoords", "ycoords", "diff3d", "probeGuess")


def npz_member_shape(path: Path, key: str) -> tuple[int, ...] | None:
    """The shape of NPZ member ``key`` from its ``.npy`` header (no data read), or None."""
    with zipfile.ZipFile(path) as zf:
        name = f"{key}.npy"
        if name not in zf.namelist():
            return None
        with zf.open(name) as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, _ = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _, _ = np.lib.format.read_array_header_2_0(fh)
    return tuple(int(s) for s in shape)


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


def _metadata_from_npz(value: np.ndarray) -> dict[str, Any]:
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


def _contract_arrays(path: Path) -> dict[str, np.ndarray]:
    arrays = read_npz(path)
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
    metadata = _metadata_from_npz(arrays["_metadata"]) if "_metadata" in arrays else {}
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
    )


def read_contract(path: Path) -> ScanArrays:
    """The upstream NPZ contract: ``diff3d`` under the DATA-004 amplitude/intensity policy."""
    arrays = _contract_arrays(path)
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
    n_neg = int(np.count_nonzero(diff3d < 0)) if diff3d.dtype.kind == "f" else 0
    if n_neg:
        logger.warning("%s: clipping %d negative intensities (inpainting) to 0", path, n_neg)
        diff3d = np.clip(diff3d, 0, None)
    return _scan(path, arrays, diff3d, "intensity")


READERS = (
    FunctionReader("ptychodus-export",
                   "NPZ written by ptychodus' Export Training Data (intensity, (modes, N, N) "
                   "probe)", _is_export, read_export),
    FunctionReader("npz", "the PtychoPINN NPZ contract (xcoords, ycoords, diff3d amplitude, "
                   "probeGuess, ...)", _is_npz, read_contract),
)
