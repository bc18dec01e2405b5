"""Safe reading and deterministic writing of NPZ files (never unpickles).

Reading opens the archive with ``allow_pickle=False`` and reports object (pickled) arrays as a
:class:`DataError` naming the key. Writing produces byte-identical files for identical arrays
(fixed zip timestamps), so committed fixtures can be regenerated and compared byte for byte.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ptychodus_pinn_torch.data.atomic_file import atomic_write
from ptychodus_pinn_torch.data.errors import DataError
from ptychodus_pinn_torch.data.npz_limits import DataLimits, check_npz_file

#: zip timestamp written for every member (the earliest a zip can hold), for reproducible bytes.
_FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def read_npz(path: str | Path, limits: DataLimits | None = None) -> dict[str, np.ndarray]:
    """Read every array of an NPZ file into memory without unpickling.

    The members' declared shapes and sizes are checked first (:func:`npz_limits.check_npz_file`,
    DATA-120), so a file that would not fit is refused before anything is inflated.

    Args:
        path: file to read.
        limits: size limits and memory budget (default :meth:`DataLimits.default`).

    Returns:
        ``{key: array}`` for every member, arrays as stored (any dtype except object).

    Raises:
        FileNotFoundError: the file does not exist.
        DataError: the file is not an NPZ (zip) archive, a member is unreadable, or a member
            holds an object (pickled) array; declared sizes above ``limits``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist; check the path")
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{str(path)!r} is not an NPZ file (not a zip archive); write it with numpy.savez or "
            "numpy.savez_compressed, or with RawData.to_file"
        )
    check_npz_file(path, limits)
    arrays: dict[str, np.ndarray] = {}
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{str(path)!r} could not be opened as NPZ ({exc}); re-save it") from exc
    with archive:
        for key in archive.files:
            try:
                arrays[key] = np.asarray(archive[key])
            except ValueError as exc:
                if "pickle" in str(exc):
                    raise DataError(
                        f"NPZ key {key!r} in {str(path)!r} holds an object (pickled) array, which "
                        "is never loaded for safety; re-save it as a numeric array (e.g. "
                        f"np.asarray(value, dtype=float))"
                    ) from exc
                raise DataError(f"NPZ key {key!r} in {str(path)!r} is unreadable: {exc}") from exc
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise DataError(
                    f"NPZ key {key!r} in {str(path)!r} is corrupt ({exc}); re-save the file"
                ) from exc
    return arrays


def write_npz(path: str | Path, arrays: Mapping[str, np.ndarray], compress: bool = True) -> None:
    """Write arrays as an NPZ file with reproducible bytes, atomically.

    Same layout as ``numpy.savez_compressed`` (one ``<key>.npy`` member per array), but every
    member carries a fixed timestamp, so identical arrays give identical files.

    Args:
        path: output file (parent folders are created).
        arrays: ``{key: array}``; object arrays are refused.
        compress: deflate members (True) or store them (False).

    Raises:
        DataError: an array has dtype object.
    """
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_write(path) as fh, zipfile.ZipFile(fh, "w", compression=method) as zf:
        for key, value in arrays.items():
            array = np.asarray(value)
            if array.dtype == object:
                raise DataError(f"array {key!r} has dtype object; store numeric or string arrays")
            buffer = io.BytesIO()
            if not array.flags.c_contiguous:  # (ascontiguousarray would turn 0-d into 1-d)
                array = array.copy(order="C")
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_FIXED_DATE_TIME)
            info.compress_type = method
            info.external_attr = 0o600 << 16
            zf.writestr(info, buffer.getvalue())
