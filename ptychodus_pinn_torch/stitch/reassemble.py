"""Upstream-compatible post-hoc stitching ``reassemble_position`` (reference §4.4)."""

from __future__ import annotations

import math
from typing import Any, overload

import numpy as np
import torch

from ._inputs import accumulation_dtype, as_tensor_view, check_numeric, chunk_count
from .splat import CanvasAccumulator

__all__ = ["reassemble_position", "reassemble_geometry"]


def _offsets_xy(global_offsets: Any, n: int) -> torch.Tensor:
    """``(n, 2)`` float64 ``[x, y]`` from ``(n, 1, 2, 1)``, ``(n, 1, 1, 2)`` or ``(n, 2)``."""
    off = as_tensor_view(global_offsets, "global_offsets")
    shape = tuple(off.shape)
    if shape not in ((n, 1, 2, 1), (n, 1, 1, 2), (n, 2)):
        raise ValueError(
            f"global_offsets: expected shape ({n}, 1, 2, 1) or ({n}, 1, 1, 2) ([x, y] per patch, "
            f"like upstream coords_offsets), got {shape}"
        )
    if off.is_complex() or not off.is_floating_point():
        raise ValueError(
            f"global_offsets: must be float64 (float32 accepted), got dtype {off.dtype}"
        )
    xy = off.reshape(n, 2).to(torch.float64)
    if not bool(torch.isfinite(xy).all()):
        raise ValueError("global_offsets: offsets must be finite; found NaN or inf")
    return xy


def reassemble_geometry(global_offsets: Any, M: int = 10) -> tuple[int, int, np.ndarray]:
    """Canvas geometry of :func:`reassemble_position` without stitching anything.

    Returns ``(P, pad, com)``: canvas size ``P = M + 2 pad``, the even pad
    ``ceil(max |offsets - com|)`` (+1 if odd), and ``com = mean(offsets)`` as a ``(2,)`` float64
    ``[x, y]``. Canvas pixel ``(row r, col c)`` shows object point
    ``(x = com_x + c - P/2, y = com_y + r - P/2)``.
    """
    off = as_tensor_view(global_offsets, "global_offsets")
    xy = _offsets_xy(off, int(off.shape[0]) if off.ndim else 0)
    _check_m(M, None)
    com = xy.mean(dim=0)
    pad = _pad_for(xy - com)
    return M + 2 * pad, pad, com.cpu().numpy()


def _check_m(M: int, N: int | None) -> None:
    if isinstance(M, bool) or not isinstance(M, int) or M < 2 or M % 2:
        raise ValueError(
            f"M must be an even int >= 2 (size of the central crop kept from each patch), got "
            f"{M!r}; ptychodus uses M=20"
        )
    if N is not None and M > N:
        raise ValueError(f"M={M} is larger than the patch size N={N}; use M <= N")


def _pad_for(adj: torch.Tensor) -> int:
    if adj.numel() == 0:
        return 0
    pad = int(math.ceil(float(adj.abs().max())))
    return pad + (pad % 2)


@overload
def reassemble_position(
    obj_tensor: np.ndarray, global_offsets: Any, M: int = 10, chunk_size: int | None = None
) -> np.ndarray: ...


@overload
def reassemble_position(
    obj_tensor: torch.Tensor, global_offsets: Any, M: int = 10, chunk_size: int | None = None
) -> torch.Tensor: ...


def reassemble_position(
    obj_tensor: np.ndarray | torch.Tensor,
    global_offsets: Any,
    M: int = 10,
    chunk_size: int | None = None,
) -> np.ndarray | torch.Tensor:
    """Stitch patches at global positions like upstream ``tf_helper.reassemble_position``.

    Args:
        obj_tensor: ``(n, N, N, 1)`` complex patches (complex64 upstream; real accepted), numpy
            or torch on any device.
        global_offsets: ``(n, 1, 2, 1)`` or ``(n, 1, 1, 2)`` (also ``(n, 2)``) positions
            ``[x, y]`` in pixels, float64 (float32 accepted; all offset math is float64).
        M: even size of the central crop ``obj[:, N//2 - M//2 : N//2 + M//2]`` kept per patch.
        chunk_size: patches per vectorized chunk (default: automatic, ~1 Mi pixels per chunk).

    Returns:
        ``(P, P, 1)`` complex64, numpy for numpy input, torch on the input's device for torch
        input: ``sum_k T_{adj_k}(pad(crop_k)) / (1e-9 + sum_k T_{adj_k}(pad(ones)))`` with
        ``adj = offsets - mean(offsets)``, ``pad = even(ceil(max |adj|))``, ``P = M + 2 pad``,
        ``T`` the bilinear zero-fill translation by ``+adj`` (see :func:`reassemble_geometry`).
    """
    obj = as_tensor_view(obj_tensor, "obj_tensor")
    check_numeric(obj, "obj_tensor")
    if obj.ndim != 4 or obj.shape[-1] != 1 or obj.shape[1] != obj.shape[2] or obj.shape[0] < 1:
        raise ValueError(
            f"obj_tensor: expected shape (n, N, N, 1) with n >= 1 (channels-last patches, as "
            f"upstream), got {tuple(obj.shape)}"
        )
    n, N = int(obj.shape[0]), int(obj.shape[1])
    _check_m(M, N)
    xy = _offsets_xy(global_offsets, n).to(obj.device)
    adj = xy - xy.mean(dim=0)
    pad = _pad_for(adj)
    P = M + 2 * pad
    lo = N // 2 - M // 2
    acc = CanvasAccumulator((P, P), device=obj.device, dtype=accumulation_dtype(obj))
    step = chunk_count(chunk_size, M)
    for start in range(0, n, step):
        stop = min(n, start + step)
        tiles = obj[start:stop, lo : lo + M, lo : lo + M, 0]
        acc.add(tiles, pad + adj[start:stop, 1], pad + adj[start:stop, 0])
    result = (acc.numerator() / (1e-9 + acc.coverage())).to(torch.complex64)[..., None]
    if isinstance(obj_tensor, np.ndarray):
        return result.cpu().numpy()
    return result
