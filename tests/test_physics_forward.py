"""Masks, probe normalization, smoothing, pad_and_diffract, intensity_scale, losses vs numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import convolve

from ptychodus_pinn_torch.physics import (
    centre_mask,
    complex_mae,
    disk_mask,
    gaussian_smooth,
    intensity_scale,
    mae,
    normalize_probe,
    pad_and_diffract,
    poisson_nll,
    realspace_loss,
    total_variation,
)


def _np_disk(N: int) -> np.ndarray:
    i = np.arange(N)[:, None] - N // 2 + 0.5
    j = np.arange(N)[None, :] - N // 2 + 0.5
    return (np.sqrt(i**2 + j**2) < N // 4).astype(np.float32)


@pytest.mark.parametrize("N, count", [(64, 812), (128, 3228)])
def test_disk_mask_counts(N: int, count: int) -> None:
    m = disk_mask(N)
    assert m.dtype == torch.float32 and m.shape == (N, N)
    assert int(m.sum()) == count
    np.testing.assert_array_equal(m.numpy(), _np_disk(N))


def test_centre_mask() -> None:
    m = centre_mask(64).numpy()
    ref = np.zeros((64, 64), np.float32)
    ref[16:48, 16:48] = 1
    np.testing.assert_array_equal(m, ref)
    with pytest.raises(ValueError, match="N must be a positive int"):
        centre_mask(0)


def test_normalize_probe_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    p = rng.normal(size=(32, 32)) + 1j * rng.normal(size=(32, 32))
    out = normalize_probe(torch.as_tensor(p), 4.0)
    ref = p / (4.0 * np.mean(np.abs(_np_disk(32) * p)))
    assert out.dtype == torch.complex64
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6, atol=1e-7)
    assert float(torch.mean(torch.abs(disk_mask(32) * out))) == pytest.approx(0.25, rel=1e-6)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), True])
def test_normalize_probe_bad_scale(scale: float) -> None:
    with pytest.raises(ValueError, match="probe_scale"):
        normalize_probe(torch.ones(8, 8, dtype=torch.complex64), scale)


def test_normalize_probe_bad_probe() -> None:
    with pytest.raises(ValueError, match="square 2-D"):
        normalize_probe(torch.ones(2, 8, 8, dtype=torch.complex64), 4.0)
    with pytest.raises(ValueError, match="non-zero inside the central disk"):
        normalize_probe(torch.zeros(8, 8, dtype=torch.complex64), 4.0)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.3])
def test_gaussian_smooth_matches_scipy(sigma: float) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 9, 10)) + 1j * rng.normal(size=(2, 9, 10))
    k = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * sigma**2))
    k /= k.sum()
    k2 = np.outer(k, k)
    out = gaussian_smooth(torch.as_tensor(x), sigma).numpy()
    for b in range(2):
        # scipy 'mirror' == TF/torch REFLECT (edge sample not repeated)
        ref = convolve(x[b].real, k2, mode="mirror") + 1j * convolve(x[b].imag, k2, mode="mirror")
        np.testing.assert_allclose(out[b], ref, atol=1e-12)


def test_gaussian_smooth_zero_and_negative() -> None:
    x = torch.randn(4, 4, dtype=torch.complex64)
    assert gaussian_smooth(x, 0) is x
    with pytest.raises(ValueError, match="gaussian_smoothing_sigma"):
        gaussian_smooth(x, -1.0)


def test_pad_and_diffract_matches_numpy_and_parseval() -> None:
    rng = np.random.default_rng(3)
    psi = (rng.normal(size=(3, 16, 16)) + 1j * rng.normal(size=(3, 16, 16))).astype(np.complex64)
    amp = pad_and_diffract(torch.as_tensor(psi))
    assert amp.dtype == torch.float32 and amp.shape == (3, 16, 16)
    ref = np.sqrt(np.fft.fftshift(np.abs(np.fft.fft2(psi.astype(np.complex128))) ** 2 / 256,
                                  axes=(-2, -1)))
    np.testing.assert_allclose(amp.numpy(), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        (amp.double() ** 2).sum(dim=(-2, -1)).numpy(), (np.abs(psi) ** 2).sum(axis=(-2, -1)),
        rtol=1e-5,
    )
    flat = torch.ones(1, 8, 8, dtype=torch.complex64)
    a = pad_and_diffract(flat)
    assert float(a[0, 4, 4]) == pytest.approx(8.0) and float(a.sum()) == pytest.approx(8.0)


def test_pad_and_diffract_gradient_finite_at_zero() -> None:
    psi = torch.zeros(1, 8, 8, dtype=torch.complex64, requires_grad=True)
    pad_and_diffract(psi).sum().backward()
    assert psi.grad is not None and bool(torch.isfinite(torch.view_as_real(psi.grad)).all())


def test_intensity_scale() -> None:
    assert intensity_scale(1e9, 64) == pytest.approx(988.2117688, rel=1e-9)
    assert intensity_scale(1e9, 128) == pytest.approx(494.1058844, rel=1e-9)
    assert intensity_scale(1e6, 64) == 31.25
    with pytest.raises(ValueError, match="nphotons"):
        intensity_scale(0.0, 64)
    with pytest.raises(ValueError, match="N must be"):
        intensity_scale(1e6, 0)


def test_poisson_nll_matches_numpy() -> None:
    rng = np.random.default_rng(4)
    y = rng.poisson(5.0, size=(2, 1, 8, 8)).astype(np.float64)
    yh = rng.uniform(0.1, 10.0, size=(2, 1, 8, 8))
    got = float(poisson_nll(torch.as_tensor(y), torch.as_tensor(yh)))
    assert got == pytest.approx(float(np.mean(yh - y * np.log(yh))), rel=1e-12)
    zero = poisson_nll(torch.ones(3), torch.zeros(3))
    assert float(zero) == pytest.approx(-math.log(1e-12), rel=1e-6)  # float32
    with pytest.raises(ValueError, match="same shape"):
        poisson_nll(torch.ones(3), torch.ones(4))


def test_mae_and_tv_and_realspace() -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(size=(2, 8, 8)) + 1j * rng.normal(size=(2, 8, 8))
    b = rng.normal(size=(2, 8, 8)) + 1j * rng.normal(size=(2, 8, 8))
    ta, tb = torch.as_tensor(a), torch.as_tensor(b)
    assert float(mae(ta, tb)) == pytest.approx(np.mean(np.abs(a - b)), rel=1e-12)
    tv_ref = sum(
        np.sum(np.diff(p, axis=-1) ** 2) + np.sum(np.diff(p, axis=-2) ** 2)
        for p in (a.real, a.imag)
    )
    assert float(total_variation(ta)) == pytest.approx(tv_ref, rel=1e-12)
    cm_ref = np.mean(np.abs(np.abs(b) - np.abs(a))) + np.mean(np.abs(np.angle(b) - np.angle(a)))
    assert float(complex_mae(tb, ta)) == pytest.approx(cm_ref, rel=1e-12)
    masked = a * centre_mask(8).numpy()
    cm_masked = np.mean(np.abs(np.abs(b) - np.abs(masked))) + np.mean(
        np.abs(np.angle(b) - np.angle(masked))
    )
    tv_masked = sum(
        np.sum(np.diff(p, axis=-1) ** 2) + np.sum(np.diff(p, axis=-2) ** 2)
        for p in (masked.real, masked.imag)
    )
    got = realspace_loss(ta, tb, tv_weight=0.5, realspace_mae_weight=2.0, probe_big=False)
    assert float(got) == pytest.approx(0.5 * tv_masked + 2.0 * cm_masked, rel=1e-12)
    got_big = realspace_loss(ta, tb, tv_weight=0.0, realspace_mae_weight=1.0, probe_big=True)
    assert float(got_big) == pytest.approx(cm_ref, rel=1e-12)
    with pytest.raises(ValueError, match="tv_weight"):
        realspace_loss(ta, tb, tv_weight=-1.0, realspace_mae_weight=0.0, probe_big=True)
