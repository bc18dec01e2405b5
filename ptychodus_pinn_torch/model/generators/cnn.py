"""``cnn``: the TensorFlow PtychoPINN generator, one convolutional encoder and two decoders.

Layout is channels-first (torch): input ``(B, C, N, N)`` float32 with ``C = gridsize**2``;
each head emits ``(B, nf, N, N)`` float32 with ``nf = C`` when ``object_big`` else 1.

The widths follow upstream TensorFlow ``ptycho/model.py`` (reference §5.1), with
``s = n_filters_scale``:

====  ======================  ========================  ====================
N     encoder filters         decoder filters (a head)  decoder-last branch
====  ======================  ========================  ====================
64    s*[32, 64, 128]         s*[64, 32]                s*32
128   s*[16, 32, 64, 128]     s*[128, 64, 32]           s*16
256   s*[8, 16, 32, 64, 128]  s*[256, 128, 64, 32]      s*8
====  ======================  ========================  ====================

Keras "same" 3x3 convolutions are ``padding=1``; Keras 'same' 2x2 max pooling on even sizes is
``MaxPool2d(2)``; ``UpSampling2D`` is nearest ``Upsample(scale_factor=2)``. Weights use the
Keras default initialisation: Glorot-uniform kernels and zero biases.

With every attention switch off and ``output_mode="amp_phase"`` this is upstream's TF network
exactly (its initial weights give its outputs, specs/ARCH.md). The switches (``attention.py``)
append CBAM/ECA modules inside the blocks; ``real_imag`` swaps the two head activations.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ptychodus_pinn_torch.config.choices import AMP_ACTIVATIONS, N_VALUES
from ptychodus_pinn_torch.model.generators.attention import AttentionSwitches, attention_layers
from ptychodus_pinn_torch.model.generators.base import (
    GeneratorSettings,
    PatchGenerator,
    ShiftedTanh,
)
from ptychodus_pinn_torch.physics import centre_mask

SUPPORTED_N: tuple[int, ...] = N_VALUES
#: Accepted spelling aliases of ``AMP_ACTIVATIONS`` (torch's name for swish).
ACTIVATION_ALIASES: dict[str, str] = {"silu": "swish"}
#: Number of decoder channels routed to the border branch of ``create_decoder_last`` (upstream
#: ``c_outer``, fixed at 4).
C_OUTER = 4


@dataclass(frozen=True)
class Widths:
    """Filter counts of the generator for one ``(N, n_filters_scale)``.

    ``encoder`` and ``decoder`` list the output channels of successive blocks (the encoder takes
    N down to 8, each decoder takes 8 up to N/2); ``last`` is the width of the up-block of the
    decoder-last branch (``s * 2048 // N``).
    """

    encoder: tuple[int, ...]
    decoder: tuple[int, ...]
    last: int


def _as_int(value: object) -> int | None:
    """``value`` as a Python int if it is an integer (Python or numpy, not bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


def check_n(n: int) -> int:
    """Return ``n`` (as an int) if it is a supported patch size, else raise ValueError naming
    ``N``."""
    value = _as_int(n)
    if value is None or value not in SUPPORTED_N:
        raise ValueError(
            f"Unsupported input size: ModelConfig.N = {n!r}; the PtychoPINN network exists only "
            f"for N in {list(SUPPORTED_N)}: set N to one of them (resample or crop the "
            "diffraction patterns to that size)."
        )
    return value


def check_activation(name: str) -> str:
    """Return the canonical amplitude activation name, or raise ValueError naming the field."""
    canonical = ACTIVATION_ALIASES.get(name, name) if isinstance(name, str) else name
    if canonical not in AMP_ACTIVATIONS:
        raise ValueError(
            f"Unknown activation: ModelConfig.amp_activation = {name!r}; use one of "
            f"{list(AMP_ACTIVATIONS)} ('silu' is accepted for 'swish')."
        )
    return str(canonical)


def check_filters_scale(n_filters_scale: int) -> int:
    """Return ``n_filters_scale`` (as an int) if it is a positive integer, else ValueError."""
    value = _as_int(n_filters_scale)
    if value is None or value < 1:
        raise ValueError(
            f"ModelConfig.n_filters_scale = {n_filters_scale!r} is invalid; it multiplies every "
            "filter count and must be a positive integer (upstream default 2)."
        )
    return value


def widths_for(n: int, n_filters_scale: int) -> Widths:
    """Filter counts of upstream's network for patch size ``n`` (reference §5.1).

    Raises ValueError for ``n`` outside {64, 128, 256} or a non-positive scale.
    """
    check_n(n)
    s = check_filters_scale(n_filters_scale)
    depth = int(math.log2(n // 8))  # number of 2x poolings from n down to 8: 3, 4, 5
    encoder = tuple(s * 128 // 2 ** (depth - 1 - i) for i in range(depth))
    decoder = tuple(s * 32 * 2 ** (depth - 2 - i) for i in range(depth - 1))
    return Widths(encoder=encoder, decoder=decoder, last=s * (2048 // n))


def _conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    """3x3 'same' convolution with Keras' default init (Glorot-uniform kernel, zero bias)."""
    conv = nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)
    nn.init.xavier_uniform_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class ConvPoolBlock(nn.Sequential):
    """Conv3x3(relu) -> Conv3x3(relu) -> [attention] -> MaxPool 2x2:
    ``(B, in, H, W) -> (B, out, H/2, W/2)``. The last module is always the pool."""

    def __init__(self, in_ch: int, out_ch: int, attention: Sequence[nn.Module] = ()) -> None:
        super().__init__(
            _conv3x3(in_ch, out_ch),
            nn.ReLU(inplace=True),  # on the conv's own output: saves a copy, same values
            _conv3x3(out_ch, out_ch),
            nn.ReLU(inplace=True),
            *attention,
            nn.MaxPool2d(2),
        )


def encoder_blocks(channels: int, widths: Widths, att: AttentionSwitches) -> list[nn.Module]:
    """The encoder's conv-pool blocks, ``channels`` in, ``widths.encoder`` out (each halves
    the side), with the encoder attention switches inserted before each pool."""
    blocks: list[nn.Module] = []
    ch = channels
    for f in widths.encoder:
        blocks.append(ConvPoolBlock(ch, f, attention_layers(f, cbam=att.cbam_encoder,
                                                            eca=att.eca_encoder)))
        ch = f
    return blocks


class ConvUpBlock(nn.Sequential):
    """Conv3x3(relu) -> Conv3x3(relu) -> [attention] -> nearest 2x up:
    ``(B, in, H, W) -> (B, out, 2H, 2W)``. The last module is always the upsampling."""

    def __init__(self, in_ch: int, out_ch: int, attention: Sequence[nn.Module] = ()) -> None:
        super().__init__(
            _conv3x3(in_ch, out_ch),
            nn.ReLU(inplace=True),  # on the conv's own output: saves a copy, same values
            _conv3x3(out_ch, out_ch),
            nn.ReLU(inplace=True),
            *attention,
            nn.Upsample(scale_factor=2, mode="nearest"),
        )


class PiTanh(nn.Module):
    """``pi * tanh(x)``: the phase activation, values in (-pi, pi)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return math.pi * torch.tanh(x)


def make_activation(name: str) -> nn.Module:
    """The amplitude activation module for an upstream ``amp_activation`` name."""
    canonical = check_activation(name)
    return {
        "sigmoid": nn.Sigmoid,
        "swish": nn.SiLU,
        "softplus": nn.Softplus,
        "relu": nn.ReLU,
    }[canonical]()


class DecoderLast(nn.Module):
    """Upstream ``create_decoder_last``: ``(B, in_ch, N/2, N/2) -> (B, nf, N, N)`` float.

    With ``pad_object`` the first ``in_ch - 4`` channels go through a 3x3 conv and ``act`` and
    are zero-padded by N/4 (support = central N/2 square); with ``probe_big`` the last 4 channels
    also go through an up-block, a 3x3 conv and swish, masked to the border (centre N/2 square
    zeroed), and the two are added. Without ``pad_object`` all channels go through an up-block,
    a conv and ``act`` over the full N x N (``probe_big`` is then ignored, as upstream).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        n: int,
        last_width: int,
        activation: nn.Module,
        *,
        pad_object: bool,
        probe_big: bool,
    ) -> None:
        super().__init__()
        if in_ch <= C_OUTER:
            raise ValueError(
                f"decoder width {in_ch} leaves no channels for the centre branch; "
                "raise ModelConfig.n_filters_scale."
            )
        self.n = n
        self.pad_object = pad_object
        self.probe_big = probe_big and pad_object
        self.activation = activation
        if pad_object:
            self.centre_conv = _conv3x3(in_ch - C_OUTER, out_ch)
            if self.probe_big:
                self.border_up = ConvUpBlock(C_OUTER, last_width)
                self.border_conv = _conv3x3(last_width, out_ch)
                border = 1.0 - centre_mask(n)
                self.register_buffer("border_mask", border.reshape(1, 1, n, n), persistent=False)
        else:
            self.full_up = ConvUpBlock(in_ch, last_width)
            self.full_conv = _conv3x3(last_width, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, in_ch, N/2, N/2) -> (B, nf, N, N), same dtype as the convs produce."""
        if not self.pad_object:
            return self.activation(self.full_conv(self.full_up(x)))
        q = self.n // 4
        centre = self.activation(self.centre_conv(x[:, :-C_OUTER]))
        out = nn.functional.pad(centre, (q, q, q, q))
        if self.probe_big:
            border = nn.functional.silu(self.border_conv(self.border_up(x[:, -C_OUTER:])))
            out = out + border * self.border_mask.to(border.dtype)
        return out


class Decoder(nn.Module):
    """One head: ``blocks`` (up-blocks from the 8x8 bottleneck to N/2), then ``last``
    (``DecoderLast``) to N x N: ``(B, in_ch, 8, 8) -> (B, nf, N, N)``.

    ``cbam`` / ``eca`` insert attention in every up-block of ``blocks`` (not in ``last``).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        n: int,
        widths: Widths,
        activation: nn.Module,
        *,
        pad_object: bool,
        probe_big: bool,
        cbam: bool = False,
        eca: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_ch
        for f in widths.decoder:
            layers.append(ConvUpBlock(ch, f, attention_layers(f, cbam=cbam, eca=eca)))
            ch = f
        self.blocks = nn.Sequential(*layers)
        self.last = DecoderLast(
            ch, out_ch, n, widths.last, activation, pad_object=pad_object, probe_big=probe_big
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``z``: (B, in_ch, 8, 8) bottleneck -> (B, nf, N, N)."""
        return self.last(self.blocks(z))


def head_activations(output_mode: str, amp_activation: str) -> tuple[nn.Module, nn.Module]:
    """Activations of the two heads: (amplitude, pi*tanh phase) for ``amp_phase``; upstream's
    bounded (tanh + 0.2, 1.2*tanh) for ``real_imag`` (``amp_activation`` unused there)."""
    if output_mode == "real_imag":
        return ShiftedTanh(1.0, 0.2), ShiftedTanh(1.2, 0.0)
    return make_activation(amp_activation), PiTanh()


class Generator(PatchGenerator):
    """``cnn``: encoder and the amplitude and phase decoders (no skip connections).

    ``forward(x (B, C, N, N) float) -> (first (B, nf, N, N), second (B, nf, N, N))`` in the
    dtype the convolutions run in (float32, or bfloat16 under autocast): amplitude and phase,
    or real and imaginary part (``output_mode``). Module names (``encoder``, ``amp_decoder``,
    ``phase_decoder``) and the weight order are upstream's, whatever the output mode.
    """

    def __init__(
        self,
        n: int,
        channels: int,
        out_channels: int,
        n_filters_scale: int,
        amp_activation: str,
        *,
        pad_object: bool,
        probe_big: bool,
        attention: AttentionSwitches | None = None,
        output_mode: str = "amp_phase",
    ) -> None:
        super().__init__()
        att = attention or AttentionSwitches()
        widths = widths_for(n, n_filters_scale)
        self.widths = widths
        self.output_mode = output_mode
        blocks = encoder_blocks(channels, widths, att)
        ch = widths.encoder[-1]
        self.encoder = nn.Sequential(*blocks)
        self.bottleneck = nn.Sequential(*attention_layers(ch, cbam=att.cbam_bottleneck, eca=False))
        first_act, second_act = head_activations(output_mode, amp_activation)
        decoder_options = dict(pad_object=pad_object, probe_big=probe_big,
                               cbam=att.cbam_decoder, eca=att.eca_decoder)
        self.amp_decoder = Decoder(ch, out_channels, n, widths, first_act, **decoder_options)
        self.phase_decoder = Decoder(ch, out_channels, n, widths, second_act, **decoder_options)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: (B, C, N, N) float -> two heads, each (B, nf, N, N)."""
        z = self.bottleneck(self.encoder(x))  # (B, widths.encoder[-1], 8, 8)
        return self.amp_decoder(z), self.phase_decoder(z)


def build(settings: GeneratorSettings) -> Generator:
    """Registry builder of ``cnn``."""
    return Generator(
        settings.n,
        settings.channels,
        settings.out_channels,
        settings.n_filters_scale,
        settings.amp_activation,
        pad_object=settings.pad_object,
        probe_big=settings.probe_big,
        attention=settings.attention,
        output_mode=settings.output_mode,
    )
