"""Writing a model archive, atomically."""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ptychodus_pinn_torch.data.atomic_file import atomic_write
from ptychodus_pinn_torch.engine.archive.format import (
    INTENSITY_SCALE_RTOL,
    MANIFEST_MEMBER,
    MAX_MEMBER_BYTES,
    PROBE_MEMBER,
    WEIGHTS_MEMBER,
    ArchiveError,
    ModelBundle,
    model_intensity_scale,
    target_path,
    unwrap_model,
)
from ptychodus_pinn_torch.engine.archive.manifest import build_manifest


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
    target = target_path(path)
    model = unwrap_model(bundle.model)
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
    model_scale = model_intensity_scale(model)
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
