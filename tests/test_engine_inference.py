"""Inference over a scan: grouping of every point, stitching on the data grid, canvas, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.config.spec import ModelConfig
from ptychodus_pinn_torch.data import RawData
from ptychodus_pinn_torch.data.simulate import simulate_scan
from ptychodus_pinn_torch.engine.archive import ModelBundle
from ptychodus_pinn_torch.engine.inference import covering_grid, reconstruct
from ptychodus_pinn_torch.model import build_model


@pytest.fixture(scope="module")
def scan() -> RawData:
    return simulate_scan(object_shape=(96, 96), seed=6, overlap=0.5, nphotons=1e6)


def untrained_bundle(scan: RawData, gridsize: int = 1) -> ModelBundle:
    cfg = ModelConfig(N=64, gridsize=gridsize, n_filters_scale=1)
    torch.manual_seed(0)
    model = build_model(cfg, probe=scan.probeGuess, intensity_scale=31.25)
    return ModelBundle(model=model, model_config=cfg, intensity_scale=31.25,
                       probe=model.probe.detach().numpy())


def test_object_on_data_grid_every_position_contributes(scan: RawData) -> None:
    bundle = untrained_bundle(scan)
    rec = reconstruct(bundle, scan, batch_size=5, device="cpu", canvas=True)
    assert rec.object.shape == scan.objectGuess.shape and rec.object.dtype == np.complex64
    assert rec.coverage.shape == scan.objectGuess.shape and rec.coverage.dtype == np.float32
    assert rec.on_data_grid and rec.note == "" and rec.origin == (0.0, 0.0)
    assert rec.patches.shape == (scan.n_positions, 64, 64)
    # group centres are the scan positions themselves at gridsize 1, in scan order
    np.testing.assert_allclose(rec.centres[:, 0], scan.xcoords)
    np.testing.assert_allclose(rec.centres[:, 1], scan.ycoords)
    rows = np.rint(scan.ycoords).astype(int)
    cols = np.rint(scan.xcoords).astype(int)
    assert (rec.coverage[rows, cols] > 0).all()
    assert rec.canvas is not None and rec.canvas.ndim == 3 and rec.canvas.shape[-1] == 1


def test_patches_equal_direct_model_call_and_batching_does_not_matter(scan: RawData) -> None:
    bundle = untrained_bundle(scan)
    a = reconstruct(bundle, scan, batch_size=3, device="cpu")
    b = reconstruct(bundle, scan, batch_size=64, device="cpu")
    np.testing.assert_allclose(a.patches, b.patches, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.object, b.object, rtol=1e-5, atol=1e-6)
    # independent: normalize X_full as upstream (E sum X^2 = (N/2)^2) and call the model
    d = scan.diff3d.astype(np.float64)
    s_norm = np.sqrt(32.0**2 / np.mean(np.sum(d**2, axis=(1, 2))))
    x = torch.from_numpy((d * s_norm * 31.25).astype(np.float32))[:, None]
    with torch.no_grad():
        direct = bundle.model.diffraction_to_obj(x, torch.zeros(len(d), 1, 2)).numpy()
    raw = reconstruct(bundle, scan, batch_size=7, device="cpu", phase_sync=False)
    np.testing.assert_allclose(raw.patches, direct, rtol=1e-4, atol=1e-5)


def test_single_position_stitches_patch_centre_onto_its_pixel(scan: RawData) -> None:
    one = RawData(np.array([47.0]), np.array([50.0]), None, None, scan.diff3d[5:6],
                  scan.probeGuess, None, objectGuess=scan.objectGuess)
    rec = reconstruct(untrained_bundle(scan), one, device="cpu")
    np.testing.assert_allclose(rec.object[50, 47], rec.patches[0, 32, 32], rtol=1e-5)
    np.testing.assert_allclose(rec.object[40, 55], rec.patches[0, 22, 40], rtol=1e-5)
    # only the central N/2 = 32 pixels of the patch are stitched: rows 34..65, cols 31..62
    cov = rec.coverage > 0
    assert cov[34:66, 31:63].all() and cov.sum() == 32 * 32


def test_without_object_guess_the_grid_covers_positions_and_says_so(scan: RawData) -> None:
    bare = RawData(scan.xcoords + 500.0, scan.ycoords - 20.0, None, None, scan.diff3d,
                   scan.probeGuess, None)
    rec = reconstruct(untrained_bundle(scan), bare, device="cpu")
    assert not rec.on_data_grid and "no objectGuess" in rec.note
    (h, w), (x0, y0) = covering_grid(bare.xcoords, bare.ycoords, 64)
    assert rec.object.shape == (h, w) and rec.origin == (x0, y0)
    assert x0 <= bare.xcoords.min() - 32 and y0 <= bare.ycoords.min() - 32
    assert x0 + w - 1 >= bare.xcoords.max() + 32 and y0 + h - 1 >= bare.ycoords.max() + 32
    rows = np.rint(bare.ycoords - y0).astype(int)
    cols = np.rint(bare.xcoords - x0).astype(int)
    assert (rec.coverage[rows, cols] > 0).all()


def test_gridsize_two_groups_every_point_and_stitches_at_group_centres(scan: RawData) -> None:
    bundle = untrained_bundle(scan, gridsize=2)
    rec = reconstruct(bundle, scan, device="cpu")
    assert rec.patches.shape == (scan.n_positions, 64, 64)
    assert rec.object.shape == scan.objectGuess.shape
    assert np.isfinite(rec.object).all()


def test_neighbor_count_argument_decides_the_groups(scan: RawData) -> None:
    """ptychodus' NumNearestNeighbors arrives as reconstruct(neighbor_count=...); without it the
    bundle's training value (4 when there is none) groups the points."""
    bundle = untrained_bundle(scan, gridsize=2)
    default = reconstruct(bundle, scan, device="cpu")
    four = reconstruct(bundle, scan, device="cpu", neighbor_count=4)
    eight = reconstruct(bundle, scan, device="cpu", neighbor_count=8)
    np.testing.assert_array_equal(default.centres, four.centres)
    assert not np.allclose(eight.centres, four.centres)
    with pytest.raises(ValueError, match="neighbor_count"):
        reconstruct(bundle, scan, device="cpu", neighbor_count=0)


def test_bad_arguments_are_value_errors(scan: RawData) -> None:
    bundle = untrained_bundle(scan)
    with pytest.raises(ValueError, match="batch_size"):
        reconstruct(bundle, scan, batch_size=0)
    with pytest.raises(ValueError, match="device"):
        reconstruct(bundle, scan, device="tpu")
    small = simulate_scan(N=128, object_shape=(160, 160), seed=1, overlap=0.2)
    with pytest.raises(ValueError, match="ModelConfig.N = 64"):
        reconstruct(bundle, small, device="cpu")
