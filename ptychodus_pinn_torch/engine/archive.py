"""The model archive ``wts.h5.zip``: save, peek and load a trained PtychoPINN safely.

Layout of a format-1 archive (normative text: ``specs/ARCH.md``)::

    wts.h5.zip
    ├── manifest.json                 JSON object, UTF-8 (backend "pytorch", format_version 1,
    │                                 configs, legacy params, intensity scale, history, sha256s)
    ├── probe.npy                     (N, N) complex64, the normalized probe, plain .npy (no pickle)
    └── diffraction_to_obj/model.pt   ``torch.save(state_dict)``: str -> Tensor only

Upstream names two models, ``autoencoder`` and ``diffraction_to_obj``; here both are the same torch
module (``PtychoPINN.forward`` is the autoencoder, ``PtychoPINN.diffraction_to_obj`` the inference
path), so its weights are stored once and the manifest maps both names to that member.

Reading never unpickles: the manifest is JSON, the probe is read with ``allow_pickle=False`` and
the weights only through ``torch.load(weights_only=True)``. Before any member is decompressed the
archive's end record, member names, member count, declared sizes and compression ratios are
checked; members are read in memory with hard caps and never extracted to disk.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import io
import json
import math
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch import nn

from ptychodus_pinn_torch import __version__
from ptychodus_pinn_torch.config import spec
from ptychodus_pinn_torch.config.legacy import dataclass_to_legacy_dict
from ptychodus_pinn_torch.config.serialize import spec_from_dict, spec_to_dict
from ptychodus_pinn_torch.data.atomic_file import atomic_write
from ptychodus_pinn_torch.model import build_model

__all__ = [
    "ARCHIVE_NAME",
    "BACKEND",
    "FORMAT_VERSION",
    "MODEL_NAMES",
    "ArchiveError",
    "ForeignArchiveError",
    "ModelBundle",
    "load_archive",
    "peek_archive",
    "resolve_archive_path",
    "save_archive",
]

#: File name of the archive inside a model folder (as upstream's ``{h5_path}.zip``).
ARCHIVE_NAME = "wts.h5.zip"
#: Value of the manifest's ``backend`` key.
BACKEND = "pytorch"
#: Value of the manifest's ``format`` key.
FORMAT_NAME = "ptychodus-pinn-torch model archive"
#: The archive format this module writes.
FORMAT_VERSION = 1
#: The archive formats this module reads.
SUPPORTED_FORMAT_VERSIONS: tuple[int, ...] = (1,)
#: Upstream's model names; both map to the one torch module stored here.
MODEL_NAMES: tuple[str, ...] = ("autoencoder", "diffraction_to_obj")

MANIFEST_MEMBER = "manifest.json"
PROBE_MEMBER = "probe.npy"
WEIGHTS_MEMBER = "diffraction_to_obj/model.pt"
KNOWN_MEMBERS: tuple[str, ...] = (MANIFEST_MEMBER, PROBE_MEMBER, WEIGHTS_MEMBER)

_MiB = 1 << 20
#: Most entries a model archive may hold (a format-1 archive has 3).
MAX_MEMBERS = 16
#: Most entries whose names are parsed at all (enough to recognize another backend's file).
MAX_ENTRIES_PARSED = 4096
#: Largest central directory parsed (bytes).
MAX_CENTRAL_DIRECTORY_BYTES = 1 * _MiB
#: Largest uncompressed size accepted per member (bytes).
MAX_MEMBER_BYTES: dict[str, int] = {
    MANIFEST_MEMBER: 16 * _MiB,
    PROBE_MEMBER: 64 * _MiB,
    WEIGHTS_MEMBER: 2048 * _MiB,
}
#: Members larger than this many bytes must not compress better than MAX_COMPRESSION_RATIO.
RATIO_CHECK_MIN_BYTES = 1 * _MiB
#: Highest uncompressed/compressed ratio accepted for a member above RATIO_CHECK_MIN_BYTES.
MAX_COMPRESSION_RATIO = 100.0
#: Most records accepted inside the torch weights file (one per tensor storage, plus 7).
MAX_WEIGHT_RECORDS = 65536
#: Relative tolerance between the manifest's intensity_scale and exp(log_scale) of the weights.
INTENSITY_SCALE_RTOL = 1e-5

_EOCD_SIGNATURE = b"PK\x05\x06"
_EOCD_SIZE = 22
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_READ_CHUNK = 1 * _MiB
# Members that only the TensorFlow backend (`ptycho.model_manager`) or upstream's pickled
# PyTorch bundle (`ptycho_torch.model_manager`) write.
_TF_MARKERS = ("manifest.dill", "model.keras", "custom_objects.dill", "params.dill", "model.h5")
_UPSTREAM_TORCH_MARKERS = ("model.pth",)
# What zipfile/zlib raise on malformed input (found by fuzzing, tests/test_archive_fuzz.py).
_ZIP_ERRORS: tuple[type[BaseException], ...] = (
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


class ArchiveError(ValueError):
    """A model archive that cannot be written or is refused on reading (one clear sentence)."""


class ForeignArchiveError(ArchiveError):
    """An archive written by another PtychoPINN backend (TensorFlow ``ptycho`` or upstream's
    pickled ``ptycho_torch`` bundle); this backend does not load it."""


@dataclass
class ModelBundle:
    """A trained model and everything needed to use it again.

    Attributes:
        model: the ``PtychoPINN`` torch module (built by ``model.build_model``); a
            DataParallel/DistributedDataParallel wrapper is unwrapped on saving.
        model_config: the spec ``config.spec.ModelConfig`` it was built from.
        training_config: the spec ``config.spec.TrainingConfig`` it was trained with, or None.
        intensity_scale: ``exp(model.log_scale)`` after training (upstream HEAD semantics),
            a positive float; the model input is ``X_full * intensity_scale``.
        probe: ``(N, N)`` complex64, the normalized probe the model uses.
        history: per-epoch records (dicts of JSON numbers/strings, e.g. train and validation
            loss); dataclass records are converted with ``dataclasses.asdict`` on saving.
        legacy_params: the upstream flat ``params.cfg`` dict (``dataclass_to_legacy_dict`` of the
            configs plus ``intensity_scale``); filled by ``save_archive`` / ``load_archive``
            (keys set here that the configs do not define are kept).
        extra: free JSON metadata (e.g. data provenance).
    """

    model: nn.Module
    model_config: spec.ModelConfig
    training_config: spec.TrainingConfig | None = None
    intensity_scale: float = 1.0
    probe: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.complex64))
    history: list[dict[str, Any]] = field(default_factory=list)
    legacy_params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def N(self) -> int:  # noqa: N802 - upstream's name for the patch size
        """Patch size in pixels (``model_config.N``)."""
        return int(self.model_config.N)

    @property
    def gridsize(self) -> int:
        """Group side: each sample holds ``gridsize**2`` patterns (``model_config.gridsize``)."""
        return int(self.model_config.gridsize)


# --------------------------------------------------------------------------------------------
# paths


def resolve_archive_path(path: str | os.PathLike[str]) -> Path:
    """The archive file that ``path`` names, for reading.

    ``path`` is the archive itself or a folder holding ``wts.h5.zip`` (upstream
    ``load_inference_bundle``); ``.../wts.h5`` also finds ``.../wts.h5.zip``.

    Raises:
        FileNotFoundError: nothing there, or a folder without ``wts.h5.zip`` (upstream D2/D4/D7).
    """
    p = Path(path).expanduser()
    if p.is_dir():
        candidate = p / ARCHIVE_NAME
        if not candidate.is_file():
            raise FileNotFoundError(
                f"Model archive not found: folder {str(p)!r} holds no {ARCHIVE_NAME}; "
                f"pass the archive file itself or the folder that training wrote it to."
            )
        return candidate
    if p.is_file():
        return p
    with_zip = p.with_name(p.name + ".zip")
    if with_zip.is_file():
        return with_zip
    raise FileNotFoundError(
        f"Model archive not found: {str(p)!r} does not exist (also checked {str(with_zip)!r}); "
        f"pass an existing {ARCHIVE_NAME} file or the folder holding it."
    )


def _target_path(path: str | os.PathLike[str]) -> Path:
    """Where ``save_archive(path, ...)`` writes: ``path`` if it ends with ``.zip``; else, for
    an existing folder or a name without suffix, ``path/wts.h5.zip`` (upstream
    ``save(out_prefix)``)."""
    p = Path(path).expanduser()
    if p.is_dir():
        return p / ARCHIVE_NAME
    if p.suffix == ".zip":
        return p
    if not p.suffix:
        return p / ARCHIVE_NAME
    raise ArchiveError(
        f"archive path {str(p)!r} ends with {p.suffix!r}, not '.zip'; name the file like "
        f"'{ARCHIVE_NAME}' or pass the folder to write {ARCHIVE_NAME} into."
    )


# --------------------------------------------------------------------------------------------
# JSON helpers


def _json_safe(value: Any, where: str) -> Any:
    """A copy of ``value`` made of JSON types; Paths become str, numpy scalars Python numbers,
    non-finite floats None. Anything else is an ArchiveError naming ``where``."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        return _json_safe(value.item(), where)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _json_safe(dataclasses.asdict(value), where)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ArchiveError(
                    f"{where} has the non-string key {k!r}; archive metadata keys must be str."
                )
            out[k] = _json_safe(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, list | tuple):
        return [_json_safe(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise ArchiveError(
        f"{where} holds {type(value).__name__} {value!r:.60}, which JSON cannot store; "
        f"give it numbers, strings, booleans, lists or dicts."
    )


def _config_to_dict(cfg: Any, kind: str, where: str) -> dict[str, Any]:
    """A spec config (kind 'model' or 'training') as a JSON-safe dict via
    ``config.serialize.spec_to_dict``; refused unless ``spec_from_dict`` gives it back equal
    (so that every archive written can be read)."""
    try:
        data = _json_safe(spec_to_dict(cfg), where)
        back = spec_from_dict(data, kind)
    except ArchiveError:
        raise
    except (TypeError, ValueError) as exc:
        raise ArchiveError(f"{where} cannot be stored: {exc}") from exc
    if back != cfg:
        raise ArchiveError(
            f"{where} does not survive its JSON round trip ({back!r:.80} != {cfg!r:.80}); "
            f"use plain field values."
        )
    return data


def _legacy_params(bundle: ModelBundle, intensity_scale: float) -> dict[str, Any]:
    """Upstream's flat params dict: ``dataclass_to_legacy_dict`` of the training config (or the
    model config alone), plus ``intensity_scale``, ``backend='pytorch'`` and ``_version``; keys of
    ``bundle.legacy_params`` that the configs do not define are kept."""
    source = bundle.training_config if bundle.training_config is not None else bundle.model_config
    derived = _json_safe(dataclass_to_legacy_dict(source), "legacy params")
    merged = dict(_json_safe(bundle.legacy_params or {}, "bundle.legacy_params"))
    merged.update(derived)
    merged["intensity_scale"] = intensity_scale
    merged["backend"] = BACKEND  # the weights are PyTorch's whatever the config defaulted to
    merged["_version"] = f"{FORMAT_VERSION}-pytorch"
    return merged


# --------------------------------------------------------------------------------------------
# saving


def _unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DataParallel / DistributedDataParallel / ``torch.compile`` wrapper
    (whose state-dict keys carry a prefix), else ``model``."""
    compiled = getattr(model, "_orig_mod", None)
    if isinstance(compiled, nn.Module):
        model = compiled
    inner = getattr(model, "module", None)
    if isinstance(inner, nn.Module) and type(model).__name__ in (
        "DistributedDataParallel",
        "DataParallel",
    ):
        return inner
    return model


def _model_intensity_scale(model: nn.Module) -> float | None:
    """``exp(model.log_scale)`` as a float (the scalar log_scale parameter is float32), or
    None for a module without ``log_scale``."""
    log_scale = getattr(model, "log_scale", None)
    if isinstance(log_scale, torch.Tensor):
        return float(torch.exp(log_scale.detach().double().cpu()).reshape(-1)[0])
    return None


def _check_probe(probe: Any, n: int, where: str) -> np.ndarray:
    """``probe`` (array or tensor, any device) as a ``(n, n)`` complex64 numpy array; refused
    unless it is 2-D of that shape, complex and finite."""
    if isinstance(probe, torch.Tensor):
        probe = probe.detach().cpu().numpy()
    arr = np.asarray(probe)
    if arr.shape != (n, n):
        raise ArchiveError(
            f"{where} has shape {arr.shape}, expected ({n}, {n}) for N={n}; "
            f"give the normalized 2-D probe the model uses."
        )
    if not np.iscomplexobj(arr):
        raise ArchiveError(
            f"{where} has dtype {arr.dtype}, expected complex64; give the complex probe."
        )
    arr = arr.astype(np.complex64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ArchiveError(f"{where} holds NaN or Inf values; the probe must be finite.")
    return arr


def _state_dict_bytes(model: nn.Module) -> tuple[bytes, int]:
    """``torch.save`` bytes of the model's state dict (tensors detached, on CPU, contiguous)
    and the number of tensors."""
    state = model.state_dict()
    clean: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ArchiveError(
                f"model state_dict entry {key!r} is a {type(value).__name__}, not a tensor; "
                f"only tensors can be stored."
            )
        clean[key] = value.detach().cpu().contiguous().clone()
    buffer = io.BytesIO()
    torch.save(clean, buffer)
    return buffer.getvalue(), len(clean)


def _npy_bytes(array: np.ndarray) -> bytes:
    """The ``.npy`` file of ``array`` (any shape/dtype without objects), written without pickle."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _sha256(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def build_manifest(bundle: ModelBundle, *, weights: bytes, probe_npy: bytes, n_tensors: int,
                   intensity_scale: float) -> dict[str, Any]:
    """The manifest dict that ``save_archive`` writes for ``bundle`` (see specs/ARCH.md)."""
    model_config = _config_to_dict(bundle.model_config, "model", "bundle.model_config")
    training_config = (
        None
        if bundle.training_config is None
        else _config_to_dict(bundle.training_config, "training", "bundle.training_config")
    )
    history = [
        _json_safe(h, f"bundle.history[{i}]") for i, h in enumerate(bundle.history or [])
    ]
    for i, h in enumerate(history):
        if not isinstance(h, dict):
            raise ArchiveError(
                f"bundle.history[{i}] is {h!r:.60}; each epoch record must be a dict."
            )
    return {
        "backend": BACKEND,
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "package": "ptychodus-pinn-torch",
        "package_version": __version__,
        "torch_version": str(torch.__version__),
        "created_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "models": list(MODEL_NAMES),
        "model_members": {name: WEIGHTS_MEMBER for name in MODEL_NAMES},
        "N": bundle.N,
        "gridsize": bundle.gridsize,
        "model_config": model_config,
        "training_config": training_config,
        "legacy_params": _legacy_params(bundle, intensity_scale),
        "intensity_scale": intensity_scale,
        "trainable": _trainable_flags(bundle),
        "weights": {
            "member": WEIGHTS_MEMBER,
            "format": "torch.save state_dict (load with weights_only=True)",
            "sha256": _sha256(weights),
            "size": len(weights),
            "tensors": n_tensors,
        },
        "probe": {
            "member": PROBE_MEMBER,
            "format": "npy",
            "dtype": "complex64",
            "shape": [bundle.N, bundle.N],
            "sha256": _sha256(probe_npy),
            "size": len(probe_npy),
        },
        "history": history,
        "extra": _json_safe(bundle.extra or {}, "bundle.extra"),
    }


def _trainable_flags(bundle: ModelBundle) -> dict[str, bool]:
    """Whether the model's probe and log_scale parameters require gradients (rebuilt alike)."""
    model = _unwrap(bundle.model)
    log_scale = getattr(model, "log_scale", None)
    scale_trainable = bool(isinstance(log_scale, torch.Tensor) and log_scale.requires_grad)
    probe_trainable = any(
        p.requires_grad for name, p in model.named_parameters() if "probe" in name.split(".")[-1]
    )
    return {"probe": probe_trainable, "intensity_scale": scale_trainable}


def save_archive(path: str | os.PathLike[str], bundle: ModelBundle) -> Path:
    """Write ``bundle`` as a model archive, atomically.

    Args:
        path: the ``.zip`` file to write, or a folder (existing, or a new name without suffix)
            to write ``wts.h5.zip`` into. Missing parent folders are created.
        bundle: the trained model; ``bundle.intensity_scale`` must equal ``exp(model.log_scale)``
            (relative tolerance 1e-5). The probe stored is ``model.probe`` ((N, N) complex64,
            normalized); ``bundle.probe`` only for a model without one. On success
            ``bundle.probe`` and ``bundle.legacy_params`` are set to what was stored.

    Returns:
        The path written. The archive appears complete or not at all: it is written to a
        temporary file in the same folder, flushed, fsynced and moved into place with
        ``os.replace``.

    Raises:
        ArchiveError: a bundle that cannot be stored or loaded back (wrong probe shape,
            non-JSON metadata, configs that disagree or do not survive JSON, intensity scale
            that disagrees with the weights, a path with a suffix other than ``.zip``); nothing
            is written then.
    """
    target = _target_path(path)
    model = _unwrap(bundle.model)
    n = bundle.N
    model_probe = getattr(model, "probe", None)
    if isinstance(model_probe, torch.Tensor):  # the probe the model really uses (normalized)
        probe = _check_probe(model_probe, n, "model.probe")
    else:
        probe = _check_probe(bundle.probe, n, "bundle.probe")
    model_cfg = getattr(model, "config", None)
    if type(model_cfg) is type(bundle.model_config) and model_cfg != bundle.model_config:
        raise ArchiveError(
            "bundle.model_config differs from model.config; pass the config the model was "
            "built from."
        )
    scale = float(bundle.intensity_scale)
    if not (math.isfinite(scale) and scale > 0):
        raise ArchiveError(
            f"bundle.intensity_scale is {bundle.intensity_scale!r}; it must be a finite positive "
            f"number (exp of the trained log_scale)."
        )
    model_scale = _model_intensity_scale(model)
    if model_scale is not None and not math.isclose(
        scale, model_scale, rel_tol=INTENSITY_SCALE_RTOL
    ):
        raise ArchiveError(
            f"bundle.intensity_scale {scale!r} differs from exp(model.log_scale) {model_scale!r}; "
            f"set it to float(model.intensity_scale) after training."
        )
    if bundle.training_config is not None:
        nested = getattr(bundle.training_config, "model", None)
        if nested is not None and nested != bundle.model_config:
            raise ArchiveError(
                "bundle.training_config.model differs from bundle.model_config; "
                "pass the model config the model was built from in both places."
            )
    weights, n_tensors = _state_dict_bytes(model)
    probe_npy = _npy_bytes(probe)
    manifest = build_manifest(
        bundle, weights=weights, probe_npy=probe_npy, n_tensors=n_tensors, intensity_scale=scale
    )
    manifest_bytes = json.dumps(manifest, indent=1, allow_nan=False).encode("utf-8")
    for name, data in ((MANIFEST_MEMBER, manifest_bytes), (PROBE_MEMBER, probe_npy),
                       (WEIGHTS_MEMBER, weights)):
        if len(data) > MAX_MEMBER_BYTES[name]:
            raise ArchiveError(
                f"{name} would be {len(data)} bytes, above the {MAX_MEMBER_BYTES[name]}-byte "
                f"limit that loading enforces; shrink the model or its metadata."
            )
    with atomic_write(target) as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MANIFEST_MEMBER, manifest_bytes)
            zf.writestr(PROBE_MEMBER, probe_npy)
            # Trained float weights barely compress: store them, it is faster.
            zf.writestr(WEIGHTS_MEMBER, weights, compress_type=zipfile.ZIP_STORED)
    bundle.legacy_params = dict(manifest["legacy_params"])
    bundle.probe = probe
    return target


# --------------------------------------------------------------------------------------------
# reading: the zip container


def _check_end_record(fh: IO[bytes], where: str) -> None:
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
            f"TensorFlow models; load it with the TensorFlow backend, or train a PyTorch model "
            f"with `pinn-torch train`."
        )


def _check_members(zf: zipfile.ZipFile, where: str) -> dict[str, zipfile.ZipInfo]:
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


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
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
    except _ZIP_ERRORS as exc:
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


# --------------------------------------------------------------------------------------------
# reading: the manifest


def _require(manifest: dict[str, Any], key: str, types: tuple[type, ...], where: str) -> Any:
    """``manifest[key]``, refused when missing or not of ``types`` (bool is not an int)."""
    if key not in manifest:
        raise ArchiveError(
            f"{where}: manifest.json lacks the key {key!r}; the archive is incomplete."
        )
    value = manifest[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        names = " or ".join(t.__name__ for t in types)
        raise ArchiveError(
            f"{where}: manifest.json key {key!r} is {value!r:.60}, expected {names}."
        )
    return value


def _check_digest(section: dict[str, Any], key: str, member: str, where: str) -> None:
    """Refuse a manifest section naming another member or without a well-formed sha256."""
    if section.get("member") != member:
        raise ArchiveError(
            f"{where}: manifest.json {key}.member is {section.get('member')!r}, "
            f"expected {member!r}."
        )
    digest = section.get("sha256")
    if not isinstance(digest, str) or not _SHA256_RE.match(digest):
        raise ArchiveError(
            f"{where}: manifest.json {key}.sha256 is {digest!r:.80}, expected 64 lowercase "
            f"hex digits."
        )


def _positive_int(value: Any) -> bool:
    """True for an int > 0 that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def validate_manifest(manifest: Any, where: str = "archive") -> dict[str, Any]:
    """Check a parsed manifest.json against format 1 and return it.

    Raises:
        ForeignArchiveError: ``backend`` names another backend (e.g. "tensorflow").
        ArchiveError: missing key, wrong type, unknown ``format_version``, model configuration
            without ``N``/``gridsize`` (upstream D6/D8), no ``diffraction_to_obj`` model
            (upstream D3/D12), bad digest fields or intensity scale.
    """
    if not isinstance(manifest, dict):
        raise ArchiveError(
            f"{where}: manifest.json holds {type(manifest).__name__}, not a JSON object."
        )
    if "backend" not in manifest:
        raise ArchiveError(
            f"{where}: manifest.json has no 'backend' key; a ptychodus-pinn-torch archive says "
            f"backend: {BACKEND!r}."
        )
    backend = manifest["backend"]
    if backend != BACKEND:
        cls = ForeignArchiveError if backend in ("tensorflow", "tf", "keras") else ArchiveError
        raise cls(
            f"{where}: manifest.json says backend {backend!r}, and this PyTorch backend "
            f"(ptychodus-pinn-torch) loads only backend {BACKEND!r} archives; load it with the "
            f"backend that wrote it (TensorFlow models: upstream ptycho)."
        )
    version = manifest.get("format_version")
    if isinstance(version, bool) or version not in SUPPORTED_FORMAT_VERSIONS:
        raise ArchiveError(
            f"{where}: manifest.json format_version {version!r} is not one this "
            f"ptychodus-pinn-torch {__version__} reads ({list(SUPPORTED_FORMAT_VERSIONS)}); "
            f"upgrade ptychodus-pinn-torch to load it."
        )
    models = _require(manifest, "models", (list,), where)
    if "diffraction_to_obj" not in models:
        raise ArchiveError(
            f"{where}: manifest.json models {models!r} lacks 'diffraction_to_obj', the inference "
            f"model; the archive is incomplete."
        )
    model_config = _require(manifest, "model_config", (dict,), where)
    missing = [k for k in ("N", "gridsize") if not _positive_int(model_config.get(k))]
    if missing:
        shown = ", ".join(f"{k}={model_config.get(k)!r}" for k in ("N", "gridsize"))
        raise ArchiveError(
            f"{where}: manifest.json model_config lacks valid required fields {missing} ({shown}); "
            f"the archive cannot rebuild its model."
        )
    for key in ("N", "gridsize"):
        if manifest.get(key, model_config[key]) != model_config[key]:
            raise ArchiveError(
                f"{where}: manifest.json {key}={manifest.get(key)!r} disagrees with "
                f"model_config.{key}={model_config[key]!r}; the archive is inconsistent."
            )
    if manifest.get("training_config") is not None:
        _require(manifest, "training_config", (dict,), where)
    scale = _require(manifest, "intensity_scale", (int, float), where)
    if not (math.isfinite(scale) and scale > 0):
        raise ArchiveError(
            f"{where}: manifest.json intensity_scale is {scale!r}; it must be finite and positive."
        )
    _require(manifest, "legacy_params", (dict,), where)
    history = _require(manifest, "history", (list,), where)
    if not all(isinstance(h, dict) for h in history):
        raise ArchiveError(f"{where}: manifest.json history must be a list of objects.")
    _require(manifest, "extra", (dict,), where)
    weights = _require(manifest, "weights", (dict,), where)
    _check_digest(weights, "weights", WEIGHTS_MEMBER, where)
    probe = _require(manifest, "probe", (dict,), where)
    _check_digest(probe, "probe", PROBE_MEMBER, where)
    n = model_config["N"]
    if probe.get("shape") != [n, n] or probe.get("dtype") != "complex64":
        raise ArchiveError(
            f"{where}: manifest.json probe is {probe.get('shape')!r} {probe.get('dtype')!r}, "
            f"expected [{n}, {n}] 'complex64' for N={n}."
        )
    trainable = manifest.get("trainable", {})
    if not isinstance(trainable, dict) or not all(isinstance(v, bool) for v in trainable.values()):
        raise ArchiveError(f"{where}: manifest.json trainable must map names to true/false.")
    return manifest


def _parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    """Strict JSON (UTF-8, no NaN/Infinity) -> validated manifest dict."""
    def no_constants(token: str) -> Any:
        raise ValueError(f"the non-standard JSON constant {token}")

    try:
        manifest = json.loads(data.decode("utf-8"), parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ArchiveError(
            f"{where}: manifest.json is not valid UTF-8 JSON ({str(exc)[:120]}); the archive is "
            f"corrupt."
        ) from exc
    return validate_manifest(manifest, where)


class _OpenArchive:
    """An opened, container-checked archive: the zip, its checked members, its manifest."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = resolve_archive_path(path)
        self.where = f"model archive {str(self.path)!r}"
        self._fh: IO[bytes] = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        try:
            _check_end_record(self._fh, self.where)
            try:
                self.zf = zipfile.ZipFile(self._fh, "r")
            except _ZIP_ERRORS as exc:
                raise ArchiveError(
                    f"{self.where} is not a readable zip archive ({exc}); pass a {ARCHIVE_NAME} "
                    f"file written by ptychodus-pinn-torch."
                ) from exc
            self.members = _check_members(self.zf, self.where)
            self.manifest = _parse_manifest(
                _read_member(self.zf, self.members[MANIFEST_MEMBER], self.where), self.where
            )
        except BaseException:
            self.close()
            raise

    def read_checked(self, key: str) -> bytes:
        """Read the member that manifest section ``key`` ('weights' or 'probe') names and check
        its sha256."""
        section = self.manifest[key]
        member = section["member"]
        if member not in self.members:
            raise ArchiveError(
                f"{self.where} lacks the member {member!r}; the archive is incomplete."
            )
        data = _read_member(self.zf, self.members[member], self.where)
        digest = _sha256(data)
        if digest != section["sha256"]:
            raise ArchiveError(
                f"{self.where}: member {member!r} has sha256 {digest[:16]}..., but the manifest "
                f"records {section['sha256'][:16]}...; the archive is corrupt or was altered."
            )
        return data

    def close(self) -> None:
        zf = getattr(self, "zf", None)
        if zf is not None:
            zf.close()
        self._fh.close()

    def __enter__(self) -> _OpenArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def peek_archive(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The validated manifest of an archive, without reading its probe or weights.

    Args:
        path: the archive, or a folder holding ``wts.h5.zip``.

    Returns:
        The manifest dict (keys: backend, format_version, models, N, gridsize, model_config,
        training_config, legacy_params, intensity_scale, history, extra, weights, probe, ...).

    Raises:
        FileNotFoundError: no archive there. ArchiveError / ForeignArchiveError: see
        ``load_archive``.
    """
    with _OpenArchive(path) as archive:
        return archive.manifest


# --------------------------------------------------------------------------------------------
# reading: probe, weights, model


def _load_probe(data: bytes, n: int, where: str) -> np.ndarray:
    """The ``(n, n)`` complex64 probe from ``.npy`` bytes, read with ``allow_pickle=False``."""
    try:
        probe = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ArchiveError(f"{where}: {PROBE_MEMBER} is not a plain .npy array ({exc}).") from exc
    if not isinstance(probe, np.ndarray) or probe.dtype != np.complex64 or probe.shape != (n, n):
        raise ArchiveError(
            f"{where}: {PROBE_MEMBER} holds {getattr(probe, 'dtype', '?')} "
            f"{getattr(probe, 'shape', '?')}, expected complex64 ({n}, {n})."
        )
    if not np.all(np.isfinite(probe)):
        raise ArchiveError(f"{where}: {PROBE_MEMBER} holds NaN or Inf values.")
    return probe


def _check_torch_container(data: bytes, where: str) -> None:
    """The weights must be torch's zip serialization (``torch.save``'s format since 1.6) with
    stored records whose sizes fit in the member: torch then never allocates more than the
    member holds. The legacy (pre-1.6) stream format is refused unread."""
    if data[:4] != b"PK\x03\x04":
        raise ArchiveError(
            f"{where}: {WEIGHTS_MEMBER} is not in torch's zip serialization format (what "
            f"torch.save writes); refused unread."
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as inner:
            infos = inner.infolist()
    except _ZIP_ERRORS as exc:
        raise ArchiveError(f"{where}: {WEIGHTS_MEMBER} is a corrupt torch file ({exc}).") from exc
    if len(infos) > MAX_WEIGHT_RECORDS:
        raise ArchiveError(
            f"{where}: {WEIGHTS_MEMBER} holds {len(infos)} records, more than "
            f"{MAX_WEIGHT_RECORDS}; refused as hostile."
        )
    declared = 0
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise ArchiveError(
                f"{where}: {WEIGHTS_MEMBER} record {info.filename!r} is compressed or encrypted, "
                f"which torch.save never writes; refused as hostile."
            )
        declared += info.file_size
    if declared > len(data):
        raise ArchiveError(
            f"{where}: {WEIGHTS_MEMBER} records declare {declared} bytes in a {len(data)}-byte "
            f"file; refused as corrupt or hostile."
        )


def _load_state_dict(data: bytes, device: torch.device, where: str) -> dict[str, torch.Tensor]:
    """The state dict (name -> tensor on ``device``) from ``torch.save`` bytes, read only with
    ``torch.load(weights_only=True)`` after the container checks."""
    _check_torch_container(data, where)
    try:
        state = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ValueError, ...
        text = str(exc)
        reason = next(
            (line.strip() for line in text.splitlines() if "Unsupported" in line),
            text.splitlines()[0][:160] if text else type(exc).__name__,
        )
        raise ArchiveError(
            f"{where}: {WEIGHTS_MEMBER} was refused by torch.load(weights_only=True) ({reason}); "
            f"it is corrupt or hostile, and it is never unpickled any other way."
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ArchiveError(
            f"{where}: {WEIGHTS_MEMBER} holds {type(state).__name__}, not a state dict of "
            f"name -> tensor."
        )
    return state


def check_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    """Refuse ``state`` unless its keys, shapes and dtypes are exactly ``model``'s."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ArchiveError(
            f"{where}: the stored weights do not fit the model rebuilt from the manifest "
            f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
            f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''}); the archive is corrupt or "
            f"from an incompatible version."
        )
    for key, ref in expected.items():
        got = state[key]
        if tuple(got.shape) != tuple(ref.shape) or got.dtype != ref.dtype:
            raise ArchiveError(
                f"{where}: stored weight {key!r} is {got.dtype} {tuple(got.shape)}, but the model "
                f"rebuilt from the manifest expects {ref.dtype} {tuple(ref.shape)}; the archive "
                f"is corrupt or from an incompatible version."
            )


def _config_from_dict(data: dict[str, Any], kind: str, where: str) -> Any:
    """Rebuild and validate a spec config (kind 'model' or 'training') from its manifest dict
    with ``config.serialize.spec_from_dict``; unknown or missing fields are refused."""
    try:
        return spec_from_dict(data, kind)
    except (TypeError, ValueError, KeyError) as exc:
        raise ArchiveError(f"{where}: manifest.json {kind} config is invalid: {exc}") from exc


def load_archive(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> ModelBundle:
    """Load a model archive written by ``save_archive``.

    Args:
        path: the archive, or a folder holding ``wts.h5.zip`` (upstream ``load_inference_bundle``).
        device: where the rebuilt model and its weights go.

    Returns:
        A ModelBundle whose model is rebuilt with ``model.build_model`` from the stored spec
        configuration and loaded with ``load_state_dict(strict=True)``, in eval mode; ``probe``
        is ``(N, N)`` complex64; ``intensity_scale == exp(model.log_scale)``.

    Raises:
        FileNotFoundError: nothing at ``path`` / a folder without ``wts.h5.zip``.
        ForeignArchiveError: a TensorFlow (``manifest.dill``, ``model.keras``) or upstream
            pickled ``ptycho_torch`` archive.
        ArchiveError: not a zip; hostile names, member count, sizes or compression ratios;
            missing or invalid manifest; wrong backend or format version; sha256 mismatch;
            weights that ``torch.load(weights_only=True)`` refuses; weights that do not fit.
    """
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'cpu', 'cuda' or 'cuda:0'."
        ) from exc
    with _OpenArchive(path) as archive:
        manifest = archive.manifest
        where = archive.where
        # cheap checks first: the configs, before megabytes of weights are read
        model_config = _config_from_dict(manifest["model_config"], "model", where)
        training_config = (
            None
            if manifest.get("training_config") is None
            else _config_from_dict(manifest["training_config"], "training", where)
        )
        if training_config is not None and training_config.model != model_config:
            raise ArchiveError(
                f"{where}: manifest.json training_config.model differs from model_config; the "
                f"archive is inconsistent."
            )
        n = int(manifest["model_config"]["N"])
        probe = _load_probe(archive.read_checked("probe"), n, where)
        state = _load_state_dict(archive.read_checked("weights"), torch.device("cpu"), where)
    trainable = manifest.get("trainable", {})
    try:
        model = build_model(
            model_config,
            probe=probe,
            intensity_scale=float(manifest["intensity_scale"]),
            probe_trainable=bool(trainable.get("probe", False)),
            intensity_scale_trainable=bool(trainable.get("intensity_scale", True)),
            probe_normalized=True,
        )
    except ValueError as exc:
        raise ArchiveError(
            f"{where}: the model cannot be rebuilt from the manifest: {exc}"
        ) from exc
    check_state_dict(model, state, where)
    model.load_state_dict(state, strict=True)
    model.to(device)
    model.eval()
    model_probe = getattr(model, "probe", None)
    if isinstance(model_probe, torch.Tensor) and not np.array_equal(
        model_probe.detach().cpu().numpy(), probe
    ):
        raise ArchiveError(
            f"{where}: {PROBE_MEMBER} differs from the probe held in the weights; the archive "
            f"is inconsistent."
        )
    scale = float(manifest["intensity_scale"])
    weights_scale = _model_intensity_scale(model)
    if weights_scale is not None and not math.isclose(
        scale, weights_scale, rel_tol=INTENSITY_SCALE_RTOL
    ):
        raise ArchiveError(
            f"{where}: manifest intensity_scale {scale!r} disagrees with exp(log_scale) "
            f"{weights_scale!r} of the weights; the archive is inconsistent."
        )
    return ModelBundle(
        model=model,
        model_config=model_config,
        training_config=training_config,
        intensity_scale=scale,
        probe=probe,
        history=list(manifest["history"]),
        legacy_params=dict(manifest["legacy_params"]),
        extra=dict(manifest["extra"]),
    )
