"""Training data for PtychoPINN-PyTorch: writing the NPZ contract, finding training inputs.

:func:`export_training_npz` writes what "Export Training Data..." saves; :func:`training_inputs`
finds what ``train(input_path, output_path)`` trains on: ``train_data.npz`` (and
``test_data.npz``) in the input folder, or, in batch and remote runs that stage only
ptychodus' standard files, a ``train_data.npz`` built from ``diffraction.h5`` + ``product.h5``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ptychodus.api.reconstruct import ReconstructInput

from ptychodus_pinn_torch.data.npz_io import write_npz
from ptychodus_pinn_torch.data.readers import read_scan_arrays
from ptychodus_pinn_torch.host.conversion import (
    CONTRACT_KEYS,
    OPTIONAL_KEYS,
    scan_arrays_from_input,
)

logger = logging.getLogger(__name__)

__all__ = [
    "TEST_FILE",
    "TRAIN_FILE",
    "build_from_standard_layout",
    "export_training_npz",
    "training_inputs",
]

TRAIN_FILE = "train_data.npz"
TEST_FILE = "test_data.npz"


def export_training_npz(file_path: Path, parameters: ReconstructInput) -> Path:
    """Write the PtychoPINN NPZ contract of ``parameters`` to exactly ``file_path``.

    Keys and dtypes: see :func:`~.conversion.scan_arrays_from_input` (``diff3d`` float32
    amplitude, ``probeGuess`` (N, N) complex64, coordinates in object pixels). Uncompressed, so
    loaders can memory-map it. Returns the path written.
    """
    arrays = scan_arrays_from_input(parameters)
    file_path = Path(file_path)
    write_npz(file_path, arrays, compress=False)  # atomic; the name is kept as given
    logger.info("exported %d patterns of %dx%d pixels to %s", *arrays["diff3d"].shape, file_path)
    return file_path


def build_from_standard_layout(input_dir: Path, output_file: Path) -> Path:
    """Build ``output_file`` (the NPZ contract) from ``input_dir/diffraction.h5`` and
    ``input_dir/product.h5`` (ptychodus' ``StandardFileLayout``) through the data layer's
    ``ptychodus-h5`` reader, which pairs patterns and positions the way ptychodus'
    ``prepare_reconstruct_input`` does and converts like :func:`export_training_npz`."""
    scan = read_scan_arrays(Path(input_dir), "ptychodus-h5")
    arrays = {key: getattr(scan, key) for key in (*CONTRACT_KEYS, *OPTIONAL_KEYS)
              if getattr(scan, key) is not None}
    output_file = Path(output_file)
    write_npz(output_file, arrays, compress=False)
    logger.info("built %s (%d patterns of %dx%d pixels) from %s", output_file,
                *arrays["diff3d"].shape, input_dir)
    return output_file


def training_inputs(input_path: Path, output_path: Path) -> tuple[Path, Path | None]:
    """``(train file, test file or None)`` for ``train(input_path, output_path)``.

    Looked for, in order:
    1. ``input_path`` itself when it is an ``.npz`` file;
    2. ``input_path/train_data.npz`` (plus ``input_path/test_data.npz`` when present), else the
       folder's only ``.npz`` file (an export saved under another name);
    3. ``input_path/diffraction.h5`` + ``input_path/product.h5``: converted to
       ``output_path/train_data.npz`` first.
    Raises FileNotFoundError naming every place looked at and what to put there.
    """
    input_path = Path(input_path)
    if input_path.is_file() and input_path.suffix == ".npz":
        return input_path, None
    train = input_path / TRAIN_FILE
    if train.is_file():
        test = input_path / TEST_FILE
        return train, test if test.is_file() else None
    others = sorted(p for p in input_path.glob("*.npz") if p.is_file())
    if len(others) == 1:
        logger.info("training on %s, the only .npz file in %s", others[0].name, input_path)
        return others[0], None
    if len(others) > 1:
        names = ", ".join(p.name for p in others)
        raise FileNotFoundError(
            f"no {TRAIN_FILE} in {input_path}, and several other .npz files ({names}): rename "
            f"the training export to {TRAIN_FILE} (and a test export to {TEST_FILE})"
        )
    from ptychodus.api.io import StandardFileLayout

    diffraction = input_path / StandardFileLayout.DIFFRACTION
    product = input_path / StandardFileLayout.PRODUCT
    if diffraction.is_file() and product.is_file():
        built = Path(output_path) / TRAIN_FILE
        logger.info("no %s in %s; building it from %s and %s", TRAIN_FILE, input_path,
                    diffraction.name, product.name)
        return build_from_standard_layout(input_path, built), None
    raise FileNotFoundError(
        f"no training data in {input_path}: expected {TRAIN_FILE} (from Export Training "
        "Data...) or diffraction.h5 + product.h5 (ptychodus' batch layout). Export the training "
        "data into that folder, or choose the folder that holds it."
    )
