"""Conformance tests of specs/DATA.md: the NPZ contract, grouping, normalization, simulation.

Numbers are checked against independent numpy/scipy computations written here (upstream's
grouping procedure on numpy's *global* legacy RNG, a plain-numpy bilinear sampler, scipy FFTs),
with explicit tolerances. Sizes are small so that every test runs in well under a second or two.
"""

from __future__ import annotations

import json
import logging
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.fft
from scipy import ndimage
from scipy.spatial import cKDTree

from ptychodus_pinn_torch.data import (
    GROUPED_KEYS,
    DataError,
    RawData,
    dataset_intensity_scale,
    extract_patches,
    group_indices,
    intensity_scale,
    normalize_data,
)
from ptychodus_pinn_torch.data.fixtures import FIXTURE_FILES, write_fixtures
from ptychodus_pinn_torch.data.npz_io import write_npz
from ptychodus_pinn_torch.data.simulate import (
    diffract,
    make_object,
    make_probe,
    probe_diameter,
    scan_positions,
    simulate_scan,
)

# ----------------------------------------------------------------------------- helpers


def small_raw(M: int = 40, N: int = 16, seed: int = 0, with_object: bool = True) -> RawData:
    """A random valid scan: positions inside a 48x48 object, positive amplitudes."""
    rs = np.random.RandomState(seed)
    x = rs.uniform(N // 2, 48 - N // 2 - 1, M)
    y = rs.uniform(N // 2, 48 - N // 2 - 1, M)
    diff = rs.uniform(0.1, 3.0, (M, N, N)).astype(np.float32)
    probe = (rs.standard_normal((N, N)) + 1j * rs.standard_normal((N, N))).astype(np.complex64)
    obj = None
    if with_object:
        obj = (rs.uniform(0.5, 1, (48, 48)) * np.exp(1j * rs.uniform(-1, 1, (48, 48))))
    return RawData(x, y, x + 0.25, y - 0.5, diff, probe, None, obj)


def contract_arrays(M: int = 6, N: int = 8) -> dict[str, np.ndarray]:
    rs = np.random.RandomState(1)
    return {
        "xcoords": rs.uniform(10, 20, M),
        "ycoords": rs.uniform(10, 20, M),
        "diff3d": rs.uniform(0.1, 2.0, (M, N, N)).astype(np.float32),
        "probeGuess": np.ones((N, N), np.complex64),
    }


def upstream_groups_global_rng(
    x: np.ndarray, y: np.ndarray, C: int, K: int, nsamples: int, seed: int | None,
    sequential: bool = False,
) -> np.ndarray:
    """Upstream's documented procedure (reference §2.3) on numpy's GLOBAL legacy RNG."""
    n_points = len(x)
    if seed is not None and not sequential:
        np.random.seed(seed)
    if sequential:
        seeds = np.arange(min(nsamples, n_points))
        np.random.seed(0)
    else:
        n = min(nsamples, n_points)
        seeds = np.random.choice(np.arange(n_points), n, replace=False) if n < n_points else (
            np.arange(n_points))
    if C == 1:
        return seeds.reshape(-1, 1)
    points = np.column_stack([x, y])
    _, idx = cKDTree(points).query(points[seeds], k=min(K + 1, n_points))
    groups = []
    for i, seed_index in enumerate(seeds):
        nbrs = idx[i]
        neighbors = nbrs[1 : K + 1] if len(nbrs) > K else nbrs[:K]
        available = neighbors if len(neighbors) >= C else np.concatenate([[seed_index],
                                                                          neighbors])
        groups.append(np.random.choice(available, C, replace=len(available) < C))
    return np.array(groups)


@pytest.fixture()
def global_rng_guard():
    """Restore numpy's global RNG after a test that uses it for the reference computation."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


def bilinear_numpy(obj: np.ndarray, row: float, col: float) -> complex:
    """Independent bilinear sample with zero fill per corner."""
    r0, c0 = math.floor(row), math.floor(col)
    fr, fc = row - r0, col - c0
    total = 0j
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            r, c = r0 + dr, c0 + dc
            if 0 <= r < obj.shape[0] and 0 <= c < obj.shape[1]:
                total += wr * wc * obj[r, c]
    return total


# ----------------------------------------------------------------------------- contract


@pytest.mark.spec("DATA-001")
def test_rawdata_attributes_dtypes_and_defaults() -> None:
    M, N = 5, 8
    x = np.arange(M, dtype=np.int32) + 10
    diff = np.full((M, N, N), 0.5, dtype=np.float64)
    raw = RawData(x, x, None, None, diff, np.ones((N, N), np.complex128), None,
                  np.ones((20, 20)))
    assert raw.xcoords.dtype == np.float64 and raw.xcoords.shape == (M,)
    assert raw.xcoords_start.dtype == np.float64
    np.testing.assert_array_equal(raw.xcoords_start, raw.xcoords)
    assert raw.diff3d.dtype == np.float32 and raw.diff3d.shape == (M, N, N)
    assert raw.probeGuess.dtype == np.complex64 and raw.probeGuess.shape == (N, N)
    assert raw.scan_index.dtype == np.int64 and not raw.scan_index.any()
    assert raw.objectGuess is not None and raw.objectGuess.dtype == np.complex64
    assert raw.Y is None and raw.metadata == {}
    assert raw.N == N and raw.n_positions == M
    raw2 = RawData.from_coords_without_pc(x + 0.5, x, diff, np.ones((N, N)), np.arange(M))
    np.testing.assert_array_equal(raw2.xcoords_start, x + 0.5)
    np.testing.assert_array_equal(raw2.ycoords_start, x)
    sub = raw2.subset([1, 3])
    assert sub.n_positions == 2
    np.testing.assert_array_equal(sub.xcoords, x[[1, 3]] + 0.5)
    np.testing.assert_array_equal(sub.scan_index, [1, 3])


@pytest.mark.spec("DATA-002")
def test_loading_never_unpickles(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        RawData.from_file(tmp_path / "absent.npz")
    text = tmp_path / "notes.npz"
    text.write_text("this is not an npz")
    with pytest.raises(DataError, match="not an NPZ"):
        RawData.from_file(text)
    bare = tmp_path / "bare.npz"
    np.save(bare.with_suffix(".npy"), np.zeros(3))
    bare.with_suffix(".npy").rename(bare)
    with pytest.raises(DataError, match="not an NPZ"):
        RawData.from_file(bare)
    arrays = contract_arrays()
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **arrays, objectGuess=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(DataError, match="objectGuess.*pickled"):
        RawData.from_file(pickled)
    source = "".join(
        p.read_text() for p in Path(__file__).resolve().parents[1].joinpath("data").glob("*.py")
    )
    assert "allow_pickle=True" not in source and "import pickle" not in source


@pytest.mark.spec("DATA-003")
@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"diff3d": None}, "missing required key.*diff3d"),
        ({"probeGuess": None}, "missing required key.*probeGuess"),
        ({"diff3d": np.ones((6, 8), np.float32)}, "diff3d must be 3-D"),
        ({"diff3d": np.ones((6, 8, 9), np.float32)}, "diff3d patterns must be square"),
        ({"ycoords": np.ones(5)}, "Coordinate arrays must have matching shapes"),
        ({"xcoords_start": np.ones(7), "ycoords_start": np.ones(7)},
         "Coordinate arrays must have matching shapes"),
        ({"xcoords": np.ones(5), "ycoords": np.ones(5)}, "5 positions but diff3d has 6"),
        ({"xcoords": np.ones((6, 1))}, "xcoords must be 1-D"),
        ({"xcoords": np.array([1, 2, np.nan, 4, 5, 6.0])}, "xcoords has 1 non-finite"),
        ({"diff3d": np.where(np.eye(8)[None] > 0, np.inf, 1.0).repeat(6, 0)},
         "diff3d has .* non-finite"),
        ({"diff3d": -np.ones((6, 8, 8), np.float32)}, "diff3d has negative values"),
        ({"diff3d": np.concatenate([np.zeros((1, 8, 8)), np.full((5, 8, 8), 0.3)])},
         r"all-zero patterns \(indices \[0\]\)"),
        ({"probeGuess": np.ones((8, 7), np.complex64)}, "probeGuess must be 2-D N x N"),
        ({"probeGuess": np.ones((16, 16), np.complex64)}, "probeGuess must be 2-D N x N"),
        ({"probeGuess": np.zeros((8, 8), np.complex64)}, "probeGuess is all zeros"),
        ({"objectGuess": np.ones((2, 3, 4))}, "objectGuess must be 2-D"),
        ({"scan_index": np.zeros(3, np.int64)}, "scan_index must be 1-D"),
        ({"_metadata": np.array("{not json")}, "_metadata' is not valid JSON"),
        ({"diffraction": np.ones((6, 8, 8)), "diff3d": None}, "rename it to 'diff3d'"),
    ],
)
def test_malformed_contracts_raise_one_clear_error(
    tmp_path: Path, change: dict[str, np.ndarray | None], pattern: str
) -> None:
    arrays: dict[str, np.ndarray] = contract_arrays()
    for key, value in change.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=pattern):
        RawData.from_file(path)


@pytest.mark.spec("DATA-004")
def test_amplitude_intensity_policy(caplog: pytest.LogCaptureFixture) -> None:
    rs = np.random.RandomState(2)
    counts = rs.poisson(20.0, (4, 8, 8)) + 1
    probe = np.ones((8, 8))
    x = np.arange(4.0)
    for data in (counts.astype(np.uint16), counts.astype(np.int64), counts.astype(np.float64)):
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            raw = RawData(x, x, None, None, data, probe, None)
        np.testing.assert_allclose(raw.diff3d, np.sqrt(counts), rtol=1e-6)
        assert "looks like intensity" in caplog.text
    amplitude = np.sqrt(counts).astype(np.float32)
    raw = RawData(x, x, None, None, amplitude, probe, None)
    np.testing.assert_array_equal(raw.diff3d, amplitude)
    forced = RawData(x, x, None, None, counts.astype(np.float64), probe, None,
                     diffraction_kind="amplitude")
    np.testing.assert_array_equal(forced.diff3d, counts.astype(np.float32))
    forced = RawData(x, x, None, None, amplitude, probe, None, diffraction_kind="intensity")
    np.testing.assert_allclose(forced.diff3d, np.sqrt(amplitude), rtol=1e-6)
    with pytest.raises(DataError, match="diffraction kind"):
        RawData(x, x, None, None, amplitude, probe, None, diffraction_kind="counts")  # type: ignore[arg-type]


@pytest.mark.spec("DATA-005")
@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.float64])
def test_ptychodus_export_is_converted(
    tmp_path: Path, dtype: type, caplog: pytest.LogCaptureFixture
) -> None:
    rs = np.random.RandomState(3)
    M, N = 6, 8
    intensity = rs.poisson(50.0, (M, N, N)).astype(np.float64) + 1
    if dtype is np.float64:
        intensity[0, 0, 0] = -0.25  # biharmonic inpainting residue
    probe = (rs.standard_normal((2, N, N)) + 1j * rs.standard_normal((2, N, N)))
    bad = np.zeros((N, N), bool)
    bad[1, 2] = True
    x = rs.uniform(30, 40, M)
    path = tmp_path / "export.npz"
    np.savez(path, xcoords=x, ycoords=x + 1, xcoords_start=x, ycoords_start=x + 1,
             diff3d=intensity.astype(dtype), bad_pixels=bad, probeGuess=probe,
             objectGuess=np.ones((64, 64), np.complex128), scan_index=np.zeros(M, np.int64))
    with caplog.at_level(logging.WARNING):
        raw = RawData.from_file(path)
    expected = np.sqrt(np.clip(intensity.astype(dtype).astype(np.float64), 0, None))
    np.testing.assert_allclose(raw.diff3d, expected, rtol=1e-6)
    assert raw.diff3d.dtype == np.float32
    np.testing.assert_allclose(raw.probeGuess, probe[0].astype(np.complex64))
    assert raw.probeGuess.dtype == np.complex64 and raw.objectGuess is not None
    assert raw.objectGuess.dtype == np.complex64
    np.testing.assert_array_equal(raw.bad_pixels, bad)
    np.testing.assert_array_equal(raw.xcoords, x)
    assert "ptychodus' export layout" in caplog.text
    assert "dropping 1 incoherent probe modes" in caplog.text


@pytest.mark.spec("DATA-006")
def test_to_file_round_trip_and_reproducible_bytes(tmp_path: Path) -> None:
    raw = small_raw()
    raw.metadata["nphotons"] = 1e6
    raw.Y = np.ones((raw.n_positions, raw.N, raw.N), np.complex64)
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    raw.to_file(a)
    raw.to_file(b)
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    with np.load(a, allow_pickle=False) as npz:
        assert json.loads(str(npz["_metadata"])) == {"nphotons": 1e6}
    back = RawData.from_file(a)
    for key in ("xcoords", "ycoords", "xcoords_start", "ycoords_start", "diff3d", "probeGuess",
                "scan_index", "objectGuess", "Y"):
        np.testing.assert_array_equal(getattr(back, key), getattr(raw, key), err_msg=key)
        assert getattr(back, key).dtype == getattr(raw, key).dtype
    assert back.metadata == {"nphotons": 1e6}


# ----------------------------------------------------------------------------- grouping


@pytest.mark.spec("DATA-007")
@pytest.mark.parametrize(
    ("gridsize", "K", "nsamples", "seed"),
    [(2, 4, 30, 7), (2, 7, 60, 3), (3, 12, 25, 0), (1, 4, 17, 5), (1, 4, 500, 1),
     (2, 4, 60, 11)],
)
def test_grouping_reproduces_upstream_global_rng(
    global_rng_guard: None, gridsize: int, K: int, nsamples: int, seed: int
) -> None:
    rs = np.random.RandomState(100 + seed)
    x, y = rs.uniform(0, 100, 60), rs.uniform(0, 100, 60)
    ours = group_indices(x, y, gridsize=gridsize, K=K, nsamples=nsamples, seed=seed)
    ref = upstream_groups_global_rng(x, y, gridsize**2, K, nsamples, seed)
    np.testing.assert_array_equal(ours, ref)
    assert ours.dtype == (np.int64 if gridsize == 1 else np.int32)
    assert ours.shape == (min(nsamples, 60), gridsize**2)
    if gridsize > 1:
        seeds_ref = upstream_groups_global_rng(x, y, 1, K, nsamples, seed)[:, 0]
        assert not np.any(ours == seeds_ref[:, None]), "a seed point is in its own group"


@pytest.mark.spec("DATA-007")
def test_grouping_sequential_small_and_rng_consumption(global_rng_guard: None) -> None:
    rs = np.random.RandomState(9)
    x, y = rs.uniform(0, 50, 30), rs.uniform(0, 50, 30)
    ours = group_indices(x, y, gridsize=2, K=6, nsamples=12, seed=123, sequential_sampling=True)
    ref = upstream_groups_global_rng(x, y, 4, 6, 12, 123, sequential=True)
    np.testing.assert_array_equal(ours, ref)
    # tiny dataset: the query returns no more than K hits, so the self hit is kept
    x3, y3 = np.array([0.0, 1.0, 5.0, 9.0]), np.array([0.0, 2.0, 1.0, 3.0])
    ours = group_indices(x3, y3, gridsize=2, K=8, nsamples=4, seed=4)
    np.testing.assert_array_equal(ours, upstream_groups_global_rng(x3, y3, 4, 8, 4, 4))
    # bulk draws consume the generator exactly like the loop of choice() calls
    from ptychodus_pinn_torch.data.grouping import bulk_choice_without_replacement

    available = rs.randint(0, 1000, (300, 7))
    gen_a, gen_b = np.random.RandomState(5), np.random.RandomState(5)
    bulk = bulk_choice_without_replacement(gen_a, available, 4)
    loop = np.stack([gen_b.choice(row, 4, replace=False) for row in available])
    np.testing.assert_array_equal(bulk, loop)
    assert gen_a.randint(0, 2**31) == gen_b.randint(0, 2**31)


@pytest.mark.spec("DATA-008")
def test_k_choose_c_oversampling() -> None:
    rs = np.random.RandomState(4)
    M = 40
    x, y = rs.uniform(0, 40, M), rs.uniform(0, 40, M)
    groups = group_indices(x, y, gridsize=2, K=6, nsamples=150, seed=2, enable_oversampling=True)
    again = group_indices(x, y, gridsize=2, K=6, nsamples=150, seed=2, enable_oversampling=True)
    np.testing.assert_array_equal(groups, again)
    assert groups.shape == (150, 4)
    points = np.column_stack([x, y])
    _, idx = cKDTree(points).query(points, k=7)
    pools = [set(row[1:].tolist()) for row in idx]
    for g in groups:
        assert len(set(g.tolist())) == 4
        assert any(set(g.tolist()) <= pool for pool in pools)
    # independent re-statement of §2.4 for the same seed
    gen = np.random.RandomState(2)
    combos = math.comb(6, 4)
    n_seeds = min(2 * math.ceil(150 / combos), M)
    assert n_seeds < M  # the random-seed branch
    seeds = gen.choice(M, n_seeds, replace=False)
    pool: list[tuple[int, ...]] = []
    import itertools

    for s in seeds:
        for combo in itertools.combinations(idx[s, 1:].tolist(), 4):
            if len(pool) < 300:
                pool.append(combo)
    chosen = gen.choice(len(pool), 150, replace=len(pool) < 150)
    assert len(pool) == 300
    np.testing.assert_array_equal(groups, np.array(pool)[chosen])
    assert groups.dtype == np.int64
    # fewer than K+1 points: upstream still drops the first hit (the seed itself)
    tiny = group_indices(x[:5], y[:5], gridsize=2, K=6, nsamples=20, seed=3,
                         enable_oversampling=True)
    seeds5 = set(np.random.RandomState(3).choice(np.arange(5), 4, replace=False).tolist())
    for g in tiny:
        missing = set(range(5)) - set(g.tolist())
        assert len(missing) == 1 and missing <= seeds5
    wide = group_indices(x[:20], y[:20], gridsize=2, K=4, nsamples=100, seed=1,
                         enable_oversampling=True, neighbor_pool_size=8)
    assert wide.shape == (100, 4)


@pytest.mark.spec("DATA-009")
def test_grouping_errors() -> None:
    x = np.arange(3.0)
    with pytest.raises(DataError, match="Dataset has only 3 points but 4 coordinates"):
        group_indices(x, x, gridsize=2, K=4, nsamples=2)
    x = np.arange(10.0)
    with pytest.raises(DataError, match="K=3 must be >= C=4"):
        group_indices(x, x, gridsize=2, K=3, nsamples=2)
    with pytest.raises(DataError, match="oversampling is required but not enabled"):
        group_indices(x, x, gridsize=2, K=4, nsamples=50)
    with pytest.raises(DataError, match="neighbor_pool_size >= C"):
        group_indices(x, x, gridsize=2, K=4, nsamples=50, enable_oversampling=True,
                      neighbor_pool_size=3)
    for bad in ({"gridsize": 0}, {"K": 0}, {"nsamples": -1}, {"gridsize": 1.5}):
        with pytest.raises(DataError, match=next(iter(bad))):
            group_indices(x, x, **bad)  # type: ignore[arg-type]
    raw = small_raw(N=16)
    with pytest.raises(DataError, match="N=32 does not match"):
        raw.generate_grouped_data(32, nsamples=4)


@pytest.mark.spec("DATA-010")
@pytest.mark.parametrize("gridsize", [1, 2])
def test_grouped_dictionary(gridsize: int) -> None:
    raw = small_raw(M=40, N=16)
    d = raw.generate_grouped_data(16, K=5, nsamples=12, seed=3, gridsize=gridsize)
    assert tuple(d) == GROUPED_KEYS
    C = gridsize**2
    nn = d["nn_indices"]
    assert nn.shape == (12, C)
    np.testing.assert_array_equal(
        nn, group_indices(raw.xcoords, raw.ycoords, gridsize=gridsize, K=5, nsamples=12, seed=3))
    assert d["diffraction"].shape == (12, 16, 16, C) and d["diffraction"].dtype == np.float32
    for b in range(12):
        for c in range(C):
            np.testing.assert_array_equal(d["diffraction"][b, :, :, c], raw.diff3d[nn[b, c]])
    for prefix, xs, ys in (("coords", raw.xcoords, raw.ycoords),
                           ("coords_start", raw.xcoords_start, raw.ycoords_start)):
        cnn = d[f"{prefix}_nn"]
        assert cnn.shape == (12, 1, 2, C) and cnn.dtype == np.float64
        np.testing.assert_array_equal(cnn[:, 0, 0, :], xs[nn])
        np.testing.assert_array_equal(cnn[:, 0, 1, :], ys[nn])
        mean = np.stack([xs[nn].mean(axis=1), ys[nn].mean(axis=1)], axis=1)
        off = d[f"{prefix}_offsets"]
        assert off.shape == (12, 1, 2, 1)
        np.testing.assert_allclose(off[:, 0, :, 0], mean, rtol=0, atol=1e-12)
        rel = d[f"{prefix}_relative"]
        np.testing.assert_allclose(rel[:, 0], mean[:, :, None] - cnn[:, 0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(rel.sum(axis=3), 0.0, atol=1e-12)
    if gridsize == 1:
        assert not np.any(d["coords_relative"])
    assert d["X_full"].dtype == np.float32
    assert d["objectGuess"] is raw.objectGuess


@pytest.mark.spec("DATA-011")
def test_y_centring_upstream_and_physical() -> None:
    raw = small_raw(M=30, N=16)
    obj = raw.objectGuess
    assert obj is not None
    up = raw.generate_grouped_data(16, K=4, nsamples=5, seed=1, gridsize=2)
    phys = raw.generate_grouped_data(16, K=4, nsamples=5, seed=1, gridsize=2,
                                     y_centring="physical")
    assert isinstance(up["Y"], np.ndarray) and up["Y"].dtype == np.complex64
    assert up["Y"].shape == (5, 16, 16, 4)
    for b in range(5):
        for c in range(4):
            x, y = up["coords_nn"][b, 0, :, c]
            mx, my = up["coords_offsets"][b, 0, :, 0]
            for got, (cx, cy) in ((up, (2 * mx - x, 2 * my - y)), (phys, (x, y))):
                ref = bilinear_numpy(obj, cy, cx)  # centre pixel (8, 8)
                assert abs(got["Y"][b, 8, 8, c] - ref) < 1e-5
    gs1 = raw.generate_grouped_data(16, K=4, nsamples=5, seed=1, gridsize=1)
    gs1p = raw.generate_grouped_data(16, K=4, nsamples=5, seed=1, gridsize=1,
                                     y_centring="physical")
    np.testing.assert_array_equal(gs1["Y"], gs1p["Y"])
    raw.Y = np.arange(30 * 16 * 16).reshape(30, 16, 16).astype(np.complex64)
    d = raw.generate_grouped_data(16, K=4, nsamples=5, seed=1, gridsize=2)
    np.testing.assert_array_equal(d["Y"], np.transpose(raw.Y[d["nn_indices"]], (0, 2, 3, 1)))
    no_obj = small_raw(with_object=False)
    assert no_obj.generate_grouped_data(16, nsamples=3, seed=0)["Y"] is None
    with pytest.raises(DataError, match="y_centring"):
        raw.generate_grouped_data(16, nsamples=3, y_centring="middle")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- normalization


@pytest.mark.spec("DATA-012")
def test_normalize_data() -> None:
    rs = np.random.RandomState(6)
    x = rs.uniform(0, 5, (7, 16, 16, 4)).astype(np.float32)
    out = normalize_data(x, 16)
    assert out.dtype == np.float32 and out.shape == x.shape
    s = math.sqrt(64.0 / np.mean(np.sum(x.astype(np.float64) ** 2, axis=(1, 2))))
    np.testing.assert_allclose(out, x * s, rtol=1e-6)
    np.testing.assert_allclose(np.mean(np.sum(out.astype(np.float64) ** 2, axis=(1, 2))), 64.0,
                               rtol=1e-5)
    np.testing.assert_array_equal(normalize_data({"diffraction": x}, 16), out)
    big = np.full((3, 64, 64), 60000, dtype=np.uint16)
    np.testing.assert_allclose(normalize_data(big, 64), np.full(big.shape, 0.5), rtol=1e-6)
    with pytest.raises(DataError, match="all zeros"):
        normalize_data(np.zeros((2, 8, 8)), 8)


@pytest.mark.spec("DATA-013")
def test_extract_patches_matches_numpy_bilinear() -> None:
    rs = np.random.RandomState(7)
    obj = (rs.standard_normal((20, 24)) + 1j * rs.standard_normal((20, 24))).astype(np.complex64)
    centres = np.array([[10.0, 9.0], [3.3, 4.7], [22.6, 18.25], [-2.5, 1.5], [30.0, 30.0]])
    N = 8
    patches = extract_patches(obj, centres, N)
    assert patches.shape == (5, N, N) and patches.dtype == np.complex64
    for p, (cx, cy) in enumerate(centres):
        ref = np.array([[bilinear_numpy(obj, cy + i - N // 2, cx + j - N // 2)
                         for j in range(N)] for i in range(N)])
        np.testing.assert_allclose(patches[p], ref, atol=1e-5, rtol=0)
    assert patches[0, N // 2, N // 2] == obj[9, 10]
    assert not np.any(patches[4])
    # against scipy on many random centres, in and partly out of the object, both precisions
    many = np.column_stack([rs.uniform(-10, 34, 200), rs.uniform(-10, 30, 200)])
    off = np.arange(N) - N // 2
    ref = np.zeros((200, N, N), complex)
    for p, (cx, cy) in enumerate(many):
        grid = np.stack(np.meshgrid(cy + off, cx + off, indexing="ij"))
        for part, scale in ((obj.real, 1), (obj.imag, 1j)):
            ref[p] += scale * ndimage.map_coordinates(part.astype(np.float64), grid, order=1,
                                                      mode="grid-constant", cval=0.0)
    np.testing.assert_allclose(extract_patches(obj, many, N), ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(extract_patches(obj, many, N, np.complex128), ref, atol=1e-12,
                               rtol=0)


@pytest.mark.spec("DATA-014")
def test_intensity_scale() -> None:
    assert intensity_scale(1e6, 64) == pytest.approx(31.25, abs=1e-12)
    assert intensity_scale(1e9, 64) == pytest.approx(988.212, abs=1e-3)
    assert intensity_scale(1e9, 128) == pytest.approx(494.106, abs=1e-3)
    rs = np.random.RandomState(8)
    x = rs.uniform(0, 3, (5, 16, 16, 4))
    ref = math.sqrt(1e6 / np.mean(np.sum(x**2, axis=(1, 2))))
    assert dataset_intensity_scale(x, 1e6) == pytest.approx(ref, rel=1e-12)
    assert dataset_intensity_scale(normalize_data(x, 16), 1e6) == pytest.approx(
        intensity_scale(1e6, 16), rel=1e-5)
    for bad in ((0.0, 64), (-1.0, 64), (float("nan"), 64), (1e6, 0)):
        with pytest.raises(DataError):
            intensity_scale(*bad)


@pytest.mark.spec("DATA-015")
def test_no_global_rng_state() -> None:
    before = np.random.get_state()
    raw = small_raw(M=40, N=16)
    a = raw.generate_grouped_data(16, K=5, nsamples=20, seed=5, gridsize=2)
    b = raw.generate_grouped_data(16, K=5, nsamples=20, seed=5, gridsize=2)
    group_indices(raw.xcoords, raw.ycoords, gridsize=2, K=4, nsamples=100, seed=1,
                  enable_oversampling=True)
    s1 = simulate_scan("phantom", N=16, object_shape=(40, 40), overlap=0.3, nphotons=1e4, seed=3)
    s2 = simulate_scan("phantom", N=16, object_shape=(40, 40), overlap=0.3, nphotons=1e4, seed=3)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2] == after[2]
    np.testing.assert_array_equal(a["nn_indices"], b["nn_indices"])
    np.testing.assert_array_equal(s1.diff3d, s2.diff3d)


# ----------------------------------------------------------------------------- simulation


@pytest.mark.spec("DATA-016")
def test_simulation_forward_model() -> None:
    N = 16
    rs = np.random.RandomState(10)
    obj = (rs.uniform(0.5, 1, (40, 40)) * np.exp(1j * rs.uniform(-1, 1, (40, 40))))
    probe = make_probe("pinhole", N)
    x = np.array([8.0, 15.0, 30.0])
    y = np.array([8.0, 20.0, 31.0])
    clean = diffract(obj, probe, x, y, None, None)
    for m in range(3):
        r, c = int(y[m]), int(x[m])
        psi = probe.astype(np.complex128) * obj[r - N // 2 : r + N // 2, c - N // 2 : c + N // 2]
        ref = np.abs(scipy.fft.fftshift(scipy.fft.fft2(psi))) ** 2 / N**2
        np.testing.assert_allclose(clean[m], ref, rtol=1e-5, atol=1e-9)
        assert clean[m].sum() == pytest.approx(np.sum(np.abs(psi) ** 2), rel=1e-5)
    scaled = diffract(obj, probe, x, y, 5e4, None)
    assert scaled.sum(axis=(1, 2)).mean() == pytest.approx(5e4, rel=1e-9)
    raw = simulate_scan("phantom", N=N, object_shape=(48, 48), overlap=0.5, nphotons=1e4, seed=1)
    counts = raw.diff3d.astype(np.float64) ** 2
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)
    totals = counts.sum(axis=(1, 2))
    assert abs(totals.mean() - 1e4) < 5 * math.sqrt(1e4 / raw.n_positions) + 1e-9
    assert raw.metadata["nphotons"] == 1e4 and raw.metadata["seed"] == 1
    assert raw.objectGuess is not None and raw.objectGuess.shape == (48, 48)
    again = simulate_scan("phantom", N=N, object_shape=(48, 48), overlap=0.5, nphotons=1e4,
                          seed=1)
    np.testing.assert_array_equal(raw.diff3d, again.diff3d)


@pytest.mark.spec("DATA-017")
def test_simulated_objects_probes_scans() -> None:
    for kind in ("phantom", "camera"):
        obj = make_object(kind, (64, 80), seed=1)  # type: ignore[arg-type]
        assert obj.shape == (64, 80) and obj.dtype == np.complex64
        amp, phase = np.abs(obj), np.angle(obj)
        assert amp.min() >= 0.5 - 1e-6 and amp.max() <= 1.0 + 1e-6
        assert phase.min() >= -np.pi / 2 - 1e-6 and phase.max() <= np.pi / 2 + 1e-6
        assert amp.std() > 0.05 and phase.std() > 0.1
    N = 64
    for kind in ("pinhole", "defocus"):
        probe = make_probe(kind, N)  # type: ignore[arg-type]
        intensity = np.abs(probe) ** 2
        assert intensity[16:48, 16:48].sum() / intensity.sum() >= 0.9
    probe = make_probe("pinhole", N)
    step = probe_diameter(probe) * (1 - 0.6)
    for scan in ("raster", "spiral", "jitter"):
        x, y = scan_positions(scan, (150, 170), N, step, seed=2)  # type: ignore[arg-type]
        assert len(x) > 20
        assert x.min() >= N // 2 and x.max() <= 170 - N // 2 - 1
        assert y.min() >= N // 2 and y.max() <= 150 - N // 2 - 1
    x, _ = scan_positions("raster", (150, 170), N, step)
    np.testing.assert_allclose(np.diff(np.unique(x)), step, rtol=1e-9)
    radius = np.hypot(*np.mgrid[0:N, 0:N] - N // 2)
    intensity = np.abs(probe) ** 2
    inside = intensity[radius <= probe_diameter(probe) / 2].sum() / intensity.sum()
    assert inside == pytest.approx(1 - math.exp(-2), abs=0.03)


@pytest.mark.spec("DATA-018")
def test_fixtures_reproducible(tmp_path: Path) -> None:
    paths = write_fixtures(tmp_path)
    assert [p.name for p in paths] == list(FIXTURE_FILES)
    assert sum(p.stat().st_size for p in paths) < 10 * 2**20
    committed = Path(__file__).resolve().parents[2] / "fixtures"
    if all((committed / name).is_file() for name in FIXTURE_FILES):
        for p in paths:
            assert p.read_bytes() == (committed / p.name).read_bytes(), p.name
    else:  # installed package: check run-to-run identity instead
        again = write_fixtures(tmp_path / "again")
        for p, q in zip(paths, again, strict=True):
            assert p.read_bytes() == q.read_bytes(), p.name
    train, test = RawData.from_file(paths[0]), RawData.from_file(paths[1])
    assert train.N == test.N == 64 and train.n_positions == test.n_positions == 256
    assert train.objectGuess is not None and test.objectGuess is not None
    assert not np.allclose(train.objectGuess, test.objectGuess)
    for gs in (1, 2):
        d = train.generate_grouped_data(64, K=4, nsamples=8, seed=0, gridsize=gs)
        assert d["X_full"].shape == (8, 64, 64, gs * gs)
    export = RawData.from_file(paths[2])
    assert export.bad_pixels is not None and export.n_positions == 64


@pytest.mark.spec("DATA-019")
def test_cli_simulate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ptychodus_pinn_torch.cli.main import main

    out = tmp_path / "scan.npz"
    rc = main(["simulate", "--out", str(out), "--n", "32", "--object-size", "64",
               "--scan", "spiral", "--overlap", "0.5", "--nphotons", "1e5", "--seed", "4"])
    assert rc == 0
    raw = RawData.from_file(out)
    assert raw.N == 32 and raw.metadata["nphotons"] == 1e5 and raw.metadata["scan"] == "spiral"
    assert main(["simulate", "--out", str(out), "--overlap", "1.5"]) == 2
    assert "overlap" in capsys.readouterr().err
    assert main(["simulate", "--out", str(tmp_path / "scan.txt")]) == 2


def test_write_npz_refuses_object_arrays(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="dtype object"):
        write_npz(tmp_path / "x.npz", {"a": np.array([None], dtype=object)})
