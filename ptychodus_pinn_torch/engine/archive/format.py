"""The model archive format: names, limits, errors and the ``ModelBundle`` it stores.

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

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ptychodus_pinn_torch.config import spec
from ptychodus_pinn_torch.config.choices import ARCHIVE_NAME

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

#: One mebibyte (bytes).
MiB = 1 << 20
#: Largest uncompressed size accepted per member (bytes).
MAX_MEMBER_BYTES: dict[str, int] = {
    MANIFEST_MEMBER: 16 * MiB,
    PROBE_MEMBER: 64 * MiB,
    WEIGHTS_MEMBER: 2048 * MiB,
}
#: Relative tolerance between the manifest's intensity_scale and exp(log_scale) of the weights.
INTENSITY_SCALE_RTOL = 1e-5


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


def target_path(path: str | os.PathLike[str]) -> Path:
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
# the model inside a bundle


def unwrap_model(model: nn.Module) -> nn.Module:
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


def model_intensity_scale(model: nn.Module) -> float | None:
    """``exp(model.log_scale)`` as a float (the scalar log_scale parameter is float32), or
    None for a module without ``log_scale``."""
    log_scale = getattr(model, "log_scale", None)
    if isinstance(log_scale, torch.Tensor):
        return float(torch.exp(log_scale.detach().double().cpu()).reshape(-1)[0])
    return None
