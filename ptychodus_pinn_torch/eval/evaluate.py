"""One call that aligns a reconstruction to a reference and measures it (numpy/scipy only)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ptychodus_pinn_torch.eval.align import Alignment, Box, align, full_box
from ptychodus_pinn_torch.eval.frc import THRESHOLDS, UPSTREAM_SNRT, FRCCurve, Resolution, frc
from ptychodus_pinn_torch.eval.metrics import data_range_of, psnr, rmse, ssim


@dataclass(frozen=True)
class Evaluation:
    """Quality of an aligned reconstruction against a reference, inside ``box``.

    Attributes:
        box: ``(row slice, column slice)`` compared.
        alignment: what :func:`~ptychodus_pinn_torch.eval.align.align` removed.
        amplitude_ssim, phase_ssim: SSIM (:func:`~ptychodus_pinn_torch.eval.metrics.ssim`, data
            range = the reference's range).
        amplitude_psnr_db, phase_psnr_db: PSNR in dB with the same data ranges.
        amplitude_rmse, phase_rmse_rad: RMSE (amplitude units; radians).
        complex_relative_error: ``||aligned - ref|| / ||ref||`` of the complex fields.
        frc: the FRC curve of the aligned complex box against the reference box.
        resolution: ``{threshold: Resolution}`` for "half_bit", "0.143" and "snrt".
        aligned: ``(h, w)`` complex128, the aligned reconstruction inside the box (gain applied).
        reference: ``(h, w)`` complex128, the reference inside the box.
        pixel_size_m: object pixel size in metres, when known.
    """

    box: Box
    alignment: Alignment
    amplitude_ssim: float
    phase_ssim: float
    amplitude_psnr_db: float
    phase_psnr_db: float
    amplitude_rmse: float
    phase_rmse_rad: float
    complex_relative_error: float
    frc: FRCCurve
    resolution: dict[str, Resolution]
    aligned: np.ndarray = field(repr=False)
    reference: np.ndarray = field(repr=False)
    pixel_size_m: float | None = None

    @property
    def phase_difference(self) -> np.ndarray:
        """``(h, w)`` float64 wrapped phase of ``aligned * conj(reference)`` (radians)."""
        return np.angle(self.aligned * np.conj(self.reference))

    @property
    def amplitude_difference(self) -> np.ndarray:
        """``(h, w)`` float64 ``|aligned| - |reference|``."""
        return np.abs(self.aligned) - np.abs(self.reference)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (``inf`` PSNR written as None), the FRC curve included."""

        def num(value: float) -> float | None:
            return float(value) if math.isfinite(value) else None

        a = self.alignment
        return {
            "box": {
                "rows": [self.box[0].start, self.box[0].stop],
                "cols": [self.box[1].start, self.box[1].stop],
            },
            "pixel_size_m": self.pixel_size_m,
            "alignment": {
                "shift_px": list(a.shift_px),
                "phase_offset_rad": a.phase_offset_rad,
                "phase_ramp_rad_per_px": list(a.phase_ramp_rad_per_px),
                "amplitude_gain": a.amplitude_gain,
            },
            "amplitude_ssim": self.amplitude_ssim,
            "phase_ssim": self.phase_ssim,
            "amplitude_psnr_db": num(self.amplitude_psnr_db),
            "phase_psnr_db": num(self.phase_psnr_db),
            "amplitude_rmse": self.amplitude_rmse,
            "phase_rmse_rad": self.phase_rmse_rad,
            "complex_relative_error": self.complex_relative_error,
            "resolution": {
                name: {
                    "frequency_per_px": r.frequency,
                    "pixels": r.pixels,
                    "metres": r.metres,
                    "crossed": r.crossed,
                }
                for name, r in self.resolution.items()
            },
            "frc": {
                "frequency_per_px": self.frc.frequency.tolist(),
                "frc": self.frc.frc.tolist(),
                "n_pixels": self.frc.n_pixels.tolist(),
                **{f"threshold_{k}": v.tolist() for k, v in self.frc.thresholds.items()},
            },
        }


def evaluate(
    recon: np.ndarray,
    reference: np.ndarray,
    *,
    box: Box | None = None,
    register: bool = True,
    upsample: int = 20,
    taper: float = 0.2,
    snrt: float = UPSTREAM_SNRT,
    pixel_size_m: float | None = None,
) -> Evaluation:
    """Align ``recon`` to ``reference`` and measure it inside ``box``.

    Amplitudes compared: ``|aligned|`` (gain applied) vs ``|reference|``. Phases compared:
    ``angle(reference) + angle(aligned * conj(reference))`` vs ``angle(reference)``, i.e. the
    phase difference is wrapped once, so a reconstruction that matches the reference across the
    +-pi cut is not penalized by 2 pi.

    Args:
        recon, reference: ``(H, W)`` complex objects on the same pixel grid.
        box: region compared (default: everything); e.g.
            :func:`~ptychodus_pinn_torch.eval.align.scanned_box`.
        register: estimate and remove a sub-pixel translation (default True).
        upsample: registration precision 1/upsample pixel (20).
        taper: Tukey fraction of the FRC window (0.2).
        snrt: S of upstream's SNRt threshold (0.1).
        pixel_size_m: object pixel size (metres) for resolutions in metres; must be > 0.

    Returns:
        The :class:`Evaluation`.
    """
    if pixel_size_m is not None and not (math.isfinite(pixel_size_m) and pixel_size_m > 0):
        raise ValueError(f"pixel_size_m must be a finite number > 0, got {pixel_size_m!r}")
    recon = np.asarray(recon)
    reference = np.asarray(reference)
    for name, arr in (("recon", recon), ("reference", reference)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} holds NaN or Inf values; evaluate a finite object")
    box = full_box(recon.shape) if box is None else box
    aligned, alignment = align(recon, reference, box=box, register=register, upsample=upsample)
    ref = reference[box].astype(np.complex128)
    amp_t = np.abs(ref)
    amp_r = np.abs(aligned)
    ph_t = np.angle(ref)
    ph_r = ph_t + np.angle(aligned * np.conj(ref))
    amp_range = data_range_of(amp_t)
    ph_range = data_range_of(ph_t)
    norm = float(np.linalg.norm(ref))
    curve = frc(aligned, ref, taper=taper, snrt=snrt)
    return Evaluation(
        box=box,
        alignment=alignment,
        amplitude_ssim=ssim(amp_t, amp_r, data_range=amp_range),
        phase_ssim=ssim(ph_t, ph_r, data_range=ph_range),
        amplitude_psnr_db=psnr(amp_t, amp_r, data_range=amp_range),
        phase_psnr_db=psnr(ph_t, ph_r, data_range=ph_range),
        amplitude_rmse=rmse(amp_t, amp_r),
        phase_rmse_rad=rmse(ph_t, ph_r),
        complex_relative_error=float(np.linalg.norm(aligned - ref) / norm) if norm else math.inf,
        frc=curve,
        resolution={name: curve.resolution(name, pixel_size_m) for name in THRESHOLDS},
        aligned=aligned,
        reference=ref,
        pixel_size_m=pixel_size_m,
    )
