"""DATA-160..163: richer data generation (specs/DATA.md): beamstop, experiment sets, labels
from an experimental reconstruction. Checked against independent numpy/scipy computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from ptychodus_pinn_torch.cli.main import main
from ptychodus_pinn_torch.data import DataError, RawData
from ptychodus_pinn_torch.data.experiment_sets import (
    DEFOCUS_FACTOR_RANGE,
    RADIUS_FACTOR_RANGE,
    experiment_paths,
    simulate_experiments,
)
from ptychodus_pinn_torch.data.labels import labels_from_experiment
from ptychodus_pinn_torch.data.simulate import (
    beamstop_mask,
    diffract,
    make_object,
    make_probe,
    simulate_scan,
)

SMALL = {"N": 32, "object_shape": (64, 64), "nphotons": 1e5}


@pytest.mark.spec("DATA-160")
def test_beamstop_mask_is_the_centred_disk() -> None:
    mask = beamstop_mask(32, 4.0)
    assert mask.sum() == 13  # distances 0, 1 (x4), sqrt 2 (x4), 2 (x4)
    rows, cols = np.nonzero(mask)
    assert np.all(np.hypot(rows - 16, cols - 16) <= 2.0)
    assert not beamstop_mask(32, 0.0).any()
    with pytest.raises(DataError, match="beamstop diameter"):
        beamstop_mask(32, 40.0)


@pytest.mark.spec("DATA-160")
@pytest.mark.parametrize("transmission", [0.0, 0.25])
def test_beamstop_blocks_before_the_noise_and_is_written(
    tmp_path: Path, transmission: float
) -> None:
    raw = simulate_scan(seed=3, beamstop_diameter=6.0, beamstop_transmission=transmission,
                        **SMALL)
    mask = beamstop_mask(32, 6.0)
    np.testing.assert_array_equal(raw.bad_pixels, mask)
    counts = raw.diff3d.astype(np.float64) ** 2
    # noise-free expectation, computed without the beamstop and then attenuated by hand
    free = diffract(raw.objectGuess, raw.probeGuess, raw.xcoords, raw.ycoords, 1e5, None)
    if transmission == 0.0:
        assert np.all(counts[:, mask] == 0.0)
    else:
        expected = transmission * free[:, mask].sum()
        assert counts[:, mask].sum() == pytest.approx(expected, rel=5 / np.sqrt(expected))
    outside = free[:, ~mask].sum()
    assert counts[:, ~mask].sum() == pytest.approx(outside, rel=5 / np.sqrt(outside))
    np.testing.assert_allclose(
        diffract(raw.objectGuess, raw.probeGuess, raw.xcoords, raw.ycoords, 1e5, None,
                 np.where(mask, transmission, 1.0)),
        free * np.where(mask, transmission, 1.0), rtol=1e-12,
    )
    assert raw.metadata["beamstop_diameter_px"] == 6.0
    assert raw.metadata["beamstop_transmission"] == transmission
    raw.to_file(tmp_path / "s.npz")
    back = RawData.from_file(tmp_path / "s.npz")
    np.testing.assert_array_equal(back.bad_pixels, mask)
    np.testing.assert_array_equal(back.diff3d, raw.diff3d)  # amplitudes, not re-rooted


@pytest.mark.spec("DATA-160")
def test_without_beamstop_nothing_changes() -> None:
    raw = simulate_scan(seed=5, **SMALL)
    assert raw.bad_pixels is None and "beamstop_diameter_px" not in raw.metadata
    with pytest.raises(DataError, match="beamstop_transmission"):
        simulate_scan(seed=5, beamstop_diameter=4.0, beamstop_transmission=1.5, **SMALL)


@pytest.mark.spec("DATA-161")
def test_experiment_sets_vary_object_and_probe() -> None:
    scans = simulate_experiments(3, seed=7, **SMALL)
    single = simulate_scan(seed=7, **SMALL)
    np.testing.assert_array_equal(scans[0].diff3d, single.diff3d)  # experiment 0 = the scan
    np.testing.assert_array_equal(scans[0].probeGuess, single.probeGuess)
    for i, raw in enumerate(scans):
        assert raw.metadata["experiment"] == i and raw.metadata["experiments"] == 3
        assert raw.metadata["seed"] == 7 + i
        np.testing.assert_array_equal(raw.objectGuess, make_object("phantom", (64, 64), 7 + i))
        if i:
            rs = np.random.RandomState(7 + i)
            radius, defocus = rs.uniform(*RADIUS_FACTOR_RANGE), rs.uniform(*DEFOCUS_FACTOR_RANGE)
            assert raw.metadata["probe_radius_factor"] == radius
            assert raw.metadata["probe_defocus_factor"] == defocus
            np.testing.assert_array_equal(
                raw.probeGuess,
                make_probe("pinhole", 32, radius_factor=radius, defocus_factor=defocus),
            )
            assert not np.array_equal(raw.probeGuess, scans[0].probeGuess)
            assert not np.array_equal(raw.objectGuess, scans[0].objectGuess)
    same = simulate_experiments(2, seed=7, vary_probe=False, **SMALL)
    np.testing.assert_array_equal(same[0].probeGuess, same[1].probeGuess)


@pytest.mark.spec("DATA-161")
def test_camera_sets_flip_the_image() -> None:
    scans = simulate_experiments(4, seed=0, object_kind="camera", vary_probe=False, **SMALL)
    base = scans[0].objectGuess
    np.testing.assert_array_equal(scans[1].objectGuess, base[::-1, :])
    np.testing.assert_array_equal(scans[2].objectGuess, base[:, ::-1])
    np.testing.assert_array_equal(scans[3].objectGuess, base[::-1, ::-1])


@pytest.mark.spec("DATA-161")
def test_cli_experiments_write_k_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "set" / "scan.npz"
    rc = main(["simulate", "--out", str(out), "--experiments", "3", "--n", "32",
               "--object-size", "64", "--seed", "2", "--beamstop", "4"])
    assert rc == 0
    paths = experiment_paths(out, 3)
    assert [p.name for p in paths] == ["scan_0.npz", "scan_1.npz", "scan_2.npz"]
    probes = [RawData.from_file(p).probeGuess for p in paths]
    assert all(RawData.from_file(p).bad_pixels.sum() == 13 for p in paths)
    assert not np.array_equal(probes[0], probes[1])
    assert [p.name for p in experiment_paths(out, 12)][10] == "scan_10.npz"
    assert experiment_paths(out, 12)[0].name == "scan_00.npz"
    assert main(["simulate", "--out", str(out), "--experiments", "0"]) == 2
    assert "--experiments" in capsys.readouterr().err


def _bilinear(obj: np.ndarray, x: float, y: float, n: int) -> np.ndarray:
    rows = y + np.arange(n) - n // 2
    cols = x + np.arange(n) - n // 2
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    sample = lambda a: ndimage.map_coordinates(  # noqa: E731
        a, [rr, cc], order=1, mode="grid-constant", cval=0.0
    )
    return sample(obj.real) + 1j * sample(obj.imag)


@pytest.mark.spec("DATA-162")
def test_labels_are_patches_of_the_normalized_reconstruction() -> None:
    scan = simulate_scan(seed=9, scan="jitter", **SMALL)
    rs = np.random.RandomState(0)
    recon = 2.5 * scan.objectGuess.astype(np.complex128) * np.exp(0.3j)
    recon = recon + 0.01 * rs.randn(*recon.shape)
    labeled = labels_from_experiment(scan, recon)
    scale = np.abs(recon).max()
    assert labeled.metadata["labels"] == "from_experiment"
    assert labeled.metadata["label_amplitude_scale"] == pytest.approx(scale)
    np.testing.assert_allclose(labeled.objectGuess, recon / scale, atol=1e-6)
    assert np.abs(labeled.objectGuess).max() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(labeled.diff3d, scan.diff3d)
    assert labeled.Y.shape == (scan.n_positions, 32, 32) and labeled.Y.dtype == np.complex64
    for m in (0, 7, scan.n_positions - 1):
        expected = _bilinear(recon / scale, scan.xcoords[m], scan.ycoords[m], 32)
        np.testing.assert_allclose(labeled.Y[m], expected, atol=2e-6)


@pytest.mark.spec("DATA-162")
def test_labels_follow_the_reconstruction_origin_and_refuse_other_grids() -> None:
    scan = simulate_scan(seed=9, **SMALL)
    big = np.pad(scan.objectGuess, ((5, 0), (3, 0)))  # pixel (0, 0) sits at (x, y) = (-3, -5)
    labeled = labels_from_experiment(scan, big, normalize=False, origin=(-3.0, -5.0))
    np.testing.assert_allclose(labeled.xcoords, scan.xcoords + 3)
    np.testing.assert_allclose(labeled.ycoords, scan.ycoords + 5)
    direct = labels_from_experiment(scan, scan.objectGuess, normalize=False)
    np.testing.assert_allclose(labeled.Y, direct.Y, atol=1e-6)
    with pytest.raises(DataError, match="does not hold every"):
        labels_from_experiment(scan, scan.objectGuess[:40, :40])
    with pytest.raises(DataError, match="NaN"):
        labels_from_experiment(scan, np.full((64, 64), np.nan, complex))


@pytest.mark.spec("DATA-162")
def test_cli_from_experiment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scan = simulate_scan(seed=10, **SMALL)
    scan.to_file(tmp_path / "scan.npz")
    np.savez(tmp_path / "rec.npz", object=scan.objectGuess * 0.5,
             origin=np.array([0.0, 0.0]))
    out = tmp_path / "labeled.npz"
    rc = main(["simulate", "--out", str(out), "--from-experiment", str(tmp_path / "scan.npz"),
               "--reconstruction", str(tmp_path / "rec.npz")])
    assert rc == 0
    back = RawData.from_file(out)
    assert back.Y is not None and back.Y.shape == (scan.n_positions, 32, 32)
    np.testing.assert_array_equal(back.diff3d, scan.diff3d)
    rc = main(["simulate", "--out", str(out), "--from-experiment", str(tmp_path / "scan.npz")])
    assert rc == 2 and "--reconstruction" in capsys.readouterr().err
    rc = main(["simulate", "--out", str(out), "--from-experiment", str(tmp_path / "scan.npz"),
               "--reconstruction", str(tmp_path / "rec.npz"), "--reconstruction-key", "x"])
    assert rc == 2 and "--reconstruction-key" in capsys.readouterr().err
