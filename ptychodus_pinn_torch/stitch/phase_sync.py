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


def pairwise_overlaps(
    patches: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    *,
    neighbors: int = 8,
    chunk_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted overlap correlation of each patch with its nearest neighbours.

    patches: (n, N, N) complex; patch i's centre pixel (N//2, N//2) sits at object (x_i, y_i).
    x, y: (n,) float object-pixel positions. weights: (N, N) float, >= 0 (e.g. the probe
    intensity envelope). Returns ``(i, j, h)``: int64 (m,), int64 (m,) and complex128 (m,) with
    ``h = sum_u w(u) w_j(u) p_i(u) conj(p_j(u))`` where ``p_j``/``w_j`` are patch j and its weights
    resampled into patch i's frame (bilinear, zero outside patch j). Each unordered pair once.
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
    src = torch.from_numpy(np.ascontiguousarray(patches)).to(torch.complex64)
    w = torch.from_numpy(np.asarray(weights, np.float32))
    h = np.empty(len(pair_array), np.complex128)
    for start in range(0, len(pair_array), chunk_size):
        chunk = pair_array[start : start + chunk_size]
        i, j = chunk[:, 0], chunk[:, 1]
        # content of patch j moves by (pos_j - pos_i) to land in patch i's frame
        shift = torch.from_numpy((pos[j] - pos[i]).astype(np.float32))
        pj = translate(src[j], shift)
        wj = translate(w.expand(len(chunk), *w.shape), shift)
        prod = (w * wj) * src[i] * torch.conj(pj)
        h[start : start + len(chunk)] = prod.sum(dim=(-2, -1)).numpy()
    return pair_array[:, 0], pair_array[:, 1], h


def synchronize_phases(
    patches: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    *,
    neighbors: int = 8,
) -> np.ndarray:
    """Remove each patch's arbitrary constant phase so that overlapping patches agree.

    patches: (n, N, N) complex64, centred at object pixels (x, y) (n,) each; weights: (N, N)
    float >= 0. Returns (n, N, N) complex64 ``patches[i] * exp(-i theta_i)`` with theta from the
    leading eigenvector of the normalized Hermitian overlap matrix. The common phase of all
    patches is kept (set so that the weighted mean phase change is zero). Patches without any
    overlap are returned unchanged.
    """
    patches = np.asarray(patches)
    n = patches.shape[0]
    if patches.ndim != 3:
        raise ValueError(f"patches must be (n, N, N), got shape {patches.shape}")
    if n < 3:
        return patches.astype(np.complex64)
    i, j, h = pairwise_overlaps(patches, x, y, weights, neighbors=neighbors)
    linked = np.abs(h) > 0
    i, j, h = i[linked], j[linked], h[linked]
    if len(h) == 0:
        return patches.astype(np.complex64)
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
    return (patches * np.exp(-1j * phase)[:, None, None]).astype(np.complex64)


#: up to this many patches the eigenproblem is solved densely (exact, deterministic, < 1 s)
DENSE_LIMIT = 2000


def _leading_eigenvector(matrix: csr_matrix) -> np.ndarray:
    """Eigenvector (n,) complex128 of the largest eigenvalue of a Hermitian sparse matrix."""
    n = matrix.shape[0]
    if n <= DENSE_LIMIT:
        _, vecs = np.linalg.eigh(matrix.toarray())
        return vecs[:, -1]
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
