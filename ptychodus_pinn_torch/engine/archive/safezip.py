"""Safe reading of a zip container: the end record, member names and sizes are checked before
anything is decompressed; members are read in memory with hard caps, never extracted to disk.
"""

from __future__ import annotations

import os
import re
import struct
import zipfile
import zlib
from typing import IO

from ptychodus_pinn_torch.engine.archive.format import (
    ARCHIVE_NAME,
    FORMAT_VERSION,
    KNOWN_MEMBERS,
    MANIFEST_MEMBER,
    MAX_MEMBER_BYTES,
    ArchiveError,
    ForeignArchiveError,
    MiB,
)

#: Most entries a model archive may hold (a format-1 archive has 3).
MAX_MEMBERS = 16
#: Most entries whose names are parsed at all (enough to recognize another backend's file).
MAX_ENTRIES_PARSED = 4096
#: Largest central directory parsed (bytes).
MAX_CENTRAL_DIRECTORY_BYTES = 1 * MiB
#: Members larger than this many bytes must not compress better than MAX_COMPRESSION_RATIO.
RATIO_CHECK_MIN_BYTES = 1 * MiB
#: Highest uncompressed/compressed ratio accepted for a member above RATIO_CHECK_MIN_BYTES.
MAX_COMPRESSION_RATIO = 100.0
#: Most records accepted inside the torch weights file (one per tensor storage, plus 7).
MAX_WEIGHT_RECORDS = 65536

_EOCD_SIGNATURE = b"PK\x05\x06"
_EOCD_SIZE = 22
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_READ_CHUNK = 1 * MiB
# Members that only the TensorFlow backend (`ptycho.model_manager`) or upstream's pickled
# PyTorch bundle (`ptycho_torch.model_manager`) write.
_TF_MARKERS = ("manifest.dill", "model.keras", "custom_objects.dill", "params.dill", "model.h5")
_UPSTREAM_TORCH_MARKERS = ("model.pth",)
# What zipfile/zlib raise on malformed input (found by fuzzing, tests/test_archive_fuzz.py).
ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    struct.error,
    OverflowError,
)


# --------------------------------------------------------------------------------------------
# reading: the zip container


def check_end_record(fh: IO[bytes], where: str) -> None:
    """Refuse, from the end-of-central-directory record alone (before zipfile parses the
    central directory), a file that is not a zip, a multi-part or malformed zip64 archive,
    more than MAX_ENTRIES_PARSED entries, or a central directory above
    MAX_CENTRAL_DIRECTORY_BYTES (zip64 archives are judged by their zip64 end record)."""
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    if size < _EOCD_SIZE:
        raise ArchiveError(
            f"{where} is not a zip archive ({size} bytes); pass a {ARCHIVE_NAME} file."
        )
    tail_len = min(size, _EOCD_SIZE + 0xFFFF)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    pos = tail.rfind(_EOCD_SIGNATURE)
    if pos < 0 or len(tail) - pos < _EOCD_SIZE:
        raise ArchiveError(
            f"{where} is not a zip archive (no end-of-central-directory record); "
            f"pass a {ARCHIVE_NAME} file written by ptychodus-pinn-torch."
        )
    (_, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, _) = struct.unpack(
        "<4sHHHHIIH", tail[pos : pos + _EOCD_SIZE]
    )
    locator_at = size - tail_len + pos - 20  # a zip64 locator sits right before the record
    locator = b""
    if locator_at >= 0:
        fh.seek(locator_at)
        locator = fh.read(20)
    if locator[:4] == b"PK\x06\x07":
        # zip64 (torch.save writes it): the zip64 end record sits right before the locator,
        # where zipfile reads it too; its 8-byte counts and sizes replace the classic ones
        _, z_disk, _, z_disks = struct.unpack("<4sIQI", locator)
        record = b""
        if locator_at >= 56:
            fh.seek(locator_at - 56)
            record = fh.read(56)
        if record[:4] != b"PK\x06\x06" or z_disk != 0 or z_disks != 1:
            raise ArchiveError(
                f"{where} has a zip64 locator without a single-file zip64 end record; refused "
                f"as corrupt."
            )
        (_, _, _, _, disk, cd_disk, n_disk, n_total, cd_size, _) = struct.unpack(
            "<4sQHHIIQQQQ", record
        )
    elif 0xFFFF in (n_disk, n_total) or 0xFFFFFFFF in (cd_size, cd_offset):
        raise ArchiveError(
            f"{where} has zip64 markers but no zip64 end record; refused as corrupt."
        )
    if disk != 0 or cd_disk != 0 or n_disk != n_total:
        raise ArchiveError(f"{where} is a multi-part zip archive; refused, use a single file.")
    if n_total > MAX_ENTRIES_PARSED:
        raise ArchiveError(
            f"{where} lists {n_total} members, more than the {MAX_MEMBERS} a model archive may "
            f"hold; refused unread as hostile or not a model archive."
        )
    if cd_size > MAX_CENTRAL_DIRECTORY_BYTES:
        raise ArchiveError(
            f"{where} has a {cd_size}-byte central directory, more than the "
            f"{MAX_CENTRAL_DIRECTORY_BYTES} bytes a model archive needs; refused as hostile."
        )
    fh.seek(0)


def _check_member_name(name: str, where: str) -> None:
    """Refuse a member name that is empty, absolute, escapes with ``..``, holds a backslash or
    NUL, or is longer than 255 characters (zip-slip)."""
    parts = name.split("/")
    if (
        not name
        or "\x00" in name
        or "\\" in name
        or name.startswith("/")
        or _DRIVE_RE.match(name)
        or any(part == ".." for part in parts)
        or len(name) > 255
    ):
        raise ArchiveError(
            f"{where} has a member named {name!r} that is absolute or escapes the archive "
            f"folder; refused as hostile."
        )


def _detect_foreign(names: list[str], where: str) -> None:
    """Recognize, from member names alone, a TensorFlow archive, upstream's pickled
    ptycho_torch bundle, a torch checkpoint or an ``.npz`` data file, and refuse it."""
    basenames = {n.rsplit("/", 1)[-1] for n in names}
    if MANIFEST_MEMBER in names:
        return
    tf_found = sorted(b for b in basenames if b in _TF_MARKERS or b.endswith(".keras"))
    torch_found = sorted(b for b in basenames if b in _UPSTREAM_TORCH_MARKERS)
    if torch_found and "model.keras" not in basenames:
        raise ForeignArchiveError(
            f"{where} is an upstream PtychoPINN ptycho_torch archive "
            f"({', '.join(torch_found + tf_found)}) whose dill/pickle members this PyTorch "
            f"backend (ptychodus-pinn-torch) never unpickles; load it with upstream's "
            f"ptycho_torch, or retrain with `pinn-torch train`."
        )
    checkpoint = sorted(n for n in names if re.fullmatch(r"[^/]+/data\.pkl", n))
    if checkpoint and not tf_found:
        raise ForeignArchiveError(
            f"{where} is a pickled torch checkpoint ({checkpoint[0]}: a training checkpoint, or "
            f"a Lightning .ckpt of upstream ptycho_torch as ptychodus' own PtychoPINN torch "
            f"reconstructor uses), not a model archive, and this PyTorch backend "
            f"(ptychodus-pinn-torch) never unpickles it; pass the {ARCHIVE_NAME} that training "
            f"wrote next to it."
        )
    if names and all(n.endswith(".npy") for n in names):
        raise ArchiveError(
            f"{where} is a NumPy .npz file ({', '.join(sorted(names)[:4])}...), i.e. data, not a "
            f"model archive; pass the {ARCHIVE_NAME} that training wrote."
        )
    if tf_found:
        raise ForeignArchiveError(
            f"{where} is a TensorFlow PtychoPINN archive ({', '.join(tf_found)}) written by the "
            f"TensorFlow backend (ptycho, ptychodus' 'PtychoPINN' reconstructor), and this "
            f"PyTorch backend (ptychodus-pinn-torch, 'PtychoPINN-PyTorch') cannot load "
            f"TensorFlow models directly; convert it with `pinn-torch import-tf {where} --out "
            f"wts.h5.zip --probe SCAN.npz`, load it with the TensorFlow backend, or train a "
            f"PyTorch model with `pinn-torch train`."
        )


def check_members(zf: zipfile.ZipFile, where: str) -> dict[str, zipfile.ZipInfo]:
    """Check every member's name, the member set, and each member's declared size, ratio,
    encryption and compression method, before anything is decompressed; name -> ZipInfo."""
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES_PARSED:  # the end record said otherwise: inconsistent
        raise ArchiveError(f"{where} lists {len(infos)} members; refused as hostile.")
    names = [info.filename for info in infos]
    for name in names:
        _check_member_name(name, where)
    _detect_foreign(names, where)
    if len(infos) > MAX_MEMBERS:
        raise ArchiveError(
            f"{where} lists {len(infos)} members, more than the {MAX_MEMBERS} a model archive "
            f"may hold; refused as hostile or not a model archive."
        )
    seen: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if info.filename in seen:
            raise ArchiveError(
                f"{where} holds the member {info.filename!r} twice; refused as ambiguous."
            )
        seen[info.filename] = info
    if MANIFEST_MEMBER not in seen:
        raise ArchiveError(
            f"{where} has no {MANIFEST_MEMBER} (members: {', '.join(sorted(seen)[:5])}); it is "
            f"not a ptychodus-pinn-torch model archive."
        )
    unknown = sorted(set(seen) - set(KNOWN_MEMBERS))
    if unknown:
        raise ArchiveError(
            f"{where} holds unexpected members {unknown}; a format-{FORMAT_VERSION} model archive "
            f"holds only {list(KNOWN_MEMBERS)}."
        )
    for name, info in seen.items():
        limit = MAX_MEMBER_BYTES[name]
        if info.flag_bits & 0x1:
            raise ArchiveError(f"{where}: member {name!r} is encrypted; refused.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ArchiveError(
                f"{where}: member {name!r} uses zip compression method {info.compress_type}; "
                f"only stored (0) and deflated (8) are accepted."
            )
        if info.file_size > limit:
            raise ArchiveError(
                f"{where}: member {name!r} declares {info.file_size} bytes uncompressed, above "
                f"the {limit}-byte limit; refused as hostile or corrupt."
            )
        if info.file_size > RATIO_CHECK_MIN_BYTES and (
            info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1)
        ):
            raise ArchiveError(
                f"{where}: member {name!r} declares a compression ratio of "
                f"{info.file_size / max(info.compress_size, 1):.0f} ({info.file_size} bytes from "
                f"{info.compress_size}), above {MAX_COMPRESSION_RATIO:.0f}; refused as a zip bomb."
            )
    return seen


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
    """Read one member in memory, never more than its declared size (checked above)."""
    limit = info.file_size
    chunks: list[bytes] = []
    total = 0
    try:
        with zf.open(info) as fh:
            while True:
                chunk = fh.read(min(_READ_CHUNK, limit - total + 1))
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    raise ArchiveError(
                        f"{where}: member {info.filename!r} inflates beyond its declared "
                        f"{limit} bytes; refused as corrupt or hostile."
                    )
                chunks.append(chunk)
    except ArchiveError:
        raise
    except ZIP_ERRORS as exc:
        raise ArchiveError(
            f"{where}: member {info.filename!r} is corrupt ({exc}); write the archive again."
        ) from exc
    data = b"".join(chunks)
    if len(data) != limit:
        raise ArchiveError(
            f"{where}: member {info.filename!r} holds {len(data)} bytes, not the declared "
            f"{limit}; the archive is corrupt."
        )
    return data
