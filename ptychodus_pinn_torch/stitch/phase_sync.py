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
from scipy.sparse.linalg import ArpackNoConvergence, eigsh
from scipy.spatial import cKDTree

from ptychodus_pinn_torch.physics import translate


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


def pairwise_overlaps(
    patches: np.ndarray | torch.Tensor,
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | torch.Tensor,
    *,
    neighbors: int = 8,
    chunk_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted overlap correlation of each patch with its nearest neighbours.

    patches: (n, N, N) complex (numpy, or torch on any device: computed there); patch i's
    centre pixel (N//2, N//2) sits at object (x_i, y_i). x, y: (n,) float object-pixel
    positions. weights: (N, N) float, >= 0 (e.g. the probe intensity envelope). Returns
    ``(i, j, h)``: int64 (m,), int64 (m,) and complex128 (m,) with
    ``h = sum_u w(u) w_j(u) p_i(u) conj(p_j(u))`` where ``p_j``/``w_j`` are patch j and its weights
    resampled into patch i's frame (bilinear, zero outside patch j). Each unordered pair once.
    Only the box of non-zero weights plus a one-pixel margin is resampled (the same sums: every
    other pixel has weight 0 or is read with weight 0).
    """
    n = patches.shape[0]
    if n < 2:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.complex128)
    pos = np.stack([np.asarray(x, np.float64), np.asarray(y, np.float64)], axis=1)
    k = min(int(neighbors) + 1, n)
    _, idx = cKDTree(pos).query(pos, k=k)
    ii = np.repeat(np.arange(n), k - 1)
    jj = np.asarray(idx)[:, 1:].reshape(-1)
    lo, hi = np.minimum(ii, jj), np.maximum(ii, jj)
    distinct = lo != hi
    if not distinct.any():
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.complex128)
    pair_array = np.unique(np.stack([lo[distinct], hi[distinct]], axis=1), axis=0).astype(np.int64)
    src = torch.as_tensor(patches)
    w = torch.as_tensor(np.asarray(weights, np.float32) if isinstance(weights, np.ndarray)
                        else weights).to(device=src.device, dtype=torch.float32)
    rows, cols = _support_window(w)
    src = src[:, rows, cols].to(torch.complex64)
    w = w[rows, cols]
    h = torch.empty(len(pair_array), dtype=torch.complex128, device=src.device)
    for start in range(0, len(pair_array), chunk_size):
        chunk = pair_array[start : start + chunk_size]
        i = torch.from_numpy(chunk[:, 0]).to(src.device)
        j = torch.from_numpy(chunk[:, 1]).to(src.device)
        # content of patch j moves by (pos_j - pos_i) to land in patch i's frame
        shift = torch.from_numpy((pos[chunk[:, 1]] - pos[chunk[:, 0]]).astype(np.float32))
        shift = shift.to(src.device)
        pj = translate(src[j], shift)
        wj = translate(w.expand(len(chunk), *w.shape), shift)
        prod = (w * wj) * src[i] * torch.conj(pj)
        h[start : start + len(chunk)] = prod.sum(dim=(-2, -1))
    return pair_array[:, 0], pair_array[:, 1], h.cpu().numpy()


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
    Hermitian overlap matrix (sparse, ``scipy.sparse.linalg.eigsh``). The common phase of all
    patches is kept (set so that the weighted mean phase change is zero). Patches without any
    overlap are returned unchanged. ``inplace=True`` with a complex64 torch tensor rotates it in
    place and returns it (no second copy of all patches: inference on large scans).
    """
    is_torch = isinstance(patches, torch.Tensor)
    if not is_torch:
        patches = np.asarray(patches)
    n = patches.shape[0]
    if patches.ndim != 3:
        raise ValueError(f"patches must be (n, N, N), got shape {tuple(patches.shape)}")

    def unchanged() -> np.ndarray | torch.Tensor:
        if is_torch:
            return patches.to(torch.complex64)
        return patches.astype(np.complex64)

    if n < 3:
        return unchanged()
    i, j, h = pairwise_overlaps(patches, x, y, weights, neighbors=neighbors)
    linked = np.abs(h) > 0
    i, j, h = i[linked], j[linked], h[linked]
    if len(h) == 0:
        return unchanged()
    rows = np.concatenate([i, j])
    cols = np.concatenate([j, i])
    vals = np.concatenate([h, np.conj(h)])
    matrix = coo_matrix((vals, (rows, cols)), shape=(n, n)).tocsr()
    degree = np.asarray(np.abs(matrix).sum(axis=1)).ravel()
    connected = degree > 0
    scale = np.zeros(n)
    scale[connected] = 1.0 / np.sqrt(degree[connected])
    normalized = matrix.multiply(scale[:, None]).multiply(scale[None, :]).tocsr()
    v = _leading_eigenvector(normalized)
    phase = np.zeros(n)
    phase[connected] = np.angle(v[connected])
    # keep the common phase: the weighted circular mean of the corrections is zero
    phase -= np.angle(np.sum(degree * np.exp(1j * phase)))
    phase[~connected] = 0.0
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
