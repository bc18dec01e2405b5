"""The PtychoPINN generators (``GENERATORS``: cnn, unet, fno) and the physics-informed module.

Public API: ``build_model``, ``PtychoPINN``, ``ModelOutput``, ``GENERATORS``, ``Generator`` (the
``cnn``), ``widths_for``,
the canvas ops ``padded_size``, ``merge_patches``, ``extract_patches``, ``pad_to_canvas``,
``trim_canvas``, and the accepted values ``SUPPORTED_N``, ``AMP_ACTIVATIONS``.
"""

from ptychodus_pinn_torch.model.generators import REGISTRY as GENERATORS
from ptychodus_pinn_torch.model.generators.cnn import (
    AMP_ACTIVATIONS,
    SUPPORTED_N,
    Generator,
    Widths,
    widths_for,
)
from ptychodus_pinn_torch.model.ops import (
    extract_patches,
    merge_patches,
    pad_to_canvas,
    padded_size,
    trim_canvas,
)
from ptychodus_pinn_torch.model.pinn import ModelOutput, PtychoPINN, build_model

__all__ = [
    "AMP_ACTIVATIONS",
    "SUPPORTED_N",
    "GENERATORS",
    "Generator",
    "ModelOutput",
    "PtychoPINN",
    "Widths",
    "build_model",
    "extract_patches",
    "merge_patches",
    "pad_to_canvas",
    "padded_size",
    "trim_canvas",
    "widths_for",
]
