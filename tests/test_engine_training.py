"""Behaviour of the training engine: options, schedules, config errors, callbacks, resume errors.

The fit defaults (plateau, early stopping), supervised learning and its missing labels,
determinism, resume equality and refusal, Stop and the NaN guard are proved by the conformance
rules ENG-001..ENG-007 (ptychodus_pinn_torch/conformance/test_engine.py) and not repeated here."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.config.engine import EngineConfig
from ptychodus_pinn_torch.conformance.helpers import tiny_engine, tiny_scan, tiny_training
from ptychodus_pinn_torch.engine.events import EpochReport, TrainCallbacks
from ptychodus_pinn_torch.engine.training import train_model, validation_count


@pytest.fixture(scope="module")
def scan():
    """16 positions, N = 64, with the true object (for labels)."""
    return tiny_scan()


@pytest.mark.parametrize(
    ("field", "value"),
    [("learning_rate", 0.0), ("validation_fraction", 1.0), ("early_stop_patience", 0),
     ("seed", -3), ("checkpoint_every", 0), ("tv_weight", -1.0), ("device", "")],
)
def test_engine_config_rejects_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"EngineConfig.{field}"):
        EngineConfig(training=tiny_training(), **{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [("plateau_factor", 1.5), ("plateau_patience", -1), ("plateau_min_lr", 1.0)],
)
def test_plateau_fields_are_checked_naming_the_field(field: str, value: object) -> None:
    training = tiny_training(scheduler="ReduceLROnPlateau", **{field: value})
    with pytest.raises(ValueError, match=field):
        EngineConfig(training=training)


def test_validation_count_rounds_and_keeps_a_training_group() -> None:
    assert validation_count(512, 0.05) == 26  # round(25.6)
    assert validation_count(16, 0.05) == 1  # at least one
    assert validation_count(2, 0.5) == 1
    assert validation_count(1, 0.05) == 0
    assert validation_count(100, 0.0) == 0


def test_config_errors_are_value_errors(scan) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        tiny_engine(batch_size=0)
    with pytest.raises(ValueError, match="diff3d has shape"):
        train_model(scan, tiny_engine(1, model={"N": 128}))
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        train_model(scan, tiny_engine(), resume=True)
    with pytest.raises(ValueError, match="must be an EngineConfig"):
        train_model(scan, tiny_training())  # type: ignore[arg-type]


def test_epoch_callback_and_loss_decreases(scan) -> None:
    seen: list[EpochReport] = []
    res = train_model(scan, tiny_engine(3), callbacks=TrainCallbacks(on_epoch=(seen.append,)))
    assert [r.epoch for r in seen] == [1, 2, 3] and all(r.epochs == 3 for r in seen)
    assert all(r.val_loss is not None and math.isfinite(r.val_loss) for r in seen)
    assert set(seen[0].terms) == {"nll"}
    assert seen[-1].train_loss < seen[0].train_loss
    assert res.stopped is None and res.history == seen
    assert res.bundle.intensity_scale == pytest.approx(
        float(torch.exp(res.bundle.model.log_scale.detach()))
    )


def test_resume_without_a_checkpoint_names_the_missing_file(scan, tmp_path: Path) -> None:
    # (a checkpoint of another set-up is ENG-005's)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train_model(scan, tiny_engine(), checkpoint_dir=tmp_path / "x", resume=True)


def test_history_roundtrips_through_dicts() -> None:
    r = EpochReport(3, 10, 1.5, None, 1e-3, 0.25, {"nll": 1.5})
    assert EpochReport.from_dict(r.to_dict()) == r
    assert np.isfinite(r.train_loss)


def test_channels_last_trains_to_the_same_losses(scan) -> None:
    plain = train_model(scan, tiny_engine(1, engine={"channels_last": False}))
    cl = train_model(scan, tiny_engine(1, engine={"channels_last": True}))
    np.testing.assert_allclose(cl.history[0].train_loss, plain.history[0].train_loss, rtol=1e-4)
    assert cl.bundle.model.probe_ri.is_contiguous()  # returned in the default memory format


def test_bf16_request_on_cpu_is_ignored_with_a_warning(scan, caplog) -> None:
    with caplog.at_level("WARNING"):
        res = train_model(scan, tiny_engine(1, engine={"bf16": True}))
    assert "only used on CUDA" in caplog.text and math.isfinite(res.history[0].train_loss)
