"""Conformance tests of the ptychodus integration (specs/HOST.md).

The reconstructor library under test comes from the plugin named by ``--backend`` (entry point
of group ``ptychodus_pinn_torch.plugins``, default this package's ``ptychodus-pinn-torch``):
it is loaded through :func:`ptychodus_pinn_torch.host.plugins.load_plugin` and built with a real
ptychodus ``SettingsRegistry``. Rules about this package's own library (names, settings, model
files, the training worker) are skipped for other backends.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ptychodus.api.reconstruct import ReconstructorLibrary, TrainableReconstructor
from ptychodus.api.settings import SettingsRegistry

from ptychodus_pinn_torch.conformance import DEFAULT_BACKEND
from ptychodus_pinn_torch.host import hookspecs, plugins
from ptychodus_pinn_torch.host import install as install_mod
from ptychodus_pinn_torch.host.sample_data import simulate_scan

OURS = DEFAULT_BACKEND  # the rules about this package's own library run only against it
BUILT_IN_LIBRARIES = ("pty-chi", "PtychoNN", "PtychoPINN", "PtychoPINN-Torch", "PtychoFM")
BUILT_IN_GROUP_PREFIXES = ("PtychoPINN", "PtychoNN", "PtyChi", "PtychoFM", "Processing")


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def manager(backend_name: str) -> Any:
    return plugins.load_plugin(backend_name)


def _build_libraries(manager: Any, registry: SettingsRegistry) -> list[Any]:
    results = manager.hook.reconstructor_libraries(settings_registry=registry,
                                                   is_developer_mode_enabled=False)
    libraries: list[Any] = []
    for result in results:
        libraries.extend([result] if isinstance(result, ReconstructorLibrary) else result)
    return libraries


@pytest.fixture(scope="module")
def libraries(manager: Any) -> list[Any]:
    return _build_libraries(manager, SettingsRegistry())


@pytest.fixture()
def ours(backend_name: str) -> None:
    if backend_name != OURS:
        pytest.skip(f"rule about the {OURS} library; backend under test is {backend_name}")


@pytest.fixture(scope="module")
def scan() -> Any:
    return simulate_scan(n_side=5, step_px=6.0, bad_pixel_count=2, seed=11)


def _our_library() -> Any:
    from ptychodus_pinn_torch.host.library import PtychoPINNTorchLibrary

    library = PtychoPINNTorchLibrary(SettingsRegistry())
    library.model_settings.num_filters_scale.set_value(1)
    library.training_settings.num_groups.set_value(25)
    library.training_settings.num_epochs.set_value(1)
    return library


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def trained(backend_name: str, scan: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One full 1-epoch training of PINN with its outputs, timings and log records."""
    if backend_name != OURS:
        pytest.skip("training rules are tested on this package's library")
    library = _our_library()
    reconstructor = library.reconstructor("PINN")
    work = tmp_path_factory.mktemp("trained")
    reconstructor.export_training_data(work / "train_data.npz", scan.reconstruct_input())
    handler = _Records()
    logger = library.get_logger()
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    outputs, stamps = [], []
    try:
        for output in reconstructor.train(work, work):
            outputs.append(output)
            stamps.append(time.monotonic())
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return {"library": library, "reconstructor": reconstructor, "work": work,
            "outputs": outputs, "stamps": stamps, "records": handler.records}


# ------------------------------------------------------------------------------ rules
@pytest.mark.spec("HOST-001")
def test_hooks_and_entry_point(manager: Any, backend_name: str) -> None:
    specs = {name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name),
                                                        "ptychodus_pinn_torch_spec")}
    assert specs == {"reconstructor_libraries", "reconstructor_view_controller_factories"}
    assert hookspecs.ENTRY_POINT_GROUP == "ptychodus_pinn_torch.plugins"
    assert manager.get_plugin(backend_name) is not None
    manager.check_pending()  # every hookimpl matches a hookspec
    impls = manager.hook.reconstructor_libraries.get_hookimpls()
    assert impls, f"{backend_name} implements no reconstructor_libraries hook"
    with pytest.raises(ValueError, match=r"backend 'no-such-plugin' is not registered .* "
                                         r"registered: \[.*'" + backend_name + "'"):
        plugins.load_plugin("no-such-plugin")


@pytest.mark.spec("HOST-002")
def test_library_and_reconstructor_names(libraries: list[Any]) -> None:
    assert libraries
    built_in = {n.casefold() for n in BUILT_IN_LIBRARIES}
    names = [lib.name for lib in libraries]
    assert len({n.casefold() for n in names}) == len(names)
    for library in libraries:
        assert isinstance(library, ReconstructorLibrary)
        assert library.name and "_" not in library.name, library.name
        assert library.name.casefold() not in built_in, library.name
        reconstructors = list(library)
        assert reconstructors, f"{library.name} has no reconstructors"
        rnames = [r.name.casefold() for r in reconstructors]
        assert len(set(rnames)) == len(rnames)
        for r in reconstructors:
            if isinstance(r, TrainableReconstructor):
                assert r.get_model_file_extension().startswith(".")


@pytest.mark.spec("HOST-003")
def test_install_adds_backend_once(manager: Any) -> None:
    from ptychodus.model.core import ModelCore
    from ptychodus.model.processing.core import ProcessingCore

    install_mod.uninstall()
    plugins.reset_plugin_manager()
    try:
        assert install_mod.install(gui=False)
        wrapped = ProcessingCore.__init__
        assert install_mod.install(gui=False)
        assert ProcessingCore.__init__ is wrapped
        keys = list(ModelCore().processing_core.processing_api.available_reconstructors())
        for library in _build_libraries(manager, SettingsRegistry()):
            for r in library:
                key = f"{library.name}_{r.name}".casefold()
                assert keys.count(key) == 1, (key, keys)
        install_mod.uninstall()
        assert not hasattr(ProcessingCore.__init__, "__ptychodus_pinn_torch_wrapped__")
    finally:
        install_mod.uninstall()
        plugins.reset_plugin_manager()


class _Raises:
    @hookspecs.hookimpl
    def reconstructor_libraries(self, settings_registry: Any,
                                is_developer_mode_enabled: bool) -> Any:
        raise RuntimeError("broken plugin")


class _WrongType:
    @hookspecs.hookimpl
    def reconstructor_libraries(self, settings_registry: Any,
                                is_developer_mode_enabled: bool) -> Any:
        return ["not a library"]


@pytest.mark.spec("HOST-004")
def test_fail_open(manager: Any, caplog: pytest.LogCaptureFixture) -> None:
    from ptychodus.model.core import ModelCore

    install_mod.uninstall()
    plugins.reset_plugin_manager()
    try:
        install_mod.install(gui=False)
        global_manager = plugins.get_plugin_manager()
        global_manager.register(_Raises(), name="raises")
        global_manager.register(_WrongType(), name="wrong-type")
        with caplog.at_level(logging.ERROR):
            keys = list(ModelCore().processing_core.processing_api.available_reconstructors())
        library = _build_libraries(manager, SettingsRegistry())[0]
        assert f"{library.name}_{next(iter(library)).name}".casefold() in keys
        assert "plugin 'raises' failed" in caplog.text
        assert "plugin 'wrong-type'" in caplog.text and "not a ptychodus" in caplog.text
    finally:
        install_mod.uninstall()
        plugins.reset_plugin_manager()

    import importlib.util

    import ptychodus_pinn_torch

    autoload = (Path(ptychodus_pinn_torch.__file__).resolve().parents[1] / "autoload" /
                "ptychodus" / "plugins" / "ptychodus_pinn_torch_autoload.py")
    if not autoload.is_file():  # installed package: the module sits in ptychodus/plugins
        import ptychodus

        autoload = Path(ptychodus.__file__).parent / "plugins" / autoload.name
    spec = importlib.util.spec_from_file_location("_autoload_under_test", autoload)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    original = install_mod.install
    try:
        install_mod.install = lambda **kw: (_ for _ in ()).throw(RuntimeError("boom"))
        module.register_plugins(None)  # must not raise
    finally:
        install_mod.install = original


@pytest.mark.spec("HOST-005")
def test_our_library_names_settings_defaults(ours: None) -> None:
    from ptychodus.model.core import ModelCore

    from ptychodus_pinn_torch.host.library import PtychoPINNTorchLibrary
    from ptychodus_pinn_torch.host.settings import GROUP_NAMES, PARAMETERS

    install_mod.install(gui=False)
    # ptychodus' built-in libraries create their groups before our hook runs; a collision
    # would make create_group raise there and our library would be missing from the core
    core = ModelCore()
    libraries = install_mod.libraries_of(core.processing_core.processing_api)
    assert [type(lib) for lib in libraries] == [PtychoPINNTorchLibrary]
    library = libraries[0]
    builtin_groups = set(core.settings_registry) - set(GROUP_NAMES.values())
    assert set(GROUP_NAMES.values()) <= set(core.settings_registry)
    assert library.name == "PtychoPINN-PyTorch"
    assert [r.name for r in library] == ["PINN", "Supervised"]
    assert [r.model_type for r in library] == ["pinn", "supervised"]
    assert library.get_logger().name == "ptychodus_pinn_torch"
    assert set(GROUP_NAMES.values()) == {"PINNTorchModel", "PINNTorchTraining",
                                         "PINNTorchInference", "PINNTorchExecution"}
    assert not set(GROUP_NAMES.values()) & builtin_groups
    expected = {
        ("PINNTorchModel", "GridSize"): 1, ("PINNTorchModel", "NumFiltersScale"): 2,
        ("PINNTorchModel", "AmpActivation"): "sigmoid", ("PINNTorchModel", "ObjectBig"): True,
        ("PINNTorchModel", "ProbeBig"): True, ("PINNTorchModel", "ProbeMask"): False,
        ("PINNTorchModel", "PadObject"): True, ("PINNTorchModel", "ProbeScale"): 4.0,
        ("PINNTorchModel", "GaussianSmoothingSigma"): 0.0,
        ("PINNTorchTraining", "NumPhotons"): 1e6, ("PINNTorchTraining", "BatchSize"): "16",
        ("PINNTorchTraining", "NumEpochs"): 50, ("PINNTorchTraining", "MAEWeight"): 0.0,
        ("PINNTorchTraining", "NLLWeight"): 1.0,
        ("PINNTorchTraining", "RealspaceMAEWeight"): 0.0,
        ("PINNTorchTraining", "RealspaceWeight"): 0.0,
        ("PINNTorchTraining", "ProbeTrainable"): False,
        ("PINNTorchTraining", "IntensityScaleTrainable"): True,
        ("PINNTorchInference", "NumNearestNeighbors"): 7,
    }
    # no inference knob that would change nothing (one group per scan point, ENG-008)
    assert "NumSamples" not in core.settings_registry["PINNTorchInference"].parameters()
    assert "NumGroups" not in core.settings_registry["PINNTorchInference"].parameters()
    for (group, name), default in expected.items():
        assert core.settings_registry[group].parameters()[name].get_value() == default, name
    by_name = {(p.group, p.name): p for p in PARAMETERS}
    assert by_name[("PINNTorchModel", "AmpActivation")].choices == (
        "sigmoid", "swish", "softplus", "relu")
    # every model/training parameter is a field of the spec configs the engine uses
    from ptychodus_pinn_torch.config.spec import ModelConfig, TrainingConfig

    fields = set(ModelConfig.__dataclass_fields__) | set(TrainingConfig.__dataclass_fields__)
    for p in PARAMETERS:
        if p.section in ("model", "training"):
            assert p.spec_field in fields, p


@pytest.mark.spec("HOST-006")
def test_settings_file_applies_and_saves(ours: None, tmp_path: Path) -> None:
    import configparser

    from ptychodus.model.core import ModelCore

    install_mod.uninstall()
    plugins.reset_plugin_manager()
    try:
        install_mod.install(gui=False)
        ini = tmp_path / "in.ini"
        ini.write_text("[PINNTorchModel]\nGridSize = 2\nProbeScale = 2.5\n"
                       "[PINNTorchTraining]\nBatchSize = 64\nMAEWeight = 0.25\n")
        core = ModelCore(ini)
        library = install_mod.libraries_of(core.processing_core.processing_api)[0]
        values = library.settings.spec_values()
        assert (values["model"]["gridsize"], values["model"]["probe_scale"]) == (2, 2.5)
        assert (values["training"]["batch_size"], values["training"]["mae_weight"]) == (64, 0.25)
        out = tmp_path / "out.ini"
        core.settings_registry.save_settings(out)
        parser = configparser.ConfigParser()
        parser.read(out)
        assert parser["PINNTorchModel"]["gridsize"] == "2"
        assert parser["PINNTorchTraining"]["batchsize"] == "64"
        from ptychodus_pinn_torch.host.settings import PARAMETERS

        for p in PARAMETERS:
            assert p.name.lower() in parser[p.group], p
        library.model_settings.amp_activation.set_value("gelu")
        with pytest.raises(ValueError, match=r"\[PINNTorchModel\] AmpActivation = 'gelu' .*"
                                             r"sigmoid, swish, softplus, relu"):
            library.settings.spec_values()
    finally:
        install_mod.uninstall()
        plugins.reset_plugin_manager()


@pytest.mark.spec("HOST-007")
def test_export_is_the_contract(libraries: list[Any], scan: Any, tmp_path: Path) -> None:
    from ptychodus_pinn_torch.data import RawData

    ri = scan.reconstruct_input()
    counts = np.asarray(ri.diffraction_patterns, dtype=np.float64)
    good = ~np.asarray(ri.bad_pixels)
    geometry = ri.product.object_.get_geometry()
    xm = np.array([p.x_m for p in ri.product.probe_positions])
    ym = np.array([p.y_m for p in ri.product.probe_positions])
    x_ref = (xm - geometry.center_x_m) / geometry.pixel_width_m + (geometry.width_px - 1) / 2
    y_ref = (ym - geometry.center_y_m) / geometry.pixel_height_m + (geometry.height_px - 1) / 2
    trainables = [r for lib in libraries for r in lib if isinstance(r, TrainableReconstructor)]
    if not trainables:
        pytest.skip("the backend has no trainable reconstructor")
    for i, reconstructor in enumerate(trainables):
        path = tmp_path / f"export{i}.bin"
        reconstructor.export_training_data(path, ri)
        assert path.is_file()
        with np.load(path, allow_pickle=False) as z:
            if "bad_pixels" in z.files:  # the detector mask itself (HOST-261), never counts
                np.testing.assert_array_equal(z["bad_pixels"], np.asarray(ri.bad_pixels))
            d, probe = z["diff3d"], z["probeGuess"]
            assert d.dtype == np.float32 and d.shape == counts.shape
            assert probe.dtype == np.complex64 and probe.shape == counts.shape[1:]
            np.testing.assert_allclose(d[:, good], np.sqrt(counts[:, good]), rtol=1e-6)
            assert np.all(d[:, ~good] < 0.01 * np.sqrt(counts[:, ~good]))
            np.testing.assert_allclose(z["xcoords"], x_ref, rtol=0, atol=1e-9)
            np.testing.assert_allclose(z["ycoords"], y_ref, rtol=0, atol=1e-9)
            np.testing.assert_array_equal(z["xcoords_start"], z["xcoords"])
            np.testing.assert_array_equal(z["ycoords_start"], z["ycoords"])
            np.testing.assert_allclose(probe, ri.product.probes.get_array()[0, 0], rtol=1e-6)
            np.testing.assert_allclose(z["objectGuess"], ri.product.object_.get_layer(0),
                                       rtol=1e-6)
            np.testing.assert_array_equal(z["scan_index"], np.zeros(len(xm)))
        raw = RawData.from_file(path)
        np.testing.assert_array_equal(raw.diff3d, d)


@pytest.mark.spec("HOST-008")
def test_training_inputs(ours: None, scan: Any, tmp_path: Path) -> None:
    from ptychodus_pinn_torch.host.export import training_inputs
    from ptychodus_pinn_torch.host.sample_data import write_standard_layout

    batch = write_standard_layout(tmp_path / "batch", scan)
    out = tmp_path / "out"
    assert training_inputs(batch, out) == (out / "train_data.npz", None)
    assert (out / "train_data.npz").is_file()
    assert training_inputs(out / "train_data.npz", tmp_path) == (out / "train_data.npz", None)
    (out / "test_data.npz").write_bytes((out / "train_data.npz").read_bytes())
    assert training_inputs(out, tmp_path) == (out / "train_data.npz", out / "test_data.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"expected train_data\.npz .* diffraction\.h5 "
                                                r"\+ product\.h5"):
        training_inputs(tmp_path / "empty", tmp_path)
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    (renamed / "scan_a.npz").write_bytes((out / "train_data.npz").read_bytes())
    assert training_inputs(renamed, tmp_path) == (renamed / "scan_a.npz", None)
    (renamed / "scan_b.npz").write_bytes((out / "train_data.npz").read_bytes())
    with pytest.raises(FileNotFoundError, match=r"scan_a\.npz, scan_b\.npz"):
        training_inputs(renamed, tmp_path)


@pytest.mark.spec("HOST-009")
def test_training_progress_model_logs(trained: dict[str, Any]) -> None:
    outputs, stamps = trained["outputs"], trained["stamps"]
    reconstructor = trained["reconstructor"]
    progress = [o.progress for o in outputs]
    epochs = [o.progress for o in outputs if o.training_loss]
    assert epochs == list(range(1, reconstructor.get_progress_goal() + 1))
    assert progress == sorted(progress) and progress[-1] == reconstructor.get_progress_goal()
    gaps = np.diff(stamps[1:])  # after the first yield (which precedes torch's import)
    assert gaps.max() < 1.0, gaps.max()
    assert reconstructor.is_model_loaded()
    assert (trained["work"] / "model.zip").is_file()
    names = {r.name for r in trained["records"]}
    assert "ptychodus_pinn_torch.host.jobs" in names  # a record logged inside the worker


@pytest.mark.spec("HOST-010")
def test_stop_is_prompt_and_keeps_last_epoch(ours: None, scan: Any, tmp_path: Path) -> None:
    library = _our_library()
    library.training_settings.num_epochs.set_value(10_000)
    # Stop waits for the running batch; small batches keep this shared 2-core CPU's batch
    # time (about 40 ms per pattern) well below the bound
    library.training_settings.batch_size.set_value("4")
    reconstructor = library.reconstructor("PINN")
    reconstructor.export_training_data(tmp_path / "train_data.npz", scan.reconstruct_input())
    generator = reconstructor.train(tmp_path, tmp_path)
    deadline = time.monotonic() + 120
    for output in generator:
        if output.progress >= 1:
            break
        assert time.monotonic() < deadline
    t0 = time.monotonic()
    generator.close()  # what ptychodus' Stop does (the consumer breaks out of its loop)
    elapsed = time.monotonic() - t0
    assert reconstructor.last_stop_latency_s is not None
    assert reconstructor.last_stop_latency_s < 1.5, reconstructor.last_stop_latency_s
    assert elapsed < 4.0, elapsed
    assert reconstructor.is_model_loaded()
    assert (tmp_path / "checkpoints" / "checkpoint.pt").is_file()
    result = reconstructor.last_train_result
    assert result is not None and result["stopped"] and len(result["history"]) >= 1


@pytest.mark.spec("HOST-011")
def test_dead_worker_is_an_error(ours: None, scan: Any, tmp_path: Path) -> None:
    from ptychodus_pinn_torch.host.worker import WorkerDiedError

    library = _our_library()
    library.training_settings.num_epochs.set_value(10_000)
    reconstructor = library.reconstructor("PINN")
    reconstructor.export_training_data(tmp_path / "train_data.npz", scan.reconstruct_input())
    generator = reconstructor.train(tmp_path, tmp_path)
    next(generator)
    assert reconstructor.last_worker_pid is not None
    os.kill(reconstructor.last_worker_pid, signal.SIGKILL)
    t0 = time.monotonic()
    with pytest.raises(WorkerDiedError, match=r"killed by SIGKILL .*out-of-memory"):
        for _ in generator:
            assert time.monotonic() - t0 < 5.0
    assert time.monotonic() - t0 < 2.0
    assert not reconstructor.is_model_loaded()


@pytest.mark.spec("HOST-012")
def test_reconstruct_on_input_grid(trained: dict[str, Any], scan: Any) -> None:
    reconstructor = trained["reconstructor"]
    for layers in (1, 2):
        s = scan if layers == 1 else simulate_scan(n_side=5, step_px=6.0, layers=2, seed=11)
        ri = s.reconstruct_input()
        outputs = list(reconstructor.reconstruct(ri))
        assert len(outputs) == 1
        obj_in, obj = ri.product.object_, outputs[0].product.object_
        assert obj.get_array().shape == obj_in.get_array().shape
        assert obj.get_pixel_geometry() == obj_in.get_pixel_geometry()
        assert obj.get_center() == obj_in.get_center()
        assert list(obj.layer_spacing_m) == list(obj_in.layer_spacing_m)
        assert np.isfinite(obj.get_array()).all()
        np.testing.assert_array_equal(obj.get_array()[1:], 1)
        assert [(v.epoch, v.value) for v in outputs[0].product.losses] == [
            (h["epoch"], h["train_loss"]) for h in reconstructor.last_train_result["history"]]
    from ptychodus_pinn_torch.host.library import PtychoPINNTorchLibrary

    fresh = PtychoPINNTorchLibrary(SettingsRegistry()).reconstructor("PINN")
    with pytest.raises(ValueError, match="no model is loaded"):
        list(fresh.reconstruct(scan.reconstruct_input()))
    ri = scan.reconstruct_input()
    small = replace(ri, diffraction_patterns=np.asarray(ri.diffraction_patterns)[:, :32, :32],
                    bad_pixels=np.asarray(ri.bad_pixels)[:32, :32],
                    product=replace(ri.product, probes=_crop_probes(ri.product.probes, 32)))
    with pytest.raises(ValueError, match="32x32 pixels but the loaded model expects 64x64"):
        list(reconstructor.reconstruct(small))


def _crop_probes(probes: Any, n: int) -> Any:
    from ptychodus.api.probe import ProbeSequence

    return ProbeSequence(probes.get_array()[..., :n, :n], None, probes.get_pixel_geometry())


@pytest.mark.spec("HOST-013")
def test_model_files(trained: dict[str, Any], scan: Any, tmp_path: Path) -> None:
    from ptychodus_pinn_torch.host.library import PtychoPINNTorchLibrary

    reconstructor = trained["reconstructor"]
    assert reconstructor.get_model_file_extension() == ".zip"
    assert reconstructor.get_model_file_filter() == "PtychoPINN-PyTorch Model (*.zip)"
    saved = tmp_path / "saved.zip"
    reconstructor.save_model(saved)
    assert zipfile.is_zipfile(saved)
    other = PtychoPINNTorchLibrary(SettingsRegistry()).reconstructor("PINN")
    other.load_model_from_file(saved)
    ri = scan.reconstruct_input()
    a = next(iter(reconstructor.reconstruct(ri))).product.object_.get_array()
    b = next(iter(other.reconstruct(ri))).product.object_.get_array()
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError):
        other.load_model_from_file(junk)
    with pytest.raises(FileNotFoundError):
        other.load_model_from_file(tmp_path / "missing.zip")
    assert other.is_model_loaded() and other.model_path == saved


@pytest.mark.spec("HOST-140")
def test_training_status_and_epoch_lines(trained: dict[str, Any]) -> None:
    reconstructor = trained["reconstructor"]
    history = reconstructor.last_train_result["history"]
    snap = reconstructor.training_status.snapshot()
    assert snap.state == "finished" and snap.run == 1
    assert snap.epochs_done == snap.epochs_planned == len(history)
    assert list(snap.train_losses) == [(h["epoch"], h["train_loss"]) for h in history]
    assert list(snap.val_losses) == [(h["epoch"], h["val_loss"]) for h in history
                                     if h["val_loss"] is not None]
    assert snap.fraction == 1.0
    assert snap.batch_reports >= 1  # 25 groups in batches of 16: batch 1 of 2 was reported
    lines = [r.getMessage() for r in trained["records"]
             if r.name == "ptychodus_pinn_torch.host.reconstructor" and r.levelno == logging.INFO]
    last = history[-1]
    expected = f"epoch {last['epoch']} / {len(history)}: loss {last['train_loss']:.6g}"
    assert any(expected in line and line.endswith("done") for line in lines), lines


def _train_all(reconstructor: Any, folder: Path) -> list[Any]:
    return list(reconstructor.train(folder, folder))


@pytest.mark.spec("HOST-141")
def test_a_training_never_destroys_an_earlier_model(trained: dict[str, Any],
                                                    tmp_path: Path) -> None:
    import shutil

    work = trained["work"]
    shutil.copyfile(work / "train_data.npz", tmp_path / "train_data.npz")
    shutil.copyfile(work / "model.zip", tmp_path / "model.zip")
    earlier = (tmp_path / "model.zip").read_bytes()
    library = _our_library()
    reconstructor = library.reconstructor("PINN")
    reconstructor.load_model_from_file(tmp_path / "model.zip")
    # 1. a new training keeps the earlier model as model.1.zip
    _train_all(reconstructor, tmp_path)
    assert (tmp_path / "model.1.zip").read_bytes() == earlier
    second = (tmp_path / "model.zip").read_bytes()
    assert second != earlier and reconstructor.model_path == tmp_path / "model.zip"
    line = reconstructor.training_status.snapshot().line
    assert str(tmp_path / "model.zip") in line and str(tmp_path / "model.1.zip") in line
    # 2. Stop before the first epoch: no archive written, the set-aside model comes back
    generator = reconstructor.train(tmp_path, tmp_path)
    next(generator)
    generator.close()
    assert (tmp_path / "model.zip").read_bytes() == second
    assert not (tmp_path / "model.2.zip").exists()
    assert reconstructor.model_path == tmp_path / "model.zip"
    snap = reconstructor.training_status.snapshot()
    assert snap.state == "stopped" and "before its first epoch finished" in snap.line
    assert "previous model is back" in snap.line
    # 3. OverwriteModel: model.zip is replaced, no new backup
    library.execution_settings.overwrite_model.set_value(True)
    _train_all(reconstructor, tmp_path)
    assert (tmp_path / "model.zip").read_bytes() != second
    assert sorted(p.name for p in tmp_path.glob("model*.zip")) == ["model.1.zip", "model.zip"]


@pytest.mark.spec("HOST-141")
def test_a_stopped_training_says_which_weights_it_kept(ours: None, scan: Any,
                                                       tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    library = _our_library()
    library.training_settings.num_epochs.set_value(10_000)
    library.training_settings.batch_size.set_value("4")
    reconstructor = library.reconstructor("PINN")
    reconstructor.export_training_data(tmp_path / "train_data.npz", scan.reconstruct_input())
    (tmp_path / "model.zip").write_bytes(b"an earlier model")
    generator = reconstructor.train(tmp_path, tmp_path)
    deadline = time.monotonic() + 120
    with caplog.at_level(logging.WARNING, logger="ptychodus_pinn_torch"):
        for output in generator:
            if output.progress >= 1:
                break
            assert time.monotonic() < deadline
        generator.close()
    kept = reconstructor.last_train_result["history"][-1]["epoch"]
    snap = reconstructor.training_status.snapshot()
    assert snap.state == "stopped"
    assert snap.line.startswith(f"stopped at epoch {kept} of 10000: ")
    assert f"kept epoch {kept}'s weights in {tmp_path / 'model.zip'}" in snap.line
    assert f"previous model is kept as {tmp_path / 'model.1.zip'}" in snap.line
    assert (tmp_path / "model.1.zip").read_bytes() == b"an earlier model"
    assert any(snap.line in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)


@pytest.mark.spec("HOST-142")
def test_every_settings_row_explains_itself(ours: None) -> None:
    from ptychodus_pinn_torch.host.settings import PARAMETERS

    labels = [p.label for p in PARAMETERS]
    assert len(set(labels)) == len(labels)
    for p in PARAMETERS:
        assert p.label and p.help and p.unit, p.name
        tip = p.tooltip
        assert p.help[1:] in tip and f"Unit: {p.unit}." in tip, p.name
        assert f"settings.ini: [{p.group}] {p.name}." in tip, p.name
        if p.section == "execution":
            assert "Upstream: none (PyTorch backend only)." in tip
        else:
            owner = {"model": "ModelConfig", "training": "TrainingConfig",
                     "inference": "InferenceConfig"}[p.section]
            assert f"Upstream: {owner}.{p.spec_field}." in tip


@pytest.mark.spec("HOST-143")
def test_a_few_epoch_model_says_so(trained: dict[str, Any], scan: Any,
                                   caplog: pytest.LogCaptureFixture) -> None:
    reconstructor = trained["reconstructor"]
    epochs = len(reconstructor.last_train_result["history"])
    assert epochs < 10
    execution = trained["library"].execution_settings
    for refine, phrase in ((0, "RefineEpochs"), (2, "not from the network")):
        execution.refine_epochs.set_value(refine)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="ptychodus_pinn_torch"):
            list(reconstructor.reconstruct(scan.reconstruct_input()))
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len([w for w in warnings if f"only {epochs} epoch(s)" in w]) == 1, warnings
        assert any(phrase in w for w in warnings), warnings
    execution.refine_epochs.set_value(0)


@pytest.mark.spec("HOST-144")
def test_batch_reconstruct_without_model_is_one_line(ours: None, scan: Any, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    from ptychodus.api.exit_codes import ExitCode
    from ptychodus.model.core import ModelCore

    from ptychodus_pinn_torch.host.sample_data import write_standard_layout

    folder = write_standard_layout(tmp_path / "in", scan)
    (folder / "settings.ini").write_text("[Processing]\nAlgorithm = ptychopinn-pytorch_pinn\n")
    install_mod.uninstall()
    plugins.reset_plugin_manager()
    try:
        install_mod.install(gui=False)
        core = ModelCore()
        with caplog.at_level(logging.INFO):
            code = core.batch_mode_execute("reconstruct", folder, tmp_path / "out")
        assert code == ExitCode.FAILURE
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and errors[0].exc_info is None, [r.getMessage() for r in errors]
        message = errors[0].getMessage()
        assert f"no model file at {folder / 'model.zip'}" in message and "\n" not in message
        assert not list((tmp_path / "out").glob("product*.h5"))
    finally:
        install_mod.uninstall()
        plugins.reset_plugin_manager()


@pytest.mark.spec("HOST-261")
def test_reconstruct_in_ptychodus_leaves_bad_pixels_out(ours: None, tmp_path: Path) -> None:
    """Reconstruct in a real ModelCore on data with bad pixels refines with the mask, exactly
    as the engine does on the same files read by ``pinn-torch reconstruct`` (RawData with
    ``bad_pixels``), and not as it would on the inpainted patterns alone; the training export
    carries the mask."""
    from ptychodus.model.core import ModelCore

    from ptychodus_pinn_torch.conformance.helpers import tiny_engine
    from ptychodus_pinn_torch.data import RawData
    from ptychodus_pinn_torch.engine.archive import load_archive
    from ptychodus_pinn_torch.engine.inference import reconstruct
    from ptychodus_pinn_torch.engine.run import run_training
    from ptychodus_pinn_torch.host import install as install_mod
    from ptychodus_pinn_torch.host.sample_data import write_standard_layout

    sim = simulate_scan(n_side=5, step_px=6.0, bad_pixel_count=300, seed=261)
    folder = write_standard_layout(tmp_path / "scan", sim)
    raw = RawData.from_file(folder)  # the CLI's reader
    mask = np.asarray(sim.reconstruct_input().bad_pixels, bool)
    assert raw.bad_pixels is not None and np.array_equal(raw.bad_pixels, mask)
    run_training(raw, tiny_engine(1, model={"n_filters_scale": 1}), tmp_path / "run")
    archive = tmp_path / "run" / "wts.h5.zip"
    algorithm = "ptychopinn-pytorch_pinn"
    plugins.reset_plugin_manager()
    install_mod.install(gui=False)
    with ModelCore() as core:
        api = core.processing_core.processing_api
        library = install_mod.libraries_of(api)[0]
        library.execution_settings["RefineEpochs"].set_value(3)
        library.execution_settings["Device"].set_value("cpu")
        diffraction = core.workflow_api.load_assembled_diffraction_data(folder / "diffraction.h5")
        product = core.workflow_api.load_product(folder / "product.h5", diffraction=diffraction)
        api.load_model_from_file(archive, algorithm=algorithm)
        got = product.reconstruct_local(algorithm=algorithm, block=True).get_product()
        host = np.asarray(got.object_.get_array()[0])
        exported = tmp_path / "export.npz"
        library.reconstructor("PINN").export_training_data(exported, sim.reconstruct_input())
    bundle = load_archive(archive)
    masked = reconstruct(bundle, raw, refine_epochs=3, device="cpu", keep_patches=False).object
    bare = RawData(raw.xcoords, raw.ycoords, None, None, raw.diff3d, raw.probeGuess,
                   raw.scan_index, raw.objectGuess, diffraction_kind="amplitude")
    unmasked = reconstruct(bundle, bare, refine_epochs=3, device="cpu", keep_patches=False).object
    scale = float(np.abs(masked).max())
    host_vs_masked = float(np.abs(host - masked).max()) / scale
    masked_vs_unmasked = float(np.abs(masked - unmasked).max()) / scale
    assert host_vs_masked < 1e-4, host_vs_masked
    assert masked_vs_unmasked > 100 * max(host_vs_masked, 1e-6), masked_vs_unmasked
    with np.load(exported) as z:
        np.testing.assert_array_equal(z["bad_pixels"], mask)
    assert np.array_equal(RawData.from_file(exported).bad_pixels, mask)
