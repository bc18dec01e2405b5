"""Attention blocks the convolutional generators can insert: CBAM and ECA.

Facts from upstream ``ptycho_torch/model_attention.py`` (reference "PyTorch backend extras" §4):

- CBAM (reduction r = 16, spatial kernel k = 7): a channel gate
  ``sigmoid(MLP(avgpool x) + MLP(maxpool x))`` with one MLP ``C -> C/r -> C`` shared by both
  pools, then a spatial gate ``sigmoid(conv_kxk([max_c x, mean_c x]))``; no batch norm.
- ECA: ``sigmoid(conv1d_k3(avgpool x))`` across channels, multiplied onto ``x``.

Both map ``(B, C, H, W) -> (B, C, H, W)`` in the input dtype. Where the switches of
``ModelConfig`` put them is decided by the generators (``cnn.py``, ``unet.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

#: CBAM channel-MLP reduction and spatial-gate kernel (upstream defaults).
CBAM_REDUCTION = 16
CBAM_KERNEL = 7
#: ECA 1-D kernel across channels (upstream default).
ECA_KERNEL = 3


@dataclass(frozen=True)
class AttentionSwitches:
    """Which attention blocks a convolutional generator inserts (``ModelConfig`` fields).

    cbam_encoder / eca_encoder: after the two convolutions of every encoder block, before its
        max-pool (CBAM first when both are on).
    cbam_bottleneck: on the encoder output (the 8 x 8 bottleneck), shared by both decoders.
    cbam_decoder / eca_decoder: after the two convolutions of every decoder up-block, before
        its nearest-neighbour upsampling, in both decoders (upstream builds these and never
        calls them; here they act).
    """

    cbam_encoder: bool = False
    cbam_bottleneck: bool = False
    cbam_decoder: bool = False
    eca_encoder: bool = False
    eca_decoder: bool = False

    def enabled(self) -> tuple[str, ...]:
        """Names of the switches that are on, in declaration order."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name))


class CBAM(nn.Module):
    """Convolutional block attention: channel gate then spatial gate, ``(B, C, H, W)`` in and
    out."""

    def __init__(self, channels: int, reduction: int = CBAM_REDUCTION,
                 kernel: int = CBAM_KERNEL) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=1),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, kernel_size=1),
        )
        self.spatial = nn.Conv2d(2, 1, kernel_size=kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        peak = x.amax(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        x = x * torch.sigmoid(self.mlp(avg) + self.mlp(peak))
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))  # gate (B, 1, H, W)


class ECA(nn.Module):
    """Efficient channel attention: ``x * sigmoid(conv1d(avgpool x))``, ``(B, C, H, W)`` in and
    out."""

    def __init__(self, kernel: int = ECA_KERNEL) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel_size=kernel, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[0], x.shape[1]
        avg = x.mean(dim=(2, 3)).reshape(b, 1, c)  # channels as a 1-D signal
        gate = torch.sigmoid(self.conv(avg)).reshape(b, c, 1, 1)
        return x * gate


def attention_layers(channels: int, *, cbam: bool, eca: bool) -> list[nn.Module]:
    """The attention modules to append after a block of ``channels`` outputs (CBAM, then ECA)."""
    layers: list[nn.Module] = []
    if cbam:
        layers.append(CBAM(channels))
    if eca:
        layers.append(ECA())
    return layers
