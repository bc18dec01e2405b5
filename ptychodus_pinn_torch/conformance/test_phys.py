"""Conformance tests of specs/PHYS.md (physics primitives against numpy/scipy references)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import convolve, map_coordinates

from ptychodus_pinn_torch.physics import (
    centre_mask,
    disk_mask,
    gaussian_smooth,
    intensity_scale,
    mae,
    normalize_probe,
    pad_and_diffract,
    poisson_nll,
    realspace_loss,
    translate,
)


def _ref_translate(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    yy, xx = np.meshgrid(np.arange(img.shape[0]), np.arange(img.shape[1]), indexing="ij")
    coords = [yy - dy, xx - dx]

    def one(a: np.ndarray) -> np.ndarray:
        return map_coordinates(a, coords, order=1, mode="grid-constant", cval=0.0)

    return one(img.real) + 1j * one(img.imag) if np.iscomplexobj(img) else one(img)


def _np_disk(N: int) -> np.ndarray:
    i = np.arange(N)[:, None] - N // 2 + 0.5
    j = np.arange(N)[None, :] - N // 2 + 0.5
    return (np.sqrt(i**2 + j**2) < N // 4).astype(np.float32)


@pytest.mark.spec("PHYS-001")
@pytest.mark.parametrize(
    "dtype, tol",
    [(torch.float64, 1e-12), (torch.complex128, 1e-12), (torch.float32, 2e-5),
     (torch.complex64, 2e-5)],
)
def test_translate_matches_scipy(dtype: torch.dtype, tol: float) -> None:
    gen = torch.Generator().manual_seed(11)
    img = torch.randn(6, 12, 10, dtype=dtype, generator=gen)
    offs = torch.tensor(
        [[0.3, -1.7], [2.5, 0.25], [-8.0, 0.0], [12.9, -10.6], [-0.5, 0.5], [30.0, 2.0]],
        dtype=torch.float64,
    )
    out = translate(img, offs)
    for b in range(6):
        ref = _ref_translate(img[b].numpy(), float(offs[b, 0]), float(offs[b, 1]))
        np.testing.assert_allclose(out[b].numpy(), ref, atol=tol, rtol=0)
    assert float(out[5].abs().max()) == 0.0  # shifted wholly out of the frame


@pytest.mark.spec("PHYS-001")
def test_translate_integer_and_half_pixel() -> None:
    img = torch.zeros(1, 9, 9)
    img[0, 4, 4] = 1.0
    out = translate(img, torch.tensor([[2.0, -3.0]]))
    assert float(out[0, 1, 6]) == 1.0 and float(out.sum()) == pytest.approx(1.0)
    half = translate(img, torch.tensor([[0.0, 0.5]]))
    assert float(half[0, 4, 4]) == pytest.approx(0.5) and float(half[0, 5, 4]) == pytest.approx(0.5)


@pytest.mark.spec("PHYS-002")
def test_translate_complex_batched_differentiable() -> None:
    gen = torch.Generator().manual_seed(12)
    img = torch.randn(2, 3, 7, 7, dtype=torch.complex128, generator=gen)
    offs = torch.randn(2, 3, 2, dtype=torch.float64, generator=gen)
    out = translate(img, offs)
    assert out.dtype == torch.complex128 and out.shape == img.shape
    torch.testing.assert_close(out.real, translate(img.real, offs))
    torch.testing.assert_close(out.imag, translate(img.imag, offs))
    one = translate(img, torch.tensor([0.7, -1.1], dtype=torch.float64))
    torch.testing.assert_close(one[1, 2], translate(img[1, 2], torch.tensor([0.7, -1.1],
                                                                           dtype=torch.float64)))
    zero = translate(img.to(torch.complex64), torch.zeros(2, 3, 2))
    torch.testing.assert_close(zero, img.to(torch.complex64), atol=1e-6, rtol=0)
    i = img[0].clone().requires_grad_(True)
    o = torch.tensor([[0.3, 0.6], [-1.2, 2.1], [0.1, 0.2]], dtype=torch.float64,
                     requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: torch.view_as_real(translate(a, b)), (i, o), eps=1e-6, atol=1e-5
    )


@pytest.mark.spec("PHYS-002")
def test_translate_bad_input() -> None:
    with pytest.raises(ValueError, match="broadcast"):
        translate(torch.zeros(2, 4, 4), torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        translate(torch.zeros(2, 4, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="floating"):
        translate(torch.zeros(2, 4, 4), torch.zeros(2, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match="at least 2"):
        translate(torch.zeros(4), torch.zeros(2))


@pytest.mark.spec("PHYS-003")
@pytest.mark.parametrize("N, count", [(64, 812), (128, 3228)])
def test_disk_mask(N: int, count: int) -> None:
    m = disk_mask(N)
    assert m.dtype == torch.float32 and tuple(m.shape) == (N, N) and int(m.sum()) == count
    np.testing.assert_array_equal(m.numpy(), _np_disk(N))


@pytest.mark.spec("PHYS-004")
def test_centre_mask() -> None:
    m = centre_mask(64)
    ref = np.zeros((64, 64), np.float32)
    ref[16:48, 16:48] = 1
    assert m.dtype == torch.float32
    np.testing.assert_array_equal(m.numpy(), ref)


@pytest.mark.spec("PHYS-005")
@pytest.mark.parametrize("scale", [4.0, 10.0])
def test_normalize_probe(scale: float) -> None:
    rng = np.random.default_rng(13)
    p = rng.normal(size=(64, 64)) + 1j * rng.normal(size=(64, 64))
    out = normalize_probe(torch.as_tensor(p.astype(np.complex64)), scale)
    ref = p.astype(np.complex64).astype(np.complex128)
    ref = ref / (scale * np.mean(np.abs(_np_disk(64) * ref)))
    assert out.dtype == torch.complex64
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6, atol=1e-7)
    assert float(torch.mean(torch.abs(disk_mask(64) * out))) == pytest.approx(1 / scale, rel=1e-6)
    for bad in (0.0, -2.0, math.inf):
        with pytest.raises(ValueError, match="probe_scale"):
            normalize_probe(torch.as_tensor(p), bad)
    with pytest.raises(ValueError, match="square 2-D"):
        normalize_probe(torch.as_tensor(p[:10]), scale)
    with pytest.raises(ValueError, match="central disk"):
        normalize_probe(torch.zeros(16, 16, dtype=torch.complex64), scale)


@pytest.mark.spec("PHYS-006")
@pytest.mark.parametrize("sigma", [0.5, 1.0, 3.0])
def test_gaussian_smooth(sigma: float) -> None:
    rng = np.random.default_rng(14)
    x = rng.normal(size=(3, 8, 9)) + 1j * rng.normal(size=(3, 8, 9))
    k = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * sigma**2))
    k2 = np.outer(k / k.sum(), k / k.sum())
    out = gaussian_smooth(torch.as_tensor(x), sigma).numpy()
    for b in range(3):
        ref = convolve(x[b].real, k2, mode="mirror") + 1j * convolve(x[b].imag, k2, mode="mirror")
        np.testing.assert_allclose(out[b], ref, atol=1e-12, rtol=0)
    t = torch.as_tensor(x)
    assert gaussian_smooth(t, 0.0) is t
    with pytest.raises(ValueError, match="gaussian_smoothing_sigma"):
        gaussian_smooth(t, -0.5)


@pytest.mark.spec("PHYS-007")
def test_pad_and_diffract() -> None:
    rng = np.random.default_rng(15)
    psi = (rng.normal(size=(2, 1, 32, 32)) + 1j * rng.normal(size=(2, 1, 32, 32))).astype(
        np.complex64
    )
    amp = pad_and_diffract(torch.as_tensor(psi))
    assert amp.dtype == torch.float32 and tuple(amp.shape) == psi.shape
    spec = np.fft.fft2(psi.astype(np.complex128))
    ref = np.sqrt(np.fft.fftshift(np.abs(spec) ** 2 / (32 * 32), axes=(-2, -1)))
    np.testing.assert_allclose(amp.numpy(), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        (amp.double() ** 2).sum(dim=(-2, -1)).numpy(),
        (np.abs(psi.astype(np.complex128)) ** 2).sum(axis=(-2, -1)),
        rtol=1e-5,
    )
    dc = pad_and_diffract(torch.ones(16, 16, dtype=torch.complex64))
    assert float(dc[8, 8]) == pytest.approx(16.0) and float(dc.sum()) == pytest.approx(16.0)
    z = torch.zeros(8, 8, dtype=torch.complex64, requires_grad=True)
    pad_and_diffract(z).sum().backward()
    assert z.grad is not None and bool(torch.isfinite(torch.view_as_real(z.grad)).all())


@pytest.mark.spec("PHYS-008")
def test_intensity_scale() -> None:
    assert intensity_scale(1e9, 64) == pytest.approx(988.2117688026186, rel=1e-9)
    assert intensity_scale(1e9, 128) == pytest.approx(494.1058844013093, rel=1e-9)
    assert intensity_scale(1e6, 64) == pytest.approx(31.25, rel=1e-12)
    with pytest.raises(ValueError, match="nphotons"):
        intensity_scale(-1.0, 64)
    with pytest.raises(ValueError, match="N must be"):
        intensity_scale(1e9, 0)


@pytest.mark.spec("PHYS-009")
def test_poisson_nll() -> None:
    rng = np.random.default_rng(16)
    y = rng.poisson(20.0, size=(4, 1, 16, 16)).astype(np.float64)
    yh = rng.uniform(0.5, 40.0, size=y.shape)
    got = float(poisson_nll(torch.as_tensor(y), torch.as_tensor(yh)))
    assert got == pytest.approx(float(np.mean(yh - y * np.log(yh))), rel=1e-12)
    two = torch.full((5,), 2.0, dtype=torch.float64)
    zero = poisson_nll(two, torch.zeros(5, dtype=torch.float64))
    assert float(zero) == pytest.approx(-2.0 * math.log(1e-12), rel=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        poisson_nll(torch.ones(2, 3), torch.ones(3, 2))


@pytest.mark.spec("PHYS-010")
def test_mae() -> None:
    rng = np.random.default_rng(17)
    a, b = rng.normal(size=(2, 3, 8, 8)), rng.normal(size=(2, 3, 8, 8))
    assert float(mae(torch.as_tensor(a), torch.as_tensor(b))) == pytest.approx(
        float(np.mean(np.abs(a - b))), rel=1e-12
    )
    ca = a + 1j * b
    assert float(mae(torch.as_tensor(ca), torch.as_tensor(b + 0j))) == pytest.approx(
        float(np.mean(np.abs(ca - b))), rel=1e-12
    )


@pytest.mark.spec("PHYS-011")
@pytest.mark.parametrize("probe_big", [False, True])
def test_realspace_loss(probe_big: bool) -> None:
    rng = np.random.default_rng(18)
    p = rng.normal(size=(2, 1, 16, 16)) + 1j * rng.normal(size=(2, 1, 16, 16))
    t = rng.normal(size=(2, 1, 16, 16)) + 1j * rng.normal(size=(2, 1, 16, 16))
    pm = p if probe_big else p * centre_mask(16).numpy()

    def tv(z: np.ndarray) -> float:
        return float(sum(np.sum(np.diff(q, axis=-1) ** 2) + np.sum(np.diff(q, axis=-2) ** 2)
                         for q in (z.real, z.imag)))

    cm = float(
        np.mean(np.abs(np.abs(t) - np.abs(pm))) + np.mean(np.abs(np.angle(t) - np.angle(pm)))
    )
    tp, tt = torch.as_tensor(p), torch.as_tensor(t)
    got = realspace_loss(tp, tt, tv_weight=0.3, realspace_mae_weight=1.5, probe_big=probe_big)
    assert float(got) == pytest.approx(0.3 * tv(pm) + 1.5 * cm, rel=1e-12)
    only_tv = realspace_loss(tp, tt, tv_weight=1.0, realspace_mae_weight=0.0, probe_big=probe_big)
    assert float(only_tv) == pytest.approx(tv(pm), rel=1e-12)
    with pytest.raises(ValueError, match="realspace_mae_weight"):
        realspace_loss(tp, tt, tv_weight=0.0, realspace_mae_weight=-1.0, probe_big=probe_big)


@pytest.mark.spec("PHYS-170")
def test_losses_leave_bad_pixels_out() -> None:
    rng = np.random.default_rng(170)
    y = rng.poisson(20.0, size=(3, 2, 8, 8)).astype(np.float64)
    yh = rng.uniform(0.5, 40.0, size=y.shape)
    bad = np.zeros((8, 8), bool)
    bad[3:5, 3:6] = True
    good = np.broadcast_to(~bad, y.shape)
    ty, tyh, tbad = torch.as_tensor(y), torch.as_tensor(yh), torch.as_tensor(bad)
    nll = float(poisson_nll(ty, tyh, bad_pixels=tbad))
    assert nll == pytest.approx(float(np.mean((yh - y * np.log(yh))[good])), rel=1e-12)
    assert nll != pytest.approx(float(poisson_nll(ty, tyh)), rel=1e-6)
    got = float(mae(ty, tyh, bad_pixels=tbad))
    assert got == pytest.approx(float(np.mean(np.abs(y - yh)[good])), rel=1e-12)
    # a per-pattern mask (B, 1, N, N)
    per = np.zeros((3, 1, 8, 8), bool)
    per[1, 0, :2] = True
    got = float(mae(ty, tyh, bad_pixels=torch.as_tensor(per)))
    assert got == pytest.approx(
        float(np.mean(np.abs(y - yh)[np.broadcast_to(~per, y.shape)])), rel=1e-12)
    # no bad pixel: bit-identical to the unmasked loss
    none = torch.zeros(8, 8, dtype=torch.bool)
    assert torch.equal(poisson_nll(ty, tyh, bad_pixels=none), poisson_nll(ty, tyh))
    assert torch.equal(mae(ty, tyh, bad_pixels=none), mae(ty, tyh))
    with pytest.raises(ValueError, match="bad_pixels has shape"):
        mae(ty, tyh, bad_pixels=torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="every detector pixel"):
        mae(ty, tyh, bad_pixels=torch.ones(8, 8, dtype=torch.bool))
