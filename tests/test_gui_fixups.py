"""The ProcessingController fix-ups (ptychodus_pinn_torch.host.controller_fixups) on the real GUI.

Builds ptychodus' ModelCore, ViewCore and ControllerCore exactly as ``ptychodus.__main__`` does
(offscreen, no event loop), with this package's hooks installed, and checks the repairs
of :func:`attach_controller_fixups` against ptychodus' own controller, monitor and buttons.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PyQt5")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt5.QtWidgets import QApplication  # noqa: E402

from ptychodus_pinn_torch.host import controller_fixups as fixups_module  # noqa: E402
from ptychodus_pinn_torch.host.install import install, is_installed, uninstall  # noqa: E402

pytestmark = pytest.mark.gui

PINN = "ptychopinn-pytorch_pinn"


@pytest.fixture(scope="module")
def gui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real ptychodus GUI (not shown) with our hooks, one registered simulated dataset."""
    app = QApplication.instance() or QApplication(["test_gui_fixups"])
    was_installed = is_installed()
    assert install()
    from gui_driver import simulate_dataset
    from ptychodus.controller import ControllerCore
    from ptychodus.model import ModelCore
    from ptychodus.view import ViewCore

    model = ModelCore()
    view = ViewCore(is_developer_mode_enabled=False)
    controller = ControllerCore(model, view)
    workdir: Path = tmp_path_factory.mktemp("fixups")
    product, diffraction_file = simulate_dataset(workdir)
    yield {"app": app, "model": model, "view": view, "controller": controller,
           "product": product, "diffraction_file": diffraction_file}
    # ptychodus' agent-chat key filter must not outlive the view (PyQt5 would abort)
    chat = controller._agent_chat_controller._input_controller
    chat._view.text_edit.removeEventFilter(chat)
    view.close()
    # leave ptychodus' classes as this module found them
    fixups_module.remove_controller_self_attach()
    if not was_installed:
        uninstall()


def test_fixups_attach_once_and_align_the_algorithm(gui: dict[str, Any]) -> None:
    pc = gui["controller"]._processing_controller
    api = gui["model"].processing_core.processing_api
    # our panel factory made the controller attach them while ptychodus built it
    attached = getattr(pc, "_pinn_torch_fixups", None)
    assert isinstance(attached, fixups_module.ControllerFixups)
    fixups = fixups_module.attach_controller_fixups(pc, api)
    assert fixups is attached  # idempotent
    assert fixups.run_observer is not None and fixups.infer_guard is not None
    assert fixups.algorithm_aligned
    combo = pc._algorithm_view_controller.get_widget()
    # ptychodus' default algorithm (pty-chi) is not installed: what the combo shows is selected
    algorithm = gui["model"].processing_core.algorithm_parameter
    assert algorithm.get_value() == combo.currentText() == PINN


def test_infer_stays_disabled_without_a_model_when_a_product_appears(
    gui: dict[str, Any]
) -> None:
    pc = gui["controller"]._processing_controller
    fixups_module.attach_controller_fixups(pc, gui["model"].processing_core.processing_api)
    workflow = gui["model"].workflow_api
    diffraction = workflow.load_assembled_diffraction_data(gui["diffraction_file"])
    workflow.register_product(gui["product"], diffraction=diffraction)
    QApplication.processEvents()
    actions = pc._actions_view
    assert actions.train_button.isEnabled()  # ptychodus: a product with data can be trained on
    assert actions.reconstruct_button.text() == "Infer"
    assert not actions.reconstruct_button.isEnabled()  # but there is no model to infer with
    reconstructor = gui["model"].processing_core.algorithm_parameter.get_current_reconstructor()
    assert reconstructor.is_model_loaded() is False


def test_a_finished_run_resyncs_the_processing_view(gui: dict[str, Any]) -> None:
    model = gui["model"]
    pc = gui["controller"]._processing_controller
    fixups = fixups_module.attach_controller_fixups(pc, model.processing_core.processing_api)
    assert fixups is not None and fixups.run_observer is not None
    monitor = model.processing_core.processing_api.task_monitor
    before = fixups.run_observer.resyncs
    actions = pc._actions_view
    actions.reconstruct_button.setText("stale")
    with monitor:  # one run, exactly as ptychodus' background tasks bracket their work
        pass
    model.run_tasks()  # ptychodus' 1 s GUI timer does this: deliver observer notifications
    assert fixups.run_observer.resyncs == before + 1
    assert actions.reconstruct_button.text() == "Infer"  # the controller's own sync ran
    model.run_tasks()
    assert fixups.run_observer.resyncs == before + 1  # once per finished run


@pytest.mark.filterwarnings("ignore:Data has no positive values:UserWarning")  # ptychodus' own
@pytest.mark.parametrize(
    ("values", "scale"), [((-3.0, -4.5), "linear"), ((0.5, 0.25), "log")]
)
def test_loss_plot_axis_is_linear_only_when_a_loss_is_not_positive(
    gui: dict[str, Any], values: tuple[float, float], scale: str
) -> None:
    import dataclasses

    import numpy as np
    from ptychodus.api.product import LossValue

    model = gui["model"]
    pc = gui["controller"]._processing_controller
    assert fixups_module.attach_controller_fixups(pc, model.processing_core.processing_api)
    product = dataclasses.replace(
        gui["product"], losses=[LossValue(epoch=i + 1, value=v) for i, v in enumerate(values)]
    )
    index = model.product_core.product_api.insert_product(product)
    pc._status_controller.plot_losses(index)  # ptychodus' own plot (semilogy)
    QApplication.processEvents()
    axes = pc._status_view.axes
    assert axes.get_yscale() == scale
    (line,) = axes.get_lines()
    np.testing.assert_allclose(line.get_ydata(), values)
    low, high = axes.get_ylim()
    assert low <= min(values) and max(values) <= high  # every loss inside the visible range
