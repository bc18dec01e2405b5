"""Sub-pixel patch extraction from an object (upstream ``get_image_patches`` semantics).

Patch pixel ``(i, j)`` of a patch centred at ``(x, y)`` is the object sampled at
``(row = y + i - N//2, col = x + j - N//2)`` with bilinear interpolation; samples outside the
object are zero per interpolation corner (TF ``fill_mode='zeros'``), i.e. scipy's
``map_coordinates(order=1, mode='grid-constant', cval=0)``. So the patch centre pixel
``(N//2, N//2)`` sits exactly at object ``(row=y, col=x)``. Implemented as four vectorized
gathers from the zero-bordered object.
"""

from __future__ import annotations

import numpy as np

from ptychodus_pinn_torch.data.errors import DataError

_CHUNK_PIXELS = 1 << 21  # patch pixels per vectorized step (bounds temporary memory)


def extract_patches(
    obj: np.ndarray, centres: np.ndarray, N: int, dtype: type = np.complex64
) -> np.ndarray:
    """Extract ``N x N`` complex patches centred at sub-pixel positions.

    Args:
        obj: ``(H, W)`` complex (or real) object.
        centres: ``(P, 2)`` float positions in object pixels, ``[:, 0] = x`` (column),
            ``[:, 1] = y`` (row).
        N: patch size in pixels.
        dtype: complex64 (default; float32 weights as upstream's TF op) or complex128
            (float64 weights, used by the simulator).

    Returns:
        ``(P, N, N)`` patches of ``dtype``; content outside the object is 0.
    """
    obj = np.asarray(obj)
    centres = np.asarray(centres, dtype=np.float64)
    if obj.ndim != 2:
        raise DataError(f"objectGuess must be 2-D (H, W), got shape {obj.shape}")
    if centres.ndim != 2 or centres.shape[1] != 2:
        raise DataError(f"patch centres must be (P, 2) [x, y], got shape {centres.shape}")
    n_patches = centres.shape[0]
    if np.dtype(dtype) not in (np.dtype(np.complex64), np.dtype(np.complex128)):
        raise DataError(f"dtype must be complex64 or complex128, got {dtype!r}")
    real_dtype = np.float32 if np.dtype(dtype) == np.complex64 else np.float64
    out = np.zeros((n_patches, N, N), dtype=dtype)
    if n_patches == 0:
        return out
    H, W = obj.shape
    # one zero row/column on each side: every index clipped into [-1, H] reads a 0 there
    padded = np.pad(obj.astype(dtype), 1)
    offsets = np.arange(N, dtype=np.float64) - N // 2
    per_chunk = max(1, _CHUNK_PIXELS // (N * N))
    for start in range(0, n_patches, per_chunk):
        c = centres[start : start + per_chunk]
        rows = c[:, 1, None] + offsets[None, :]  # (p, N)
        cols = c[:, 0, None] + offsets[None, :]  # (p, N)
        r0, c0 = np.floor(rows), np.floor(cols)
        fr, fc = (rows - r0).astype(real_dtype), (cols - c0).astype(real_dtype)
        r_lo = (np.clip(r0, -1, H) + 1).astype(np.intp)[:, :, None]
        r_hi = (np.clip(r0 + 1, -1, H) + 1).astype(np.intp)[:, :, None]
        c_lo = (np.clip(c0, -1, W) + 1).astype(np.intp)[:, None, :]
        c_hi = (np.clip(c0 + 1, -1, W) + 1).astype(np.intp)[:, None, :]
        wr1, wc1 = fr[:, :, None], fc[:, None, :]
        wr0, wc0 = 1.0 - wr1, 1.0 - wc1
        block = (wr0 * wc0) * padded[r_lo, c_lo]
        block += (wr0 * wc1) * padded[r_lo, c_hi]
        block += (wr1 * wc0) * padded[r_hi, c_lo]
        block += (wr1 * wc1) * padded[r_hi, c_hi]
        out[start : start + per_chunk] = block
    return out
