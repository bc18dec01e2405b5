"""``RawData``: one scan (positions, diffraction amplitudes, probe, optional object).

Mirrors upstream ``ptycho.raw_data.RawData`` (constructor, ``from_file``, ``to_file``,
``from_coords_without_pc``, ``generate_grouped_data``) with validation that ends in one clear
:class:`DataError`, no global state and no unpickling.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ptychodus_pinn_torch.data import empty_frames
from ptychodus_pinn_torch.data import validation as check
from ptychodus_pinn_torch.data.errors import DataError
from ptychodus_pinn_torch.data.grouped import YCentring, build_grouped_dict
from ptychodus_pinn_torch.data.grouping import group_indices
from ptychodus_pinn_torch.data.npz_io import write_npz
from ptychodus_pinn_torch.data.paging import is_mapped
from ptychodus_pinn_torch.data.readers import AUTO, ScanArrays, read_scan_arrays

logger = logging.getLogger(__name__)

class RawData:
    """One ptychographic scan in the NPZ contract's units.

    Attributes:
        xcoords, ycoords: ``(M,)`` float64 positions in object pixels (x = column, y = row).
        xcoords_start, ycoords_start: ``(M,)`` float64 nominal positions.
        diff3d: ``(M, N, N)`` float32 amplitudes ``sqrt(counts)``.
        probeGuess: ``(N, N)`` complex64.
        scan_index: ``(M,)`` int64.
        objectGuess: ``(H, W)`` complex64 or None.
        Y: ``(M, N, N)`` complex64 per-pattern ground truth or None.
        bad_pixels: ``(N, N)`` bool mask (from a ptychodus export) or None.
        metadata: dict from the ``_metadata`` JSON (e.g. ``{"nphotons": 1e6}``).
    """

    def __init__(
        self,
        xcoords: np.ndarray,
        ycoords: np.ndarray,
        xcoords_start: np.ndarray | None,
        ycoords_start: np.ndarray | None,
        diff3d: np.ndarray,
        probeGuess: np.ndarray,
        scan_index: np.ndarray | None,
        objectGuess: np.ndarray | None = None,
        Y: np.ndarray | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        bad_pixels: np.ndarray | None = None,
        diffraction_kind: check.DiffractionKind = "auto",
        diffraction_private: bool = False,
    ) -> None:
        """Validate and store a scan (see the class docstring for shapes and dtypes).

        ``xcoords_start``/``ycoords_start`` default to ``xcoords``/``ycoords``; ``scan_index``
        defaults to zeros. ``diffraction_kind`` is the amplitude/intensity policy of
        :func:`validation.diffraction_amplitude` (DATA-004). ``diffraction_private=True`` hands
        ``diff3d`` and ``Y`` over: float32 amplitudes (complex64 labels) are kept without a copy
        (the RawData then shares them), float32 counts are square-rooted in place, and a memory
        map is read into memory rather than kept (DATA-240).
        """
        x = check.coordinates("xcoords", xcoords)
        y = check.coordinates("ycoords", ycoords)
        xs = x if xcoords_start is None else check.coordinates("xcoords_start", xcoords_start)
        ys = y if ycoords_start is None else check.coordinates("ycoords_start", ycoords_start)
        if not (x.shape == y.shape == xs.shape == ys.shape):
            raise DataError(
                "Coordinate arrays must have matching shapes. Got xcoords "
                f"{x.shape}, ycoords {y.shape}, xcoords_start {xs.shape}, ycoords_start "
                f"{ys.shape}; give one x and one y per diffraction pattern."
            )
        amplitudes = check.diffraction_amplitude(diff3d, diffraction_kind,
                                                 private=diffraction_private)
        M, N = amplitudes.shape[0], amplitudes.shape[1]
        if x.shape[0] != M:
            raise DataError(
                f"xcoords/ycoords have {x.shape[0]} positions but diff3d has {M} patterns; "
                "give exactly one position per pattern"
            )
        self.xcoords = x
        self.ycoords = y
        self.xcoords_start = xs
        self.ycoords_start = ys
        self.diff3d = amplitudes
        self.probeGuess = check.probe(probeGuess, N)
        self.scan_index = check.scan_index(scan_index, M)
        self.objectGuess = check.object_guess(objectGuess)
        self.Y = check.ground_truth_patches(Y, M, N, private=diffraction_private)
        self.bad_pixels = check.bad_pixel_mask(bad_pixels, N)
        self.metadata: dict[str, Any] = check.metadata(metadata)
        check.warn_duplicate_positions(x, y)

    # -- shape -------------------------------------------------------------------------------
    @property
    def N(self) -> int:
        """Pattern (and probe) side length in pixels."""
        return int(self.diff3d.shape[1])

    @property
    def n_positions(self) -> int:
        """Number of scan positions M."""
        return int(self.diff3d.shape[0])

    def __repr__(self) -> str:
        obj = None if self.objectGuess is None else self.objectGuess.shape
        return f"RawData(n_positions={self.n_positions}, N={self.N}, objectGuess={obj})"

    # -- constructors ------------------------------------------------------------------------
    @staticmethod
    def from_coords_without_pc(
        xcoords: np.ndarray,
        ycoords: np.ndarray,
        diff3d: np.ndarray,
        probeGuess: np.ndarray,
        scan_index: np.ndarray | None,
        objectGuess: np.ndarray | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        diffraction_kind: check.DiffractionKind = "auto",
    ) -> RawData:
        """A RawData whose nominal (start) positions equal its positions (upstream behaviour)."""
        return RawData(
            xcoords, ycoords, xcoords, ycoords, diff3d, probeGuess, scan_index, objectGuess,
            metadata=metadata, diffraction_kind=diffraction_kind,
        )

    @staticmethod
    def from_scan(
        scan: ScanArrays, diffraction_kind: check.DiffractionKind | None = None
    ) -> RawData:
        """The one constructor every reader goes through (DATA-180).

        Args:
            scan: a reader's :class:`~.readers.ScanArrays`.
            diffraction_kind: overrides ``scan.diffraction_kind`` when given.
        """
        return RawData(
            scan.xcoords, scan.ycoords, scan.xcoords_start, scan.ycoords_start, scan.diff3d,
            scan.probeGuess, scan.scan_index, scan.objectGuess, scan.Y,
            metadata=scan.metadata, bad_pixels=scan.bad_pixels,
            diffraction_kind=diffraction_kind or scan.diffraction_kind,
            diffraction_private=scan.diff3d_private,
        )

    @staticmethod
    def from_file(
        path: str | Path, diffraction_kind: check.DiffractionKind = "auto", *,
        format: str = AUTO,  # noqa: A002
        drop_empty_frames: bool = False,
        map_patterns: bool = False,
    ) -> RawData:
        """Read a scan through the reader registry (:mod:`.readers`) without unpickling.

        ``format="auto"`` detects the format (the NPZ contract, ptychodus' training export,
        ptychodus' ``diffraction.h5`` + ``product.h5``, ...; :func:`readers.reader_names`).
        NPZ contract keys: required ``xcoords, ycoords, diff3d, probeGuess``; optional
        ``xcoords_start, ycoords_start, scan_index, objectGuess, Y, bad_pixels, _metadata``.
        A ptychodus export is converted with a logged note (DATA-005). ``diffraction_kind``
        other than ``"auto"`` overrides the reader's convention. ``drop_empty_frames`` drops
        all-zero frames with a warning naming them (DATA-124); otherwise they are refused.
        ``map_patterns`` keeps float32 amplitude patterns that an NPZ stores uncompressed
        memory-mapped from the file (read-only ``diff3d``; DATA-241) instead of reading them
        into memory: the file must then stay unchanged while the RawData is used (truncating
        it in place makes the next read fail with SIGBUS).

        Raises:
            FileNotFoundError: no such file.
            DataError: an unknown format, pickled arrays, missing keys, or any contract
                violation.
        """
        scan = read_scan_arrays(path, format)
        if drop_empty_frames:
            scan = empty_frames.drop_empty_frames(scan, str(path))
        if map_patterns and scan.diff3d_private and is_mapped(scan.diff3d):
            # not private: validation keeps a float32 amplitude map as it is (DATA-184/241)
            scan = dataclasses.replace(scan, diff3d_private=False)
        return RawData.from_scan(scan, None if diffraction_kind == "auto" else diffraction_kind)

    def to_file(self, path: str | Path) -> None:
        """Write the contract NPZ (compressed, reproducible bytes; optional keys only if set)."""
        arrays: dict[str, np.ndarray] = {
            "xcoords": self.xcoords,
            "ycoords": self.ycoords,
            "xcoords_start": self.xcoords_start,
            "ycoords_start": self.ycoords_start,
            "diff3d": self.diff3d,
            "probeGuess": self.probeGuess,
            "scan_index": self.scan_index,
        }
        if self.objectGuess is not None:
            arrays["objectGuess"] = self.objectGuess
        if self.Y is not None:
            arrays["Y"] = self.Y
        if self.bad_pixels is not None:
            arrays["bad_pixels"] = self.bad_pixels
        if self.metadata:
            arrays["_metadata"] = np.array(json.dumps(self.metadata, sort_keys=True))
        write_npz(path, arrays)

    def subset(self, indices: np.ndarray | list[int] | slice) -> RawData:
        """A RawData restricted to the given positions (e.g. a train/validation split).

        Args:
            indices: integer indices, a boolean mask of length M, or a slice.
        """
        idx = np.arange(self.n_positions)[indices]
        if idx.size == 0:
            raise DataError(f"subset indices select no positions (got {indices!r})")
        return RawData(
            self.xcoords[idx], self.ycoords[idx], self.xcoords_start[idx],
            self.ycoords_start[idx], self.diff3d[idx], self.probeGuess, self.scan_index[idx],
            self.objectGuess, None if self.Y is None else self.Y[idx],
            metadata=self.metadata, bad_pixels=self.bad_pixels, diffraction_kind="amplitude",
            diffraction_private=True,  # diff3d[idx] is a fresh copy
        )

    # -- grouping ----------------------------------------------------------------------------
    def group_indices(
        self,
        K: int = 4,
        nsamples: int = 1,
        seed: int | None = None,
        sequential_sampling: bool = False,
        gridsize: int = 1,
        enable_oversampling: bool = False,
        neighbor_pool_size: int | None = None,
    ) -> np.ndarray:
        """Only the ``(B, C)`` ``nn_indices`` of :meth:`generate_grouped_data`."""
        return group_indices(
            self.xcoords, self.ycoords, gridsize=gridsize, K=K, nsamples=nsamples, seed=seed,
            sequential_sampling=sequential_sampling, enable_oversampling=enable_oversampling,
            neighbor_pool_size=neighbor_pool_size,
        )

    def generate_grouped_data(
        self,
        N: int,
        K: int = 4,
        nsamples: int = 1,
        seed: int | None = None,
        sequential_sampling: bool = False,
        gridsize: int = 1,
        enable_oversampling: bool = False,
        neighbor_pool_size: int | None = None,
        *,
        y_centring: YCentring = "upstream",
    ) -> dict[str, Any]:
        """Group positions and build upstream's grouped dictionary (reference §2).

        Args:
            N: patch size; must equal the pattern size.
            K, nsamples, seed, sequential_sampling, gridsize, enable_oversampling,
                neighbor_pool_size: as upstream (see :func:`grouping.group_indices`).
            y_centring: ``"upstream"`` (parity) or ``"physical"`` centring of ``Y`` at
                gridsize > 1 (DATA-011).

        Returns:
            dict with keys ``diffraction, X_full, Y, coords_offsets, coords_relative,
            coords_start_offsets, coords_start_relative, coords_nn, coords_start_nn,
            nn_indices, objectGuess`` (shapes in :func:`grouped.build_grouped_dict`).
        """
        if int(N) != N or N != self.N:
            raise DataError(
                f"N={N!r} does not match the diffraction patterns ({self.N} x {self.N}); "
                f"pass N={self.N}"
            )
        nn = self.group_indices(
            K, nsamples, seed, sequential_sampling, gridsize, enable_oversampling,
            neighbor_pool_size,
        )
        return build_grouped_dict(
            diff3d=self.diff3d, xcoords=self.xcoords, ycoords=self.ycoords,
            xcoords_start=self.xcoords_start, ycoords_start=self.ycoords_start,
            nn_indices=nn, N=self.N, objectGuess=self.objectGuess, Y=self.Y,
            y_centring=y_centring,
        )
