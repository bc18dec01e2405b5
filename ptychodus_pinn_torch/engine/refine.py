"""Physics refinement of a stitched object against the measured patterns (optional, after the
network).

The network's stitched object is the starting point of a short gradient-based ptychographic
reconstruction that uses the same far-field model as training (probe x object patch ->
``pad_and_diffract`` -> Poisson NLL against the measured intensities) but optimizes the object
pixels directly, so the overlap between scan positions constrains every pixel. It is not part of
PtychoPINN: ``reconstruct(..., refine_epochs=0)`` (the default) returns the network's object
untouched, and results report both (specs/ENGINE.md ENG-014).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ptychodus_pinn_torch.physics import pad_and_diffract, poisson_nll
from ptychodus_pinn_torch.physics.object_patches import PatchSampler

#: Initial Adam step relative to the mean amplitude of the illuminated start object.
DEFAULT_STEP = 0.02
#: Patterns per gradient step.
DEFAULT_BATCH = 64


@dataclass(frozen=True)
class RefineReport:
    """What a refinement did: epochs run, mean Poisson NLL (per pixel, measured intensity
    units) of all patterns before and after, the fixed intensity gain and the wall time."""

    epochs: int
    nll_before: float
    nll_after: float
    gain: float
    seconds: float


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _mean_nll(
    obj: torch.Tensor,
    sampler: PatchSampler,
    probe: torch.Tensor,
    intensity: torch.Tensor,
    gain: float,
    batch: int,
) -> float:
    """Mean Poisson NLL over all patterns (no gradient; one device read)."""
    total = torch.zeros((), dtype=torch.float64, device=obj.device)
    with torch.no_grad():
        for idx in torch.arange(len(sampler), device=obj.device).split(batch):
            pred = gain * pad_and_diffract(sampler.extract(obj, idx) * probe) ** 2
            total += poisson_nll(intensity[idx], pred).double() * idx.numel()
    return float(total) / max(len(sampler), 1)


# callers may hold inference mode or no_grad (e.g. around reconstruct); this needs autograd
@torch.inference_mode(False)
@torch.enable_grad()
def refine_object(
    obj: np.ndarray,
    amplitudes: np.ndarray,
    centres: np.ndarray,
    probe: np.ndarray,
    *,
    epochs: int,
    batch_size: int = DEFAULT_BATCH,
    step: float = DEFAULT_STEP,
    seed: int = 0,
    device: str | torch.device = "cpu",
    on_epoch: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, RefineReport]:
    """Refine ``obj`` so that ``probe * patch`` explains the measured ``amplitudes``.

    Args:
        obj: ``(H, W)`` complex64 starting object (the stitched network output).
        amplitudes: ``(M, N, N)`` float32 measured diffraction amplitudes (``sqrt`` of counts,
            fftshifted like ``diff3d``), any overall scale.
        centres: ``(M, 2)`` float64 ``[x, y]`` patch centres on ``obj``'s pixel grid.
        probe: ``(N, N)`` complex64 probe (any scale: a fixed gain fitted from the starting
            object absorbs it).
        epochs: passes over all patterns (>= 0; 0 returns ``obj`` unchanged).
        batch_size: patterns per Adam step (>= 1).
        step: initial Adam learning rate relative to the mean amplitude of the illuminated
            start object (weighted by |P|²); it decays to 0 over the run (cosine), so more
            epochs never end noisier.
        seed: seeds the order of the patterns.
        device: torch device for the computation.
        on_epoch: called as ``on_epoch(epoch, epochs)`` after each pass.

    Returns:
        ``(refined (H, W) complex64, RefineReport)``. Pixels no probe reaches keep their value.

    Raises:
        ValueError: wrong shapes, non-finite input, or bad settings (the message names it).
    """
    t0 = time.perf_counter()
    epochs = _check_int("refine epochs", epochs, 0)
    batch_size = _check_int("refine batch_size", batch_size, 1)
    if not (isinstance(step, int | float) and math.isfinite(step) and step > 0):
        raise ValueError(f"refine step must be a finite number > 0, got {step!r}")
    obj = np.asarray(obj)
    amplitudes = np.asarray(amplitudes)
    centres = np.asarray(centres, dtype=np.float64)
    probe = np.asarray(probe)
    if obj.ndim != 2:
        raise ValueError(f"object must be (H, W) complex, got shape {obj.shape}")
    if amplitudes.ndim != 3 or amplitudes.shape[1] != amplitudes.shape[2]:
        raise ValueError(f"amplitudes must be (M, N, N), got shape {amplitudes.shape}")
    m, n = amplitudes.shape[0], amplitudes.shape[1]
    if centres.shape != (m, 2):
        raise ValueError(f"centres must be ({m}, 2) [x, y] for {m} patterns, got {centres.shape}")
    if probe.shape != (n, n):
        raise ValueError(f"probe must be ({n}, {n}) for {n}x{n} patterns, got {probe.shape}")
    for name, arr in (("object", obj), ("amplitudes", amplitudes), ("probe", probe)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(
                f"{name} contains NaN or infinite values; refinement needs finite input"
            )
    if epochs == 0 or m == 0:
        return obj.astype(np.complex64), RefineReport(0, math.nan, math.nan, math.nan, 0.0)

    dev = torch.device(device)
    o = torch.from_numpy(obj.astype(np.complex64)).to(dev)
    p = torch.from_numpy(probe.astype(np.complex64)).to(dev)
    intensity = torch.from_numpy(amplitudes.astype(np.float32)).to(dev) ** 2
    sampler = PatchSampler(torch.from_numpy(centres), obj.shape, n, dev)
    # one pass over the start object: its predicted total intensity (for the fixed gain) and
    # its |P|²-weighted mean amplitude (the scale of the Adam step)
    weight = (p.abs() ** 2).to(torch.float64)
    sums = torch.zeros(2, dtype=torch.float64, device=dev)
    with torch.no_grad():
        for idx in torch.arange(m, device=dev).split(batch_size):
            patches = sampler.extract(o, idx)
            sums[0] += (pad_and_diffract(patches * p) ** 2).sum(dtype=torch.float64)
            sums[1] += (patches.abs() * weight).sum(dtype=torch.float64)
    predicted, weighted_amp = sums.tolist()
    if not predicted > 0:
        raise ValueError("the starting object and probe predict no intensity; nothing to refine")
    gain = float(intensity.sum(dtype=torch.float64)) / predicted
    scale = weighted_amp / (m * float(weight.sum()))
    nll_before = _mean_nll(o, sampler, p, intensity, gain, batch_size)

    param = torch.nn.Parameter(torch.view_as_real(o).clone())
    optimizer = torch.optim.Adam([param], lr=step * scale)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, epochs * math.ceil(m / batch_size)
    )
    gen = torch.Generator().manual_seed(int(seed))
    for epoch in range(1, epochs + 1):
        order = torch.randperm(m, generator=gen).to(dev)
        for idx in order.split(batch_size):
            optimizer.zero_grad(set_to_none=True)
            current = torch.view_as_complex(param)
            pred = gain * pad_and_diffract(sampler.extract(current, idx) * p) ** 2
            poisson_nll(intensity[idx], pred).backward()
            optimizer.step()
            schedule.step()
        if on_epoch is not None:
            on_epoch(epoch, epochs)
    refined = torch.view_as_complex(param.detach())
    nll_after = _mean_nll(refined, sampler, p, intensity, gain, batch_size)
    if not math.isfinite(nll_after):
        raise ValueError("refinement diverged (non-finite loss); lower the refine step")
    report = RefineReport(epochs, nll_before, nll_after, gain, time.perf_counter() - t0)
    return refined.cpu().numpy().astype(np.complex64), report
