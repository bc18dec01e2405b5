"""Sub-pixel translation of image stacks (bilinear, zero fill per corner, complex-safe).

Convention (upstream TF ``hh.translate``, reference §4.1): an offset ``t = [dx, dy]`` moves the
image *content* by ``+t``: ``out[y, x] = in(y - dy, x - dx)``, where ``dx`` acts on the last axis
(columns, width) and ``dy`` on the second-to-last axis (rows, height). Samples between pixels are
bilinear; each of the four corners that falls outside the image contributes 0 (TF
``fill_mode='zeros'``; scipy ``map_coordinates(order=1, mode='grid-constant')``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["translate"]


def _check_offsets(images: torch.Tensor, offsets: torch.Tensor) -> tuple[int, ...]:
    if images.ndim < 2:
        raise ValueError(
            f"translate: images must have at least 2 dimensions (..., H, W), got shape "
            f"{tuple(images.shape)}; add a batch axis or pass a 2-D image"
        )
    if offsets.ndim < 1 or offsets.shape[-1] != 2:
        raise ValueError(
            f"translate: offsets must have shape (..., 2) holding [dx, dy], got shape "
            f"{tuple(offsets.shape)}; pass one [dx, dy] pair per image"
        )
    if offsets.is_complex() or not offsets.is_floating_point():
        raise ValueError(
            f"translate: offsets must be a real floating tensor, got dtype {offsets.dtype}; "
            "convert with offsets.float()"
        )
    lead = tuple(images.shape[:-2])
    try:
        return tuple(torch.broadcast_shapes(lead, tuple(offsets.shape[:-1])))
    except RuntimeError as err:
        raise ValueError(
            f"translate: offsets leading shape {tuple(offsets.shape[:-1])} does not broadcast "
            f"with images leading shape {lead}; pass offsets of shape {lead + (2,)}"
        ) from err


def _single(src: torch.Tensor) -> torch.Tensor:
    """Normalized coordinate on a size-1 axis: 0 (the pixel) at exactly 0, outside otherwise."""
    return torch.where(src == 0, torch.zeros_like(src), torch.full_like(src, 3.0))


def translate(images: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Move the content of each image by ``+offset`` (bilinear, zero fill per corner).

    Args:
        images: ``(..., H, W)`` real (float32/float64) or complex (complex64/complex128) tensor.
        offsets: ``(..., 2)`` real tensor ``[dx, dy]`` in pixels; its leading dims broadcast
            against those of ``images`` (e.g. ``(B, 2)`` for ``(B, H, W)`` images).

    Returns:
        ``(broadcast leading dims, H, W)`` tensor of the dtype of ``images``: real and imaginary
        parts are translated separately. Differentiable with respect to both inputs.

    Implementation: ``grid_sample(mode='bilinear', padding_mode='zeros', align_corners=True)``;
    with ``align_corners=True`` normalized coordinate -1 is pixel 0 and +1 is pixel W-1 (or H-1),
    so the sampling point ``x - dx`` maps to ``2 (x - dx) / (W - 1) - 1``. A size-1 axis only
    takes integer shifts by 0 into account (any non-zero shift empties it).
    """
    lead = _check_offsets(images, offsets)
    H, W = int(images.shape[-2]), int(images.shape[-1])
    is_complex = images.is_complex()
    real_dtype = images.real.dtype if is_complex else images.dtype
    if not (is_complex or images.is_floating_point()):
        images = images.to(torch.float32)
        real_dtype = torch.float32
    imgs = images.expand(lead + (H, W)).reshape(-1, H, W)
    offs = offsets.to(real_dtype).expand(lead + (2,)).reshape(-1, 2)
    B = imgs.shape[0]
    if B == 0:
        return images.new_zeros(lead + (H, W))
    if is_complex:
        chans = torch.view_as_real(imgs).permute(0, 3, 1, 2)  # (B, 2, H, W)
    else:
        chans = imgs.unsqueeze(1)  # (B, 1, H, W)
    dev = imgs.device
    ys = torch.arange(H, device=dev, dtype=real_dtype)
    xs = torch.arange(W, device=dev, dtype=real_dtype)
    src_x = xs.view(1, 1, W) - offs[:, 0].view(B, 1, 1)  # (B, 1, W)
    src_y = ys.view(1, H, 1) - offs[:, 1].view(B, 1, 1)  # (B, H, 1)
    # Normalized coordinates; a size-1 axis samples its single pixel only at exactly 0.
    gx = 2.0 * src_x / (W - 1) - 1.0 if W > 1 else _single(src_x)
    gy = 2.0 * src_y / (H - 1) - 1.0 if H > 1 else _single(src_y)
    grid = torch.stack(torch.broadcast_tensors(gx, gy), dim=-1)  # (B, H, W, 2)
    out = F.grid_sample(
        chans, grid, mode="bilinear", padding_mode="zeros", align_corners=True
    )
    if is_complex:
        out = torch.view_as_complex(out.permute(0, 2, 3, 1).contiguous())
    else:
        out = out[:, 0]
    return out.reshape(lead + (H, W))
