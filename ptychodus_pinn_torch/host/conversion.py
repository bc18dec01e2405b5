"""ptychodus data <-> PtychoPINN arrays.

Inbound: a ptychodus ``ReconstructInput`` (intensities, positions in metres, probe modes, object
geometry) becomes the arrays of the PtychoPINN NPZ contract (reference ptychopinn-upstream.md
§1.1): float32 amplitudes, positions in object pixels, a 2-D complex64 probe.
Outbound: a reconstructed ``(H, W)`` object becomes a ptychodus ``Object`` on the input object's
pixel grid, with the input's pixel geometry, centre and layer count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from ptychodus.api.object import Object
from ptychodus.api.product import LossValue, Product
from ptychodus.api.reconstruct import ReconstructInput

__all__ = [
    "CONTRACT_KEYS",
    "losses_from_history",
    "object_on_input_grid",
    "output_product",
    "scan_arrays_from_input",
]

#: keys written to a training NPZ. ``bad_pixels`` is deliberately absent: its presence marks
#: ptychodus' own (intensity) export layout, which readers convert with a sqrt.
CONTRACT_KEYS = ("xcoords", "ycoords", "xcoords_start", "ycoords_start", "diff3d",
                 "probeGuess", "objectGuess", "scan_index")


def _fill_bad_pixels(intensity: np.ndarray, bad_pixels: np.ndarray) -> np.ndarray:
    """Bad pixels filled by ptychodus' biharmonic inpainting.

    intensity: (M, N, N) counts, any real dtype; bad_pixels: (N, N) bool.
    Returns (M, N, N) float64 counts, negatives clipped to 0 (a sqrt must follow).
    """
    data = np.asarray(intensity, dtype=np.float64)
    if bad_pixels.any():
        from ptychodus.api.preprocess.diffraction import inpaint_bad_pixels

        data = np.asarray(inpaint_bad_pixels(data, bad_pixels), dtype=np.float64)
    return np.clip(data, 0.0, None)


def scan_arrays_from_input(parameters: ReconstructInput) -> dict[str, np.ndarray]:
    """The PtychoPINN NPZ contract arrays of one ptychodus ``ReconstructInput``.

    Returns a dict with
      - ``diff3d`` (M, N, N) float32: amplitude ``sqrt(I)`` of the measured intensity ``I``
        (counts), bad pixels filled by biharmonic inpainting first, negative counts set to 0;
      - ``xcoords``/``ycoords`` (M,) float64: probe positions in object pixels (x = column,
        y = row, origin at the object array corner), mapped with ptychodus' own
        ``ObjectGeometry.map_probe_positions_to_object_{x,y}_px`` (the mapping its PtychoPINN
        libraries use); ``xcoords_start``/``ycoords_start`` the same values;
      - ``probeGuess`` (N, N) complex64: incoherent mode 0 of the probe without OPR modes;
      - ``objectGuess`` (H, W) complex64: layer 0 of the input object;
      - ``scan_index`` (M,) int64 zeros (one object).

    Raises ValueError naming the array and the fix for non-square patterns, a pattern/position
    count mismatch, a probe whose size differs from the patterns, or non-finite values.
    """
    patterns = np.asarray(parameters.diffraction_patterns)
    if patterns.ndim != 3 or patterns.shape[1] != patterns.shape[2]:
        raise ValueError(
            f"diffraction patterns must be (M, N, N) square, got shape {patterns.shape}; "
            "crop the detector to a square region in ptychodus' Diffraction view"
        )
    if not np.isfinite(patterns).all():
        raise ValueError("diffraction patterns contain NaN or Inf values; mark those pixels "
                         "as bad pixels or reload the data")
    product = parameters.product
    positions = product.probe_positions
    if len(positions) != patterns.shape[0]:
        raise ValueError(
            f"{patterns.shape[0]} diffraction patterns but {len(positions)} probe positions; "
            "every pattern needs one position (check the scan in the Positions view)"
        )
    bad = np.asarray(parameters.bad_pixels, dtype=bool)
    if bad.shape != patterns.shape[1:]:
        bad = np.zeros(patterns.shape[1:], dtype=bool)
    amplitude = np.sqrt(_fill_bad_pixels(patterns, bad)).astype(np.float32)

    probe = product.probes.get_probe_no_opr().get_incoherent_mode(0)
    if probe.shape != patterns.shape[1:]:
        raise ValueError(
            f"probe is {probe.shape[0]}x{probe.shape[1]} pixels but the diffraction patterns are "
            f"{patterns.shape[1]}x{patterns.shape[2]}; the probe must have the pattern size "
            "(rebuild the probe in ptychodus' Probe view)"
        )
    geometry = product.object_.get_geometry()
    x = np.asarray(geometry.map_probe_positions_to_object_x_px(positions), dtype=np.float64)
    y = np.asarray(geometry.map_probe_positions_to_object_y_px(positions), dtype=np.float64)
    return {
        "xcoords": x,
        "ycoords": y,
        "xcoords_start": x.copy(),
        "ycoords_start": y.copy(),
        "diff3d": amplitude,
        "probeGuess": np.asarray(probe, dtype=np.complex64),
        "objectGuess": np.asarray(product.object_.get_layer(0), dtype=np.complex64),
        "scan_index": np.zeros(patterns.shape[0], dtype=np.int64),
    }


def object_on_input_grid(array: np.ndarray, input_object: Object) -> Object:
    """A ptychodus ``Object`` holding ``array`` on the input object's grid.

    array: (H, W) complex, already on the input object's pixel grid (same H, W).
    The result keeps the input's pixel geometry, centre and layer count: layer 0 is ``array``,
    further layers (multislice inputs) are 1 (transparent), so the product of all layers equals
    the projected reconstruction. Raises ValueError if the shape differs from the input's.
    """
    array = np.asarray(array)
    if array.ndim != 2 or array.shape != (input_object.height_px, input_object.width_px):
        raise ValueError(
            f"reconstructed object has shape {array.shape}, but the input object grid is "
            f"{input_object.height_px}x{input_object.width_px}; the stitcher must write onto "
            "the input object's grid"
        )
    layers = np.ones((input_object.num_layers, *array.shape), dtype=np.complex64)
    layers[0] = array.astype(np.complex64)
    return Object(
        array=layers,
        pixel_geometry=input_object.get_pixel_geometry(),
        center=input_object.get_center(),
        layer_spacing_m=list(input_object.layer_spacing_m),
    )


def losses_from_history(history: Iterable[Mapping[str, Any]],
                        key: str = "train_loss") -> list[LossValue]:
    """``LossValue(epoch, record[key])`` per epoch record (``EpochReport.to_dict()`` dicts);
    ``key`` is ``"train_loss"`` or ``"val_loss"``. Records without a finite value are skipped."""
    losses: list[LossValue] = []
    for record in history:
        epoch, value = record.get("epoch"), record.get(key)
        if epoch is None or value is None or not np.isfinite(float(value)):
            continue
        losses.append(LossValue(epoch=int(epoch), value=float(value)))
    return losses


def output_product(input_product: Product, obj: Object, losses: Sequence[LossValue]) -> Product:
    """The input product with its object replaced and the training losses attached."""
    return replace(input_product, object_=obj, losses=list(losses))
