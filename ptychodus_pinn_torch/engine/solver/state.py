"""What a solver iterates on: object, probe, positions and the measured data, on one device.

Units: the measured amplitudes are divided once by ``sqrt(gain)`` (the fixed intensity gain that
makes the starting object predict the measured total intensity), so inside the solvers the
predicted intensity is plainly ``|FFT(P O_j)|²`` (unitary FFT) and the object keeps the scale of
the starting object. The data are stored unshifted (DC at index 0), so the solvers skip the
``fftshift`` of ``physics.pad_and_diffract``; the two agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ptychodus_pinn_torch.physics.object_patches import PatchSampler

#: "amplitude": Gaussian noise on the amplitude (least squares on sqrt(I), ePIE's modulus
#: projection); "poisson": Poisson likelihood of the counts.
NOISE_MODELS = ("amplitude", "poisson")


@dataclass
class SolverState:
    """Mutable solver state (all tensors on ``obj.device``).

    obj: ``(H, W)`` complex64 object.
    probe: ``(N, N)`` complex64 probe times ``sqrt(gain)``.
    centres: ``(M, 2)`` float64 [x, y] patch centres (CPU; position correction moves them).
    sampler: patch gathers for ``centres``.
    amplitude: ``(M, N, N)`` float32 measured amplitude / ``sqrt(gain)``, DC at index 0.
    gain: the fixed intensity gain (measured intensity = gain x model intensity).
    good: ``(N, N)`` float32 1 on good, 0 on bad detector pixels, DC at index 0 (PHYS-170);
        None when no pixel is bad.
    """

    obj: torch.Tensor
    probe: torch.Tensor
    centres: torch.Tensor
    sampler: PatchSampler
    amplitude: torch.Tensor
    gain: float
    good: torch.Tensor | None = None

    def far_field(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(patches O_j, exit waves P O_j, far fields FFT(P O_j))``, each ``(B, N, N)`` c64."""
        patches = self.sampler.extract(self.obj, idx)
        waves = patches * self.probe
        return patches, waves, torch.fft.fft2(waves, norm="ortho")

    def poisson_nll(self, model_intensity: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Summed Poisson NLL (no constant) of ``(B, N, N)`` model intensities, in measured
        units: ``sum(g u - g a² log(g u))`` with the 1e-12 floor of ``physics.poisson_nll``,
        over the good pixels."""
        pred = self.gain * model_intensity
        counts = self.gain * self.amplitude[idx] ** 2
        nll = pred - counts * torch.log(pred.clamp_min(1e-12))
        if self.good is not None:  # PHYS-170: bad detector pixels carry no data
            nll = nll * self.good
        return nll.sum(dtype=torch.float64)
