"""Grouped training data gathered batch by batch from the scans' patterns (ENG-183, ENG-184).

The in-memory path groups a scan into ``X_full`` ``(G, C, N, N)`` once. For scans larger than
memory (mapped scans, DATA-182) and for several scans at once, :class:`GatheredPatterns` keeps
only the group indices and reads ``s·X_full`` for the groups a batch asks for:
``diff3d[nn] · s_norm(scan) · factor``, the same float64-then-float32 arithmetic as
``normalize_data`` (so the values equal the in-memory path's to float32 rounding).
:class:`GatheredLabels` does the same for supervised labels (``Y`` rows or ``objectGuess``
patches at the pattern positions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ptychodus_pinn_torch.data.paging import CHUNK_BYTES, is_mapped, release_pages

__all__ = ["GatheredLabels", "GatheredPatterns", "ScanSlice", "select"]


@dataclass(frozen=True)
class ScanSlice:
    """The groups of one scan inside a gathered set.

    diff3d: ``(M, N, N)`` float32 amplitudes (in memory or memory-mapped).
    nn: ``(G_s, C)`` int64 pattern indices of the scan's groups.
    norm: ``s_norm`` of the scan (``normalize_data``'s factor over its groups).
    labels: ``(M, N, N)`` complex64 ``Y`` rows, or None.
    obj: ``(H, W)`` complex64 ``objectGuess``, or None.
    centres: ``(G_s, C, 2)`` float64 ``[x, y]`` object pixels where each pattern was measured
        (``coords_nn``: channel c of a label is centred where channel c of the model looks).
    """

    diff3d: np.ndarray
    nn: np.ndarray
    norm: float
    labels: np.ndarray | None = None
    obj: np.ndarray | None = None
    centres: np.ndarray | None = None


def select(idx: torch.Tensor | slice | np.ndarray, total: int) -> np.ndarray:
    """``idx`` (tensor, slice or array of group indices) as an int64 numpy array."""
    if isinstance(idx, slice):
        return np.arange(total)[idx]
    if isinstance(idx, torch.Tensor):
        return idx.detach().cpu().numpy().astype(np.int64, copy=False).reshape(-1)
    return np.asarray(idx, dtype=np.int64).reshape(-1)


class _Gathered:
    """Groups of several :class:`ScanSlice` addressed by one global group index."""

    def __init__(self, scans: Sequence[ScanSlice], factor: float = 1.0,
                 device: torch.device | str = "cpu") -> None:
        if not scans:
            raise ValueError("no scans to gather groups from")
        self.scans = tuple(scans)
        sizes = [int(s.nn.shape[0]) for s in self.scans]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.scan_of_group = np.repeat(np.arange(len(sizes)), sizes).astype(np.int64)
        self.C = int(self.scans[0].nn.shape[1])
        self.N = int(self.scans[0].diff3d.shape[-1])
        self.factor = float(factor)
        self.device = torch.device(device)
        self._read_bytes = 0

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (int(self.offsets[-1]), self.C, self.N, self.N)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _copy(self, factor: float, device: torch.device) -> _Gathered:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.factor, clone.device, clone._read_bytes = factor, device, 0
        return clone

    def __mul__(self, factor: float) -> _Gathered:
        return self._copy(self.factor * float(factor), self.device)

    __rmul__ = __mul__

    def to(self, device: torch.device | str) -> _Gathered:
        return self._copy(self.factor, torch.device(device))

    def _account(self, nbytes: int) -> None:
        """Release the mapped pages once a chunk's worth of patterns has been read (DATA-184)."""
        self._read_bytes += nbytes
        if self._read_bytes >= CHUNK_BYTES:
            for scan in self.scans:
                for array in (scan.diff3d, scan.labels):
                    if array is not None and is_mapped(array):
                        release_pages(array)
            self._read_bytes = 0

    def _rows(self, idx: torch.Tensor | slice | np.ndarray) -> list[tuple[int, np.ndarray,
                                                                            np.ndarray]]:
        """``[(scan, positions in the batch, local group indices)]`` for a batch."""
        groups = select(idx, len(self))
        if groups.size and (groups.min() < 0 or groups.max() >= len(self)):
            raise IndexError(f"group index out of range 0..{len(self) - 1}")
        scan_ids = self.scan_of_group[groups]
        out = []
        for s in np.unique(scan_ids):
            where = np.flatnonzero(scan_ids == s)
            out.append((int(s), where, groups[where] - self.offsets[s]))
        return out


class GatheredPatterns(_Gathered):
    """``(G, C, N, N)`` float32 ``s_norm·factor·diff3d[nn]``, read per batch (``x[idx]``).

    Supports what the training loop does with the eager tensor: ``x * scale``, ``x.to(device)``,
    ``x.shape``, ``len(x)`` and ``x[idx]`` (a tensor, slice or array of group indices), which
    returns a ``(b, C, N, N)`` float32 tensor on the device.
    """

    def __getitem__(self, idx: torch.Tensor | slice | np.ndarray) -> torch.Tensor:
        rows = self._rows(idx)
        count = sum(len(where) for _, where, _ in rows)
        out = np.empty((count, self.C, self.N, self.N), dtype=np.float32)
        for s, where, local in rows:
            scan = self.scans[s]
            picked = np.asarray(scan.diff3d[scan.nn[local].reshape(-1)])
            self._account(picked.nbytes)
            x = (picked.astype(np.float64) * scan.norm).astype(np.float32)
            out[where] = x.reshape(len(where), self.C, self.N, self.N)
        tensor = torch.from_numpy(out)
        if self.factor != 1.0:
            tensor = tensor * self.factor
        return tensor.to(self.device)


class GatheredLabels(_Gathered):
    """``(G, C, N, N)`` complex64 supervised labels, read per batch: ``Y[nn]`` when the scan has
    ``Y``, else ``objectGuess`` patches centred at the patterns' positions."""

    def __getitem__(self, idx: torch.Tensor | slice | np.ndarray) -> torch.Tensor:
        from ptychodus_pinn_torch.data.patches import extract_patches

        rows = self._rows(idx)
        count = sum(len(where) for _, where, _ in rows)
        out = np.empty((count, self.C, self.N, self.N), dtype=np.complex64)
        for s, where, local in rows:
            scan = self.scans[s]
            if scan.labels is not None:
                picked = np.asarray(scan.labels[scan.nn[local].reshape(-1)], np.complex64)
                self._account(picked.nbytes)
            elif scan.obj is not None and scan.centres is not None:
                flat = scan.centres[local].reshape(-1, 2)
                picked = extract_patches(scan.obj, flat, self.N)
            else:
                raise ValueError(f"scan {s} has neither Y nor objectGuess for labels")
            out[where] = picked.reshape(len(where), self.C, self.N, self.N)
        return torch.from_numpy(out).to(self.device)
