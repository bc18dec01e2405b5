"""``pinn-torch export-ptychodus SCAN.npz IN/``: the batch input folder ptychodus reads back.

ptychodus' own readers (``load_diffraction_data``, ``load_product``, ``prepare_reconstruct_input``)
and our host conversion must give back the NPZ's amplitudes, positions (object pixels), probe and
object; a second export into the same folder is refused without ``--overwrite``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ptychodus_pinn_torch.cli.main import main
from ptychodus_pinn_torch.data import RawData

pytest.importorskip("ptychodus")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def scan(tmp_path: Path) -> RawData:
    full = RawData.from_file(ROOT / "fixtures" / "test.npz")
    keep = slice(0, 30)
    small = RawData.from_coords_without_pc(
        xcoords=full.xcoords[keep], ycoords=full.ycoords[keep], diff3d=full.diff3d[keep],
        probeGuess=full.probeGuess, scan_index=np.zeros(30, dtype=np.int64),
        objectGuess=full.objectGuess, diffraction_kind="amplitude")
    small.to_file(tmp_path / "scan.npz")
    return small


def test_export_writes_what_ptychodus_reads_back(scan: RawData, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from ptychodus.api.io import load_diffraction_data, load_product
    from ptychodus.api.reconstruct import prepare_reconstruct_input

    from ptychodus_pinn_torch.host.conversion import scan_arrays_from_input

    folder = tmp_path / "IN"
    model = tmp_path / "trained.zip"
    model.write_bytes(b"a model archive")
    assert main(["export-ptychodus", str(tmp_path / "scan.npz"), str(folder),
                 "--model", str(model)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("wrote 30 patterns of 64x64 as ptychodus input: ")
    assert sorted(p.name for p in folder.iterdir()) == [
        "diffraction.h5", "model.zip", "product.h5", "settings.ini"]
    assert (folder / "model.zip").read_bytes() == b"a model archive"
    assert "Algorithm = ptychopinn-pytorch_pinn" in (folder / "settings.ini").read_text()

    product = load_product(folder / "product.h5")
    diffraction = load_diffraction_data(folder / "diffraction.h5")
    arrays = scan_arrays_from_input(prepare_reconstruct_input(diffraction, product))
    np.testing.assert_allclose(arrays["xcoords"], scan.xcoords, atol=1e-6)
    np.testing.assert_allclose(arrays["ycoords"], scan.ycoords, atol=1e-6)
    np.testing.assert_allclose(arrays["diff3d"], scan.diff3d, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(arrays["probeGuess"], scan.probeGuess, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(arrays["objectGuess"], scan.objectGuess.astype(np.complex64))
    assert product.metadata.photon_energy_eV == 10_000.0
    assert product.metadata.detector_distance_m == 2.0

    # a second export into the same folder: refused by name, one line, exit 2
    assert main(["export-ptychodus", str(tmp_path / "scan.npz"), str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--overwrite" in err and "already holds" in err and "\n" not in err
    assert main(["export-ptychodus", str(tmp_path / "scan.npz"), str(folder),
                 "--overwrite", "--energy-ev", "8000"]) == 0
    assert "put the trained model at" in capsys.readouterr().out
    assert load_product(folder / "product.h5").metadata.photon_energy_eV == 8000.0


def test_bad_options_are_one_line(scan: RawData, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    npz = str(tmp_path / "scan.npz")
    for extra, phrase in ((["--energy-ev", "-1"], "--energy-ev must be a positive number"),
                          (["--algorithm", "pty-chi_LSQML"], "--algorithm 'pty-chi_LSQML'"),
                          (["--model", str(tmp_path / "none.zip")], "--model")):
        assert main(["export-ptychodus", npz, str(tmp_path / "IN"), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert phrase in err and "Traceback" not in err, err
    assert main(["export-ptychodus", str(tmp_path / "missing.npz"), str(tmp_path / "X")]) == 2
    assert "missing.npz: no such file" in capsys.readouterr().err
