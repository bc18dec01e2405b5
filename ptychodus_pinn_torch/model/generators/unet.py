"""``unet``: the ``cnn`` generator with skip connections from the encoder to both decoders.

Same encoder, same decoder widths, same decoder-last branches and head activations as ``cnn``
(``cnn.py``); what differs is that every decoder level below N/2 and the decoder-last input
also receive the encoder's feature map of the same resolution (taken before its max-pool),
concatenated in front of the decoder's channels. At N = 64 (s = n_filters_scale):

==========================  =========================================  ==================
level (resolution)          decoder input channels (cnn -> unet)       skip from
==========================  =========================================  ==================
up-block 1 (8 -> 16)        128s -> 128s                               (none: bottleneck)
up-block 2 (16 -> 32)       64s -> 64s + 128s                          encoder block 3
decoder-last (32 -> 64)     32s -> 32s + 64s                           encoder block 2
==========================  =========================================  ==================

The encoder's full-resolution block (block 1) has no decoder level at N to join. The decoder's
own channels stay last, so the decoder-last border branch still reads the decoder's last 4
channels. Upstream's PyTorch CNN has no skips despite its docstrings; this one is ours.
"""

from __future__ import annotations

import torch
from torch import nn

from ptychodus_pinn_torch.model.generators.attention import AttentionSwitches, attention_layers
from ptychodus_pinn_torch.model.generators.base import GeneratorSettings, PatchGenerator
from ptychodus_pinn_torch.model.generators.cnn import (
    ConvUpBlock,
    DecoderLast,
    Widths,
    encoder_blocks,
    head_activations,
    widths_for,
)


class SkipDecoder(nn.Module):
    """One head with skips: ``(z (B, enc[-1], 8, 8), skips) -> (B, nf, N, N)``.

    ``skips[k]`` is the encoder's pre-pool feature of block k, ``(B, enc[k], N/2**k, N/2**k)``.
    """

    def __init__(self, out_ch: int, n: int, widths: Widths, activation: nn.Module, *,
                 pad_object: bool, probe_big: bool, cbam: bool, eca: bool) -> None:
        super().__init__()
        enc, dec = widths.encoder, widths.decoder
        depth = len(enc)
        # the encoder block whose resolution each decoder input has (None: the bottleneck)
        self.skip_of = [None] + [depth - j for j in range(1, len(dec))]
        blocks: list[nn.Module] = []
        ch = enc[-1]
        for j, f in enumerate(dec):
            k = self.skip_of[j]
            in_ch = ch + (enc[k] if k is not None else 0)
            blocks.append(ConvUpBlock(in_ch, f, attention_layers(f, cbam=cbam, eca=eca)))
            ch = f
        self.blocks = nn.ModuleList(blocks)
        self.last = DecoderLast(ch + enc[1], out_ch, n, widths.last, activation,
                                pad_object=pad_object, probe_big=probe_big)

    def forward(self, z: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        h = z
        for k, block in zip(self.skip_of, self.blocks, strict=True):
            if k is not None:
                h = torch.cat([skips[k], h], dim=1)  # skip first, decoder channels last
            h = block(h)
        return self.last(torch.cat([skips[1], h], dim=1))  # (B, nf, N, N)


class UNet(PatchGenerator):
    """``unet``: ``forward(x (B, C, N, N)) -> (first, second)`` heads ``(B, nf, N, N)`` (see
    :class:`~ptychodus_pinn_torch.model.generators.cnn.Generator` for the head semantics)."""

    def __init__(self, n: int, channels: int, out_channels: int, n_filters_scale: int,
                 amp_activation: str, *, pad_object: bool, probe_big: bool,
                 attention: AttentionSwitches | None = None,
                 output_mode: str = "amp_phase") -> None:
        super().__init__()
        att = attention or AttentionSwitches()
        widths = widths_for(n, n_filters_scale)
        self.widths = widths
        self.output_mode = output_mode
        blocks = encoder_blocks(channels, widths, att)
        ch = widths.encoder[-1]
        self.encoder = nn.ModuleList(blocks)
        self.bottleneck = nn.Sequential(*attention_layers(ch, cbam=att.cbam_bottleneck, eca=False))
        first_act, second_act = head_activations(output_mode, amp_activation)
        options = dict(pad_object=pad_object, probe_big=probe_big,
                       cbam=att.cbam_decoder, eca=att.eca_decoder)
        self.amp_decoder = SkipDecoder(out_channels, n, widths, first_act, **options)
        self.phase_decoder = SkipDecoder(out_channels, n, widths, second_act, **options)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: (B, C, N, N) float -> two heads, each (B, nf, N, N)."""
        skips: list[torch.Tensor] = []
        h = x
        for block in self.encoder:
            *convs, pool = block  # convs (+ attention), then the max-pool
            for layer in convs:
                h = layer(h)
            skips.append(h)  # (B, enc[k], N/2**k, N/2**k)
            h = pool(h)
        z = self.bottleneck(h)  # (B, enc[-1], 8, 8)
        return self.amp_decoder(z, skips), self.phase_decoder(z, skips)


def build(settings: GeneratorSettings) -> UNet:
    """Registry builder of ``unet``."""
    return UNet(
        settings.n, settings.channels, settings.out_channels, settings.n_filters_scale,
        settings.amp_activation, pad_object=settings.pad_object, probe_big=settings.probe_big,
        attention=settings.attention, output_mode=settings.output_mode,
    )
