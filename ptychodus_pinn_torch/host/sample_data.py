"""Small simulated ptychodus datasets for tests, the conformance suite and demos.

Built only from ptychodus' public simulation API (its own far-field forward model), so the
data are exactly what a ptychodus user would have after loading a scan: intensities in counts,
positions in metres, a probe-mode stack and an object with pixel geometry and centre.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ptychodus.api.assemble import AssembledDiffractionData
from ptychodus.api.geometry import PixelGeometry
from ptychodus.api.object import Object, ObjectCenter, compute_object_geometry
from ptychodus.api.probe import ProbeGeometry, ProbeSequence
from ptychodus.api.probe_positions import ProbePositionSequence
from ptychodus.api.product import Product, ProductMetadata
from ptychodus.api.reconstruct import ReconstructInput, prepare_reconstruct_input

__all__ = ["SimulatedScan", "simulate_scan", "write_standard_layout"]

PHOTON_ENERGY_EV = 10_000.0
DETECTOR_DISTANCE_M = 2.0
DETECTOR_PIXEL_M = 75e-6


@dataclass(frozen=True)
class SimulatedScan:
    """A product (object, probe, positions, metadata) and its simulated diffraction data."""

    product: Product
    diffraction: AssembledDiffractionData

    def reconstruct_input(self) -> ReconstructInput:
        """Patterns paired with positions the way ptychodus does it."""
        return prepare_reconstruct_input(self.diffraction, self.product)


def simulate_scan(*, n_side: int = 7, N: int = 64, step_px: float = 6.0,  # noqa: N803
                  photons: float = 1e6, layers: int = 1, bad_pixel_count: int = 0,
                  seed: int = 0) -> SimulatedScan:
    """An ``n_side x n_side`` raster scan of a smooth random object with a defocused disk probe.

    N: pattern and probe size (pixels). step_px: scan step in object pixels. photons: total
    mean counts per pattern. layers: object layers (multislice inputs; extra layers are
    transparent). bad_pixel_count: detector pixels marked bad (and set to a huge hot value).
    Poisson noise with ``numpy.random.default_rng(seed)``; patterns are uint32 counts.
    """
    from ptychodus.api.simulate.diffraction import generate_diffraction_data
    from ptychodus.api.simulate.probe_positions import generate_cartesian_probe_positions

    rng = np.random.default_rng(seed)
    wavelength_m = 1.239841984e-6 / PHOTON_ENERGY_EV
    pixel_m = wavelength_m * DETECTOR_DISTANCE_M / (N * DETECTOR_PIXEL_M)
    probe_geometry = ProbeGeometry(width_px=N, height_px=N, pixel_width_m=pixel_m,
                                   pixel_height_m=pixel_m)
    positions = ProbePositionSequence(list(generate_cartesian_probe_positions(
        n_side, n_side, step_px * pixel_m, step_px * pixel_m)))

    yy, xx = np.mgrid[:N, :N] - (N - 1) / 2
    r2 = xx**2 + yy**2
    disk = (r2 < (N / 5) ** 2).astype(np.complex128)
    probe_array = np.fft.ifft2(np.fft.fft2(disk) * np.exp(-1j * 0.002 * np.fft.fftshift(r2)))
    probe_array *= np.sqrt(photons / np.sum(np.abs(probe_array) ** 2))
    probes = ProbeSequence(probe_array[np.newaxis, np.newaxis], None,
                           PixelGeometry(pixel_m, pixel_m))

    geometry = compute_object_geometry(positions, probe_geometry, padding_px=2)
    h, w = geometry.height_px, geometry.width_px
    noise = rng.standard_normal((2, h, w))
    kernel = np.exp(-(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w)[None] ** 2) * 300.0)
    smooth = np.real(np.fft.ifft2(np.fft.fft2(noise) * kernel))
    smooth /= np.abs(smooth).max(axis=(1, 2), keepdims=True)
    layer0 = (0.8 + 0.2 * smooth[0]) * np.exp(1j * 0.8 * smooth[1])
    array = np.ones((layers, h, w), dtype=np.complex128)
    array[0] = layer0
    obj = Object(array, PixelGeometry(pixel_m, pixel_m),
                 ObjectCenter(geometry.center_x_m, geometry.center_y_m),
                 layer_spacing_m=[1e-6] * (layers - 1))
    metadata = ProductMetadata(
        name="simulated", comments="ptychodus_pinn_torch.host.sample_data",
        detector_distance_m=DETECTOR_DISTANCE_M, photon_energy_eV=PHOTON_ENERGY_EV,
        probe_photon_count=photons, exposure_time_s=1.0, mass_attenuation_m2_per_kg=0.0,
        tomography_angle_deg=0.0,
    )
    product = Product(metadata=metadata, probe_positions=positions, probes=probes, object_=obj,
                      losses=[])
    clean = generate_diffraction_data(product)  # noiseless; its propagator is not unitary
    raw = np.asarray(clean.get_patterns(), dtype=np.float64)
    patterns = raw * (photons / np.mean(np.sum(raw, axis=(1, 2))))
    bad_pixels = np.zeros(patterns.shape[1:], dtype=bool)
    if bad_pixel_count:
        bad_pixels.reshape(-1)[rng.choice(bad_pixels.size, bad_pixel_count, replace=False)] = True
    noisy = rng.poisson(patterns).astype(np.uint32)
    noisy[:, bad_pixels] = np.iinfo(np.uint32).max // 2  # hot pixels: must be inpainted
    data = AssembledDiffractionData(np.asarray(clean.get_indexes()), noisy,
                                    clean.get_pixel_geometry(), bad_pixels)
    return SimulatedScan(product, data)


def write_standard_layout(folder: Path, scan: SimulatedScan) -> Path:
    """Write ``folder/diffraction.h5`` and ``folder/product.h5`` (ptychodus' batch layout)."""
    from ptychodus.api.io import StandardFileLayout, save_diffraction_data, save_product

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_diffraction_data(folder / StandardFileLayout.DIFFRACTION, scan.diffraction)
    save_product(folder / StandardFileLayout.PRODUCT, scan.product)
    return folder
