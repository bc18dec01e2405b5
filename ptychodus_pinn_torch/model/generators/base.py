"""What every generator shares: its settings, its two output heads and their complex object.

Contract (specs/MODEL.md MODEL-220): a generator maps ``x`` ``(B, C, N, N)`` float amplitudes
(already divided by the intensity scale) to two real heads ``(B, nf, N, N)`` each, with
``nf = C`` when ``object_big`` else 1. ``output_mode`` says what the heads are:

- ``"amp_phase"``: amplitude and phase (radians); object = ``amp * exp(i * phase)``;
- ``"real_imag"``: real and imaginary parts; object = ``real + i * imag``.

The heads may be bfloat16 under autocast; :func:`heads_to_complex` always forms the complex64
object in float32. ``PatchGenerator.patches(x)`` gives that object directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ptychodus_pinn_torch.model.generators.attention import AttentionSwitches

#: accepted output modes.
OUTPUT_MODES: tuple[str, ...] = ("amp_phase", "real_imag")


@dataclass(frozen=True)
class FnoSettings:
    """Fourier-neural-operator sizes (upstream defaults): ``modes`` Fourier modes kept per axis
    and sign, ``width`` hidden channels, ``blocks`` spectral blocks, ``cnn_blocks`` refiner
    blocks."""

    modes: int = 12
    width: int = 32
    blocks: int = 4
    cnn_blocks: int = 2


@dataclass(frozen=True)
class GeneratorSettings:
    """Everything a generator builder reads.

    n: patch side N (pixels); channels: C = gridsize**2 input channels; out_channels: nf;
    n_filters_scale: width multiplier of the convolutional generators; amp_activation: the
    amplitude activation (amp_phase mode); pad_object / probe_big: the support of the object
    patch (centre N/2 square, plus the border ring when probe_big); output_mode: see module doc.
    """

    n: int
    channels: int
    out_channels: int
    n_filters_scale: int = 2
    amp_activation: str = "sigmoid"
    pad_object: bool = True
    probe_big: bool = True
    output_mode: str = "amp_phase"
    attention: AttentionSwitches = field(default_factory=AttentionSwitches)
    fno: FnoSettings = field(default_factory=FnoSettings)


def heads_to_complex(first: torch.Tensor, second: torch.Tensor, output_mode: str) -> torch.Tensor:
    """Two real heads ``(B, nf, N, N)`` -> complex64 object patches ``(B, nf, N, N)``."""
    with torch.autocast(device_type=first.device.type, enabled=False):
        a = first.float().contiguous()
        b = second.float().contiguous()
        if output_mode == "real_imag":
            return torch.complex(a, b)
        return torch.complex(a * torch.cos(b), a * torch.sin(b))


class PatchGenerator(nn.Module):
    """Base of every generator: ``forward(x) -> (first, second)`` heads, ``output_mode``."""

    output_mode: str = "amp_phase"

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, C, N, N) float -> complex64 object patches (B, nf, N, N)."""
        first, second = self(x)
        return heads_to_complex(first, second, self.output_mode)


class ShiftedTanh(nn.Module):
    """``scale * tanh(x) + shift``: the bounded real/imaginary heads of upstream's CNN
    ``real_imag`` mode (real: shift 0.2, scale 1 -> (-0.8, 1.2); imag: scale 1.2)."""

    def __init__(self, scale: float = 1.0, shift: float = 0.0) -> None:
        super().__init__()
        self.scale = scale
        self.shift = shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.tanh(x) + self.shift

