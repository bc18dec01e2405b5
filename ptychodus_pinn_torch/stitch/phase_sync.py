"""Phase synchronization of object patches before stitching.

A far-field diffraction pattern does not see the constant phase of its exit wave
(``|F(e^{ic} psi)| = |F(psi)|``), so a network that inverts one pattern (or one group of
patterns) at a time returns each patch with an arbitrary phase offset. Averaging such patches
washes the phase out. This module finds one phase offset per patch that makes overlapping
patches agree (angular synchronization: the leading eigenvector of the Hermitian matrix of
pairwise overlap correlations, Singer 2011) and removes it. Rules: specs/STITCH.md (STITCH-008).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import ArpackNoConvergence, eigsh
from scipy.spatial import cKDTree

from ptychodus_pinn_torch.physics import translate

from .spill import SpilledPatches

#: pairs whose overlaps are summed at a time, patches in memory / on disk (STITCH-250)
PAIR_CHUNK = 1024
SPILL_PAIR_CHUNK = 256
#: up to this many patches the leading eigenvector is computed directly (``eigsh``); above it,
#: by blocks of about :data:`BLOCK_SIZE` patches (STITCH-251: Lanczos' time grows ~n^2.1 on a
#: scan's neighbour graph, whose spectral gap shrinks as 1/n)
DIRECT_LIMIT = 16384
BLOCK_SIZE = 4096
#: projected power sweeps over the whole matrix after the block solution (STITCH-251)
POLISH_SWEEPS = 10


def _support_window(weights: torch.Tensor) -> tuple[slice, slice]:
    """Rows and columns of the smallest box holding every non-zero weight, plus a one-pixel
    margin (clipped): bilinear samples that meet a non-zero weight read only inside it."""
    rows = torch.nonzero(weights.abs().sum(dim=1) > 0).flatten()
    cols = torch.nonzero(weights.abs().sum(dim=0) > 0).flatten()
    if rows.numel() == 0:
        return slice(0, 0), slice(0, 0)
    n_r, n_c = weights.shape
    r0, r1 = max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, n_r)
    c0, c1 = max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, n_c)
    # keep the window centred on the patch centre so positions stay valid
    half_r = max(n_r // 2 - r0, r1 - n_r // 2)
    half_c = max(n_c // 2 - c0, c1 - n_c // 2)
    return (slice(max(n_r // 2 - half_r, 0), min(n_r // 2 + half_r, n_r)),
            slice(max(n_c // 2 - half_c, 0), min(n_c // 2 + half_c, n_c)))


def _neighbour_pairs(pos: np.ndarray, neighbors: int) -> np.ndarray:
    """``(m, 2)`` int64 unordered pairs ``i < j`` (sorted, each once) of every position with
    its ``neighbors`` nearest ones; ``pos`` (n, 2) float64."""
    n = pos.shape[0]
    k = min(int(neighbors) + 1, n)
    _, idx = cKDTree(pos).query(pos, k=k)
    ii = np.repeat(np.arange(n), k - 1)
    jj = np.asarray(idx)[:, 1:].reshape(-1)
    lo, hi = np.minimum(ii, jj), np.maximum(ii, jj)
    distinct = lo != hi
    return np.unique(np.stack([lo[distinct], hi[distinct]], axis=1), axis=0).astype(np.int64)


def pairwise_overlaps(
    patches: np.ndarray | torch.Tensor | SpilledPatches,
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | torch.Tensor,
    *,
    neighbors: int = 8,
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted overlap correlation of each patch with its nearest neighbours.

    patches: (n, N, N) complex (numpy, or torch on any device: computed there, or
    :class:`SpilledPatches` on disk: the patches of each chunk of pairs are read back and the
    sums computed on ``device``, default the CPU); patch i's centre pixel (N//2, N//2) sits at
    object (x_i, y_i). x, y: (n,) float object-pixel positions. weights: (N, N) float, >= 0
    (e.g. the probe intensity envelope). Returns ``(i, j, h)``: int64 (m,), int64 (m,) and
    complex128 (m,) with ``h = sum_u w(u) w_j(u) p_i(u) conj(p_j(u))`` where ``p_j``/``w_j``
    are patch j and its weights resampled into patch i's frame (bilinear, zero outside patch j).
    Each unordered pair once. Only the box of non-zero weights plus a one-pixel margin is
    resampled (the same sums: every other pixel has weight 0 or is read with weight 0).
    chunk_size: pairs summed at a time (default 1024 in memory, 256 from disk: the chunk's
    temporaries, ~100 MB at 1024 pairs of 34 x 34 crops, are the peak of the spilled path).
    """
    n = len(patches) if isinstance(patches, SpilledPatches) else patches.shape[0]
    if chunk_size is None:
        chunk_size = SPILL_PAIR_CHUNK if isinstance(patches, SpilledPatches) else PAIR_CHUNK
    empty = np.zeros(0, np.int64)
    if n < 2:
        return empty, empty, np.zeros(0, np.complex128)
    pos = np.stack([np.asarray(x, np.float64), np.asarray(y, np.float64)], axis=1)
    pair_array = _neighbour_pairs(pos, neighbors)
    if len(pair_array) == 0:
        return empty, empty, np.zeros(0, np.complex128)
    spilled = isinstance(patches, SpilledPatches)
    if spilled:
        dev = torch.device("cpu" if device is None else device)
    else:
        src = torch.as_tensor(patches)
        dev = src.device
    w = torch.as_tensor(np.asarray(weights, np.float32) if isinstance(weights, np.ndarray)
                        else weights).to(device=dev, dtype=torch.float32)
    rows, cols = _support_window(w)
    if not spilled:
        src = src[:, rows, cols].to(torch.complex64)
    w = w[rows, cols]
    h = torch.empty(len(pair_array), dtype=torch.complex128, device=dev)
    for start in range(0, len(pair_array), chunk_size):
        chunk = pair_array[start : start + chunk_size]
        if spilled:  # the chunk's patches from disk
            pi = patches.gather(chunk[:, 0], dev)[:, rows, cols]
            pj = patches.gather(chunk[:, 1], dev)[:, rows, cols]
        else:
            pi = src[torch.from_numpy(chunk[:, 0]).to(dev)]
            pj = src[torch.from_numpy(chunk[:, 1]).to(dev)]
        # content of patch j moves by (pos_j - pos_i) to land in patch i's frame
        shift = torch.from_numpy((pos[chunk[:, 1]] - pos[chunk[:, 0]]).astype(np.float32))
        shift = shift.to(dev)
        pj = translate(pj, shift)
        wj = translate(w.expand(len(chunk), *w.shape), shift)
        prod = (w * wj) * pi * torch.conj(pj)
        h[start : start + len(chunk)] = prod.sum(dim=(-2, -1))
    return pair_array[:, 0], pair_array[:, 1], h.cpu().numpy()


def phase_offsets(
    patches: np.ndarray | torch.Tensor | SpilledPatches,
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | torch.Tensor,
    *,
    neighbors: int = 8,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """(n,) float64 phase offsets theta (radians) of :func:`synchronize_phases`: patch i
    synchronized is ``patches[i] * exp(-1j theta_i)``; 0 for patches without any overlap and
    for fewer than 3 patches. ``patches`` as in :func:`pairwise_overlaps` (``device``: where the
    overlaps of :class:`SpilledPatches` are summed)."""
    n = len(patches) if isinstance(patches, SpilledPatches) else patches.shape[0]
    phase = np.zeros(n)
    if n < 3:
        return phase
    i, j, h = pairwise_overlaps(patches, x, y, weights, neighbors=neighbors, device=device)
    linked = np.abs(h) > 0
    i, j, h = i[linked], j[linked], h[linked]
    if len(h) == 0:
        return phase
    rows = np.concatenate([i, j])
    cols = np.concatenate([j, i])
    vals = np.concatenate([h, np.conj(h)])
    del i, j, h
    matrix = coo_matrix((vals, (rows, cols)), shape=(n, n)).tocsr()
    del rows, cols, vals
    normalized, degree = _degree_normalized(matrix)
    connected = degree > 0
    del matrix
    v = synchronizing_vector(normalized, np.column_stack([x, y]))
    phase[connected] = np.angle(v[connected])
    # keep the common phase: the weighted circular mean of the corrections is zero
    phase -= np.angle(np.sum(degree * np.exp(1j * phase)))
    phase[~connected] = 0.0
    return phase


def synchronize_phases(
    patches: np.ndarray | torch.Tensor,
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | torch.Tensor,
    *,
    neighbors: int = 8,
    inplace: bool = False,
) -> np.ndarray | torch.Tensor:
    """Remove each patch's arbitrary constant phase so that overlapping patches agree.

    patches: (n, N, N) complex64 (numpy, or torch on any device: stays there), centred at
    object pixels (x, y) (n,) each; weights: (N, N) float >= 0. Returns (n, N, N) complex64
    (numpy for numpy input, torch on the input's device for torch input)
    ``patches[i] * exp(-i theta_i)`` with theta from the leading eigenvector of the normalized
    Hermitian overlap matrix (sparse, ``scipy.sparse.linalg.eigsh``; :func:`phase_offsets`). The
    common phase of all patches is kept (set so that the weighted mean phase change is zero).
    Patches without any overlap are returned unchanged. ``inplace=True`` with a complex64 torch
    tensor rotates it in place and returns it (no second copy of all patches: inference on large
    scans).
    """
    is_torch = isinstance(patches, torch.Tensor)
    if not is_torch:
        patches = np.asarray(patches)
    if patches.ndim != 3:
        raise ValueError(f"patches must be (n, N, N), got shape {tuple(patches.shape)}")
    phase = phase_offsets(patches, x, y, weights, neighbors=neighbors)
    if is_torch:
        rot = torch.from_numpy(np.exp(-1j * phase).astype(np.complex64)).to(patches.device)
        if inplace and patches.dtype == torch.complex64:
            return patches.mul_(rot[:, None, None])
        return patches.to(torch.complex64) * rot[:, None, None]
    return (patches * np.exp(-1j * phase)[:, None, None]).astype(np.complex64)


def _leading_eigenvector(matrix: csr_matrix) -> np.ndarray:
    """Eigenvector (n,) complex128 of the largest eigenvalue of a Hermitian sparse matrix
    (n >= 3): Lanczos (``eigsh``) on the sparse matrix at every size."""
    n = matrix.shape[0]
    start = np.ones(n, np.complex128)
    try:
        _, vecs = eigsh(matrix, k=1, which="LA", tol=1e-10, v0=start, maxiter=max(1000, 20 * n))
        return vecs[:, 0]
    except ArpackNoConvergence as exc:  # keep the best vector found, else power iteration
        if exc.eigenvectors.size:
            return exc.eigenvectors[:, 0]
    v = start
    for _ in range(200):
        v = matrix @ v + v  # shifted power iteration: eigenvalues of the normalized matrix >= -1
        v /= np.linalg.norm(v)
    return v


def synchronizing_vector(
    normalized: csr_matrix,
    positions: np.ndarray,
    *,
    direct_limit: int | None = None,
    block_size: int | None = None,
    sweeps: int | None = None,
) -> np.ndarray:
    """(n,) complex128 vector whose angles are the patches' phase offsets, from the degree-
    normalized Hermitian overlap matrix ``normalized`` (n, n) (``N_ij ~ c_ij e^{i(t_i - t_j)}``,
    c_ij >= 0) of patches at ``positions`` (n, 2) float object pixels.

    ``direct_limit``, ``block_size``, ``sweeps``: None takes :data:`DIRECT_LIMIT`,
    :data:`BLOCK_SIZE`, :data:`POLISH_SWEEPS` (read at each call).

    Up to ``direct_limit`` patches: the leading eigenvector (``eigsh``, STITCH-008). Above it
    (STITCH-251), in time linear in n: the patches are cut by position into tiles of about
    ``block_size``; each connected part of a tile's own neighbour graph is synchronized by its
    leading eigenvector; the parts are then synchronized with each other by the leading
    eigenvector of the small matrix of their summed cross overlaps (each overlap rotated by the
    parts' own solutions); finally ``sweeps`` projected power sweeps ``v <- (N + I) v``,
    ``v <- v / |v|`` over the whole matrix smooth the seams between tiles.
    """
    direct_limit = DIRECT_LIMIT if direct_limit is None else direct_limit
    block_size = BLOCK_SIZE if block_size is None else block_size
    sweeps = POLISH_SWEEPS if sweeps is None else sweeps
    n = normalized.shape[0]
    if n <= direct_limit:
        return _leading_eigenvector(normalized)
    coo = normalized.tocoo()
    tiles = _position_tiles(np.asarray(positions, np.float64), block_size)
    inside = tiles[coo.row] == tiles[coo.col]
    intra = coo_matrix((coo.data[inside], (coo.row[inside], coo.col[inside])),
                       shape=(n, n)).tocsr()
    parts, part = connected_components(abs(intra), directed=False)
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(parts + 1))
    u = np.ones(n, np.complex128)
    for b in range(parts):
        members = order[bounds[b] : bounds[b + 1]]
        if len(members) > 1:
            u[members] = _unit(_small_leading_eigenvector(
                _degree_normalized(intra[members][:, members])[0]))
    across = part[coo.row] != part[coo.col]  # parts lie within tiles: these cross tiles
    rows, cols = coo.row[across], coo.col[across]
    coarse = coo_matrix((np.conj(u[rows]) * coo.data[across] * u[cols],
                         (part[rows], part[cols])), shape=(parts, parts)).tocsr()
    del coo, intra, rows, cols
    v = u * _per_component_phases(coarse)[part]
    for _ in range(sweeps):
        v = _unit(normalized @ v + v)
    return v


def _per_component_phases(matrix: csr_matrix) -> np.ndarray:
    """(n,) unit complex128: each connected component of the Hermitian ``matrix``'s graph
    synchronized on its own (leading eigenvector of its degree-normalized block), so a scan in
    separate pieces never leaves one piece near zero in a shared eigenvector."""
    count, label = connected_components(abs(matrix), directed=False)
    out = np.ones(matrix.shape[0], np.complex128)
    for c in range(count):
        members = np.flatnonzero(label == c)
        if len(members) > 1:
            out[members] = _unit(_small_leading_eigenvector(
                _degree_normalized(matrix[members][:, members])[0]))
    return out


def _position_tiles(positions: np.ndarray, block_size: int) -> np.ndarray:
    """(n,) int64 tile of each position: sqrt(n / block_size) strips of equal count in x, each
    cut into as many tiles of equal count in y (tiles of ~block_size neighbouring patches)."""
    n = len(positions)
    strips = max(1, int(round(np.sqrt(n / max(block_size, 1)))))
    tiles = np.empty(n, np.int64)
    tile = 0
    for strip in np.array_split(np.argsort(positions[:, 0], kind="stable"), strips):
        by_y = strip[np.argsort(positions[strip, 1], kind="stable")]
        for cell in np.array_split(by_y, strips):
            tiles[cell] = tile
            tile += 1
    return tiles


def _degree_normalized(matrix: csr_matrix) -> tuple[csr_matrix, np.ndarray]:
    """``(D^-1/2 M D^-1/2, degree)`` with D the row sums of |M| (n,) float64 (rows without
    entries stay zero)."""
    degree = np.asarray(np.abs(matrix).sum(axis=1)).ravel()
    scale = np.zeros(len(degree))
    scale[degree > 0] = 1.0 / np.sqrt(degree[degree > 0])
    return matrix.multiply(scale[:, None]).multiply(scale[None, :]).tocsr(), degree


def _small_leading_eigenvector(matrix: csr_matrix) -> np.ndarray:
    """Leading eigenvector of a Hermitian matrix of any size >= 1 (dense below 3)."""
    if matrix.shape[0] < 3:
        return np.linalg.eigh(matrix.toarray())[1][:, -1].astype(np.complex128)
    return _leading_eigenvector(matrix)


def _unit(v: np.ndarray) -> np.ndarray:
    """``v / |v|`` elementwise; zero entries become 1 (no phase information)."""
    magnitude = np.abs(v)
    out = np.ones(len(v), np.complex128)
    nonzero = magnitude > 0
    out[nonzero] = v[nonzero] / magnitude[nonzero]
    return out
