"""ptychodus' data in the package's units, read from its standard HDF5 files or handed over in
memory by the host: one conversion (:func:`scan_from_ptychodus`) for both (DATA-181).

ptychodus stores measured intensities (counts) with a bad-pixel mask, probe positions in metres
paired to patterns by scan index, a ``(OPR, modes, H, W)`` probe and a ``(layers, H, W)`` object
with its centre and pixel size (host §4-5). The package wants amplitudes ``sqrt(I)`` with bad
pixels filled by biharmonic inpainting (as ptychodus' own PtychoPINN export), positions in
object pixels about the array centre ``(W - 1) / 2`` (as ptychodus' ``ObjectGeometry``), probe
mode 0 and object layer 0. Reads HDF5 with h5py only; ptychodus itself is not imported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ptychodus_pinn_torch.data.errors import DataError
from ptychodus_pinn_torch.data.readers import FunctionReader, PatternStream, ScanArrays

logger = logging.getLogger(__name__)

__all__ = [
    "DIFFRACTION_FILE",
    "PRODUCT_FILE",
    "READERS",
    "ObjectGrid",
    "amplitude_from_counts",
    "fill_bad_pixels",
    "pair_patterns_to_positions",
    "positions_to_object_px",
    "read_standard_files",
    "scan_from_ptychodus",
    "standard_file_pair",
    "stream_standard_files",
]

#: ptychodus' ``StandardFileLayout`` names (host §5).
DIFFRACTION_FILE = "diffraction.h5"
PRODUCT_FILE = "product.h5"


@dataclass(frozen=True)
class ObjectGrid:
    """Where the object array sits: centre (m), pixel size (m), array shape ``(H, W)``."""

    center_x_m: float
    center_y_m: float
    pixel_width_m: float
    pixel_height_m: float
    height_px: int
    width_px: int


def positions_to_object_px(x_m: np.ndarray, y_m: np.ndarray,
                           grid: ObjectGrid) -> tuple[np.ndarray, np.ndarray]:
    """Positions in metres ``(M,)`` -> object pixels ``(M,)`` float64 (x = column, y = row),
    ``(x - centre) / pixel size + (W - 1) / 2`` as ptychodus' ``ObjectGeometry`` maps them."""
    if not (grid.pixel_width_m > 0 and grid.pixel_height_m > 0):
        raise DataError(f"object pixel size must be > 0 m, got {grid.pixel_width_m} x "
                        f"{grid.pixel_height_m}; fix the object geometry in the product")
    x = (np.asarray(x_m, np.float64) - grid.center_x_m) / grid.pixel_width_m
    y = (np.asarray(y_m, np.float64) - grid.center_y_m) / grid.pixel_height_m
    return x + (grid.width_px - 1) / 2, y + (grid.height_px - 1) / 2


def fill_bad_pixels(intensity: np.ndarray, bad_pixels: np.ndarray | None) -> np.ndarray:
    """Counts with bad pixels filled by biharmonic inpainting, negatives set to 0.

    Args:
        intensity: ``(M, N, N)`` counts, any real dtype.
        bad_pixels: ``(N, N)`` bool or None.

    Returns:
        ``(M, N, N)`` float64 counts >= 0 (one biharmonic system for the whole stack, the mask
        being shared, as ptychodus' ``inpaint_bad_pixels``; scikit-image, a ptychodus
        dependency, is imported only when a pixel is bad).
    """
    data = np.asarray(intensity, dtype=np.float64)
    if bad_pixels is not None and np.any(bad_pixels):
        from skimage.restoration import inpaint_biharmonic

        stacked = inpaint_biharmonic(np.moveaxis(data, 0, -1), np.asarray(bad_pixels, bool),
                                     channel_axis=-1)
        data = np.moveaxis(stacked, -1, 0)
    return np.clip(data, 0.0, None)


def amplitude_from_counts(intensity: np.ndarray, bad_pixels: np.ndarray | None) -> np.ndarray:
    """``(M, N, N)`` counts -> float32 amplitude ``sqrt`` with bad pixels inpainted and negative
    counts set to 0 (:func:`fill_bad_pixels`)."""
    return np.sqrt(fill_bad_pixels(intensity, bad_pixels)).astype(np.float32)


def scan_from_ptychodus(intensity: np.ndarray, bad_pixels: np.ndarray | None,
                        x_m: np.ndarray, y_m: np.ndarray, grid: ObjectGrid,
                        probe: np.ndarray, object_layer: np.ndarray | None,
                        *, source: str, n_patterns: int | None = None) -> ScanArrays:
    """ptychodus' paired arrays as :class:`ScanArrays` in the package's units.

    Args:
        intensity: ``(M, N, N)`` counts (read-only views welcome; never modified).
        bad_pixels: ``(N, N)`` bool mask or None (an all-False mask is None).
        x_m, y_m: ``(M,)`` probe positions in metres, row-aligned with ``intensity``.
        grid: the object's geometry.
        probe: ``(N, N)``, ``(modes, N, N)`` or ``(OPR, modes, N, N)`` complex; mode 0 of OPR 0
            is kept.
        object_layer: ``(H, W)`` or ``(layers, H, W)`` complex (layer 0 kept) or None.
        source: format name for messages.
        n_patterns: the number of patterns when ``intensity`` is an empty placeholder (the
            patterns are converted elsewhere, chunk by chunk).

    Returns:
        :class:`ScanArrays` with ``diff3d`` float32 amplitude ``sqrt(I)`` (bad pixels
        inpainted, negative counts 0; ``diffraction_kind="amplitude"``), positions float64 in
        object pixels, start positions equal, ``probeGuess`` complex64 ``(N, N)``,
        ``objectGuess`` complex64 ``(H, W)``, ``scan_index`` zeros.

    Raises:
        DataError: non-square or non-finite patterns, pattern/position count mismatch, or a
            probe of another size than the patterns.
    """
    patterns = np.asarray(intensity)
    count = patterns.shape[0] if n_patterns is None else n_patterns
    if patterns.ndim != 3 or patterns.shape[1] != patterns.shape[2]:
        raise DataError(
            f"diffraction patterns must be (M, N, N) square, got shape {patterns.shape}; "
            "crop the detector to a square region in ptychodus' Diffraction view"
        )
    if patterns.dtype.kind == "f" and not np.isfinite(patterns).all():
        raise DataError("diffraction patterns contain NaN or Inf values; mark those pixels "
                        "as bad pixels or reload the data")
    if len(x_m) != count or len(y_m) != count:
        raise DataError(
            f"{count} diffraction patterns but {len(x_m)} probe positions; "
            "every pattern needs one position (check the scan in the Positions view)"
        )
    mask = None if bad_pixels is None else np.asarray(bad_pixels, dtype=bool)
    if mask is not None and mask.shape != patterns.shape[1:]:
        logger.warning("%s: ignoring a bad-pixel mask of shape %s (patterns are %s)", source,
                       mask.shape, patterns.shape[1:])
        mask = None
    amplitude = amplitude_from_counts(patterns, mask)
    probe_arr = np.asarray(probe)
    while probe_arr.ndim > 2:
        probe_arr = probe_arr[0]
    if probe_arr.shape != patterns.shape[1:]:
        raise DataError(
            f"probe is {probe_arr.shape[0]}x{probe_arr.shape[1]} pixels but the diffraction "
            f"patterns are {patterns.shape[1]}x{patterns.shape[2]}; the probe must have the "
            "pattern size (rebuild the probe in ptychodus' Probe view)"
        )
    obj = None
    if object_layer is not None:
        obj = np.asarray(object_layer)
        while obj.ndim > 2:
            obj = obj[0]
        obj = obj.astype(np.complex64)
    x, y = positions_to_object_px(x_m, y_m, grid)
    return ScanArrays(
        xcoords=x, ycoords=y, xcoords_start=x.copy(), ycoords_start=y.copy(), diff3d=amplitude,
        probeGuess=probe_arr.astype(np.complex64), objectGuess=obj,
        scan_index=np.zeros(count, dtype=np.int64),
        # PHYS-170: the mask travels with the (inpainted) amplitudes, so the losses and the
        # refinement leave those pixels out (HOST-261)
        bad_pixels=mask if mask is not None and mask.any() else None,
        diffraction_kind="amplitude", source=source,
        diff3d_private=True,  # amplitude_from_counts made it: RawData keeps it, no copy
    )


def pair_patterns_to_positions(pattern_indexes: np.ndarray, position_indexes: np.ndarray,
                               x_m: np.ndarray, y_m: np.ndarray
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair patterns to positions by scan index as ptychodus' ``prepare_reconstruct_input``.

    Duplicate position indexes are averaged; a pattern index inside the positions' index
    range without a position is linearly interpolated; patterns outside the range are dropped.

    Args:
        pattern_indexes: ``(M,)`` int scan index of each pattern.
        position_indexes, x_m, y_m: ``(P,)`` scan index and coordinates of each position.

    Returns:
        ``(keep, x, y)``: ``keep`` ``(M',)`` int offsets of the kept patterns (in file order),
        ``x``, ``y`` ``(M',)`` float64 metres.
    """
    pattern_indexes = np.asarray(pattern_indexes).reshape(-1)
    position_indexes = np.asarray(position_indexes).reshape(-1)
    if pattern_indexes.size == 0 or position_indexes.size == 0:
        raise DataError(f"no patterns ({pattern_indexes.size}) or no positions "
                        f"({position_indexes.size}) to pair; check both files")
    anchors, inverse = np.unique(position_indexes, return_inverse=True)
    counts = np.bincount(inverse)
    mean_x = np.bincount(inverse, weights=np.asarray(x_m, np.float64)) / counts
    mean_y = np.bincount(inverse, weights=np.asarray(y_m, np.float64)) / counts
    keep = np.flatnonzero((pattern_indexes >= anchors[0]) & (pattern_indexes <= anchors[-1]))
    if keep.size == 0:
        raise DataError(
            f"no pattern index lies in the positions' index range {anchors[0]}..{anchors[-1]}; "
            "the diffraction and product files do not belong together"
        )
    dropped = pattern_indexes.size - keep.size
    if dropped:
        logger.warning("dropping %d patterns whose scan index has no position", dropped)
    wanted = pattern_indexes[keep].astype(np.float64)
    return keep, np.interp(wanted, anchors, mean_x), np.interp(wanted, anchors, mean_y)


def standard_file_pair(path: Path) -> tuple[Path, Path] | None:
    """``(diffraction.h5, product.h5)`` for a folder holding both, or for either file with
    the other beside it; None otherwise."""
    folder = path if path.is_dir() else path.parent
    if path.is_file() and path.name not in (DIFFRACTION_FILE, PRODUCT_FILE):
        return None
    pair = folder / DIFFRACTION_FILE, folder / PRODUCT_FILE
    return pair if pair[0].is_file() and pair[1].is_file() else None


def _dataset(h5: object, key: str, file: Path) -> np.ndarray:
    import h5py

    item = h5.get(key)  # type: ignore[attr-defined]
    if not isinstance(item, h5py.Dataset):
        raise DataError(f"{str(file)!r} has no dataset {key!r}; is it a ptychodus "
                        f"{file.name} written by ptychodus 1.7 (save_diffraction_data/"
                        "save_product)?")
    return np.asarray(item[()])


def _attr(h5: object, key: str, file: Path) -> float:
    try:
        return float(h5.attrs[key])  # type: ignore[attr-defined]
    except KeyError as exc:
        raise DataError(f"{str(file)!r}: attribute {key!r} is missing; re-save the product "
                        "with ptychodus 1.7") from exc


@dataclass(frozen=True)
class _StandardFiles:
    """What the small datasets of a standard file pair say (patterns not read)."""

    diffraction: Path
    keep: np.ndarray  # (M',) int offsets of the kept patterns, increasing
    all_kept: bool
    x_m: np.ndarray
    y_m: np.ndarray
    grid: ObjectGrid
    probe: np.ndarray
    layer: np.ndarray
    photons: float
    bad: np.ndarray | None
    shape: tuple[int, ...]  # stored patterns (M, N, N)
    dtype: np.dtype


def _open_standard_files(path: Path) -> _StandardFiles:
    import h5py

    pair = standard_file_pair(path)
    if pair is None:
        raise DataError(f"{str(path)!r}: expected a folder with {DIFFRACTION_FILE} and "
                        f"{PRODUCT_FILE} (ptychodus' standard layout), or one of them with the "
                        "other beside it")
    diffraction, product = pair
    try:
        with h5py.File(product, "r") as h5:
            index = _dataset(h5, "probe_position_indexes", product)
            x_m = _dataset(h5, "probe_position_x_m", product)
            y_m = _dataset(h5, "probe_position_y_m", product)
            probe = _dataset(h5, "probe", product)
            obj = h5.get("object")
            if not isinstance(obj, h5py.Dataset):
                raise DataError(f"{str(product)!r} has no dataset 'object'; re-save the "
                                "product with ptychodus 1.7")
            grid = ObjectGrid(
                center_x_m=_attr(obj, "center_x_m", product),
                center_y_m=_attr(obj, "center_y_m", product),
                pixel_width_m=_attr(obj, "pixel_width_m", product),
                pixel_height_m=_attr(obj, "pixel_height_m", product),
                height_px=int(obj.shape[-2]), width_px=int(obj.shape[-1]),
            )
            layer = np.asarray(obj[0] if obj.ndim == 3 else obj[()])
            photons = float(h5.attrs.get("probe_photon_count", 0.0))
        with h5py.File(diffraction, "r") as h5:
            pattern_index = _dataset(h5, "indexes", diffraction)
            patterns = h5.get("patterns")
            if not isinstance(patterns, h5py.Dataset):
                raise DataError(f"{str(diffraction)!r} has no dataset 'patterns'; is it "
                                "ptychodus' assembled diffraction file?")
            shape, dtype = tuple(int(v) for v in patterns.shape), patterns.dtype
            bad = _dataset(h5, "bad_pixels", diffraction) if "bad_pixels" in h5 else None
    except OSError as exc:
        raise DataError(f"{str(path)!r}: could not read ptychodus' HDF5 files ({exc})") from exc
    if len(shape) != 3 or shape[0] != len(pattern_index):
        raise DataError(f"{str(diffraction)!r}: patterns {shape} and indexes "
                        f"{len(pattern_index)} do not match; re-save the diffraction data")
    keep, x_pair, y_pair = pair_patterns_to_positions(pattern_index, index, x_m, y_m)
    return _StandardFiles(diffraction, keep, keep.size == shape[0], x_pair, y_pair, grid,
                          probe, layer, photons, bad, shape, dtype)


def _pattern_chunks(files: _StandardFiles, rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """Kept patterns in order, ``rows`` at a time, as float32 amplitudes (DATA-181)."""
    import h5py

    mask = files.bad if files.bad is not None and np.any(files.bad) else None
    with h5py.File(files.diffraction, "r") as h5:
        patterns = h5["patterns"]
        for lo in range(0, files.keep.size, rows):
            hi = min(lo + rows, files.keep.size)
            if files.all_kept:
                counts = patterns[lo:hi]
            else:
                counts = patterns[files.keep[lo:hi]]  # increasing offsets: h5py selection
            yield lo, amplitude_from_counts(np.asarray(counts), mask)


def stream_standard_files(path: Path) -> tuple[ScanArrays, PatternStream]:
    """ptychodus' ``diffraction.h5`` + ``product.h5`` as their small arrays (``diff3d`` an
    empty placeholder) and a :class:`PatternStream` of float32 amplitudes (DATA-181)."""
    files = _open_standard_files(path)
    n = files.shape[1]
    scan = scan_from_ptychodus(
        np.empty((0, n, n), np.float32), None, files.x_m, files.y_m, files.grid, files.probe,
        files.layer, source="ptychodus-h5", n_patterns=files.keep.size,
    )
    if files.photons > 0:
        scan.metadata["probe_photon_count"] = files.photons
    mask = None if files.bad is None else np.asarray(files.bad, dtype=bool)
    if mask is not None and mask.any() and mask.shape == tuple(files.shape[1:]):
        scan = replace(scan, bad_pixels=mask)  # PHYS-170: losses and refinement skip them
    stream = PatternStream(shape=(files.keep.size, n, files.shape[2]), dtype=np.dtype("float32"),
                           kind="amplitude", chunks=lambda rows: _pattern_chunks(files, rows))
    return scan, stream


def read_standard_files(path: Path) -> ScanArrays:
    """ptychodus' ``diffraction.h5`` + ``product.h5`` (a folder, or either file) as one scan.

    Patterns are read as stored (intensity), paired to positions by scan index
    (:func:`pair_patterns_to_positions`) and converted as :func:`scan_from_ptychodus`; the
    product's ``probe_photon_count`` (when > 0) becomes ``metadata["probe_photon_count"]``.
    """
    scan, stream = stream_standard_files(path)
    diff3d = np.empty(stream.shape, np.float32)
    for lo, chunk in stream.chunks(max(1, stream.shape[0])):
        diff3d[lo:lo + chunk.shape[0]] = chunk
    return replace(scan, diff3d=diff3d)


def _is_standard(path: Path) -> bool:
    return standard_file_pair(path) is not None


READERS = (
    FunctionReader("ptychodus-h5", f"ptychodus' standard files {DIFFRACTION_FILE} + "
                   f"{PRODUCT_FILE} (a folder, or either file)", _is_standard,
                   read_standard_files),
)
