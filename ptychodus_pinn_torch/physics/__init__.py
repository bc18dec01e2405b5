"""Physics primitives of PtychoPINN in torch (last two axes of every tensor are the image).

Translation, probe normalization / masks / smoothing, the far-field forward model, the intensity
scale and the training losses. Rules: specs/PHYS.md.
"""

from .forward import intensity_scale, pad_and_diffract
from .losses import complex_mae, mae, poisson_nll, realspace_loss, total_variation
from .masks import centre_mask, disk_mask
from .probe import gaussian_kernel_1d, gaussian_smooth, normalize_probe
from .translate import translate

__all__ = [
    "centre_mask",
    "complex_mae",
    "disk_mask",
    "gaussian_kernel_1d",
    "gaussian_smooth",
    "intensity_scale",
    "mae",
    "normalize_probe",
    "pad_and_diffract",
    "poisson_nll",
    "realspace_loss",
    "total_variation",
    "translate",
]
