"""From a ``RawData`` scan to the tensors the engine feeds the model.

Upstream's grouped dict is channels-last (``X_full`` (B, N, N, C), coordinates (B, 1, 2, C));
the model is channels-first (x (B, C, N, N), positions (B, C, 2) ``[x, y]``). This module is the
one place where that conversion happens (CONTRIBUTING.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ptychodus_pinn_torch.config.spec import TrainingConfig
from ptychodus_pinn_torch.data.raw_data import RawData


@dataclass(frozen=True)
class GroupedTensors:
    """A grouped scan as torch tensors (CPU).

    x: (B, C, N, N) float32 normalized amplitudes ``X_full`` (not yet times the intensity scale).
    positions: (B, C, 2) float32 model positions ``[x, y]`` in pixels (relative to the group
        centre, upstream sign ``mean - r``).
    y: (B, C, N, N) complex64 labels, or None.
    centres: (B, 2) float64 group centres ``[x, y]`` in object pixels (``coords_offsets``).
    nn_indices: (B, C) int64 indices of the scan points in each group.
    """

    x: torch.Tensor
    positions: torch.Tensor
    y: torch.Tensor | None
    centres: np.ndarray
    nn_indices: np.ndarray


def _coords_to_positions(coords: np.ndarray, name: str) -> torch.Tensor:
    """(B, 1, 2, C) float64 ``[x, y]`` -> (B, C, 2) float32."""
    arr = np.asarray(coords)
    if arr.ndim != 4 or arr.shape[1] != 1 or arr.shape[2] != 2:
        raise ValueError(f"grouped dict key {name!r} has shape {arr.shape}; expected (B, 1, 2, C)")
    return torch.from_numpy(np.ascontiguousarray(arr[:, 0].transpose(0, 2, 1), dtype=np.float32))


def tensors_from_grouped(grouped: dict[str, Any], *, positions_key: str) -> GroupedTensors:
    """Convert upstream's grouped dict (``generate_grouped_data``) to :class:`GroupedTensors`.

    ``positions_key``: ``coords_start_relative`` (training, as the TF loader) or
    ``coords_relative`` (inference); falls back to ``coords_relative`` when the key is None.
    """
    for key in ("X_full", "coords_offsets", "nn_indices"):
        if grouped.get(key) is None:
            raise ValueError(
                f"grouped data lacks {key!r}; regenerate it with generate_grouped_data"
            )
    x_full = np.asarray(grouped["X_full"])
    if x_full.ndim != 4:
        raise ValueError(f"grouped X_full has shape {x_full.shape}; expected (B, N, N, C)")
    x = torch.from_numpy(np.ascontiguousarray(x_full.transpose(0, 3, 1, 2), dtype=np.float32))
    coords = grouped.get(positions_key)
    if coords is None:
        coords = grouped.get("coords_relative")
    if coords is None:
        raise ValueError("grouped data lacks 'coords_relative'; regenerate it")
    positions = _coords_to_positions(coords, positions_key)
    y = grouped.get("Y")
    y_t = None
    if y is not None:
        y_np = np.asarray(y)
        if y_np.ndim == 5 and y_np.shape[-1] == 1:
            y_np = y_np[..., 0]
        if y_np.shape != x_full.shape:
            raise ValueError(
                f"grouped Y has shape {y_np.shape}; expected {x_full.shape} like X_full"
            )
        y_t = torch.from_numpy(np.ascontiguousarray(y_np.transpose(0, 3, 1, 2), dtype=np.complex64))
    offsets = np.asarray(grouped["coords_offsets"], dtype=np.float64)
    centres = offsets.reshape(offsets.shape[0], 2)
    return GroupedTensors(
        x=x,
        positions=positions,
        y=y_t,
        centres=centres,
        nn_indices=np.asarray(grouped["nn_indices"]).astype(np.int64),
    )


def _n_positions(raw: RawData) -> int:
    return int(np.asarray(raw.xcoords).shape[0])


def _check_patch_size(raw: RawData, n: int, what: str) -> None:
    diff = np.asarray(raw.diff3d)
    if diff.ndim != 3 or diff.shape[1:] != (n, n):
        raise ValueError(
            f"{what}: diff3d has shape {diff.shape} but the model's ModelConfig.N = {n}; use "
            f"data with {n}x{n} patterns or a model (config) with N = {diff.shape[-1]}"
        )


def group_for_training(
    raw: RawData, config: TrainingConfig, *, seed: int, need_labels: bool, sequential: bool = False
) -> GroupedTensors:
    """Group ``raw`` as upstream training does and convert to tensors.

    raw: ``RawData``; config: spec ``TrainingConfig`` (n_groups, neighbor_count, gridsize,
    sampling settings). ``sequential`` forces sequential seeds over every point (test data).
    ``need_labels``: raise ValueError if the scan carries no ``Y`` and no ``objectGuess``.
    """
    model = config.model
    n = int(model.N)
    _check_patch_size(raw, n, "training data")
    n_points = _n_positions(raw)
    nsamples = n_points if sequential else int(config.n_groups or 512)
    grouped = raw.generate_grouped_data(
        n,
        K=int(config.neighbor_count),
        nsamples=nsamples,
        seed=seed,
        sequential_sampling=bool(config.sequential_sampling or sequential),
        gridsize=int(model.gridsize),
        enable_oversampling=bool(getattr(config, "enable_oversampling", False)),
        neighbor_pool_size=getattr(config, "neighbor_pool_size", None),
        y_centring="physical",  # channel c of Y is centred where channel c of the model looks
    )
    tensors = tensors_from_grouped(grouped, positions_key="coords_start_relative")
    if need_labels and tensors.y is None:
        raise ValueError(
            "supervised training (model_type='supervised' or realspace_weight > 0) needs labels, "
            "but the training data has neither 'Y' nor 'objectGuess'; add the true object as "
            "objectGuess to the NPZ or use model_type='pinn'"
        )
    return tensors

