"""Sizes an archive declares, checked before anything is built or inflated (specs/ARCH.md, ARCH-120
and ARCH-121).

The manifest is not covered by a digest, so its ``model_config`` (``N``, ``n_filters_scale``,
``gridsize``...) may promise a model far larger than the weights it ships: building that model
first would allocate it (a 2 MB archive claiming ``n_filters_scale=100000`` asks for hundreds of
terabytes). Here the model is built on torch's ``meta`` device (shapes only, no storage), its
state-dict size is compared with the weights member limit and the probe member's declared size
with the probe shape before anything is read; the stored weights are then compared, key by key,
with that storage-less model before the real one is built, so a manifest that does not belong to
its weights never allocates the model it describes. Stored weights must also be finite (ARCH-122).
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ptychodus_pinn_torch.engine.archive.format import (
    MAX_MEMBER_BYTES,
    PROBE_MEMBER,
    WEIGHTS_MEMBER,
    ArchiveError,
)
from ptychodus_pinn_torch.model import build_model

#: Size of a ``.npy`` header that ``np.save`` writes (bytes; version 1, padded to 64, up to 3).
NPY_HEADER_MAX_BYTES = 256


def rebuild_model(model_config: Any, trainable: Mapping[str, bool], probe: np.ndarray,
                  intensity_scale: float, where: str) -> nn.Module:
    """``model.build_model`` of a manifest's configuration (the probe already normalized); a
    configuration it refuses becomes an ArchiveError naming the archive."""
    try:
        return build_model(
            model_config,
            probe=probe,
            intensity_scale=intensity_scale,
            probe_trainable=bool(trainable.get("probe", False)),
            intensity_scale_trainable=bool(trainable.get("intensity_scale", True)),
            probe_normalized=True,
        )
    except ValueError as exc:
        raise ArchiveError(
            f"{where}: the model cannot be rebuilt from the manifest: {exc}"
        ) from exc


def meta_model(model_config: Any, trainable: Mapping[str, bool], where: str) -> nn.Module:
    """The model that ``model_config`` describes, built on the ``meta`` device: every parameter
    and buffer has its real shape and dtype but no storage, so a hostile configuration costs
    nothing (the probe is a zero ``(N, N)`` complex64 placeholder)."""
    n = int(model_config.N)
    with torch.device("meta"):
        return rebuild_model(model_config, trainable, np.zeros((n, n), np.complex64), 1.0, where)


def state_bytes(model: nn.Module) -> int:
    """Bytes of the tensors in ``model.state_dict()`` (numel x element size, summed)."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def _describe(model_config: Any) -> str:
    fields = [k for k in ("N", "gridsize", "n_filters_scale", "architecture")
              if hasattr(model_config, k)]
    return ", ".join(f"{k}={getattr(model_config, k)!r}" for k in fields)


def check_declared_sizes(
    manifest: Mapping[str, Any],
    members: Mapping[str, zipfile.ZipInfo],
    model_config: Any,
    skeleton: nn.Module,
    where: str,
) -> None:
    """Refuse an archive whose manifest promises more than its members can hold.

    Args:
        manifest: the validated manifest.
        members: name -> ZipInfo of the checked members (``file_size`` = declared bytes).
        model_config: the spec ModelConfig parsed from the manifest.
        skeleton: ``meta_model(model_config, ...)``.
        where: the archive, for messages.

    Raises:
        ArchiveError: the model described needs more bytes than the weights member limit
            (``MAX_MEMBER_BYTES``); the probe member is not the size of an ``(N, N)``
            complex64 ``.npy``.
    """
    need = state_bytes(skeleton)
    limit = MAX_MEMBER_BYTES[WEIGHTS_MEMBER]
    described = _describe(model_config)
    if need > limit:
        raise ArchiveError(
            f"{where}: manifest.json model_config ({described}) describes a model of "
            f"{need / 2**20:.0f} MiB of weights, above the {limit / 2**20:.0f} MiB limit; refused "
            f"before building it (the manifest is corrupt or hostile)."
        )
    n = int(model_config.N)
    probe = members.get(PROBE_MEMBER)
    probe_bytes = n * n * np.dtype(np.complex64).itemsize
    top = probe_bytes + NPY_HEADER_MAX_BYTES
    if probe is not None and not probe_bytes <= probe.file_size <= top:
        raise ArchiveError(
            f"{where}: {PROBE_MEMBER!r} declares {probe.file_size} bytes, but an ({n}, {n}) "
            f"complex64 probe for N={n} takes {probe_bytes} plus a header; the manifest does "
            f"not belong to this probe (corrupt or altered)."
        )


def check_finite_weights(state: Mapping[str, torch.Tensor], where: str) -> None:
    """Refuse stored weights holding NaN or Inf (a model that can only produce NaN objects).

    Raises:
        ArchiveError: naming the first non-finite tensors and how many values are bad.
    """
    bad: list[str] = []
    for key, tensor in state.items():
        if tensor.is_floating_point() or tensor.is_complex():
            count = int((~torch.isfinite(tensor)).sum())
            if count:
                bad.append(f"{key} ({count} of {tensor.numel()})")
    if bad:
        raise ArchiveError(
            f"{where}: the stored weights hold NaN or Inf values in {len(bad)} tensors "
            f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); the model is unusable "
            f"(training diverged or the file was altered): retrain, or load an earlier archive."
        )
