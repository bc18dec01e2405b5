"""Conformance tests of specs/STITCH.md against independent scipy computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import map_coordinates

from ptychodus_pinn_torch.stitch import (
    reassemble_geometry,
    reassemble_position,
    stitch_to_object_grid,
)


def _mc(a: np.ndarray, coords: list[np.ndarray]) -> np.ndarray:
    """Bilinear sample with per-corner zero fill (complex: per part)."""
    def one(p: np.ndarray) -> np.ndarray:
        return map_coordinates(p, coords, order=1, mode="grid-constant", cval=0.0)

    return one(a.real) + 1j * one(a.imag) if np.iscomplexobj(a) else one(a)


def _ref_reassemble(obj: np.ndarray, off: np.ndarray, M: int) -> np.ndarray:
    """Upstream §4.4 written out literally: translate each padded crop over the full canvas."""
    n, N = obj.shape[0], obj.shape[1]
    xy = off.reshape(n, 2).astype(np.float64)
    adj = xy - xy.mean(axis=0)
    pad = int(np.ceil(np.abs(adj).max()))
    pad += pad % 2
    P = M + 2 * pad
    lo = N // 2 - M // 2
    yy, xx = np.meshgrid(np.arange(P), np.arange(P), indexing="ij")
    num = np.zeros((P, P), np.complex128)
    den = np.zeros((P, P))
    for k in range(n):
        coords = [yy - adj[k, 1], xx - adj[k, 0]]
        num += _mc(np.pad(obj[k, lo : lo + M, lo : lo + M, 0].astype(np.complex128), pad), coords)
        den += _mc(np.pad(np.ones((M, M)), pad), coords)
    return (num / (1e-9 + den))[..., None]


def _random_patches(n: int, N: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, N, N, 1)) + 1j * rng.normal(size=(n, N, N, 1))).astype(np.complex64)


@pytest.mark.spec("STITCH-001")
@pytest.mark.parametrize("M", [4, 10])
def test_reassemble_matches_scipy_reference(M: int) -> None:
    obj = _random_patches(9, 16, seed=1)
    off = np.random.default_rng(2).uniform(-7.3, 7.3, size=(9, 1, 2, 1)) + 40.0
    out = reassemble_position(obj, off, M=M)
    ref = _ref_reassemble(obj, off, M)
    assert out.dtype == np.complex64 and out.shape == ref.shape and out.ndim == 3
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)
    P, pad, com = reassemble_geometry(off, M=M)
    assert out.shape == (P, P, 1) and pad % 2 == 0 and P == M + 2 * pad
    np.testing.assert_allclose(com, off.reshape(9, 2).mean(axis=0), rtol=1e-15)


@pytest.mark.spec("STITCH-001")
def test_reassemble_upstream_examples() -> None:
    patch = _random_patches(1, 8, seed=3)
    same = np.repeat(patch, 3, axis=0)
    off = np.full((3, 1, 2, 1), 5.25)
    out = reassemble_position(same, off, M=4)
    np.testing.assert_allclose(out[:, :, 0], patch[0, 2:6, 2:6, 0], atol=1e-6)
    two = np.stack([np.ones((8, 8, 1)), 5 * np.ones((8, 8, 1))]).astype(np.complex64)
    out2 = reassemble_position(two, np.zeros((2, 1, 2, 1)), M=4)
    assert out2.shape == (4, 4, 1)
    np.testing.assert_allclose(out2, 3.0, atol=1e-6)


@pytest.mark.spec("STITCH-002")
def test_reassemble_offset_layouts_and_types() -> None:
    obj = _random_patches(6, 12, seed=4)
    xy = np.random.default_rng(5).uniform(0, 9, size=(6, 2))
    a = reassemble_position(obj, xy.reshape(6, 1, 2, 1), M=6)
    b = reassemble_position(obj, xy.reshape(6, 1, 1, 2), M=6)
    c = reassemble_position(obj, xy, M=6)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    f32 = reassemble_position(obj, xy.astype(np.float32).reshape(6, 1, 2, 1), M=6)
    ref32 = _ref_reassemble(obj, xy.astype(np.float32).astype(np.float64), 6)
    np.testing.assert_allclose(f32, ref32, atol=1e-5)
    t = reassemble_position(torch.as_tensor(obj), torch.as_tensor(xy.reshape(6, 1, 2, 1)), M=6)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.complex64
    assert t.device == torch.device("cpu")
    np.testing.assert_allclose(t.numpy(), a, atol=1e-7)


@pytest.mark.spec("STITCH-002")
def test_reassemble_errors() -> None:
    obj = _random_patches(3, 8, seed=6)
    off = np.zeros((3, 1, 2, 1))
    with pytest.raises(ValueError, match="M must be an even int"):
        reassemble_position(obj, off, M=5)
    with pytest.raises(ValueError, match="M must be an even int"):
        reassemble_position(obj, off, M=0)
    with pytest.raises(ValueError, match="larger than the patch size"):
        reassemble_position(obj, off, M=10)
    with pytest.raises(ValueError, match="obj_tensor"):
        reassemble_position(obj[..., 0], off, M=4)
    with pytest.raises(ValueError, match="global_offsets"):
        reassemble_position(obj, np.zeros((2, 1, 2, 1)), M=4)
    with pytest.raises(ValueError, match="finite"):
        reassemble_position(obj, np.full((3, 1, 2, 1), np.nan), M=4)
    with pytest.raises(ValueError, match="global_offsets"):
        reassemble_position(obj, np.zeros((3, 1, 2, 1), dtype=np.int64), M=4)


@pytest.mark.spec("STITCH-003")
def test_chunk_size_invariance() -> None:
    obj = _random_patches(11, 12, seed=7)
    off = np.random.default_rng(8).uniform(-20, 20, size=(11, 1, 2, 1))
    auto = reassemble_position(obj, off, M=8)
    for cs in (1, 3):
        np.testing.assert_allclose(reassemble_position(obj, off, M=8, chunk_size=cs), auto,
                                   atol=1e-6)
    x, y = off[:, 0, 0, 0] + 30, off[:, 0, 1, 0] + 30
    g_auto, c_auto = stitch_to_object_grid(obj[..., 0], x, y, (64, 64))
    g1, c1 = stitch_to_object_grid(obj[..., 0], x, y, (64, 64), chunk_size=1)
    np.testing.assert_allclose(g1, g_auto, atol=1e-6)
    np.testing.assert_allclose(c1, c_auto, atol=1e-6)


def _ref_object_grid(
    patches: np.ndarray, x: np.ndarray, y: np.ndarray, shape: tuple[int, int], w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Translate each weighted patch, placed at the grid corner, by +(x - N//2, y - N//2)."""
    H, W = shape
    N = patches.shape[-1]
    rows, cols = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    num = np.zeros(shape, np.complex128)
    cov = np.zeros(shape)
    for k in range(patches.shape[0]):
        coords = [rows - (y[k] - N // 2), cols - (x[k] - N // 2)]
        num += _mc((w * patches[k]).astype(np.complex128), coords)
        cov += _mc(w.astype(np.float64), coords)
    obj = np.where(cov > 0, num / np.where(cov > 0, cov, 1.0), 0)
    return obj, cov


@pytest.mark.spec("STITCH-004")
@pytest.mark.parametrize("weighted", [False, True])
def test_object_grid_matches_scipy(weighted: bool) -> None:
    rng = np.random.default_rng(9)
    n, N, shape = 8, 10, (30, 34)
    patches = _random_patches(n, N, seed=10)[..., 0]
    x = rng.uniform(-3, 36, size=n)  # some patches hang over the edges
    y = rng.uniform(-3, 32, size=n)
    w = rng.uniform(0.1, 1.0, size=(N, N)) if weighted else np.ones((N, N))
    obj, cov = stitch_to_object_grid(patches, x, y, shape, weights=w if weighted else "uniform")
    ref_obj, ref_cov = _ref_object_grid(patches, x, y, shape, w)
    assert obj.dtype == np.complex64 and cov.dtype == np.float32 and obj.shape == shape
    np.testing.assert_allclose(cov, ref_cov, atol=1e-5)
    solid = ref_cov > 1e-3  # where the reference ratio is well conditioned
    np.testing.assert_allclose(obj[solid], ref_obj[solid], atol=1e-5)
    assert np.all(obj[cov == 0] == 0)
    t_obj, t_cov = stitch_to_object_grid(torch.as_tensor(patches), torch.as_tensor(x),
                                         torch.as_tensor(y), shape)
    assert isinstance(t_obj, torch.Tensor) and t_obj.dtype == torch.complex64
    assert t_cov.dtype == torch.float32


@pytest.mark.spec("STITCH-004")
def test_object_grid_centre_and_crop() -> None:
    N = 8
    patch = np.zeros((1, N, N), np.complex64)
    patch[0, N // 2, N // 2] = 2 + 1j
    obj, cov = stitch_to_object_grid(patch, np.array([5.0]), np.array([4.0]), (10, 12))
    assert obj[4, 5] == pytest.approx(2 + 1j)
    assert cov.sum() == pytest.approx(N * N) and cov[4, 5] == 1.0
    assert cov[0:8, 1:9].sum() == pytest.approx(N * N)  # rows y-4..y+3, cols x-4..x+3
    _part, cov_part = stitch_to_object_grid(patch, np.array([5.0]), np.array([3.0]), (10, 12))
    assert cov_part.sum() == pytest.approx(N * (N - 1))  # row -1 falls off the grid
    obj_c, cov_c = stitch_to_object_grid(patch, np.array([5.0]), np.array([4.0]), (10, 12), crop=3)
    assert cov_c.sum() == pytest.approx(9) and obj_c[4, 5] == pytest.approx(2 + 1j)
    assert cov_c[3:6, 4:7].sum() == pytest.approx(9)  # rows/cols N//2 - 1 .. N//2 + 1


def _extract(obj: np.ndarray, x: np.ndarray, y: np.ndarray, N: int) -> np.ndarray:
    """Patches of obj with centre (N//2, N//2) at (row=y, col=x), bilinear."""
    ii, jj = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
    return np.stack([
        _mc(obj, [y[k] - N // 2 + ii, x[k] - N // 2 + jj]) for k in range(len(x))
    ]).astype(np.complex64)


@pytest.mark.spec("STITCH-005")
def test_round_trip_integer_positions() -> None:
    rng = np.random.default_rng(11)
    H, W, N = 40, 44, 12
    obj = (rng.normal(size=(H, W)) + 1j * rng.normal(size=(H, W))).astype(np.complex64)
    x = rng.integers(6, W - 6, size=25).astype(np.float64)
    y = rng.integers(6, H - 6, size=25).astype(np.float64)
    out, cov = stitch_to_object_grid(_extract(obj, x, y, N), x, y, (H, W))
    covered = cov > 0
    assert covered.sum() > 0.5 * H * W
    np.testing.assert_allclose(out[covered], obj[covered], atol=1e-6)


@pytest.mark.spec("STITCH-005")
def test_round_trip_subpixel_affine_object() -> None:
    rng = np.random.default_rng(12)
    H, W, N = 40, 44, 12
    rr, cc = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    obj = (0.3 + 0.02 * rr - 0.015 * cc + 1j * (0.5 - 0.01 * rr + 0.03 * cc)).astype(np.complex64)
    n = 30
    x = rng.uniform(7, W - 7, size=n)
    y = rng.uniform(7, H - 7, size=n)
    out, cov = stitch_to_object_grid(_extract(obj, x, y, N), x, y, (H, W))
    # pixel q is interior to patch k iff it receives both bilinear taps on each axis
    interior = np.zeros((H, W), bool)
    touched_edge = np.zeros((H, W), bool)
    for k in range(n):
        r0, c0 = int(np.floor(y[k] - N // 2)), int(np.floor(x[k] - N // 2))
        touch = np.zeros((H, W), bool)
        touch[max(r0, 0) : r0 + N + 1, max(c0, 0) : c0 + N + 1] = True
        inner = np.zeros((H, W), bool)
        inner[r0 + 1 : r0 + N, c0 + 1 : c0 + N] = True
        interior |= inner
        touched_edge |= touch & ~inner
    check = interior & ~touched_edge
    assert check.sum() > 100
    np.testing.assert_allclose(out[check], obj[check], atol=1e-4)


@pytest.mark.spec("STITCH-006")
def test_object_grid_errors() -> None:
    p = np.zeros((2, 8, 8), np.complex64)
    x = y = np.zeros(2)
    with pytest.raises(ValueError, match="patches"):
        stitch_to_object_grid(np.zeros((2, 8, 7), np.complex64), x, y, (10, 10))
    with pytest.raises(ValueError, match="x: expected"):
        stitch_to_object_grid(p, np.zeros(3), y, (10, 10))
    with pytest.raises(ValueError, match="y: positions must be finite"):
        stitch_to_object_grid(p, x, np.array([0.0, np.inf]), (10, 10))
    with pytest.raises(ValueError, match="object_shape"):
        stitch_to_object_grid(p, x, y, (10, 0))
    with pytest.raises(ValueError, match="crop"):
        stitch_to_object_grid(p, x, y, (10, 10), crop=9)
    with pytest.raises(ValueError, match="weights"):
        stitch_to_object_grid(p, x, y, (10, 10), weights=np.ones((7, 7)))
    with pytest.raises(ValueError, match="weights"):
        stitch_to_object_grid(p, x, y, (10, 10), weights=-np.ones((8, 8)))
    with pytest.raises(ValueError, match="weights"):
        stitch_to_object_grid(p, x, y, (10, 10), weights="gaussian")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk_size"):
        stitch_to_object_grid(p, x, y, (10, 10), chunk_size=0)
