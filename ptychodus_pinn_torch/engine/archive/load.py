"""Reading a model archive: peek at its manifest, or load the model it holds."""

from __future__ import annotations

import io
import math
import os
import zipfile
from collections.abc import Mapping
from typing import IO, Any

import numpy as np
import torch
from torch import nn

from ptychodus_pinn_torch.config.interop.serialize import spec_from_dict
from ptychodus_pinn_torch.engine.archive.format import (
    ARCHIVE_NAME,
    INTENSITY_SCALE_RTOL,
    MANIFEST_MEMBER,
    PROBE_MEMBER,
    WEIGHTS_MEMBER,
    ArchiveError,
    ModelBundle,
    model_intensity_scale,
    resolve_archive_path,
)
from ptychodus_pinn_torch.engine.archive.manifest import parse_manifest, sha256_hex
from ptychodus_pinn_torch.engine.archive.safezip import (
    MAX_WEIGHT_RECORDS,
    ZIP_ERRORS,
    check_end_record,
    check_members,
    read_member,
)
from ptychodus_pinn_torch.engine.archive.sizes import (
    check_declared_sizes,
    check_finite_weights,
    meta_model,
    rebuild_model,
)


class OpenArchive:
    """An opened, container-checked archive: the zip, its checked members, its manifest."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = resolve_archive_path(path)
        self.where = f"model archive {str(self.path)!r}"
        self._fh: IO[bytes] = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        try:
            check_end_record(self._fh, self.where)
            try:
                self.zf = zipfile.ZipFile(self._fh, "r")
            except ZIP_ERRORS as exc:
                raise ArchiveError(
                    f"{self.where} is not a readable zip archive ({exc}); pass a {ARCHIVE_NAME} "
                    f"file written by ptychodus-pinn-torch."
                ) from exc
            self.members = check_members(self.zf, self.where)
            self.manifest = parse_manifest(
                read_member(self.zf, self.members[MANIFEST_MEMBER], self.where), self.where
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
        data = read_member(self.zf, self.members[member], self.where)
        digest = sha256_hex(data)
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

    def __enter__(self) -> OpenArchive:
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
    with OpenArchive(path) as archive:
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
    except ZIP_ERRORS as exc:
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
            weights that ``torch.load(weights_only=True)`` refuses; weights that do not fit;
            a manifest describing a model larger than its weights member or the size limit
            (checked before the model is built); weights holding NaN or Inf.
    """
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'cpu', 'cuda' or 'cuda:0'."
        ) from exc
    with OpenArchive(path) as archive:
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
        # sizes next (ARCH-120): the model the manifest describes is built without storage and
        # compared with what the members declare, before any member is read or model built
        trainable = manifest.get("trainable", {})
        skeleton = meta_model(model_config, trainable, where)
        check_declared_sizes(manifest, archive.members, model_config, skeleton, where)
        n = int(manifest["model_config"]["N"])
        probe = _load_probe(archive.read_checked("probe"), n, where)
        state = _load_state_dict(archive.read_checked("weights"), torch.device("cpu"), where)
    check_state_dict(skeleton, state, where)
    check_finite_weights(state, where)
    model = rebuild_model(model_config, trainable, probe, float(manifest["intensity_scale"]),
                          where)
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
    weights_scale = model_intensity_scale(model)
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
