"""Sets of simulated scans for multi-scan training: one object and one probe per experiment.

Upstream's ``simulate_multiple_experiments`` (reference "PyTorch backend extras §9") writes
object i with probe ``i mod n_probes`` to ``synthetic_<i>.npz``. Here experiment ``i`` of a set
with base seed ``s`` is :func:`~ptychodus_pinn_torch.data.simulate.simulate_scan` with seed
``s + i`` (so its own phantom, scan jitter and Poisson noise), and, from experiment 1 on, a
probe varied by factors drawn from ``RandomState(s + i)``: aperture/pupil radius x U(0.8, 1.2)
and propagation distance x U(0.5, 1.5). Experiment 0 is exactly the single scan of seed ``s``.
The ``camera`` object is a fixed image: experiment ``i`` uses its ``i mod 4`` flip
(none, up-down, left-right, both), so its variety repeats after 4.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ptychodus_pinn_torch.data.errors import DataError
from ptychodus_pinn_torch.data.raw_data import RawData
from ptychodus_pinn_torch.data.simulate import ObjectKind, ProbeKind, make_object, make_probe
from ptychodus_pinn_torch.data.simulate import simulate_scan as _simulate_scan

#: ranges of the per-experiment probe factors (experiments 1, 2, ...)
RADIUS_FACTOR_RANGE = (0.8, 1.2)
DEFOCUS_FACTOR_RANGE = (0.5, 1.5)
#: most experiments one call simulates
MAX_EXPERIMENTS = 10_000


def experiment_probe_factors(seed: int, index: int) -> tuple[float, float]:
    """``(radius_factor, defocus_factor)`` of experiment ``index`` of a set with base ``seed``:
    ``(1, 1)`` for experiment 0, else drawn from ``RandomState(seed + index)``."""
    if index == 0:
        return 1.0, 1.0
    rs = np.random.RandomState(seed + index)
    return float(rs.uniform(*RADIUS_FACTOR_RANGE)), float(rs.uniform(*DEFOCUS_FACTOR_RANGE))


def _object_of(kind: ObjectKind, shape: tuple[int, int], seed: int, index: int) -> np.ndarray:
    obj = make_object(kind, shape, seed + index)
    if kind == "camera":
        flip = index % 4
        if flip & 1:
            obj = obj[::-1, :]
        if flip & 2:
            obj = obj[:, ::-1]
    return np.ascontiguousarray(obj)


def simulate_experiments(
    count: int,
    *,
    seed: int = 0,
    object_kind: ObjectKind = "phantom",
    probe: ProbeKind = "pinhole",
    N: int = 64,
    object_shape: tuple[int, int] = (192, 192),
    vary_probe: bool = True,
    **settings: Any,
) -> list[RawData]:
    """``count`` scans with their own object and probe (see the module docstring).

    Args:
        count: number of experiments (1 .. 10000).
        seed: base seed; experiment ``i`` uses ``seed + i``.
        object_kind, probe, N, object_shape: as ``simulate_scan``.
        vary_probe: vary the probe per experiment (False: every experiment has the standard one).
        **settings: further ``simulate_scan`` arguments (scan, overlap, nphotons,
            beamstop_diameter, beamstop_transmission).

    Returns:
        One RawData per experiment; ``metadata`` adds ``experiment``, ``experiments``,
        ``probe_radius_factor`` and ``probe_defocus_factor``.
    """
    if int(count) != count or not 1 <= count <= MAX_EXPERIMENTS:
        raise DataError(f"experiments must be an integer in [1, {MAX_EXPERIMENTS}], got {count!r}")
    for name in ("obj", "probe_guess", "seed", "object_kind", "probe"):
        if name in settings:
            raise DataError(f"simulate_experiments chooses {name} per experiment; do not pass it")
    shape = (int(object_shape[0]), int(object_shape[1]))
    out = []
    for i in range(int(count)):
        radius, defocus = experiment_probe_factors(seed, i) if vary_probe else (1.0, 1.0)
        raw = _simulate_scan(
            object_kind, N, shape, seed=seed + i, probe=probe,
            obj=_object_of(object_kind, shape, seed, i),
            probe_guess=make_probe(probe, N, radius_factor=radius, defocus_factor=defocus),
            **settings,
        )
        raw.metadata.update(
            experiment=i, experiments=int(count), probe_radius_factor=radius,
            probe_defocus_factor=defocus,
        )
        out.append(raw)
    return out


def experiment_paths(out: str | Path, count: int) -> list[Path]:
    """The files of a set written to ``out`` (``DIR/scan.npz`` -> ``DIR/scan_0.npz`` ...,
    indices zero-padded to one width)."""
    out = Path(out)
    width = len(str(max(int(count) - 1, 0)))
    return [out.with_name(f"{out.stem}_{i:0{width}d}{out.suffix}") for i in range(int(count))]
