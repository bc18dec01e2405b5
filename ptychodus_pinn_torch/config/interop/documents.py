"""Whole training configurations as documents (dicts read from JSON/YAML) and back (CFG-110).

Two layouts are read, told apart by their top-level keys:

- the TF-style spec layout (as ``fixtures/example_spec_config.json``): the spec
  ``TrainingConfig`` fields at the top level with the nested ``model``, plus an optional
  ``engine`` section holding the other :class:`~ptychodus_pinn_torch.config.engine.EngineConfig`
  fields (``learning_rate``, ``seed``, ``device``, ...);
- the PyTorch dataclass layout (as ``pinn-torch translate --to torch`` writes it): sections
  ``data``, ``model``, ``training`` and optionally ``execution``, ``inference``, ``overrides``;
  it has ``data`` or ``training`` and only these sections.

:func:`engine_to_document` writes the spec layout with its ``engine`` section, so the resolved
configuration of a run reads back unchanged. Unknown keys are ValueErrors naming them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from ptychodus_pinn_torch.config import spec
from ptychodus_pinn_torch.config.engine import EngineConfig
from ptychodus_pinn_torch.config.interop import bridge
from ptychodus_pinn_torch.config.interop.serialize import (
    _jsonable,
    spec_from_dict,
    spec_to_dict,
    torch_from_dict,
)

#: top-level sections of the PyTorch dataclass layout.
TORCH_SECTIONS: tuple[str, ...] = ("data", "model", "training", "inference", "execution",
                                   "overrides")
#: EngineConfig fields the ``engine`` section of the spec layout may hold.
ENGINE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(EngineConfig)
                                       if f.name != "training")


def layout_of(doc: Mapping[str, Any]) -> str:
    """'torch' for the PyTorch dataclass layout, 'spec' for the TF-style spec layout."""
    keys = set(doc)
    if keys and keys <= set(TORCH_SECTIONS) and ({"data", "training"} & keys):
        return "torch"
    return "spec"


def engine_from_document(doc: Mapping[str, Any], *,
                         init_model: str | None = None) -> EngineConfig:
    """The engine configuration of a document in either layout (validated). ``init_model``
    (a model to fine-tune, e.g. from ``--init-model``) replaces the spec layout's
    ``engine.init_model`` and is what the PyTorch layout's fine-tuning fields act with."""
    if not isinstance(doc, Mapping):
        raise ValueError(f"a configuration must be a mapping of fields, got {type(doc).__name__}")
    if layout_of(doc) == "torch":
        return _from_torch(doc, init_model)
    values = dict(doc)
    engine = values.pop("engine", None) or {}
    if not isinstance(engine, Mapping):
        raise ValueError("'engine' must be a mapping of EngineConfig fields")
    unknown = sorted(str(k) for k in engine if k not in ENGINE_FIELDS)
    if unknown:
        raise ValueError(f"unknown engine key(s): {unknown}; accepted: {list(ENGINE_FIELDS)}")
    if init_model is not None:
        engine = {**engine, "init_model": str(init_model)}
    if "model" not in values:
        raise ValueError("the spec layout needs a 'model' section (the ModelConfig fields, "
                         "at least N)")
    training = spec_from_dict(values, "training")
    assert isinstance(training, spec.TrainingConfig)
    return EngineConfig(training=training, **dict(engine))


#: PyTorch DataConfig / ModelConfig fields that set a spec ModelConfig field (-> its name).
_TORCH_MODEL_KEYS: Mapping[str, Mapping[str, str]] = {
    "data": {"N": "N", "grid_size": "gridsize", "probe_scale": "probe_scale"},
    "model": {"mode": "model_type", **{n: n for n in (
        "n_filters_scale", "amp_activation", "object_big", "probe_big", "probe_mask",
        "pad_object", "gaussian_smoothing_sigma", *bridge.GENERATOR_FIELDS)}},
}


def model_fields_given(doc: Mapping[str, Any]) -> frozenset[str]:
    """The spec ModelConfig fields a document sets explicitly (the others are defaults): the
    keys of the spec layout's ``model``; in the PyTorch layout the ``data``/``model`` keys that
    translate to one, plus ``overrides.model``."""
    if not isinstance(doc, Mapping):
        return frozenset()
    if layout_of(doc) != "torch":
        model = doc.get("model")
        return frozenset(str(k) for k in model) if isinstance(model, Mapping) else frozenset()
    found: set[str] = set()
    for section, names in _TORCH_MODEL_KEYS.items():
        part = doc.get(section)
        if isinstance(part, Mapping):
            found |= {names[k] for k in part if k in names}
    overrides = doc.get("overrides")
    if isinstance(overrides, Mapping) and isinstance(overrides.get("model"), Mapping):
        found |= {str(k) for k in overrides["model"]}
    return frozenset(found)


def _from_torch(doc: Mapping[str, Any], init_model: str | None) -> EngineConfig:
    overrides = doc.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise ValueError("'overrides' must be a mapping with model/training/inference sections")
    bad = sorted(str(k) for k in overrides if k not in ("model", "training", "inference"))
    if bad:
        raise ValueError(f"unknown overrides section(s) {bad}; accepted: model, training, "
                         "inference")
    data = torch_from_dict(doc.get("data") or {}, "data")
    pt_model = torch_from_dict(doc.get("model") or {}, "model")
    pt_training = torch_from_dict(doc.get("training") or {}, "training")
    execution = (None if doc.get("execution") is None
                 else torch_from_dict(doc["execution"], "execution"))
    if doc.get("inference"):  # checked, not used by a training
        torch_from_dict(doc["inference"], "inference")
    model = bridge.to_model_config(data, pt_model, overrides.get("model"))
    return bridge.to_engine_config(model, data, pt_model, pt_training, execution,
                                   overrides.get("training"), init_model=init_model)


def engine_to_document(config: EngineConfig) -> dict[str, Any]:
    """The spec-layout document of ``config`` (JSON-safe; :func:`engine_from_document` reads
    it back to an equal configuration)."""
    doc = spec_to_dict(config.training)
    doc["engine"] = _jsonable({name: getattr(config, name) for name in ENGINE_FIELDS},
                              "EngineConfig")
    return doc


__all__ = ["ENGINE_FIELDS", "TORCH_SECTIONS", "engine_from_document", "engine_to_document",
           "layout_of", "model_fields_given"]
