"""The training objective of the engine, built from the physics losses (specs/ENGINE.md).

PINN:       ``realspace_weight*realspace + mae_weight*MAE(sX, Â) + nll_weight*NLL((sX)², Â²)``
Supervised: ``amp_weight*MAE(|O|, |Y|) + phase_weight*MAE(wrap(∠O − ∠Y))`` over the object
            patches the model predicts (centre N/2 square when ``probe_big`` is False).
"""

from __future__ import annotations

import torch

from ptychodus_pinn_torch.config.engine import LossWeights
from ptychodus_pinn_torch.model.pinn import ModelOutput
from ptychodus_pinn_torch.physics import centre_mask, mae, poisson_nll, realspace_loss, translate


def wrapped_phase_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``angle(a) - angle(b)`` wrapped to (-π, π]; a, b complex of one shape -> float."""
    d = torch.angle(a) - torch.angle(b)
    return torch.atan2(torch.sin(d), torch.cos(d))


def supervised_loss(
    obj_patches: torch.Tensor, labels: torch.Tensor, weights: LossWeights
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Amplitude and wrapped-phase MAE between predicted patches and labels.

    obj_patches, labels: (B, C, N, N) complex64. Without ``probe_big`` only the centre
    ``N/2 x N/2`` square (where the network has support) is compared.
    Returns (loss 0-d, {"amp_mae", "phase_mae"}).
    """
    if obj_patches.shape != labels.shape:
        raise ValueError(
            f"labels have shape {tuple(labels.shape)}; the model predicts "
            f"{tuple(obj_patches.shape)}"
        )
    amp_err = torch.abs(torch.abs(obj_patches) - torch.abs(labels))
    ph_err = torch.abs(wrapped_phase_difference(obj_patches, labels))
    if weights.probe_big:
        amp_mae, phase_mae = amp_err.mean(), ph_err.mean()
    else:
        mask = centre_mask(int(labels.shape[-1]), device=labels.device).to(amp_err.dtype)
        denom = mask.sum() * labels.shape[0] * labels.shape[1]
        amp_mae = (amp_err * mask).sum() / denom
        phase_mae = (ph_err * mask).sum() / denom
    terms = {"amp_mae": weights.amp * amp_mae, "phase_mae": weights.phase * phase_mae}
    return terms["amp_mae"] + terms["phase_mae"], terms


def compute_loss(
    out: ModelOutput,
    x_scaled: torch.Tensor,
    labels: torch.Tensor | None,
    weights: LossWeights,
    *,
    supervised: bool,
    positions: torch.Tensor | None = None,
    bad_pixels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The engine's loss for one batch.

    out: ``ModelOutput`` (obj (B,N,N) c64, pred_amp (B,C,N,N) f32, pred_intensity, obj_patches
        (B,C,N,N) c64). x_scaled: (B,C,N,N) float32 measured amplitudes ``s·X_full`` (photon
        units). labels: (B,C,N,N) complex64 or None. positions: (B,C,2) model positions (for
        the real-space target, which is label channel 0 moved to the group centre).
    bad_pixels: None or a bool detector mask (True = bad), ``(N, N)`` or ``(B, 1, N, N)``;
        the NLL and MAE leave those pixels out (PHYS-170).
    Returns (loss 0-d float32, weighted terms by name).
    """
    if supervised:
        if labels is None:
            raise ValueError("supervised loss needs labels (Y); the batch has none")
        return supervised_loss(out.obj_patches, labels, weights)
    terms: dict[str, torch.Tensor] = {}
    if weights.nll > 0:
        terms["nll"] = weights.nll * poisson_nll(x_scaled * x_scaled, out.pred_intensity,
                                                 bad_pixels=bad_pixels)
    if weights.mae > 0:
        terms["mae"] = weights.mae * mae(x_scaled, out.pred_amp, bad_pixels=bad_pixels)
    if weights.realspace > 0:
        if labels is None:
            raise ValueError("realspace_weight > 0 needs labels (Y); the batch has none")
        target = labels[:, 0]
        if positions is not None:
            target = translate(target, -positions[:, 0].to(torch.float32))
        terms["realspace"] = weights.realspace * realspace_loss(
            out.obj,
            target,
            tv_weight=weights.tv,
            realspace_mae_weight=weights.realspace_mae,
            probe_big=weights.probe_big,
        )
    if not terms:
        raise ValueError("all loss weights are 0; set nll_weight=1 (upstream default)")
    total = sum(terms.values(), start=x_scaled.new_zeros(()))
    return total, terms


__all__ = ["LossWeights", "compute_loss", "supervised_loss", "wrapped_phase_difference"]
