"""Tiny end-to-end check on the shipped fixture: a few epochs lower the loss and the stitched
object resembles the truth far more than an untrained model's does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.config.engine import EngineConfig
from ptychodus_pinn_torch.config.spec import ModelConfig, TrainingConfig
from ptychodus_pinn_torch.data import RawData
from ptychodus_pinn_torch.engine.archive import ModelBundle
from ptychodus_pinn_torch.engine.inference import reconstruct
from ptychodus_pinn_torch.engine.training import train_model
from ptychodus_pinn_torch.model import build_model

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "train.npz"


def amplitude_correlation(obj: np.ndarray, true: np.ndarray) -> float:
    """Pearson correlation of ``|obj|`` and ``|true|`` ((H, W) complex), float64; insensitive
    to the global gain that the trainable intensity scale leaves free."""
    return float(np.corrcoef(np.abs(obj).ravel().astype(np.float64),
                             np.abs(true).ravel().astype(np.float64))[0, 1])


@pytest.mark.skipif(not FIXTURE.is_file(), reason="fixtures/train.npz not generated")
def test_few_epochs_on_fixture_beat_an_untrained_model() -> None:
    scan = RawData.from_file(FIXTURE)
    config = TrainingConfig(model=ModelConfig(N=scan.N, n_filters_scale=1), batch_size=8,
                            nepochs=3, nphotons=float(scan.metadata.get("nphotons", 1e6)),
                            n_groups=64)
    result = train_model(scan, EngineConfig(training=config, device="cpu", seed=0,
                                            early_stop_patience=None))
    losses = [h.train_loss for h in result.history]
    assert len(losses) == 3 and losses[-1] < losses[0]

    torch.manual_seed(0)
    fresh = build_model(config.model, probe=scan.probeGuess,
                        intensity_scale=result.bundle.intensity_scale)
    untrained = ModelBundle(model=fresh, model_config=config.model,
                            intensity_scale=result.bundle.intensity_scale,
                            probe=fresh.probe.detach().numpy())
    rows = slice(int(scan.ycoords.min()), int(scan.ycoords.max()))
    cols = slice(int(scan.xcoords.min()), int(scan.xcoords.max()))
    true = scan.objectGuess[rows, cols]
    trained = amplitude_correlation(
        reconstruct(result.bundle, scan, device="cpu").object[rows, cols], true)
    before = amplitude_correlation(
        reconstruct(untrained, scan, device="cpu").object[rows, cols], true)
    print(f"amplitude correlation with the truth: untrained {before:.3f}, trained {trained:.3f}")
    assert trained > 0.5 and trained > before + 0.3, (trained, before)
