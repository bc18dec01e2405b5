"""Checks around a reconstruction that stop a silent wrong result or a huge allocation
(specs/ENGINE.md, ENG-120..122).

- :func:`check_canvas_budget`: the object grid (or reassemble canvas) that the positions ask for
  must fit the memory budget, checked before the network runs; the error names the positions'
  extent and the fix (coordinates in object pixels, an ``objectGuess``, or a larger budget).
- :func:`check_positions_reach_grid`: with an ``objectGuess``, patches falling entirely outside
  its grid are counted; none reaching it is an error, some is a warning with the numbers.
- :func:`check_result`: a stitched object with non-finite pixels, or covering less than
  ``MIN_COVERAGE`` of its grid, is an error.
"""

from __future__ import annotations

import logging

import numpy as np

from ptychodus_pinn_torch.data.npz_limits import MEMORY_BUDGET_ENV, default_memory_budget

logger = logging.getLogger(__name__)

#: Bytes per object-grid pixel while stitching: the (H*W, 3) float32 sums, the complex64 object,
#: the float32 coverage and the temporaries of the division (ENG-120).
BYTES_PER_GRID_PIXEL = 40
#: Least fraction of the object grid that the patches must cover (ENG-122).
MIN_COVERAGE = 0.01


def _human(n: float) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 1024:.1f} KiB"


def check_canvas_budget(
    shape: tuple[int, int], x: np.ndarray, y: np.ndarray, *, what: str = "object grid",
    budget: int | None = None,
) -> None:
    """Refuse an output grid that would not fit the memory budget.

    Args:
        shape: ``(H, W)`` pixels of the grid to allocate.
        x, y: ``(n,)`` positions (object pixels) that set it, for the message.
        what: name of the grid in the message.
        budget: bytes (default :func:`npz_limits.default_memory_budget`).

    Raises:
        ValueError: one line naming the positions' extent, the grid size, its bytes, the budget
            and the fixes.
    """
    h, w = int(shape[0]), int(shape[1])
    need = BYTES_PER_GRID_PIXEL * h * w
    budget = default_memory_budget() if budget is None else budget
    if need <= budget:
        return
    xs, ys = np.asarray(x, np.float64), np.asarray(y, np.float64)
    raise ValueError(
        f"the scan positions span x {xs.min():.6g}..{xs.max():.6g} and y "
        f"{ys.min():.6g}..{ys.max():.6g} (object pixels), so the {what} would be {h} x {w} "
        f"pixels ({_human(need)}), above the memory budget of {_human(budget)}; check that the "
        f"coordinates are in object pixels (not metres or nm), pass an objectGuess whose grid to "
        f"use, or raise {MEMORY_BUDGET_ENV}"
    )


def check_positions_reach_grid(
    shape: tuple[int, int], x: np.ndarray, y: np.ndarray, n: int
) -> int:
    """Count patches of side ``n`` centred at ``(x, y)`` that lie entirely outside the
    ``(H, W)`` grid (pixel centres at integer coordinates ``0..W-1``, ``0..H-1``).

    Returns:
        The number outside (a warning names it when some are).

    Raises:
        ValueError: no patch reaches the grid (the object would be all zero).
    """
    h, w = int(shape[0]), int(shape[1])
    xs, ys = np.asarray(x, np.float64), np.asarray(y, np.float64)
    half = n / 2.0
    outside = (xs + half < 0) | (xs - half > w - 1) | (ys + half < 0) | (ys - half > h - 1)
    count = int(outside.sum())
    if count == xs.size:
        raise ValueError(
            f"none of the {count} patch positions reaches the {h} x {w} objectGuess grid "
            f"(positions span x {xs.min():.6g}..{xs.max():.6g}, y {ys.min():.6g}..{ys.max():.6g} "
            f"object pixels); the object would be all zero: check the coordinate units and "
            f"origin, or drop objectGuess to reconstruct on a grid covering the positions"
        )
    if count:
        logger.warning(
            "%d of %d patch positions lie entirely outside the %d x %d objectGuess grid "
            "(positions span x %.6g..%.6g, y %.6g..%.6g); their patterns do not contribute",
            count, xs.size, h, w, xs.min(), xs.max(), ys.min(), ys.max(),
        )
    return count


def check_result(obj: np.ndarray, coverage: np.ndarray, *,
                 min_coverage: float = MIN_COVERAGE) -> float:
    """Refuse a stitched object that is not a usable result.

    Args:
        obj: ``(H, W)`` complex object.
        coverage: ``(H, W)`` summed stitching weight (0 = no patch reached the pixel).
        min_coverage: least covered fraction of the grid.

    Returns:
        The covered fraction (pixels with coverage > 0).

    Raises:
        ValueError: non-finite pixels (count and first position), or a covered fraction below
            ``min_coverage``.
    """
    bad = ~np.isfinite(obj)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"the reconstructed object has {int(bad.sum())} non-finite pixels (first at row "
            f"{row}, column {col}); the model or the data produce NaN/Inf: check the data's "
            f"scale and the model (retrain if its loss diverged)"
        )
    covered = float(np.mean(coverage > 0)) if coverage.size else 0.0
    if covered < min_coverage:
        raise ValueError(
            f"the patches cover {covered:.2%} of the {coverage.shape[0]} x {coverage.shape[1]} "
            f"object grid, below the {min_coverage:.0%} a reconstruction needs; the positions do "
            f"not match the grid (check the coordinate units and the objectGuess)"
        )
    return covered
