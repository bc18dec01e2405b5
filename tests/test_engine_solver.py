"""The refinement solvers (engine.solver): batch orders and settings refused by name (the
solver rules ENG-200..202 are proven in conformance/test_engine_solver.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.conformance.helpers import scan_centres
from ptychodus_pinn_torch.data.simulate import simulate_scan
from ptychodus_pinn_torch.engine.refine import refine_object
from ptychodus_pinn_torch.engine.solver import batch_order


@pytest.fixture(scope="module")
def scan():  # type: ignore[no-untyped-def]
    # 49 positions on a 96x96 phantom; noise-free enough (1e9 photons) to converge far
    return simulate_scan(object_shape=(96, 96), seed=3, overlap=0.7, nphotons=1e9)



def test_batch_orders_cover_every_position_once(scan) -> None:  # type: ignore[no-untyped-def]
    centres = scan_centres(scan)
    spreads = {}
    for order in ("random", "compact"):
        batches = batch_order(order, centres, 8, torch.Generator().manual_seed(1))
        assert sorted(torch.cat(batches).tolist()) == list(range(len(centres)))
        spreads[order] = np.mean([centres[b.numpy()].std(axis=0).sum() for b in batches])
    # compact batches are spatial clusters: measured spread 8.0 px vs 15.1 px for random
    assert spreads["compact"] < 0.6 * spreads["random"]
    with pytest.raises(ValueError, match="order"):
        batch_order("spiral", centres, 8, torch.Generator())


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"algorithm": "pie"}, "algorithm"),
        ({"noise": "gauss"}, "noise"),
        ({"order": "spiral"}, "order"),
        ({"batch_size": 0}, "batch_size"),
        ({"regularization": 0.0}, "regularization"),
        ({"algorithm": "adam", "update_probe": True}, "lsqml"),
    ],
)
def test_bad_settings_are_refused_by_name(scan, kwargs, name) -> None:  # type: ignore[no-untyped-def]
    flat = np.ones(scan.objectGuess.shape, np.complex64)
    with pytest.raises(ValueError, match=name):
        refine_object(flat, scan.diff3d, scan_centres(scan), scan.probeGuess, epochs=1, **kwargs)
