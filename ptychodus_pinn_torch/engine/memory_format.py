"""The memory format a batch reaches the network in (ENG-206 inference, ENG-207 training)."""

from __future__ import annotations

import torch

__all__ = ["in_memory_format"]


def in_memory_format(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``x`` (B, C, N, N) float32 laid out channels-last (strides ``(C N N, 1, N C, C)``) or in
    the standard format (``(C N N, N N, N, 1)``), copied when its strides differ (ENG-207).

    ``Tensor.contiguous(memory_format=...)`` ignores the strides of size-1 dimensions, so a
    one-channel batch gathered from the channels-last grouped data would keep them, and the
    convolutions would follow that layout whatever the setting said."""
    _, c, h, w = x.shape
    want = (c * h * w, 1, w * c, c) if channels_last else (c * h * w, h * w, w, 1)
    if x.stride() == want:
        return x
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return torch.empty_like(x, memory_format=fmt).copy_(x)
