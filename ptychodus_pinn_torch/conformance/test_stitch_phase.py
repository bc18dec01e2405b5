"""STITCH-008: phase synchronization of overlapping patches (specs/STITCH.md)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from ptychodus_pinn_torch.conformance.helpers import synchronization_problem
from ptychodus_pinn_torch.data.patches import extract_patches
from ptychodus_pinn_torch.stitch import pairwise_overlaps, synchronize_phases

N = 32


def _object(seed: int = 0, size: int = 112) -> np.ndarray:
    rs = np.random.RandomState(seed)
    amp = 0.5 + 0.5 * gaussian_filter(rs.rand(size, size), 3)
    amp = (amp - amp.min()) / (amp.max() - amp.min()) * 0.5 + 0.5
    phase = gaussian_filter(rs.standard_normal((size, size)), 4)
    phase = phase / np.abs(phase).max() * 1.5
    return (amp * np.exp(1j * phase)).astype(np.complex128)


def _weights() -> np.ndarray:
    r = np.hypot(*np.mgrid[:N, :N] - N // 2)
    return np.exp(-0.5 * (r / 5.0) ** 2).astype(np.float32)


def _scan(subpixel: bool, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    g = np.arange(30.0, 83.0, 5.0)
    y, x = np.meshgrid(g, g, indexing="ij")
    x, y = x.ravel(), y.ravel()
    if subpixel:
        rs = np.random.RandomState(seed)
        x = x + rs.uniform(-0.5, 0.5, x.size)
        y = y + rs.uniform(-0.5, 0.5, y.size)
    return x, y


def _residual_offsets(synced: np.ndarray, truth: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-patch phase of synced relative to truth, minus their circular mean (radians)."""
    c = np.angle(np.sum(w * synced * np.conj(truth), axis=(1, 2)))
    return np.angle(np.exp(1j * (c - np.angle(np.mean(np.exp(1j * c))))))


@pytest.mark.spec("STITCH-008")
@pytest.mark.parametrize("subpixel", [False, True])
def test_random_offsets_become_one_common_constant(subpixel: bool) -> None:
    obj = _object()
    x, y = _scan(subpixel)
    truth = extract_patches(obj, np.stack([x, y], 1), N, dtype=np.complex128)
    offsets = np.random.RandomState(7).uniform(-np.pi, np.pi, len(x))
    scrambled = (truth * np.exp(1j * offsets)[:, None, None]).astype(np.complex64)
    w = _weights()
    before = _residual_offsets(scrambled, truth, w)
    synced = synchronize_phases(scrambled, x, y, w)
    after = _residual_offsets(synced, truth, w)
    assert synced.shape == scrambled.shape and synced.dtype == np.complex64
    assert np.max(np.abs(before)) > 1.0  # the test starts from real disagreement
    # sub-pixel: resampling patch j into patch i's frame is bilinear, which is inexact
    assert np.max(np.abs(after)) < (5e-3 if subpixel else 1e-3)
    # magnitudes are untouched: only a constant phase per patch changes
    np.testing.assert_allclose(np.abs(synced), np.abs(scrambled), rtol=1e-5, atol=1e-6)


@pytest.mark.spec("STITCH-008")
def test_common_phase_is_kept() -> None:
    obj = _object(3)
    x, y = _scan(False)
    truth = extract_patches(obj, np.stack([x, y], 1), N).astype(np.complex64)
    offsets = np.random.RandomState(2).uniform(-0.4, 0.4, len(x))
    scrambled = (truth * np.exp(1j * offsets)[:, None, None]).astype(np.complex64)
    w = _weights()
    synced = synchronize_phases(scrambled, x, y, w)
    correction = np.angle(np.sum(w * synced * np.conj(scrambled), axis=(1, 2)))
    i, j, h = pairwise_overlaps(scrambled, x, y, w)
    degree = np.zeros(len(x))
    np.add.at(degree, i, np.abs(h))
    np.add.at(degree, j, np.abs(h))
    assert abs(np.angle(np.sum(degree * np.exp(1j * correction)))) < 1e-6


@pytest.mark.spec("STITCH-008")
def test_patches_without_overlap_are_unchanged() -> None:
    rs = np.random.RandomState(0)
    patches = (rs.standard_normal((4, N, N)) + 1j * rs.standard_normal((4, N, N))).astype(
        np.complex64
    )
    x = np.array([0.0, 100.0, 200.0, 300.0])
    y = np.zeros(4)
    out = synchronize_phases(patches, x, y, _weights())
    np.testing.assert_array_equal(out, patches)


@pytest.mark.spec("STITCH-008")
def test_pairwise_overlaps_match_numpy_for_integer_shifts() -> None:
    rs = np.random.RandomState(4)
    patches = (rs.standard_normal((5, N, N)) + 1j * rs.standard_normal((5, N, N))).astype(
        np.complex64
    )
    x = np.array([40.0, 43.0, 38.0, 45.0, 41.0])
    y = np.array([40.0, 39.0, 44.0, 46.0, 35.0])
    w = _weights()
    i, j, h = pairwise_overlaps(patches, x, y, w, neighbors=4)
    assert len(h) == 10  # every pair of 5 patches once

    def shifted(a: np.ndarray, dx: int, dy: int) -> np.ndarray:
        """content moved by (+dx, +dy), zero fill"""
        out = np.zeros_like(a)
        src = a[max(0, -dy) : N - max(0, dy), max(0, -dx) : N - max(0, dx)]
        out[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
        return out

    for a, b, value in zip(i, j, h, strict=True):
        dx, dy = int(x[b] - x[a]), int(y[b] - y[a])
        expected = np.sum(
            w * shifted(w, dx, dy) * patches[a].astype(np.complex128)
            * np.conj(shifted(patches[b], dx, dy))
        )
        assert abs(value - expected) <= 1e-4 * abs(expected) + 1e-3


@pytest.mark.spec("STITCH-250")
def test_patches_on_disk_give_the_in_memory_phases_and_object(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import torch

    from ptychodus_pinn_torch.stitch import (
        SpilledPatches,
        phase_offsets,
        stitch_spilled_to_object_grid,
        stitch_to_object_grid,
    )

    x, y = _scan(True)
    truth = extract_patches(_object(5), np.stack([x, y], 1), N).astype(np.complex64)
    offsets = np.random.RandomState(9).uniform(-np.pi, np.pi, len(x))
    scrambled = (truth * np.exp(1j * offsets)[:, None, None]).astype(np.complex64)
    w = _weights()
    with SpilledPatches(scrambled.shape, tmp_path) as store:
        for lo in range(0, len(x), 10):
            store.append(scrambled[lo : lo + 10])
        i0, j0, h0 = pairwise_overlaps(scrambled, x, y, w)
        i1, j1, h1 = pairwise_overlaps(store, x, y, w, chunk_size=50)
        np.testing.assert_array_equal(np.stack([i1, j1]), np.stack([i0, j0]))
        np.testing.assert_allclose(h1, h0, rtol=1e-6, atol=1e-6 * np.abs(h0).max())
        phase = phase_offsets(store, x, y, w)
        np.testing.assert_allclose(phase, phase_offsets(scrambled, x, y, w), rtol=0, atol=1e-9)
        synced = synchronize_phases(torch.from_numpy(scrambled), x, y, w)
        ram = stitch_to_object_grid(synced, x, y, (112, 112), crop=16, weights=w)
        disk = stitch_spilled_to_object_grid(store, x, y, (112, 112), crop=16, weights=w,
                                             phase=phase)
        peak = float(ram[0].abs().max())
        np.testing.assert_allclose(disk[0].numpy(), ram[0].numpy(), rtol=0, atol=1e-6 * peak)
        np.testing.assert_array_equal(disk[1].numpy(), ram[1].numpy())
    assert store.closed and not any(tmp_path.iterdir())  # the file is gone


def _rms_from_truth(v: np.ndarray, theta: np.ndarray) -> float:
    d = np.angle(v) - theta
    d = np.angle(np.exp(1j * (d - np.angle(np.mean(np.exp(1j * d))))))
    return float(np.sqrt(np.mean(d**2)))


@pytest.mark.spec("STITCH-251")
def test_blocks_give_the_direct_solution() -> None:
    from ptychodus_pinn_torch.stitch import synchronizing_vector

    exact, pos, theta = synchronization_problem(60, 0.0)  # 3,600 patches in tiles of ~400
    v = synchronizing_vector(exact, pos, direct_limit=500, block_size=400)
    assert _rms_from_truth(v, theta) < 1e-6
    noisy, pos, theta = synchronization_problem(60, 0.05, seed=1)
    blocks = synchronizing_vector(noisy, pos, direct_limit=500, block_size=400)
    direct = synchronizing_vector(noisy, pos, direct_limit=10**9)
    e_blocks, e_direct = _rms_from_truth(blocks, theta), _rms_from_truth(direct, theta)
    assert e_direct > 0.01  # the noise is felt
    assert e_blocks <= 1.05 * e_direct + 1e-3, (e_blocks, e_direct)
    d = blocks * np.conj(direct)
    d = np.angle(d * np.exp(-1j * np.angle(d.sum())))
    assert np.sqrt(np.mean(d**2)) < 0.02
    # two pieces of a scan that never overlap: each is synchronized within itself
    split, pos, theta = synchronization_problem(60, 0.0, seed=2, gap=True)
    v = synchronizing_vector(split, pos, direct_limit=500, block_size=400)
    left = pos[:, 0] < 1000.0
    assert 0 < left.sum() < len(pos)
    assert _rms_from_truth(v[left], theta[left]) < 1e-6
    assert _rms_from_truth(v[~left], theta[~left]) < 1e-6


@pytest.mark.spec("STITCH-251")
def test_patches_synchronized_by_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    import ptychodus_pinn_torch.stitch.phase_sync as phase_sync

    obj = _object()
    x, y = _scan(True)
    truth = extract_patches(obj, np.stack([x, y], 1), N, dtype=np.complex128)
    offsets = np.random.RandomState(7).uniform(-np.pi, np.pi, len(x))
    scrambled = (truth * np.exp(1j * offsets)[:, None, None]).astype(np.complex64)
    w = _weights()
    direct = synchronize_phases(scrambled, x, y, w)
    monkeypatch.setattr(phase_sync, "DIRECT_LIMIT", 20)
    monkeypatch.setattr(phase_sync, "BLOCK_SIZE", 30)  # 121 patches in 4 tiles
    blocks = synchronize_phases(scrambled, x, y, w)
    after = _residual_offsets(blocks, truth, w)
    assert np.max(np.abs(after)) < 5e-3  # STITCH-008's sub-pixel bound
    np.testing.assert_allclose(np.abs(blocks), np.abs(direct), rtol=1e-5, atol=1e-6)
