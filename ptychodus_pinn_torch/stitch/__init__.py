"""Stitching of object patches: upstream ``reassemble_position`` and stitching onto the input
object's pixel grid. Vectorized bilinear splats, chunked, on the tensors' device.
Rules: specs/STITCH.md.
"""

from .object_grid import (
    ObjectGridAccumulator,
    stitch_spilled_to_object_grid,
    stitch_to_object_grid,
)
from .phase_sync import (
    pairwise_overlaps,
    phase_offsets,
    synchronize_phases,
    synchronizing_vector,
)
from .reassemble import reassemble_geometry, reassemble_position
from .spill import SpilledPatches
from .splat import CanvasAccumulator

__all__ = [
    "CanvasAccumulator",
    "ObjectGridAccumulator",
    "reassemble_geometry",
    "reassemble_position",
    "SpilledPatches",
    "pairwise_overlaps",
    "phase_offsets",
    "stitch_spilled_to_object_grid",
    "stitch_to_object_grid",
    "synchronize_phases",
    "synchronizing_vector",
]
