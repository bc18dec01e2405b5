"""Build upstream's grouped-data dictionary from chosen groups (upstream reference §2.5-2.6)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ptychodus_pinn_torch.data.errors import DataError
from ptychodus_pinn_torch.data.normalize import normalize_data
from ptychodus_pinn_torch.data.patches import extract_patches

YCentring = Literal["upstream", "physical"]
Y_CENTRINGS: tuple[str, ...] = ("upstream", "physical")

#: keys of the grouped dictionary, in upstream's order.
GROUPED_KEYS: tuple[str, ...] = (
    "diffraction",
    "X_full",
    "Y",
    "coords_offsets",
    "coords_relative",
    "coords_start_offsets",
    "coords_start_relative",
    "coords_nn",
    "coords_start_nn",
    "nn_indices",
    "objectGuess",
)


def group_coordinates(
    xcoords: np.ndarray, ycoords: np.ndarray, nn_indices: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates of each group member, the group centre and the relative offsets.

    Args:
        xcoords, ycoords: ``(M,)`` float64 positions in object pixels.
        nn_indices: ``(B, C)`` integer indices.

    Returns:
        ``coords_nn (B, 1, 2, C)`` with axis 2 = [x, y]; ``coords_offsets (B, 1, 2, 1)``, the mean
        over channels; ``coords_relative (B, 1, 2, C) = coords_offsets - coords_nn``
        (upstream's ``local_offset_sign = -1``). All float64, pixels.
    """
    coords_nn = np.stack([xcoords[nn_indices], ycoords[nn_indices]], axis=1)[:, None, :, :]
    coords_offsets = np.mean(coords_nn, axis=3, keepdims=True)
    coords_relative = -1.0 * (coords_nn - coords_offsets)
    return coords_nn, coords_offsets, coords_relative


def build_grouped_dict(
    *,
    diff3d: np.ndarray,
    xcoords: np.ndarray,
    ycoords: np.ndarray,
    xcoords_start: np.ndarray | None,
    ycoords_start: np.ndarray | None,
    nn_indices: np.ndarray,
    N: int,
    objectGuess: np.ndarray | None = None,
    Y: np.ndarray | None = None,
    y_centring: YCentring = "upstream",
) -> dict[str, Any]:
    """Upstream's ``_generate_dataset_from_groups``: the grouped dictionary.

    Args:
        diff3d: ``(M, N, N)`` amplitudes (float32).
        xcoords, ycoords, xcoords_start, ycoords_start: ``(M,)`` float64 positions (pixels).
        nn_indices: ``(B, C)`` indices from :func:`group_indices`.
        N: patch size.
        objectGuess: optional ``(H, W)`` complex64 object, source of ``Y`` when ``Y`` is None.
        Y: optional ``(M, N, N)`` complex64 per-pattern ground truth.
        y_centring: ``"upstream"`` centres Y channel c at ``2*mean - r_c`` (upstream's point
            reflection through the group centre, DATA-011); ``"physical"`` at ``r_c``, the
            position of diffraction channel c.

    Returns:
        dict with exactly :data:`GROUPED_KEYS`: ``diffraction (B,N,N,C)`` diff3d dtype,
        ``X_full (B,N,N,C)`` float32, ``Y (B,N,N,C)`` complex64 numpy array or None,
        coordinates float64 ``(B,1,2,C)`` / ``(B,1,2,1)``, ``nn_indices (B,C)``,
        ``objectGuess`` passthrough.
    """
    if y_centring not in Y_CENTRINGS:
        raise DataError(f"y_centring must be one of {Y_CENTRINGS}, got {y_centring!r}")
    nn = np.asarray(nn_indices)
    B, C = nn.shape
    diffraction = np.empty((B, N, N, C), dtype=diff3d.dtype)
    for c in range(C):
        diffraction[..., c] = diff3d[nn[:, c]]
    coords_nn, coords_offsets, coords_relative = group_coordinates(xcoords, ycoords, nn)
    if xcoords_start is not None and ycoords_start is not None:
        coords_start_nn, coords_start_offsets, coords_start_relative = group_coordinates(
            xcoords_start, ycoords_start, nn
        )
    else:
        coords_start_nn = coords_start_offsets = coords_start_relative = None
    if Y is not None:
        y_out: np.ndarray | None = np.empty((B, N, N, C), dtype=np.complex64)
        for c in range(C):
            y_out[..., c] = Y[nn[:, c]]
    elif objectGuess is not None:
        # upstream: 2*mean - r_c (point reflection); physical: r_c
        centres = coords_offsets + coords_relative if y_centring == "upstream" else coords_nn
        flat = np.transpose(centres[:, 0, :, :], (0, 2, 1)).reshape(B * C, 2)  # b-major
        patches = extract_patches(objectGuess, flat, N).reshape(B, C, N, N)
        y_out = np.ascontiguousarray(np.transpose(patches, (0, 2, 3, 1)))
    else:
        y_out = None
    return {
        "diffraction": diffraction,
        "X_full": normalize_data(diffraction, N),
        "Y": y_out,
        "coords_offsets": coords_offsets,
        "coords_relative": coords_relative,
        "coords_start_offsets": coords_start_offsets,
        "coords_start_relative": coords_start_relative,
        "coords_nn": coords_nn,
        "coords_start_nn": coords_start_nn,
        "nn_indices": nn,
        "objectGuess": objectGuess,
    }
