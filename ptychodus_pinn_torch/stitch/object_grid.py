"""Stitching patches onto a given object pixel grid (what ptychodus needs for its product)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from ._inputs import (
    accumulation_dtype,
    as_tensor_view,
    check_numeric,
    chunk_count,
    positions_1d,
)
from .spill import SpilledPatches
from .splat import CanvasAccumulator

__all__ = ["ObjectGridAccumulator", "stitch_spilled_to_object_grid", "stitch_to_object_grid"]


def _patch_stack(value: Any) -> torch.Tensor:
    """``(n, N, N)`` view of ``(n, N, N)``, ``(n, 1, N, N)`` or ``(n, N, N, 1)`` patches."""
    t = as_tensor_view(value, "patches")
    check_numeric(t, "patches")
    if t.ndim == 4 and t.shape[1] == 1 and t.shape[2] == t.shape[3]:
        t = t[:, 0]
    elif t.ndim == 4 and t.shape[3] == 1 and t.shape[1] == t.shape[2]:
        t = t[..., 0]
    if t.ndim != 3 or t.shape[1] != t.shape[2]:
        raise ValueError(
            f"patches: expected shape (n, N, N) (or (n, 1, N, N) / (n, N, N, 1)), got "
            f"{tuple(value.shape)}"
        )
    return t


class ObjectGridAccumulator:
    """Streams batches of patches onto an ``(H, W)`` object grid; memory is ``O(H W)``.

    Patch pixel ``(i, j)`` of a patch at position ``(x, y)`` lands on object point
    ``(row = y + i - N//2, col = x + j - N//2)``, so the patch centre ``(N//2, N//2)`` goes to
    ``(row=y, col=x)``; sub-pixel positions are splat bilinearly (the same as translating the
    patch by ``+(x - N//2, y - N//2)`` with per-corner zero fill). Parts outside the grid are
    dropped.

    Args:
        object_shape: ``(H, W)`` of the object array.
        patch_size: ``N``.
        crop: keep only the central ``crop x crop`` pixels ``[N//2 - crop//2, ... + crop)`` of
            each patch (default: all ``N``).
        weights: ``"uniform"`` or an ``(N, N)`` non-negative real array weighting every patch
            pixel (e.g. ``|probe|^2``); cropped like the patches.
        device: where the canvas lives (default: CPU); patches are moved there chunk by chunk.
        dtype: accumulation dtype (float32 or float64).
    """

    def __init__(
        self,
        object_shape: tuple[int, int],
        patch_size: int,
        *,
        crop: int | None = None,
        weights: Literal["uniform"] | np.ndarray | torch.Tensor = "uniform",
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if (
            not isinstance(object_shape, (tuple, list))
            or len(object_shape) != 2
            or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in object_shape)
        ):
            raise ValueError(
                f"object_shape: expected (H, W) positive ints, got {object_shape!r}; pass "
                "object_array.shape[-2:]"
            )
        N = int(patch_size)
        if N < 1:
            raise ValueError(f"patch_size must be a positive int, got {patch_size!r}")
        if crop is None:
            crop = N
        if isinstance(crop, bool) or not isinstance(crop, int) or not 1 <= crop <= N:
            raise ValueError(f"crop must be an int in [1, N={N}] or None, got {crop!r}")
        self.N, self.crop = N, crop
        self.lo = N // 2 - crop // 2
        self.acc = CanvasAccumulator(
            (int(object_shape[0]), int(object_shape[1])), device=device, dtype=dtype
        )
        self.weight: torch.Tensor | None = None
        if isinstance(weights, str):
            if weights != "uniform":
                raise ValueError(
                    f"weights: expected 'uniform' or an (N, N) array, got {weights!r}"
                )
        else:
            w = as_tensor_view(weights, "weights")
            if w.is_complex() or tuple(w.shape) != (N, N):
                raise ValueError(
                    f"weights: expected a real ({N}, {N}) array, got shape {tuple(w.shape)} "
                    f"dtype {w.dtype}"
                )
            w = w.to(device=self.acc.device, dtype=dtype)
            if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
                raise ValueError("weights: must be finite and >= 0 everywhere")
            self.weight = w[self.lo : self.lo + crop, self.lo : self.lo + crop]

    def add(self, patches: Any, x: Any, y: Any, chunk_size: int | None = None) -> None:
        """Splat ``(n, N, N)`` patches (numpy or torch) at positions ``x``, ``y`` ``(n,)``."""
        p = _patch_stack(patches)
        n = int(p.shape[0])
        if int(p.shape[1]) != self.N:
            raise ValueError(
                f"patches: patch size {int(p.shape[1])} differs from the accumulator's N={self.N}"
            )
        dev = self.acc.device
        xs = positions_1d(x, n, "x", dev)
        ys = positions_1d(y, n, "y", dev)
        lo, c = self.lo, self.crop
        shift = lo - self.N // 2
        step = chunk_count(chunk_size, c)
        for start in range(0, n, step):
            stop = min(n, start + step)
            tiles = p[start:stop, lo : lo + c, lo : lo + c]
            self.acc.add(tiles, ys[start:stop] + shift, xs[start:stop] + shift, self.weight)

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(object (H, W) complex64, coverage (H, W) float32)``; 0 where coverage is 0."""
        cov = self.acc.coverage()
        covered = cov > 0
        denom = torch.where(covered, cov, torch.ones((), dtype=cov.dtype, device=cov.device))
        sums = self.acc.sums.view(*self.acc.shape, 3)
        obj = torch.complex(sums[..., 0] / denom, sums[..., 1] / denom)
        del denom
        obj.masked_fill_(~covered, 0)
        return obj.to(torch.complex64), cov.to(torch.float32)


def stitch_to_object_grid(
    patches: np.ndarray | torch.Tensor,
    x: Any,
    y: Any,
    object_shape: tuple[int, int],
    *,
    crop: int | None = None,
    weights: Literal["uniform"] | np.ndarray | torch.Tensor = "uniform",
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray] | tuple[torch.Tensor, torch.Tensor]:
    """Average patches onto the object's own pixel grid.

    Args:
        patches: ``(n, N, N)`` complex patches (also ``(n, 1, N, N)`` / ``(n, N, N, 1)``), numpy
            or torch on any device.
        x, y: ``(n,)`` positions of each patch centre ``(N//2, N//2)`` in object pixels
            (``x`` = column, ``y`` = row, origin at the array corner; sub-pixel allowed).
        object_shape: ``(H, W)`` of the output, i.e. of the input object.
        crop: keep only the central ``crop x crop`` of each patch (default all of it).
        weights: ``"uniform"`` or ``(N, N)`` non-negative weights per patch pixel.
        chunk_size: patches per vectorized chunk (default automatic, ~1 Mi pixels).

    Returns:
        ``(object, coverage)``: ``(H, W)`` complex64 weighted average ``sum w T(p) / sum T(w)``
        where the coverage ``sum T(w)`` (``(H, W)`` float32) is > 0, and 0 elsewhere (the
        caller decides the fill). numpy in -> numpy out; torch in -> torch on the patches'
        device.
    """
    p = _patch_stack(patches)
    device = p.device
    acc = ObjectGridAccumulator(
        object_shape, int(p.shape[-1]), crop=crop, weights=weights, device=device,
        dtype=accumulation_dtype(p),
    )
    acc.add(p, x, y, chunk_size=chunk_size)
    obj, cov = acc.result()
    if isinstance(patches, np.ndarray):
        return obj.cpu().numpy(), cov.cpu().numpy()
    return obj, cov


#: chunks of the accumulator's own size read from disk at a time by
#: :func:`stitch_spilled_to_object_grid` (2 x ~960 crops of 34 x 34: ~18 MB)
SPILL_READ_CHUNKS = 2


def stitch_spilled_to_object_grid(
    patches: SpilledPatches,
    x: Any,
    y: Any,
    object_shape: tuple[int, int],
    *,
    crop: int | None = None,
    weights: Literal["uniform"] | np.ndarray | torch.Tensor = "uniform",
    phase: np.ndarray | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`stitch_to_object_grid` of patches kept on disk, read back chunk by chunk.

    Args:
        patches: :class:`SpilledPatches` ``(n, N, N)`` complex64.
        x, y, object_shape, crop, weights: as in :func:`stitch_to_object_grid`.
        phase: optional ``(n,)`` float64 offsets (radians, ``phase_sync.phase_offsets``); each
            patch is multiplied by ``exp(-1j phase)`` (as complex64, the same product as
            ``synchronize_phases(..., inplace=True)``) as it is read.
        device: where the canvas lives and the chunks are splat.

    Returns ``(object (H, W) complex64, coverage (H, W) float32)`` tensors on ``device``, equal
    to the in-memory stitching of the same (rotated) patches: the chunks handed to the
    accumulator are the same (multiples of its own chunk size).
    """
    n, size = len(patches), int(patches.shape[1])
    dev = torch.device(device)
    acc = ObjectGridAccumulator(object_shape, size, crop=crop, weights=weights, device=dev)
    xs = positions_1d(x, n, "x", dev)
    ys = positions_1d(y, n, "y", dev)
    rot = None
    if phase is not None:
        if np.shape(phase) != (n,):
            raise ValueError(f"phase: expected shape ({n},), got {np.shape(phase)}")
        rot = torch.from_numpy(np.exp(-1j * np.asarray(phase, np.float64)).astype(np.complex64))
        rot = rot.to(dev)
    step = SPILL_READ_CHUNKS * chunk_count(None, acc.crop)
    for start in range(0, n, step):
        stop = min(n, start + step)
        tiles = patches.read(start, stop, dev)
        if rot is not None:
            tiles.mul_(rot[start:stop, None, None])
        acc.add(tiles, xs[start:stop], ys[start:stop])
    return acc.result()
