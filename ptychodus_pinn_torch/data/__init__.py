"""Data layer: the NPZ contract (:class:`RawData`), grouping, normalization and simulation.

Imports numpy and scipy (h5py for ptychodus' HDF5 files; scikit-image lazily, for image
phantoms in simulation and bad-pixel inpainting). Scans enter through :mod:`.readers`.
"""

from ptychodus_pinn_torch.data.errors import DataError
from ptychodus_pinn_torch.data.grouped import GROUPED_KEYS, build_grouped_dict
from ptychodus_pinn_torch.data.grouping import group_indices
from ptychodus_pinn_torch.data.normalize import (
    dataset_intensity_scale,
    intensity_scale,
    normalize_data,
)
from ptychodus_pinn_torch.data.patches import extract_patches
from ptychodus_pinn_torch.data.raw_data import RawData
from ptychodus_pinn_torch.data.readers import (
    ScanArrays,
    detect_format,
    reader_names,
    register_reader,
)

__all__ = [
    "GROUPED_KEYS",
    "DataError",
    "RawData",
    "ScanArrays",
    "build_grouped_dict",
    "dataset_intensity_scale",
    "detect_format",
    "extract_patches",
    "group_indices",
    "intensity_scale",
    "normalize_data",
    "reader_names",
    "register_reader",
]
