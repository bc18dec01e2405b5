"""``pinn-torch translate``: TF-style spec configs <-> the PyTorch dataclasses, as JSON.

``--to torch`` (default) reads one spec config (a ModelConfig, a TrainingConfig with its nested
``model``, or an InferenceConfig: keys are the spec field names) and prints
``{"data", "model", "inference", "overrides"}`` plus ``"training"`` for a TrainingConfig: the
PyTorch dataclasses and the spec fields they cannot carry. ``--to spec`` reads such a
document (``data``/``model`` needed; ``training``, ``inference``, ``overrides`` optional)
and prints the spec configs and the legacy params dict. Imports the config layer only (no torch).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

NAME = "translate"
HELP = "translate TensorFlow-style PtychoPINN configs to the PyTorch dataclasses and back"

TORCH_SECTIONS = ("data", "model", "training", "inference", "overrides")
OVERRIDE_SECTIONS = ("model", "training", "inference")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="JSON config file ('-' reads standard input)")
    parser.add_argument(
        "--to", dest="to", choices=("torch", "spec"), default="torch",
        help="torch: spec config -> PyTorch dataclasses (default); "
        "spec: PyTorch dataclasses -> spec configs and legacy params",
    )
    parser.add_argument("--out", type=Path, default=None, help="write here instead of stdout")


def _read_json(source: str) -> Any:
    if source == "-":
        text = sys.stdin.read()
        where = "standard input"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        text = path.read_text(encoding="utf-8")
        where = str(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where} is not valid JSON: {exc}") from None


def spec_document_to_torch(doc: Mapping[str, Any]) -> dict[str, Any]:
    """One spec config dict -> the JSON document of its PyTorch dataclasses and overrides."""
    from ptychodus_pinn_torch.config import spec
    from ptychodus_pinn_torch.config.interop.bridge import from_spec
    from ptychodus_pinn_torch.config.interop.serialize import spec_from_dict, torch_to_dict

    if not isinstance(doc, Mapping):
        raise ValueError("the spec config must be a JSON object of spec field names")
    cfg = spec_from_dict(doc)
    if isinstance(cfg, spec.TrainingConfig):
        configs = from_spec(cfg.model, training=cfg)
    elif isinstance(cfg, spec.InferenceConfig):
        configs = from_spec(cfg.model, inference=cfg)
    else:
        configs = from_spec(cfg)
    ov = configs.overrides
    out: dict[str, Any] = {
        "data": torch_to_dict(configs.data),
        "model": torch_to_dict(configs.model),
        "inference": torch_to_dict(configs.inference),
        "overrides": {
            "model": dict(ov.model),
            "training": dict(ov.training),
            "inference": dict(ov.inference),
        },
    }
    if ov.training:  # a training section only for a spec TrainingConfig
        out["training"] = torch_to_dict(configs.training)
    return json.loads(json.dumps(out, default=str))


def torch_document_to_spec(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document of PyTorch dataclasses -> spec configs and the legacy params dict.

    A training spec is made when ``training`` is present, an inference spec when
    ``overrides.inference`` is present (the PyTorch InferenceConfig carries none of its fields).
    """
    from ptychodus_pinn_torch.config.interop import bridge
    from ptychodus_pinn_torch.config.interop.legacy import legacy_params
    from ptychodus_pinn_torch.config.interop.serialize import spec_to_dict, torch_from_dict

    if not isinstance(doc, Mapping):
        raise ValueError("the PyTorch config document must be a JSON object")
    unknown = sorted(str(k) for k in doc if k not in TORCH_SECTIONS)
    if unknown:
        raise ValueError(f"unknown section(s) {unknown}; accepted: {list(TORCH_SECTIONS)}")
    overrides = doc.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise ValueError("'overrides' must be an object with model/training/inference dicts")
    bad = sorted(str(k) for k in overrides if k not in OVERRIDE_SECTIONS)
    if bad:
        raise ValueError(f"unknown overrides section(s) {bad}; accepted: "
                         f"{list(OVERRIDE_SECTIONS)}")
    data = torch_from_dict(doc.get("data") or {}, "data")
    pt_model = torch_from_dict(doc.get("model") or {}, "model")
    model = bridge.to_model_config(data, pt_model, overrides.get("model"))
    out: dict[str, Any] = {"model": spec_to_dict(model)}
    configs: list[Any] = []
    if "training" in doc:
        pt_training = torch_from_dict(doc.get("training") or {}, "training")
        training = bridge.to_training_config(model, data, pt_model, pt_training,
                                             overrides.get("training"))
        out["training"] = spec_to_dict(training)
        configs.append(training)
    if overrides.get("inference"):
        pt_inference = torch_from_dict(doc.get("inference") or {}, "inference")
        inference = bridge.to_inference_config(model, data, pt_inference,
                                               overrides.get("inference"))
        out["inference"] = spec_to_dict(inference)
        configs.append(inference)
    params = legacy_params(*(configs or [model]))
    out["legacy_params"] = json.loads(json.dumps(params, default=str))
    return out


def run(args: argparse.Namespace) -> int:
    doc = _read_json(args.input)
    result = spec_document_to_torch(doc) if args.to == "torch" else torch_document_to_spec(doc)
    text = json.dumps(result, indent=2, sort_keys=False) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    return 0
