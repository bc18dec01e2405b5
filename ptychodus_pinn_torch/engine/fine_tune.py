"""Training that starts from a trained model (fine-tuning, ENG-185).

:func:`model_config_of` reads the model settings of a ``wts.h5.zip`` from its manifest (no
weights read), so a fine-tuning run builds the same network; :func:`load_initial_weights` copies
the archive's network weights and intensity scale into the freshly built model through the safe
archive loader. The probe is not copied: the new scan's own probe illuminates it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ptychodus_pinn_torch.config.spec import ModelConfig

__all__ = ["PROBE_KEY", "load_initial_weights", "model_config_of"]

#: the state-dict entry of the probe; never copied from the initial model.
PROBE_KEY = "probe_ri"


def model_config_of(path: str | os.PathLike[str]) -> ModelConfig:
    """The spec ``ModelConfig`` stored in the archive at ``path`` (manifest only)."""
    from ptychodus_pinn_torch.config.interop.serialize import spec_from_dict
    from ptychodus_pinn_torch.engine.archive import ArchiveError, peek_archive

    manifest = peek_archive(path)
    try:
        config = spec_from_dict(manifest["model_config"], "model")
    except (TypeError, ValueError, KeyError) as exc:
        raise ArchiveError(f"{path}: model config unreadable ({exc})") from exc
    assert isinstance(config, ModelConfig)
    return config


def load_initial_weights(model: torch.nn.Module, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Copy every weight of the archive at ``path`` except the probe into ``model``.

    The archive is loaded by ``engine.archive.load_archive`` (no unpickling). Its weights must
    fit ``model`` exactly (same keys, shapes and dtypes), else ValueError naming the setting to
    match. Returns ``{"path", "intensity_scale", "epochs"}`` of the initial model.
    """
    from ptychodus_pinn_torch.engine.archive import load_archive

    bundle = load_archive(path)
    source = bundle.model.state_dict()
    target = model.state_dict()
    mismatched = sorted(
        key for key in set(source) | set(target)
        if key != PROBE_KEY and (key not in source or key not in target
                                 or tuple(source[key].shape) != tuple(target[key].shape))
    )
    if mismatched:
        stored = bundle.model_config
        raise ValueError(
            f"--init-model {path}: its network (N={stored.N}, gridsize={stored.gridsize}, "
            f"n_filters_scale={stored.n_filters_scale}) does not fit the one being trained "
            f"(weights {mismatched[:3]} differ); train with the initial model's settings"
        )
    with torch.no_grad():
        for key, value in source.items():
            if key != PROBE_KEY:
                target[key].copy_(value.to(target[key].dtype))
    return {"path": str(Path(path)), "intensity_scale": float(bundle.intensity_scale),
            "epochs": len(bundle.history)}
