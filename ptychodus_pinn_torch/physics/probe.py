"""Probe normalization and the 3x3 complex Gaussian smoothing of ``ProbeIllumination``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .masks import disk_mask

__all__ = ["normalize_probe", "gaussian_kernel_1d", "gaussian_smooth"]


def normalize_probe(probe: torch.Tensor, probe_scale: float) -> torch.Tensor:
    """Upstream probe normalization: ``P / (probe_scale * mean_{N x N} |disk(N) * P|)``.

    Args:
        probe: ``(N, N)`` complex (or real) tensor, the probe guess in arbitrary units.
        probe_scale: positive float (dataclass default 4.0, legacy params 10.0).

    Returns:
        ``(N, N)`` complex64 probe with ``mean |disk * P| = 1 / probe_scale``. The disk mask
        (:func:`disk_mask`) is always used here, whatever ``probe.mask`` says (reference §5.1).
    """
    if not isinstance(probe, torch.Tensor):
        raise ValueError(
            f"normalize_probe: probe must be a torch.Tensor, got {type(probe).__name__}; "
            "wrap it with torch.as_tensor(probe)"
        )
    if probe.ndim != 2 or probe.shape[0] != probe.shape[1]:
        raise ValueError(
            f"normalize_probe: probe must be a square 2-D (N, N) array, got shape "
            f"{tuple(probe.shape)}; select one probe mode, e.g. probe[0]"
        )
    if isinstance(probe_scale, bool) or not (
        isinstance(probe_scale, (int, float)) and math.isfinite(probe_scale) and probe_scale > 0
    ):
        raise ValueError(
            f"normalize_probe: probe_scale must be a finite positive number, got {probe_scale!r}; "
            "use the default 4.0"
        )
    p = probe.to(torch.complex128)
    mask = disk_mask(int(p.shape[-1]), device=p.device).to(torch.float64)
    denom = float(probe_scale) * torch.mean(torch.abs(mask * p))
    if not bool(torch.isfinite(denom)) or float(denom) == 0.0:
        raise ValueError(
            f"normalize_probe: mean |disk * probe| is {float(denom) / probe_scale!r}; the probe "
            "must be finite and non-zero inside the central disk of radius N//4"
        )
    return (p / denom).to(torch.complex64)


def gaussian_kernel_1d(sigma: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Upstream 3-tap Gaussian: ``softmax(-x^2 / (2 sigma^2))`` for ``x = -1, 0, 1``.

    Returns ``(3,)`` tensor of ``dtype`` summing to 1. ``sigma`` must be > 0.
    """
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"gaussian_kernel_1d: sigma must be a finite number > 0, got {sigma!r}")
    x = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    return torch.softmax(-(x**2) / (2.0 * float(sigma) ** 2), dim=0).to(dtype)


def gaussian_smooth(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Smooth the last two axes with the 3x3 Gaussian of ``gaussian_smoothing_sigma``.

    Args:
        x: ``(..., H, W)`` real or complex tensor with ``H, W >= 2``.
        sigma: kernel width in pixels; ``0`` returns ``x`` unchanged, negative is an error.

    Returns:
        Tensor of the shape and dtype of ``x``: the separable 3x3 kernel (outer product of
        :func:`gaussian_kernel_1d`) applied with REFLECT padding (edge pixel not repeated),
        real and imaginary parts separately (reference §5.1 ``ProbeIllumination``).
    """
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
        raise ValueError(
            f"gaussian_smooth: gaussian_smoothing_sigma must be a finite number >= 0, got "
            f"{sigma!r}; use 0 to disable smoothing"
        )
    if sigma == 0:
        return x
    if x.ndim < 2 or x.shape[-1] < 2 or x.shape[-2] < 2:
        raise ValueError(
            f"gaussian_smooth: x must have shape (..., H, W) with H, W >= 2, got "
            f"{tuple(x.shape)}"
        )
    H, W = int(x.shape[-2]), int(x.shape[-1])
    lead = tuple(x.shape[:-2])
    is_complex = x.is_complex()
    planes = torch.view_as_real(x).movedim(-1, -3) if is_complex else x.unsqueeze(-3)
    real_dtype = planes.dtype
    flat = planes.reshape(-1, 1, H, W)
    k1 = gaussian_kernel_1d(float(sigma), dtype=real_dtype).to(x.device)
    kernel = (k1.view(3, 1) * k1.view(1, 3)).view(1, 1, 3, 3)
    out = F.conv2d(F.pad(flat, (1, 1, 1, 1), mode="reflect"), kernel)
    if is_complex:
        out = out.reshape(lead + (2, H, W)).movedim(-3, -1).contiguous()
        return torch.view_as_complex(out)
    return out.reshape(lead + (H, W))
