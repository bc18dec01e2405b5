"""Loading a plain NPZ scan holds about one copy of the patterns (DATA-240), with numbers.

Each variant is written here (``diff3d`` stored or deflated; float32 or float64 amplitudes,
uint16 counts), then ``RawData.from_file`` runs in a fresh process with
``paging.CHUNK_BYTES`` = 4 MiB so that the 31 MB test arrays span eight chunks; the peak resident
set above the process's resident set before the call, less the float32 result, is what the
load held besides its result. Before DATA-240 it was 0.9-2.5 times the result (whole-array
``floor``/``isfinite`` temporaries and an ``astype`` copy); the bounds below leave room for
allocator noise only. Values must equal numpy's own ``np.load`` of the member exactly.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ptychodus_pinn_torch.conformance.helpers import load_peak
from ptychodus_pinn_torch.data import DataError, RawData
from ptychodus_pinn_torch.data.npz_io import (
    decode_deflated_float32,
    map_stored_member,
    read_npz,
)
from ptychodus_pinn_torch.data.paging import is_mapped

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="peak RSS read from /proc/self/status")

M, N = 2000, 64
CHUNK = 4 << 20
MARGIN = 12 << 20  # interpreter and allocator noise (measured 2.4-7.4 MB over the bound's term)


def _counts() -> np.ndarray:
    counts = np.random.RandomState(0).poisson(20.0, (M, N, N)).astype(np.uint16)
    counts[:, 0, 0] += 1  # no all-zero pattern
    return counts


def _write(path: Path, diff3d: np.ndarray, deflate: bool, labels: bool = False) -> Path:
    """An NPZ scan led by a 1-byte member, so the members after it start at odd offsets
    (``labels``: with a complex64 ``Y`` of the patterns' shape)."""
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    x = np.arange(M, dtype=np.float64)
    members = {"odd": np.zeros(1, np.uint8), "xcoords": x, "ycoords": x, "diff3d": diff3d,
               "probeGuess": np.ones((N, N), np.complex64)}
    if labels:
        members["Y"] = (diff3d * np.complex64(1 - 1j)).astype(np.complex64)
    with zipfile.ZipFile(path, "w", compression=method, compresslevel=1) as zf:
        for key, value in members.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, value, allow_pickle=False)
    return path


# (variant, deflated, extra bytes allowed besides the float32 result as a fraction of it)
CASES = [
    ("float32", False, 0.1),   # memory-mapped, converted chunk by chunk into the result
    ("float32", True, 0.1),    # read into memory once, kept as the result (no copy)
    ("uint16", False, 0.1),    # counts mapped, sqrt chunk by chunk into the result
    ("float64", False, 0.1),   # mapped, cast chunk by chunk (DATA-121 checked per chunk)
    ("uint16", True, 0.1),     # deflated counts decoded straight into float32, sqrt in place
    ("int32", True, 1.1),      # deflated wider ints: numpy's reader holds the int32 array (1x)
    ("float32+Y", False, 0.1),  # complex64 labels mapped and copied chunk by chunk too
    ("float32+Y", True, 0.1),   # deflated labels read once and kept (no astype copy)
]


@pytest.mark.parametrize(("dtype", "deflate", "allowed"), CASES,
                         ids=[f"{'deflated' if d else 'stored'}-{t}" for t, d, _ in CASES])
def test_load_holds_one_copy(tmp_path: Path, dtype: str, deflate: bool, allowed: float) -> None:
    counts = _counts()
    labels = dtype.endswith("+Y")
    dtype = dtype.removesuffix("+Y")
    diff3d = (counts.astype(dtype) if np.dtype(dtype).kind in "iu"
              else np.sqrt(counts.astype(np.float64)).astype(dtype))
    path = _write(tmp_path / "scan.npz", diff3d, deflate, labels)
    r = load_peak(path, CHUNK)
    result = M * N * N * (12 if labels else 4)
    assert r["result_bytes"] == result
    assert r["equal"], "values differ from numpy's np.load of the member"
    assert not r["mapped"] and r["writeable"]  # the result is an ordinary in-memory array
    extra = r["peak"] - r["before"] - result
    assert extra < allowed * result + MARGIN, (
        f"the load held {extra / 2**20:.1f} MiB besides its {result / 2**20:.1f} MiB result "
        f"(allowed {(allowed * result + MARGIN) / 2**20:.1f} MiB)")


def _small(path: Path, diff3d: np.ndarray, deflate: bool = False) -> Path:
    x = np.arange(diff3d.shape[0], dtype=np.float64)
    saver = np.savez_compressed if deflate else np.savez
    saver(path, odd=np.zeros(3, np.uint8), xcoords=x, ycoords=x, diff3d=diff3d,
          probeGuess=np.ones(diff3d.shape[1:], np.complex64))
    return path


def test_stored_member_is_mapped_at_its_offset(tmp_path: Path) -> None:
    diff3d = np.random.RandomState(1).rand(6, 8, 8).astype(np.float32) + 0.5
    path = _small(tmp_path / "s.npz", diff3d)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("diff3d.npy")
    mapped = map_stored_member(path, info, "diff3d")
    assert mapped is not None and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, diff3d)
    assert read_npz(path, map_stored=("diff3d",))["diff3d"].base is not None
    raw = RawData.from_file(path)
    np.testing.assert_array_equal(raw.diff3d, diff3d)
    raw.diff3d[0, 0, 0] = 7.0  # an ordinary array, not a view of the file
    np.testing.assert_array_equal(np.load(path)["diff3d"], diff3d)


def test_deflated_and_fortran_members_are_read_not_mapped(tmp_path: Path) -> None:
    diff3d = np.random.RandomState(2).rand(5, 8, 8).astype(np.float32) + 0.5
    deflated = _small(tmp_path / "d.npz", diff3d, deflate=True)
    fortran = _small(tmp_path / "f.npz", np.asfortranarray(diff3d))
    for path in (deflated, fortran):
        with zipfile.ZipFile(path) as zf:
            assert map_stored_member(path, zf.getinfo("diff3d.npy"), "diff3d") is None
        np.testing.assert_array_equal(RawData.from_file(path).diff3d, diff3d)


def test_corrupt_stored_member_is_refused_by_crc(tmp_path: Path) -> None:
    diff3d = np.full((40, 8, 8), 2.5, np.float32)  # 10 KB: past zipfile's first 4 KB read
    path = _small(tmp_path / "c.npz", diff3d)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("diff3d.npy")
    data = bytearray(path.read_bytes())
    at = data.rfind(np.float32(2.5).tobytes(), 0, info.header_offset + info.file_size + 100)
    assert at > info.header_offset + 8192
    data[at:at + 4] = np.float32(3.5).tobytes()  # the last value flipped, sizes intact
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"NPZ key 'diff3d' .* is corrupt .*CRC"):
        RawData.from_file(path)


def test_private_intensity_converted_in_place_and_caller_arrays_copied(tmp_path: Path) -> None:
    counts = np.random.RandomState(3).poisson(9.0, (4, 8, 8)).astype(np.float32) + 1
    raw = RawData(np.arange(4.0), np.arange(4.0), None, None, counts.copy(),
                  np.ones((8, 8), np.complex64), None, diffraction_kind="intensity")
    np.testing.assert_array_equal(raw.diff3d, np.sqrt(counts.astype(np.float64)).astype(
        np.float32))
    amplitude = np.sqrt(counts)
    kept = RawData(np.arange(4.0), np.arange(4.0), None, None, amplitude,
                   np.ones((8, 8), np.complex64), None, diffraction_kind="amplitude")
    assert not np.shares_memory(kept.diff3d, amplitude)  # the caller's array is never shared
    given = RawData(np.arange(4.0), np.arange(4.0), None, None, amplitude,
                    np.ones((8, 8), np.complex64), None, diffraction_kind="amplitude",
                    diffraction_private=True)
    assert given.diff3d is amplitude  # handed over: no copy
    work = counts.copy()
    RawData(np.arange(4.0), np.arange(4.0), None, None, work, np.ones((8, 8), np.complex64),
            None, diffraction_kind="intensity", diffraction_private=True)
    np.testing.assert_array_equal(work, np.sqrt(counts))  # sqrt taken in place


def test_deflated_small_integers_decoded_exactly(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    counts = np.random.RandomState(4).poisson(30.0, (5, 8, 8)) + 1
    for dtype in (np.uint8, np.int16, np.uint16):
        path = _small(tmp_path / f"{np.dtype(dtype).name}.npz", counts.astype(dtype), True)
        with zipfile.ZipFile(path) as zf:
            widened = decode_deflated_float32(zf, zf.getinfo("diff3d.npy"), "diff3d")
        assert widened is not None and widened.dtype == np.float32
        np.testing.assert_array_equal(widened, counts)
        with caplog.at_level("WARNING"):
            caplog.clear()
            raw = RawData.from_file(path)
        assert "looks like intensity" in caplog.text  # DATA-004 as for the stored dtype
        np.testing.assert_array_equal(raw.diff3d, np.sqrt(counts.astype(np.float64)).astype(
            np.float32))
    half = np.sqrt(counts).astype(np.float16)
    path = _small(tmp_path / "half.npz", half, True)
    np.testing.assert_array_equal(RawData.from_file(path).diff3d, half.astype(np.float32))
    wide = _small(tmp_path / "wide.npz", counts.astype(np.int32), True)
    with zipfile.ZipFile(wide) as zf:  # int32 is not exact in float32: read as stored
        assert decode_deflated_float32(zf, zf.getinfo("diff3d.npy"), "diff3d") is None
    negative = counts.astype(np.int16)
    negative[2, 3, 4] = -7
    path = _small(tmp_path / "neg.npz", negative, True)
    with pytest.raises(DataError, match=r"diff3d has negative values .* in patterns \[2\]"):
        RawData.from_file(path)


def test_truncated_deflated_member_is_refused(tmp_path: Path) -> None:
    counts = (np.random.RandomState(5).poisson(30.0, (64, 32, 32)) + 1).astype(np.uint16)
    path = tmp_path / "t.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        x = np.arange(64.0)
        for key, value in {"xcoords": x, "ycoords": x,
                           "probeGuess": np.ones((32, 32), np.complex64)}.items():
            with zf.open(f"{key}.npy", "w") as fh:
                np.lib.format.write_array(fh, value)
        with zf.open("diff3d.npy", "w") as fh:  # a header that declares 64 patterns, 63 given
            np.lib.format.write_array_header_1_0(fh, {"descr": "<u2", "fortran_order": False,
                                                      "shape": (64, 32, 32)})
            fh.write(counts[:63].tobytes())
    with pytest.raises(DataError, match="diff3d"):
        RawData.from_file(path)


def test_map_patterns_keeps_stored_float32_amplitudes_mapped(tmp_path: Path) -> None:
    counts = _counts()
    amplitude = np.sqrt(counts.astype(np.float64)).astype(np.float32)
    stored = _write(tmp_path / "stored.npz", amplitude, deflate=False)
    r = load_peak(stored, CHUNK, map_patterns=True)
    result = M * N * N * 4
    assert r["equal"] and r["mapped"] and not r["writeable"]
    held = r["peak"] - r["before"]  # the map's pages are released after each pass
    assert held < 0.1 * result + MARGIN, f"{held / 2**20:.1f} MiB held for a mapped scan"
    # what cannot stay mapped is read as without the option
    for path, dtype, deflate in ((tmp_path / "counts.npz", np.uint16, False),
                                 (tmp_path / "deflated.npz", np.float32, True)):
        data = counts.astype(dtype) if dtype == np.uint16 else amplitude
        raw = RawData.from_file(_write(path, data, deflate), map_patterns=True)
        assert raw.diff3d.flags.writeable and raw.diff3d.dtype == np.float32


def test_reconstruct_of_a_mapped_npz_equals_the_in_memory_one(tmp_path: Path) -> None:
    import torch

    from ptychodus_pinn_torch.cli.main import main
    from ptychodus_pinn_torch.config.spec import ModelConfig
    from ptychodus_pinn_torch.data.simulate import simulate_scan
    from ptychodus_pinn_torch.engine.archive import ModelBundle, save_archive
    from ptychodus_pinn_torch.model import build_model

    scan = simulate_scan(N=64, object_shape=(128, 128), overlap=0.5, nphotons=1e6, seed=3)
    arrays = {"xcoords": scan.xcoords, "ycoords": scan.ycoords, "diff3d": scan.diff3d,
              "probeGuess": scan.probeGuess}
    np.savez(tmp_path / "stored.npz", **arrays)  # uncompressed: kept mapped by reconstruct
    np.savez_compressed(tmp_path / "deflated.npz", **arrays)  # read into memory
    cfg = ModelConfig(N=64, n_filters_scale=1, architecture="fno", fno_width=8, fno_blocks=1,
                      fno_modes=4, fno_cnn_blocks=1)
    torch.manual_seed(0)
    model = build_model(cfg, probe=scan.probeGuess, intensity_scale=31.25)
    save_archive(tmp_path / "wts.h5.zip", ModelBundle(
        model=model, model_config=cfg, intensity_scale=31.25,
        probe=model.probe.detach().numpy()))
    objects = []
    for name in ("stored", "deflated"):
        out = tmp_path / f"rec_{name}.npz"
        assert main(["reconstruct", "--model", str(tmp_path / "wts.h5.zip"), "--data",
                     str(tmp_path / f"{name}.npz"), "--out", str(out), "--device", "cpu",
                     "--threads", "1", "--no-progress"]) == 0
        with np.load(out) as z:
            objects.append(z["object"])
    assert np.abs(objects[0]).max() > 0
    np.testing.assert_array_equal(objects[0], objects[1])
    assert is_mapped(RawData.from_file(tmp_path / "stored.npz", map_patterns=True).diff3d)
    assert not is_mapped(RawData.from_file(tmp_path / "stored.npz").diff3d)
