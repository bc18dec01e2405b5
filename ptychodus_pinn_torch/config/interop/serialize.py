"""JSON-safe dicts of the configuration dataclasses and back.

``spec_to_dict``/``spec_from_dict`` for the spec configs (nested ``model``; Paths as str) and
``torch_to_dict``/``torch_from_dict`` for the PyTorch dataclasses (tuples as lists). Reading
rejects unknown keys and missing required keys with a ValueError naming them, and validates the
result (spec: ``validate_*``, inference without file checks; PyTorch: on construction).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, asdict, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from ptychodus_pinn_torch.config import spec
from ptychodus_pinn_torch.config.interop import params as pt

T = TypeVar("T")

SPEC_KINDS: dict[str, type] = {
    "model": spec.ModelConfig,
    "training": spec.TrainingConfig,
    "inference": spec.InferenceConfig,
}
TORCH_KINDS: dict[str, type] = {
    "data": pt.DataConfig,
    "model": pt.ModelConfig,
    "training": pt.TrainingConfig,
    "inference": pt.InferenceConfig,
    "execution": pt.ExecutionConfig,
}


def _jsonable(value: Any, where: str) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, where) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError(f"{where}={type(value).__name__} cannot be written as JSON "
                     "(only None, bool, numbers, str, paths and lists of them)")


def spec_to_dict(cfg: spec.SpecConfig) -> dict[str, Any]:
    """A spec config as a JSON-safe dict (nested ``model`` dict, Paths as str)."""
    if not isinstance(cfg, spec.ModelConfig | spec.TrainingConfig | spec.InferenceConfig):
        raise ValueError(f"spec_to_dict expects a spec config, got {type(cfg).__name__}")
    return _jsonable(asdict(cfg), type(cfg).__name__)


def _kind_of(d: Mapping[str, Any]) -> type:
    if "model_path" in d:
        return spec.InferenceConfig
    if "model" in d:
        return spec.TrainingConfig
    return spec.ModelConfig


def _resolve_kind(kind: type | str | None, d: Mapping[str, Any], kinds: Mapping[str, type],
                  ) -> type:
    if kind is None:
        return _kind_of(d)
    if isinstance(kind, str):
        if kind not in kinds:
            raise ValueError(f"unknown config kind {kind!r}; accepted: {sorted(kinds)}")
        return kinds[kind]
    if kind not in kinds.values():
        raise ValueError(f"unknown config class {kind!r}")
    return kind


def _build(cls: type[T], d: Mapping[str, Any]) -> T:
    if not isinstance(d, Mapping):
        raise ValueError(f"{cls.__name__} must be given as a JSON object, got "
                         f"{type(d).__name__}")
    assert is_dataclass(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(str(k) for k in d if k not in names)
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} key(s): {unknown}; accepted: {sorted(names)}"
        )
    missing = sorted(
        f.name for f in fields(cls)
        if f.name not in d and f.default is MISSING and f.default_factory is MISSING
    )
    if missing:
        raise ValueError(f"{cls.__name__} is missing required key(s): {missing}")
    return cls(**dict(d))


def spec_from_dict(d: Mapping[str, Any], kind: type | str | None = None) -> spec.SpecConfig:
    """A spec config from a dict written by :func:`spec_to_dict` (or by hand).

    ``kind`` is 'model', 'training', 'inference' or the class; when None it is inferred
    (``model_path`` present -> inference, ``model`` present -> training, else model).
    Unknown or missing keys and invalid values raise ValueError naming them.
    """
    if not isinstance(d, Mapping):
        raise ValueError(f"a spec config must be a JSON object, got {type(d).__name__}")
    cls = _resolve_kind(kind, d, SPEC_KINDS)
    values = dict(d)
    if cls is spec.ModelConfig:
        cfg = _build(spec.ModelConfig, values)
        spec.validate_model_config(cfg)
        return cfg
    if "model" in values:
        nested = values["model"]
        values["model"] = nested if isinstance(nested, spec.ModelConfig) else _build(
            spec.ModelConfig, nested)
    result: spec.TrainingConfig | spec.InferenceConfig = _build(cls, values)
    if isinstance(result, spec.TrainingConfig):
        spec.validate_training_config(result)
    else:
        spec.validate_inference_config(result, check_files=False)
    return result


def torch_to_dict(cfg: Any) -> dict[str, Any]:
    """A PyTorch dataclass as a JSON-safe dict (tuples as lists, Paths as str).

    A ``ModelConfig.probe_mask`` array cannot be written (ValueError); None and bools can.
    """
    if not isinstance(cfg, tuple(TORCH_KINDS.values())) or not is_dataclass(cfg):
        raise ValueError(f"torch_to_dict expects a PyTorch config, got {type(cfg).__name__}")
    out = {f.name: getattr(cfg, f.name) for f in fields(cfg)}
    return _jsonable(out, type(cfg).__name__)


def torch_from_dict(d: Mapping[str, Any], kind: type | str) -> Any:
    """A PyTorch dataclass (``kind``: data, model, training, inference, execution or the
    class) from a dict; unknown keys, missing keys and invalid values raise ValueError."""
    cls = _resolve_kind(kind, d, TORCH_KINDS)
    return _build(cls, d)
