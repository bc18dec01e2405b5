"""Sub-pixel patch extraction from an object (upstream ``get_image_patches`` semantics).

Patch pixel ``(i, j)`` of a patch centred at ``(x, y)`` is the object sampled at
``(row = y + i - N//2, col = x + j - N//2)`` with bilinear interpolation; samples outside the
object are zero per interpolation corner (TF ``fill_mode='zeros'``), which is scipy's
``map_coordinates(order=1, mode='grid-constant', cval=0)``. So the patch centre pixel
``(N//2, N//2)`` sits exactly at object ``(row=y, col=x)``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ptychodus_pinn_torch.data.errors import DataError

_CHUNK_PIXELS = 1 << 22  # sample points per map_coordinates call (bounds temporary memory)


def extract_patches(obj: np.ndarray, centres: np.ndarray, N: int) -> np.ndarray:
    """Extract ``N x N`` complex patches centred at sub-pixel positions.

    Args:
        obj: ``(H, W)`` complex (or real) object.
        centres: ``(P, 2)`` float positions in object pixels, ``[:, 0] = x`` (column),
            ``[:, 1] = y`` (row).
        N: patch size in pixels.

    Returns:
        ``(P, N, N)`` complex64 patches; content outside the object is 0.
    """
    obj = np.asarray(obj)
    centres = np.asarray(centres, dtype=np.float64)
    if obj.ndim != 2:
        raise DataError(f"objectGuess must be 2-D (H, W), got shape {obj.shape}")
    if centres.ndim != 2 or centres.shape[1] != 2:
        raise DataError(f"patch centres must be (P, 2) [x, y], got shape {centres.shape}")
    n_patches = centres.shape[0]
    out = np.zeros((n_patches, N, N), dtype=np.complex64)
    if n_patches == 0:
        return out
    offsets = np.arange(N, dtype=np.float64) - N // 2
    real = np.ascontiguousarray(obj.real, dtype=np.float64)
    imag = np.ascontiguousarray(obj.imag, dtype=np.float64) if np.iscomplexobj(obj) else None
    per_chunk = max(1, _CHUNK_PIXELS // (N * N))
    for start in range(0, n_patches, per_chunk):
        c = centres[start : start + per_chunk]
        rows = c[:, 1, None, None] + offsets[None, :, None]  # (p, N, 1)
        cols = c[:, 0, None, None] + offsets[None, None, :]  # (p, 1, N)
        rows, cols = np.broadcast_arrays(rows, cols)
        coords = np.stack([rows.ravel(), cols.ravel()])
        shape = (c.shape[0], N, N)
        re = ndimage.map_coordinates(real, coords, order=1, mode="grid-constant", cval=0.0)
        block = re.reshape(shape).astype(np.complex64)
        if imag is not None:
            im = ndimage.map_coordinates(imag, coords, order=1, mode="grid-constant", cval=0.0)
            block.imag = im.reshape(shape)
        out[start : start + per_chunk] = block
    return out
