"""Behaviour tests of RawData beyond the numbered DATA rules (edge cases of the contract)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from ptychodus_pinn_torch.data import DataError, RawData
from ptychodus_pinn_torch.data.npz_io import read_npz, write_npz

REPO = Path(__file__).resolve().parents[1]


def arrays(M: int = 5, N: int = 8) -> dict[str, np.ndarray]:
    rs = np.random.RandomState(0)
    return {
        "xcoords": rs.uniform(0, 10, M),
        "ycoords": rs.uniform(0, 10, M),
        "diff3d": rs.uniform(0.1, 1.5, (M, N, N)).astype(np.float32),
        "probeGuess": np.ones((N, N), np.complex64),
    }


def test_minimal_file_defaults(tmp_path: Path) -> None:
    path = tmp_path / "min.npz"
    np.savez(path, **arrays())
    raw = RawData.from_file(path)
    np.testing.assert_array_equal(raw.xcoords_start, raw.xcoords)
    assert raw.objectGuess is None and raw.bad_pixels is None and raw.metadata == {}
    assert repr(raw) == "RawData(n_positions=5, N=8, objectGuess=None)"


def test_metadata_must_be_json_object(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    np.savez(path, **arrays(), _metadata=np.array(json.dumps([1, 2])))
    with pytest.raises(DataError, match="JSON object"):
        RawData.from_file(path)
    np.savez(path, **arrays(), _metadata=np.arange(3))
    with pytest.raises(DataError, match="JSON string"):
        RawData.from_file(path)


def test_y_with_wrong_first_axis_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                            ) -> None:
    path = tmp_path / "y.npz"
    np.savez(path, **arrays(), Y=np.ones((3, 8, 8), np.complex64))
    with caplog.at_level(logging.WARNING):
        raw = RawData.from_file(path)
    assert raw.Y is None and "ignoring 'Y'" in caplog.text
    np.savez(path, **arrays(), Y=np.ones((5, 8, 8, 1), np.complex64))
    assert RawData.from_file(path).Y.shape == (5, 8, 8)  # type: ignore[union-attr]


def test_constructor_accepts_mode_stack_probe_like_ptychodus_host() -> None:
    a = arrays()
    modes = np.stack([np.full((8, 8), 2 + 1j), np.ones((8, 8))])
    raw = RawData.from_coords_without_pc(a["xcoords"], a["ycoords"], a["diff3d"], modes, None)
    np.testing.assert_array_equal(raw.probeGuess, np.full((8, 8), 2 + 1j, np.complex64))


@pytest.mark.parametrize(
    ("key", "value", "pattern"),
    [
        ("diff3d", np.ones((5, 8, 8), complex), "real numeric"),
        ("diff3d", np.ones((0, 8, 8), np.float32), "no patterns"),
        ("xcoords", np.array(["a"] * 5), "real numeric"),
        ("probeGuess", np.full((8, 8), np.nan, complex), "non-finite"),
        ("objectGuess", np.full((9, 9), np.inf), "objectGuess has non-finite"),
        ("scan_index", np.full(5, 0.5), "scan_index must hold integers"),
        ("bad_pixels", np.zeros((4, 4), bool), "bad_pixels must be"),
    ],
)
def test_more_bad_values(tmp_path: Path, key: str, value: np.ndarray, pattern: str) -> None:
    a = arrays()
    a[key] = value
    path = tmp_path / "bad.npz"
    np.savez(path, **a)
    with pytest.raises(DataError, match=pattern):
        RawData.from_file(path)


def test_negative_values_refused_outside_ptychodus_layout(tmp_path: Path) -> None:
    a = arrays()
    a["diff3d"][2, 3, 4] = -1.0
    path = tmp_path / "neg.npz"
    np.savez(path, **a)
    with pytest.raises(DataError, match=r"negative values .* patterns \[2\]"):
        RawData.from_file(path)


def test_float_amplitude_with_fractions_is_not_converted() -> None:
    a = arrays()
    raw = RawData(a["xcoords"], a["ycoords"], None, None, a["diff3d"] * 100, a["probeGuess"],
                  None)
    np.testing.assert_array_equal(raw.diff3d, (a["diff3d"] * 100).astype(np.float32))


def test_subset_with_mask_slice_and_empty() -> None:
    a = arrays(M=6)
    raw = RawData(a["xcoords"], a["ycoords"], None, None, a["diff3d"], a["probeGuess"], None)
    mask = np.array([True, False, True, False, False, True])
    np.testing.assert_array_equal(raw.subset(mask).diff3d, raw.diff3d[mask])
    assert raw.subset(slice(0, 4)).n_positions == 4
    with pytest.raises(DataError, match="select no positions"):
        raw.subset([])


def test_read_npz_reports_corrupt_member(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    write_npz(path, {"a": np.arange(1000.0)}, compress=False)
    data = bytearray(path.read_bytes())
    start = data.index(b"\x93NUMPY")
    data[start : start + 6] = b"XXXXXX"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="'a'"):
        read_npz(path)


def test_committed_fixtures_load() -> None:
    # byte-identity with the generator is DATA-018 (conformance/test_data.py)
    from ptychodus_pinn_torch.data.fixtures import FIXTURE_FILES

    committed = REPO / "fixtures"
    assert sum((committed / n).stat().st_size for n in FIXTURE_FILES) < 10 * 2**20
    train = RawData.from_file(committed / "train.npz")
    assert train.metadata["nphotons"] == 1e6
    counts = train.diff3d.astype(np.float64) ** 2
    assert abs(counts.sum(axis=(1, 2)).mean() - 1e6) < 5 * np.sqrt(1e6 / train.n_positions)


def test_write_npz_is_atomic(tmp_path: Path) -> None:
    """A failed write leaves the existing file as it was and no temporary file behind."""
    path = tmp_path / "keep.npz"
    write_npz(path, {"a": np.arange(5.0)})
    before = path.read_bytes()
    with pytest.raises(DataError, match="dtype object"):
        write_npz(path, {"b": np.arange(3.0), "c": np.array([None], dtype=object)})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.npz"]
    write_npz(path, {"b": np.arange(3.0)})
    assert set(read_npz(path)) == {"b"}
