"""Reliability of scan reading under hostile and huge NPZ files (DATA-120): declared sizes are
checked from the .npy headers before anything is inflated.

Each test writes the hostile file and asserts the refusal (a one-line DataError, or exit 2 with
one stderr line from the CLI) and, for the zip bomb, the child's peak RSS.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from peak_rss import run_cli_peak_rss

from ptychodus_pinn_torch.data import RawData
from ptychodus_pinn_torch.data.errors import DataError
from ptychodus_pinn_torch.data.npz_io import read_npz
from ptychodus_pinn_torch.data.npz_limits import (
    MEMORY_BUDGET_ENV,
    DataLimits,
    check_npz_file,
    default_memory_budget,
    parse_bytes,
    read_npz_headers,
)

N = 64
RSS_LIMIT_BYTES = 500 * 2**20


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def write_bomb(path: Path, total_bytes: int, n: int = N) -> Path:
    """An NPZ whose ``diff3d.npy`` declares ``total_bytes`` of float32 ones, deflated (about
    1/1000 of that on disk), with matching coordinates and probe."""
    m = total_bytes // (n * n * 4)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xcoords.npy", _npy(np.linspace(0, 100, m)))
        zf.writestr("ycoords.npy", _npy(np.linspace(0, 100, m)))
        zf.writestr("probeGuess.npy", _npy(np.ones((n, n), np.complex64)))
        with zf.open("diff3d.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": "<f4", "fortran_order": False, "shape": (m, n, n)})
            chunk = np.ones(1 << 20, np.float32).tobytes()
            left = m * n * n * 4
            while left:
                k = min(left, len(chunk))
                fh.write(chunk[:k])
                left -= k
    return path


def _scan(path: Path, m: int = 16, n: int = N) -> Path:
    rng = np.random.default_rng(0)
    diff = rng.uniform(0.1, 1.0, (m, n, n)).astype(np.float32)
    probe = np.ones((n, n), np.complex64)
    RawData(rng.uniform(40, 80, m), rng.uniform(40, 80, m), None, None, diff, probe,
            None).to_file(path)
    return path


def test_headers_read_without_inflating(tmp_path: Path) -> None:
    headers = read_npz_headers(write_bomb(tmp_path / "bomb.npz", 256 << 20))
    diff = headers["diff3d"]
    assert diff.shape == ((256 << 20) // (N * N * 4), N, N)
    assert diff.dtype == np.float32 and diff.nbytes == 256 << 20
    assert diff.compressed_bytes < (256 << 20) / 500


def test_zip_bomb_refused_from_headers(tmp_path: Path) -> None:
    path = write_bomb(tmp_path / "bomb.npz", 256 << 20)
    assert path.stat().st_size < 2 << 20
    with pytest.raises(DataError) as info:
        read_npz(path)
    text = str(info.value)
    assert "\n" not in text and "'diff3d'" in text and "zip bomb" in text
    assert "ratio 10" in text  # deflated constant data: ~1030


def test_budget_refuses_a_large_honest_file(tmp_path: Path) -> None:
    path = _scan(tmp_path / "scan.npz", m=64)  # 1 MiB of diff3d + 1 MiB float32 copy
    with pytest.raises(DataError, match=r"largest: diff3d.*above the memory budget of 1\.0 MiB"):
        read_npz(path, DataLimits(memory_budget=1 << 20))
    assert read_npz(path, DataLimits(memory_budget=3 << 20))["diff3d"].shape == (64, N, N)


def test_budget_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _scan(tmp_path / "scan.npz", m=64)
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "1M")
    assert default_memory_budget() == 1 << 20
    with pytest.raises(DataError, match=MEMORY_BUDGET_ENV):
        RawData.from_file(path)
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "lots")
    with pytest.raises(DataError, match="is not a size"):
        default_memory_budget()
    monkeypatch.delenv(MEMORY_BUDGET_ENV)
    assert default_memory_budget() >= 256 << 20  # half of any machine that runs the tests


@pytest.mark.parametrize(("text", "value"), [("24G", 24 << 30), ("512M", 512 << 20),
                                             ("1.5K", 1536), ("1000", 1000), ("2GiB", 2 << 30)])
def test_parse_bytes(text: str, value: int) -> None:
    assert parse_bytes(text) == value


def test_pattern_limits(tmp_path: Path) -> None:
    path = _scan(tmp_path / "scan.npz", m=16)
    big = 1 << 40
    with pytest.raises(DataError, match="declares 16 patterns, above the limit of 8"):
        check_npz_file(path, DataLimits(memory_budget=big, max_patterns=8))
    with pytest.raises(DataError, match="64 x 64 patterns, above the 32-pixel limit"):
        check_npz_file(path, DataLimits(memory_budget=big, max_pattern_size=32))
    with pytest.raises(DataError, match="model expects N = 128"):
        check_npz_file(path, DataLimits(memory_budget=big), expected_n=128)
    assert check_npz_file(path, DataLimits(memory_budget=big), expected_n=N)["diff3d"].shape == (
        16, N, N)


def test_header_declaring_more_than_the_member(tmp_path: Path) -> None:
    """A .npy header claiming (10**6, 64, 64) over 1 KB of data: refused before numpy allocates
    the declared array."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**6, N, N)})
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("diff3d.npy", header.getvalue() + b"\0" * 1024)
    with pytest.raises(DataError, match=r"declares shape \(1000000, 64, 64\) float32"):
        read_npz(path)


def test_zip_bomb_cli_one_line_bounded_memory(tmp_path: Path) -> None:
    """The issue's NPZ bomb shape through ``pinn-torch train`` (256 MiB here, to keep the test
    fast; the 2 GiB file is measured in specs/DATA.md): exit 2, one line, peak RSS < 500 MB."""
    bomb = write_bomb(tmp_path / "bomb.npz", 256 << 20)
    rc, lines, peak = run_cli_peak_rss(["train", "--train", str(bomb), "--out",
                                        str(tmp_path / "o")])
    assert rc == 2 and len(lines) == 1 and "zip bomb" in lines[0], lines
    assert peak < RSS_LIMIT_BYTES, f"peak RSS {peak / 2**20:.0f} MiB"
