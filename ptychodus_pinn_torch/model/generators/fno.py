"""``fno``: a cascaded Fourier-neural-operator generator (constant resolution N x N).

Structure (upstream ``ptycho_torch/generators/fno.py`` facts, reference "PyTorch backend extras"
§3; w = fno_width, m = fno_modes)::

    x (B, C, N, N)
    lifter:    conv3x3 C->w, GELU, conv3x3 w->w                 (B, w, N, N)
    blocks:    fno_blocks x  y = x + GELU(Spectral(x) + conv3x3(x))
    mix:       conv1x1 w->w
    refiner:   fno_cnn_blocks x (conv3x3 w->w, GELU)            (not residual, as upstream)
    head:      conv1x1 w->2*nf -> (first, second) = (out[:, :nf], out[:, nf:])

``real_imag`` (upstream's default for this generator) uses the head as is; ``amp_phase`` puts
the amplitude activation on the first half and ``pi * tanh`` on the second. With
``pad_object`` and not ``probe_big`` both heads are zeroed outside the centre N/2 square (the
support the ``cnn`` decoder-last gives); otherwise the whole N x N patch is free.

Spectral convolution: ``rfft2``, keep the m lowest row frequencies of both signs and the m
lowest column frequencies, mix channels with complex weights ``(w, w, m, m)`` (one set per row
sign, initialised ``randn / sqrt(w)`` as upstream), ``irfft2``. Upstream's fallback keeps only
the non-negative rows; keeping both signs is a deliberate difference (specs/MODEL.md MODEL-224).
The FFTs run in float32 with autocast off.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ptychodus_pinn_torch.model.generators.base import GeneratorSettings, PatchGenerator
from ptychodus_pinn_torch.model.generators.cnn import PiTanh, make_activation
from ptychodus_pinn_torch.physics import centre_mask


class SpectralConv2d(nn.Module):
    """``(B, w, H, W) -> (B, w, H, W)``: channel mixing on the lowest ``modes`` Fourier modes."""

    def __init__(self, width: int, modes: int) -> None:
        super().__init__()
        self.modes = modes
        scale = 1.0 / math.sqrt(width)
        # (row sign, in, out, m, m, [re, im]): real storage so every optimizer and DDP handle it
        self.weight = nn.Parameter(scale * torch.randn(2, width, width, modes, modes, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.modes
        h, w = x.shape[-2], x.shape[-1]
        with torch.autocast(device_type=x.device.type, enabled=False):
            ft = torch.fft.rfft2(x.float())  # (B, w, H, W/2+1) complex64
            weight = torch.view_as_complex(self.weight)  # (2, in, out, m, m)
            out = torch.zeros_like(ft)
            out[:, :, :m, :m] = torch.einsum("bixy,ioxy->boxy", ft[:, :, :m, :m], weight[0])
            out[:, :, -m:, :m] = torch.einsum("bixy,ioxy->boxy", ft[:, :, -m:, :m], weight[1])
            return torch.fft.irfft2(out, s=(h, w)).to(x.dtype)


class FnoBlock(nn.Module):
    """``y = x + GELU(Spectral(x) + conv3x3(x))``, ``(B, w, H, W)`` in and out."""

    def __init__(self, width: int, modes: int) -> None:
        super().__init__()
        self.spectral = SpectralConv2d(width, modes)
        self.local = nn.Conv2d(width, width, kernel_size=3, padding=1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.spectral(x) + self.local(x))


class Fno(PatchGenerator):
    """``fno``: ``forward(x (B, C, N, N)) -> (first, second)`` heads ``(B, nf, N, N)``."""

    def __init__(self, settings: GeneratorSettings) -> None:
        super().__init__()
        s, f = settings, settings.fno
        w = f.width
        self.output_mode = s.output_mode
        self.out_channels = s.out_channels
        self.lifter = nn.Sequential(
            nn.Conv2d(s.channels, w, kernel_size=3, padding=1),
            nn.GELU(),
            nn.Conv2d(w, w, kernel_size=3, padding=1),
        )
        self.blocks = nn.Sequential(*(FnoBlock(w, f.modes) for _ in range(f.blocks)))
        self.mix = nn.Conv2d(w, w, kernel_size=1)
        refiner: list[nn.Module] = []
        for _ in range(f.cnn_blocks):
            refiner += [nn.Conv2d(w, w, kernel_size=3, padding=1), nn.GELU()]
        self.refiner = nn.Sequential(*refiner)
        self.head = nn.Conv2d(w, 2 * s.out_channels, kernel_size=1)
        if s.output_mode == "amp_phase":
            self.first_act: nn.Module = make_activation(s.amp_activation)
            self.second_act: nn.Module = PiTanh()
        else:
            self.first_act = nn.Identity()
            self.second_act = nn.Identity()
        self.centre_only = s.pad_object and not s.probe_big
        if self.centre_only:
            mask = centre_mask(s.n).reshape(1, 1, s.n, s.n).float()
            self.register_buffer("support", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: (B, C, N, N) float -> two heads, each (B, nf, N, N)."""
        h = self.lifter(x)  # (B, w, N, N)
        h = self.refiner(self.mix(self.blocks(h)))  # (B, w, N, N)
        out = self.head(h)  # (B, 2 nf, N, N)
        first = self.first_act(out[:, : self.out_channels])
        second = self.second_act(out[:, self.out_channels :])
        if self.centre_only:
            support = self.support.to(first.dtype)
            first, second = first * support, second * support
        return first, second


def build(settings: GeneratorSettings) -> Fno:
    """Registry builder of ``fno``; ``fno_modes`` above N/2 is a ValueError."""
    if settings.fno.modes > settings.n // 2:
        raise ValueError(
            f"ModelConfig.fno_modes = {settings.fno.modes} exceeds N/2 = {settings.n // 2}: the "
            f"spectral blocks keep fno_modes row frequencies of each sign; use 1..{settings.n // 2}"
        )
    return Fno(settings)
