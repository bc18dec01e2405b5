"""``pinn-torch reconstruct --config FILE`` with a spec ``InferenceConfig`` (CFG-260).

A reconstruct settings file is either the command's own options by name (CFG-111) or a TF-style
spec ``InferenceConfig``: the bare section (``{"model": {...}, "model_path": ...,
"test_data_file": ..., ...}``, as ``spec_to_dict`` writes it) or the ``inference`` section of a
document ``pinn-torch translate --to spec`` writes (whose ``model``, ``training`` and
``legacy_params`` are then not read). Each spec field acts or is refused by name, as
``config.fields`` records:

==================  ==========================================================================
model_path          ``--model`` (the archive, or the folder holding ``wts.h5.zip``)
test_data_file      ``--data``
output_dir          ``--out OUTPUT_DIR/reconstruction.npz`` (``engine.run.RECONSTRUCTION_NAME``)
n_subsample         ``--n-subsample``: reconstruct from that many randomly drawn positions
subsample_seed      ``--subsample-seed``: the seed of that draw (acts only with n_subsample)
neighbor_count      ``--neighbor-count``: K of the groups at gridsize > 1
model               each field given must equal the archive's (N, gridsize, ...): else one
                    line naming the field; fields left out are the archive's
n_groups, n_images, debug, enable_oversampling, neighbor_pool_size: refused by name
backend             recorded (this package is the PyTorch backend whatever it says)
==================  ==========================================================================

Options given on the command line win over the file, as for the options layout.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ptychodus_pinn_torch.cli.config_file import given

#: spec InferenceConfig field -> the reconstruct option it sets (output_dir is handled apart)
FIELD_TO_OPTION: dict[str, str] = {
    "model_path": "model", "test_data_file": "data", "n_subsample": "n_subsample",
    "subsample_seed": "subsample_seed", "neighbor_count": "neighbor_count",
}
#: top-level keys of ``pinn-torch translate --to spec`` output besides ``inference``
TRANSLATE_KEYS: tuple[str, ...] = ("model", "training", "inference", "legacy_params")


def inference_section(doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The spec InferenceConfig mapping of a reconstruct ``--config`` document, or None when
    the document holds the command's options by name (``model`` is then a path string)."""
    section = doc.get("inference")
    if isinstance(section, Mapping):
        extra = sorted(str(k) for k in doc if k not in TRANSLATE_KEYS)
        if extra:
            raise ValueError(f"unknown key(s) {extra} beside the 'inference' section; accepted: "
                             f"{list(TRANSLATE_KEYS)} (pinn-torch translate --to spec output)")
        return section
    if isinstance(doc.get("model"), Mapping):
        return doc
    return None


def apply_inference_config(args: argparse.Namespace, section: Mapping[str, Any],
                           path: Path) -> dict[str, Any]:
    """Set ``args`` from the spec InferenceConfig ``section`` of file ``path``, except the
    options given on the command line. Returns the ``model`` fields the file gave (to be
    checked against the archive by :func:`check_model_fields`).

    Raises ValueError (one line, naming the file and the field) for an unknown key, a missing
    ``model_path``/``test_data_file`` (when no flag gives it), a refused field set, or a value
    the spec refuses.
    """
    from ptychodus_pinn_torch.config import spec
    from ptychodus_pinn_torch.config.fields import check_supported
    from ptychodus_pinn_torch.config.interop.serialize import spec_from_dict
    from ptychodus_pinn_torch.engine.run import RECONSTRUCTION_NAME

    flags = given(args)
    values = dict(section)
    model_fields = values.get("model")
    if not isinstance(model_fields, Mapping):
        raise ValueError(f"--config {path}: the InferenceConfig's 'model' must be a mapping of "
                         "ModelConfig fields (e.g. {\"N\": 64, \"gridsize\": 1})")
    for field, option in (("model_path", "model"), ("test_data_file", "data")):
        if field not in values and getattr(args, option) is not None:
            values[field] = str(getattr(args, option))  # the flag stands in for the field
    try:
        config = spec_from_dict(values, "inference")
        assert isinstance(config, spec.InferenceConfig)
        check_supported(config, where="pinn-torch reconstruct")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"--config {path}: {exc}") from None
    for field, option in FIELD_TO_OPTION.items():
        if option in flags:
            continue
        if field in ("model_path", "test_data_file"):
            value: Any = getattr(config, field)
            setattr(args, option, str(value) if option == "model" else Path(value))
        elif field in section:  # sampling fields act only where the file sets them
            setattr(args, option, getattr(config, field))
    if "out" not in flags and "output_dir" in section:
        args.out = Path(config.output_dir) / RECONSTRUCTION_NAME
    return dict(model_fields)


def check_model_fields(wanted: Mapping[str, Any], trained: Any, path: Path, model: str) -> None:
    """Each ModelConfig field the file gave must equal the archive's (``trained``, a spec
    ModelConfig); else ValueError naming the field, both values and the fix."""
    from ptychodus_pinn_torch.config.interop.serialize import spec_from_dict

    full = spec_from_dict({**_as_dict(trained), **dict(wanted)}, "model")
    for name in wanted:
        ours, theirs = getattr(full, name), getattr(trained, name)
        if ours != theirs:
            raise ValueError(
                f"--config {path}: InferenceConfig.model.{name}={ours!r} but the model in "
                f"{model} was trained with {name}={theirs!r}; set {theirs!r} or drop the field"
            )


def _as_dict(model: Any) -> dict[str, Any]:
    from ptychodus_pinn_torch.config.interop.serialize import spec_to_dict

    return spec_to_dict(model)


__all__ = ["FIELD_TO_OPTION", "apply_inference_config", "check_model_fields",
           "inference_section"]
