"""Registration: install() adds our library to a real ptychodus ModelCore, idempotently and
fail-open; settings.ini values apply and are saved back; batch mode never imports Qt for us."""

from __future__ import annotations

import configparser
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from ptychodus.api.reconstruct import ReconstructorLibrary
from ptychodus.api.settings import SettingsRegistry

from ptychodus_pinn_torch.host import install as install_mod
from ptychodus_pinn_torch.host import plugins
from ptychodus_pinn_torch.host.hookspecs import hookimpl
from ptychodus_pinn_torch.host.settings import GROUP_NAMES, PARAMETERS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def installed() -> Iterator[None]:
    install_mod.uninstall()
    plugins.reset_plugin_manager()
    assert install_mod.install(gui=False)
    yield
    install_mod.uninstall()
    plugins.reset_plugin_manager()


def _model_core(settings_file: Path | None = None) -> Any:
    from ptychodus.model.core import ModelCore

    return ModelCore(settings_file)


def test_model_core_lists_our_reconstructors(installed: None) -> None:
    model = _model_core()
    names = list(model.processing_core.processing_api.available_reconstructors())
    assert "ptychopinn-pytorch_pinn" in names
    assert "ptychopinn-pytorch_supervised" in names
    libraries = install_mod.libraries_of(model.processing_core.processing_api)
    assert [lib.name for lib in libraries] == ["PtychoPINN-PyTorch"]
    assert [r.name for r in libraries[0]] == ["PINN", "Supervised"]


def test_install_is_idempotent(installed: None) -> None:
    from ptychodus.model.processing.core import ProcessingCore

    wrapped = ProcessingCore.__init__
    assert install_mod.install(gui=False)
    assert ProcessingCore.__init__ is wrapped
    model = _model_core()
    names = list(model.processing_core.processing_api.available_reconstructors())
    assert names.count("ptychopinn-pytorch_pinn") == 1
    install_mod.uninstall()
    assert not install_mod.is_installed()
    assert not hasattr(ProcessingCore.__init__, "__ptychodus_pinn_torch_wrapped__")
    # (a ModelCore built now would re-install through the autoload module if a non-editable
    # install placed it in ptychodus/plugins: that is the autoload working, tested elsewhere)


class _Broken:
    @hookimpl
    def reconstructor_libraries(self, settings_registry: Any,
                                is_developer_mode_enabled: bool) -> list[Any]:
        raise RuntimeError("plugin bug")


class _BadName:
    @hookimpl
    def reconstructor_libraries(self, settings_registry: Any,
                                is_developer_mode_enabled: bool) -> list[Any]:
        class Lib(ReconstructorLibrary):
            def __init__(self) -> None:
                super().__init__("bad_plugin")

            @property
            def name(self) -> str:
                return "Bad_Name"

            def __iter__(self) -> Iterator[Any]:
                return iter([])

        return [Lib(), "not a library"]


def test_broken_plugins_fail_open(installed: None, caplog: pytest.LogCaptureFixture) -> None:
    manager = plugins.get_plugin_manager()
    manager.register(_Broken(), name="broken")
    manager.register(_BadName(), name="badname")
    with caplog.at_level(logging.ERROR):
        model = _model_core()
    names = list(model.processing_core.processing_api.available_reconstructors())
    assert "ptychopinn-pytorch_pinn" in names  # ours still there
    assert not any(n.startswith("bad") for n in names)
    text = caplog.text
    assert "plugin 'broken' failed" in text
    assert "'Bad_Name' contains '_'" in text
    assert "not a ptychodus ReconstructorLibrary" in text


def test_unsupported_signature_is_skipped_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    module = SimpleNamespace(__name__="fake", ProcessingCore=type(
        "ProcessingCore", (), {"__init__": lambda self, a, b: None}))
    with caplog.at_level(logging.ERROR):
        ok = install_mod._wrap_class(module, "ProcessingCore",  # type: ignore[arg-type]
                                     install_mod._wrap_processing_core,
                                     ("settings_registry", "algorithm_libraries"))
    assert ok is False
    assert "has no parameter(s) ['settings_registry', 'algorithm_libraries']" in caplog.text


def test_duplicate_library_name_is_refused() -> None:
    registry = SettingsRegistry()
    first = plugins.collect_libraries(registry, False)
    assert [lib.name for _, lib in first] == ["PtychoPINN-PyTorch"]
    again = plugins.collect_libraries(SettingsRegistry(), False,
                                      existing_names={"ptychopinn-pytorch"})
    assert again == []


def test_settings_ini_values_apply_and_save_back(installed: None, tmp_path: Path) -> None:
    ini = tmp_path / "settings.ini"
    ini.write_text(textwrap.dedent("""\
        [PINNTorchModel]
        GridSize = 2
        AmpActivation = swish
        [PINNTorchTraining]
        NumEpochs = 7
        NumPhotons = 1e9
        ProbeTrainable = True
        """))
    model = _model_core(ini)
    library = install_mod.libraries_of(model.processing_core.processing_api)[0]
    values = library.settings.spec_values()
    assert values["model"]["gridsize"] == 2
    assert values["model"]["amp_activation"] == "swish"
    assert values["training"]["nepochs"] == 7
    assert values["training"]["nphotons"] == 1e9
    assert values["training"]["probe_trainable"] is True
    library.training_settings.batch_size.set_value("32")
    saved = tmp_path / "saved.ini"
    model.settings_registry.save_settings(saved)
    parser = configparser.ConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(saved)
    for group in GROUP_NAMES.values():
        assert group in parser
    assert parser["PINNTorchModel"]["GridSize"] == "2"
    assert parser["PINNTorchTraining"]["NumEpochs"] == "7"
    assert parser["PINNTorchTraining"]["BatchSize"] == "32"
    expected = {(p.group, p.name) for p in PARAMETERS}
    found = {(g, k) for g in GROUP_NAMES.values() for k in parser[g]}
    assert found == expected


def test_bad_enumerated_setting_names_group_key_value_and_fix() -> None:
    from ptychodus_pinn_torch.host.library import PtychoPINNTorchLibrary

    library = PtychoPINNTorchLibrary(SettingsRegistry())
    library.model_settings.amp_activation.set_value("tanh")
    with pytest.raises(ValueError, match=r"\[PINNTorchModel\] AmpActivation = 'tanh' is not "
                                         r"allowed; set it to one of sigmoid, swish"):
        library.settings.spec_values()


def test_batch_process_does_not_import_qt() -> None:
    code = ("from ptychodus_pinn_torch.host.install import install; install(); "
            "from ptychodus.model.core import ModelCore; m = ModelCore(); import sys; "
            "print(sorted(k for k in sys.modules if k.startswith('PyQt5'))[:3]); "
            "print(list(m.processing_core.processing_api.available_reconstructors()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=REPO, env=_env())
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[-2] == "[]"
    assert "ptychopinn-pytorch_pinn" in lines[-1]


def test_gui_hook_is_installed_when_ptychodus_imports_the_controller() -> None:
    pytest.importorskip("PyQt5")
    code = ("import os; os.environ.setdefault('QT_QPA_PLATFORM', 'offscreen'); "
            "from ptychodus_pinn_torch.host.install import install; install(); "
            "import ptychodus.controller.processing.core as c; "
            "print(hasattr(c.ProcessingController.__init__, '__ptychodus_pinn_torch_wrapped__'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=REPO, env=_env())
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "True"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


class _NotASequence:
    @hookimpl
    def reconstructor_libraries(self, settings_registry: Any,
                                is_developer_mode_enabled: bool) -> Any:
        return 42


def test_a_result_that_is_no_sequence_skips_only_that_plugin(
        caplog: pytest.LogCaptureFixture) -> None:
    manager = plugins.load_plugin("ptychodus-pinn-torch")
    manager.register(_NotASequence(), name="not-a-sequence")
    with caplog.at_level(logging.ERROR):
        added = plugins.collect_libraries(SettingsRegistry(), False, manager=manager)
    assert [(name, library.name) for name, library in added] == [
        ("ptychodus-pinn-torch", "PtychoPINN-PyTorch")]
    assert "'not-a-sequence' returned 42" in caplog.text
