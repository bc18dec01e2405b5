"""Inference over a whole scan: every position through the network, stitched onto one object.

:func:`reconstruct` groups all scan points (sequential seeds, ``nsamples = n_positions``), runs
``diffraction_to_obj`` in batches under ``torch.inference_mode`` and stitches each group's merged
object at its group centre (``coords_offsets``) onto the data's ``objectGuess`` pixel grid; on
request it also returns upstream's ``reassemble_position`` canvas, and on request refines the
stitched object against the measured patterns with the physics model (``engine.refine``).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ptychodus_pinn_torch.config.engine import channels_last_on
from ptychodus_pinn_torch.data.grouped import group_coordinates
from ptychodus_pinn_torch.data.paging import CHUNK_BYTES, pattern_totals, release_pages
from ptychodus_pinn_torch.engine.devices import select_device
from ptychodus_pinn_torch.engine.memory_format import in_memory_format
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
from ptychodus_pinn_torch.engine.threads import check_threads, phase_threads

if TYPE_CHECKING:
    from ptychodus_pinn_torch.stitch.spill import SpilledPatches

#: crop of each patch for upstream's reassemble_position canvas (ptychodus uses M=20)
CANVAS_M = 20
#: how overlapping patches are averaged onto the object grid
WEIGHTINGS = ("probe", "uniform")
#: Gaussian smoothing (pixels) of |P|² for the "probe" weighting (bench/quality.py, ENG-008)
ENVELOPE_SIGMA = 2.0
#: bytes of kept crops held in memory before they go to a temporary file (ENG-250)
DEFAULT_PATCH_MEMORY = 512 * 2**20


def check_patch_memory(value: object) -> int | None:
    """``patch_memory`` of :func:`reconstruct`: None or an int >= 0 (bytes), else ValueError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(
            f"patch_memory must be a number of bytes >= 0 (0: always on disk) or None (always "
            f"in memory), got {value!r}"
        )
    return int(value)


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
    patches: (n, N, N) complex64 per-group merged objects fed to the stitcher
        (phase-synchronized); None with ``keep_patches=False``.
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
    patches: np.ndarray | None
    centres: np.ndarray
    seconds: float
    refinement: RefineReport | None = None
    network_object: np.ndarray | None = None


def _input_scale(diff3d: np.ndarray, nn: np.ndarray, n: int) -> float:
    """Upstream's ``X_full`` normalization ``sqrt((N/2)² / mean_{b,c} sum x²)`` over the
    groups ``nn`` (B, C), read chunk by chunk from ``diff3d`` (M, N, N) without a copy of the
    scan (the pages of a memory map are released chunk by chunk, DATA-184); equals
    ``data.normalize.normalize_data`` of the grouped array."""
    energy = pattern_totals(diff3d)
    mean_total = float(np.mean(energy[nn]))
    if not np.isfinite(mean_total) or mean_total <= 0:
        raise ValueError(
            f"the scan's diffraction amplitudes are all zero or not finite (mean total "
            f"intensity {mean_total}); check that the patterns were loaded correctly"
        )
    return math.sqrt((n / 2.0) ** 2 / mean_total)


def network_batches(
    model: torch.nn.Module,
    diff3d: np.ndarray,
    nn: np.ndarray,
    positions: torch.Tensor,
    *,
    scale: float,
    batch_size: int,
    device: torch.device,
    window: tuple[slice, slice] = (slice(None), slice(None)),
    on_batch: Callable[[int, int], None] | None = None,
    channels_last: bool = False,
    bf16: bool = False,
) -> Iterator[tuple[int, torch.Tensor]]:
    """The network pass of :func:`predict_patches` one batch at a time: yields ``(start,
    patches)`` with ``patches`` (b, h, w) complex64 on ``device``, the groups
    ``[start, start + b)``; same arguments as :func:`predict_patches`."""
    model.eval()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    b_total, c = nn.shape
    n = int(diff3d.shape[-1])
    read = 0
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16,
                                                    enabled=bf16):
            for start in range(0, b_total, batch_size):
                members = nn[start : start + batch_size]
                batch = np.asarray(diff3d[members.reshape(-1)], dtype=np.float32)  # a copy
                read += batch.nbytes
                if read >= CHUNK_BYTES:  # a memory map's touched pages leave the RSS (DATA-184)
                    release_pages(diff3d)
                    read = 0
                xb = torch.from_numpy(batch).to(device).view(len(members), c, n, n).mul_(scale)
                pb = positions[start : start + batch_size].to(device)
                obj = model.diffraction_to_obj(in_memory_format(xb, channels_last), pb)
                yield start, obj[:, window[0], window[1]]
                if on_batch is not None:
                    on_batch(start // batch_size + 1, -(-b_total // batch_size))
    finally:
        if channels_last:
            model.to(memory_format=torch.contiguous_format)


def predict_patches(
    model: torch.nn.Module,
    diff3d: np.ndarray,
    nn: np.ndarray,
    positions: torch.Tensor,
    *,
    scale: float,
    batch_size: int,
    device: torch.device,
    window: tuple[slice, slice] = (slice(None), slice(None)),
    on_batch: Callable[[int, int], None] | None = None,
    channels_last: bool = False,
    bf16: bool = False,
) -> torch.Tensor:
    """Run ``model.diffraction_to_obj`` over all groups, streaming the scan in batches.

    diff3d: (M, N, N) amplitudes (numpy or a memory map; only one batch is read at a time);
    nn: (B, C) int64 group members; positions: (B, C, 2) float32 ``[x, y]`` px; scale: the
    factor that turns amplitudes into the network input (``X_full`` normalization times the
    intensity scale); window: the rows and columns of each output patch to keep; on_batch:
    called after every batch with (batches done, batches in all) (ENG-128); channels_last: run
    the network in channels-last memory format (the model's weights are converted for the call
    and converted back after); bf16: bfloat16 autocast of the network (its complex steps stay
    float32).
    Returns (B, h, w) complex64 on ``device`` (h, w: the window's size).
    """
    n = int(diff3d.shape[-1])
    rows, cols = range(n)[window[0]], range(n)[window[1]]
    out = torch.empty((nn.shape[0], len(rows), len(cols)), dtype=torch.complex64, device=device)
    with closing(network_batches(
        model, diff3d, nn, positions, scale=scale, batch_size=batch_size, device=device,
        window=window, on_batch=on_batch, channels_last=channels_last, bf16=bf16,
    )) as batches:  # closed at once on an error: inference mode and memory format restored
        for start, obj in batches:
            out[start : start + obj.shape[0]] = obj
    return out


def predict_to_disk(
    model: torch.nn.Module,
    diff3d: np.ndarray,
    nn: np.ndarray,
    positions: torch.Tensor,
    store: SpilledPatches,
    *,
    scale: float,
    batch_size: int,
    device: torch.device,
    window: tuple[slice, slice] = (slice(None), slice(None)),
    on_batch: Callable[[int, int], None] | None = None,
    channels_last: bool = False,
    bf16: bool = False,
) -> None:
    """:func:`predict_patches` writing each batch's (b, h, w) complex64 patches to ``store``
    (``stitch.SpilledPatches`` of shape (B, h, w)) instead of holding them (ENG-250)."""
    with closing(network_batches(
        model, diff3d, nn, positions, scale=scale, batch_size=batch_size, device=device,
        window=window, on_batch=on_batch, channels_last=channels_last, bf16=bf16,
    )) as batches:  # closed at once on an error: inference mode and memory format restored
        for _, obj in batches:
            store.append(obj)


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
    refine_metric: Callable[[np.ndarray], Mapping[str, float]] | None = None,
    keep_patches: bool = True,
    threads: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    channels_last: bool | None = None,
    bf16: bool = False,
    patch_memory: int | None = DEFAULT_PATCH_MEMORY,
    spill_dir: str | Path | None = None,
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
    refine_metric: called with the ``(H, W)`` complex64 object (this result's grid) after
        each refinement pass; its numbers go into ``RefineEpoch.metrics`` (e.g. SSIM against
        a known truth; ``refine_object``'s ``metric``).

    threads: CPU threads of the network pass and of the refinement (>= 1); None: the phase
        defaults of ``engine.threads`` (ENG-205).
    channels_last: run the network in channels-last memory format; None (default): on the
        CPU, where it measured ~2x faster, off elsewhere (ENG-206).
    bf16: bfloat16 autocast of the network pass (default off; ENG-206).
    keep_patches: return the per-group patches (``Reconstruction.patches``); False keeps only
        the stitched crop of each patch plus one pixel (1/3.5 of the memory at the default
        crop N/2), which is what large scans need (``canvas=True`` keeps them anyway).
    on_batch: progress of the network pass, called after every batch with (batches done,
        batches in all), e.g. for a progress bar (ENG-128).
    patch_memory: most bytes the kept crops (``keep_patches=False``) may take in memory
        (default :data:`DEFAULT_PATCH_MEMORY`, 512 MiB: ~58,000 positions at N = 64); above it
        they go to a temporary file in ``spill_dir`` and are read back chunk by chunk for the
        phase synchronization and the stitching (ENG-250), with the same object; None keeps
        them in memory whatever their size. Not used with ``keep_patches=True`` or
        ``canvas=True`` (whole patches are returned).
    spill_dir: folder of that temporary file (default: ``tempfile.gettempdir()``, i.e.
        ``$TMPDIR`` or /tmp); its free space is checked before the network pass, the file is
        deleted when ``reconstruct`` returns or fails.

    The scan is streamed through the network in batches straight from ``data.diff3d`` (which
    may be a memory map); the patches, the phase synchronization and the stitching stay on the
    model's device until the final object (ENG-204).

    Without ``objectGuess`` the output grid covers all positions plus an N/2 margin and the
    result says so (``on_data_grid`` False, ``origin``, ``note``).

    Raises:
        ValueError: before the network runs, an output grid above the memory budget (ENG-120)
            or positions of which none reaches the ``objectGuess`` grid (ENG-121), or too
            little free disk for spilled crops, or a bad ``patch_memory``/``spill_dir``
            (ENG-250); after it, an
            object with non-finite pixels or covering under 1 % of its grid (ENG-122).
    """
    from ptychodus_pinn_torch.stitch import (
        SpilledPatches,
        phase_offsets,
        reassemble_geometry,
        reassemble_position,
        stitch_spilled_to_object_grid,
        stitch_to_object_grid,
        synchronize_phases,
    )

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    threads = check_threads(threads)
    t0 = time.perf_counter()
    n, gridsize = int(bundle.N), int(bundle.gridsize)
    k = neighbor_count
    if k is None:
        k = int(getattr(getattr(bundle, "training_config", None), "neighbor_count", 4) or 4)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"neighbor_count must be an integer >= 1, got {neighbor_count!r}")
    diff3d = data.diff3d
    if diff3d.ndim != 3 or tuple(diff3d.shape[1:]) != (n, n):
        raise ValueError(
            f"reconstruction data: diff3d has shape {tuple(diff3d.shape)} but the model's "
            f"ModelConfig.N = {n}; use data with {n}x{n} patterns or a model with N = "
            f"{diff3d.shape[-1]}"
        )
    # groups (sequential seeds, one per scan point) without building upstream's grouped dict:
    # no label (Y) patches, no copies of the diffraction (ENG-204)
    nn = np.asarray(data.group_indices(
        K=max(k, gridsize * gridsize), nsamples=int(diff3d.shape[0]), seed=0,
        sequential_sampling=True, gridsize=gridsize,
    ), dtype=np.int64)
    _, offsets, relative = group_coordinates(
        np.asarray(data.xcoords, np.float64), np.asarray(data.ycoords, np.float64), nn
    )
    positions = torch.from_numpy(
        np.ascontiguousarray(relative[:, 0].transpose(0, 2, 1), dtype=np.float32)
    )
    centres = offsets.reshape(offsets.shape[0], 2)
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
        side = reassemble_geometry(centres.reshape(-1, 1, 2, 1).astype(np.float64),
                                   M=min(CANVAS_M, n))[0]
        check_canvas_budget((side, side), x, y, what="reassemble_position canvas")
    crop = _stitch_crop(bundle)
    weights = stitch_weights(bundle) if weighting == "probe" else "uniform"
    pixel_weights = overlap_weights(weights, n, crop)
    keep = keep_patches or canvas
    # without the whole patches, keep only what stitching reads: the crop plus one pixel
    window = (slice(None), slice(None))
    if crop is not None and not keep:
        lo = n // 2 - crop // 2 - 1
        window = (slice(lo, lo + crop + 2), slice(lo, lo + crop + 2))
    dev = select_device(device)
    cl = channels_last_on(channels_last, dev.type)
    for name, flag in (("channels_last", cl), ("bf16", bf16)):
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be True or False, got {flag!r}")
    patch_memory = check_patch_memory(patch_memory)
    rows, cols = range(n)[window[0]], range(n)[window[1]]
    patch_shape = (len(nn), len(rows), len(cols))
    spill = not keep and patch_memory is not None and 8 * math.prod(patch_shape) > patch_memory
    store = None
    if spill:  # ENG-250: opened, and its disk space checked, before the network pass
        folder = Path(tempfile.gettempdir() if spill_dir is None else spill_dir)
        store = SpilledPatches(patch_shape, folder, setting="spill_dir")
    if obj_guess is not None:
        on_grid, note = True, ""
    else:
        on_grid = False
        note = (
            f"data has no objectGuess: object on a {shape[0]}x{shape[1]} grid covering all "
            f"positions plus N/2 margin; output pixel (0, 0) is at data position "
            f"x={origin[0]:g}, y={origin[1]:g}"
        )
    stitch_w = weights if isinstance(weights, str) else weights[window]
    patches = None
    model = bundle.model.to(dev)
    try:
        scale = _input_scale(diff3d, nn, n) * float(bundle.intensity_scale)
        if store is not None:  # ENG-250: the crops go to disk batch by batch
            with phase_threads("inference", threads):
                predict_to_disk(
                    model, diff3d, nn, positions, store, scale=scale, batch_size=batch_size,
                    device=dev, window=window, on_batch=on_batch, channels_last=cl, bf16=bf16,
                )
            bundle.model.to("cpu")
            phase = (phase_offsets(store, x, y, pixel_weights[window], device=dev)
                     if phase_sync else None)
            obj_t, coverage_t = stitch_spilled_to_object_grid(
                store, x - origin[0], y - origin[1], shape, crop=crop, weights=stitch_w,
                phase=phase, device=dev,
            )
        else:
            with phase_threads("inference", threads):
                patches_t = predict_patches(
                    model, diff3d, nn, positions, scale=scale, batch_size=batch_size,
                    device=dev, window=window, on_batch=on_batch, channels_last=cl, bf16=bf16,
                )
            bundle.model.to("cpu")
            if phase_sync:
                # in place: a second copy of all patches would be the peak of a large scan
                # (ENG-204)
                patches_t = synchronize_phases(patches_t, x, y, pixel_weights[window],
                                               inplace=True)
            obj_t, coverage_t = stitch_to_object_grid(
                patches_t, x - origin[0], y - origin[1], shape, crop=crop, weights=stitch_w,
            )
            patches = patches_t.cpu().numpy() if keep else None
            del patches_t
    finally:
        bundle.model.to("cpu")
        if store is not None:
            store.close()  # deletes the file, also on an error or KeyboardInterrupt
    obj = obj_t.cpu().numpy()
    coverage = coverage_t.cpu().numpy()
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
            bad_pixels=getattr(data, "bad_pixels", None),  # PHYS-170
            step=refine_step,
            device=dev,
            on_epoch=on_refine_epoch,
            metric=refine_metric,
            threads=threads,
            **(refine_options or RefineOptions()).as_kwargs(),  # type: ignore[arg-type]
        )
        check_result(np.asarray(obj), coverage)
    result_canvas = None
    if canvas and patches is not None:
        offsets = centres.reshape(-1, 1, 2, 1).astype(np.float64)
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


def overlap_weights(weights: np.ndarray | str, n: int, crop: int | None) -> np.ndarray:
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
