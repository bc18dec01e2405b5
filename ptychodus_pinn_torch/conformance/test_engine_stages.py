"""Conformance of multi-stage training (specs/ENGINE.md ENG-220..222)."""

from __future__ import annotations

import math

import pytest
import torch

from ptychodus_pinn_torch.config.engine import EngineConfig, LossWeights
from ptychodus_pinn_torch.conformance.helpers import tiny_engine, tiny_scan, tiny_training
from ptychodus_pinn_torch.data import RawData
from ptychodus_pinn_torch.engine.epoch import blend_with_warmup
from ptychodus_pinn_torch.engine.losses import compute_loss
from ptychodus_pinn_torch.engine.stages import StagePlan
from ptychodus_pinn_torch.engine.training import train_model
from ptychodus_pinn_torch.model import build_model


@pytest.fixture(scope="module")
def scan() -> RawData:
    return tiny_scan()


def staged(s1: int, s2: int, s3: int, **engine: object) -> EngineConfig:
    return tiny_engine(s1 + s2 + s3, engine={"stage_1_epochs": s1, "stage_2_epochs": s2,
                                             "stage_3_epochs": s3, **engine})


# ----------------------------------------------------------------------------- ENG-220
@pytest.mark.spec("ENG-220")
@pytest.mark.parametrize(("schedule", "expected"), [
    ("linear", [0, 0, 0, 0.25, 0.5, 0.75, 1]),
    ("cosine", [0, 0, 0, 0.5 * (1 - math.cos(math.pi / 4)), 0.5, 0.5 * (1 - math.cos(
        3 * math.pi / 4)), 1]),
    ("exponential", [0, 0, 0, 0.0625, 0.25, 0.5625, 1]),
])
def test_physics_weight_schedules(schedule: str, expected: list[float]) -> None:
    plan = StagePlan(2, 4, 1, schedule)
    got = [plan.physics_weight(e) for e in range(7)]
    assert got == pytest.approx(expected, abs=1e-12)
    assert [plan.stage(e) for e in range(7)] == [1, 1, 2, 2, 2, 2, 3]
    assert [plan.lr_drop_at(e) for e in range(7)] == [False] * 6 + [True]
    assert StagePlan().physics_weight(0) == 1.0 and StagePlan().stage(5) == 0


@pytest.mark.spec("ENG-220")
def test_stage_fields_are_checked_by_name() -> None:
    with pytest.raises(ValueError, match=r"stage_1_epochs \+ stage_2_epochs \+ stage_3_epochs "
                                         r"= 3 must equal TrainingConfig.nepochs = 5"):
        EngineConfig(training=tiny_training(5), stage_1_epochs=1, stage_2_epochs=2)
    with pytest.raises(ValueError, match="physics_weight_schedule"):
        EngineConfig(training=tiny_training(2), physics_weight_schedule="step")
    with pytest.raises(ValueError, match="stage_3_lr_factor"):
        EngineConfig(training=tiny_training(2), stage_3_lr_factor=0.0)
    with pytest.raises(ValueError, match="model_type='pinn'"):
        EngineConfig(training=tiny_training(2, "supervised"), stage_1_epochs=2)
    assert not EngineConfig(training=tiny_training(2)).staged


# ----------------------------------------------------------------------------- ENG-221
@pytest.mark.spec("ENG-221")
@pytest.mark.parametrize("with_labels", [True, False])
def test_blended_loss_is_warmup_and_physics(with_labels: bool) -> None:
    torch.manual_seed(0)
    cfg = tiny_training().model
    raw = tiny_scan()
    model = build_model(cfg, probe=raw.probeGuess, intensity_scale=20.0)
    x = torch.rand(3, 1, 64, 64) * 20
    pos = torch.zeros(3, 1, 2)
    labels = torch.polar(torch.rand(3, 1, 64, 64) + 0.5, torch.rand(3, 1, 64, 64)) \
        if with_labels else None
    out = model(x, pos)
    weights = LossWeights()
    physics = compute_loss(out, x, labels, weights, supervised=False, positions=pos)
    if with_labels:
        warm = compute_loss(out, x, labels, weights, supervised=True, positions=pos)[0]
    else:
        warm = torch.mean(torch.abs(out.pred_amp - x))  # diffraction amplitude MAE
    for w in (0.0, 0.3):
        total, terms = blend_with_warmup(out, x, labels, pos, physics if w else None, w, weights)
        expected = (1 - w) * warm + w * physics[0]
        torch.testing.assert_close(total, expected, rtol=1e-6, atol=0)
        assert any(k.startswith("warmup_") for k in terms)
        assert ("nll" in terms) == (w > 0)


@pytest.mark.spec("ENG-221")
def test_stage_one_trains_on_the_warmup_loss(scan: RawData) -> None:
    """With labels the warm-up terms are the supervised ones; without, the amplitude MAE."""
    hist = train_model(scan, staged(2, 0, 0)).history
    assert set(hist[0].terms) == {"warmup_amp_mae", "warmup_phase_mae", "physics_weight"}
    unlabeled = RawData.from_coords_without_pc(
        scan.xcoords, scan.ycoords, scan.diff3d, scan.probeGuess, None, None,
        metadata=dict(scan.metadata), diffraction_kind="amplitude")
    hist = train_model(unlabeled, staged(1, 0, 0)).history
    assert set(hist[0].terms) == {"warmup_mae", "physics_weight"}
    assert hist[0].terms["physics_weight"] == 0.0


# ----------------------------------------------------------------------------- ENG-222
@pytest.mark.spec("ENG-222")
def test_stage_three_is_physics_at_a_lower_rate(scan: RawData) -> None:
    hist = train_model(scan, staged(1, 2, 2, stage_3_lr_factor=0.25,
                                    physics_weight_schedule="linear")).history
    assert [h.terms["physics_weight"] for h in hist] == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert [h.lr for h in hist][:3] == [1e-3] * 3  # no plateau step while the loss is blended
    assert hist[3].lr == pytest.approx(2.5e-4)
    assert set(hist[4].terms) == {"nll", "physics_weight"}
    assert "warmup_amp_mae" in hist[2].terms and "nll" in hist[2].terms


@pytest.mark.spec("ENG-222")
def test_all_zero_stages_is_todays_training(scan: RawData) -> None:
    plain = train_model(scan, tiny_engine(2)).history
    zero = train_model(scan, tiny_engine(2, engine={"stage_1_epochs": 0})).history
    assert [h.train_loss for h in plain] == [h.train_loss for h in zero]
    assert "physics_weight" not in plain[0].terms
