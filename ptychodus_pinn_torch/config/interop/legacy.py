"""The legacy flat ``params.cfg``-style dictionary (reference §6.2).

``dataclass_to_legacy_dict`` flattens a spec config (the nested ``model`` merged into the top
level) and renames the fields of :data:`KEY_MAPPINGS`; ``update_legacy_dict`` writes that into a
caller-owned dict, never overwriting with None. This module holds no mutable global state:
:data:`KEY_MAPPINGS` is a read-only mapping and there is no module-level ``cfg``.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

#: dataclass field -> legacy params key (read-only).
KEY_MAPPINGS: Mapping[str, str] = MappingProxyType(
    {
        "object_big": "object.big",
        "probe_big": "probe.big",
        "probe_mask": "probe.mask",
        "probe_trainable": "probe.trainable",
        "intensity_scale_trainable": "intensity_scale.trainable",
        "positions_provided": "positions.provided",
        "output_dir": "output_prefix",
        "train_data_file": "train_data_file_path",
        "test_data_file": "test_data_file_path",
    }
)


def dataclass_to_legacy_dict(obj: Any) -> dict[str, Any]:
    """Flatten a spec config into legacy keys.

    ``asdict(obj)``; a nested ``model`` dict is merged into the top level; keys in
    :data:`KEY_MAPPINGS` are renamed and their Path values become ``str``; other keys keep their
    field names and values (a ``model_path`` stays a Path here, as upstream). None values are
    kept (``update_legacy_dict`` drops them).
    """
    if not is_dataclass(obj) or isinstance(obj, type):
        raise ValueError(
            f"dataclass_to_legacy_dict expects a config dataclass instance, got {type(obj)!r}"
        )
    flat = asdict(obj)
    nested = flat.pop("model", None)
    if isinstance(nested, dict):
        flat.update(nested)
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if key in KEY_MAPPINGS:
            out[KEY_MAPPINGS[key]] = str(value) if isinstance(value, Path) else value
        else:
            out[key] = value
    return out


def update_legacy_dict(cfg: MutableMapping[str, Any], obj: Any) -> None:
    """Write ``obj``'s legacy keys into ``cfg`` (in place).

    Keys whose value is None are skipped (None never overwrites); every remaining Path value
    becomes ``str`` (``Path()`` becomes ``'.'``), as upstream from Nov-2025 on.
    """
    for key, value in dataclass_to_legacy_dict(obj).items():
        if value is None:
            continue
        cfg[key] = str(value) if isinstance(value, Path) else value


def legacy_params(*configs: Any) -> dict[str, Any]:
    """A fresh legacy dict built by :func:`update_legacy_dict` over ``configs`` in order
    (e.g. training then inference, as upstream's workflows do)."""
    cfg: dict[str, Any] = {}
    for config in configs:
        update_legacy_dict(cfg, config)
    return cfg
