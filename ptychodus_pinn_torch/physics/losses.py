"""Training losses: Poisson NLL, MAE, and the optional real-space loss (reference §5.1)."""

from __future__ import annotations

import math

import torch

from .masks import centre_mask

__all__ = [
    "complex_mae", "good_pixel_mean", "mae", "poisson_nll", "realspace_loss", "total_variation",
]


def _same_shape(name: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"{name}: the two inputs must have the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}; compare target and prediction of the same batch layout"
        )


def good_pixel_mean(values: torch.Tensor, bad_pixels: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values`` over the detector pixels that are not bad (PHYS-170).

    Args:
        values: ``(..., N, N)`` per-pixel loss values.
        bad_pixels: None, or a bool mask (True = bad) broadcastable to ``values`` whose last two
            axes are ``(N, N)``: ``(N, N)`` for one detector, ``(B, 1, N, N)`` per pattern.

    Returns:
        0-d tensor. With no mask, or a mask without any bad pixel, exactly ``values.mean()``
        (the same operation, so bit-identical); else ``sum(values·good) / count(good)``.
    Raises ValueError when the mask's last axes differ from the patterns' or every pixel is bad.
    """
    if bad_pixels is None:
        return torch.mean(values)
    if tuple(bad_pixels.shape[-2:]) != tuple(values.shape[-2:]):
        raise ValueError(
            f"bad_pixels has shape {tuple(bad_pixels.shape)} but the patterns are "
            f"{tuple(values.shape[-2:])}; the mask must be (N, N) like one pattern"
        )
    bad = bad_pixels.to(device=values.device, dtype=torch.bool)
    if not bool(bad.any()):
        return torch.mean(values)
    good = torch.broadcast_to(~bad, values.shape)
    count = good.sum()
    if int(count) == 0:
        raise ValueError("bad_pixels marks every detector pixel bad; no data left for the loss")
    return torch.where(good, values, values.new_zeros(())).sum() / count.to(values.dtype)


def poisson_nll(
    y_true_intensity: torch.Tensor, y_pred_intensity: torch.Tensor, floor: float = 1e-12,
    *, bad_pixels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Poisson negative log-likelihood without the constant: ``mean(ŷ - y log max(ŷ, floor))``.

    Args:
        y_true_intensity: ``(...)`` float tensor ``y`` (upstream ``(s X)^2``), photons.
        y_pred_intensity: same shape, predicted intensity ``ŷ >= 0``.
        floor: positive floor applied to ``ŷ`` inside the log only, so that ``ŷ = 0`` gives a
            finite loss (reference §8F: ε ≥ 1e-12; upstream TF has none).
        bad_pixels: optional bool detector mask (True = bad), see :func:`good_pixel_mean`.

    Returns:
        0-d tensor, the mean over all elements (Keras default reduction of
        ``tf.nn.log_poisson_loss(y, log ŷ, compute_full_loss=False)``), or over the good
        pixels only when ``bad_pixels`` marks some (PHYS-170).
    """
    _same_shape("poisson_nll", y_true_intensity, y_pred_intensity)
    if not (isinstance(floor, (int, float)) and math.isfinite(floor) and floor > 0):
        raise ValueError(f"poisson_nll: floor must be a finite number > 0, got {floor!r}")
    log_pred = torch.log(torch.clamp(y_pred_intensity, min=float(floor)))
    return good_pixel_mean(y_pred_intensity - y_true_intensity * log_pred, bad_pixels)


def mae(a: torch.Tensor, b: torch.Tensor, *,
        bad_pixels: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error ``mean |a - b|`` over all elements (complex: modulus of the difference).

    ``a``, ``b``: tensors of one shape. ``bad_pixels``: optional bool detector mask (True =
    bad) whose pixels are left out of the mean (:func:`good_pixel_mean`). Returns a 0-d real
    tensor.
    """
    _same_shape("mae", a, b)
    return good_pixel_mean(torch.abs(a - b), bad_pixels)


def total_variation(obj: torch.Tensor) -> torch.Tensor:
    """Squared-difference total variation over the last two axes, summed (not averaged).

    ``obj``: ``(..., H, W)`` real or complex. Returns a 0-d tensor
    ``sum (x[..., :, 1:] - x[..., :, :-1])^2 + sum (x[..., 1:, :] - x[..., :-1, :])^2``, computed on
    the real and on the imaginary part and added (upstream ``total_variation_complex``).
    """
    parts = (obj.real, obj.imag) if obj.is_complex() else (obj,)
    total = obj.real.new_zeros(())
    for p in parts:
        total = total + torch.sum((p[..., :, 1:] - p[..., :, :-1]) ** 2)
        total = total + torch.sum((p[..., 1:, :] - p[..., :-1, :]) ** 2)
    return total


def complex_mae(target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Amplitude plus phase MAE: ``mean | |t| - |p| | + mean |angle(t) - angle(p)|``.

    ``target``, ``pred``: tensors of one shape (real input has phase 0 or π). Returns 0-d.
    Upstream decorates its MAE with ``complexify_sum_amp_phase`` (split into amplitude and phase,
    apply, add); see specs/PHYS.md for how we read it.
    """
    _same_shape("complex_mae", target, pred)
    amp = torch.mean(torch.abs(torch.abs(target) - torch.abs(pred)))
    phase = torch.mean(torch.abs(torch.angle(target) - torch.angle(pred)))
    return amp + phase


def realspace_loss(
    pred_obj: torch.Tensor,
    target_obj: torch.Tensor,
    *,
    tv_weight: float,
    realspace_mae_weight: float,
    probe_big: bool,
) -> torch.Tensor:
    """Real-space regularizer of upstream ``realspace_loss``.

    Args:
        pred_obj: ``(..., N, N)`` complex predicted object (``trimmed_obj``).
        target_obj: same shape, the ground-truth object (``center_channels(Y_I, coords)``).
        tv_weight, realspace_mae_weight: non-negative weights; a term with weight 0 is skipped.
        probe_big: if False the prediction is first multiplied by :func:`centre_mask`.

    Returns:
        0-d tensor ``tv_weight * total_variation(pred) + realspace_mae_weight *
        complex_mae(target, pred)``.
    """
    for name, w in (("tv_weight", tv_weight), ("realspace_mae_weight", realspace_mae_weight)):
        if not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0):
            raise ValueError(f"realspace_loss: {name} must be a finite number >= 0, got {w!r}")
    _same_shape("realspace_loss", pred_obj, target_obj)
    if pred_obj.ndim < 2 or pred_obj.shape[-1] != pred_obj.shape[-2]:
        raise ValueError(
            f"realspace_loss: pred_obj must have shape (..., N, N), got {tuple(pred_obj.shape)}"
        )
    if not probe_big:
        mask = centre_mask(int(pred_obj.shape[-1]), device=pred_obj.device)
        pred_obj = pred_obj * mask.to(pred_obj.real.dtype)
    loss = pred_obj.real.new_zeros(())
    if tv_weight > 0:
        loss = loss + float(tv_weight) * total_variation(pred_obj)
    if realspace_mae_weight > 0:
        loss = loss + float(realspace_mae_weight) * complex_mae(target_obj, pred_obj)
    return loss
