"""The archive's ``manifest.json``: built from a ModelBundle on saving, validated on reading."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ptychodus_pinn_torch import __version__
from ptychodus_pinn_torch.config.interop.legacy import dataclass_to_legacy_dict
from ptychodus_pinn_torch.config.interop.serialize import spec_from_dict, spec_to_dict
from ptychodus_pinn_torch.engine.archive.format import (
    BACKEND,
    FORMAT_NAME,
    FORMAT_VERSION,
    MODEL_NAMES,
    PROBE_MEMBER,
    SUPPORTED_FORMAT_VERSIONS,
    WEIGHTS_MEMBER,
    ArchiveError,
    ForeignArchiveError,
    ModelBundle,
    unwrap_model,
)

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


# --------------------------------------------------------------------------------------------
# JSON helpers


def json_safe(value: Any, where: str) -> Any:
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
        return json_safe(value.item(), where)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe(dataclasses.asdict(value), where)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ArchiveError(
                    f"{where} has the non-string key {k!r}; archive metadata keys must be str."
                )
            out[k] = json_safe(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, list | tuple):
        return [json_safe(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise ArchiveError(
        f"{where} holds {type(value).__name__} {value!r:.60}, which JSON cannot store; "
        f"give it numbers, strings, booleans, lists or dicts."
    )


def _config_to_dict(cfg: Any, kind: str, where: str) -> dict[str, Any]:
    """A spec config (kind 'model' or 'training') as a JSON-safe dict via
    ``config.serialize.spec_to_dict``; refused unless ``spec_from_dict`` gives it back equal
    (so that every archive written can be read)."""
    try:
        data = json_safe(spec_to_dict(cfg), where)
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
    derived = json_safe(dataclass_to_legacy_dict(source), "legacy params")
    merged = dict(json_safe(bundle.legacy_params or {}, "bundle.legacy_params"))
    merged.update(derived)
    merged["intensity_scale"] = intensity_scale
    merged["backend"] = BACKEND  # the weights are PyTorch's whatever the config defaulted to
    merged["_version"] = f"{FORMAT_VERSION}-pytorch"
    return merged


def sha256_hex(data: bytes) -> str:
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
        json_safe(h, f"bundle.history[{i}]") for i, h in enumerate(bundle.history or [])
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
            "sha256": sha256_hex(weights),
            "size": len(weights),
            "tensors": n_tensors,
        },
        "probe": {
            "member": PROBE_MEMBER,
            "format": "npy",
            "dtype": "complex64",
            "shape": [bundle.N, bundle.N],
            "sha256": sha256_hex(probe_npy),
            "size": len(probe_npy),
        },
        "history": history,
        "extra": json_safe(bundle.extra or {}, "bundle.extra"),
    }


def _trainable_flags(bundle: ModelBundle) -> dict[str, bool]:
    """Whether the model's probe and log_scale parameters require gradients (rebuilt alike)."""
    model = unwrap_model(bundle.model)
    log_scale = getattr(model, "log_scale", None)
    scale_trainable = bool(isinstance(log_scale, torch.Tensor) and log_scale.requires_grad)
    probe_trainable = any(
        p.requires_grad for name, p in model.named_parameters() if "probe" in name.split(".")[-1]
    )
    return {"probe": probe_trainable, "intensity_scale": scale_trainable}


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


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
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
