"""Load Model... with a TensorFlow PtychoPINN archive (HOST-170, HOST-260): the archive is
converted in memory by :mod:`ptychodus_pinn_torch.engine.tf_import` with the NumPhotons setting;
nothing is written next to it.

The probe is the one the archive saved with its ``ProbeIllumination`` layer (Keras 2 archives);
a Keras 3 archive saves none (upstream keeps it then only in pickled params, never unpickled),
and the probe of the loaded product is used, so such a product must be loaded first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ptychodus_pinn_torch.engine.archive import ModelBundle

__all__ = ["ProbeSource", "import_tf_model_file", "is_tf_archive", "probe_of_last_product"]

logger = logging.getLogger(__name__)

#: returns ``(probe (N, N) complex64, product name)`` of the loaded product, or None
ProbeSource = Callable[[], "tuple[np.ndarray, str] | None"]


def probe_of_last_product(product_api: Any) -> tuple[np.ndarray, str] | None:
    """The probe (incoherent mode 0, no OPR, ``(N, N)`` complex64) and name of the most
    recently added product of ptychodus' ``ProductAPI``, or None when no product is loaded."""
    items = []
    while True:
        try:
            items.append(product_api.get_item(len(items)))
        except IndexError:
            break
    for item in reversed(items):
        try:
            probe = np.asarray(item.get_product().probes.get_probe_no_opr().get_array())
        except Exception:  # a pending stub or a product without a probe
            continue
        if probe.ndim == 3:
            probe = probe[0]
        if probe.ndim == 2 and probe.size and np.all(np.isfinite(probe)):
            return probe.astype(np.complex64), str(item.get_name())
    return None


def is_tf_archive(path: Path) -> bool:
    """True if ``path`` is an upstream TensorFlow ``wts.h5.zip`` we can read (Keras members)."""
    from ptychodus_pinn_torch.engine.keras_archive import read_tf_archive

    try:
        read_tf_archive(path)
    except (OSError, ValueError):
        return False
    return True


def import_tf_model_file(path: Path, probe_source: ProbeSource | None,
                         nphotons: float) -> ModelBundle:
    """Convert the TF archive at ``path`` in memory with ``nphotons`` (photons per pattern:
    intensity scale ``sqrt(nphotons) / (N/2)``) and the probe the archive saved, else the
    loaded product's probe.

    Raises ValueError (one line) when the archive saved no probe and no product with a probe
    is loaded, or the probe's size differs from the TF model's N (the converter's message).
    """
    from ptychodus_pinn_torch.engine.keras_archive import read_tf_archive
    from ptychodus_pinn_torch.engine.tf_import import import_tf_model

    archive = read_tf_archive(path)
    probe, origin = None, f"the archive's {archive.probe_member}"
    if archive.probe is None:
        found = None if probe_source is None else probe_source()
        if found is None:
            raise ValueError(
                f"{path} is a TensorFlow PtychoPINN model saved without its probe (Keras 3 "
                "keeps it only in pickled params we never read), so load the product (scan "
                "with its probe) the model was trained on first, then Load Model... again (or "
                "convert it with `pinn-torch import-tf --probe SCAN.npz`)"
            )
        probe, product = found
        origin = f"product {product!r}"
    bundle = import_tf_model(archive, probe, nphotons=float(nphotons))
    if probe is not None:
        bundle.extra["imported_from"]["probe_from"] = f"ptychodus {origin}"
    logger.info(
        "converted the TensorFlow model %s in memory (N=%d, gridsize=%d) with the probe of "
        "%s and NumPhotons=%g (intensity scale %.6g); Save Model... writes it as a "
        "PtychoPINN-PyTorch archive", path, bundle.N, bundle.gridsize, origin, nphotons,
        bundle.intensity_scale)
    return bundle
