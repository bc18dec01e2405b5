"""Input checks shared by the stitching functions (numpy or torch in, clear ValueErrors)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .splat import DEFAULT_CHUNK_ELEMENTS


def as_tensor_view(value: Any, name: str) -> torch.Tensor:
    """A torch view of a numpy array or tensor (no copy for numpy), else ValueError."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise ValueError(f"{name}: object arrays are not supported; pass a numeric array")
        return torch.from_numpy(np.ascontiguousarray(value))
    raise ValueError(
        f"{name}: expected a numpy array or torch tensor, got {type(value).__name__}"
    )


def check_numeric(t: torch.Tensor, name: str) -> None:
    if not (t.is_complex() or t.is_floating_point()):
        raise ValueError(
            f"{name}: must be complex (or real floating) patches, got dtype {t.dtype}; "
            "pass complex64 object patches"
        )


def accumulation_dtype(t: torch.Tensor) -> torch.dtype:
    """Real dtype to accumulate ``t`` in: float64 for double-precision input, else float32."""
    return torch.float64 if t.dtype in (torch.complex128, torch.float64) else torch.float32


def positions_1d(value: Any, n: int, name: str, device: torch.device) -> torch.Tensor:
    """``(n,)`` float64 tensor on ``device`` from a 1-D array-like of finite numbers."""
    t = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    if t.is_complex() or t.ndim != 1 or t.shape[0] != n:
        raise ValueError(
            f"{name}: expected a real 1-D array of length {n} (one entry per patch), got shape "
            f"{tuple(t.shape)} dtype {t.dtype}"
        )
    t = t.to(device=device, dtype=torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: positions must be finite; found NaN or inf")
    return t


def chunk_count(chunk_size: int | None, tile: int) -> int:
    """Patches per chunk: ``chunk_size`` if given, else ~``DEFAULT_CHUNK_ELEMENTS`` pixels."""
    if chunk_size is None:
        return max(1, DEFAULT_CHUNK_ELEMENTS // ((tile + 1) * (tile + 1)))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(
            f"chunk_size must be a positive int or None (automatic), got {chunk_size!r}"
        )
    return chunk_size
