"""DATA-120..139: scans that are too large, hostile or unlucky are refused or warned about by
name before they can cost memory or give a silent wrong result."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ptychodus_pinn_torch.data import DataError, RawData
from ptychodus_pinn_torch.data.npz_io import read_npz
from ptychodus_pinn_torch.data.npz_limits import DataLimits, check_npz_file

N = 64


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _raw(m: int = 16, n: int = N, seed: int = 0) -> RawData:
    rng = np.random.default_rng(seed)
    diff = rng.uniform(0.1, 1.0, (m, n, n)).astype(np.float32)
    return RawData(rng.uniform(40, 80, m), rng.uniform(40, 80, m), None, None, diff,
                   np.ones((n, n), np.complex64), None)


@pytest.mark.spec("DATA-120")
def test_declared_sizes_checked_before_inflating(tmp_path: Path) -> None:
    # a deflated bomb: 80 MiB of float32 ones in ~80 KB
    m = (80 << 20) // (N * N * 4)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("diff3d.npy", _npy(np.ones((m, N, N), np.float32)))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(DataError, match=r"'diff3d'.*ratio 10\d\d, above 500.*zip bomb"):
        read_npz(bomb)
    # a header that lies about its member
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**6, N, N)})
    liar = tmp_path / "liar.npz"
    with zipfile.ZipFile(liar, "w") as zf:
        zf.writestr("diff3d.npy", header.getvalue() + b"\0" * 64)
    with pytest.raises(DataError, match="declares shape"):
        read_npz(liar)
    # budget, pattern count and size, the model's N
    scan = tmp_path / "scan.npz"
    _raw(m=16).to_file(scan)
    need = 16 * N * N * 4 * 2  # diff3d + its float32 working copy, plus small arrays
    with pytest.raises(DataError, match="above the memory budget"):
        read_npz(scan, DataLimits(memory_budget=need))
    assert read_npz(scan, DataLimits(memory_budget=need + (1 << 20)))["diff3d"].shape == (16, N, N)
    big = 1 << 40
    with pytest.raises(DataError, match="above the limit of 15"):
        check_npz_file(scan, DataLimits(memory_budget=big, max_patterns=15))
    with pytest.raises(DataError, match="above the 63-pixel limit"):
        check_npz_file(scan, DataLimits(memory_budget=big, max_pattern_size=63))
    with pytest.raises(DataError, match="model expects N = 128"):
        check_npz_file(scan, DataLimits(memory_budget=big), expected_n=128)


@pytest.mark.spec("DATA-121")
def test_values_checked_after_cast() -> None:
    raw = _raw()
    diff = raw.diff3d.astype(np.float64)
    diff[1, 2, 3] = 1e300
    with pytest.raises(DataError, match=r"overflow float32 \(first at index \(1, 2, 3\)"):
        RawData(raw.xcoords, raw.ycoords, None, None, diff, raw.probeGuess, None)
    labels = np.ones((16, N, N), np.complex64)
    labels[5, 0, 0] = np.nan
    with pytest.raises(DataError, match=r"Y has 1 NaN/Inf values .* in patterns \[5\]"):
        RawData(raw.xcoords, raw.ycoords, None, None, raw.diff3d, raw.probeGuess, None,
                None, labels)
    with pytest.raises(DataError, match=r"\(0, 64, 64\): a stack of zero probe modes"):
        RawData(raw.xcoords, raw.ycoords, None, None, raw.diff3d,
                np.zeros((0, N, N), np.complex64), None)


@pytest.mark.spec("DATA-122")
@pytest.mark.parametrize("bad", [-5, 0, float("inf"), "1e6", False])
def test_nphotons_metadata(bad: object) -> None:
    raw = _raw()
    with pytest.raises(DataError, match="metadata nphotons="):
        RawData(raw.xcoords, raw.ycoords, None, None, raw.diff3d, raw.probeGuess, None,
                metadata={"nphotons": bad})


@pytest.mark.spec("DATA-123")
def test_repeated_positions_warned(caplog: pytest.LogCaptureFixture) -> None:
    raw = _raw()
    x = raw.xcoords.copy()
    x[3] = x[2]
    y = raw.ycoords.copy()
    y[3] = y[2]
    with caplog.at_level("WARNING"):
        RawData(x, y, None, None, raw.diff3d, raw.probeGuess, None)
    assert "1 of 16 scan positions repeat an earlier one" in caplog.text


@pytest.mark.spec("DATA-124")
def test_empty_frames(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw = _raw()
    diff = raw.diff3d.copy()
    diff[[0, 9]] = 0
    path = tmp_path / "scan.npz"
    np.savez(path, xcoords=raw.xcoords, ycoords=raw.ycoords, diff3d=diff,
             probeGuess=raw.probeGuess)
    with pytest.raises(DataError, match=r"2 all-zero patterns \(indices \[0, 9\]\)"):
        RawData.from_file(path)
    with caplog.at_level("WARNING"):
        kept = RawData.from_file(path, drop_empty_frames=True)
    assert "dropped 2 of 16 diffraction frames that are all zero (indices 0, 9" in caplog.text
    assert kept.n_positions == 14 and kept.metadata["dropped_empty_frames"] == 2
    np.testing.assert_array_equal(kept.ycoords, np.delete(raw.ycoords, [0, 9]))


@pytest.mark.spec("DATA-240")
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS from /proc")
@pytest.mark.parametrize("variant", ["stored-float32", "deflated-float32", "stored-uint16"])
def test_npz_load_holds_one_copy_of_the_patterns(tmp_path: Path, variant: str) -> None:
    from ptychodus_pinn_torch.conformance.helpers import load_peak

    m = 2000  # 32 MiB of float32 result, eight 4 MiB chunks
    counts = np.random.default_rng(0).poisson(20.0, (m, N, N)).astype(np.uint16) + 1
    storage, dtype = variant.split("-")
    diff3d = counts if dtype == "uint16" else np.sqrt(counts).astype(np.float32)
    path = tmp_path / "scan.npz"
    method = zipfile.ZIP_STORED if storage == "stored" else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", compression=method, compresslevel=1) as zf:
        for key, value in {"xcoords": np.arange(m, dtype=float),
                           "ycoords": np.arange(m, dtype=float), "diff3d": diff3d,
                           "probeGuess": np.ones((N, N), np.complex64)}.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, value, allow_pickle=False)
    r = load_peak(path, chunk_bytes=4 << 20)
    result = m * N * N * 4
    assert r["equal"] and r["result_bytes"] == result and not r["mapped"]
    extra = r["peak"] - r["before"] - result
    assert extra < 0.1 * result + (12 << 20), f"{extra / 2**20:.1f} MiB held besides the result"


@pytest.mark.spec("DATA-241")
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS from /proc")
def test_npz_patterns_stay_mapped_on_request(tmp_path: Path) -> None:
    from ptychodus_pinn_torch.conformance.helpers import load_peak
    from ptychodus_pinn_torch.data.paging import is_mapped

    m = 2000
    amplitude = np.sqrt(np.random.default_rng(1).poisson(20.0, (m, N, N)) + 1).astype(np.float32)
    x = np.arange(m, dtype=float)
    path = tmp_path / "scan.npz"
    np.savez(path, xcoords=x, ycoords=x, diff3d=amplitude, probeGuess=np.ones((N, N), np.complex64))
    r = load_peak(path, chunk_bytes=4 << 20, map_patterns=True)
    assert r["equal"] and r["mapped"] and not r["writeable"]
    held = r["peak"] - r["before"]
    assert held < 0.1 * amplitude.nbytes + (12 << 20), f"{held / 2**20:.1f} MiB held"
    deflated = tmp_path / "deflated.npz"
    np.savez_compressed(deflated, xcoords=x[:8], ycoords=x[:8], diff3d=amplitude[:8],
                        probeGuess=np.ones((N, N), np.complex64))
    assert not is_mapped(RawData.from_file(deflated, map_patterns=True).diff3d)
    assert not is_mapped(RawData.from_file(path).diff3d)  # the default reads into memory
