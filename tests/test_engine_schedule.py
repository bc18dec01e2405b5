"""The numbers behind the optimizer settings CFG-100 only shows to act: the learning-rate
schedules, adaptive gradient clipping, position subsampling and gradient accumulation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.config.engine import EngineConfig
from ptychodus_pinn_torch.conformance.helpers import tiny_engine, tiny_scan, tiny_training
from ptychodus_pinn_torch.engine.schedule import (
    LearningRateSchedule,
    clip_gradients,
    make_optimizer,
)
from ptychodus_pinn_torch.engine.session import subsample
from ptychodus_pinn_torch.engine.training import train_model


def _lrs(epochs: int = 4, **training: object) -> list[float]:
    config = EngineConfig(training=tiny_training(epochs, **training))
    p = torch.nn.Parameter(torch.zeros(1))
    opt = make_optimizer([p], config)
    schedule = LearningRateSchedule(opt, config)
    out = []
    for e in range(epochs):
        schedule.start_epoch(e)
        out.append(opt.param_groups[0]["lr"])
        schedule.end_epoch(e, 1.0)  # a flat loss: the plateau would act after its patience
    return out


def test_exponential_decays_by_095_per_epoch() -> None:
    np.testing.assert_allclose(_lrs(3, scheduler="Exponential"), [1e-3, 9.5e-4, 9.025e-4])


def test_warmup_cosine_goes_from_lr_to_the_min_ratio() -> None:
    np.testing.assert_allclose(_lrs(3, scheduler="WarmupCosine", lr_min_ratio=0.1),
                               [1e-3, 5.5e-4, 1e-4])
    np.testing.assert_allclose(
        _lrs(4, scheduler="WarmupCosine", lr_warmup_epochs=2, lr_min_ratio=0.5),
        [1e-4, 5.5e-4, 1e-3, 5e-4])


def test_warmup_ramps_from_a_tenth_then_the_keras_plateau_takes_over() -> None:
    lrs = _lrs(7, lr_warmup_epochs=2)
    np.testing.assert_allclose(lrs[:3], [1e-4, 5.5e-4, 1e-3])
    # flat loss: the plateau's first step (epoch 2) sets the best, patience 2, then x0.5
    np.testing.assert_allclose(lrs[3:], [1e-3, 1e-3, 5e-4, 5e-4])


def test_adaptive_clipping_bounds_each_unit_relative_to_its_weights() -> None:
    layer = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, 4.0], [0.0, 1.0]]))  # unit norms 5 and 1
    layer.weight.grad = torch.tensor([[30.0, 40.0], [0.0, 0.05]])  # norms 50 and 0.05
    config = EngineConfig(training=tiny_training(gradient_clip_val=0.1,
                                                 gradient_clip_algorithm="agc"))
    clip_gradients(layer, config)
    # row 0: 50 > 0.1*5 -> scaled to norm 0.5; row 1: 0.05 < 0.1*1 -> unchanged
    torch.testing.assert_close(layer.weight.grad, torch.tensor([[0.3, 0.4], [0.0, 0.05]]))


def test_subsample_is_upstreams_seeded_draw() -> None:
    scan = tiny_scan()
    part = subsample(scan, 7, 11)
    expected = np.sort(np.random.RandomState(11).choice(np.arange(scan.n_positions), 7,
                                                        replace=False))
    np.testing.assert_array_equal(part.xcoords, scan.xcoords[expected])
    assert subsample(scan, 999, 11) is scan


def test_two_accumulated_batches_step_like_one_batch_of_both() -> None:
    # SGD: its step is linear in the gradient (Adam's m/sqrt(v) flips with rounding near 0)
    scan = tiny_scan()
    common = {"validation_fraction": 0.0, "shuffle": False}
    accumulated = train_model(scan, tiny_engine(1, engine={**common, "accum_steps": 2},
                                                batch_size=4, n_groups=8, optimizer="sgd"))
    whole = train_model(scan, tiny_engine(1, engine=common, batch_size=8, n_groups=8,
                                          optimizer="sgd"))
    for k, v in whole.bundle.model.state_dict().items():
        torch.testing.assert_close(accumulated.bundle.model.state_dict()[k], v, rtol=1e-4,
                                   atol=1e-6, msg=k)
    single = train_model(scan, tiny_engine(1, engine=common, batch_size=4, n_groups=8,
                                           optimizer="sgd"))
    differs = any(not torch.equal(single.bundle.model.state_dict()[k], v)
                  for k, v in whole.bundle.model.state_dict().items())
    assert differs  # two steps of 4 are not one step of 8


@pytest.mark.parametrize(("training", "needle"), [
    ({"momentum": 0.5}, "momentum=0.5 acts only with TrainingConfig.optimizer='sgd'"),
    ({"plateau_patience": 5}, "plateau_patience=5 acts only with"),
    ({"positions_provided": False}, "positions_provided=False is not supported"),
])
def test_settings_that_would_do_nothing_are_refused_by_name(training: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        EngineConfig(training=tiny_training(**training))
