"""The generator registry: ``ModelConfig.architecture`` -> the network that turns diffraction
amplitudes into object patches (specs/MODEL.md MODEL-220..229).

Adding an architecture: one module here with a ``build(GeneratorSettings)`` function, one line
in :data:`REGISTRY`, and its name in ``config.spec.ARCHITECTURES`` (the config layer cannot
import torch; a conformance test keeps the two lists equal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ptychodus_pinn_torch.model.generators import cnn, fno, unet
from ptychodus_pinn_torch.model.generators.attention import CBAM, ECA, AttentionSwitches
from ptychodus_pinn_torch.model.generators.base import (
    OUTPUT_MODES,
    FnoSettings,
    GeneratorSettings,
    PatchGenerator,
    heads_to_complex,
)


@dataclass(frozen=True)
class Architecture:
    """One registry entry: its builder and the ``ModelConfig`` switches it honours.

    attention: honours cbam_encoder/cbam_bottleneck/cbam_decoder/eca_encoder/eca_decoder.
    output_mode_field: the ModelConfig field that selects its output mode (upstream names:
        ``cnn_output_mode`` for the CNNs, ``generator_output_mode`` for the others).
    uses_fno: reads fno_modes/fno_width/fno_blocks/fno_cnn_blocks.
    """

    build: Callable[[GeneratorSettings], PatchGenerator]
    attention: bool
    output_mode_field: str
    uses_fno: bool


REGISTRY: dict[str, Architecture] = {
    "cnn": Architecture(cnn.build, attention=True, output_mode_field="cnn_output_mode",
                        uses_fno=False),
    "unet": Architecture(unet.build, attention=True, output_mode_field="cnn_output_mode",
                         uses_fno=False),
    "fno": Architecture(fno.build, attention=False, output_mode_field="generator_output_mode",
                        uses_fno=True),
}

#: ModelConfig defaults of the fields the registry reads (upstream's; a field absent from a
#: config object counts as its default).
DEFAULTS: dict[str, Any] = {
    "architecture": "cnn",
    "cnn_output_mode": "amp_phase",
    "generator_output_mode": "real_imag",
    "fno_modes": 12,
    "fno_width": 32,
    "fno_blocks": 4,
    "fno_cnn_blocks": 2,
    "cbam_encoder": False,
    "cbam_bottleneck": False,
    "cbam_decoder": False,
    "eca_encoder": False,
    "eca_decoder": False,
}
ATTENTION_FIELDS: tuple[str, ...] = (
    "cbam_encoder", "cbam_bottleneck", "cbam_decoder", "eca_encoder", "eca_decoder",
)
FNO_FIELDS: tuple[str, ...] = ("fno_modes", "fno_width", "fno_blocks", "fno_cnn_blocks")
OUTPUT_MODE_FIELDS: tuple[str, ...] = ("cnn_output_mode", "generator_output_mode")


def _read(cfg: Any, name: str) -> Any:
    return getattr(cfg, name, DEFAULTS[name])


def _honoured_by(predicate: Callable[[Architecture], bool]) -> list[str]:
    return [name for name, arch in REGISTRY.items() if predicate(arch)]


def check_architecture(cfg: Any) -> Architecture:
    """The registry entry for ``cfg.architecture``, after refusing every switch it cannot honour.

    Raises ValueError naming the field and the accepted values: an unknown architecture; an
    attention switch on for a generator without attention; an fno_* field off its default for a
    generator that has no spectral blocks; the output-mode field of another family off its
    default; an output mode outside ``OUTPUT_MODES``; a non-integer or non-positive fno_* size.
    """
    name = _read(cfg, "architecture")
    if name not in REGISTRY:
        raise ValueError(
            f"ModelConfig.architecture = {name!r} is unknown; accepted values: {list(REGISTRY)}"
        )
    arch = REGISTRY[name]
    for field in ATTENTION_FIELDS:
        value = _read(cfg, field)
        if not isinstance(value, bool):
            raise ValueError(f"ModelConfig.{field} = {value!r} must be True or False")
        if value and not arch.attention:
            raise ValueError(
                f"ModelConfig.{field} = True: architecture {name!r} has no attention blocks; "
                f"set it False or use an architecture in {_honoured_by(lambda a: a.attention)}"
            )
    for field in FNO_FIELDS:
        value = _read(cfg, field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"ModelConfig.{field} = {value!r} must be a positive integer")
        if value != DEFAULTS[field] and not arch.uses_fno:
            raise ValueError(
                f"ModelConfig.{field} = {value!r} has no effect on architecture {name!r}; leave "
                f"it at {DEFAULTS[field]} or use an architecture in "
                f"{_honoured_by(lambda a: a.uses_fno)}"
            )
    for field in OUTPUT_MODE_FIELDS:
        value = _read(cfg, field)
        if value not in OUTPUT_MODES:
            raise ValueError(
                f"ModelConfig.{field} = {value!r} is unknown; accepted values: {list(OUTPUT_MODES)}"
            )
        if field != arch.output_mode_field and value != DEFAULTS[field]:
            raise ValueError(
                f"ModelConfig.{field} = {value!r} has no effect on architecture {name!r}; its "
                f"output mode is ModelConfig.{arch.output_mode_field} (accepted values: "
                f"{list(OUTPUT_MODES)})"
            )
    return arch


def generator_settings(cfg: Any, *, n: int, channels: int, out_channels: int,
                       n_filters_scale: int, amp_activation: str, pad_object: bool,
                       probe_big: bool) -> GeneratorSettings:
    """The :class:`GeneratorSettings` of a spec ``ModelConfig`` (after
    :func:`check_architecture`); the already-checked common fields are passed in."""
    arch = check_architecture(cfg)
    return GeneratorSettings(
        n=n,
        channels=channels,
        out_channels=out_channels,
        n_filters_scale=n_filters_scale,
        amp_activation=amp_activation,
        pad_object=pad_object,
        probe_big=probe_big,
        output_mode=_read(cfg, arch.output_mode_field),
        attention=AttentionSwitches(**{f: _read(cfg, f) for f in ATTENTION_FIELDS}),
        fno=FnoSettings(*(_read(cfg, f) for f in FNO_FIELDS)),
    )


def build_generator(architecture: str, settings: GeneratorSettings) -> PatchGenerator:
    """Build the generator ``architecture`` (a :data:`REGISTRY` key) from ``settings``."""
    if architecture not in REGISTRY:
        raise ValueError(
            f"ModelConfig.architecture = {architecture!r} is unknown; accepted values: "
            f"{list(REGISTRY)}"
        )
    return REGISTRY[architecture].build(settings)


__all__ = [
    "ATTENTION_FIELDS",
    "CBAM",
    "DEFAULTS",
    "ECA",
    "FNO_FIELDS",
    "OUTPUT_MODES",
    "REGISTRY",
    "Architecture",
    "AttentionSwitches",
    "FnoSettings",
    "GeneratorSettings",
    "PatchGenerator",
    "build_generator",
    "check_architecture",
    "generator_settings",
    "heads_to_complex",
]
