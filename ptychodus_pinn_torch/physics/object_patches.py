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
        self.device = torch.device(device)
        self.rows, self.cols, self.fy, self.fx = self._tables(centres)

    def _tables(self, centres: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """For ``(M, 2)`` centres: the ``(M, N+1)`` int64 rows and columns of each patch's
        bilinear window in the object padded by one zero row/column on each side (indices
        outside the object point at the zero border), and the ``(M,)`` float32 sub-pixel
        fractions along y and x (the same for every pixel of a patch)."""
        h, w = self.shape
        c = centres.to(torch.float64).cpu()
        offsets = torch.arange(self.N + 1, dtype=torch.float64) - self.N // 2
        r0 = torch.floor(c[:, 1, None] + offsets[None, :])  # (M, N+1)
        c0 = torch.floor(c[:, 0, None] + offsets[None, :])
        fy = c[:, 1] - torch.floor(c[:, 1])
        fx = c[:, 0] - torch.floor(c[:, 0])
        dev = self.device
        return (
            (torch.clamp(r0, -1, h) + 1).long().to(dev),
            (torch.clamp(c0, -1, w) + 1).long().to(dev),
            fy.to(torch.float32).to(dev),
            fx.to(torch.float32).to(dev),
        )

    def move(self, index: torch.Tensor, centres: torch.Tensor) -> None:
        """Re-centre the patches ``index`` (``(B,)`` int64) at ``centres`` ``(B, 2)`` [x, y]."""
        tables = self._tables(centres)
        for name, table in zip(("rows", "cols", "fy", "fx"), tables, strict=True):
            getattr(self, name)[index.to(self.device)] = table

    def __len__(self) -> int:
        return int(self.fy.shape[0])

    def _window_index(self, sel: slice | torch.Tensor) -> torch.Tensor:
        """``(B, N+1, N+1)`` linear indices into the flattened padded object."""
        width = self.shape[1] + 2
        return self.rows[sel][:, :, None] * width + self.cols[sel][:, None, :]

    def extract(self, obj: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """Patches of ``obj`` ``(H, W)`` complex64 at the centres ``index`` (all when None).

        Returns ``(B, N, N)`` complex64, differentiable with respect to ``obj``. One gather of
        each ``(N+1) x (N+1)`` window, then the separable bilinear weights.
        """
        if tuple(obj.shape) != self.shape:
            raise ValueError(f"object has shape {tuple(obj.shape)}, sampler built for {self.shape}")
        sel = slice(None) if index is None else index
        padded = torch.nn.functional.pad(obj, (1, 1, 1, 1)).reshape(-1)
        win = padded[self._window_index(sel)]  # (B, N+1, N+1)
        fy = self.fy[sel][:, None, None]
        fx = self.fx[sel][:, None, None]
        rows = win[:, :-1] * (1.0 - fy) + win[:, 1:] * fy  # (B, N, N+1)
        return rows[:, :, :-1] * (1.0 - fx) + rows[:, :, 1:] * fx

    def insert(self, patches: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """Adjoint of :meth:`extract`: scatter-add ``(B, N, N)`` patches onto an ``(H, W)`` grid.

        Each patch pixel is spread over its four bilinear corners with the weights that
        :meth:`extract` reads them with, so ``<extract(O), p> = <O, insert(p)>`` (real inner
        product of the real and imaginary parts). Corners outside the object are dropped.
        Real patches give a real (float32) grid, complex ones a complex64 grid.
        """
        sel = slice(None) if index is None else index
        h, w = self.shape
        b, n = patches.shape[0], self.N
        fy = self.fy[sel][:, None, None]
        fx = self.fx[sel][:, None, None]
        cols = patches.new_zeros((b, n, n + 1))
        cols[:, :, :-1] = patches * (1.0 - fx)
        cols[:, :, 1:] += patches * fx
        win = patches.new_zeros((b, n + 1, n + 1))
        win[:, :-1] = cols * (1.0 - fy)
        win[:, 1:] += cols * fy
        flat = patches.new_zeros((h + 2) * (w + 2))
        flat.index_add_(0, self._window_index(sel).reshape(-1), win.reshape(-1))
        return flat.view(h + 2, w + 2)[1:-1, 1:-1]
