"""Configs for scripts and notebooks: read JSON or YAML, apply overrides, validate.

YAML needs PyYAML (installed with ptychodus); without it a ``.yaml`` file is refused by name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: file suffixes read as YAML
YAML_SUFFIXES = (".yaml", ".yml")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping stored in a JSON (``.json``) or YAML (``.yaml``/``.yml``) file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist; check the path")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in YAML_SUFFIXES:
        try:
            import yaml
        except ImportError:  # pragma: no cover - PyYAML comes with ptychodus
            raise ValueError(
                f"{path}: reading YAML needs PyYAML (pip install pyyaml), or write the config "
                "as JSON"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML ({exc})") from exc
    elif path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    else:
        raise ValueError(
            f"{path}: config files must end in .json, .yaml or .yml, got {path.suffix!r}"
        )
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a mapping of fields, got {type(data).__name__}")
    return data


def apply_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with ``overrides`` applied; a key ``"model.gridsize"`` sets the nested
    field ``data["model"]["gridsize"]`` (intermediate mappings are created)."""
    out: dict[str, Any] = json.loads(json.dumps(data, default=str))
    for key, value in overrides.items():
        parts = str(key).split(".")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(
                    f"override {key!r}: {part!r} is {type(child).__name__}, not a section"
                )
            node = child
        node[parts[-1]] = str(value) if isinstance(value, Path) else value
    return out
