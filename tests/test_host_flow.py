"""End to end inside a real ptychodus ModelCore: export -> train -> reconstruct, Stop, and a
killed training worker. Tiny data (N=64, 16-25 positions, 1 epoch, NumFiltersScale 1)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ptychodus_pinn_torch.host import install as install_mod
from ptychodus_pinn_torch.host import plugins
from ptychodus_pinn_torch.host.sample_data import simulate_scan, write_standard_layout
from ptychodus_pinn_torch.host.worker import WorkerDiedError

PINN = "ptychopinn-pytorch_pinn"


@pytest.fixture()
def session(tmp_path: Path) -> Iterator[tuple[Any, Any, Any]]:
    """(model core, product workflow API, our library) with a 5x5 simulated scan loaded."""
    from ptychodus.model.core import ModelCore

    plugins.reset_plugin_manager()
    install_mod.install(gui=False)
    folder = write_standard_layout(tmp_path / "scan", simulate_scan(n_side=5, seed=3))
    with ModelCore() as model:
        library = install_mod.libraries_of(model.processing_core.processing_api)[0]
        library.model_settings.num_filters_scale.set_value(1)
        library.training_settings.num_groups.set_value(25)
        library.training_settings.num_epochs.set_value(1)
        diffraction = model.workflow_api.load_assembled_diffraction_data(
            folder / "diffraction.h5")
        product = model.workflow_api.load_product(folder / "product.h5",
                                                  diffraction=diffraction)
        yield model, product, library


def _wait(model: Any, snapshot: int, timeout: float) -> None:
    monitor = model.processing_core.processing_api.task_monitor
    deadline = time.monotonic() + timeout
    while not monitor.wait_for_completion_after(snapshot, timeout=0.1):
        model._task_manager.run_foreground_tasks()
        assert time.monotonic() < deadline, "task did not finish in time"
    model._task_manager.run_foreground_tasks()


def test_export_train_reconstruct(session: tuple[Any, Any, Any], tmp_path: Path) -> None:
    model, product, library = session
    work = tmp_path / "work"
    work.mkdir()
    product.export_training_data(work / "train_data.npz", algorithm=PINN)
    assert (work / "train_data.npz").is_file()
    api = model.processing_core.processing_api
    monitor = api.task_monitor
    seen: list[int] = []
    monitor.add_observer(type("O", (), {"_update": lambda self, o: seen.append(
        monitor.get_progress())})())
    product.train_reconstructor_local(work, work, algorithm=PINN, block=True)
    reconstructor = library.reconstructor("PINN")
    assert reconstructor.is_model_loaded()  # Infer is possible at once
    assert (work / "model.zip").is_file()
    assert 1 in seen  # progress reached epoch 1 of 1
    history = json.loads((work / "history.json").read_text())  # as `pinn-torch train` writes
    assert [e["epoch"] for e in history["epochs"]] == [1] and "device" in history

    out = product.reconstruct_local(algorithm=PINN, block=True).get_product()
    obj_in, obj_out = product.get_product().object_, out.object_
    assert obj_out.get_array().shape == obj_in.get_array().shape
    assert obj_out.get_pixel_geometry() == obj_in.get_pixel_geometry()
    assert obj_out.get_center() == obj_in.get_center()
    assert np.isfinite(obj_out.get_array()).all()
    assert [loss.epoch for loss in out.losses] == [1]  # the GUI loss plot reads these

    # the saved model loads again and gives the same object
    other = tmp_path / "copy.zip"
    api.save_model_to_file(other, algorithm=PINN)
    api.load_model_from_file(other, algorithm=PINN)
    again = product.reconstruct_local(algorithm=PINN, block=True).get_product()
    np.testing.assert_allclose(again.object_.get_array(), obj_out.get_array(), rtol=0,
                               atol=1e-5)

    # [PINNTorchExecution] RefineEpochs adds the physics refinement (ENG-014)
    library.execution_settings["RefineEpochs"].set_value(2)
    refined = product.reconstruct_local(algorithm=PINN, block=True).get_product()
    refined_obj = refined.object_.get_array()
    assert refined_obj.shape == obj_out.get_array().shape and np.isfinite(refined_obj).all()
    assert not np.allclose(refined_obj, obj_out.get_array(), atol=1e-5)


def test_stop_ends_training_within_about_a_second(session: tuple[Any, Any, Any],
                                                  tmp_path: Path) -> None:
    model, product, library = session
    library.training_settings.num_epochs.set_value(10_000)
    # Stop is seen before the next batch: its latency is at most one batch plus saving; small
    # batches keep that well below the bound on this shared 2-core CPU
    library.training_settings.batch_size.set_value("4")
    work = tmp_path / "work"
    product.export_training_data(work / "train_data.npz", algorithm=PINN)
    api = model.processing_core.processing_api
    snapshot = api.task_monitor.get_completed_runs()
    product.train_reconstructor_local(work, work, algorithm=PINN, block=False)
    deadline = time.monotonic() + 90
    while api.task_monitor.get_progress() < 1:  # one finished epoch = one checkpoint
        assert time.monotonic() < deadline, "no epoch finished"
        time.sleep(0.05)
    t0 = time.monotonic()
    api.task_monitor.stop_processing()
    _wait(model, snapshot, timeout=15)
    elapsed = time.monotonic() - t0
    reconstructor = library.reconstructor("PINN")
    assert api.task_monitor.get_last_error() is None
    assert reconstructor.last_stop_latency_s is not None
    assert reconstructor.last_stop_latency_s < 1.5, reconstructor.last_stop_latency_s
    assert elapsed < 4.0, elapsed  # includes loading the saved model
    assert reconstructor.is_model_loaded()
    assert (work / "checkpoints" / "checkpoint.pt").is_file()
    assert reconstructor.last_train_result is not None
    assert reconstructor.last_train_result["stopped"]
    deadline = time.monotonic() + 20  # the child exits on its own after its result
    while _alive(reconstructor.last_worker_pid):
        assert time.monotonic() < deadline, "the stopped worker did not exit"
        time.sleep(0.1)


def test_killed_worker_is_a_clear_error_not_a_hang(session: tuple[Any, Any, Any],
                                                   tmp_path: Path) -> None:
    model, product, library = session
    library.training_settings.num_epochs.set_value(10_000)
    work = tmp_path / "work"
    product.export_training_data(work / "train_data.npz", algorithm=PINN)
    api = model.processing_core.processing_api
    reconstructor = library.reconstructor("PINN")
    reconstructor.last_worker_pid = None
    snapshot = api.task_monitor.get_completed_runs()
    product.train_reconstructor_local(work, work, algorithm=PINN, block=False)
    deadline = time.monotonic() + 30
    while reconstructor.last_worker_pid is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)
    t0 = time.monotonic()
    os.kill(reconstructor.last_worker_pid, signal.SIGKILL)  # as the OOM killer would
    _wait(model, snapshot, timeout=10)
    assert time.monotonic() - t0 < 5.0
    error = api.task_monitor.get_last_error()
    assert isinstance(error, WorkerDiedError)
    assert "killed by SIGKILL" in str(error) and "out-of-memory" in str(error)
    assert not reconstructor.is_model_loaded()


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers; check its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


TF_FIXTURE = Path(__file__).parent / "tf_fixture" / "tf_wts.h5.zip"


def test_load_model_converts_a_tensorflow_archive(session: tuple[Any, Any, Any],
                                                   tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """HOST-170: Load Model... with upstream's TF wts.h5.zip converts it in memory with the
    loaded product's probe and NumPhotons; Save Model... writes our archive."""
    import logging

    from ptychodus_pinn_torch.engine.archive import load_archive
    from ptychodus_pinn_torch.engine.tf_import import import_tf_archive

    model, product, library = session
    api = model.processing_core.processing_api
    library.training_settings["NumPhotons"].set_value(4e6)
    (tmp_path / "tf").mkdir()
    tf_copy = tmp_path / "tf" / "tf_wts.h5.zip"
    tf_copy.write_bytes(TF_FIXTURE.read_bytes())
    with caplog.at_level(logging.INFO, logger="ptychodus_pinn_torch"):
        api.load_model_from_file(tf_copy, algorithm=PINN)
    reconstructor = library.reconstructor("PINN")
    assert reconstructor.is_model_loaded()
    assert reconstructor.model_path is None  # converted in memory
    assert [p.name for p in tf_copy.parent.iterdir()] == ["tf_wts.h5.zip"]  # nothing written
    assert any("converted the TensorFlow model" in r.getMessage() for r in caplog.records)
    probe = product.get_product().probes.get_probe_no_opr().get_array()[0]
    expected = import_tf_archive(TF_FIXTURE, probe.astype(np.complex64), nphotons=4e6)
    saved = tmp_path / "saved" / "model.zip"
    saved.parent.mkdir()
    api.save_model_to_file(saved, algorithm=PINN)
    got = load_archive(saved)
    assert got.intensity_scale == pytest.approx(np.sqrt(4e6) / 32, rel=1e-6)
    np.testing.assert_array_equal(got.probe, expected.probe)
    for key, value in expected.model.state_dict().items():
        assert np.array_equal(got.model.state_dict()[key].numpy(), value.numpy()), key
    out = product.reconstruct_local(algorithm=PINN, block=True).get_product()
    assert np.isfinite(out.object_.get_array()).all()


def test_load_tensorflow_model_without_a_product_says_what_to_load(tmp_path: Path) -> None:
    from ptychodus.model.core import ModelCore

    plugins.reset_plugin_manager()
    install_mod.install(gui=False)
    with ModelCore() as model:
        library = install_mod.libraries_of(model.processing_core.processing_api)[0]
        with pytest.raises(ValueError, match="load the product .* first"):
            model.processing_core.processing_api.load_model_from_file(TF_FIXTURE,
                                                                      algorithm=PINN)
        assert not library.reconstructor("PINN").is_model_loaded()
