"""Normalization of grouped diffraction and the intensity scale (upstream reference §3.1-3.2).

Amplitude arrays are accepted in either layout used by the data layer: grouped channels-last
``(B, N, N, C)`` or flat ``(M, N, N)``. Both sum over axes 1 and 2 (the detector pixels) and
average over every remaining axis (groups and channels), so one function serves both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ptychodus_pinn_torch.data.errors import DataError


def _check_nphotons(nphotons: float) -> None:
    if not np.isfinite(nphotons) or nphotons <= 0:
        raise DataError(f"nphotons must be a positive finite photon count, got {nphotons!r}")


def _check_patch_size(N: int) -> None:
    if int(N) != N or N <= 0:
        raise DataError(f"N must be a positive integer patch size, got {N!r}")


def _mean_total_intensity(amplitudes: np.ndarray, name: str) -> float:
    """Mean over groups/channels of the per-pattern sum of squared amplitudes (float64)."""
    a = np.asarray(amplitudes)
    if a.ndim not in (3, 4):
        raise DataError(
            f"{name} must be (M, N, N) or (B, N, N, C) amplitudes, got shape {a.shape}; "
            "pass the diffraction amplitudes"
        )
    if a.size == 0:
        raise DataError(f"{name} is empty (shape {a.shape}); pass at least one pattern")
    if np.iscomplexobj(a):
        raise DataError(f"{name} is complex ({a.dtype}); pass real amplitudes sqrt(counts)")
    totals = np.sum(np.square(a, dtype=np.float64), axis=(1, 2))
    mean_total = float(np.mean(totals))
    if not np.isfinite(mean_total):
        raise DataError(f"{name} contains non-finite values; clean the data first")
    if mean_total <= 0.0:
        raise DataError(
            f"{name} is all zeros (mean total intensity {mean_total}); nothing to normalize, "
            "check that the patterns were loaded correctly"
        )
    return mean_total


def normalize_data(data: np.ndarray | Mapping[str, Any], N: int) -> np.ndarray:
    """Scale diffraction amplitudes so that the mean per-pattern total intensity is ``(N/2)**2``.

    ``s_norm = sqrt((N/2)**2 / mean_{b,c}(sum_{h,w} x**2))`` and the result is ``s_norm * x``,
    computed in float64 and returned as float32. One scalar for the whole input (duplicated
    patterns in a grouped tensor count as often as they appear).

    Args:
        data: amplitudes ``(B, N, N, C)`` or ``(M, N, N)`` (any real dtype, sqrt of counts), or a
            grouped dictionary holding them under ``"diffraction"``.
        N: patch size in pixels (the normalization target is ``(N/2)**2``).

    Returns:
        float32 array of the input's shape: normalized amplitudes (``X_full``).

    Raises:
        DataError: bad ``N``, a missing ``"diffraction"`` key, or all-zero / non-finite data.
    """
    if isinstance(data, Mapping):
        if "diffraction" not in data:
            raise DataError(
                "normalize_data got a dictionary without key 'diffraction'; pass the dictionary "
                "returned by RawData.generate_grouped_data or the amplitude array itself"
            )
        data = data["diffraction"]
    _check_patch_size(N)
    x = np.asarray(data)
    mean_total = _mean_total_intensity(x, "diffraction")
    s_norm = np.sqrt((N / 2.0) ** 2 / mean_total)
    return (x.astype(np.float64) * s_norm).astype(np.float32)


def intensity_scale(nphotons: float, N: int) -> float:
    """Closed-form intensity scale ``sqrt(nphotons) / (N/2)`` used by upstream training.

    Args:
        nphotons: mean photon count per pattern (> 0).
        N: patch size in pixels (> 0).

    Returns:
        the scale as a Python float (e.g. 31.25 for nphotons=1e6, N=64).

    Raises:
        DataError: non-positive or non-finite ``nphotons`` or ``N``.
    """
    _check_nphotons(nphotons)
    _check_patch_size(N)
    return float(np.sqrt(float(nphotons)) / (N / 2.0))


def dataset_intensity_scale(amplitudes: np.ndarray, nphotons: float) -> float:
    """Dataset-derived intensity scale ``sqrt(nphotons / mean_{b,c}(sum_{h,w} x**2))``.

    This is upstream's ``diffsim.scale_nphotons`` variant. For ``X_full`` (normalized by
    :func:`normalize_data`) it equals :func:`intensity_scale` up to float32 rounding.

    Args:
        amplitudes: ``(B, N, N, C)`` or ``(M, N, N)`` real amplitudes.
        nphotons: mean photon count per pattern (> 0).

    Returns:
        the scale as a Python float.
    """
    _check_nphotons(nphotons)
    return float(np.sqrt(float(nphotons) / _mean_total_intensity(amplitudes, "amplitudes")))
