"""Nearest-neighbour grouping of scan positions (upstream reference §2.2-2.4).

The draws reproduce upstream's use of numpy's *global* legacy RNG (``np.random.seed(seed)``
followed by ``np.random.choice`` calls) with a local :class:`numpy.random.RandomState`, so a given
seed selects the same groups as upstream without touching global state.

The per-group ``choice(available, C, replace=False)`` calls of upstream are drawn in bulk: a
legacy ``choice`` without replacement is ``permutation(L)[:C]``, i.e. a Fisher-Yates shuffle whose
step ``i`` (``i = L-1 .. 1``) consumes exactly what ``randint(0, i + 1)`` consumes (masked
rejection on 32-bit MT19937 outputs). One ``randint`` call with an array of upper bounds draws the
whole sequence in order; the swaps are then applied to all groups at once. The tests compare
this with the loop of ``np.random.choice`` calls index for index.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.spatial import cKDTree

from ptychodus_pinn_torch.data.errors import DataError


def _check_group_args(n_points: int, C: int, K: int) -> None:
    if n_points < C:
        raise DataError(
            f"Dataset has only {n_points} points but {C} coordinates per group requested. "
            "Use a smaller gridsize or more scan positions."
        )
    if K < C:
        raise DataError(
            f"K={K} must be >= C={C} (need at least C neighbors to form a group); "
            f"set K >= gridsize**2 = {C}"
        )


def bulk_choice_without_replacement(
    rs: np.random.RandomState, available: np.ndarray, C: int
) -> np.ndarray:
    """Row-wise ``rs.choice(available[i], C, replace=False)`` for every row, in row order.

    Args:
        rs: the legacy generator (advanced exactly as the per-row calls would advance it).
        available: ``(n, L)`` integer candidates per row, ``L >= C``.
        C: picks per row.

    Returns:
        ``(n, C)`` picks with the dtype of ``available``.
    """
    n, L = available.shape
    perm = np.broadcast_to(np.arange(L), (n, L)).copy()
    if L > 1:
        highs = np.arange(L, 1, -1)  # randint(0, i + 1) for i = L-1 .. 1
        draws = rs.randint(0, np.tile(highs, n)).reshape(n, L - 1)
        rows = np.arange(n)
        for step, i in enumerate(range(L - 1, 0, -1)):
            j = draws[:, step]
            tmp = perm[rows, i].copy()
            perm[rows, i] = perm[rows, j]
            perm[rows, j] = tmp
    return np.take_along_axis(available, perm[:, :C], axis=1)


def _knn(xcoords: np.ndarray, ycoords: np.ndarray, seeds: np.ndarray, K: int) -> np.ndarray:
    """Neighbour candidates per seed as upstream takes them: query ``min(K+1, n)`` hits, drop the
    first hit (assumed to be the seed itself) when more than K came back, keep at most K.

    Returns:
        ``(len(seeds), L)`` intp indices, ``L = min(K, n - 1)`` or ``n`` when ``n <= K``.
    """
    idx = _query_neighbours(xcoords, ycoords, seeds, K)
    return idx[:, 1 : K + 1] if idx.shape[1] > K else idx[:, :K]


def _query_neighbours(
    xcoords: np.ndarray, ycoords: np.ndarray, seeds: np.ndarray, K: int
) -> np.ndarray:
    """The ``min(K+1, n)`` nearest positions of each seed (the seed itself first), unfiltered.

    Returns:
        ``(len(seeds), min(K+1, n))`` intp indices into the positions, nearest first.
    """
    points = np.column_stack([xcoords, ycoords])
    k_query = min(K + 1, points.shape[0])
    _, idx = cKDTree(points).query(points[seeds], k=k_query)
    return np.asarray(idx).reshape(len(seeds), k_query)


def group_indices(
    xcoords: np.ndarray,
    ycoords: np.ndarray,
    *,
    gridsize: int = 1,
    K: int = 4,
    nsamples: int = 1,
    seed: int | None = None,
    sequential_sampling: bool = False,
    enable_oversampling: bool = False,
    neighbor_pool_size: int | None = None,
) -> np.ndarray:
    """Choose the scan positions of every group (upstream ``generate_grouped_data`` routing).

    Args:
        xcoords, ycoords: ``(M,)`` positions in object pixels (x = column, y = row).
        gridsize: patterns per group side; ``C = gridsize**2`` patterns per group.
        K: neighbours considered per seed point (``K >= C``).
        nsamples: number of groups requested.
        seed: seed of the legacy RNG (None: fresh entropy, not reproducible).
        sequential_sampling: seeds are ``0 .. nsamples-1`` instead of a random choice.
        enable_oversampling: allow K-choose-C oversampling when ``nsamples > M`` and ``C > 1``.
        neighbor_pool_size: neighbours per seed in the oversampling path (default K).

    Returns:
        ``nn_indices``: ``(B, C)`` indices into the positions; int64 when ``C == 1`` or when
        oversampling, int32 otherwise (upstream's dtypes). Channel order is the draw order.

    Raises:
        DataError: rules B2-B4 (too few points, ``K < C``, oversampling needed but disabled or
            impossible) and bad argument values.
    """
    xcoords = np.asarray(xcoords, dtype=np.float64)
    ycoords = np.asarray(ycoords, dtype=np.float64)
    for name, value in (("gridsize", gridsize), ("K", K), ("nsamples", nsamples)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise DataError(f"{name} must be a positive integer, got {value!r}")
    if neighbor_pool_size is not None and (
        int(neighbor_pool_size) != neighbor_pool_size or neighbor_pool_size < 1
    ):
        raise DataError(
            f"neighbor_pool_size must be a positive integer or None, got {neighbor_pool_size!r}"
        )
    gridsize, K, nsamples = int(gridsize), int(K), int(nsamples)
    C = gridsize * gridsize
    n_points = int(xcoords.shape[0])
    if nsamples > n_points and C > 1:
        if not enable_oversampling:
            raise DataError(
                f"Requesting {nsamples} groups but only {n_points} points available "
                f"(gridsize={gridsize}, C={C}). K choose C oversampling is required but not "
                "enabled. Set enable_oversampling=True (and neighbor_pool_size >= C), or request "
                f"nsamples <= {n_points}."
            )
        pool = int(neighbor_pool_size) if neighbor_pool_size else K
        if pool < C:
            raise DataError(
                f"K choose C oversampling requires neighbor_pool_size >= C (gridsize²); got "
                f"neighbor_pool_size={pool}, C={C}. Set neighbor_pool_size (or K) >= {C}."
            )
        return _groups_with_oversampling(
            xcoords, ycoords, C, pool, nsamples, seed, sequential_sampling
        )
    return _groups_standard(xcoords, ycoords, C, K, nsamples, seed, sequential_sampling)


def _groups_standard(
    xcoords: np.ndarray,
    ycoords: np.ndarray,
    C: int,
    K: int,
    nsamples: int,
    seed: int | None,
    sequential_sampling: bool,
) -> np.ndarray:
    """Upstream ``_generate_groups_efficiently`` (reference §2.3) on a local legacy RNG."""
    n_points = xcoords.shape[0]
    _check_group_args(n_points, C, K)
    if sequential_sampling:
        seeds = np.arange(min(nsamples, n_points))
        rs = np.random.RandomState(0)
    else:
        rs = np.random.RandomState(seed)
        n = min(nsamples, n_points)
        seeds = rs.choice(np.arange(n_points), n, replace=False) if n < n_points else (
            np.arange(n_points)
        )
    if C == 1:
        return np.asarray(seeds, dtype=np.int64).reshape(-1, 1)
    neighbors = _knn(xcoords, ycoords, seeds, K)
    if neighbors.shape[1] < C:
        available = np.concatenate([seeds[:, None], neighbors], axis=1)
    else:
        available = neighbors
    if available.shape[1] >= C:
        groups = bulk_choice_without_replacement(rs, available, C)
    else:
        groups = np.stack([rs.choice(row, C, replace=True) for row in available])
    return groups.astype(np.int32)


def _groups_with_oversampling(
    xcoords: np.ndarray,
    ycoords: np.ndarray,
    C: int,
    pool_size: int,
    nsamples: int,
    seed: int | None,
    sequential_sampling: bool,
) -> np.ndarray:
    """Upstream ``_generate_groups_with_oversampling`` (reference §2.4) on a local legacy RNG."""
    rs = np.random.RandomState(seed)
    n_points = xcoords.shape[0]
    _check_group_args(n_points, C, pool_size)
    combos_per_seed = math.comb(pool_size, C)
    min_seeds = math.ceil(nsamples / combos_per_seed)
    n_seeds = min(2 * min_seeds, n_points)
    sequential = np.arange(min(nsamples, n_points))
    if sequential_sampling and len(sequential) >= min_seeds:
        seeds = sequential[:n_seeds]
    elif n_seeds < n_points:
        seeds = rs.choice(n_points, n_seeds, replace=False)
    else:
        seeds = np.arange(n_points)
    idx = _query_neighbours(xcoords, ycoords, seeds, pool_size)
    pool: list[tuple[int, ...]] = []
    target = 2 * nsamples
    for seed_index, row in zip(seeds.tolist(), idx, strict=True):
        # upstream drops the first hit (self) here even when fewer than K+1 came back
        neighbors = row[1 : pool_size + 1] if len(row) > pool_size else (
            row[1:] if len(row) > 1 else row
        )
        if len(neighbors) < C:
            available = [seed_index, *neighbors.tolist()]
        else:
            available = neighbors.tolist()  # already at most pool_size long
        for combo in itertools.combinations(available, C):
            pool.append(combo)
            if len(pool) >= target:
                break
        if len(pool) >= target:
            break
    if not pool:
        raise DataError(
            "No valid combinations could be generated for K choose C oversampling; "
            f"each seed has fewer than C={C} neighbours. Add positions or lower gridsize."
        )
    chosen = rs.choice(len(pool), nsamples, replace=len(pool) < nsamples)
    return np.asarray(pool, dtype=np.int64)[chosen]
