"""The order in which a solver visits scan positions, in mini-batches.

- ``"random"``: a fresh random permutation every epoch, cut into batches (positions of one
  batch are spread over the scan, so their patches rarely overlap: the parallel update of a
  batch then behaves like a sequential ePIE sweep);
- ``"compact"``: positions sorted along a serpentine path over square tiles of about one batch
  each, so every batch is one spatially compact cluster; the order of the batches is shuffled
  every epoch.
"""

from __future__ import annotations

import math

import numpy as np
import torch

ORDERS = ("random", "compact")


def _compact_clusters(centres: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Split ``(M, 2)`` [x, y] centres into spatially compact groups of about ``batch_size``."""
    m = centres.shape[0]
    n_batches = max(1, math.ceil(m / batch_size))
    side = max(1, round(math.sqrt(n_batches)))
    x, y = centres[:, 0], centres[:, 1]
    # rows of tiles by y quantile, then within each row by x quantile (equal counts per tile)
    order_y = np.argsort(y, kind="stable")
    rows = np.array_split(order_y, side)
    clusters: list[np.ndarray] = []
    for r, row in enumerate(rows):
        by_x = row[np.argsort(x[row], kind="stable")]
        if r % 2:
            by_x = by_x[::-1]
        per_row = max(1, round(len(row) / batch_size))
        clusters.extend(part for part in np.array_split(by_x, per_row) if len(part))
    return clusters


def batch_order(
    order: str, centres: np.ndarray, batch_size: int, generator: torch.Generator
) -> list[torch.Tensor]:
    """The batches of one epoch: a list of int64 index tensors covering ``range(M)`` once.

    centres: ``(M, 2)`` float64 [x, y] positions; batch_size >= 1; ``generator`` seeds the
    shuffles (the same seed gives the same epochs).
    """
    if order not in ORDERS:
        raise ValueError(f"refine order must be one of {ORDERS}, got {order!r}")
    m = centres.shape[0]
    if order == "random":
        return list(torch.randperm(m, generator=generator).split(batch_size))
    clusters = _compact_clusters(centres, batch_size)
    perm = torch.randperm(len(clusters), generator=generator).tolist()
    return [torch.from_numpy(clusters[i].astype(np.int64)) for i in perm]
