"""Bilinear forward splat of small complex tiles onto a 2-D canvas: the kernel of all stitching.

Translating a zero-padded tile by ``t`` with bilinear interpolation (content moves by ``+t``,
per-corner zero fill) and summing is *exactly* a forward splat: tile pixel ``(i, j)`` placed at
the sub-pixel canvas point ``(row0 + i, col0 + j)`` gives weight ``(1 - fr)(1 - fc)`` to canvas
pixel ``(ir + i, ic + j)``, ``fr (1 - fc)`` to ``(ir + i + 1, ic + j)`` and so on, with
``ir = floor(row0)``, ``fr = row0 - ir`` (likewise for columns). Doing it as a splat costs
``O((m + 1)^2)`` per tile instead of ``O(canvas)`` and needs no per-tile Python loop.
"""

from __future__ import annotations

import torch

from ptychodus_pinn_torch.data.npz_limits import MEMORY_BUDGET_ENV, default_memory_budget

__all__ = ["CanvasAccumulator", "DEFAULT_CHUNK_ELEMENTS"]

# Tile pixels handled per chunk when no chunk_size is given: bounds the temporaries of one
# chunk to a few tens of MiB whatever the number of tiles.
DEFAULT_CHUNK_ELEMENTS = 1 << 20


def _shift_pad_axis(v: torch.Tensor, frac: torch.Tensor, dim: int) -> torch.Tensor:
    """Split each sample between itself and its successor along ``dim`` (length m -> m + 1).

    ``v``: ``(c, ...)`` tensor; ``frac``: ``(c,)`` real fractional shift in ``[0, 1)``; output
    ``out[k] = (1 - frac) v[k] + frac v[k - 1]`` with ``v[-1] = v[m] = 0``.
    """
    shape = [v.shape[0]] + [1] * (v.ndim - 1)
    f = frac.view(shape)
    size = list(v.shape)
    m = size[dim]
    size[dim] = m + 1
    out = torch.empty(size, dtype=v.dtype, device=v.device)
    head = out.narrow(dim, 0, m)
    torch.mul(v, 1 - f, out=head)
    out.narrow(dim, m, 1).zero_()
    out.narrow(dim, 1, m).addcmul_(v, f.expand_as(v))
    return out


class CanvasAccumulator:
    """Accumulates ``sum_k w * T(tile_k)`` and ``sum_k T(w)`` on an ``(H, W)`` canvas.

    The canvas lives on ``device`` as an ``(H * W, 3)`` real tensor of ``dtype`` holding the real
    part, imaginary part and weight sums; memory is ``12 H W`` bytes for float32.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        H, W = int(shape[0]), int(shape[1])
        if H < 1 or W < 1:
            raise ValueError(f"canvas shape must be positive, got {(H, W)}")
        need = H * W * 3 * torch.empty((), dtype=dtype).element_size()
        budget = default_memory_budget()
        if need > budget:  # ENG-120's last line of defence, for direct callers
            raise ValueError(
                f"the stitching canvas would be {H} x {W} pixels ({need / 2**30:.1f} GiB), above "
                f"the memory budget of {budget / 2**30:.1f} GiB; the positions are spread too "
                f"far (check that they are in object pixels, not metres or nm) or raise "
                f"{MEMORY_BUDGET_ENV}"
            )
        self.shape = (H, W)
        self.dtype = dtype
        self.device = torch.device(device)
        self.sums = torch.zeros((H * W, 3), dtype=dtype, device=self.device)

    def add(
        self,
        tiles: torch.Tensor,
        row0: torch.Tensor,
        col0: torch.Tensor,
        weight: torch.Tensor | None = None,
    ) -> None:
        """Splat a chunk of tiles.

        Args:
            tiles: ``(c, m, m)`` complex or real tensor (any device; moved to the canvas').
            row0, col0: ``(c,)`` float64 canvas coordinates (pixels) of tile pixel ``(0, 0)``.
            weight: optional ``(m, m)`` real weight applied to every tile (default: ones).
        """
        c, m, m2 = (int(s) for s in tiles.shape)
        if c == 0:
            return
        H, W = self.shape
        dev, rdt = self.device, self.dtype
        tiles = tiles.to(dev)
        row0 = row0.to(device=dev, dtype=torch.float64)
        col0 = col0.to(device=dev, dtype=torch.float64)
        ir, ic = torch.floor(row0), torch.floor(col0)
        fr, fc = (row0 - ir).to(rdt), (col0 - ic).to(rdt)
        if tiles.is_complex():
            re, im = tiles.real, tiles.imag
        else:
            re, im = tiles, torch.zeros((), dtype=rdt, device=dev).expand(c, m, m2)
        stacked = torch.empty((c, m, m2, 3), dtype=rdt, device=dev)
        if weight is None:
            stacked[..., 0] = re
            stacked[..., 1] = im
            stacked[..., 2] = 1.0
        else:
            w = weight.to(device=dev, dtype=rdt)
            torch.mul(re.to(rdt), w, out=stacked[..., 0])
            torch.mul(im.to(rdt), w, out=stacked[..., 1])
            stacked[..., 2] = w
        stacked = _shift_pad_axis(stacked, fc, dim=2)  # columns -> (c, m, m + 1, 3)
        stacked = _shift_pad_axis(stacked, fr, dim=1)  # rows -> (c, m + 1, m + 1, 3)
        rows = ir.to(torch.int64).view(c, 1) + torch.arange(m + 1, device=dev).view(1, -1)
        cols = ic.to(torch.int64).view(c, 1) + torch.arange(m2 + 1, device=dev).view(1, -1)
        row_ok = (rows >= 0) & (rows < H)
        col_ok = (cols >= 0) & (cols < W)
        ok = row_ok.view(c, m + 1, 1) & col_ok.view(c, 1, m2 + 1)
        flat = rows.clamp(0, H - 1).view(c, m + 1, 1) * W + cols.clamp(0, W - 1).view(c, 1, m2 + 1)
        if not bool(ok.all()):
            stacked.mul_(ok.unsqueeze(-1).to(rdt))
        self.sums.index_add_(0, flat.reshape(-1), stacked.reshape(-1, 3))

    def numerator(self) -> torch.Tensor:
        """``(H, W)`` complex sum of weighted translated tiles."""
        H, W = self.shape
        return torch.complex(self.sums[:, 0], self.sums[:, 1]).view(H, W)

    def coverage(self) -> torch.Tensor:
        """``(H, W)`` real sum of translated weights."""
        H, W = self.shape
        return self.sums[:, 2].view(H, W)
