"""Behaviour of the stitch package beyond the numbered rules: streaming, layouts, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.physics import translate
from ptychodus_pinn_torch.stitch import (
    CanvasAccumulator,
    ObjectGridAccumulator,
    reassemble_position,
    stitch_to_object_grid,
)


def _patches(n: int, N: int, seed: int, dtype: type = np.complex64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, N, N)) + 1j * rng.normal(size=(n, N, N))).astype(dtype)


def test_streaming_equals_one_call() -> None:
    p = _patches(10, 8, seed=1)
    rng = np.random.default_rng(2)
    x, y = rng.uniform(0, 30, 10), rng.uniform(0, 20, 10)
    whole, cov = stitch_to_object_grid(p, x, y, (24, 34))
    acc = ObjectGridAccumulator((24, 34), 8)
    acc.add(p[:4], x[:4], y[:4])
    acc.add(torch.as_tensor(p[4:]), torch.as_tensor(x[4:]), torch.as_tensor(y[4:]))
    obj, cov2 = acc.result()
    np.testing.assert_allclose(obj.numpy(), whole, atol=1e-6)
    np.testing.assert_allclose(cov2.numpy(), cov, atol=1e-6)


def test_channel_layouts_accepted() -> None:
    p = _patches(3, 8, seed=3)
    x = y = np.array([5.0, 6.5, 7.25])
    ref, _ = stitch_to_object_grid(p, x, y, (16, 16))
    a, _ = stitch_to_object_grid(p[:, None], x, y, (16, 16))
    b, _ = stitch_to_object_grid(p[..., None], x, y, (16, 16))
    np.testing.assert_array_equal(a, ref)
    np.testing.assert_array_equal(b, ref)


def test_complex128_and_real_inputs() -> None:
    p = _patches(4, 8, seed=4, dtype=np.complex128)
    x = y = np.array([4.0, 5.5, 6.0, 8.3])
    out, cov = stitch_to_object_grid(p, x, y, (16, 16))
    assert out.dtype == np.complex64 and cov.dtype == np.float32
    out_r, _ = stitch_to_object_grid(p.real.copy(), x, y, (16, 16))
    np.testing.assert_allclose(out_r, out.real, atol=1e-6)
    r = reassemble_position(p[..., None], np.stack([x, y], 1)[:, None, :, None], M=4)
    assert r.dtype == np.complex64


def test_patches_entirely_outside_grid_are_ignored() -> None:
    p = _patches(2, 8, seed=5)
    out, cov = stitch_to_object_grid(p, np.array([-100.0, 500.0]), np.array([3.0, 3.0]), (10, 10))
    assert float(np.abs(out).max()) == 0.0 and float(cov.max()) == 0.0


def test_single_patch_reassemble_is_the_crop() -> None:
    p = _patches(1, 16, seed=6)[..., None]
    out = reassemble_position(p, np.array([[[[123.456], [-7.5]]]]), M=10)
    assert out.shape == (10, 10, 1)
    np.testing.assert_allclose(out[..., 0], p[0, 3:13, 3:13, 0], atol=1e-6)


def test_large_coordinates_keep_subpixel_accuracy() -> None:
    """Offsets near 1e5 px: the float64 centre of mass keeps the 0.5 px shift exact."""
    p = np.ones((2, 8, 8, 1), np.complex64)
    p[1] *= 3
    off = np.array([[1e5, 2e5], [1e5 + 1.0, 2e5]]).reshape(2, 1, 2, 1)
    out = reassemble_position(p, off, M=4)
    # com_x = 1e5 + 0.5; adj_x = -0.5, +0.5; pad = even(ceil(0.5)) = 2, P = 8; columns 3 and 4
    # are fully inside both shifted crops and average 1 and 3
    assert out.shape == (8, 8, 1)
    np.testing.assert_allclose(out[2:6, 3:5, 0], 2.0, atol=1e-5)
    np.testing.assert_allclose(out[3, 2, 0], (1.0 + 3 * 0.5) / 1.5, atol=1e-5)


def test_splat_equals_translate_of_padded_tile() -> None:
    """The splat kernel equals physics.translate of the zero-padded tile (PHYS-001)."""
    rng = np.random.default_rng(7)
    tiles = torch.as_tensor(_patches(5, 6, seed=8, dtype=np.complex128))
    r0 = torch.as_tensor(rng.uniform(2, 9, 5))
    c0 = torch.as_tensor(rng.uniform(2, 9, 5))
    acc = CanvasAccumulator((18, 18), dtype=torch.float64)
    acc.add(tiles, r0, c0)
    canvas = torch.zeros(5, 18, 18, dtype=torch.complex128)
    canvas[:, :6, :6] = tiles
    ref = translate(canvas, torch.stack([c0, r0], dim=1)).sum(0)
    torch.testing.assert_close(acc.numerator(), ref, atol=1e-12, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_stays_on_cuda() -> None:
    p = torch.as_tensor(_patches(50, 16, seed=9)).cuda()
    xy = torch.rand(50, 2, dtype=torch.float64, device="cuda") * 40
    out = reassemble_position(p[..., None], xy[:, None, :, None], M=8)
    assert out.device.type == "cuda"
    ref = reassemble_position(p[..., None].cpu().numpy(), xy.cpu().numpy(), M=8)
    np.testing.assert_allclose(out.cpu().numpy(), ref, atol=1e-5)
    obj, cov = stitch_to_object_grid(p, xy[:, 0] + 8, xy[:, 1] + 8, (64, 64))
    assert obj.device.type == "cuda" and cov.device.type == "cuda"
