"""Behaviour of the PtychoPINN module beyond the numbered rules: training, inputs, duck typing."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.config.spec import ModelConfig
from ptychodus_pinn_torch.model import build_model, merge_patches
from ptychodus_pinn_torch.physics import poisson_nll


def probe(n: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n] - n / 2
    return np.exp(-(xx**2 + yy**2) / (2 * (n / 6) ** 2)).astype(np.complex64)


def small(**fields: object) -> ModelConfig:
    return replace(ModelConfig(), n_filters_scale=1, **fields)


def test_a_few_adam_steps_reduce_the_poisson_nll() -> None:
    """The whole chain is differentiable end to end and trains (tiny, fixed batch)."""
    torch.manual_seed(0)
    model = build_model(small(), probe=probe(), intensity_scale=4.0)
    x = torch.rand(1, 1, 64, 64) * 4.0
    pos = torch.zeros(1, 1, 2)
    target = x**2
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = poisson_nll(target, model(x, pos).pred_intensity)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]


def test_every_generator_weight_gets_gradient() -> None:
    model = build_model(small(gridsize=2), probe=probe(), intensity_scale=4.0)
    out = model(torch.rand(1, 4, 64, 64), torch.randn(1, 4, 2))
    (out.pred_amp.mean() + out.obj.abs().mean()).backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []


def test_duck_typed_config_and_tensor_probe() -> None:
    @dataclass
    class Legacy:
        N: int = 64
        gridsize: int = 1
        n_filters_scale: int = 1
        amp_activation: str = "swish"
        object_big: bool = True
        probe_big: bool = True
        probe_mask: bool = False
        pad_object: bool = True
        probe_scale: float = 4.0
        gaussian_smoothing_sigma: float = 0.0

    p = torch.from_numpy(probe())[None]  # (1, N, N) is accepted too
    model = build_model(Legacy(), probe=p, intensity_scale=2.0)
    assert model.probe.shape == (64, 64)


def test_config_missing_field_is_named() -> None:
    class Partial:
        N = 64
        gridsize = 1

    with pytest.raises(ValueError, match="no field 'n_filters_scale'"):
        build_model(Partial(), probe=probe(), intensity_scale=1.0)


def test_non_finite_probe_raises() -> None:
    bad = probe()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="probe contains NaN"):
        build_model(small(), probe=bad, intensity_scale=1.0)


def test_merge_without_coverage_is_zero_and_upstream_gain_absent() -> None:
    """A patch shifted far away leaves the canvas corner at 0; border-only pixels keep the
    patch value (upstream would multiply them by 1000)."""
    patch = torch.full((1, 1, 64, 64), 2.0 + 1.0j, dtype=torch.complex64)
    canvas = merge_patches(patch, torch.tensor([[[-30.0, 0.0]]]), 74)
    # translated by +30 columns: columns < 35 are uncovered
    assert torch.count_nonzero(canvas[0, :, :30]) == 0
    covered = canvas[0, 5:69, 40:74]
    assert torch.allclose(covered, torch.full_like(covered, 2.0 + 1.0j), atol=1e-4)


def test_intensity_scale_property_tracks_log_scale() -> None:
    model = build_model(small(), probe=probe(), intensity_scale=31.25)
    with torch.no_grad():
        model.log_scale.fill_(math.log(100.0))
    assert model.intensity_scale == pytest.approx(100.0, rel=1e-6)


def test_numpy_integer_fields_are_accepted() -> None:
    cfg = small(N=np.int64(64), gridsize=np.int32(1))
    cfg = replace(cfg, n_filters_scale=np.int64(1))
    model = build_model(cfg, probe=probe(), intensity_scale=np.float32(2.0))
    assert (model.N, model.C) == (64, 1) and isinstance(model.N, int)
