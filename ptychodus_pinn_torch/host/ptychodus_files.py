"""An NPZ scan as ptychodus' batch input folder (``StandardFileLayout``).

``ptychodus -b train|reconstruct -i IN -o OUT`` reads ``IN/settings.ini``, ``IN/diffraction.h5``
and ``IN/product.h5`` (and ``IN/model.zip`` for reconstruct). :func:`write_batch_folder` writes
them from a scan in the PtychoPINN NPZ contract:

- ``diffraction.h5``: intensities ``diff3d**2`` (float32; the contract stores amplitudes, so
  counts come back exactly only for unnormalized amplitudes; our reconstructors take the square
  root again, so they see the NPZ's amplitudes), detector pixel ``detector_pixel_m``;
- ``product.h5``: positions in metres, mapped so that ptychodus maps them back to the NPZ's
  object pixels (pixel ``i`` at ``i``, array centre ``(W-1)/2``, host §4); the probe
  ``probeGuess``; the object ``objectGuess`` (or ones on a grid covering every position plus
  N/2 when the scan has none); object pixel ``wavelength x distance / (N x detector_pixel)``
  (far field); energy and distance in the metadata;
- ``settings.ini``: ``[Processing] Algorithm`` = the chosen reconstructor.

The NPZ carries no physical units: energy, distance and detector pixel are nominal unless given.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ALGORITHMS", "write_batch_folder"]

#: ``[Processing] Algorithm`` values of this package's reconstructors
ALGORITHMS = ("ptychopinn-pytorch_pinn", "ptychopinn-pytorch_supervised")
_HC_EV_M = 1.239841984e-6


def write_batch_folder(raw: Any, folder: Path, *, algorithm: str = ALGORITHMS[0],
                       photon_energy_ev: float = 10_000.0, detector_distance_m: float = 2.0,
                       detector_pixel_m: float = 75e-6, model: Path | None = None,
                       overwrite: bool = False) -> list[Path]:
    """Write ``folder/{settings.ini, diffraction.h5, product.h5}`` (and ``model.zip``, a copy of
    ``model``) for ``raw`` (a ``RawData``: ``diff3d`` (M, N, N) amplitudes, ``xcoords``/
    ``ycoords`` (M,) object pixels, ``probeGuess`` (N, N) complex, optional ``objectGuess``).

    Returns the files written. Raises ValueError naming the option for a bad value, or when the
    folder already holds ptychodus inputs and ``overwrite`` is False.
    """
    from ptychodus.api.assemble import AssembledDiffractionData
    from ptychodus.api.geometry import PixelGeometry
    from ptychodus.api.io import StandardFileLayout, save_diffraction_data, save_product
    from ptychodus.api.object import Object, ObjectCenter
    from ptychodus.api.probe import ProbeSequence
    from ptychodus.api.probe_positions import ProbePosition, ProbePositionSequence
    from ptychodus.api.product import Product, ProductMetadata

    if algorithm not in ALGORITHMS:
        raise ValueError(f"--algorithm {algorithm!r}: use one of {', '.join(ALGORITHMS)}")
    for name, value in (("--energy-ev", photon_energy_ev), ("--distance-m", detector_distance_m),
                        ("--detector-pixel-m", detector_pixel_m)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if model is not None and not Path(model).is_file():
        raise FileNotFoundError(f"--model {model}: no such file; pass a trained model.zip")
    folder = Path(folder)
    names = (StandardFileLayout.SETTINGS, StandardFileLayout.DIFFRACTION,
             StandardFileLayout.PRODUCT)
    existing = [n for n in names if (folder / n).exists()]
    if existing and not overwrite:
        raise ValueError(f"{folder} already holds {', '.join(existing)}; pass --overwrite to "
                         "replace them or pick an empty folder")
    folder.mkdir(parents=True, exist_ok=True)

    amplitudes = np.asarray(raw.diff3d, dtype=np.float32)
    m, n = amplitudes.shape[0], amplitudes.shape[1]
    x_px = np.asarray(raw.xcoords, dtype=np.float64)
    y_px = np.asarray(raw.ycoords, dtype=np.float64)
    obj = getattr(raw, "objectGuess", None)
    if obj is None:
        height = int(math.ceil(float(y_px.max()))) + n // 2 + 1
        width = int(math.ceil(float(x_px.max()))) + n // 2 + 1
        obj = np.ones((height, width), dtype=np.complex64)
    obj = np.asarray(obj, dtype=np.complex64)
    height, width = obj.shape
    pixel_m = _HC_EV_M / photon_energy_ev * detector_distance_m / (n * detector_pixel_m)
    pixel = PixelGeometry(pixel_m, pixel_m)
    # ptychodus maps x_m to (x_m - centre) / pixel + (W - 1) / 2 object pixels; centre = 0
    positions = ProbePositionSequence([
        ProbePosition(i, (x - (width - 1) / 2) * pixel_m, (y - (height - 1) / 2) * pixel_m)
        for i, (x, y) in enumerate(zip(x_px, y_px, strict=True))
    ])
    probe = np.asarray(raw.probeGuess, dtype=np.complex64)[np.newaxis, np.newaxis]
    intensity = amplitudes.astype(np.float64) ** 2
    metadata = ProductMetadata(
        name=folder.name or "scan", comments="pinn-torch export-ptychodus",
        detector_distance_m=detector_distance_m, photon_energy_eV=photon_energy_ev,
        probe_photon_count=float(intensity.sum(axis=(1, 2)).mean()), exposure_time_s=1.0,
        mass_attenuation_m2_per_kg=0.0, tomography_angle_deg=0.0,
    )
    product = Product(metadata=metadata, probe_positions=positions,
                      probes=ProbeSequence(probe, None, pixel),
                      object_=Object(obj, pixel, ObjectCenter(0.0, 0.0)), losses=[])
    diffraction = AssembledDiffractionData(
        np.arange(m, dtype=np.int64), intensity.astype(np.float32),
        PixelGeometry(detector_pixel_m, detector_pixel_m), np.zeros((n, n), dtype=bool))
    written = [folder / name for name in names]
    written[0].write_text(f"[Processing]\nAlgorithm = {algorithm}\n", encoding="utf-8")
    save_diffraction_data(written[1], diffraction)
    save_product(written[2], product)
    if model is not None:
        target = folder / (StandardFileLayout.MODEL_BASENAME + ".zip")
        shutil.copyfile(model, target)
        written.append(target)
    return written
