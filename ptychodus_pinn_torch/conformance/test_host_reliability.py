"""HOST-120..121: a stalled or dead training worker inside ptychodus is reported, ended, and its
last checkpoint's model kept."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from ptychodus.api.settings import SettingsRegistry

from ptychodus_pinn_torch.conformance import DEFAULT_BACKEND
from ptychodus_pinn_torch.host.sample_data import simulate_scan
from ptychodus_pinn_torch.host.worker import WorkerDiedError, WorkerStalledError


@pytest.fixture()
def reconstructor(backend_name: str) -> Any:
    if backend_name != DEFAULT_BACKEND:
        pytest.skip(f"rule about the {DEFAULT_BACKEND} library")
    from ptychodus_pinn_torch.host.library import PtychoPINNTorchLibrary

    library = PtychoPINNTorchLibrary(SettingsRegistry())
    library.model_settings.num_filters_scale.set_value(1)
    library.training_settings.num_groups.set_value(25)
    library.training_settings.num_epochs.set_value(10_000)
    library.training_settings.batch_size.set_value("4")
    library.execution_settings.worker_stall_timeout.set_value(600.0)
    return library.reconstructor("PINN")


def _train_until(reconstructor: Any, tmp_path: Path, epochs: int) -> Any:
    scan = simulate_scan(n_side=5, step_px=6.0, seed=11)
    reconstructor.export_training_data(tmp_path / "train_data.npz", scan.reconstruct_input())
    generator = reconstructor.train(tmp_path, tmp_path)
    deadline = time.monotonic() + 180
    for output in generator:
        if output.progress >= epochs:
            return generator
        assert time.monotonic() < deadline
    raise AssertionError("training ended early")


@pytest.mark.spec("HOST-121")
def test_dead_worker_names_the_model_kept(reconstructor: Any, tmp_path: Path) -> None:
    generator = _train_until(reconstructor, tmp_path, 2)
    os.kill(reconstructor.last_worker_pid, signal.SIGKILL)
    with pytest.raises(WorkerDiedError, match=r"SIGKILL.* Kept and loaded the model of its "
                                              r"last checkpoint \(epoch \d+\): .*model.zip"):
        for _ in generator:
            pass
    assert reconstructor.is_model_loaded()


@pytest.mark.spec("HOST-120")
def test_sigstopped_worker_is_reported_and_ended(reconstructor: Any, tmp_path: Path) -> None:
    generator = _train_until(reconstructor, tmp_path, 1)
    pid = reconstructor.last_worker_pid
    os.kill(pid, signal.SIGSTOP)
    t0 = time.monotonic()
    with pytest.raises(WorkerStalledError, match=r"stalled: its process is stopped \(SIGSTOP.* "
                                                 r"the worker was ended\. Kept and loaded"):
        for _ in generator:
            assert time.monotonic() - t0 < 30
    assert time.monotonic() - t0 < 20
    assert reconstructor.is_model_loaded()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the stopped worker was not ended")


@pytest.mark.spec("DATA-124")
def test_host_reconstruct_drops_beam_off_frames(reconstructor: Any, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """ptychodus' Reconstruct with two beam-off frames: they are dropped with a warning and
    the object still lands on the input grid."""
    from dataclasses import replace

    import numpy as np
    import torch
    from ptychodus.api.assemble import AssembledDiffractionData

    from ptychodus_pinn_torch.config import spec
    from ptychodus_pinn_torch.engine.archive import ModelBundle, save_archive
    from ptychodus_pinn_torch.model import build_model

    scan = simulate_scan(n_side=5, step_px=6.0, seed=11)
    d = scan.diffraction
    data = np.array(d.get_patterns())
    data[[3, 8]] = 0  # the beam was off
    scan = replace(scan, diffraction=AssembledDiffractionData(
        np.asarray(d.get_indexes()), data, d.get_pixel_geometry(), d.get_bad_pixels()))
    torch.manual_seed(0)
    config = spec.ModelConfig(N=int(data.shape[-1]), n_filters_scale=1)
    probe = np.ones((config.N, config.N), np.complex64)
    model = build_model(config, probe=probe, intensity_scale=10.0)
    archive = save_archive(tmp_path / "model.zip", ModelBundle(
        model=model, model_config=config, intensity_scale=model.intensity_scale, probe=probe))
    reconstructor.load_model_from_file(archive)
    with caplog.at_level("WARNING"):
        outputs = list(reconstructor.reconstruct(scan.reconstruct_input()))
    assert "dropped 2 of 25 diffraction frames that are all zero (indices 3, 8" in caplog.text
    assert np.isfinite(outputs[0].product.object_.get_array()).all()
