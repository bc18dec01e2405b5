"""Supervised labels from an experimental reconstruction (upstream
``generate_data_from_experiment``, reference "PyTorch backend extras §9").

No simulation: the measured patterns pass through unchanged, the given reconstruction becomes
``objectGuess`` (amplitude divided by its maximum, as upstream) and the labels ``Y`` are its
``N x N`` patches at the scan positions (DATA-013 extraction), so a supervised model can be
trained on real data with a trusted reconstruction as the target.
"""

from __future__ import annotations

import numpy as np

from ptychodus_pinn_torch.data.errors import DataError
from ptychodus_pinn_torch.data.patches import extract_patches
from ptychodus_pinn_torch.data.raw_data import RawData


def labels_from_experiment(
    scan: RawData,
    reconstruction: np.ndarray,
    *,
    normalize: bool = True,
    origin: tuple[float, float] = (0.0, 0.0),
) -> RawData:
    """``scan`` with ``objectGuess = reconstruction`` and ``Y`` = its patches at the positions.

    Args:
        scan: the measured scan (positions in pixels of ``reconstruction``'s grid).
        reconstruction: ``(H, W)`` complex object on the scan's object-pixel grid (e.g.
            ``pinn-torch reconstruct``'s ``object``, or any solver's result on that grid).
        normalize: divide the object by its largest amplitude (upstream), so amplitudes <= 1.
        origin: ``(x0, y0)`` of reconstruction pixel (0, 0) in the scan's position frame
            (``pinn-torch reconstruct``'s ``origin``; (0, 0) on the scan's own grid). The
            returned positions are the scan's minus the origin, on the reconstruction's grid.

    Returns:
        A RawData with the scan's patterns, positions and probe, ``objectGuess`` (H, W)
        complex64 and ``Y`` (M, N, N) complex64; ``metadata`` adds ``labels`` =
        ``"from_experiment"`` and ``label_amplitude_scale`` (the divisor used).

    Raises:
        DataError: the reconstruction is not a finite 2-D array, or a patch at some position
            would leave it (the grids do not match).
    """
    obj = np.asarray(reconstruction)
    if obj.ndim != 2 or not np.issubdtype(obj.dtype, np.number):
        raise DataError(f"reconstruction must be a 2-D complex object, got {obj.dtype} {obj.shape}")
    if not np.all(np.isfinite(obj)):
        raise DataError("reconstruction holds NaN or Inf values; pass a finite object")
    N = scan.N
    h, w = obj.shape
    lo = N // 2
    x0, y0 = float(origin[0]), float(origin[1])
    x, y = np.asarray(scan.xcoords) - x0, np.asarray(scan.ycoords) - y0
    if x.min() < lo or y.min() < lo or x.max() > w - lo - 1 or y.max() > h - lo - 1:
        raise DataError(
            f"reconstruction {h}x{w} does not hold every {N}x{N} patch: positions span x "
            f"{x.min():.1f}..{x.max():.1f}, y {y.min():.1f}..{y.max():.1f} but must lie in "
            f"[{lo}, {w - lo - 1}] x [{lo}, {h - lo - 1}]; pass the reconstruction on the scan's "
            "own object grid"
        )
    scale = float(np.max(np.abs(obj))) if normalize else 1.0
    if not scale > 0:
        raise DataError("reconstruction is zero everywhere; nothing to learn from")
    obj = (obj / scale).astype(np.complex64)
    Y = extract_patches(obj, np.column_stack([x, y]), N, np.complex64)
    metadata = {**scan.metadata, "labels": "from_experiment", "label_amplitude_scale": scale}
    return RawData(
        x, y, np.asarray(scan.xcoords_start) - x0, np.asarray(scan.ycoords_start) - y0, scan.diff3d,
        scan.probeGuess, scan.scan_index, obj, Y,
        metadata=metadata, diffraction_kind="amplitude", bad_pixels=scan.bad_pixels,
    )
