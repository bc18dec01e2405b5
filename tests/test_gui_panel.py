"""Offscreen tests of the PtychoPINN-PyTorch settings panel (ptychodus_pinn_torch.host.panel).

They build the panel with the real ptychodus ``ParameterViewBuilder`` on a real ptychodus
``SettingsRegistry`` holding our settings groups, then drive the Qt widgets the way a user's
edits do (signals the widgets emit on user input) and read the live ptychodus parameters back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("PyQt5")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from ptychodus.api.settings import SettingsRegistry  # noqa: E402
from PyQt5.QtWidgets import (  # noqa: E402
    QApplication,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QSlider,
    QSpinBox,
    QWidget,
)

from ptychodus_pinn_torch.host import panel  # noqa: E402
from ptychodus_pinn_torch.host.settings import (  # noqa: E402
    PARAMETERS,
    ParameterSpec,
    PINNTorchSettings,
)

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def qapp() -> Iterator[QApplication]:
    app = QApplication.instance() or QApplication(["test_gui_panel"])
    yield app  # type: ignore[misc]


@pytest.fixture()
def settings() -> PINNTorchSettings:
    return PINNTorchSettings(SettingsRegistry())


def _rows(widget: QWidget) -> dict[tuple[str, str], QWidget]:
    """``{(group-box title, row label): field widget}`` of a built panel."""
    rows: dict[tuple[str, str], QWidget] = {}
    for box in widget.findChildren(QGroupBox):
        layout = box.layout()
        assert isinstance(layout, QFormLayout)
        for row in range(layout.rowCount()):
            label_item = layout.itemAt(row, QFormLayout.ItemRole.LabelRole)
            field_item = layout.itemAt(row, QFormLayout.ItemRole.FieldRole)
            assert label_item is not None and field_item is not None
            label = label_item.widget()
            assert isinstance(label, QLabel)
            rows[box.title(), label.text()] = field_item.widget()
    return rows


def _row_of(rows: dict[tuple[str, str], QWidget], spec: ParameterSpec) -> QWidget:
    return rows[panel.SECTION_TITLES[spec.section], f"{spec.label}:"]


def _spec(section: str, name: str) -> ParameterSpec:
    return next(p for p in PARAMETERS if p.section == section and p.name == name)


def _param(settings: PINNTorchSettings, section: str, name: str) -> Any:
    return getattr(settings, section)[name]


def test_pinn_panel_has_one_widget_of_the_right_kind_per_parameter(
    qapp: QApplication, settings: PINNTorchSettings
) -> None:
    widget = panel.build_settings_panel(settings.groups(), "pinn")
    assert widget.objectName() == "PINNTorchPanel-pinn"
    rows = _rows(widget)
    assert len(rows) == len(PARAMETERS)
    titles = {box.title() for box in widget.findChildren(QGroupBox)}
    assert titles == {"Model", "Training", "Inference", "Execution"}
    for spec in PARAMETERS:
        field = _row_of(rows, spec)
        if spec.kind == "choice":
            assert isinstance(field, QComboBox), spec.name
        elif spec.kind == "bool":
            assert isinstance(field, QCheckBox), spec.name
        elif spec.kind == "int" and spec.minimum is not None and spec.maximum is not None:
            assert isinstance(field, QSpinBox), spec.name
            assert (field.minimum(), field.maximum()) == (spec.minimum, spec.maximum)
        elif spec.kind == "real" and spec.maximum is not None and spec.maximum <= 1.0:
            assert field.findChild(QSlider) is not None, spec.name
        else:  # unbounded int, other reals: a line edit (inside ptychodus' DecimalLineEdit)
            line_edit = field if isinstance(field, QLineEdit) else field.findChild(QLineEdit)
            assert isinstance(line_edit, QLineEdit), spec.name
        # every row says what it does, its unit and upstream's name (HOST-142)
        assert field.toolTip() == spec.tooltip, spec.name
        assert spec.help and spec.unit, spec.name
        tip = field.toolTip()
        assert spec.help[1:] in tip and f"Unit: {spec.unit}." in tip, spec.name
        assert f"Upstream: {spec.upstream_name}." in tip and f"] {spec.name}." in tip, spec.name


def test_supervised_panel_hides_the_physics_knobs(
    qapp: QApplication, settings: PINNTorchSettings
) -> None:
    widget = panel.build_settings_panel(settings.groups(), "Supervised")
    assert widget.objectName() == "PINNTorchPanel-supervised"
    rows = _rows(widget)
    shown = {(s.section, s.name) for s in PARAMETERS if
             (panel.SECTION_TITLES[s.section], f"{s.label}:") in rows}
    expected = {(s.section, s.name) for s in PARAMETERS} - panel.PINN_ONLY_PARAMETERS
    assert shown == expected
    assert ("training", "NumEpochs") in shown and ("model", "GridSize") not in shown


def test_combo_boxes_offer_exactly_the_enumerated_choices(
    qapp: QApplication, settings: PINNTorchSettings
) -> None:
    widget = panel.build_settings_panel(settings.groups(), "pinn")  # keep alive: owns the rows
    rows = _rows(widget)
    choice_specs = [s for s in PARAMETERS if s.kind == "choice"]
    assert {s.name for s in choice_specs} >= {"AmpActivation", "Device", "BatchSize"}
    for spec in choice_specs:
        combo = _row_of(rows, spec)
        assert isinstance(combo, QComboBox)
        items = tuple(combo.itemText(i) for i in range(combo.count()))
        assert items == spec.choices
        assert combo.currentText() == str(spec.default)


def test_editing_widgets_changes_the_settings(
    qapp: QApplication, settings: PINNTorchSettings
) -> None:
    widget = panel.build_settings_panel(settings.groups(), "pinn")  # keep alive: owns the rows
    rows = _rows(widget)

    combo = _row_of(rows, _spec("model", "AmpActivation"))
    assert isinstance(combo, QComboBox)
    combo.setCurrentIndex(combo.findText("swish"))
    combo.textActivated.emit("swish")  # what a user's pick emits
    assert _param(settings, "model", "AmpActivation").get_value() == "swish"

    device = _row_of(rows, _spec("execution", "Device"))
    assert isinstance(device, QComboBox)
    device.textActivated.emit("cpu")
    assert _param(settings, "execution", "Device").get_value() == "cpu"

    check = _row_of(rows, _spec("model", "ProbeMask"))
    assert isinstance(check, QCheckBox)
    check.setChecked(not check.isChecked())
    assert _param(settings, "model", "ProbeMask").get_value() is True

    spin = _row_of(rows, _spec("training", "NumEpochs"))
    assert isinstance(spin, QSpinBox)
    spin.setValue(3)
    assert _param(settings, "training", "NumEpochs").get_value() == 3

    groups_edit = _row_of(rows, _spec("training", "NumGroups"))
    assert isinstance(groups_edit, QLineEdit)
    groups_edit.setText("96")
    groups_edit.editingFinished.emit()
    assert _param(settings, "training", "NumGroups").get_value() == 96

    lr = _row_of(rows, _spec("execution", "LearningRate")).findChild(QLineEdit)
    assert isinstance(lr, QLineEdit)
    lr.setText("0.005")
    lr.editingFinished.emit()
    assert _param(settings, "execution", "LearningRate").get_value() == pytest.approx(0.005)

    slider = _row_of(rows, _spec("training", "MAEWeight")).findChild(QSlider)
    assert isinstance(slider, QSlider)
    slider.setValue(slider.minimum() + (slider.maximum() - slider.minimum()) // 4)
    assert _param(settings, "training", "MAEWeight").get_value() == pytest.approx(0.25)

    # the edits are what ptychodus writes into settings.ini
    snap = settings.snapshot()
    assert snap["PINNTorchModel"]["AmpActivation"] == "swish"
    assert snap["PINNTorchTraining"]["NumEpochs"] == "3"


def test_changed_settings_update_the_widgets(
    qapp: QApplication, settings: PINNTorchSettings
) -> None:
    widget = panel.build_settings_panel(settings.groups(), "pinn")  # keep alive: owns the rows
    rows = _rows(widget)
    _param(settings, "model", "AmpActivation").set_value("relu")
    _param(settings, "training", "BatchSize").set_value("64")
    _param(settings, "model", "GridSize").set_value(2)
    _param(settings, "model", "ObjectBig").set_value(False)
    _param(settings, "model", "ProbeScale").set_value(2.5)
    _param(settings, "training", "NumGroups").set_value(1024)

    combo = _row_of(rows, _spec("model", "AmpActivation"))
    batch = _row_of(rows, _spec("training", "BatchSize"))
    grid = _row_of(rows, _spec("model", "GridSize"))
    big = _row_of(rows, _spec("model", "ObjectBig"))
    scale = _row_of(rows, _spec("model", "ProbeScale")).findChild(QLineEdit)
    groups_edit = _row_of(rows, _spec("training", "NumGroups"))
    assert isinstance(combo, QComboBox) and combo.currentText() == "relu"
    assert isinstance(batch, QComboBox) and batch.currentText() == "64"
    assert isinstance(grid, QSpinBox) and grid.value() == 2
    assert isinstance(big, QCheckBox) and not big.isChecked()
    assert isinstance(scale, QLineEdit) and float(scale.text()) == pytest.approx(2.5)
    assert isinstance(groups_edit, QLineEdit) and groups_edit.text() == "1024"


def test_spin_box_keeps_values_inside_the_declared_range(
    qapp: QApplication, settings: PINNTorchSettings
) -> None:
    widget = panel.build_settings_panel(settings.groups(), "pinn")  # keep alive: owns the rows
    rows = _rows(widget)
    grid = _row_of(rows, _spec("model", "GridSize"))
    assert isinstance(grid, QSpinBox)
    grid.setValue(99)  # Qt clamps to the range taken from the parameter
    assert _param(settings, "model", "GridSize").get_value() == 5


def test_a_kind_mismatch_is_a_clear_value_error(
    qapp: QApplication, settings: PINNTorchSettings
) -> None:
    bad = ParameterSpec("model", "GridSize", "choice", "1", "gridsize", "Grid size",
                        choices=("1", "2"))
    builder = panel.ParameterViewBuilder()
    with pytest.raises(ValueError, match=r"\[PINNTorchModel\] GridSize.*StringParameter"):
        panel._add_parameter(builder, bad, settings.model["GridSize"], "Model")
    no_choices = ParameterSpec("execution", "Device", "choice", "auto", "device", "Device")
    with pytest.raises(ValueError, match="Device.*choices"):
        panel._add_parameter(builder, no_choices, settings.execution["Device"], "Execution")


def test_factory_of_the_real_library_builds_both_panels(qapp: QApplication) -> None:
    from ptychodus.controller.data import FileDialogFactory
    from ptychodus.controller.processing import ReconstructorViewControllerFactory

    from ptychodus_pinn_torch.host.library import PtychoPINNTorchLibrary

    library = PtychoPINNTorchLibrary(SettingsRegistry(), False)
    factory = panel.create_view_controller_factory(library, FileDialogFactory())
    assert isinstance(factory, ReconstructorViewControllerFactory)
    assert factory.name == library.name == "PtychoPINN-PyTorch"
    # ptychodus passes casefolded reconstructor names (from its algorithm keys)
    pinn = factory.create_view_controller("pinn")
    supervised = factory.create_view_controller("supervised")
    assert pinn.objectName() == "PINNTorchPanel-pinn"
    assert supervised.objectName() == "PINNTorchPanel-supervised"
    header = pinn.findChild(QLabel)
    assert header is not None and "PtychoPINN-PyTorch / PINN" in header.text()
    status = pinn.findChild(panel.ModelStatusLabel)
    assert status is not None and status.text() == panel.ModelStatusLabel.NO_MODEL
    rows = _rows(pinn)
    epochs = _row_of(rows, _spec("training", "NumEpochs"))
    assert isinstance(epochs, QSpinBox)
    epochs.setValue(7)  # the panel edits the library's own settings
    assert library.training_settings["NumEpochs"].get_value() == 7
    assert len(_rows(supervised)) < len(rows)


def test_a_library_without_settings_groups_is_refused(qapp: QApplication) -> None:
    class Bare:
        name = "Bare"

    with pytest.raises(ValueError, match="Bare.*settings"):
        panel.create_view_controller_factory(Bare(), None)
