"""Behaviour of physics.translate against scipy.ndimage.map_coordinates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import map_coordinates

from ptychodus_pinn_torch.physics import translate


def _scipy_translate(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Independent reference: out[y, x] = img(y - dy, x - dx), bilinear, per-corner zero fill."""
    yy, xx = np.meshgrid(np.arange(img.shape[0]), np.arange(img.shape[1]), indexing="ij")
    coords = [yy - dy, xx - dx]

    def one(part: np.ndarray) -> np.ndarray:
        return map_coordinates(part, coords, order=1, mode="grid-constant", cval=0.0)

    if np.iscomplexobj(img):
        return one(img.real) + 1j * one(img.imag)
    return one(img)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128, torch.float32, torch.complex64])
def test_matches_scipy_including_borders(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    img = torch.randn(5, 11, 13, dtype=dtype, generator=gen)
    offs = torch.tensor(
        [[0.3, -1.7], [2.5, 0.25], [-8.0, 0.0], [12.9, -10.6], [-0.5, 0.5]], dtype=torch.float64
    )
    out = translate(img, offs)
    assert out.dtype == dtype and out.shape == img.shape
    tol = 1e-12 if dtype in (torch.float64, torch.complex128) else 2e-5
    for b in range(5):
        ref = _scipy_translate(img[b].numpy(), float(offs[b, 0]), float(offs[b, 1]))
        np.testing.assert_allclose(out[b].numpy(), ref, atol=tol, rtol=0)


def test_integer_shift_moves_content_by_plus_offset() -> None:
    img = torch.zeros(1, 9, 9)
    img[0, 4, 4] = 1.0
    out = translate(img, torch.tensor([[2.0, -3.0]]))  # dx=+2 (columns), dy=-3 (rows)
    assert out[0, 1, 6] == pytest.approx(1.0)
    assert float(out.sum()) == pytest.approx(1.0)


def test_half_pixel_shift_splits_between_neighbours() -> None:
    img = torch.zeros(1, 5, 5)
    img[0, 2, 2] = 1.0
    out = translate(img, torch.tensor([[0.5, 0.0]]))
    assert out[0, 2, 2] == pytest.approx(0.5) and out[0, 2, 3] == pytest.approx(0.5)


def test_leading_dims_and_broadcast() -> None:
    img = torch.randn(2, 3, 6, 6, dtype=torch.complex64)
    offs = torch.randn(2, 3, 2)
    out = translate(img, offs)
    flat = translate(img.reshape(6, 6, 6), offs.reshape(6, 2))
    torch.testing.assert_close(out.reshape(6, 6, 6), flat)
    one = translate(img, torch.tensor([1.5, -0.25]))  # one offset broadcast to all images
    torch.testing.assert_close(one[1, 2], translate(img[1, 2], torch.tensor([1.5, -0.25])))


def test_gradients_flow_to_images_and_offsets() -> None:
    img = torch.randn(2, 8, 8, dtype=torch.complex128, requires_grad=True)
    offs = torch.tensor([[0.3, 0.6], [-1.2, 2.1]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda i, o: torch.view_as_real(translate(i, o)), (img, offs), eps=1e-6, atol=1e-5
    )


def test_zero_offset_is_identity() -> None:
    img = torch.randn(3, 7, 5, dtype=torch.complex64)
    torch.testing.assert_close(translate(img, torch.zeros(3, 2)), img, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "shape, offs_shape, match",
    [
        ((4,), (1, 2), "at least 2"),
        ((2, 4, 4), (2, 3), r"\(\.\.\., 2\)"),
        ((2, 4, 4), (3, 2), "broadcast"),
    ],
)
def test_bad_shapes_raise(shape: tuple[int, ...], offs_shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        translate(torch.zeros(shape), torch.zeros(offs_shape))


def test_integer_offsets_rejected() -> None:
    with pytest.raises(ValueError, match="floating"):
        translate(torch.zeros(1, 4, 4), torch.zeros(1, 2, dtype=torch.int64))


def test_float32_accuracy_at_model_canvas_size() -> None:
    """float32 coordinate rounding grows with the image size: still < 1e-4 at P=138 (N=128)."""
    gen = torch.Generator().manual_seed(3)
    img = torch.randn(3, 138, 138, dtype=torch.complex64, generator=gen)
    offs = torch.tensor([[3.3, -7.71], [-20.25, 11.5], [60.6, -0.4]])
    out = translate(img, offs)
    for b in range(3):
        ref = _scipy_translate(img[b].numpy().astype(np.complex128), float(offs[b, 0]),
                               float(offs[b, 1]))
        np.testing.assert_allclose(out[b].numpy(), ref, atol=1e-4, rtol=0)
