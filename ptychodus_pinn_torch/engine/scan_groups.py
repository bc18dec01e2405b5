"""Training groups from one or several scans (ENG-183) and from mapped scans (ENG-184).

Each scan is grouped on its own (neighbours never cross scans) with the training settings; the
groups of all scans are then addressed by one index, each group remembering its scan so that the
forward model illuminates it with that scan's probe. One in-memory scan keeps the engine's eager
path (``batches.group_for_training``, unchanged numbers); several scans, or any memory-mapped
scan, use :mod:`.gathered` so that patterns are read per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ptychodus_pinn_torch.data.grouped import group_coordinates
from ptychodus_pinn_torch.data.paging import is_mapped, pattern_totals
from ptychodus_pinn_torch.engine.batches import group_for_training
from ptychodus_pinn_torch.engine.gathered import GatheredLabels, GatheredPatterns, ScanSlice

__all__ = ["TrainingGroups", "group_scans"]


@dataclass(frozen=True)
class TrainingGroups:
    """The groups of every training scan.

    x: ``(G, C, N, N)`` float32 ``X_full`` (a tensor, or :class:`GatheredPatterns` read per
        batch); positions: ``(G, C, 2)`` float32 ``coords_start_relative`` ``[x, y]`` px;
    y: ``(G, C, N, N)`` complex64 labels (tensor or :class:`GatheredLabels`) or None;
    scan_of_group: ``(G,)`` int64 index of each group's scan (into ``probes``);
    probes: one ``(N, N)`` complex64 probe per scan (``RawData.probeGuess``).
    """

    x: Any
    positions: torch.Tensor
    y: Any
    scan_of_group: torch.Tensor
    probes: tuple[np.ndarray, ...]


def _labels_missing() -> ValueError:
    return ValueError(
        "supervised training (model_type='supervised' or realspace_weight > 0) needs labels, "
        "but a training scan has neither 'Y' nor 'objectGuess'; add the true object as "
        "objectGuess to the NPZ or use model_type='pinn'"
    )


def _scan_slice(raw: Any, config: Any, *, seed: int, sequential: bool,
                need_labels: bool) -> tuple[ScanSlice, np.ndarray]:
    """One scan's groups by indices only: ``(ScanSlice, positions (G_s, C, 2) float32)``."""
    n = int(config.model.N)
    diff = raw.diff3d
    if diff.ndim != 3 or diff.shape[1:] != (n, n):
        raise ValueError(
            f"training data: diff3d has shape {diff.shape} but the model's ModelConfig.N = {n}; "
            f"use data with {n}x{n} patterns or a model (config) with N = {diff.shape[-1]}"
        )
    nsamples = raw.n_positions if sequential else int(config.n_groups or 512)
    nn = raw.group_indices(
        K=int(config.neighbor_count), nsamples=nsamples, seed=seed,
        sequential_sampling=bool(config.sequential_sampling or sequential),
        gridsize=int(config.model.gridsize),
        enable_oversampling=bool(getattr(config, "enable_oversampling", False)),
        neighbor_pool_size=getattr(config, "neighbor_pool_size", None),
    ).astype(np.int64)
    totals = pattern_totals(diff)  # chunk by chunk for a mapped scan
    mean_total = float(np.mean(totals[nn]))
    if not np.isfinite(mean_total) or mean_total <= 0:
        raise ValueError("training data: the grouped patterns are all zero; check the data")
    norm = float(np.sqrt((n / 2.0) ** 2 / mean_total))
    coords_nn, _, relative = group_coordinates(raw.xcoords_start, raw.ycoords_start, nn)
    positions = np.ascontiguousarray(relative[:, 0].transpose(0, 2, 1), dtype=np.float32)
    centres = None
    if need_labels:
        if raw.Y is None and raw.objectGuess is None:
            raise _labels_missing()
        physical, _, _ = group_coordinates(raw.xcoords, raw.ycoords, nn)
        centres = np.ascontiguousarray(physical[:, 0].transpose(0, 2, 1), dtype=np.float64)
    del coords_nn
    scan = ScanSlice(diff3d=diff, nn=nn, norm=norm, labels=raw.Y, obj=raw.objectGuess,
                     centres=centres)
    return scan, positions


def group_scans(raws: Sequence[Any], config: Any, *, seed: int, need_labels: bool,
                sequential: bool = False) -> TrainingGroups:
    """Group every scan of ``raws`` (``RawData``) with ``config`` (spec ``TrainingConfig``).

    ``n_groups`` groups are drawn from each scan (``sequential``: every point of each scan,
    test data). Each scan is normalized on its own (``normalize_data`` over its groups), as
    when it is trained alone.
    """
    if not raws:
        raise ValueError("no training scans given")
    probes = tuple(np.asarray(r.probeGuess, np.complex64) for r in raws)
    if len(raws) == 1 and not is_mapped(raws[0].diff3d):
        data = group_for_training(raws[0], config, seed=seed, need_labels=need_labels,
                                  sequential=sequential)
        return TrainingGroups(x=data.x, positions=data.positions, y=data.y,
                              scan_of_group=torch.zeros(data.x.shape[0], dtype=torch.int64),
                              probes=probes)
    slices, positions = [], []
    for raw in raws:
        scan, pos = _scan_slice(raw, config, seed=seed, sequential=sequential,
                                need_labels=need_labels)
        slices.append(scan)
        positions.append(pos)
    x = GatheredPatterns(slices)
    y = GatheredLabels(slices) if need_labels else None
    return TrainingGroups(
        x=x, positions=torch.from_numpy(np.concatenate(positions)), y=y,
        scan_of_group=torch.from_numpy(x.scan_of_group.copy()), probes=probes,
    )
