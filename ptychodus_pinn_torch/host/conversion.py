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

from ptychodus_pinn_torch.data.ptychodus_files import ObjectGrid, scan_from_ptychodus

__all__ = [
    "CONTRACT_KEYS",
    "OPTIONAL_KEYS",
    "losses_from_history",
    "object_on_input_grid",
    "output_product",
    "scan_arrays_from_input",
]

#: keys always written to a training NPZ.
CONTRACT_KEYS = ("xcoords", "ycoords", "xcoords_start", "ycoords_start", "diff3d",
                 "probeGuess", "objectGuess", "scan_index")
#: written as well when the detector has bad pixels: the ``(N, N)`` bool mask (True = bad),
#: so training and refinement leave them out (PHYS-170, HOST-261). The readers tell this file
#: from ptychodus' intensity export by its ``(N, N)`` probe (DATA-005), not by this key.
OPTIONAL_KEYS = ("bad_pixels",)


def scan_arrays_from_input(parameters: ReconstructInput) -> dict[str, np.ndarray]:
    """The PtychoPINN NPZ contract arrays of one ptychodus ``ReconstructInput``.

    The conversion is the data layer's :func:`~ptychodus_pinn_torch.data.ptychodus_files.
    scan_from_ptychodus`, the same one that reads ptychodus' ``diffraction.h5`` +
    ``product.h5`` (DATA-181); this function only takes the arrays out of ptychodus' objects.
    Returns a dict with
      - ``diff3d`` (M, N, N) float32: amplitude ``sqrt(I)`` of the measured intensity ``I``
        (counts), bad pixels filled by biharmonic inpainting first, negative counts set to 0;
      - ``xcoords``/``ycoords`` (M,) float64: probe positions in object pixels (x = column,
        y = row, origin at the object array corner), ``(x_m - centre) / pixel + (W - 1) / 2``
        as ptychodus' ``ObjectGeometry.map_probe_positions_to_object_{x,y}_px``;
        ``xcoords_start``/``ycoords_start`` the same values;
      - ``probeGuess`` (N, N) complex64: incoherent mode 0 of the probe without OPR modes;
      - ``objectGuess`` (H, W) complex64: layer 0 of the input object;
      - ``scan_index`` (M,) int64 zeros (one object);
      - ``bad_pixels`` (N, N) bool, only when some detector pixel is bad (the inpainted values
        stay in ``diff3d`` for the network; losses and refinement leave them out).

    Raises ValueError naming the array and the fix for non-square patterns, a pattern/position
    count mismatch, a probe whose size differs from the patterns, or non-finite values.
    """
    product = parameters.product
    positions = product.probe_positions
    geometry = product.object_.get_geometry()
    grid = ObjectGrid(
        center_x_m=geometry.center_x_m, center_y_m=geometry.center_y_m,
        pixel_width_m=geometry.pixel_width_m, pixel_height_m=geometry.pixel_height_m,
        height_px=geometry.height_px, width_px=geometry.width_px,
    )
    scan = scan_from_ptychodus(
        np.asarray(parameters.diffraction_patterns), np.asarray(parameters.bad_pixels, bool),
        positions.get_coordinates_x_m(), positions.get_coordinates_y_m(), grid,
        product.probes.get_probe_no_opr().get_array(), product.object_.get_layer(0),
        source="ptychodus",
    )
    arrays = {key: getattr(scan, key) for key in (*CONTRACT_KEYS, *OPTIONAL_KEYS)}
    return {key: value for key, value in arrays.items() if value is not None}


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
