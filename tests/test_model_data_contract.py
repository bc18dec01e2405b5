"""The model's extraction agrees with the data layer's grouping convention (gridsize 2).

The grouped dict's ``coords_start_relative = mean - r`` (channels-last ``(B, 1, 2, C)``) is what
the engine feeds the model as ``positions (B, C, 2)``. A canvas of the true object centred at a
group's mean position, passed through ``model.extract_patches`` with those positions, must show
each member's own object patch, and the far field of ``probe * patch`` must be the member's
diffraction pattern. The sign-flipped convention must not.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.data import RawData
from ptychodus_pinn_torch.data import extract_patches as data_patches
from ptychodus_pinn_torch.model import extract_patches, padded_size
from ptychodus_pinn_torch.physics import pad_and_diffract

N = 64


def smooth_object(size: int, seed: int) -> np.ndarray:
    """Smooth complex object ``(size, size)`` complex128: a sum of broad Gaussian blobs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    amp = np.full((size, size), 0.5)
    phase = np.zeros((size, size))
    for _ in range(25):
        cx, cy = rng.uniform(0, size, 2)
        w = rng.uniform(4, 9)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * w**2))
        amp += rng.uniform(0.2, 0.6) * blob
        phase += rng.uniform(-1.0, 1.0) * blob
    return amp * np.exp(1j * phase)


@pytest.fixture(scope="module")
def scan() -> tuple[np.ndarray, np.ndarray, dict]:
    obj = smooth_object(160, seed=4)
    yy, xx = np.mgrid[0:N, 0:N] - N / 2
    probe = np.exp(-(xx**2 + yy**2) / (2 * 9.0**2)).astype(np.complex64)
    grid = np.arange(52, 109, 7.0)
    xs, ys = (a.ravel() for a in np.meshgrid(grid, grid))
    rng = np.random.default_rng(5)
    xs = xs + rng.uniform(-1.5, 1.5, xs.shape)
    ys = ys + rng.uniform(-1.5, 1.5, ys.shape)
    patches = data_patches(obj, np.stack([xs, ys], axis=1), N, dtype=np.complex128)
    diff = np.abs(np.fft.fftshift(np.fft.fft2(patches * probe), axes=(-2, -1))) / N
    raw = RawData(xs, ys, None, None, diff.astype(np.float32), probe, None, objectGuess=obj)
    grouped = raw.generate_grouped_data(N, K=4, nsamples=6, seed=3, gridsize=2)
    return obj, probe, grouped


def test_extraction_sign_matches_grouping(scan: tuple[np.ndarray, np.ndarray, dict]) -> None:
    obj, probe, grouped = scan
    p = padded_size(N, 2)
    means = grouped["coords_start_offsets"][:, 0, :, 0]  # (B, 2) [x, y] global
    rel = np.transpose(grouped["coords_start_relative"][:, 0], (0, 2, 1))  # (B, C, 2)
    members = np.transpose(grouped["coords_start_nn"][:, 0], (0, 2, 1))  # (B, C, 2) global
    assert np.abs(rel).max() > 2.0  # the sign matters in this scan
    canvas = torch.from_numpy(data_patches(obj, means, p))  # (B, P, P) centred at the means
    diffraction = np.transpose(grouped["diffraction"], (0, 3, 1, 2))  # (B, C, N, N)
    for sign, should_match in ((1.0, True), (-1.0, False)):
        positions = torch.from_numpy((sign * rel).astype(np.float32))
        got = extract_patches(canvas, positions, N).numpy()
        truth = data_patches(obj, members.reshape(-1, 2), N).reshape(got.shape)
        q = N // 4  # the canvas edge (zero fill) can enter the patch border: compare centres
        centre = (..., slice(q, 3 * q), slice(q, 3 * q))
        patch_err = np.abs(got[centre] - truth[centre]).max() / np.abs(truth).max()
        amp = pad_and_diffract(torch.from_numpy(got) * torch.from_numpy(probe)).numpy()
        diff_err = np.abs(amp - diffraction).max() / diffraction.max()
        if should_match:
            # two bilinear resamplings of a smooth object versus one
            assert patch_err < 0.01 and diff_err < 0.005, (patch_err, diff_err)
        else:
            assert patch_err > 0.2 and diff_err > 0.1, (patch_err, diff_err)
