"""Differentiable sub-pixel patch extraction from a whole object (torch).

The same sampling as ``data.patches.extract_patches`` (the simulator's and upstream's
``get_image_patches``): patch pixel ``(i, j)`` of a patch centred at ``(x, y)`` is the object at
``(row = y + i - N//2, col = x + j - N//2)``, bilinear, zero outside the object per interpolation
corner. Gradients flow back to the object (gathers are differentiable in torch).
"""

from __future__ import annotations

import torch

__all__ = ["PatchSampler"]


class PatchSampler:
    """Precomputed gather indices and bilinear weights for ``M`` patch centres.

    Args:
        centres: ``(M, 2)`` float64 tensor, ``[:, 0] = x`` (column), ``[:, 1] = y`` (row), in
            object pixels.
        shape: ``(H, W)`` of the object.
        N: patch side in pixels.
        device: where the indices live (the object's device).
    """

    def __init__(
        self, centres: torch.Tensor, shape: tuple[int, int], N: int, device: torch.device
    ) -> None:
        if centres.ndim != 2 or centres.shape[1] != 2:
            raise ValueError(f"centres must be (M, 2) [x, y], got {tuple(centres.shape)}")
        self.shape = (int(shape[0]), int(shape[1]))
        self.N = int(N)
        h, w = self.shape
        c = centres.to(torch.float64).cpu()
        offsets = torch.arange(self.N, dtype=torch.float64) - self.N // 2
        rows = c[:, 1, None] + offsets[None, :]  # (M, N)
        cols = c[:, 0, None] + offsets[None, :]
        r0, c0 = torch.floor(rows), torch.floor(cols)
        # indices into the object padded by one zero row/column on each side
        self.r_lo = (torch.clamp(r0, -1, h) + 1).long().to(device)
        self.r_hi = (torch.clamp(r0 + 1, -1, h) + 1).long().to(device)
        self.c_lo = (torch.clamp(c0, -1, w) + 1).long().to(device)
        self.c_hi = (torch.clamp(c0 + 1, -1, w) + 1).long().to(device)
        self.fr = (rows - r0).to(torch.float32).to(device)
        self.fc = (cols - c0).to(torch.float32).to(device)

    def __len__(self) -> int:
        return int(self.fr.shape[0])

    def extract(self, obj: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """Patches of ``obj`` ``(H, W)`` complex64 at the centres ``index`` (all when None).

        Returns ``(B, N, N)`` complex64, differentiable with respect to ``obj``.
        """
        if tuple(obj.shape) != self.shape:
            raise ValueError(f"object has shape {tuple(obj.shape)}, sampler built for {self.shape}")
        sel = slice(None) if index is None else index
        padded = torch.nn.functional.pad(obj, (1, 1, 1, 1))
        r_lo, r_hi = self.r_lo[sel][:, :, None], self.r_hi[sel][:, :, None]
        c_lo, c_hi = self.c_lo[sel][:, None, :], self.c_hi[sel][:, None, :]
        wr1, wc1 = self.fr[sel][:, :, None], self.fc[sel][:, None, :]
        wr0, wc0 = 1.0 - wr1, 1.0 - wc1
        return (
            (wr0 * wc0) * padded[r_lo, c_lo]
            + (wr0 * wc1) * padded[r_lo, c_hi]
            + (wr1 * wc0) * padded[r_hi, c_lo]
            + (wr1 * wc1) * padded[r_hi, c_hi]
        )
