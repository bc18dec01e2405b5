"""Shapes and dtypes of the PtychoPINN module for every supported N, gridsize and activation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.config.spec import ModelConfig
from ptychodus_pinn_torch.model import ModelOutput, build_model


def probe(n: int) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n] - n / 2
    return np.exp(-(xx**2 + yy**2) / (2 * (n / 6) ** 2)).astype(np.complex64)


def check_output(out: ModelOutput, b: int, c: int, n: int) -> None:
    assert isinstance(out, ModelOutput)
    assert tuple(out.obj.shape) == (b, n, n) and out.obj.dtype == torch.complex64
    assert tuple(out.obj_patches.shape) == (b, c, n, n)
    assert out.obj_patches.dtype == torch.complex64
    for t in (out.pred_amp, out.pred_intensity):
        assert tuple(t.shape) == (b, c, n, n) and t.dtype == torch.float32
        assert bool(torch.isfinite(t).all()) and bool((t >= 0).all())
    assert bool(torch.isfinite(torch.view_as_real(out.obj)).all())


@pytest.mark.parametrize("n", [64, 128])
@pytest.mark.parametrize("gridsize", [1, 2])
def test_forward_shapes(n: int, gridsize: int) -> None:
    cfg = replace(ModelConfig(), N=n, gridsize=gridsize, n_filters_scale=1)
    model = build_model(cfg, probe=probe(n), intensity_scale=10.0)
    c = gridsize**2
    assert (model.N, model.C) == (n, c)
    assert model.padded_size == n + (gridsize - 1) * 4 + 10
    x = torch.rand(2, c, n, n) * 10
    pos = torch.randn(2, c, 2) * (gridsize - 1) * 2
    with torch.no_grad():
        out = model(x, pos)
        obj = model.diffraction_to_obj(x, pos)
    check_output(out, 2, c, n)
    assert torch.equal(obj, out.obj)


def test_forward_n256_single_sample() -> None:
    """N=256 at the default width: one B=1 forward (the most expensive case, kept to one)."""
    cfg = replace(ModelConfig(), N=256)
    model = build_model(cfg, probe=probe(256), intensity_scale=10.0)
    with torch.no_grad():
        out = model(torch.rand(1, 1, 256, 256), torch.zeros(1, 1, 2))
    check_output(out, 1, 1, 256)


@pytest.mark.parametrize("activation", ["sigmoid", "swish", "silu", "softplus", "relu"])
@pytest.mark.parametrize("gridsize", [1, 2])
def test_each_activation_forward(activation: str, gridsize: int) -> None:
    cfg = replace(ModelConfig(), n_filters_scale=1, amp_activation=activation, gridsize=gridsize)
    model = build_model(cfg, probe=probe(64), intensity_scale=5.0)
    c = gridsize**2
    with torch.no_grad():
        out = model(torch.rand(1, c, 64, 64), torch.zeros(1, c, 2))
    check_output(out, 1, c, 64)


@pytest.mark.parametrize(
    "fields",
    [
        {"object_big": False},
        {"object_big": False, "gridsize": 2},
        {"pad_object": False},
        {"probe_big": False, "probe_mask": True},
        {"gaussian_smoothing_sigma": 0.5},
    ],
)
def test_config_variants_forward(fields: dict) -> None:
    cfg = replace(ModelConfig(), n_filters_scale=1, **fields)
    model = build_model(cfg, probe=probe(64), intensity_scale=5.0)
    c = cfg.gridsize**2
    with torch.no_grad():
        out = model(torch.rand(2, c, 64, 64), torch.randn(2, c, 2))
    check_output(out, 2, c, 64)


def test_positions_default_to_zero() -> None:
    model = build_model(replace(ModelConfig(), n_filters_scale=1), probe=probe(64),
                        intensity_scale=5.0)
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        a = model(x)
        b = model(x, torch.zeros(2, 1, 2))
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)
