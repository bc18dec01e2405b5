"""Far-field forward model and the photon-count intensity scale."""

from __future__ import annotations

import math

import torch

__all__ = ["pad_and_diffract", "intensity_scale"]


def pad_and_diffract(psi: torch.Tensor) -> torch.Tensor:
    """Far-field diffraction amplitude ``A = sqrt(fftshift(|FFT2 psi|^2 / (H W)))``.

    Args:
        psi: ``(..., H, W)`` exit wave, complex64/complex128 (real input is treated as complex).

    Returns:
        ``(..., H, W)`` real amplitude, float32 for complex64/float32 input (float64 for
        complex128): unnormalized FFT over the last two axes, divided by ``sqrt(H W)``, DC at
        index ``(H//2, W//2)``. Parseval: ``sum A^2 = sum |psi|^2``. (Reference §5.1; upstream
        ``pad=False``: no zero-padding happens here.) Computed as ``|FFT| / sqrt(HW)`` so the
        gradient is finite (0) where the amplitude is exactly 0.
    """
    if psi.ndim < 2:
        raise ValueError(
            f"pad_and_diffract: psi must have shape (..., H, W), got {tuple(psi.shape)}"
        )
    if not psi.is_complex():
        psi = psi.to(torch.complex128 if psi.dtype == torch.float64 else torch.complex64)
    H, W = int(psi.shape[-2]), int(psi.shape[-1])
    spectrum = torch.fft.fftshift(torch.fft.fft2(psi), dim=(-2, -1))
    return torch.abs(spectrum) / math.sqrt(H * W)


def intensity_scale(nphotons: float, N: int) -> float:
    """Closed-form intensity scale ``s = sqrt(nphotons) / (N / 2)`` (reference §3.2).

    ``nphotons`` > 0 (expected photons per pattern), ``N`` the patch size in pixels. Examples:
    nphotons=1e9 -> 988.21 at N=64, 494.11 at N=128; nphotons=1e6, N=64 -> 31.25.
    """
    if isinstance(nphotons, bool) or not (
        isinstance(nphotons, (int, float)) and math.isfinite(nphotons) and nphotons > 0
    ):
        raise ValueError(
            f"intensity_scale: nphotons must be a finite number > 0, got {nphotons!r}; "
            "use e.g. 1e9"
        )
    if isinstance(N, bool) or not isinstance(N, int) or N < 1:
        raise ValueError(f"intensity_scale: N must be a positive int, got {N!r}")
    return math.sqrt(float(nphotons)) / (N / 2.0)
