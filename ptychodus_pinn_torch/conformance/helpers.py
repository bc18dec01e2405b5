"""Small builders shared by the conformance suite and the project's own tests (``tests/``).

Public on purpose: tests import these instead of keeping copies. Tiny sizes: N = 64,
n_filters_scale = 1, a 96x96 simulated object with 16 scan positions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ptychodus_pinn_torch.config.engine import EngineConfig
from ptychodus_pinn_torch.config.spec import ModelConfig, TrainingConfig


def tiny_training(epochs: int = 2, model_type: str = "pinn", *,
                  model: dict[str, Any] | None = None, **fields: Any) -> TrainingConfig:
    """A spec TrainingConfig that trains in a second: batch 4, 16 groups, 1e6 photons, N 64,
    n_filters_scale 1 (``model`` overrides ModelConfig fields, ``fields`` TrainingConfig's)."""
    model_fields = {"N": 64, "n_filters_scale": 1, "model_type": model_type, **(model or {})}
    base: dict[str, Any] = {"batch_size": 4, "nepochs": epochs, "nphotons": 1e6, "n_groups": 16}
    if model_type == "supervised":
        base["torch_loss_mode"] = "mae"
    return TrainingConfig(model=ModelConfig(**model_fields), **{**base, **fields})


def tiny_engine(epochs: int = 2, model_type: str = "pinn", *,
                engine: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
                **fields: Any) -> EngineConfig:
    """:func:`tiny_training` inside an EngineConfig on the CPU without early stopping
    (``engine`` overrides EngineConfig fields)."""
    run: dict[str, Any] = {"device": "cpu", "early_stop_patience": None, **(engine or {})}
    return EngineConfig(training=tiny_training(epochs, model_type, model=model, **fields), **run)


def tiny_scan(seed: int = 5, **kw: Any) -> Any:
    """A simulated 16-position scan (96x96 object, overlap 0.5, 1e6 photons) with its true
    object (for labels). Returns ``RawData``."""
    from ptychodus_pinn_torch.data.simulate import simulate_scan

    options: dict[str, Any] = {"object_shape": (96, 96), "seed": seed, "overlap": 0.5,
                               "nphotons": 1e6, **kw}
    return simulate_scan(**options)


__all__ = ["tiny_engine", "tiny_scan", "tiny_training"]


def scan_centres(scan: Any) -> np.ndarray:
    """(P, 2) float64 scan positions of a RawData, ``[:, 0] = x`` (column), in object pixels."""
    return np.column_stack([scan.xcoords, scan.ycoords])


def error_after_gain(obj: np.ndarray, truth: np.ndarray, centres: np.ndarray) -> float:
    """Relative error ``|g*obj - truth| / |truth|`` of a complex object (H, W) in the box the
    ``centres`` (P, 2) span, after the best complex gain ``g`` (global phase and scale)."""
    box = (slice(int(centres[:, 1].min()), int(centres[:, 1].max()) + 1),
           slice(int(centres[:, 0].min()), int(centres[:, 0].max()) + 1))
    a, t = obj[box].astype(np.complex128), truth[box].astype(np.complex128)
    gain = np.vdot(a, t) / np.vdot(a, a)
    return float(np.linalg.norm(gain * a - t) / np.linalg.norm(t))
