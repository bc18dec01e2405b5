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
