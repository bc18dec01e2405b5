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
