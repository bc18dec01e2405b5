"""API-160..162: the Python API (specs/API.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch import api
from ptychodus_pinn_torch.cli.main import main


@pytest.fixture(scope="module")
def scan():  # type: ignore[no-untyped-def]
    return api.simulate(seed=4, object_shape=(96, 96), nphotons=1e6)


@pytest.fixture(scope="module")
def trained(scan):  # type: ignore[no-untyped-def]
    config = {"nepochs": 1, "n_groups": 32, "batch_size": 16, "model": {"n_filters_scale": 1}}
    return api.train(scan, config, seed=0, device="cpu", early_stop_patience=None)


@pytest.mark.spec("API-160")
def test_api_import_is_torch_free() -> None:
    code = "import sys, ptychodus_pinn_torch.api as a; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "False", proc.stderr


@pytest.mark.spec("API-160")
def test_json_and_yaml_give_the_same_config_with_overrides(tmp_path: Path) -> None:
    content = {"nepochs": 7, "batch_size": 8, "model": {"gridsize": 2, "N": 128}}
    (tmp_path / "c.json").write_text(json.dumps(content))
    (tmp_path / "c.yaml").write_text(
        "nepochs: 7\nbatch_size: 8\nmodel:\n  gridsize: 2\n  N: 128\n"
    )
    a = api.load_config(tmp_path / "c.json")
    b = api.load_config(tmp_path / "c.yaml")
    assert a == b and a.nepochs == 7 and a.model.gridsize == 2 and a.model.N == 128
    c = api.load_config(tmp_path / "c.yaml", {"model.n_filters_scale": 1}, nepochs=3)
    assert c.nepochs == 3 and c.model.n_filters_scale == 1 and c.model.gridsize == 2
    assert api.load_config(c) == c
    assert api.load_config().nepochs == 50  # upstream default


@pytest.mark.spec("API-161")
def test_save_load_predict_round_trip(  # type: ignore[no-untyped-def]
    tmp_path: Path, scan, trained
) -> None:
    from ptychodus_pinn_torch.engine.inference import reconstruct

    path = trained.save(tmp_path / "run")
    assert path == tmp_path / "run" / "wts.h5.zip" and path.is_file()
    loaded = api.Model.load(path)
    assert loaded.config == trained.config and loaded.history == []
    scan.to_file(tmp_path / "scan.npz")
    a = api.predict_and_stitch(trained, scan, device="cpu")
    b = api.predict_and_stitch(path, tmp_path / "scan.npz", device="cpu")
    direct = reconstruct(trained.bundle, scan, device="cpu")
    assert a.object.shape == scan.objectGuess.shape and a.on_data_grid
    np.testing.assert_array_equal(a.object, b.object)
    np.testing.assert_array_equal(a.object, direct.object)
    # streamed like the CLI (no whole patches kept) unless asked for them
    assert a.patches is None and b.patches is None
    kept = api.predict_and_stitch(trained, scan, device="cpu", keep_patches=True)
    assert kept.patches is not None and kept.patches.shape[-2:] == (scan.N, scan.N)
    np.testing.assert_array_equal(kept.object, a.object)


@pytest.mark.spec("API-162")
def test_train_takes_n_and_nphotons_from_the_data(  # type: ignore[no-untyped-def]
    scan, trained
) -> None:
    assert len(trained.history) == 1 and len(trained.losses) == 1
    assert trained.config.N == scan.N and trained.config.n_filters_scale == 1
    assert all(np.isfinite(trained.losses))
    # intensity scale starts at upstream's sqrt(nphotons)/(N/2) for the data's nphotons (1e6)
    assert trained.intensity_scale == pytest.approx(np.sqrt(1e6) / 32, rel=0.05)


@pytest.mark.spec("API-162")
def test_api_train_equals_pinn_torch_train(  # type: ignore[no-untyped-def]
    tmp_path: Path, scan, trained
) -> None:
    scan.to_file(tmp_path / "scan.npz")
    rc = main(["train", "--train", str(tmp_path / "scan.npz"), "--out", str(tmp_path / "run"),
               "--epochs", "1", "--n-groups", "32", "--batch-size", "16",
               "--n-filters-scale", "1", "--seed", "0", "--device", "cpu",
               "--early-stop-patience", "0", "--no-progress"])
    assert rc == 0
    cli = api.Model.load(tmp_path / "run" / "wts.h5.zip")
    mine = trained.bundle.model.state_dict()
    theirs = cli.bundle.model.state_dict()
    assert mine.keys() == theirs.keys()
    for key in mine:
        torch.testing.assert_close(mine[key], theirs[key], rtol=0, atol=0, msg=key)
    history = json.loads((tmp_path / "run" / "history.json").read_text())["epochs"]
    assert [e["train_loss"] for e in history] == pytest.approx(trained.losses, rel=1e-12)
    again = api.train(scan, {"nepochs": 1, "n_groups": 32, "model": {"n_filters_scale": 1}},
                      out_dir=tmp_path / "api_run", seed=0, device="cpu",
                      early_stop_patience=None)
    assert (tmp_path / "api_run" / "wts.h5.zip").is_file()
    assert (tmp_path / "api_run" / "history.json").is_file()
    assert again.losses == trained.losses


@pytest.mark.spec("API-163")
def test_simulate_a_set_of_experiments(tmp_path: Path) -> None:
    from ptychodus_pinn_torch.data import RawData
    from ptychodus_pinn_torch.data.experiment_sets import simulate_experiments

    scans = api.simulate(tmp_path / "set.npz", experiments=2, seed=3, object_shape=(80, 80),
                         N=32, beamstop_diameter=4.0)
    direct = simulate_experiments(2, seed=3, object_shape=(80, 80), N=32, beamstop_diameter=4.0)
    assert isinstance(scans, list) and len(scans) == 2
    for i, (a, b) in enumerate(zip(scans, direct, strict=True)):
        back = RawData.from_file(tmp_path / f"set_{i}.npz")
        np.testing.assert_array_equal(a.diff3d, b.diff3d)
        np.testing.assert_array_equal(back.diff3d, b.diff3d)
        assert back.bad_pixels is not None and back.bad_pixels.sum() == 13
