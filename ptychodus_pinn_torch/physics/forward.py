"""Far-field forward model; re-exports the photon-count intensity scale of the data layer."""

from __future__ import annotations

import math

import torch

# One implementation of the closed-form scale s = sqrt(nphotons) / (N/2) (reference §3.2) lives
# in the data layer (numpy); physics re-exports it so model code finds it next to the physics.
from ptychodus_pinn_torch.data.normalize import intensity_scale

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
