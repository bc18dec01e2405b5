"""Inference over a whole scan: every position through the network, stitched onto one object.

:func:`reconstruct` groups all scan points (sequential seeds, ``nsamples = n_positions``), runs
``diffraction_to_obj`` in batches under ``torch.inference_mode`` and stitches each group's merged
object at its group centre (``coords_offsets``) onto the data's ``objectGuess`` pixel grid; on
request it also returns upstream's ``reassemble_position`` canvas, and on request refines the
stitched object against the measured patterns with the physics model (``engine.refine``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ptychodus_pinn_torch.engine.batches import group_for_inference
from ptychodus_pinn_torch.engine.devices import select_device
from ptychodus_pinn_torch.engine.refine import (
    DEFAULT_STEP,
    RefineEpoch,
    RefineOptions,
    RefineReport,
    refine_object,
)
from ptychodus_pinn_torch.engine.result_checks import (
    check_canvas_budget,
    check_positions_reach_grid,
    check_result,
)

#: crop of each patch for upstream's reassemble_position canvas (ptychodus uses M=20)
CANVAS_M = 20
#: how overlapping patches are averaged onto the object grid
WEIGHTINGS = ("probe", "uniform")
#: Gaussian smoothing (pixels) of |P|² for the "probe" weighting (bench/quality.py, ENG-008)
ENVELOPE_SIGMA = 2.0


@dataclass
class Reconstruction:
    """The result of :func:`reconstruct`.

    object: (H, W) complex64 object on the output grid.
    coverage: (H, W) float32, summed stitching weight per pixel (0 = no patch reached it).
    canvas: (P, P, 1) complex64 ``reassemble_position`` canvas (M = 20), or None.
    on_data_grid: True when ``object`` lies on the data's ``objectGuess`` grid.
    origin: (x0, y0) object-pixel coordinates (column, row) of output pixel (0, 0) in the data's
        position frame; (0, 0) on the data grid.
    note: one line about the grid choice (empty on the data grid).
    patches: (n, N, N) complex64 per-group merged objects fed to the stitcher.
    centres: (n, 2) float64 ``[x, y]`` group centres in the data's position frame.
    seconds: wall time of the network pass, stitching and refinement.
    refinement: what the physics refinement did (``refine_epochs > 0``), else None.
    network_object: (H, W) complex64 stitched network output before refinement; None
        without refinement (``object`` is the network's then).
    """

    object: np.ndarray
    coverage: np.ndarray
    canvas: np.ndarray | None
    on_data_grid: bool
    origin: tuple[float, float]
    note: str
    patches: np.ndarray
    centres: np.ndarray
    seconds: float
    refinement: RefineReport | None = None
    network_object: np.ndarray | None = None


def predict_patches(
    model: torch.nn.Module,
    x_scaled: torch.Tensor,
    positions: torch.Tensor,
    *,
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """Run ``model.diffraction_to_obj`` over all groups.

    x_scaled: (B, C, N, N) float32 ``X_full·s``; positions: (B, C, 2) float32 ``[x, y]`` px.
    Returns (B, N, N) complex64 numpy array.
    """
    model.eval()
    out: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, x_scaled.shape[0], batch_size):
            xb = x_scaled[start : start + batch_size].to(device)
            pb = positions[start : start + batch_size].to(device)
            obj = model.diffraction_to_obj(xb, pb).cpu().numpy()
            out.append(obj.astype(np.complex64, copy=False))
    if not out:
        n = int(x_scaled.shape[-1])
        return np.zeros((0, n, n), np.complex64)
    return np.concatenate(out, axis=0)


def covering_grid(
    x: np.ndarray, y: np.ndarray, n: int
) -> tuple[tuple[int, int], tuple[float, float]]:
    """A grid that holds every patch centred at ``(x, y)`` with an ``n/2`` margin.

    x, y: (n_groups,) float64 object-pixel centres. Returns ``((H, W), (x0, y0))``: the grid
    shape and the integer offset to subtract from positions to land on it.
    """
    half = n / 2.0
    x0 = math.floor(float(np.min(x)) - half)
    y0 = math.floor(float(np.min(y)) - half)
    width = math.ceil(float(np.max(x)) + half) - x0 + 1
    height = math.ceil(float(np.max(y)) + half) - y0 + 1
    return (int(height), int(width)), (float(x0), float(y0))


def reconstruct(
    bundle: Any,
    data: Any,
    *,
    batch_size: int = 64,
    device: str = "auto",
    canvas: bool = False,
    weighting: str = "probe",
    phase_sync: bool = True,
    refine_epochs: int = 0,
    refine_step: float = DEFAULT_STEP,
    neighbor_count: int | None = None,
    refine_options: RefineOptions | None = None,
    on_refine_epoch: Callable[[RefineEpoch], bool | None] | None = None,
) -> Reconstruction:
    """Reconstruct the object of scan ``data`` with the trained ``bundle``.

    bundle: ``ModelBundle`` (model, model_config N/gridsize, intensity_scale).
    data: ``RawData`` (``diff3d`` (M, N, N) float32 amplitudes, positions in object pixels,
        optional ``objectGuess`` (H, W) whose grid the output uses).
    batch_size: groups per network call (> 0). device: "auto", "cpu", "cuda", ...
    canvas: also compute upstream's ``reassemble_position`` canvas (M = 20).
    weighting: ``"probe"`` (default) averages overlapping patches with weights = the probe
        intensity envelope (:func:`stitch_weights`), so each object pixel is taken from the
        patches that illuminated it; ``"uniform"`` averages the central N/2 crop of every
        patch equally.
    refine_epochs: after stitching, refine the object for this many passes over the measured
        patterns with the physics model alone (``engine.refine.refine_object``, ENG-014),
        using the data's probe; 0 (default) returns the network's object.
    neighbor_count: nearest neighbours a group is drawn from (gridsize > 1); None takes the
        bundle's training value (4 when it has none).
    refine_step: Adam's initial refinement step relative to the |P|²-weighted mean amplitude
        of the illuminated object (``refine_object``'s ``step``).
    refine_options: the solver and its settings (default: LSQML, ``RefineOptions()``).
    on_refine_epoch: progress of the refinement, called after each pass; returning True stops
        it (``refine_object``'s ``on_epoch``).

    Without ``objectGuess`` the output grid covers all positions plus an N/2 margin and the
    result says so (``on_data_grid`` False, ``origin``, ``note``).

    Raises:
        ValueError: before the network runs, an output grid above the memory budget (ENG-120)
            or positions of which none reaches the ``objectGuess`` grid (ENG-121); after it, an
            object with non-finite pixels or covering under 1 % of its grid (ENG-122).
    """
    from ptychodus_pinn_torch.stitch import (
        reassemble_geometry,
        reassemble_position,
        stitch_to_object_grid,
        synchronize_phases,
    )

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    t0 = time.perf_counter()
    n, gridsize = int(bundle.N), int(bundle.gridsize)
    k = neighbor_count
    if k is None:
        k = int(getattr(getattr(bundle, "training_config", None), "neighbor_count", 4) or 4)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"neighbor_count must be an integer >= 1, got {neighbor_count!r}")
    groups = group_for_inference(data, N=n, gridsize=gridsize, neighbor_count=k)
    centres = groups.centres
    x, y = centres[:, 0], centres[:, 1]
    obj_guess = getattr(data, "objectGuess", None)
    if obj_guess is not None:
        shape = tuple(np.asarray(obj_guess).shape)
        origin = (0.0, 0.0)
        check_positions_reach_grid(shape, x, y, n)  # ENG-121, before the network runs
    else:
        shape, origin = covering_grid(x, y, n)
        check_canvas_budget(shape, x, y)  # ENG-120
    if canvas:
        offsets = centres.reshape(-1, 1, 2, 1).astype(np.float64)
        side = reassemble_geometry(offsets, M=min(CANVAS_M, n))[0]
        check_canvas_budget((side, side), x, y, what="reassemble_position canvas")
    dev = select_device(device)
    model = bundle.model.to(dev)
    scale = float(bundle.intensity_scale)
    patches = predict_patches(
        model, groups.x * scale, groups.positions, batch_size=batch_size, device=dev
    )
    bundle.model.to("cpu")
    if obj_guess is not None:
        on_grid, note = True, ""
    else:
        on_grid = False
        note = (
            f"data has no objectGuess: object on a {shape[0]}x{shape[1]} grid covering all "
            f"positions plus N/2 margin; output pixel (0, 0) is at data position "
            f"x={origin[0]:g}, y={origin[1]:g}"
        )
    crop = _stitch_crop(bundle)
    weights = stitch_weights(bundle) if weighting == "probe" else "uniform"
    if phase_sync:
        patches = synchronize_phases(patches, x, y, _overlap_weights(weights, n, crop))
    obj, coverage = stitch_to_object_grid(
        patches, x - origin[0], y - origin[1], shape, crop=crop, weights=weights
    )
    obj = np.asarray(obj, dtype=np.complex64)
    coverage = np.asarray(coverage, dtype=np.float32)
    check_result(obj, coverage)  # ENG-122: no NaN object, no empty grid, exit 0
    network_obj, refinement = None, None
    if refine_epochs:
        network_obj = obj
        obj, refinement = refine_object(
            network_obj,
            data.diff3d,
            np.column_stack([data.xcoords - origin[0], data.ycoords - origin[1]]),
            data.probeGuess,  # the scan's own probe (RawData holds one (N, N) mode)
            epochs=refine_epochs,
            step=refine_step,
            device=dev,
            on_epoch=on_refine_epoch,
            **(refine_options or RefineOptions()).as_kwargs(),  # type: ignore[arg-type]
        )
        check_result(np.asarray(obj), coverage)
    result_canvas = None
    if canvas:
        result_canvas = np.asarray(
            reassemble_position(patches[..., None], offsets, M=min(CANVAS_M, n)), np.complex64
        )
    return Reconstruction(
        object=obj,
        coverage=np.asarray(coverage, dtype=np.float32),
        canvas=result_canvas,
        on_data_grid=on_grid,
        origin=origin,
        note=note,
        patches=patches,
        centres=centres,
        seconds=time.perf_counter() - t0,
        refinement=refinement,
        network_object=network_obj,
    )


def _overlap_weights(weights: np.ndarray | str, n: int, crop: int | None) -> np.ndarray:
    """(n, n) float32 weights of the pixels that stitching uses: the stitching weights (or ones)
    inside the centre ``crop`` (the whole patch when ``crop`` is None), zero outside."""
    w = np.ones((n, n), np.float32) if isinstance(weights, str) else np.asarray(weights, np.float32)
    if crop is not None:
        mask = np.zeros((n, n), np.float32)
        lo = n // 2 - crop // 2
        mask[lo : lo + crop, lo : lo + crop] = 1.0
        w = w * mask
    return w


def _stitch_crop(bundle: Any) -> int | None:
    """Centre crop of each patch used for stitching: the N/2 support of a padded object."""
    cfg = bundle.model_config
    if bool(getattr(cfg, "pad_object", True)):
        return int(bundle.N) // 2
    return None


def stitch_weights(bundle: Any, sigma: float = ENVELOPE_SIGMA) -> np.ndarray:
    """(N, N) float32 stitching weights: the probe intensity envelope, max 1.

    ``|P|²`` of the bundle's (normalized) probe smoothed by a Gaussian of ``sigma`` pixels, so
    the dark rings and the central dip of a Fresnel-fringed probe (where the network's object is
    poorly constrained yet ``|P|²`` is small but not the neighbours') do not print dots at every
    scan position; then divided by its maximum.
    """
    from scipy.ndimage import gaussian_filter

    probe = np.asarray(bundle.probe)
    if probe.shape != (int(bundle.N), int(bundle.N)):
        probe = bundle.model.probe.detach().cpu().numpy()
    w = np.abs(probe).astype(np.float64) ** 2
    if sigma > 0:
        w = gaussian_filter(w, sigma, mode="constant")
    peak = float(w.max())
    if not np.isfinite(peak) or peak <= 0:
        raise ValueError("the model's probe is zero or not finite; retrain with a real probe")
    return (w / peak).astype(np.float32)
