"""``pinn-torch reconstruct --png X.png`` on data with a true object: ``X_vs_truth.png`` shows
truth, network and refined object side by side, and the SSIMs it prints are those of
``ptychodus_pinn_torch.eval`` on the saved objects."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ptychodus_pinn_torch.cli.main import main
from ptychodus_pinn_torch.config.spec import ModelConfig
from ptychodus_pinn_torch.data.simulate import simulate_scan
from ptychodus_pinn_torch.engine.archive import ModelBundle, save_archive
from ptychodus_pinn_torch.engine.reporting import plot_comparison
from ptychodus_pinn_torch.eval import evaluate, scanned_box
from ptychodus_pinn_torch.model import build_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp("vs_truth")
    scan = simulate_scan(object_shape=(80, 80), seed=21, overlap=0.7, nphotons=1e6)
    cfg = ModelConfig(N=64, n_filters_scale=1)
    model = build_model(cfg, probe=scan.probeGuess, intensity_scale=31.25)  # untrained
    save_archive(folder / "wts.h5.zip", ModelBundle(model=model, model_config=cfg,
                                                    intensity_scale=31.25,
                                                    probe=model.probe.detach().numpy()))
    scan.to_file(folder / "scan.npz")
    return folder, scan


def _args(folder: Path, out: str) -> list[str]:
    return ["reconstruct", "--model", str(folder / "wts.h5.zip"), "--data",
            str(folder / "scan.npz"), "--out", str(folder / f"{out}.npz"), "--device", "cpu",
            "--png", str(folder / f"{out}.png")]


def test_truth_network_and_refined_side_by_side(setup: tuple[Path, object],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder, scan = setup
    assert main([*_args(folder, "rec"), "--refine-epochs", "10"]) == 0
    out = capsys.readouterr().out
    picture = folder / "rec_vs_truth.png"
    assert picture.is_file() and picture.stat().st_size > 20_000
    assert str(picture) in out
    match = re.search(r"SSIM against the data's objectGuess \(amplitude / phase\): network "
                      r"([\d.]+) / ([\d.]+); network \+ refinement ([\d.]+) / ([\d.]+)", out)
    assert match, out
    printed = [float(v) for v in match.groups()]
    truth = scan.objectGuess
    box = scanned_box(scan.xcoords, scan.ycoords, truth.shape)
    with np.load(folder / "rec.npz") as z:
        network = evaluate(z["network_object"], truth, box=box)
        refined = evaluate(z["object"], truth, box=box)
    expected = [network.amplitude_ssim, network.phase_ssim, refined.amplitude_ssim,
                refined.phase_ssim]
    np.testing.assert_allclose(printed, expected, atol=6e-4)
    # an untrained network knows nothing of the object; 10 refinement epochs recover it
    assert refined.amplitude_ssim > network.amplitude_ssim + 0.2, printed
    # one line per refinement pass with its NLL and SSIM (ENG-014); the last is the saved object
    epochs = re.findall(r"refinement epoch (\d+)/10: Poisson NLL (\S+) per pixel, SSIM against "
                        r"objectGuess ([\d.]+) / ([\d.]+) \(amplitude / phase\)", out)
    assert [int(e[0]) for e in epochs] == list(range(1, 11)), out
    ssims = np.array([[float(e[2]), float(e[3])] for e in epochs])
    np.testing.assert_allclose(ssims[-1], [refined.amplitude_ssim, refined.phase_ssim], atol=6e-4)
    assert ssims[-1, 0] > ssims[0, 0] + 0.05, ssims  # the amplitude improves over the passes
    nll = np.array([float(e[1]) for e in epochs])
    assert nll[-1] < nll[0], nll


def test_no_truth_picture_without_a_truth(setup: tuple[Path, object],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    folder, scan = setup
    assert main([*_args(folder, "plain"), "--no-truth", "--refine-epochs", "1"]) == 0
    assert not (folder / "plain_vs_truth.png").exists()
    out = capsys.readouterr().out
    assert "SSIM" not in out
    assert re.search(r"refinement epoch 1/1: Poisson NLL \S+ per pixel, [\d.]+s", out), out
    flat = type(scan).from_coords_without_pc(
        xcoords=scan.xcoords, ycoords=scan.ycoords, diff3d=scan.diff3d,
        probeGuess=scan.probeGuess, scan_index=scan.scan_index,
        objectGuess=np.ones_like(scan.objectGuess), diffraction_kind="amplitude")
    flat.to_file(folder / "scan.npz")  # a flat initial guess is no truth
    try:
        assert main(_args(folder, "flat")) == 0
        assert not (folder / "flat_vs_truth.png").exists()
        assert (folder / "flat.png").is_file()
    finally:
        scan.to_file(folder / "scan.npz")
    with pytest.raises(ValueError, match="at least one"):
        plot_comparison(folder / "x.png", [])
