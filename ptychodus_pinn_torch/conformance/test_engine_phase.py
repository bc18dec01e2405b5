"""ENG-013: inference removes each patch's unobservable phase offset (specs/ENGINE.md)."""

from __future__ import annotations

import numpy as np
import pytest

from ptychodus_pinn_torch.config.spec import ModelConfig
from ptychodus_pinn_torch.data.simulate import simulate_scan
from ptychodus_pinn_torch.engine.archive import ModelBundle
from ptychodus_pinn_torch.engine.inference import overlap_weights, reconstruct, stitch_weights
from ptychodus_pinn_torch.model import build_model
from ptychodus_pinn_torch.stitch import pairwise_overlaps


def _weighted_disagreement(
    patches: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray
) -> float:
    """|h|-weighted mean |phase| (rad) of the neighbour overlap correlations."""
    _, _, h = pairwise_overlaps(patches, x, y, w)
    return float(np.sum(np.abs(h) * np.abs(np.angle(h))) / np.sum(np.abs(h)))


@pytest.mark.spec("ENG-013")
def test_reconstruct_synchronizes_patch_phases() -> None:
    scan = simulate_scan(object_shape=(96, 96), seed=5, overlap=0.6, nphotons=1e6)
    cfg = ModelConfig(N=64, n_filters_scale=1)
    model = build_model(cfg, probe=scan.probeGuess, intensity_scale=31.25)
    bundle = ModelBundle(
        model=model, model_config=cfg, intensity_scale=model.intensity_scale,
        probe=model.probe.detach().numpy(),
    )
    synced = reconstruct(bundle, scan, device="cpu", phase_sync=True)
    raw = reconstruct(bundle, scan, device="cpu", phase_sync=False)
    x, y = raw.centres[:, 0], raw.centres[:, 1]
    w = overlap_weights(stitch_weights(bundle), 64, 32)
    before = _weighted_disagreement(raw.patches, x, y, w)
    after = _weighted_disagreement(synced.patches, x, y, w)
    assert after < 0.01 and after < before
    # only a constant phase per patch changed
    np.testing.assert_allclose(np.abs(synced.patches), np.abs(raw.patches), rtol=1e-4, atol=1e-6)
    ratio = synced.patches * np.conj(raw.patches)
    per_patch = np.angle(ratio.sum(axis=(1, 2)))
    residual = np.angle(ratio * np.exp(-1j * per_patch)[:, None, None])
    assert np.max(np.abs(residual[np.abs(ratio) > 1e-6])) < 1e-3
    assert synced.object.shape == raw.object.shape == scan.objectGuess.shape
