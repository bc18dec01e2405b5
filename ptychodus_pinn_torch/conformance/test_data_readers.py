"""DATA-180..181 (and DATA-005's export detection): the reader registry in front of RawData."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from ptychodus_pinn_torch.data import DataError, RawData, readers
from ptychodus_pinn_torch.data.readers import ScanArrays


def _raw(M: int = 6, N: int = 8, seed: int = 0) -> RawData:
    rs = np.random.RandomState(seed)
    x = rs.uniform(20, 40, M)
    amp = rs.uniform(0.1, 2.0, (M, N, N)).astype(np.float32)
    probe = (rs.standard_normal((N, N)) + 1j).astype(np.complex64)
    return RawData(x, x[::-1].copy(), None, None, amp, probe, None,
                   np.ones((64, 64), np.complex64), diffraction_kind="amplitude")


@pytest.mark.spec("DATA-180")
def test_registry_detects_and_reads_through_one_constructor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert readers.reader_names()[:3] == ["ptychodus-export", "npz", "ptychodus-h5"]
    raw = _raw()
    raw.to_file(tmp_path / "scan.npz")
    assert readers.detect_format(tmp_path / "scan.npz") == "npz"

    # every reader's arrays pass through RawData.from_scan (count the calls)
    calls: list[str] = []
    original = RawData.from_scan

    def counting(scan: ScanArrays, diffraction_kind=None) -> RawData:  # type: ignore[no-untyped-def]
        calls.append(scan.source)
        return original(scan, diffraction_kind)

    monkeypatch.setattr(RawData, "from_scan", staticmethod(counting))
    back = RawData.from_file(tmp_path / "scan.npz")
    assert calls == ["npz"]
    np.testing.assert_array_equal(back.diff3d, raw.diff3d)

    # unknown formats: one DataError listing the known formats; forced format names checked
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(DataError, match="no known scan format.*npz: the PtychoPINN NPZ"):
        RawData.from_file(junk)
    with pytest.raises(DataError, match="format='tiff' is not a known scan format"):
        RawData.from_file(tmp_path / "scan.npz", format="tiff")
    with pytest.raises(FileNotFoundError):
        RawData.from_file(tmp_path / "absent.npz", format="npz")


@pytest.mark.spec("DATA-180")
def test_a_registered_reader_is_used(tmp_path: Path) -> None:
    raw = _raw(M=5)

    def read(path: Path) -> ScanArrays:
        values = np.loadtxt(path).reshape(5, 8, 8).astype(np.float32)
        return ScanArrays(xcoords=raw.xcoords, ycoords=raw.ycoords, diff3d=values,
                          probeGuess=raw.probeGuess, diffraction_kind="intensity")

    reader = readers.FunctionReader("txt-test", "test text patterns",
                                    lambda p: p.suffix == ".txt", read)
    readers.register_reader(reader, before="npz")
    try:
        path = tmp_path / "scan.txt"
        np.savetxt(path, (raw.diff3d**2).reshape(5, -1))
        assert readers.detect_format(path) == "txt-test"
        got = RawData.from_file(path)
        np.testing.assert_allclose(got.diff3d, raw.diff3d, rtol=1e-5)
    finally:
        readers.unregister_reader("txt-test")
    assert "txt-test" not in readers.reader_names()


@pytest.mark.spec("DATA-005")
def test_contract_file_with_bad_pixel_mask_round_trips(tmp_path: Path) -> None:
    """A contract NPZ carrying ``bad_pixels`` is amplitude (only a (modes, N, N) probe marks
    ptychodus' intensity export), so to_file -> from_file keeps the values."""
    raw = _raw()
    raw.bad_pixels = np.zeros((8, 8), bool)
    raw.bad_pixels[2, 3] = True
    raw.to_file(tmp_path / "a.npz")
    back = RawData.from_file(tmp_path / "a.npz")
    np.testing.assert_array_equal(back.diff3d, raw.diff3d)
    np.testing.assert_array_equal(back.bad_pixels, raw.bad_pixels)
    assert readers.detect_format(tmp_path / "a.npz") == "npz"


def _ptychodus_reference(folder: Path) -> dict[str, np.ndarray]:
    """ptychodus' own path: load both files, pair, convert as the host export does."""
    from ptychodus.api.io import load_diffraction_data, load_product
    from ptychodus.api.reconstruct import prepare_reconstruct_input

    from ptychodus_pinn_torch.host.conversion import scan_arrays_from_input

    ri = prepare_reconstruct_input(load_diffraction_data(folder / "diffraction.h5"),
                                   load_product(folder / "product.h5"))
    return scan_arrays_from_input(ri)


@pytest.mark.spec("DATA-181")
@pytest.mark.parametrize("odd_indexes", [False, True])
def test_standard_files_read_like_ptychodus(tmp_path: Path, odd_indexes: bool) -> None:
    from ptychodus_pinn_torch.host.sample_data import simulate_scan, write_standard_layout

    folder = write_standard_layout(tmp_path / "in", simulate_scan(n_side=4, N=32,
                                                                  bad_pixel_count=2, seed=3))
    if odd_indexes:  # duplicate, missing and out-of-range scan indexes: ptychodus' pairing
        with h5py.File(folder / "product.h5", "r+") as h5:
            index = h5["probe_position_indexes"][()]
            index[3] = index[2]  # a duplicate (averaged) and a gap at old index 3 (interpolated)
            index[-1] = index[-2]  # the last pattern is now out of range (dropped)
            h5["probe_position_indexes"][...] = index
    expected = _ptychodus_reference(folder)
    for path in (folder, folder / "product.h5", folder / "diffraction.h5"):
        assert readers.detect_format(path) == "ptychodus-h5"
        raw = RawData.from_file(path)
        assert raw.n_positions == (15 if odd_indexes else 16)
        for key, value in expected.items():
            got = getattr(raw, key)
            assert got.dtype == value.dtype, key
            np.testing.assert_allclose(got, value, rtol=1e-6, atol=1e-9, err_msg=key)
    assert raw.metadata["probe_photon_count"] == pytest.approx(1e6)
    # the hot pixels were inpainted, not taken as counts
    assert raw.diff3d.max() < 0.01 * np.sqrt(np.iinfo(np.uint32).max // 2)


@pytest.mark.spec("DATA-181")
def test_standard_files_errors_name_the_file_and_key(tmp_path: Path) -> None:
    from ptychodus_pinn_torch.host.sample_data import simulate_scan, write_standard_layout

    folder = write_standard_layout(tmp_path / "in", simulate_scan(n_side=3, N=32, seed=1))
    with h5py.File(folder / "product.h5", "r+") as h5:
        del h5["probe_position_x_m"]
    with pytest.raises(DataError, match="product.h5.*no dataset 'probe_position_x_m'"):
        RawData.from_file(folder)
    other = tmp_path / "other.h5"
    other.write_bytes(b"x")
    with pytest.raises(DataError, match="expected a folder with diffraction.h5 and product.h5"):
        RawData.from_file(other, format="ptychodus-h5")
