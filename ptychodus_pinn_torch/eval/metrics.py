"""Image similarity metrics on real ``(H, W)`` images (numpy/scipy only): SSIM, PSNR, RMSE.

:func:`ssim` is the structural similarity index of Wang et al. (IEEE TIP 13, 600 (2004)) with the
settings of ``skimage.metrics.structural_similarity``'s defaults (7x7 uniform window, K1 = 0.01,
K2 = 0.03, sample covariance, the mean taken over the image minus a 3-pixel border), so numbers are
interchangeable with the scikit-image ones quoted in the project's benchmarks.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _pair(reference: np.ndarray, test: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    reference = np.asarray(reference, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    if reference.shape != test.shape:
        raise ValueError(f"{name}: images differ in shape, {reference.shape} vs {test.shape}")
    return reference, test


def data_range_of(reference: np.ndarray) -> float:
    """``max - min`` of ``reference`` (1.0 for a constant image), the default data range."""
    reference = np.asarray(reference, dtype=np.float64)
    span = float(reference.max() - reference.min()) if reference.size else 0.0
    return span if span > 0 else 1.0


def ssim(
    reference: np.ndarray, test: np.ndarray, *, data_range: float | None = None, win_size: int = 7
) -> float:
    """Mean structural similarity of two real ``(H, W)`` images.

    Args:
        reference, test: real arrays of one shape, each side >= ``win_size``.
        data_range: dynamic range L in ``C1 = (0.01 L)^2, C2 = (0.03 L)^2`` (default:
            :func:`data_range_of` the reference).
        win_size: odd side of the uniform window (7).

    Returns:
        SSIM in [-1, 1]; 1 for identical images.
    """
    x, y = _pair(reference, test, "ssim")
    if win_size < 3 or win_size % 2 == 0:
        raise ValueError(f"ssim win_size must be odd and >= 3, got {win_size}")
    if x.ndim != 2 or min(x.shape) < win_size:
        raise ValueError(
            f"ssim needs (H, W) images with both sides >= {win_size}, got shape {x.shape}; "
            "evaluate a larger region"
        )
    L = data_range_of(x) if data_range is None else float(data_range)
    c1 = (0.01 * L) ** 2
    c2 = (0.03 * L) ** 2
    npix = win_size * win_size
    cov_norm = npix / (npix - 1.0)
    mean = lambda a: ndimage.uniform_filter(a, size=win_size)  # noqa: E731
    ux, uy = mean(x), mean(y)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean())


def rmse(reference: np.ndarray, test: np.ndarray) -> float:
    """Root mean square difference of two real arrays of one shape."""
    x, y = _pair(reference, test, "rmse")
    return float(np.sqrt(np.mean((x - y) ** 2)))


def psnr(reference: np.ndarray, test: np.ndarray, *, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio ``10 log10(L^2 / MSE)`` in dB (``inf`` for identical images);
    ``L`` defaults to :func:`data_range_of` the reference."""
    x, y = _pair(reference, test, "psnr")
    L = data_range_of(x) if data_range is None else float(data_range)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0.0 else float(10.0 * np.log10(L * L / mse))
