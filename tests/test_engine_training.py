"""Behaviour of the training engine: options, schedules, config errors, callbacks, resume errors.

Determinism, resume equality, Stop, the NaN guard and supervised learning are proved by the
conformance rules ENG-003..ENG-007 (ptychodus_pinn_torch/conformance/test_engine.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.config.spec import ModelConfig, TrainingConfig
from ptychodus_pinn_torch.data.simulate import simulate_scan
from ptychodus_pinn_torch.engine import checkpoint as ckpt
from ptychodus_pinn_torch.engine.training import (
    EpochReport,
    TrainOptions,
    _EarlyStopping,
    make_scheduler,
    train_model,
    validation_count,
)


@pytest.fixture(scope="module")
def scan():
    """16 positions, N = 64, with the true object (for labels)."""
    return simulate_scan(object_shape=(96, 96), seed=5, overlap=0.5, nphotons=1e6)


def tiny_config(epochs: int = 2, model_type: str = "pinn", **kw) -> TrainingConfig:
    fields = {"batch_size": 4, "nepochs": epochs, "nphotons": 1e6, "n_groups": 16, **kw}
    return TrainingConfig(model=ModelConfig(N=64, n_filters_scale=1, model_type=model_type),
                          **fields)


CPU = TrainOptions(device="cpu", early_stop_patience=None)


@pytest.mark.parametrize(
    ("field", "value"),
    [("learning_rate", 0.0), ("validation_fraction", 1.0), ("plateau_factor", 1.5),
     ("plateau_patience", -1), ("min_lr", 1.0), ("early_stop_patience", 0), ("seed", -3),
     ("checkpoint_every", 0), ("grad_clip", -1.0)],
)
def test_options_reject_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"TrainOptions.{field}"):
        TrainOptions(**{field: value})


def test_validation_count_rounds_and_keeps_a_training_group() -> None:
    assert validation_count(512, 0.05) == 26  # round(25.6)
    assert validation_count(16, 0.05) == 1  # at least one
    assert validation_count(2, 0.5) == 1
    assert validation_count(1, 0.05) == 0
    assert validation_count(100, 0.0) == 0


def test_early_stopping_counts_epochs_without_improvement() -> None:
    es = _EarlyStopping(3)
    assert [es.step(v) for v in (5.0, 4.0, 4.0, 4.5, 3.9, 4.0, 4.0, 4.0)] == [
        False, False, False, False, False, False, False, True,
    ]


def test_plateau_halves_lr_after_patience_down_to_min_lr() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1e-3)
    sched = make_scheduler(opt, TrainOptions())  # factor 0.5, patience 2, min 1e-4
    lrs = []
    for loss in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0] + [1.0] * 12:
        sched.step(loss)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[2] == pytest.approx(1e-3) and lrs[3] == pytest.approx(5e-4)
    assert lrs[6] == pytest.approx(2.5e-4)
    assert min(lrs) == pytest.approx(1e-4)


def test_config_errors_are_value_errors(scan) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        train_model(scan, tiny_config(batch_size=0), options=CPU)
    with pytest.raises(ValueError, match="diff3d has shape"):
        cfg = TrainingConfig(model=ModelConfig(N=128), nepochs=1, n_groups=4)
        train_model(scan, cfg, options=CPU)
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        train_model(scan, tiny_config(), options=CPU, resume=True)


def test_epoch_callback_and_loss_decreases(scan) -> None:
    seen: list[EpochReport] = []
    res = train_model(scan, tiny_config(epochs=3), options=CPU, on_epoch=seen.append)
    assert [r.epoch for r in seen] == [1, 2, 3] and all(r.epochs == 3 for r in seen)
    assert all(r.val_loss is not None and math.isfinite(r.val_loss) for r in seen)
    assert set(seen[0].terms) == {"nll"}
    assert seen[-1].train_loss < seen[0].train_loss
    assert res.stopped is None and res.history == seen
    assert res.bundle.intensity_scale == pytest.approx(
        float(torch.exp(res.bundle.model.log_scale.detach()))
    )


def test_resume_refuses_a_checkpoint_of_another_setup(scan, tmp_path: Path) -> None:
    train_model(scan, tiny_config(epochs=1), options=CPU, checkpoint_dir=tmp_path)
    other = TrainingConfig(model=ModelConfig(N=64, n_filters_scale=2), batch_size=4, nepochs=2,
                           nphotons=1e6, n_groups=16)
    with pytest.raises(ckpt.CheckpointError, match="n_filters_scale"):
        train_model(scan, other, options=CPU, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train_model(scan, tiny_config(), options=CPU, checkpoint_dir=tmp_path / "x", resume=True)


def test_supervised_without_labels_is_a_clear_error(scan) -> None:
    from ptychodus_pinn_torch.data import RawData

    bare = RawData(scan.xcoords, scan.ycoords, None, None, scan.diff3d, scan.probeGuess, None)
    with pytest.raises(ValueError, match="needs labels"):
        train_model(bare, tiny_config(model_type="supervised"), options=CPU)


def test_history_roundtrips_through_dicts() -> None:
    r = EpochReport(3, 10, 1.5, None, 1e-3, 0.25, {"nll": 1.5})
    assert EpochReport.from_dict(r.to_dict()) == r
    assert np.isfinite(r.train_loss)


def test_channels_last_trains_to_the_same_losses(scan) -> None:
    plain = train_model(scan, tiny_config(epochs=1), options=CPU)
    cl = train_model(scan, tiny_config(epochs=1), options=TrainOptions(
        device="cpu", early_stop_patience=None, channels_last=True))
    np.testing.assert_allclose(cl.history[0].train_loss, plain.history[0].train_loss, rtol=1e-4)
    assert cl.bundle.model.probe_ri.is_contiguous()  # returned in the default memory format


def test_bf16_request_on_cpu_is_ignored_with_a_warning(scan, caplog) -> None:
    with caplog.at_level("WARNING"):
        res = train_model(scan, tiny_config(epochs=1), options=TrainOptions(
            device="cpu", early_stop_patience=None, bf16=True))
    assert "only used on CUDA" in caplog.text and math.isfinite(res.history[0].train_loss)
