"""The model archive ``wts.h5.zip``: save, peek and load a trained PtychoPINN safely.

One module per job: ``format`` (names, limits, errors, ``ModelBundle``, paths), ``safezip`` (the
zip container checked before anything is decompressed), ``manifest`` (``manifest.json`` built and
validated), ``save`` (writing, atomically) and ``load`` (peek and load). The public names are
re-exported here; import them from ``ptychodus_pinn_torch.engine.archive``.
"""

from ptychodus_pinn_torch.engine.archive.format import (
    ARCHIVE_NAME,
    BACKEND,
    FORMAT_NAME,
    FORMAT_VERSION,
    INTENSITY_SCALE_RTOL,
    KNOWN_MEMBERS,
    MANIFEST_MEMBER,
    MAX_MEMBER_BYTES,
    MODEL_NAMES,
    PROBE_MEMBER,
    SUPPORTED_FORMAT_VERSIONS,
    WEIGHTS_MEMBER,
    ArchiveError,
    ForeignArchiveError,
    ModelBundle,
    resolve_archive_path,
)
from ptychodus_pinn_torch.engine.archive.load import check_state_dict, load_archive, peek_archive
from ptychodus_pinn_torch.engine.archive.manifest import build_manifest, validate_manifest
from ptychodus_pinn_torch.engine.archive.safezip import (
    MAX_CENTRAL_DIRECTORY_BYTES,
    MAX_COMPRESSION_RATIO,
    MAX_ENTRIES_PARSED,
    MAX_MEMBERS,
    MAX_WEIGHT_RECORDS,
    RATIO_CHECK_MIN_BYTES,
)
from ptychodus_pinn_torch.engine.archive.save import save_archive

__all__ = [
    "ARCHIVE_NAME",
    "BACKEND",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "INTENSITY_SCALE_RTOL",
    "KNOWN_MEMBERS",
    "MANIFEST_MEMBER",
    "MAX_CENTRAL_DIRECTORY_BYTES",
    "MAX_COMPRESSION_RATIO",
    "MAX_ENTRIES_PARSED",
    "MAX_MEMBERS",
    "MAX_MEMBER_BYTES",
    "MAX_WEIGHT_RECORDS",
    "MODEL_NAMES",
    "PROBE_MEMBER",
    "RATIO_CHECK_MIN_BYTES",
    "SUPPORTED_FORMAT_VERSIONS",
    "WEIGHTS_MEMBER",
    "ArchiveError",
    "ForeignArchiveError",
    "ModelBundle",
    "build_manifest",
    "check_state_dict",
    "load_archive",
    "peek_archive",
    "resolve_archive_path",
    "save_archive",
    "validate_manifest",
]
