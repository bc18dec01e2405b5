"""Training-data export in the PtychoPINN contract, checked against independent numpy/scipy
computations; output objects on the input grid; training inputs from ptychodus' batch layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import median_filter

from ptychodus_pinn_torch.data import RawData
from ptychodus_pinn_torch.host import conversion, export
from ptychodus_pinn_torch.host.sample_data import simulate_scan, write_standard_layout


@pytest.fixture(scope="module")
def scan():  # type: ignore[no-untyped-def]
    return simulate_scan(n_side=4, step_px=6.0, bad_pixel_count=3, seed=1)


def test_export_is_the_contract_and_reads_back(scan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ri = scan.reconstruct_input()
    path = export.export_training_npz(tmp_path / "exported.data", ri)  # no .npz suffix added
    assert path == tmp_path / "exported.data" and path.is_file()
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == sorted((*conversion.CONTRACT_KEYS, "bad_pixels"))
        np.testing.assert_array_equal(z["bad_pixels"], ri.bad_pixels)  # HOST-261
        diff3d, probe, obj = z["diff3d"], z["probeGuess"], z["objectGuess"]
        x, y = z["xcoords"], z["ycoords"]
        assert diff3d.dtype == np.float32 and diff3d.shape == (16, 64, 64)
        assert probe.dtype == np.complex64 and probe.shape == (64, 64)
        assert obj.dtype == np.complex64 and obj.shape == ri.product.object_.get_array().shape[1:]
        np.testing.assert_array_equal(z["xcoords_start"], x)
        np.testing.assert_array_equal(z["ycoords_start"], y)
        np.testing.assert_array_equal(z["scan_index"], np.zeros(16, np.int64))

    # amplitude = sqrt(counts) away from bad pixels (exact up to float32 rounding)
    counts = np.asarray(ri.diffraction_patterns, dtype=np.float64)
    good = ~ri.bad_pixels
    np.testing.assert_allclose(diff3d[:, good], np.sqrt(counts[:, good]), rtol=2e-7, atol=0)
    # bad (hot) pixels are replaced by values like their neighbourhood, not the hot value
    hot = np.sqrt(counts[:, ri.bad_pixels])
    filled = diff3d[:, ri.bad_pixels]
    local = np.stack([median_filter(np.sqrt(np.where(good, c, 0)), size=5)[ri.bad_pixels]
                      for c in counts])
    assert np.all(filled < 0.01 * hot)
    np.testing.assert_allclose(filled, local, atol=0.5 * np.sqrt(counts.max()))

    # positions: independent mapping metres -> object pixels about the array centre (W-1)/2
    geometry = ri.product.object_.get_geometry()
    xm = np.array([p.x_m for p in ri.product.probe_positions])
    ym = np.array([p.y_m for p in ri.product.probe_positions])
    x_ref = (xm - geometry.center_x_m) / geometry.pixel_width_m + (geometry.width_px - 1) / 2
    y_ref = (ym - geometry.center_y_m) / geometry.pixel_height_m + (geometry.height_px - 1) / 2
    np.testing.assert_allclose(x, x_ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(probe, ri.product.probes.get_array()[0, 0], rtol=1e-6)

    raw = RawData.from_file(path)
    assert raw.n_positions == 16 and raw.N == 64
    np.testing.assert_array_equal(raw.diff3d, diff3d)  # read as amplitude, not sqrt'd again
    np.testing.assert_array_equal(raw.bad_pixels, ri.bad_pixels)
    np.testing.assert_array_equal(raw.xcoords, x)


def test_export_refuses_probe_of_other_size(scan) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    ri = scan.reconstruct_input()
    cropped = replace(ri, diffraction_patterns=np.asarray(ri.diffraction_patterns)[:, :32, :32],
                      bad_pixels=ri.bad_pixels[:32, :32])
    with pytest.raises(ValueError, match="probe is 64x64 pixels but the diffraction patterns "
                                         "are 32x32"):
        conversion.scan_arrays_from_input(cropped)


def test_object_on_input_grid_keeps_geometry_and_layers() -> None:
    scan3 = simulate_scan(n_side=3, layers=3, seed=2)
    obj_in = scan3.product.object_
    recon = (np.arange(obj_in.height_px * obj_in.width_px).reshape(obj_in.height_px, -1)
             * (1 + 1j)).astype(np.complex64)
    out = conversion.object_on_input_grid(recon, obj_in)
    assert out.num_layers == 3
    assert out.get_pixel_geometry() == obj_in.get_pixel_geometry()
    assert out.get_center() == obj_in.get_center()
    assert list(out.layer_spacing_m) == list(obj_in.layer_spacing_m)
    np.testing.assert_array_equal(out.get_layers_flattened(), recon)
    with pytest.raises(ValueError, match="input object grid is"):
        conversion.object_on_input_grid(recon[:-1], obj_in)


def test_training_inputs_from_standard_layout(scan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = write_standard_layout(tmp_path / "in", scan)
    out = tmp_path / "out"
    out.mkdir()
    train, test = export.training_inputs(folder, out)
    assert train == out / "train_data.npz" and test is None
    direct = tmp_path / "direct.npz"
    export.export_training_npz(direct, scan.reconstruct_input())
    with np.load(train) as a, np.load(direct) as b:
        for key in (*conversion.CONTRACT_KEYS, *conversion.OPTIONAL_KEYS):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # an exported train/test pair wins over the batch files
    (folder / "train_data.npz").write_bytes(direct.read_bytes())
    (folder / "test_data.npz").write_bytes(direct.read_bytes())
    assert export.training_inputs(folder, out) == (folder / "train_data.npz",
                                                   folder / "test_data.npz")
    with pytest.raises(FileNotFoundError, match="expected train_data.npz"):
        (tmp_path / "empty").mkdir()
        export.training_inputs(tmp_path / "empty", out)


def test_training_inputs_take_a_folders_only_npz(scan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "exports"
    folder.mkdir()
    only = folder / "my_scan_export.npz"
    export.export_training_npz(only, scan.reconstruct_input())
    assert export.training_inputs(folder, tmp_path) == (only, None)
    export.export_training_npz(folder / "second.npz", scan.reconstruct_input())
    with pytest.raises(FileNotFoundError, match="my_scan_export.npz, second.npz"):
        export.training_inputs(folder, tmp_path)


def test_losses_from_history_reads_train_or_validation_losses() -> None:
    losses_from_history = conversion.losses_from_history
    history = [{"epoch": 1, "train_loss": 2.0, "val_loss": None},
               {"epoch": 2, "train_loss": float("nan"), "val_loss": 1.5},
               {"epoch": 3, "train_loss": 1.0, "val_loss": 0.5}]
    assert [(v.epoch, v.value) for v in losses_from_history(history)] == [(1, 2.0), (3, 1.0)]
    assert [(v.epoch, v.value) for v in losses_from_history(history, "val_loss")] == [
        (2, 1.5), (3, 0.5)]
