"""Safe reading and deterministic writing of NPZ files (never unpickles).

Reading opens the archive with ``allow_pickle=False`` and reports object (pickled) arrays as a
:class:`DataError` naming the key. Writing produces byte-identical files for identical arrays
(fixed zip timestamps), so committed fixtures can be regenerated and compared byte for byte.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np

from ptychodus_pinn_torch.data import paging
from ptychodus_pinn_torch.data.atomic_file import atomic_write
from ptychodus_pinn_torch.data.errors import DataError
from ptychodus_pinn_torch.data.npz_limits import (
    DataLimits,
    check_npz_file,
    read_npy_header,
)

#: zip timestamp written for every member (the earliest a zip can hold), for reproducible bytes.
_FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def read_npz(
    path: str | Path, limits: DataLimits | None = None, *, map_stored: Collection[str] = (),
    widen_deflated: Collection[str] = (),
) -> dict[str, np.ndarray]:
    """Read every array of an NPZ file without unpickling.

    The members' declared shapes and sizes are checked first (:func:`npz_limits.check_npz_file`,
    DATA-120), so a file that would not fit is refused before anything is inflated. A member
    is read in pieces straight into its array (numpy's reader), never whole into a bytes
    buffer first.

    Args:
        path: file to read.
        limits: size limits and memory budget (default :meth:`DataLimits.default`).
        map_stored: keys whose member, when stored (not deflated) and in C order, is returned
            as a read-only ``np.memmap`` of its bytes in the file (:func:`map_stored_member`,
            DATA-240) instead of being read; deflated members are read as usual.
        widen_deflated: keys whose member, when deflated and holding 8/16-bit integers or
            float16 (every value exact in float32), is decoded piece by piece straight into a
            float32 array (:func:`decode_deflated_float32`) instead of its own dtype, so the
            float32 result is the only copy (the values are the same numbers).

    Returns:
        ``{key: array}`` for every member, arrays as stored (any dtype except object).

    Raises:
        FileNotFoundError: the file does not exist.
        DataError: the file is not an NPZ (zip) archive, a member is unreadable or corrupt
            (also a CRC mismatch of a mapped member), or a member holds an object (pickled)
            array; declared sizes above ``limits``.
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
                info = archive.zip.getinfo(f"{key}.npy")
                direct = map_stored_member(path, info, key) if key in map_stored else None
                if direct is None and key in widen_deflated:
                    direct = decode_deflated_float32(archive.zip, info, key)
                arrays[key] = direct if direct is not None else np.asarray(archive[key])
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


def _exact_in_float32(dtype: np.dtype) -> bool:
    """True for dtypes whose every value float32 holds exactly (8/16-bit integers, float16)."""
    return (dtype.kind in "iu" and dtype.itemsize <= 2) or (dtype.kind == "f"
                                                            and dtype.itemsize == 2)


def decode_deflated_float32(zf: zipfile.ZipFile, info: zipfile.ZipInfo,
                            key: str) -> np.ndarray | None:
    """The array of deflated NPZ member ``info`` decoded piece by piece (about
    ``paging.CHUNK_BYTES`` / 16 of stored bytes at a time) into one float32 array, or None
    when the member is stored, in Fortran order, empty, or of a dtype float32 does not hold
    exactly (read it as it is instead). ``zipfile`` checks the CRC-32 at the member's end.

    Returns:
        float32 array of the declared shape holding the stored values exactly.

    Raises:
        zipfile.BadZipFile, EOFError: a corrupt or truncated member (:func:`read_npz` reports
            it as a corrupt member).
    """
    if info.compress_type == zipfile.ZIP_STORED:
        return None
    with zf.open(info) as fh:
        try:
            shape, fortran, dtype = read_npy_header(fh)
        except (ValueError, EOFError):
            return None  # numpy's reader reports it
        if (not _exact_in_float32(dtype) or (fortran and len(shape) > 1) or not shape
                or math.prod(shape) == 0):
            return None
        out = np.empty(shape, np.float32)
        flat = out.reshape(-1)
        step = max(1, paging.CHUNK_BYTES // 16 // dtype.itemsize)
        for lo in range(0, flat.size, step):
            count = min(step, flat.size - lo)
            data = fh.read(count * dtype.itemsize)
            if len(data) != count * dtype.itemsize:
                raise EOFError(f"member {info.filename!r} (key {key!r}) ends after "
                               f"{lo + len(data) // dtype.itemsize} of {flat.size} values")
            flat[lo:lo + count] = np.frombuffer(data, dtype=dtype)
        fh.read()  # to the member's end: zipfile checks the CRC-32 there
    return out


#: size of a zip local file header before the member's name and extra field (bytes).
_LOCAL_HEADER = struct.Struct("<4s22xHH")


def map_stored_member(path: Path, info: zipfile.ZipInfo, key: str) -> np.ndarray | None:
    """A read-only memory map of the array in NPZ member ``info``, or None when the member is
    deflated, encrypted, in Fortran order, empty or not a plain ``.npy`` (read it instead).

    The member's CRC-32 is checked first in chunks whose pages are released after each
    (:func:`paging.release_pages`), as ``zipfile`` checks it when reading, so the map costs no
    resident memory until the array is read (DATA-240).

    Args:
        path: the NPZ file.
        info: the member's entry in the zip's central directory.
        key: the member's key (for messages).

    Returns:
        ``np.memmap``-backed array of the declared shape and dtype, or None.

    Raises:
        zipfile.BadZipFile: a bad local header or a CRC mismatch (:func:`read_npz` reports it
            as a corrupt member).
    """
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1 or info.file_size == 0:
        return None
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(_LOCAL_HEADER.size)
        if len(local) != _LOCAL_HEADER.size:
            raise zipfile.BadZipFile(f"truncated local header of {info.filename}")
        magic, name_len, extra_len = _LOCAL_HEADER.unpack(local)
        if magic != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local header of {info.filename}")
        start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
        fh.seek(start)
        try:
            shape, fortran, dtype = read_npy_header(fh)
        except (ValueError, EOFError):
            return None  # numpy's reader reports it
        data_at = fh.tell() - start
    nbytes = math.prod(int(n) for n in shape) * dtype.itemsize
    if dtype.hasobject or (fortran and len(shape) > 1) or nbytes == 0:
        return None
    if data_at + nbytes > info.file_size:
        return None  # read_npz_headers refuses such a member before this is reached
    member = np.memmap(path, dtype=np.uint8, mode="r", offset=start, shape=(info.file_size,))
    crc = 0
    for lo in range(0, info.file_size, paging.CHUNK_BYTES):
        crc = zlib.crc32(member[lo:lo + paging.CHUNK_BYTES], crc)
        paging.release_pages(member)
    if crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r} (key {key!r})")
    return member[data_at:data_at + nbytes].view(dtype).reshape(tuple(int(n) for n in shape))


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
