"""Evaluation of reconstructions against a reference (numpy/scipy only; no torch import).

- :func:`evaluate`: align (sub-pixel shift, global phase, linear phase ramp, amplitude gain) and
  measure (amplitude/phase SSIM, PSNR, RMSE, FRC with resolution at the 1/2-bit, 0.143 and
  upstream SNRt thresholds) in one call; :class:`Evaluation` holds the numbers.
- Building blocks: :func:`align`, :func:`register_shift`, :func:`fourier_shift`,
  :func:`scanned_box`; :func:`ssim`, :func:`psnr`, :func:`rmse`; :func:`frc`.

Rules: specs/EVAL.md.
"""

from ptychodus_pinn_torch.eval.align import (
    Alignment,
    align,
    fourier_shift,
    full_box,
    register_shift,
    scanned_box,
)
from ptychodus_pinn_torch.eval.evaluate import Evaluation, evaluate
from ptychodus_pinn_torch.eval.frc import (
    THRESHOLDS,
    FRCCurve,
    Resolution,
    frc,
    half_bit_threshold,
    snrt_threshold,
)
from ptychodus_pinn_torch.eval.metrics import psnr, rmse, ssim

__all__ = [
    "THRESHOLDS",
    "Alignment",
    "Evaluation",
    "FRCCurve",
    "Resolution",
    "align",
    "evaluate",
    "fourier_shift",
    "frc",
    "full_box",
    "half_bit_threshold",
    "psnr",
    "register_shift",
    "rmse",
    "scanned_box",
    "snrt_threshold",
    "ssim",
]
